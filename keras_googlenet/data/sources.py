"""Data sources: where (image, label) pairs come from.

A `Source` yields `(image, label)` where `image` is either encoded bytes (a
scalar `tf.string`, decoded later so JPEG crops can be fused with decoding)
or a decoded `uint8` `(H, W, C)` tensor, and `label` is an int32 class index
in `[0, num_classes)`. `data.build_dataset` turns a source into batches.

Specs accepted by `get_source`:
    "embedded"        scikit-learn's bundled handwritten digits (no network).
    "tfds:NAME"       a prepared TensorFlow Datasets dataset.
    "folder:PATH"     one sub-folder per class (or just a directory path).
    "tfrecord:GLOB"   tf.Example files in the TF-slim / Model Garden format.
"""
import collections
import concurrent.futures
import dataclasses
import functools
import logging
import os
import random
import uuid
from typing import Callable, Optional

import numpy as np
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet.data import preprocessing
from keras_googlenet.data.subsets import parse_classes
from keras_googlenet.data import image_header

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
ON_ERROR = ("skip", "raise")
VALIDATE = ("header", "full", "none")
EMBEDDED_IMAGE_SIZE = 32
EMBEDDED_SPLITS = ("train", "validation")


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


def get_source(spec, split="train", data_dir=None, **kwargs):
    """Builds a `Source` from a spec string.

    Args:
        spec: `"embedded"`, `"tfds:NAME"`, `"folder:PATH"` (or a directory
            path), or `"tfrecord:GLOB"`.
        split: split name. Embedded: "train" or "validation"; TFDS: any TFDS
            split string; folder: if `PATH/<split>` exists it is used,
            otherwise PATH itself; tfrecord: unused (the glob selects files).
        data_dir: TFDS data directory (TFDS only).
        **kwargs: passed on to the kind's builder (`folder_source`,
            `tfrecord_source`, `tfds_source`).

    Returns:
        A `Source`.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"`spec` must be a non-empty string. Received: spec={spec!r}")
    kind, _, arg = spec.partition(":")
    if spec == "embedded":
        return embedded_source(split)
    if kind == "tfds" and arg:
        return tfds_source(arg, split, data_dir=data_dir, **kwargs)
    if kind == "tfrecord" and arg:
        return tfrecord_source(arg, **kwargs)
    folder = _folder_root(spec)
    if folder:
        return folder_source(_split_dir(folder, split), **kwargs)
    raise ValueError(
        'Unknown data spec. Expected "embedded", "tfds:NAME", "folder:PATH", '
        f'"tfrecord:GLOB" or an existing directory. Received: spec={spec!r}'
    )


def _folder_root(spec):
    """The directory of a folder spec, or None for the other kinds."""
    kind, _, arg = spec.partition(":")
    if spec == "embedded" or (kind in ("tfds", "tfrecord") and arg):
        return None
    if kind == "folder" and arg:
        return arg
    return spec if os.path.isdir(spec) else None


def train_val_sources(spec, train_split="train", val_split="validation", data_dir=None,
                      holdout_fraction=0.1, holdout_seed=0, **kwargs):
    """The training and validation sources of a training run.

    A folder without a `val_split` sub-folder used to validate on its own
    training images, which says nothing about generalisation. Such a folder
    is now split by `folder_holdout` (a seeded per-class hold-out); with
    `holdout_fraction=0` it still validates on the training images, with a
    warning. TFRecord globs have no splits: they validate on the training
    records, with a warning.

    Args:
        spec: data spec (see `get_source`).
        train_split: training split name.
        val_split: validation split name, or None/"" for no validation.
        data_dir: TFDS data directory.
        holdout_fraction: fraction of each class held out when a folder has
            no `val_split` sub-folder; 0 disables the hold-out.
        holdout_seed: seed of the hold-out draw.
        **kwargs: passed on to the kind's builder.

    Returns:
        `(train, validation)` sources; validation is None without `val_split`.
    """
    folder = _folder_root(spec)
    if folder and val_split and not os.path.isdir(os.path.join(folder, val_split)):
        train_dir = _split_dir(folder, train_split)
        if holdout_fraction:
            return folder_holdout(train_dir, holdout_fraction, holdout_seed, **kwargs)
        train = val = folder_source(train_dir, **kwargs)
    else:
        train = get_source(spec, train_split, data_dir=data_dir, **kwargs)
        if not val_split:
            return train, None
        # A TFRecord glob selects the files: reading them again changes nothing.
        tfrecord = spec.partition(":")[0] == "tfrecord"
        val = train if tfrecord else get_source(spec, val_split, data_dir=data_dir, **kwargs)
    if val.name == train.name:
        logger.warning("Validation reads the training data (%s): its accuracy says nothing "
                       "about unseen images.", train.name)
    return train, val


def source_labels(source):
    """Every label of `source`, in dataset order: known ones as they are,
    else read once from the data (every record: slow for big sets)."""
    if source.labels is not None:
        return np.asarray(source.labels)
    logger.info("Reading every label of %s to take a subset.", source.name)
    labels = source.make_dataset(1, 0).map(lambda image, label: label)
    return np.fromiter(labels.as_numpy_iterator(), np.int64)


def subset(source, classes=None, examples_per_class=None, seed=0):
    """A class subset and/or a few-shot sample of a source.

    Args:
        source: a `Source`.
        classes: class indices to keep (a list or "5,6,7"), in the order of
            the new labels: `[5, 6, 7]` relabels 5 -> 0, 6 -> 1, 7 -> 2, and
            the class names go with them. None keeps every class.
        examples_per_class: K, the number of examples kept of each class,
            drawn with `seed`; None keeps them all.
        seed: the draw of the K examples: the same seed and source give the
            same images, and a class's draw does not depend on the others
            (each class draws from its own `(seed, class)` stream).

    Returns:
        A new `Source` (the same one when nothing is asked); its `subset`
        attribute records what it kept.

    Raises:
        ValueError: naming the flag: a class index out of range, K < 1, or
            a class with fewer than K examples.
    """
    classes = parse_classes(classes)
    if examples_per_class is not None and (
            isinstance(examples_per_class, bool) or not isinstance(examples_per_class, int)
            or examples_per_class < 1):
        raise ValueError("--examples-per-class must be a positive integer. "
                         f"Received: examples_per_class={examples_per_class!r}")
    if classes is None and examples_per_class is None:
        return source
    if classes is not None:
        out = [c for c in classes if c >= source.num_classes]
        if out:
            raise ValueError(
                f"--classes: {out} out of range: {source.name!r} has {source.num_classes} "
                f"classes (0..{source.num_classes - 1}). Received: classes={classes}")
    kept = classes if classes is not None else list(range(source.num_classes))
    labels = source_labels(source)
    chosen = []
    for cls in kept:
        members = np.flatnonzero(labels == cls)
        if examples_per_class is not None:
            if len(members) < examples_per_class:
                name = source.class_names[cls] if source.class_names else cls
                raise ValueError(
                    f"--examples-per-class {examples_per_class}: class {cls} ({name!r}) of "
                    f"{source.name!r} has only {len(members)} examples.")
            rng = np.random.default_rng([seed, cls])
            members = rng.choice(members, examples_per_class, replace=False)
        chosen.append(members)
    # Dataset order (not class order): shuffling is the pipeline's job.
    indices = np.sort(np.concatenate(chosen)).astype(np.int64)
    remap = np.full(source.num_classes, -1, np.int32)
    remap[kept] = np.arange(len(kept), dtype=np.int32)
    new_labels = remap[labels[indices]]
    if source.select is not None:
        inner = source.select(indices)
    else:
        inner = _filtered(source.make_dataset, len(labels), indices)
    table = tf.constant(remap)
    make_dataset = _relabelled(inner, table)

    def select(sub_indices):
        # Positions in this subset are positions `indices[...]` of the parent.
        return _relabelled(source.select(indices[np.asarray(sub_indices, np.int64)]), table)

    description = []
    if classes is not None:
        description.append(f"classes {','.join(map(str, classes))}")
    if examples_per_class is not None:
        description.append(f"{examples_per_class} per class, seed {seed}")
    names = ([source.class_names[c] for c in kept] if source.class_names
             else [str(c) for c in kept])
    return dataclasses.replace(
        source,
        name=f"{source.name} [{'; '.join(description)}]",
        make_dataset=make_dataset,
        num_classes=len(kept),
        class_names=names,
        num_examples=len(indices),
        labels=new_labels,
        select=select if source.select is not None else None,
        subset={"classes": kept, "examples_per_class": examples_per_class, "seed": seed,
                "examples": len(indices), "of": source.name},
    )


def _relabelled(make_dataset, table):
    def relabelled(num_shards, shard_index):
        return make_dataset(num_shards, shard_index).map(
            lambda image, label: (image, tf.gather(table, label)),
            num_parallel_calls=tf.data.AUTOTUNE)
    return relabelled


def _filtered(make_dataset, size, indices):
    """`make_dataset` of only the examples at `indices`, by filtering the
    whole stream (for kinds that cannot read single examples)."""
    keep = np.zeros(size, bool)
    keep[indices] = True
    keep = tf.constant(keep)

    def filtered(num_shards, shard_index):
        ds = make_dataset(1, 0).enumerate()
        ds = ds.filter(lambda i, pair: tf.gather(keep, i))
        return ds.map(lambda i, pair: pair).shard(num_shards, shard_index)

    return filtered


def _split_dir(path, split):
    candidate = os.path.join(path, split) if split else path
    return candidate if os.path.isdir(candidate) else path


# --------------------------------------------------------------------------
# Embedded: scikit-learn's handwritten digits.
# --------------------------------------------------------------------------
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


# --------------------------------------------------------------------------
# TensorFlow Datasets.
# --------------------------------------------------------------------------
_IMAGENET_MANUAL = (
    "ImageNet cannot be downloaded automatically. Place "
    "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in "
    "{data_dir}/downloads/manual/ and run "
    "`tfds build imagenet2012 --data_dir={data_dir}` (or "
    "`tfds.builder('imagenet2012', data_dir=...).download_and_prepare()`)."
)


def tfds_source(name, split="train", data_dir=None, image_key="image", label_key="label"):
    """A prepared TFDS dataset; images stay encoded (decoding is fused later).

    Args:
        name: TFDS name, e.g. "imagenet2012", "cifar10" (optionally with a
            version, "mnist:3.0.1").
        split: TFDS split string, e.g. "train", "validation", "train[:10%]".
        data_dir: TFDS data directory (default: TFDS's own, ~/tensorflow_datasets).
        image_key: image feature name.
        label_key: label feature name (a `ClassLabel`).

    Returns:
        A `Source` of encoded images.

    Raises:
        ValueError: if the dataset is unknown or not prepared in `data_dir`.
    """
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise ValueError(f"Unknown TFDS dataset. Received: name={name!r}. {e}") from None
    label_feature = builder.info.features[label_key]
    try:
        num_examples = builder.info.splits[split].num_examples
    except (KeyError, ValueError):
        num_examples = None  # Unprepared (or mocked) datasets have no split info.

    def as_dataset():
        try:
            return builder.as_dataset(
                split=split,
                shuffle_files=False,
                # Keep the bytes: JPEG decoding is fused with the random crop.
                decoders={image_key: tfds.decode.SkipDecoding()},
            )
        except AssertionError as e:  # TFDS's way of saying "not prepared".
            where = data_dir or "~/tensorflow_datasets"
            if name.startswith("imagenet2012"):
                hint = _IMAGENET_MANUAL.format(data_dir=where)
            else:
                hint = f"Prepare it first: `tfds build {name} --data_dir={where}`."
            raise ValueError(
                f"TFDS dataset {name!r} is not prepared in data_dir={data_dir!r}. {hint} ({e})"
            ) from None

    as_dataset()  # Fail now, not at the first batch, if it is not prepared.

    def make_dataset(num_shards, shard_index):
        ds = as_dataset().shard(num_shards, shard_index)
        return ds.map(
            lambda ex: (ex[image_key], tf.cast(ex[label_key], tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    return Source(
        name=f"tfds:{name}:{split}",
        make_dataset=make_dataset,
        num_classes=label_feature.num_classes,
        class_names=list(label_feature.names),
        num_examples=num_examples,
    )


# --------------------------------------------------------------------------
# Image folders.
# --------------------------------------------------------------------------
def list_image_folder(path):
    """Lists `(file_paths, labels, class_names)` of a class-per-folder tree.

    Class names are the sorted sub-folder names; files are matched by
    extension (jpg, jpeg, png, bmp, gif; case-insensitive), in sorted order.

    Args:
        path: root directory.

    Returns:
        `(paths, labels, class_names)`.
    """
    if not os.path.isdir(path):
        raise ValueError(f"Image folder does not exist. Received: path={path!r}")
    class_names = sorted(
        d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d))
    )
    if not class_names:
        raise ValueError(
            "Image folder has no class sub-folders (expected PATH/<class>/<image>). "
            f"Received: path={path!r}"
        )
    paths, labels = [], []
    for label, name in enumerate(class_names):
        class_dir = os.path.join(path, name)
        for file in sorted(os.listdir(class_dir)):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(os.path.join(class_dir, file))
                labels.append(label)
    if not paths:
        raise ValueError(
            f"Image folder has no image files ({', '.join(IMAGE_EXTENSIONS)}) in its "
            f"class sub-folders {class_names}. Received: path={path!r}"
        )
    return paths, labels, class_names


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


def folder_source(path, on_error="skip", validate="header"):
    """Images in `path/<class_name>/<file>`; class names are sorted folder names.

    The files are checked when the source is built (see `check_image_file`):
    a header check with PIL costs about a file open and a few KiB read, so
    even 100k files take well under a minute on threads; `validate="full"`
    decodes each file with TensorFlow (exact but a full epoch of decoding).
    Undecodable files are skipped with a warning listing them (and listed in
    `Source.skipped`), or raise with `on_error="raise"`. With "skip", images
    that still fail at run time are dropped by the pipeline as a safety net.

    Args:
        path: root directory.
        on_error: "skip" or "raise" for undecodable files.
        validate: "header" (default), "full" or "none".

    Returns:
        A `Source` of encoded images.
    """
    paths, labels, class_names, bad = _decodable_files(path, on_error, validate)
    return _files_source(f"folder:{path}", paths, labels, class_names, bad, on_error)


def _decodable_files(path, on_error, validate):
    """`(paths, labels, class_names, bad)` of the decodable files of a folder."""
    if on_error not in ON_ERROR:
        raise ValueError(f"`on_error` must be one of {ON_ERROR}. Received: on_error={on_error!r}")
    paths, labels, class_names = list_image_folder(path)
    bad = scan_image_files(paths, validate)
    if bad:
        listing = "\n".join(f"  {p}: {r}" for p, r in bad.items())
        if on_error == "raise":
            raise ValueError(
                f"{len(bad)} of {len(paths)} files in {path!r} cannot be decoded "
                f"(pass on_error='skip' to skip them):\n{listing}"
            )
        logger.warning("Skipping %d of %d files in %r that cannot be decoded:\n%s",
                       len(bad), len(paths), path, listing)
    kept = [(p, l) for p, l in zip(paths, labels) if p not in bad]
    if not kept:
        raise ValueError(f"No decodable image in the folder. Received: path={path!r}")
    return [p for p, _ in kept], [l for _, l in kept], class_names, bad


def _files_source(name, paths, labels, class_names, bad, on_error, holdout=None):
    labels = np.array(labels, np.int32)

    def select(indices):
        chosen_paths = [paths[i] for i in indices]
        chosen_labels = labels[indices]

        def make_dataset(num_shards, shard_index):
            ds = tf.data.Dataset.from_tensor_slices((chosen_paths, chosen_labels))
            ds = ds.shard(num_shards, shard_index)  # Shard file names, not images.
            return ds.map(lambda p, l: (tf.io.read_file(p), l),
                          num_parallel_calls=tf.data.AUTOTUNE)

        return make_dataset

    return Source(
        name=name,
        make_dataset=select(np.arange(len(paths))),
        labels=labels,
        select=select,
        num_classes=len(class_names),
        class_names=class_names,
        num_examples=len(paths),
        skipped=sorted(bad),
        skip_decode_errors=on_error == "skip",
        holdout=holdout,
    )


def holdout_mask(labels, fraction, seed):
    """Which examples a seeded per-class hold-out takes for validation.

    Each class gives `round(fraction * n)` of its `n` examples, at least one
    and never all of them (a class of one image stays in training). Each
    class draws from its own `(seed, label)` stream, so adding images to one
    class does not move the hold-out of the others.

    Args:
        labels: int labels, in a fixed (e.g. sorted file) order.
        fraction: in (0, 1).
        seed: int seed; the same seed and labels give the same mask.

    Returns:
        A bool array, True for the held-out examples.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"`fraction` must be in (0, 1). Received: fraction={fraction!r}")
    labels = np.asarray(labels)
    mask = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = min(max(1, round(fraction * len(members))), len(members) - 1)
        rng = np.random.default_rng([seed, int(label)])
        mask[rng.permutation(members)[:count]] = True
    return mask


