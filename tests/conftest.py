"""Shared test set-up: a clean Keras session per test, and the image helpers
(encoded images, class folders, a small model) that the tests build their
data from. Tests use the helpers as `import conftest as fx`."""
import importlib.util
import io
import json
import os
import subprocess
import sys

# Quiet TensorFlow's C++ start-up logs; deterministic ops for exact
# comparisons (Mirrored vs one device, resumed vs uninterrupted runs).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from keras_googlenet import GoogLeNet  # noqa: E402
from keras_googlenet.data import preprocessing  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with a clean Keras session and float32 policy.
    Without a forced garbage collection: with TensorFlow's objects of 400
    tests in the heap, a full collection took ~4 s per test (over 20 minutes
    of the suite); Python's own collector still runs."""
    keras.backend.clear_session(free_memory=False)
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


# A digits model shared by the transfer tests (tests/transfer/).
@pytest.fixture(scope="session")
def digits_model(tmp_path_factory):
    """A small digits model (classes 0-4, 32x32, no auxiliary heads) trained
    once for the tests of this folder: 320 steps, enough for the batch-norm
    moving statistics (momentum 0.99) to forget their initial values, which
    frozen-batch-norm fine-tuning relies on."""
    from keras_googlenet.train import config as config_lib
    from keras_googlenet.train import trainer

    results = trainer.run(config_lib.build(dict(
        classes="0,1,2,3,4", image_size=32, aux_classifiers=False, min_crop_area=0.5,
        ema_momentum=0, epochs=8, steps_per_epoch=40, export_dir="", verbose=0,
        output_dir=str(tmp_path_factory.mktemp("digits_0_4")))))
    print("pretrained on digits 0-4:", results["val"])
    return results["model_path"]


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
