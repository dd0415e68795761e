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

One module per job: `base` (the `Source` record, the check of image files),
one per kind (`embedded`, `tfds`, `folder`, `tfrecord` with its writer),
`selection` (class subsets, few-shot draws, the folder hold-out) and `spec`
(spec strings, the training and validation sources of a run). The names
below are the public API.
"""
from keras_googlenet.data.sources.base import (
    ON_ERROR, VALIDATE, Source, check_image_file, scan_image_files)
from keras_googlenet.data.sources.embedded import (
    EMBEDDED_IMAGE_SIZE, EMBEDDED_SPLITS, embedded_source)
from keras_googlenet.data.sources.folder import (
    IMAGE_EXTENSIONS, folder_source, list_image_folder)
from keras_googlenet.data.sources.selection import (
    folder_holdout, holdout_mask, source_labels, subset)
from keras_googlenet.data.sources.spec import get_source, train_val_sources
from keras_googlenet.data.sources.tfds import tfds_source
from keras_googlenet.data.sources.tfrecord import (
    read_tfrecord_labels, tfrecord_source, write_tfrecords)

__all__ = [
    "EMBEDDED_IMAGE_SIZE", "EMBEDDED_SPLITS", "IMAGE_EXTENSIONS", "ON_ERROR", "VALIDATE",
    "Source", "check_image_file", "embedded_source", "folder_holdout", "folder_source",
    "get_source", "holdout_mask", "list_image_folder", "read_tfrecord_labels",
    "scan_image_files", "source_labels", "subset", "tfds_source", "tfrecord_source",
    "train_val_sources", "write_tfrecords",
]