def folder_holdout(path, fraction=0.1, seed=0, on_error="skip", validate="header"):
    """Splits one image folder into disjoint training and validation sources.

    For folders without a validation split: `holdout_mask` picks the
    validation images per class, the same ones for the same seed and files.

    Args:
        path: root directory (one sub-folder per class).
        fraction: fraction of each class held out, in (0, 1).
        seed: seed of the draw.
        on_error: "skip" or "raise" for undecodable files (see `folder_source`).
        validate: file check, see `folder_source`.

    Returns:
        `(train, validation)` sources; both carry the split in `holdout`.
    """
    paths, labels, class_names, bad = _decodable_files(path, on_error, validate)
    held = holdout_mask(labels, fraction, seed)
    parts = {
        part: ([p for p, h in zip(paths, held) if h == want],
               [l for l, h in zip(labels, held) if h == want])
        for part, want in (("train", False), ("validation", True))
    }
    info = dict(folder=path, fraction=fraction, seed=seed,
                train_examples=len(parts["train"][0]),
                validation_examples=len(parts["validation"][0]))
    counts = collections.Counter(labels)
    alone = [class_names[l] for l, n in counts.items() if n == 1]
    logger.info("%r has no validation split: holding out %d of its %d images for "
                "validation (%g of each class, seed %d).", path,
                info["validation_examples"], len(paths), fraction, seed)
    if alone:
        logger.warning("Classes with a single image stay in training, unvalidated: %s",
                       sorted(alone))
    return tuple(
        _files_source(f"folder:{path} ({part} part of the hold-out)", *parts[part],
                      class_names, bad, on_error, holdout=info)
        for part in ("train", "validation")
    )


