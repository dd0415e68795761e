"""Multi-crop test sets (1, 10 or 144 crops per image) as TensorFlow ops.

The paper's headline ILSVRC 2014 number came from its test protocol
(Szegedy et al. 2015, section 7): 144 crops per image with the softmax
averaged over crops (and over 7 models). This module builds the crops of one
decoded image as a single `[n_crops, S, S, 3]` float32 tensor of RGB values in
[0, 255] (normalisation is left to `preprocessing.normalize`); it is
graph-compatible, so it runs inside `tf.data.Dataset.map` and the crops of a
batch of images are then fed to the model in one call.

Crop sets, for a model size `S` (224 in the paper):

`1`: `preprocessing.eval_preprocess(image, S)`: shorter side resized to
    `round(S / 0.875)` (256 for 224), the central `S x S` crop.

`10`: the same resize (shorter side to `round(S / crop_fraction)`, the
    longer side in proportion), then the four corner `S x S` crops and the
    central one (identical to the 1-crop), then the five of them mirrored.
    Order: top-left, top-right, bottom-left, bottom-right, centre, then the
    same five mirrored left-right.

`144`: the paper's protocol. For each of 4 scales the shorter side is
    resized to `L` in `(256, 288, 320, 352)` for `S = 224`; for another
    model size the scales follow proportionally, `L = round(S * l / 224)`
    (e.g. 91, 103, 114, 126 for `S = 80`; see `scales_for`). From the resized
    image 3 squares of side `L` are taken along the longer side: left,
    centre, right for a landscape image, top, centre, bottom for a portrait
    one (offsets `0`, `(long - L) // 2`, `long - L`; for a square image the
    three coincide and are kept, so every image gets 144 crops). From each
    square come 6 crops: its four corner `S x S` crops, its central `S x S`
    crop (offset `(L - S) // 2`) and the whole square resized to `S x S`.
    Then all 72 are mirrored. Order: scale (small to large), square
    (left/top, centre, right/bottom), crop (top-left, top-right, bottom-left,
    bottom-right, centre, whole square), then the 72 mirrored in that order.
    4 x 3 x 6 x 2 = 144.

Every resize is bilinear without antialiasing, like `eval_preprocess`.
Mirrored crops are exact left-right mirrors of the unmirrored ones
(`crops[n // 2:] == crops[:n // 2, :, ::-1]`).

`mirror=False` keeps only the unmirrored half (5 or 72 crops; 1 is
unchanged), for data that is not left-right symmetric (digits, text): an
option beyond the paper, which always mirrors.

`crop_boxes` gives the same geometry as plain numbers (for documentation,
tests and debugging).
"""
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet.data import preprocessing

CROP_SETS = (1, 10, 144)
# The paper's shorter-side scales for 224x224 crops.
PAPER_SIZE = 224
PAPER_SCALES = (256, 288, 320, 352)
CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")
TEN_CROP_NAMES = CORNERS + ("centre",)
SQUARE_CROP_NAMES = CORNERS + ("centre", "whole")


def check_crop_set(n_crops):
    """Raises a ValueError unless `n_crops` is 1, 10 or 144; returns it."""
    if isinstance(n_crops, bool) or n_crops not in CROP_SETS:
        raise ValueError(f"`n_crops` must be one of {CROP_SETS}. Received: n_crops={n_crops!r}")
    return int(n_crops)


def scales_for(image_size):
    """Shorter-side sizes of the 144-crop protocol for `image_size` crops.

    `round(image_size * l / 224)` for `l` in (256, 288, 320, 352): exactly the
    paper's scales for 224, proportionally scaled otherwise.
    """
    preprocessing.check_image_size(image_size)
    return tuple(int(round(image_size * l / PAPER_SIZE)) for l in PAPER_SCALES)


def ten_crop_resize(image_size, crop_fraction=preprocessing.DEFAULT_CROP_FRACTION):
    """Shorter side of the 10-crop resize: `round(image_size / crop_fraction)`."""
    return int(round(image_size / crop_fraction))


def _resized_shape(height, width, shorter):
    """(new_h, new_w) with the shorter side at `shorter` (numpy / python ints)."""
    if height <= width:
        return shorter, max(int(round(width * shorter / height)), shorter)
    return max(int(round(height * shorter / width)), shorter), shorter


