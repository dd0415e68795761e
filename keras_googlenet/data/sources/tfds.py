"""Prepared TensorFlow Datasets datasets as sources."""
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet.data.sources.base import Source

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