# --------------------------------------------------------------------------
# TFRecords of tf.Example (TF-slim / Model Garden format).
# --------------------------------------------------------------------------
_FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.FixedLenFeature([], tf.int64),
}


def _parse_example(record, label_offset):
    ex = tf.io.parse_single_example(record, _FEATURES)
    return ex["image/encoded"], tf.cast(ex["image/class/label"] + label_offset, tf.int32)


def _checked_example(record, file, label_offset, num_classes):
    """Parses a record; a label outside [0, num_classes) fails naming its file."""
    image, label = _parse_example(record, label_offset)
    in_range = tf.logical_and(label >= 0, label < num_classes)
    check = tf.debugging.Assert(in_range, [
        f"Label out of range [0, {num_classes}) after label_offset={label_offset}; "
        "check `num_classes`/`label_offset`. File:", file, "label:", label])
    with tf.control_dependencies([check]):
        return image, tf.identity(label)


def _records(file):
    # Each record keeps its file name, for error messages.
    return tf.data.TFRecordDataset(file).map(lambda record: (record, file))


def read_tfrecord_labels(files, label_offset=0):
    """`{file: labels}` of every record, with `label_offset` added (reads all)."""
    return {
        file: np.fromiter(
            tf.data.TFRecordDataset(file)
            .map(lambda r: _parse_example(r, label_offset)[1])
            .as_numpy_iterator(),
            np.int64,
        )
        for file in files
    }


