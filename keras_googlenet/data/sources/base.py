"""The `Source` record every kind builds, and the check of image files
(`check_image_file`) that folder sources and the TFRecord writer run before
reading them."""
import concurrent.futures
import dataclasses
import functools
import os
from typing import Callable, Optional

import numpy as np
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet.data import image_header
from keras_googlenet.data import preprocessing

ON_ERROR = ("skip", "raise")
VALIDATE = ("header", "full", "none")


@dataclasses.dataclass
class Source:
    """A dataset of `(image, label)` pairs plus what is known about it.

    Attributes:
        name: human-readable description (the spec).
        make_dataset: `fn(num_shards, shard_index) -> tf.data.Dataset` of
            `(image, label)`; sharding happens as early as the kind allows
            (file lists before reading).
        num_classes: number of classes; labels are in `[0, num_classes)`.
        class_names: list of class names, or None.
        num_examples: number of examples if known, else None.
        skipped: files that were found but cannot be decoded (folder sources).
        skip_decode_errors: whether the pipeline should drop images that fail
            to decode at run time (a safety net behind the folder scan).
        holdout: for the two parts of a folder split by `folder_holdout`,
            how it was split (folder, fraction, seed, sizes); else None.
        labels: every example's label, in dataset order, when known without
            reading the data (embedded, folders); else None.
        select: `fn(indices) -> make_dataset` of only the examples at
            `indices` (in dataset order), reading none of the others; None
            where the kind cannot (`subset` then filters the whole stream).
        subset: for a `subset` of another source, what it keeps (classes,
            examples per class, seed); else None.
    """

    name: str
    make_dataset: Callable[[int, int], tf.data.Dataset]
    num_classes: int
    class_names: Optional[list] = None
    num_examples: Optional[int] = None
    skipped: list = dataclasses.field(default_factory=list)
    skip_decode_errors: bool = False
    holdout: Optional[dict] = None
    labels: Optional[np.ndarray] = None
    select: Optional[Callable] = None
    subset: Optional[dict] = None

    def dataset(self, num_shards=1, shard_index=0):
        """Returns the `(image, label)` dataset, optionally one shard of it.

        Args:
            num_shards: number of disjoint shards.
            shard_index: which shard, in `[0, num_shards)`.

        Returns:
            A `tf.data.Dataset` of `(image, int32 label)`.
        """
        if not 0 <= shard_index < num_shards:
            raise ValueError(
                "`shard_index` must be in [0, num_shards). "
                f"Received: num_shards={num_shards}, shard_index={shard_index}"
            )
        ds = self.make_dataset(num_shards, shard_index)
        if ds.element_spec[0].dtype != tf.string:
            return ds
        # Refuse decompression bombs from their header, before any decoder
        # (JPEG crops are decoded by `augment` without `decode_image`).
        return ds.map(lambda image, label: (image_header.checked(image), label),
                      num_parallel_calls=tf.data.AUTOTUNE)


def check_image_file(path, validate="header"):
    """Returns None if the file looks decodable, else the reason why not.

    Args:
        path: image file path.
        validate: "header" (PIL reads the header, plus a JPEG end-of-image
            marker check that catches truncated files; cheap, no full decode)
            or "full" (TensorFlow decodes the whole image: exact, costly).

    Returns:
        None, or a short string saying what is wrong.
    """
    try:
        if validate == "full":
            preprocessing.decode_image(tf.io.read_file(path))
            return None
        # PIL rather than the in-graph `image_header`: it reads a few KiB of
        # each file, where the graph check needs the whole file; that check
        # runs anyway on every image read (`Source.dataset`).
        from PIL import Image

        with Image.open(path) as image:
            fmt = image.format
            if image.width < 1 or image.height < 1:
                return "empty image"
        if fmt not in ("JPEG", "PNG", "BMP", "GIF", "MPO"):
            return f"unsupported format {fmt}"
        if fmt in ("JPEG", "MPO") and not _has_jpeg_end(path):
            return "truncated JPEG (no end-of-image marker)"
        return None
    except Exception as e:  # noqa: BLE001 -- any failure means "not decodable".
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip()


def _has_jpeg_end(path, tail=4096):
    # Encoders may pad after the EOI marker, so look at the last few KiB.
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - tail))
        return b"\xff\xd9" in f.read()


def scan_image_files(paths, validate="header", num_threads=16):
    """Checks files in parallel threads; returns `{path: reason}` of bad ones.

    Args:
        paths: file paths.
        validate: "header", "full" or "none" (see `check_image_file`).
        num_threads: worker threads (I/O bound for "header").

    Returns:
        dict of undecodable paths to the reason.
    """
    if validate not in VALIDATE:
        raise ValueError(f"`validate` must be one of {VALIDATE}. Received: validate={validate!r}")
    if validate == "none":
        return {}
    with concurrent.futures.ThreadPoolExecutor(num_threads) as pool:
        reasons = pool.map(functools.partial(check_image_file, validate=validate), paths)
        return {p: r for p, r in zip(paths, reasons) if r is not None}
