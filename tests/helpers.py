"""Test helpers, imported as `import helpers as fx`: images, folders, a small model, subprocesses."""
import importlib.util
import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_googlenet import GoogLeNet
from keras_googlenet.data import preprocessing


# ---------------------------------------------------------------------------
# Images and folders.
# ---------------------------------------------------------------------------
def encode(image, fmt="PNG", mode=None, **save_kwargs):
    """Encodes a uint8 array or PIL image with Pillow (`mode` e.g. "L", "RGBA")."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if mode is not None:
        image = image.convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_kwargs)
    return buffer.getvalue()


def coordinate_image(height, width, dtype=np.uint8):
    """An image whose red channel is the row and green channel the column."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(dtype)


def photo_like(height, width, seed):
    """A smooth, textured RGB uint8 image (gradients plus noise), not flat."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [
        127 + 100 * np.sin(2 * np.pi * (rng.uniform(0.5, 3) * x + rng.uniform(0.5, 3) * y
                                        + rng.uniform()))
        for _ in range(3)
    ]
    image = np.stack(channels, axis=-1) + rng.normal(0, 12, (height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_file(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    return path


def write_class_folder(root, num_classes=3, per_class=4, size=(24, 32), fmt_cycle=None):
    """Writes root/class_<k>/<i>.<ext> images; the colour encodes the class.

    Returns:
        dict {path: label}.
    """
    fmt_cycle = fmt_cycle or [("JPEG", "jpg"), ("PNG", "png"), ("JPEG", "JPEG"), ("BMP", "bmp")]
    written = {}
    for label in range(num_classes):
        for i in range(per_class):
            fmt, ext = fmt_cycle[i % len(fmt_cycle)]
            image = photo_like(*size, seed=100 * label + i)
            path = os.path.join(root, f"class_{label}", f"img_{i}.{ext}")
            written[write_file(path, encode(image, fmt))] = label
    return written


def write_bad_folder(root):
    """A folder of awkward files.

    Returns:
        (good, bad): lists of file names (relative to root) that should decode
        and that should be skipped.
    """
    rgb = photo_like(20, 30, seed=7)
    frame1 = Image.new("RGB", (16, 12), (255, 0, 0))
    frame2 = Image.new("RGB", (16, 12), (0, 0, 255))
    png16 = tf.io.encode_png(tf.constant(np.full((9, 11, 3), 40000, np.uint16))).numpy()
    good = {
        "a/cmyk.jpg": encode(Image.fromarray(rgb).convert("CMYK"), "JPEG"),
        "a/deep16.png": png16,
        "a/rgba.PNG": encode(Image.fromarray(rgb).convert("RGBA"), "PNG"),
        "b/gray.jpeg": encode(Image.fromarray(rgb).convert("L"), "JPEG"),
        "b/anim.gif": encode(frame1, "GIF", save_all=True, append_images=[frame2]),
        "b/tiny.png": encode(np.full((1, 1, 3), 9, np.uint8), "PNG"),
        "b/fine.jpg": encode(rgb, "JPEG"),
    }
    bad = {
        "a/truncated.jpg": encode(rgb, "JPEG")[:200],
        "a/not_an_image.jpg": b"this is a text file, not a picture\n",
        "b/empty.png": b"",
    }
    for name, data in {**good, **bad}.items():
        write_file(os.path.join(root, name), data)
    # Not an image extension: ignored, neither used nor reported.
    write_file(os.path.join(root, "a", "notes.txt"), b"ignore me")
    return sorted(good), sorted(bad)


# ---------------------------------------------------------------------------
# A small model and its reference outputs (export, predict, convert tests).
# ---------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------
# A Python subprocess under another Keras backend (KERAS_BACKEND is read once,
# at import, so each backend needs its own process).
# ---------------------------------------------------------------------------
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the repository


def run_under(backend, args, timeout=600, env=None):
    """Runs `python ARGS` with KERAS_BACKEND=backend from the repository root;
    returns the completed process (skips when the backend is not installed)."""
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    environ = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=ROOT,
                   TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    environ.update(env or {})
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=environ, capture_output=True,
                          text=True, timeout=timeout)


def result_of(process):
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    line = [l for l in process.stdout.splitlines() if l.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])
