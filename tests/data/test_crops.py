"""Geometry of the 1/10/144 crop sets (keras_googlenet.data.crops).

Images encode their pixel positions (channel 0 = row, channel 1 = column), so
each crop shows where it came from. Bilinear resizing of such a ramp is known
in closed form (half-pixel centres, clamped at the borders), which gives
independent expected values for every crop, resized or not.
"""
import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_googlenet.data import crops
from keras_googlenet.data import preprocessing

S = 32  # model size in these tests: R = round(32 / 0.875) = 37; scales 37, 41, 46, 50


def coordinate_image(height, width):
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([rows, cols, np.full_like(rows, 7)], axis=-1).astype(np.float32)


def ramp(out_index, in_size, out_size):
    """Value at output pixel `out_index` when a ramp 0..in_size-1 is bilinearly
    resized to `out_size` (TF2 half-pixel centres, clamped borders)."""
    return np.clip((np.asarray(out_index) + 0.5) * in_size / out_size - 0.5, 0, in_size - 1)


def ramp_at(position, in_size, out_size):
    """The resized ramp read at a fractional `position` (bilinear)."""
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, out_size - 1)
    a, b = ramp(low, in_size, out_size), ramp(high, in_size, out_size)
    return a + (position - low) * (b - a)


def expected_crop(height, width, box):
    """The (S, S, 2) row/column values of the crop described by `box`."""
    new_h, new_w = box["resized"]
    top, left, size = box["box"]
    if size == S:
        rows = ramp(top + np.arange(S), height, new_h)
        cols = ramp(left + np.arange(S), width, new_w)
    else:  # a whole square of side `size` resized to S
        inner = ramp(np.arange(S), size, S)
        rows = ramp_at(top + inner, height, new_h)
        cols = ramp_at(left + inner, width, new_w)
    out = np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1)
    return out[:, ::-1] if box["mirrored"] else out


@pytest.mark.parametrize("shape", [(41, 60), (60, 41), (37, 37), (33, 90)])
@pytest.mark.parametrize("n", [1, 10, 144])
def test_crop_counts(shape, n):
    out = crops.make_crops(coordinate_image(*shape), n, S)
    assert out.shape == (n, S, S, 3)
    assert out.dtype == tf.float32
    assert len(crops.crop_boxes(*shape, n, S)) == n


def test_scales_are_the_papers_and_proportional():
    assert crops.scales_for(224) == (256, 288, 320, 352)
    assert crops.scales_for(80) == (91, 103, 114, 126)
    assert crops.scales_for(S) == (37, 41, 46, 50)
    assert crops.ten_crop_resize(224) == 256


def test_ten_crop_boxes_by_hand():
    # Landscape 41x60: shorter side 41 -> 37, longer round(60 * 37 / 41) = 54.
    boxes = crops.crop_boxes(41, 60, 10, S)
    assert all(b["resized"] == (37, 54) for b in boxes)
    assert [b["box"] for b in boxes[:5]] == [
        (0, 0, S), (0, 22, S), (5, 0, S), (5, 22, S), (2, 11, S)]
    assert [b["box"] for b in boxes[5:]] == [b["box"] for b in boxes[:5]]
    assert [b["mirrored"] for b in boxes] == [False] * 5 + [True] * 5
    # Portrait: the transpose.
    boxes = crops.crop_boxes(60, 41, 10, S)
    assert [b["box"] for b in boxes[:5]] == [
        (0, 0, S), (0, 5, S), (22, 0, S), (22, 5, S), (11, 2, S)]


def test_144_crop_boxes_by_hand():
    boxes = crops.crop_boxes(41, 60, 144, S)
    # Scale 41 (the second): the image keeps its size; squares at 0, 9, 19.
    second = boxes[18:36]
    assert all(b["resized"] == (41, 60) for b in second)
    assert [b["box"] for b in second[:6]] == [  # left square
        (0, 0, S), (0, 9, S), (9, 0, S), (9, 9, S), (4, 4, S), (0, 0, 41)]
    assert [b["box"] for b in second[6:12]] == [  # centre square, offset 9
        (0, 9, S), (0, 18, S), (9, 9, S), (9, 18, S), (4, 13, S), (0, 9, 41)]
    assert [b["box"] for b in second[12:]] == [  # right square, offset 19
        (0, 19, S), (0, 28, S), (9, 19, S), (9, 28, S), (4, 23, S), (0, 19, 41)]
    # Scale 50: 41x60 -> 50 x round(60 * 50 / 41) = 50x73; squares at 0, 11, 23.
    last = boxes[54:72]
    assert all(b["resized"] == (50, 73) for b in last)
    assert [b["box"][:2] for b in last[5::6]] == [(0, 0), (0, 11), (0, 23)]
    # Portrait 60x41: top / centre / bottom squares.
    portrait = crops.crop_boxes(60, 41, 144, S)[18:36]
    assert [b["box"] for b in portrait[5::6]] == [(0, 0, 41), (9, 0, 41), (19, 0, 41)]
    assert [b["box"] for b in portrait[6:11]] == [
        (9, 0, S), (9, 9, S), (18, 0, S), (18, 9, S), (13, 4, S)]