def _check_scanned_labels(labels_by_file, num_classes, label_offset):
    for file, labels in labels_by_file.items():
        bad = labels[(labels < 0) | (labels >= num_classes)]
        if bad.size:
            raise ValueError(
                f"{file!r} has {bad.size} record(s) with a label outside [0, {num_classes}) "
                f"after label_offset={label_offset} (first: {int(bad[0])}). Declare the "
                "class count with --num-classes and the label base with --label-offset "
                "(-1 for TF-slim's 1-based labels)."
            )


def _log_inferred_classes(pattern, labels, num_classes):
    counts = np.bincount(labels, minlength=num_classes)
    listing = ", ".join(f"{label}: {n}" for label, n in enumerate(counts) if n)
    empty = int(np.sum(counts == 0))
    # Empty classes mean a wrong label or a wrong offset more often than a
    # dataset with gaps: say so loudly.
    level = logging.WARNING if empty else logging.INFO
    logger.log(level, "num_classes inferred as %d (largest label + 1) from %d records of %r; "
               "pass --num-classes to declare it. Records per label: {%s}.%s",
               num_classes, len(labels), pattern, listing,
               f" {empty} of the {num_classes} classes have no record." if empty else "")


def tfrecord_source(pattern, num_classes=None, label_offset=0, class_names=None,
                    num_examples=None, scan=None):
    """TFRecord files of tf.Example with `image/encoded` and `image/class/label`.

    TF-slim's ImageNet converter writes 1-based labels (0 is "background",
    1001 classes); pass `label_offset=-1, num_classes=1000` to read them as
    the usual 0-based 1000 classes. Model Garden's converter writes 0-based
    labels (`label_offset=0`, the default). A label outside
    `[0, num_classes)` after the offset is an error naming its file: a
    ValueError when the records are scanned up front, else a TensorFlow
    error when it is read.

    Args:
        pattern: file glob, e.g. "/data/train-*".
        num_classes: number of classes. If None, it is inferred from the
            largest label (logged with the count of each label): pass it.
        label_offset: added to each stored label.
        class_names: optional class names (`num_classes` defaults to their count).
        num_examples: optional number of examples; counted by a scan.
        scan: read every record's label once now (slow for big sets), to
            count examples and refuse out-of-range labels before training.
            Default: only when `num_classes` must be inferred.

    Returns:
        A `Source` of encoded images.
    """
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise ValueError(f"No TFRecord file matches the pattern. Received: pattern={pattern!r}")
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    if scan is None:
        scan = num_classes is None
    if scan:
        inferred = num_classes is None
        if inferred:
            logger.info("Reading all records of %r to infer num_classes.", pattern)
        labels_by_file = read_tfrecord_labels(files, label_offset)
        labels = np.concatenate(list(labels_by_file.values()))
        if inferred:
            num_classes = max(int(labels.max()) + 1, 1) if labels.size else 0
        _check_scanned_labels(labels_by_file, num_classes, label_offset)
        if inferred and num_classes:
            _log_inferred_classes(pattern, labels, num_classes)
        num_examples = len(labels) if num_examples is None else num_examples
    if num_classes < 1:
        raise ValueError(f"`num_classes` must be >= 1. Received: num_classes={num_classes}")

    def make_dataset(num_shards, shard_index):
        names = tf.data.Dataset.from_tensor_slices(files)
        if len(files) >= num_shards:  # Shard by file: each reader reads less.
            ds = names.shard(num_shards, shard_index).flat_map(_records)
        else:
            ds = names.flat_map(_records).shard(num_shards, shard_index)
        return ds.map(lambda record, file: _checked_example(record, file, label_offset, num_classes),
                      num_parallel_calls=tf.data.AUTOTUNE)

    return Source(
        name=f"tfrecord:{pattern}",
        make_dataset=make_dataset,
        num_classes=num_classes,
        class_names=class_names,
        num_examples=num_examples,
    )


