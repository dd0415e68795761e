import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_googlenet.data import preprocessing
import helpers as fx


def _decode(data):
    return preprocessing.decode_image(tf.constant(data)).numpy()


def test_decode_rgb_formats_roundtrip():
    rgb = fx.photo_like(10, 14, seed=0)
    for fmt in ("PNG", "BMP"):
        np.testing.assert_array_equal(_decode(fx.encode(rgb, fmt)), rgb)
    jpeg = _decode(fx.encode(rgb, "JPEG", quality=95))
    assert jpeg.shape == (10, 14, 3) and jpeg.dtype == np.uint8


def test_decode_awkward_images_to_uint8_rgb():
    rgb = fx.photo_like(12, 16, seed=1)
    gray = _decode(fx.encode(Image.fromarray(rgb).convert("L"), "PNG"))
    assert gray.shape == (12, 16, 3)
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])

    rgba = _decode(fx.encode(Image.fromarray(rgb).convert("RGBA"), "PNG"))
    np.testing.assert_array_equal(rgba, rgb)  # Alpha dropped, colours kept.

    png16 = tf.io.encode_png(tf.constant(np.full((3, 4, 3), 65535, np.uint16)))
    deep = preprocessing.decode_image(png16).numpy()
    assert deep.dtype == np.uint8 and (deep == 255).all()

    frames = [Image.new("RGB", (8, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    gif = _decode(fx.encode(frames[0], "GIF", save_all=True, append_images=frames[1:]))
    assert gif.shape == (6, 8, 3)
    assert gif[..., 0].mean() > 200 and gif[..., 2].mean() < 50  # First frame: red.

    cmyk = _decode(fx.encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"))
    assert cmyk.shape == (12, 16, 3)
    assert _decode(fx.encode(np.zeros((1, 1, 3), np.uint8), "PNG")).shape == (1, 1, 3)


def test_decode_works_inside_tf_data():
    data = [fx.encode(fx.photo_like(5, 7, s), "PNG") for s in range(3)]
    ds = tf.data.Dataset.from_tensor_slices(data).map(preprocessing.decode_image)
    assert ds.element_spec.shape.as_list() == [None, None, 3]
    assert [x.shape for x in ds.as_numpy_iterator()] == [(5, 7, 3)] * 3


def test_decode_rejects_garbage():
    with pytest.raises(tf.errors.InvalidArgumentError):
        preprocessing.decode_image(tf.constant(b"not an image"))


def _expected_coords(out_size, top, new, old):
    # Bilinear resize with half-pixel centres maps output i to source
    # (i + 0.5) * old / new - 0.5; a linear ramp is reproduced exactly.
    return (np.arange(out_size) + top + 0.5) * old / new - 0.5


def test_eval_preprocess_is_the_central_crop():
    height, width, size = 300, 400, 32
    image = fx.coordinate_image(height, width, dtype=np.float32)
    out = preprocessing.eval_preprocess(image, size).numpy()
    assert out.shape == (size, size, 3) and out.dtype == np.float32
    new_h, new_w = round(size / 0.875), round(400 * round(size / 0.875) / 300)  # 37, 49
    top, left = (new_h - size) // 2, (new_w - size) // 2
    np.testing.assert_allclose(out[:, 0, 0], _expected_coords(size, top, new_h, height), atol=1e-3)
    np.testing.assert_allclose(out[0, :, 1], _expected_coords(size, left, new_w, width), atol=1e-3)
    # The crop is centred: its middle maps to the image centre (to a pixel).
    assert abs(out[:, :, 0].mean() - (height - 1) / 2) < 300 / 37
    assert abs(out[:, :, 1].mean() - (width - 1) / 2) < 400 / 49


def test_eval_preprocess_default_is_256_then_224():
    image = fx.coordinate_image(256, 256, dtype=np.float32)
    out = preprocessing.eval_preprocess(image, 224).numpy()
    # 256 -> 256 is the identity, so the crop is exactly rows/cols 16..239.
    np.testing.assert_allclose(out[:, 0, 0], np.arange(16, 240), atol=1e-4)
    np.testing.assert_allclose(out[0, :, 1], np.arange(16, 240), atol=1e-4)


def test_eval_preprocess_deterministic_and_bytes_variant_matches():
    rgb = fx.photo_like(50, 70, seed=3)
    data = tf.constant(fx.encode(rgb, "PNG"))
    a = preprocessing.eval_preprocess(rgb, 24)
    b = preprocessing.eval_preprocess(rgb, 24)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, preprocessing.eval_preprocess_bytes(data, 24))
    np.testing.assert_array_equal(a, preprocessing.eval_preprocess(data, 24))
    serving = tf.function(
        lambda s: preprocessing.eval_preprocess_bytes(s, 24),
        input_signature=[tf.TensorSpec([], tf.string)],
    )
    np.testing.assert_array_equal(a, serving(data))


def test_eval_preprocess_elongated_and_gray():
    out = preprocessing.eval_preprocess(np.zeros((3, 500, 1), np.uint8), 16)
    assert out.shape == (16, 16, 3)


@pytest.mark.parametrize("bad", [0, -3, 2.5, None])
def test_eval_preprocess_rejects_bad_size(bad):
    with pytest.raises(ValueError, match="image_size"):
        preprocessing.eval_preprocess(np.zeros((8, 8, 3), np.uint8), bad)


def test_normalize_modes():
    images = tf.fill([1, 2, 2, 3], 255.0)
    assert preprocessing.normalize(images, None) is images
    np.testing.assert_allclose(preprocessing.normalize(images, "tf"), 1.0)
    caffe = preprocessing.normalize(images, "caffe").numpy()
    np.testing.assert_allclose(caffe[0, 0, 0], [255 - 103.939, 255 - 116.779, 255 - 123.68], rtol=1e-5)