@pytest.mark.parametrize("shape", [(41, 60), (60, 41)])
def test_unresized_crops_hold_their_exact_coordinates(shape):
    """At the scale equal to the shorter side (41) nothing is resized: each
    crop's pixels are exactly the integer coordinates of its box."""
    out = crops.make_crops(coordinate_image(*shape), 144, S).numpy()
    boxes = crops.crop_boxes(*shape, 144, S)
    for i in range(18, 36):
        top, left, size = boxes[i]["box"]
        if size != S:
            continue
        rows, cols = np.meshgrid(top + np.arange(S), left + np.arange(S), indexing="ij")
        np.testing.assert_array_equal(out[i, ..., 0], rows)
        np.testing.assert_array_equal(out[i, ..., 1], cols)
        np.testing.assert_array_equal(out[i + 72, ..., 1], cols[:, ::-1])


@pytest.mark.parametrize("shape", [(41, 60), (60, 41), (37, 37), (33, 90)])
@pytest.mark.parametrize("n", [1, 10, 144])
def test_every_crop_matches_its_box(shape, n):
    out = crops.make_crops(coordinate_image(*shape), n, S).numpy()
    for i, box in enumerate(crops.crop_boxes(*shape, n, S)):
        np.testing.assert_allclose(out[i, ..., :2], expected_crop(*shape, box), atol=2e-3,
                                   err_msg=f"crop {i}: {box}")
        np.testing.assert_array_equal(out[i, ..., 2], 7.0)


@pytest.mark.parametrize("n", [10, 144])
def test_mirrors_are_exact(n):
    image = np.random.RandomState(0).uniform(0, 255, (45, 70, 3)).astype(np.float32)
    out = crops.make_crops(image, n, S).numpy()
    np.testing.assert_array_equal(out[n // 2:], out[: n // 2, :, ::-1])


def test_single_and_ten_crop_centre_are_eval_preprocess():
    image = np.random.RandomState(1).randint(0, 256, (47, 63, 3)).astype(np.uint8)
    reference = preprocessing.eval_preprocess(image, S).numpy()
    np.testing.assert_array_equal(crops.make_crops(image, 1, S)[0], reference)
    np.testing.assert_array_equal(crops.make_crops(image, 10, S)[4], reference)


def test_inputs_uint8_bytes_and_grayscale():
    image = np.random.RandomState(2).randint(0, 256, (40, 52, 3)).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    from_bytes = crops.make_crops(tf.constant(buffer.getvalue()), 144, S)
    np.testing.assert_array_equal(from_bytes, crops.make_crops(image, 144, S))
    gray = crops.make_crops(image[..., :1], 10, S).numpy()
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])


def test_batch_crops_flattens_in_image_order():
    rng = np.random.RandomState(3)
    images = rng.randint(0, 256, (3, 36, 50, 3)).astype(np.uint8)
    batch = crops.batch_crops(images, 10, S).numpy()
    assert batch.shape == (30, S, S, 3)
    for i in range(3):
        np.testing.assert_array_equal(batch[10 * i: 10 * (i + 1)],
                                      crops.make_crops(images[i], 10, S))


def test_works_inside_tf_data_with_unknown_shapes():
    images = [coordinate_image(41, 60), coordinate_image(60, 41)]
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(images), output_signature=tf.TensorSpec([None, None, 3], tf.float32))
    got = [c.numpy() for c in dataset.map(lambda x: crops.make_crops(x, 144, S))]
    for image, out in zip(images, got):
        np.testing.assert_array_equal(out, crops.make_crops(image, 144, S))


@pytest.mark.parametrize("bad", [0, 5, 12, True, "10"])
def test_rejects_unknown_crop_sets(bad):
    with pytest.raises(ValueError, match="n_crops"):
        crops.make_crops(coordinate_image(40, 40), bad, S)


@pytest.mark.parametrize("n, count", [(1, 1), (10, 5), (144, 72)])
def test_without_mirrors_keeps_the_unmirrored_half(n, count):
    image = coordinate_image(41, 60)
    full = crops.make_crops(image, n, S).numpy()
    half = crops.make_crops(image, n, S, mirror=False).numpy()
    assert crops.crop_count(n, mirror=False) == count == len(half)
    np.testing.assert_array_equal(half, full[:count])
    assert crops.crop_boxes(41, 60, n, S, mirror=False) == crops.crop_boxes(41, 60, n, S)[:count]
    assert crops.batch_crops(image[None], n, S, mirror=False).shape == (count, S, S, 3)
