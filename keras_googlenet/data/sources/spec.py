"""Sources from spec strings (`get_source`), and the training and
validation sources of a run (`train_val_sources`)."""
import logging
import os

from keras_googlenet.data.sources.embedded import embedded_source
from keras_googlenet.data.sources.folder import folder_source
from keras_googlenet.data.sources.selection import folder_holdout
from keras_googlenet.data.sources.tfds import tfds_source
from keras_googlenet.data.sources.tfrecord import tfrecord_source

logger = logging.getLogger(__name__)


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

    A folder without a `val_split` sub-folder is split by `folder_holdout`
    (a seeded per-class hold-out): validating on its own training images
    would say nothing about generalisation. With `holdout_fraction=0` it
    validates on the training images, with a warning. TFRecord globs have
    no splits: they validate on the training records, with a warning.

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


def _split_dir(path, split):
    candidate = os.path.join(path, split) if split else path
    return candidate if os.path.isdir(candidate) else path