def _crop(image, top, left, size):
    crop = tf.slice(image, tf.stack([top, left, 0]), [size, size, 3])
    crop.set_shape([size, size, 3])
    return crop


def _corner_and_centre(image, height, width, size):
    """The 4 corner and the central `size` crops of `image` (H, W >= size)."""
    bottom, right = height - size, width - size
    zero = tf.zeros([], tf.int32)
    return [
        _crop(image, zero, zero, size),
        _crop(image, zero, right, size),
        _crop(image, bottom, zero, size),
        _crop(image, bottom, right, size),
        _crop(image, bottom // 2, right // 2, size),
    ]


def _with_mirrors(crops):
    crops = tf.stack(crops)
    return tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0)


def _as_float_image(image):
    image = tf.cast(preprocessing.to_rgb_image(image), tf.float32)
    image.set_shape([None, None, 3])
    return image


def ten_crops(image, image_size, crop_fraction=preprocessing.DEFAULT_CROP_FRACTION):
    """The 10 crops of one image: 4 corners + centre, and their mirrors.

    Args:
        image: decoded `(H, W, C)` image (values in [0, 255]) or encoded bytes.
        image_size: crop side `S`.
        crop_fraction: the shorter side is first resized to
            `round(S / crop_fraction)` (256 for 224, as `eval_preprocess`).

    Returns:
        float32 `(10, S, S, 3)`.
    """
    preprocessing.check_image_size(image_size)
    image = _as_float_image(image)
    if not 0.0 < crop_fraction <= 1.0:
        raise ValueError(
            f"`crop_fraction` must be in (0, 1]. Received: crop_fraction={crop_fraction!r}")
    # The resize of `eval_preprocess`, so that the centre crop is the 1-crop.
    resized, new_h, new_w = preprocessing.resize_shorter(
        image, ten_crop_resize(image_size, crop_fraction))
    return _with_mirrors(_corner_and_centre(resized, new_h, new_w, image_size))


