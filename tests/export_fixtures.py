"""Shared helpers of the export, predict and convert tests: a small model and
encoded test images made with Pillow."""
import io

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from keras_googlenet import GoogLeNet
from keras_googlenet.data import preprocessing

IMAGE_SIZE = 64
CLASSES = 5


def small_model(seed=0, size=IMAGE_SIZE, **kwargs):
    """A 5-class GoogLeNet on 64x64 inputs (auxiliary heads need >= 65) with
    seeded random weights."""
    keras.utils.set_random_seed(seed)
    return GoogLeNet(classes=CLASSES, input_shape=(size, size, 3), **kwargs)


def random_array(height, width, channels=3, seed=0):
    """Smooth random uint8 pixels (noise JPEG-compresses badly)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(height // 8, 1), max(width // 8, 1), channels))
    image = Image.fromarray(small.astype(np.uint8).squeeze()).resize((width, height))
    return np.asarray(image)


def encode(array, fmt="JPEG", mode=None):
    """Encodes a uint8 array with Pillow (`mode` e.g. "L", "RGBA", "P")."""
    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def jpeg(height=80, width=100, seed=0):
    return encode(random_array(height, width, seed=seed), "JPEG")


def reference_probabilities(model, encoded_images, normalization="caffe"):
    """The in-memory model's output through the package's preprocessing."""
    size = model.input_shape[1]
    crops = [
        preprocessing.eval_preprocess(preprocessing.decode_image(tf.constant(data)), size)
        for data in encoded_images
    ]
    images = preprocessing.normalize(tf.stack(crops), normalization)
    return keras.ops.convert_to_numpy(model(images, training=False))
