"""Which examples of a source are read: class subsets and few-shot draws
(`subset`), and the seeded per-class hold-out of a folder (`folder_holdout`)."""
import collections
import dataclasses
import logging

import numpy as np
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet.data.subsets import parse_classes
from keras_googlenet.data.sources.folder import decodable_files, files_source

logger = logging.getLogger(__name__)


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
    paths, labels, class_names, bad = decodable_files(path, on_error, validate)
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
        files_source(f"folder:{path} ({part} part of the hold-out)", *parts[part],
                      class_names, bad, on_error, holdout=info)
        for part in ("train", "validation")
    )
