"""The embedded source: scikit-learn's bundled handwritten digits (no network)."""
import functools

import numpy as np
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet.data.sources.base import Source

EMBEDDED_IMAGE_SIZE = 32
EMBEDDED_SPLITS = ("train", "validation")


@functools.lru_cache(maxsize=1)
def _embedded_arrays():
    """Renders the 1797 8x8 digits as tinted 32x32 RGB uint8 images."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    gray = digits.images.astype(np.float32) * (255.0 / 16.0)  # 0..16 -> 0..255
    # Bicubic upscaling keeps the strokes smooth instead of 4x4 blocks.
    big = tf.image.resize(gray[..., None], [EMBEDDED_IMAGE_SIZE] * 2, method="bicubic")
    big = np.clip(big.numpy(), 0.0, 255.0)
    # A fixed colour per image (light ink on black) so that the colour
    # augmentations have something to act on; the digit stays the signal.
    tint = np.random.RandomState(0).uniform(0.5, 1.0, size=(len(big), 1, 1, 3))
    images = np.round(big * tint).astype(np.uint8)
    labels = digits.target.astype(np.int32)
    index = np.arange(len(labels))
    train, val = train_test_split(index, test_size=0.2, stratify=labels, random_state=0)
    return images, labels, {"train": np.sort(train), "validation": np.sort(val)}


def embedded_source(split="train"):
    """scikit-learn's bundled handwritten digits as 32x32 RGB images.

    1797 images, 10 classes, shipped inside the scikit-learn wheel (no
    network). A stratified 80/20 train/validation split with a fixed seed.

    Args:
        split: "train" (1437 images) or "validation" (360 images).

    Returns:
        A `Source` of decoded uint8 `(32, 32, 3)` images.
    """
    aliases = {"val": "validation", "test": "validation"}
    split = aliases.get(split, split)
    if split not in EMBEDDED_SPLITS:
        raise ValueError(
            f"The embedded dataset has splits {EMBEDDED_SPLITS}. Received: split={split!r}"
        )
    images, labels, splits = _embedded_arrays()
    index = splits[split]
    images, labels = images[index], labels[index]

    def select(indices):
        chosen_images, chosen_labels = images[indices], labels[indices]

        def make_dataset(num_shards, shard_index):
            ds = tf.data.Dataset.from_tensor_slices((chosen_images, chosen_labels))
            return ds.shard(num_shards, shard_index)

        return make_dataset

    return Source(
        name=f"embedded:{split}",
        make_dataset=select(np.arange(len(labels))),
        num_classes=10,
        class_names=[str(i) for i in range(10)],
        num_examples=len(labels),
        labels=labels,
        select=select,
    )
