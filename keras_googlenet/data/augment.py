"""Training-time augmentation for GoogLeNet (paper section 6).

The paper's best recipe: crops covering 8%..100% of the image area with an
aspect ratio in [3/4, 4/3], resized with an interpolation method drawn
uniformly from bilinear/area/nearest/bicubic, plus Howard's (2013)
photometric distortions. Each step can be switched off in `AugmentConfig`.

All randomness comes from stateless ops fed by one per-image seed (shape
`[2]`), so the same seed always gives the same augmented image. The seed is
split into one sub-seed per step, so switching a step off does not change
what the other steps draw.
"""
import dataclasses
import os

import numpy as np
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet.data import preprocessing

INTERPOLATIONS = ("bilinear", "area", "nearest", "bicubic")

# Sub-seed slots, one per random step.
_CROP, _INTERP, _FLIP, _ORDER, _BRIGHT, _CONTRAST, _SAT, _HUE = range(8)
_NUM_SEEDS = 8


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Switches and ranges of the training augmentation.

    Attributes:
        random_crop: sample a crop box (else the whole image is resized).
        area_range: crop area as a fraction of the image area (paper: 8%..100%).
        aspect_ratio_range: crop width / height (paper: 3/4..4/3).
        max_attempts: tries to find a box fitting the image before falling back
            to a central crop.
        fallback_crop_fraction: side of the central square fallback crop, as a
            fraction of the shorter side.
        random_interpolation: draw the resize method uniformly from
            `interpolations` (else always the first one).
        interpolations: resize methods to draw from.
        random_flip: random horizontal flip with probability 1/2.
        photometric: brightness, contrast, saturation and hue in random order.
        brightness_delta: max brightness shift, in [0, 255] units.
        contrast_range: contrast factor range.
        saturation_range: saturation factor range.
        hue_delta: max hue shift, as a fraction of the hue circle (<= 0.5).
    """

    random_crop: bool = True
    area_range: tuple = (0.08, 1.0)
    aspect_ratio_range: tuple = (3.0 / 4.0, 4.0 / 3.0)
    max_attempts: int = 10
    fallback_crop_fraction: float = preprocessing.DEFAULT_CROP_FRACTION
    random_interpolation: bool = True
    interpolations: tuple = INTERPOLATIONS
    random_flip: bool = True
    photometric: bool = True
    # The paper cites Howard (2013) without numbers; these are the values of
    # TF-slim's Inception preprocessing, the usual reading of that recipe.
    brightness_delta: float = 32.0
    contrast_range: tuple = (0.5, 1.5)
    saturation_range: tuple = (0.5, 1.5)
    hue_delta: float = 0.2

    def __post_init__(self):
        lo, hi = self.area_range
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(
                "`area_range` must satisfy 0 < low <= high <= 1. "
                f"Received: area_range={self.area_range!r}"
            )
        lo, hi = self.aspect_ratio_range
        if not 0.0 < lo <= hi:
            raise ValueError(
                "`aspect_ratio_range` must satisfy 0 < low <= high. "
                f"Received: aspect_ratio_range={self.aspect_ratio_range!r}"
            )
        unknown = set(self.interpolations) - set(INTERPOLATIONS)
        if not self.interpolations or unknown:
            raise ValueError(
                f"`interpolations` must be a non-empty subset of {INTERPOLATIONS}. "
                f"Received: interpolations={self.interpolations!r}"
            )


def _split_seed(seed):
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    return tf.random.experimental.stateless_split(seed, num=_NUM_SEEDS)


def sample_crop_box(image_shape, seed, config=AugmentConfig()):
    """Samples the random crop window for an image of the given shape.

    Args:
        image_shape: int tensor `[height, width, channels]` (or `[h, w]`).
        seed: shape `[2]` int seed of this step.
        config: `AugmentConfig`.

    Returns:
        int32 tensor `[offset_y, offset_x, crop_height, crop_width]`.
    """
    shape = tf.cast(image_shape, tf.int32)
    height, width = shape[0], shape[1]
    whole = tf.stack([0, 0, height, width])
    if not config.random_crop:
        return whole
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.stack([height, width, 3]),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        # 0 so that area_range alone bounds the crop area (paper: 8%..100%).
        min_object_covered=0.0,
        aspect_ratio_range=config.aspect_ratio_range,
        area_range=config.area_range,
        max_attempts=config.max_attempts,
        use_image_if_no_bounding_boxes=True,
    )
    box = tf.stack([begin[0], begin[1], size[0], size[1]])
    # When every attempt fails the op returns the whole image. The whole image
    # is a legitimate draw only if its own aspect ratio is in range; otherwise
    # fall back to a central crop, as the TF Model Garden does.
    ratio = tf.cast(width, tf.float32) / tf.cast(height, tf.float32)
    lo, hi = config.aspect_ratio_range
    whole_is_valid = tf.logical_and(ratio >= lo, ratio <= hi)
    failed = tf.logical_and(
        tf.reduce_all(tf.equal(box, whole)), tf.logical_not(whole_is_valid)
    )
    return tf.cond(failed, lambda: _central_box(height, width, config), lambda: box)


def _central_box(height, width, config):
    side = tf.cast(
        tf.cast(tf.minimum(height, width), tf.float32) * config.fallback_crop_fraction,
        tf.int32,
    )
    side = tf.maximum(side, 1)
    return tf.stack([(height - side) // 2, (width - side) // 2, side, side])


def _crop_encoded(encoded, seed, config):
    """Crops encoded bytes; JPEGs are decoded only inside the crop window."""

    def jpeg_branch():
        shape = tf.image.extract_jpeg_shape(encoded)
        box = sample_crop_box(shape, seed, config)
        image = tf.image.decode_and_crop_jpeg(encoded, box, channels=3)
        return image, box

    def other_branch():
        return _crop_decoded(preprocessing.decode_image(encoded), seed, config)

    image, box = tf.cond(tf.io.is_jpeg(encoded), jpeg_branch, other_branch)
    image.set_shape([None, None, 3])
    return image, box


def _crop_decoded(image, seed, config):
    box = sample_crop_box(tf.shape(image), seed, config)
    return image[box[0] : box[0] + box[2], box[1] : box[1] + box[3], :], box


def _resize(image, image_size, seed, config):
    """Resizes to a square with a method drawn uniformly from the config."""
    methods = config.interpolations
    if not config.random_interpolation:
        methods = methods[:1]
    index = tf.random.stateless_uniform(
        [], seed, minval=0, maxval=len(methods), dtype=tf.int32
    )
    branches = [
        # Default-argument binding so each branch keeps its own method.
        lambda m=m: tf.image.resize(image, [image_size, image_size], method=m)
        for m in methods
    ]
    resized = tf.switch_case(index, branches)
    # Bicubic overshoots; keep the [0, 255] contract.
    resized = tf.clip_by_value(resized, 0.0, 255.0)
    resized.set_shape([image_size, image_size, 3])
    return resized, index


def distort_color(image, seeds, config=AugmentConfig()):
    """Howard (2013) photometric distortions, applied in a random order.

    Args:
        image: float32 `(H, W, 3)` image in [0, 255].
        seeds: `[8, 2]` sub-seeds from `_split_seed` (slots `_ORDER`..`_HUE`).
        config: `AugmentConfig`.

    Returns:
        The distorted float32 image, clipped to [0, 255].
    """
    # Work in [0, 1]: the saturation and hue ops convert to HSV, which
    # assumes that range.
    image = image / 255.0
    ops = [
        lambda x: tf.image.stateless_random_brightness(
            x, config.brightness_delta / 255.0, seeds[_BRIGHT]
        ),
        lambda x: tf.image.stateless_random_contrast(
            x, *config.contrast_range, seeds[_CONTRAST]
        ),
        lambda x: tf.image.stateless_random_saturation(
            x, *config.saturation_range, seeds[_SAT]
        ),
        lambda x: tf.image.stateless_random_hue(x, config.hue_delta, seeds[_HUE]),
    ]
    order = tf.argsort(tf.random.stateless_uniform([len(ops)], seeds[_ORDER]))
    for step in range(len(ops)):
        # Clip after each op so the next one (HSV in particular) sees a valid
        # image; slim clips only at the end.
        branches = [lambda f=f: f(image) for f in ops]
        image = tf.clip_by_value(tf.switch_case(order[step], branches), 0.0, 1.0)
    return image * 255.0


def augment_with_info(image, image_size, seed, config=None):
    """Augments one training image and reports the random choices made.

    Args:
        image: scalar `tf.string` of encoded bytes (JPEGs are decoded only
            inside the crop window) or a decoded `(H, W, C)` image in [0, 255].
        image_size: output height and width (int).
        seed: shape `[2]` int seed; the same seed gives the same output.
        config: `AugmentConfig`, default paper recipe.

    Returns:
        `(image, info)`: the float32 `(image_size, image_size, 3)` image in
        [0, 255] (not normalised), and a dict with `"crop_box"` (int32
        `[offset_y, offset_x, height, width]` in the source image),
        `"interpolation"` (int32 index into `config.interpolations`) and
        `"flipped"` (bool).
    """
    config = config or AugmentConfig()
    preprocessing.check_image_size(image_size)
    seeds = _split_seed(seed)
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.string:
        image, box = _crop_encoded(image, seeds[_CROP], config)
    else:
        image = preprocessing.ensure_rgb(image)
        image, box = _crop_decoded(image, seeds[_CROP], config)
    image = tf.cast(image, tf.float32)
    image, interpolation = _resize(image, image_size, seeds[_INTERP], config)
    flipped = tf.constant(False)
    if config.random_flip:
        flipped = tf.random.stateless_uniform([], seeds[_FLIP]) < 0.5
        image = tf.cond(flipped, lambda: tf.reverse(image, axis=[1]), lambda: image)
    if config.photometric:
        image = distort_color(image, seeds, config)
    return image, {"crop_box": box, "interpolation": interpolation, "flipped": flipped}


def augment(image, image_size, seed, config=None):
    """`augment_with_info` without the info: the training map function.

    Args:
        image: encoded bytes or a decoded image, see `augment_with_info`.
        image_size: output height and width (int).
        seed: shape `[2]` int seed.
        config: `AugmentConfig`.

    Returns:
        float32 `(image_size, image_size, 3)` image in [0, 255].
    """
    return augment_with_info(image, image_size, seed, config)[0]


def augmentation_grid(image_paths, path, n=8, seed=0, image_size=224, config=None):
    """Writes a PNG grid: one row per image, the original then `n` augmentations.

    Args:
        image_paths: list of image file paths.
        path: output PNG path.
        n: augmented versions per image.
        seed: int seed; the same seed writes the same grid.
        image_size: size of each cell in pixels.
        config: `AugmentConfig`.

    Returns:
        `path`.
    """
    from PIL import Image  # Only the visualisation needs PIL.

    if not image_paths:
        raise ValueError(
            f"`image_paths` must not be empty. Received: image_paths={image_paths!r}"
        )
    rows = []
    for row, image_path in enumerate(image_paths):
        encoded = tf.io.read_file(image_path)
        cells = [preprocessing.eval_preprocess(encoded, image_size, crop_fraction=1.0)]
        for col in range(n):
            cells.append(augment(encoded, image_size, [seed, row * n + col], config))
        rows.append(np.concatenate([c.numpy() for c in cells], axis=1))
    grid = np.concatenate(rows, axis=0).round().astype(np.uint8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(grid).save(path)
    return path
