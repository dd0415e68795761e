"""TFRecords of tf.Example (TF-slim / Model Garden format): the reader
(`tfrecord_source`) and the writer (`write_tfrecords`, from an image folder)."""
import logging
import os
import random
import uuid

import numpy as np
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet.data.sources.base import Source
from keras_googlenet.data.sources.folder import folder_source, list_image_folder

logger = logging.getLogger(__name__)

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
