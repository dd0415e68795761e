"""Helpers shared by the data tests: small images and folders written on disk."""
import io
import os

import numpy as np
import tensorflow as tf
from PIL import Image


def encode(image, fmt="PNG", **kwargs):
    """Encodes a PIL image or uint8 array with PIL; returns the bytes."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
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