def _bytes_feature(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int64_feature(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def _make_example(encoded, label, class_name, filename):
    fmt = os.path.splitext(filename)[1].lstrip(".").lower()
    return tf.train.Example(features=tf.train.Features(feature={
        "image/encoded": _bytes_feature(encoded),
        "image/format": _bytes_feature(fmt.encode()),
        "image/filename": _bytes_feature(os.path.basename(filename).encode()),
        "image/class/label": _int64_feature(label),
        "image/class/text": _bytes_feature(class_name.encode()),
    }))


def write_tfrecords(folder, output_dir, num_shards=4, prefix="train", label_offset=0,
                    seed=0, on_error="skip", validate="header"):
    """Converts an image folder into `num_shards` TFRecord files.

    Files are stored as-is (no re-encoding), shuffled with `seed` so that each
    shard mixes classes. Shards are written under temporary names and renamed
    only when all are complete, so readers never see half-written files.

    Args:
        folder: image folder (one sub-folder per class).
        output_dir: output directory (created if needed).
        num_shards: number of output files.
        prefix: file name prefix: `{prefix}-00000-of-00004.tfrecord`.
        label_offset: added to the stored labels (1 writes slim-style labels).
        seed: shuffling seed.
        on_error: "skip" or "raise" for undecodable files (see `folder_source`).
        validate: file check, see `folder_source`.

    Returns:
        The list of written file paths.
    """
    if not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(
            f"`num_shards` must be a positive int. Received: num_shards={num_shards!r}"
        )
    source = folder_source(folder, on_error=on_error, validate=validate)
    paths, labels, class_names = list_image_folder(folder)
    skipped = set(source.skipped)
    items = [(p, l) for p, l in zip(paths, labels) if p not in skipped]
    random.Random(seed).shuffle(items)
    tf.io.gfile.makedirs(output_dir)
    final = [
        os.path.join(output_dir, f"{prefix}-{i:05d}-of-{num_shards:05d}.tfrecord")
        for i in range(num_shards)
    ]
    temp = [f"{name}.tmp-{uuid.uuid4().hex}" for name in final]
    try:
        for shard, temp_name in enumerate(temp):
            with tf.io.TFRecordWriter(temp_name) as writer:
                for path, label in items[shard::num_shards]:
                    encoded = tf.io.gfile.GFile(path, "rb").read()
                    example = _make_example(encoded, label + label_offset, class_names[label], path)
                    writer.write(example.SerializeToString())
        for temp_name, name in zip(temp, final):
            tf.io.gfile.rename(temp_name, name, overwrite=True)
    finally:
        for temp_name in temp:
            if tf.io.gfile.exists(temp_name):
                tf.io.gfile.remove(temp_name)
    return final
