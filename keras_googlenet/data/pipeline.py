"""The input pipeline: a `Source` in, batches for `model.fit` out.

Order of operations (training):
    source -> shard -> [cache] -> shuffle -> [repeat] -> zip per-image seeds
    -> map(augment) -> batch -> map(normalise, labels) -> prefetch
Evaluation is the same without shuffle and seeds, with `eval_preprocess`.
"""
import random

import keras  # imported before TensorFlow: see backends.py
import tensorflow as tf

from keras_googlenet.data import augment as augment_lib
from keras_googlenet.data import preprocessing


def _labels_for(output_names):
    """Returns a function mapping a label batch to what the model expects."""
    if isinstance(output_names, str):
        output_names = [output_names]
    names = list(output_names or [])
    if len(names) <= 1:
        return lambda labels: labels
    # Every head (main and auxiliary) is trained on the same labels.
    return lambda labels: {name: labels for name in names}


def _validate(image_size, batch_size, shuffle_buffer, normalization):
    preprocessing.check_image_size(image_size)
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(
            f"`batch_size` must be a positive int. Received: batch_size={batch_size!r}"
        )
    if not isinstance(shuffle_buffer, int) or shuffle_buffer < 1:
        raise ValueError(
            f"`shuffle_buffer` must be a positive int. Received: shuffle_buffer={shuffle_buffer!r}"
        )
    if normalization is not None and normalization not in preprocessing.MODES:
        raise ValueError(
            f"`normalization` must be one of {preprocessing.MODES} or None. "
            f"Received: normalization={normalization!r}"
        )


