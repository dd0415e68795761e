"""The one place that owns image preprocessing.

Training augmentation, evaluation cropping and the exported serving signature
all call into this module, so the three cannot drift apart (the TF Model
Garden habit). Pixel values enter as RGB in [0, 255].
"""
import numbers
import os

import keras
import tensorflow as tf
from keras.applications import imagenet_utils

from keras_googlenet.data import image_header
from keras_googlenet.models import contract

# The modes and defaults are the model contract's (models/contract.py): Caffe's
# bvlc_googlenet was trained on BGR images minus the ImageNet means, unscaled.
DEFAULT_MODE = contract.DEFAULT_NORMALIZATION
MODES = contract.NORMALIZATIONS


def preprocess_input(x, data_format=None, mode=DEFAULT_MODE):
    """Normalises RGB images in [0, 255] the way GoogLeNet's weights expect.

    Args:
        x: float tensor or numpy array of RGB images in [0, 255], NHWC
            (or NCHW with `data_format="channels_first"`).
        data_format: `None` (the Keras default) or `"channels_last"` /
            `"channels_first"`.
        mode: `"caffe"` (default: RGB->BGR, minus the ImageNet means
            103.939/116.779/123.68, no scaling; the convention of the Caffe
            bvlc_googlenet weights and of models trained with this package),
            `"torch"` (scaled to [0, 1], minus mean, divided by std, the
            torchvision convention) or `"tf"` (scaled to [-1, 1]).

    Returns:
        The normalised images, float32.
    """
    if mode not in MODES:
        raise ValueError(
            f"`mode` must be one of {MODES}. Received: mode={mode!r}"
        )
    if isinstance(x, tf.Tensor) and keras.backend.backend() != "tensorflow":
        # A tf.data pipeline feeding a JAX or PyTorch model: Keras' ops are
        # the other backend's and cannot take (symbolic) TensorFlow tensors.
        return _preprocess_tf(x, data_format, mode)
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode=mode)


def _preprocess_tf(x, data_format, mode):
    """`imagenet_utils.preprocess_input` in TensorFlow ops, the same
    arithmetic in the same order (identical float32 results)."""
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        x = tf.cast(x, keras.backend.floatx())
    if mode == "tf":
        return x / 127.5 - 1.0
    axis = 1 if data_format == "channels_first" and x.shape.rank == 4 else (
        0 if data_format == "channels_first" else -1)
    shape = [1] * x.shape.rank
    shape[axis] = 3
    if mode == "torch":
        x = x / 255.0
        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    else:
        x = tf.reverse(x, axis=[axis])  # RGB -> BGR
        mean, std = [103.939, 116.779, 123.68], None
    x = x + tf.reshape(tf.constant([-m for m in mean], x.dtype), shape)
    if std is not None:
        x = x / tf.reshape(tf.constant(std, x.dtype), shape)
    return x


# ---------------------------------------------------------------------------
# Decoding and evaluation cropping. Everything below is graph-compatible: it
# runs eagerly, inside `tf.data.Dataset.map` and inside a `tf.function`
# serving signature alike.
# ---------------------------------------------------------------------------
DEFAULT_CROP_FRACTION = contract.DEFAULT_CROP_FRACTION  # shorter side to 256, crop 224


def decode_image(encoded, channels=3, max_pixels=image_header.DEFAULT_MAX_PIXELS):
    """Decodes JPEG, PNG, GIF, BMP or WebP bytes to a `uint8` `(H, W, channels)` image.

    Handles the awkward cases found in real folders: 16-bit PNGs are scaled
    to 8 bits, grayscale is replicated to RGB, the alpha channel of RGBA
    images is dropped, only the first frame of an animated GIF is kept, and
    CMYK JPEGs are converted to RGB by TensorFlow's JPEG decoder.

    The header is read first (`image_header.checked`): an image declaring
    more than `max_pixels` pixels, or a JPEG with a marker out of place, fails
    with `InvalidArgumentError` before the decoder allocates anything.

    Args:
        encoded: scalar `tf.string` tensor with the encoded image.
        channels: number of output channels (3 for RGB).
        max_pixels: largest height x width decoded; None skips the header check
            (for callers that made it already).

    Returns:
        A `uint8` tensor of shape `(H, W, channels)`.
    """
    if max_pixels is not None:
        encoded = image_header.checked(encoded, max_pixels)
    image = tf.io.decode_image(
        encoded, channels=channels, dtype=tf.uint8, expand_animations=False
    )
    image.set_shape([None, None, channels])
    return image


def ensure_rgb(image):
    """Makes a decoded `(H, W, C)` image 3-channel (gray -> RGB, RGBA -> RGB).

    Args:
        image: a `(H, W, C)` tensor with a statically known `C` of 1, 3 or 4.

    Returns:
        The `(H, W, 3)` image, same dtype.
    """
    channels = image.shape[-1]
    if channels == 3:
        return image
    if channels == 1:
        return tf.image.grayscale_to_rgb(image)
    if channels == 4:
        return image[..., :3]
    raise ValueError(
        "Expected a decoded image with 1, 3 or 4 channels (static shape). "
        f"Received: image.shape={image.shape}"
    )


def to_rgb_image(image):
    """Returns a `(H, W, 3)` image from either encoded bytes or a tensor.

    Args:
        image: scalar `tf.string` (encoded bytes) or a decoded `(H, W, C)`
            tensor.

    Returns:
        The decoded 3-channel image (`uint8` for bytes, else input dtype).
    """
    image = tf.convert_to_tensor(image)
    if image.dtype == tf.string:
        return decode_image(image)
    return ensure_rgb(image)


