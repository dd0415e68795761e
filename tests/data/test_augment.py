
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_googlenet.data import augment
import helpers as fx

NUM_DRAWS = 500


def _draw_boxes(shape, config=augment.AugmentConfig(), n=NUM_DRAWS):
    seeds = tf.data.Dataset.range(n).map(lambda i: tf.stack([i, 7 * i + 1]))
    boxes = seeds.map(lambda s: augment.sample_crop_box(tf.constant(shape), s, config))
    return np.stack(list(boxes.as_numpy_iterator()))


def test_crop_boxes_cover_the_paper_ranges():
    height, width = 300, 400
    boxes = _draw_boxes([height, width, 3])
    top, left, h, w = boxes.T
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= height).all() and (left + w <= width).all()
    area = h * w / (height * width)
    ratio = w / h
    # Integer boxes: allow rounding of a pixel on ~100-pixel sides.
    assert area.min() >= 0.08 * 0.97 and area.max() <= 1.0
    assert area.min() < 0.11 and area.max() > 0.9
    assert ratio.min() >= 0.75 * 0.97 and ratio.max() <= 4 / 3 * 1.03
    assert ratio.min() < 0.78 and ratio.max() > 1.28
    # Area is drawn uniformly then rejected when it does not fit, so small
    # crops dominate slightly; still, every part of the range is visited.
    counts, _ = np.histogram(area, bins=4, range=(0.08, 1.0))
    assert (counts > 0.05 * NUM_DRAWS).all(), counts


def test_crop_falls_back_to_central_crop_when_no_box_fits():
    # A 10x1000 strip admits no crop with area >= 8% and ratio <= 4/3.
    boxes = _draw_boxes([10, 1000, 3], n=20)
    np.testing.assert_array_equal(boxes, np.tile([1, 496, 8, 8], (20, 1)))


def test_crop_disabled_is_the_whole_image():
    config = augment.AugmentConfig(random_crop=False)
    np.testing.assert_array_equal(_draw_boxes([30, 40, 3], config, n=5), np.tile([0, 0, 30, 40], (5, 1)))


def test_output_pixels_come_from_the_reported_box():
    image = fx.coordinate_image(200, 250)
    config = augment.AugmentConfig(
        photometric=False, random_flip=False, interpolations=("nearest",)
    )
    for i in range(20):
        out, info = augment.augment_with_info(image, 16, [i, 3], config)
        top, left, h, w = info["crop_box"].numpy()
        rows, cols = out.numpy()[..., 0], out.numpy()[..., 1]
        assert rows.min() >= top and rows.max() <= top + h - 1
        assert cols.min() >= left and cols.max() <= left + w - 1
        # Nearest neighbour on a 16-pixel grid reaches near both box edges.
        assert rows.max() - rows.min() >= h * 14 / 16 - 1


def test_every_interpolation_is_drawn_about_equally():
    image = fx.photo_like(20, 20, seed=0)
    fn = tf.function(lambda s: augment.augment_with_info(image, 8, s)[1]["interpolation"])
    drawn = np.array([fn(tf.constant([i, 11])).numpy() for i in range(200)])
    counts = np.bincount(drawn, minlength=4)
    assert counts.sum() == 200 and (counts >= 30).all(), counts


def test_same_seed_same_output_different_seed_differs():
    data = tf.constant(fx.encode(fx.photo_like(60, 80, seed=1), "JPEG"))
    a = augment.augment(data, 32, [5, 6])
    np.testing.assert_array_equal(a, augment.augment(data, 32, [5, 6]))
    assert not np.array_equal(a, augment.augment(data, 32, [5, 7]))


def test_fused_jpeg_crop_matches_decode_then_crop():
    rgb = fx.photo_like(120, 160, seed=2)
    jpeg = tf.constant(fx.encode(rgb, "JPEG", quality=95))
    config = augment.AugmentConfig(photometric=False)
    for i in range(5):
        fused, info = augment.augment_with_info(jpeg, 32, [i, 0], config)
        full, full_info = augment.augment_with_info(tf.io.decode_jpeg(jpeg), 32, [i, 0], config)
        np.testing.assert_array_equal(info["crop_box"], full_info["crop_box"])
        # libjpeg's cropped decode may differ by a level or two at the edges.
        assert np.abs(fused.numpy() - full.numpy()).mean() < 2.0


def test_png_bytes_match_decoded_tensor_exactly():
    rgb = fx.photo_like(40, 50, seed=3)
    png = tf.constant(fx.encode(rgb, "PNG"))
    np.testing.assert_array_equal(augment.augment(png, 16, [1, 1]), augment.augment(rgb, 16, [1, 1]))


def test_flip_is_a_mirror_and_reported():
    image = fx.photo_like(16, 16, seed=4)
    config = augment.AugmentConfig(random_crop=False, photometric=False, interpolations=("nearest",))
    flips = []
    for i in range(20):
        out, info = augment.augment_with_info(image, 16, [i, 2], config)
        flipped = bool(info["flipped"])
        expected = image[:, ::-1] if flipped else image
        np.testing.assert_array_equal(out.numpy(), expected.astype(np.float32))
        flips.append(flipped)
    assert 0 < sum(flips) < 20


def test_photometric_changes_colours_within_range():
    image = fx.photo_like(24, 24, seed=5)
    off = augment.AugmentConfig(photometric=False)
    on = augment.AugmentConfig()
    plain = augment.augment(image, 24, [3, 3], off).numpy()
    distorted = [augment.augment(image, 24, [3, 3], on).numpy()]
    distorted += [augment.augment(image, 24, [3, i], on).numpy() for i in range(4, 8)]
    for d in distorted:
        assert d.min() >= 0.0 and d.max() <= 255.0
    # Same seed, same geometry: only the colours differ.
    assert np.abs(distorted[0] - plain).mean() > 1.0


def test_works_inside_tf_data_and_gray_tensors():
    images = np.stack([fx.photo_like(20, 30, seed=s)[..., :1] for s in range(4)])
    ds = tf.data.Dataset.from_tensor_slices(images).enumerate().map(
        lambda i, x: augment.augment(x, 12, tf.stack([i, i]))
    )
    out = np.stack(list(ds.as_numpy_iterator()))
    assert out.shape == (4, 12, 12, 3) and out.dtype == np.float32


def test_config_validation():
    with pytest.raises(ValueError, match="area_range"):
        augment.AugmentConfig(area_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="interpolations"):
        augment.AugmentConfig(interpolations=("lanczos7",))


def test_augmentation_grid_and_script(tmp_path):
    paths = []
    for i in range(2):
        paths.append(fx.write_file(str(tmp_path / f"im{i}.jpg"), fx.encode(fx.photo_like(40, 60, i), "JPEG")))
    out = augment.augmentation_grid(paths, str(tmp_path / "grid.png"), n=3, seed=1, image_size=20)
    with Image.open(out) as grid:
        assert grid.size == (4 * 20, 2 * 20)
        first = np.asarray(grid)

    script_out = str(tmp_path / "script.png")
    from keras_googlenet.cli import main

    assert main(["augment", *paths, "--output", script_out, "-n", "3", "--seed", "1",
                 "--image-size", "20", "--min-crop-area", "0.08"]) == 0
    with Image.open(script_out) as grid:
        np.testing.assert_array_equal(np.asarray(grid), first)