def build_dataset(
    source,
    *,
    training,
    image_size,
    batch_size,
    output_names=None,
    seed=None,
    augment=None,
    normalization=preprocessing.DEFAULT_MODE,
    cache=False,
    shuffle_buffer=10_000,
    crop_fraction=preprocessing.DEFAULT_CROP_FRACTION,
    input_context=None,
    drop_remainder=None,
    repeat=False,
    data_format=None,
):
    """Builds the `tf.data` pipeline of normalised image batches and labels.

    Args:
        source: a `sources.Source`.
        training: True for shuffling and random augmentation
            (`augment.augment`), False for the deterministic central crop
            (`preprocessing.eval_preprocess`).
        image_size: output height and width.
        batch_size: the GLOBAL batch size. With `input_context`, each input
            pipeline batches `input_context.get_per_replica_batch_size(batch_size)`
            (the `strategy.distribute_datasets_from_function` contract);
            without it the whole global batch is produced here and a strategy
            splits it.
        output_names: model output names (`model.output_names`). Several
            names -> labels become `{name: labels}`; one name or None -> plain
            labels.
        seed: int seed of shuffling and augmentation: the same seed gives the
            same batches. None draws a fresh seed.
        augment: `augment.AugmentConfig`; None uses the paper recipe.
        normalization: `preprocess_input` mode ("caffe", "torch", "tf"), or
            None to keep [0, 255] pixels.
        cache: False, True (in memory) or a file path. The cache holds the
            source's encoded/decoded images, before any random step.
        shuffle_buffer: shuffle buffer size (training only).
        crop_fraction: central crop fraction for evaluation.
        input_context: optional `tf.distribute.InputContext`; the source is
            sharded into `num_input_pipelines` disjoint parts.
        drop_remainder: drop the last partial batch; default `training`.
        repeat: repeat indefinitely (training with `steps_per_epoch`).
        data_format: "channels_last" (NHWC batches) or "channels_first"
            (NCHW); default: Keras' `image_data_format()`, the layout a
            model built now takes.

    Returns:
        A `tf.data.Dataset` of `(images, labels)`, images float32
        `(batch, image_size, image_size, 3)` (or `(batch, 3, image_size,
        image_size)` channels first), labels int32 `(batch,)` or a
        dict of them.
    """
    _validate(image_size, batch_size, shuffle_buffer, normalization)
    if seed is None:
        seed = random.randrange(2**31)
    if drop_remainder is None:
        drop_remainder = training
    ds, batch_size, seed = _sharded_source(source, batch_size, seed, cache, input_context)
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    if training:
        # One [2] seed per image, different on every pass over the data yet
        # reproducible from `seed`.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = _augmented(tf.data.Dataset.zip((ds, seeds)), image_size, augment)
    else:
        ds = ds.map(
            lambda image, label: (
                preprocessing.eval_preprocess(image, image_size, crop_fraction), label
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return _batched(ds, source, batch_size, drop_remainder, output_names, normalization,
                    data_format)


def _sharded_source(source, batch_size, seed, cache, input_context):
    """The source's (shard of) `(image, label)` pairs, cached if asked, with
    the batch size and seed of this input pipeline."""
    num_shards, shard_index = 1, 0
    if input_context is not None:
        num_shards = input_context.num_input_pipelines
        shard_index = input_context.input_pipeline_id
        batch_size = input_context.get_per_replica_batch_size(batch_size)
        # Shards must not share augmentation draws or shuffle orders.
        seed = seed * 1_000_003 + shard_index
    ds = source.dataset(num_shards, shard_index)
    if cache:
        ds = ds.cache() if cache is True else ds.cache(cache)
    return ds, batch_size, seed


def _augmented(pairs_and_seeds, image_size, augment):
    config = augment or augment_lib.AugmentConfig()
    return pairs_and_seeds.map(
        lambda pair, s: (augment_lib.augment(pair[0], image_size, s, config), pair[1]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _batched(ds, source, batch_size, drop_remainder, output_names, normalization, data_format):
    data_format = data_format or keras.config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError("`data_format` must be 'channels_last' or 'channels_first'. "
                         f"Received: data_format={data_format!r}")
    if source.skip_decode_errors:
        # Safety net behind the folder scan: drop files that still fail.
        ds = ds.ignore_errors(log_warning=True)
    to_labels = _labels_for(output_names)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    # Normalising whole batches is one vectorised op instead of one per image.
    ds = ds.map(
        lambda images, labels: (
            _layout(preprocessing.normalize(images, normalization), data_format),
            to_labels(tf.cast(labels, tf.int32)),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


def _layout(images, data_format):
    # Augmentation works on HWC images; the layout changes once per batch.
    return tf.transpose(images, [0, 3, 1, 2]) if data_format == "channels_first" else images


def training_stream(
    source,
    *,
    image_size,
    batch_size,
    steps_per_epoch,
    seed,
    start_epoch=0,
    skip_batches=0,
    output_names=None,
    augment=None,
    normalization=preprocessing.DEFAULT_MODE,
    cache=False,
    shuffle_buffer=10_000,
    input_context=None,
    data_format=None,
    stream_index=None,
):
    """An endless training pipeline whose epoch `e` depends only on (seed, e).

    `build_dataset(training=True, repeat=True)` reshuffles on every pass, so
    its k-th epoch depends on how many passes this process has made. Here
    each epoch draws its shuffle order and augmentation seeds from
    `(seed, epoch)`, so a run resumed at (epoch e, batch k) sees exactly the
    batches an uninterrupted run sees from there. Skipping the first k
    batches happens before augmentation: only the source is read again.

    Args:
        steps_per_epoch: batches per epoch; epoch e is the first
            `steps_per_epoch * batch` images of its shuffle (the source is
            repeated if it is shorter).
        start_epoch: the first epoch to produce.
        skip_batches: batches of `start_epoch` already trained.
        stream_index: optional index (an int or a scalar integer tensor) of
            one of several streams of the same `seed`, each with its own
            shuffle orders and augmentation draws.
        (others as in `build_dataset`; `batch_size` is global.)

    Returns:
        An infinite `tf.data.Dataset` of `(images, labels)` batches.
    """
    _validate(image_size, batch_size, shuffle_buffer, normalization)
    if not isinstance(seed, int):
        raise ValueError(f"`seed` must be an int. Received: seed={seed!r}")
    base, batch_size, seed = _sharded_source(source, batch_size, seed, cache, input_context)
    if stream_index is not None:
        # Its own shuffle orders and augmentation draws (a tensor is allowed:
        # a parameter-server worker's index is known only on the worker).
        seed = seed * 1_000_003 + tf.cast(stream_index, tf.int64)
    per_epoch = steps_per_epoch * batch_size

    def epoch(e):
        # Only `seed` decides the stream: without this a global seed
        # (keras.utils.set_random_seed) mixes into these ops' seeds, and a
        # global seed of 0 makes TF test this tensor seed as a bool and fail.
        tf.compat.v1.get_default_graph().seed = None
        epoch_seed = seed * 1_000_033 + e
        pairs = base.shuffle(shuffle_buffer, seed=epoch_seed, reshuffle_each_iteration=False)
        pairs = pairs.repeat().take(per_epoch)
        seeds = tf.data.Dataset.random(seed=epoch_seed).batch(2)
        return tf.data.Dataset.zip((pairs, seeds))

    ds = tf.data.Dataset.range(start_epoch, 2**62).flat_map(epoch)
    ds = ds.skip(skip_batches * batch_size)
    ds = _augmented(ds, image_size, augment)
    return _batched(ds, source, batch_size, True, output_names, normalization, data_format)