def check_image_size(image_size):
    """Raises a ValueError unless `image_size` is a positive int."""
    # numbers.Integral also accepts numpy ints; bool is excluded on purpose.
    if (not isinstance(image_size, numbers.Integral) or isinstance(image_size, bool)
            or image_size < 1):
        raise ValueError(
            f"`image_size` must be a positive int. Received: image_size={image_size!r}"
        )


def resize_shorter(image, shorter, exact=False):
    """Bilinear resize (no antialiasing) of a float `(H, W, C)` image whose
    shorter side becomes `shorter`, the longer one in proportion.

    The longer side is rounded, and never below `shorter`. Two roundings are
    kept, each one's results published (exported signatures, crop sets):
    `exact=False` takes `round(long * float32(shorter / short))`, the
    evaluation crop's (`eval_preprocess`, the 10 crops); `exact=True` takes
    `round(long * shorter / short)` in float64, the 144 crops' (and the
    numbers of `crops.crop_boxes`). They differ by one pixel for a few sizes
    (e.g. 448x623 to 288).

    Args:
        image: float `(H, W, C)` tensor.
        shorter: the new shorter side (int).
        exact: which rounding of the longer side (see above).

    Returns:
        `(resized, new_h, new_w)`: the float32 image and its int32 sides.
    """
    shape = tf.shape(image)
    if exact:
        h, w = tf.cast(shape[0], tf.float64), tf.cast(shape[1], tf.float64)
        long_h = tf.maximum(tf.cast(tf.round(h * shorter / w), tf.int32), shorter)
        long_w = tf.maximum(tf.cast(tf.round(w * shorter / h), tf.int32), shorter)
        portrait = shape[0] > shape[1]
        new_h = tf.where(portrait, long_h, shorter)
        new_w = tf.where(portrait, shorter, long_w)
    else:
        height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
        scale = shorter / tf.minimum(height, width)
        new_h = tf.maximum(tf.cast(tf.round(height * scale), tf.int32), shorter)
        new_w = tf.maximum(tf.cast(tf.round(width * scale), tf.int32), shorter)
    resized = tf.image.resize(image, tf.stack([new_h, new_w]), method="bilinear")
    return resized, new_h, new_w


def eval_preprocess(image, image_size, crop_fraction=DEFAULT_CROP_FRACTION):
    """Resizes the shorter side and takes the central `image_size` square.

    The shorter side goes to `round(image_size / crop_fraction)` (256 for
    224) with bilinear resizing, then the central `image_size x image_size`
    crop is taken. Values are not normalised: call `preprocess_input` next.

    Args:
        image: decoded `(H, W, C)` image (any real dtype, values in [0, 255])
            or a scalar `tf.string` of encoded bytes.
        image_size: output height and width (int).
        crop_fraction: fraction of the resized shorter side kept, in (0, 1].

    Returns:
        A float32 `(image_size, image_size, 3)` tensor with values in [0, 255].
    """
    check_image_size(image_size)
    if not 0.0 < crop_fraction <= 1.0:
        raise ValueError(
            "`crop_fraction` must be in (0, 1]. "
            f"Received: crop_fraction={crop_fraction!r}"
        )
    image = tf.cast(to_rgb_image(image), tf.float32)
    image, new_h, new_w = resize_shorter(image, int(round(image_size / crop_fraction)))
    top = (new_h - image_size) // 2
    left = (new_w - image_size) // 2
    image = image[top : top + image_size, left : left + image_size, :]
    image.set_shape([image_size, image_size, 3])
    return image


def eval_preprocess_bytes(encoded, image_size, crop_fraction=DEFAULT_CROP_FRACTION):
    """`eval_preprocess` from encoded image bytes (for serving signatures).

    Args:
        encoded: scalar `tf.string` with a JPEG/PNG/GIF/BMP image.
        image_size: output height and width (int).
        crop_fraction: fraction of the resized shorter side kept.

    Returns:
        A float32 `(image_size, image_size, 3)` tensor with values in [0, 255].
    """
    return eval_preprocess(decode_image(encoded), image_size, crop_fraction)


def eval_crops(images, image_size, crop_fraction=DEFAULT_CROP_FRACTION):
    """Image files and/or encoded images as their evaluation centre crops.

    The one way from files to what a model is evaluated on: each is read,
    decoded (`decode_image`: its header is checked first) and cropped by
    `eval_preprocess`.

    Args:
        images: file paths (str or PathLike) and/or encoded image bytes.
        image_size: output height and width (int).
        crop_fraction: fraction of the resized shorter side kept.

    Returns:
        A float32 `(len(images), image_size, image_size, 3)` tensor with
        values in [0, 255], not normalised (`normalize` does that).

    Raises:
        ValueError: "PATH: could not decode the image: REASON" (for bytes,
            "image N: ..." with N its index), for the first image that
            cannot be decoded.
    """
    crops = []
    for index, image in enumerate(images):
        name = f"image {index}"
        if isinstance(image, (str, os.PathLike)):
            name = os.fspath(image)
            with open(image, "rb") as f:
                image = f.read()
        try:
            crops.append(eval_preprocess(tf.constant(image), image_size, crop_fraction))
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(
                f"{name}: could not decode the image: {error.message.strip()}") from None
    return tf.stack(crops)


def normalize(images, mode=DEFAULT_MODE):
    """`preprocess_input` on a float batch, or identity when `mode` is None.

    Args:
        images: float32 images in [0, 255], NHWC.
        mode: one of `MODES`, or `None` to keep [0, 255] (for visualisation).

    Returns:
        The normalised float32 images.
    """
    if mode is None:
        return images
    # NHWC whatever Keras' image_data_format() says: the pipeline changes
    # the layout after this.
    return preprocess_input(images, data_format="channels_last", mode=mode)
