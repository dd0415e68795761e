"""Image folders (one sub-folder per class) as sources."""
import logging
import os

import numpy as np
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet.data.sources.base import ON_ERROR, Source, scan_image_files

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


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
    paths, labels, class_names, bad = decodable_files(path, on_error, validate)
    return files_source(f"folder:{path}", paths, labels, class_names, bad, on_error)


def decodable_files(path, on_error, validate):
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


def files_source(name, paths, labels, class_names, bad, on_error, holdout=None):
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