def paper_crops(image, image_size):
    """The paper's 144 crops of one image (see the module docstring).

    Args:
        image: decoded `(H, W, C)` image (values in [0, 255]) or encoded bytes.
        image_size: crop side `S`; the scales are `scales_for(S)`.

    Returns:
        float32 `(144, S, S, 3)`.
    """
    preprocessing.check_image_size(image_size)
    image = _as_float_image(image)
    crops = []
    for shorter in scales_for(image_size):
        resized, new_h, new_w = preprocessing.resize_shorter(image, shorter, exact=True)
        portrait = new_h > new_w
        longer = tf.maximum(new_h, new_w)
        for offset in (tf.zeros([], tf.int32), (longer - shorter) // 2, longer - shorter):
            top = tf.where(portrait, offset, 0)
            left = tf.where(portrait, 0, offset)
            square = _crop(resized, top, left, shorter)
            edge = tf.constant(shorter, tf.int32)
            crops.extend(_corner_and_centre(square, edge, edge, image_size))
            whole = tf.image.resize(square, [image_size, image_size], method="bilinear")
            crops.append(whole)
    return _with_mirrors(crops)


def single_crop(image, image_size, crop_fraction=preprocessing.DEFAULT_CROP_FRACTION):
    """`eval_preprocess` as a `(1, S, S, 3)` crop set."""
    return preprocessing.eval_preprocess(image, image_size, crop_fraction)[None]


def crop_count(n_crops, mirror=True):
    """How many crops `make_crops(..., n_crops, mirror=mirror)` returns."""
    n_crops = check_crop_set(n_crops)
    return n_crops if mirror or n_crops == 1 else n_crops // 2


def make_crops(image, n_crops, image_size, crop_fraction=preprocessing.DEFAULT_CROP_FRACTION,
               mirror=True):
    """The `n_crops` crops (1, 10 or 144) of one image.

    Args:
        image: decoded `(H, W, C)` image with values in [0, 255] (any real
            dtype) or a scalar `tf.string` of encoded bytes.
        n_crops: 1, 10 or 144.
        image_size: crop side `S`.
        crop_fraction: for 1 and 10 crops, the fraction of the resized shorter
            side the central crop keeps (0.875: 224 of 256). Unused by 144.
        mirror: False drops the mirrored half (10 -> 5, 144 -> 72 crops).

    Returns:
        float32 `(crop_count(n_crops, mirror), S, S, 3)`, values in [0, 255],
        not normalised.
    """
    n_crops = check_crop_set(n_crops)
    if n_crops == 1:
        return single_crop(image, image_size, crop_fraction)
    if n_crops == 10:
        out = ten_crops(image, image_size, crop_fraction)
    else:
        out = paper_crops(image, image_size)
    return out if mirror else out[: n_crops // 2]


def batch_crops(images, n_crops, image_size, crop_fraction=preprocessing.DEFAULT_CROP_FRACTION,
                mirror=True):
    """Crops of a batch of same-size images, flattened for one model call.

    Args:
        images: `(B, H, W, C)` images (values in [0, 255]) or a `(B,)`
            `tf.string` batch of encoded images (then sizes may differ).
        n_crops, image_size, crop_fraction, mirror: as in `make_crops`.

    Returns:
        float32 `(B * n, S, S, 3)` with `n = crop_count(n_crops, mirror)`;
        image `i`'s crops are rows `i * n` to `(i + 1) * n - 1`, so a model's
        output reshapes to `(B, n, classes)`.
    """
    count = crop_count(n_crops, mirror)
    images = tf.convert_to_tensor(images)
    crops = tf.map_fn(
        lambda image: make_crops(image, n_crops, image_size, crop_fraction, mirror),
        images,
        fn_output_signature=tf.TensorSpec([count, image_size, image_size, 3], tf.float32),
    )
    return tf.reshape(crops, [-1, image_size, image_size, 3])


# ---------------------------------------------------------------------------
# The same geometry as numbers.
# ---------------------------------------------------------------------------
def crop_boxes(height, width, n_crops, image_size,
               crop_fraction=preprocessing.DEFAULT_CROP_FRACTION, mirror=True):
    """Describes each crop of an `height x width` image, in `make_crops` order.

    Returns:
        A list of `n_crops` dicts with `resized` (the image's `(h, w)` after
        the shorter-side resize), `box` (`(top, left, size)`: the region of the
        resized image that becomes the crop; `size` > S for the 144-crop
        "whole square" crops, which are resized to S), `name` and `mirrored`.
    """
    n_crops = check_crop_set(n_crops)
    preprocessing.check_image_size(image_size)
    s = image_size
    if n_crops in (1, 10):
        new_h, new_w = _resized_shape(height, width, ten_crop_resize(s, crop_fraction))
        new_h, new_w = max(new_h, s), max(new_w, s)
        centre = ((new_h - s) // 2, (new_w - s) // 2, s)
        if n_crops == 1:
            return [dict(resized=(new_h, new_w), box=centre, name="centre", mirrored=False)]
        corners = [(0, 0, s), (0, new_w - s, s), (new_h - s, 0, s), (new_h - s, new_w - s, s)]
        boxes = [dict(resized=(new_h, new_w), box=b, name=n, mirrored=False)
                 for n, b in zip(TEN_CROP_NAMES, corners + [centre])]
    else:
        boxes = []
        for shorter in scales_for(s):
            new_h, new_w = _resized_shape(height, width, shorter)
            portrait = new_h > new_w
            longer = max(new_h, new_w)
            for square_name, offset in zip(("first", "centre", "last"),
                                           (0, (longer - shorter) // 2, longer - shorter)):
                top, left = (offset, 0) if portrait else (0, offset)
                d, c = shorter - s, (shorter - s) // 2
                inner = [(0, 0, s), (0, d, s), (d, 0, s), (d, d, s), (c, c, s), (0, 0, shorter)]
                for name, (t, l, size) in zip(SQUARE_CROP_NAMES, inner):
                    boxes.append(dict(resized=(new_h, new_w), box=(top + t, left + l, size),
                                      name=f"scale{shorter}/{square_name}/{name}",
                                      mirrored=False, scale=shorter))
    if not mirror:
        return boxes
    return boxes + [dict(b, mirrored=True) for b in boxes]

