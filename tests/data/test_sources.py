import logging
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_googlenet.data import preprocessing
from keras_googlenet.data import sources
from keras_googlenet.data.sources import embedded
import helpers as fx


def _items(source, **kwargs):
    return list(source.dataset(**kwargs).as_numpy_iterator())


# ----------------------------------------------------------------- embedded
def test_embedded_splits_shapes_and_labels():
    train = sources.get_source("embedded", "train")
    val = sources.get_source("embedded", "validation")
    assert (train.num_examples, val.num_examples) == (1437, 360)
    assert train.num_classes == 10 and train.class_names == [str(i) for i in range(10)]
    spec = train.dataset().element_spec
    assert spec[0].shape.as_list() == [32, 32, 3] and spec[0].dtype == tf.uint8
    assert spec[1].dtype == tf.int32
    val_labels = np.array([y for _, y in _items(val)])
    assert len(val_labels) == 360
    # Stratified: every class has its ~20% share in validation.
    assert (np.bincount(val_labels, minlength=10) >= 30).all()


def test_embedded_is_real_digits_disjoint_and_deterministic():
    images, _, splits = embedded._embedded_arrays()
    assert not set(splits["train"]) & set(splits["validation"])
    assert len(set(splits["train"]) | set(splits["validation"])) == 1797
    first = _items(sources.embedded_source("train"))[:5]
    again = _items(sources.embedded_source("train"))[:5]
    for (a, la), (b, lb) in zip(first, again):
        np.testing.assert_array_equal(a, b)
        assert la == lb
    # Light ink on a black background, not noise.
    assert images[:, 0, 0].mean() < 5 and images.max() > 200
    assert (images.reshape(len(images), -1) > 64).mean() < 0.6


def test_unknown_spec_and_split():
    with pytest.raises(ValueError, match="Received: spec='nope:x'"):
        sources.get_source("nope:x", "train")
    with pytest.raises(ValueError, match="split='dev'"):
        sources.get_source("embedded", "dev")


# ------------------------------------------------------------------ folders
def test_folder_source_labels_and_bytes(tmp_path):
    written = fx.write_class_folder(str(tmp_path / "data"), num_classes=3, per_class=4)
    source = sources.get_source(f"folder:{tmp_path / 'data'}", "train")
    assert source.class_names == ["class_0", "class_1", "class_2"]
    assert source.num_examples == 12 and source.num_classes == 3 and source.skipped == []
    items = _items(source)
    assert len(items) == 12
    for data, label in items:
        image = preprocessing.decode_image(data).numpy()
        assert image.shape == (24, 32, 3)
    # Labels follow the sorted class folders, one per file.
    assert sorted(label for _, label in items) == sorted(written.values())


def test_folder_uses_split_subdirectory_and_plain_path(tmp_path):
    fx.write_class_folder(str(tmp_path / "train"), num_classes=2, per_class=1)
    fx.write_class_folder(str(tmp_path / "validation"), num_classes=2, per_class=3)
    assert sources.get_source(str(tmp_path), "validation").num_examples == 6
    assert sources.get_source(f"folder:{tmp_path}", "train").num_examples == 2


def test_folder_with_bad_files_skips_and_reports(tmp_path, caplog):
    good, bad = fx.write_bad_folder(str(tmp_path))
    with caplog.at_level(logging.WARNING):
        source = sources.folder_source(str(tmp_path))
    assert source.num_examples == len(good)
    assert [os.path.relpath(p, tmp_path) for p in source.skipped] == bad
    assert "Skipping 3 of 10 files" in caplog.text
    for name in bad:
        assert name.split("/")[1] in caplog.text
    for data, _ in _items(source):
        assert preprocessing.decode_image(data).numpy().shape[-1] == 3


def test_folder_with_bad_files_can_fail_fast(tmp_path):
    fx.write_bad_folder(str(tmp_path))
    with pytest.raises(ValueError, match="3 of 10 files .* cannot be decoded") as e:
        sources.folder_source(str(tmp_path), on_error="raise")
    assert "truncated.jpg" in str(e.value) and "empty.png" in str(e.value)


def test_full_validation_agrees_with_header_check(tmp_path):
    fx.write_bad_folder(str(tmp_path))
    full = sources.folder_source(str(tmp_path), validate="full")
    header = sources.folder_source(str(tmp_path), validate="header")
    assert full.skipped == header.skipped


def test_empty_and_missing_folders_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="no class sub-folders"):
        sources.folder_source(str(tmp_path))
    (tmp_path / "cat").mkdir()
    fx.write_file(str(tmp_path / "cat" / "readme.txt"), b"x")
    with pytest.raises(ValueError, match="no image files"):
        sources.folder_source(str(tmp_path))
    with pytest.raises(ValueError, match="does not exist"):
        sources.folder_source(str(tmp_path / "missing"))


# ---------------------------------------------------------------- tfrecords
def test_tfrecord_writer_round_trip(tmp_path):
    written = fx.write_class_folder(str(tmp_path / "data"), num_classes=3, per_class=3)
    files = sources.write_tfrecords(str(tmp_path / "data"), str(tmp_path / "rec"), num_shards=2)
    assert sorted(os.listdir(tmp_path / "rec")) == [
        "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"
    ]  # No temporary files left behind.
    source = sources.get_source(f"tfrecord:{tmp_path / 'rec'}/train-*", num_classes=3)
    items = _items(source)
    assert len(files) == 2 and len(items) == len(written) == 9
    by_bytes = {open(p, "rb").read(): label for p, label in written.items()}
    for data, label in items:
        assert by_bytes[data] == label  # Bytes stored as-is, label kept.


def test_tfrecord_slim_label_offset(tmp_path):
    fx.write_class_folder(str(tmp_path / "data"), num_classes=2, per_class=2)
    sources.write_tfrecords(str(tmp_path / "data"), str(tmp_path / "rec"), num_shards=1, label_offset=1)
    pattern = str(tmp_path / "rec" / "*.tfrecord")
    slim = sources.tfrecord_source(pattern, num_classes=2, label_offset=-1)
    assert sorted(label for _, label in _items(slim)) == [0, 0, 1, 1]
    inferred = sources.tfrecord_source(pattern, label_offset=-1)
    assert inferred.num_classes == 2 and inferred.num_examples == 4
    wrong = sources.tfrecord_source(pattern, num_classes=2)  # Forgot the offset.
    with pytest.raises(tf.errors.InvalidArgumentError, match="Label out of range"):
        _items(wrong)


def test_tfrecord_missing_files(tmp_path):
    with pytest.raises(ValueError, match="No TFRecord file"):
        sources.get_source(f"tfrecord:{tmp_path}/none-*")


# --------------------------------------------------------------------- tfds
def test_tfds_source_with_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=6):
        source = sources.get_source("tfds:mnist", "train", data_dir=str(tmp_path))
        assert source.num_classes == 10 and len(source.class_names) == 10
        items = _items(source)
    assert len(items) == 6
    for data, label in items:
        assert isinstance(data, bytes) and 0 <= label < 10
        assert preprocessing.decode_image(data).numpy().shape == (28, 28, 3)  # Gray -> RGB.


def test_tfds_imagenet_with_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=2):
        source = sources.get_source("tfds:imagenet2012", "validation", data_dir=str(tmp_path))
        items = _items(source)
    assert source.num_classes == 1000 and len(items) == 2
    assert preprocessing.decode_image(items[0][0]).numpy().shape[-1] == 3


def test_tfds_missing_dataset_explains_manual_download(tmp_path):
    with pytest.raises(ValueError, match="not prepared") as e:
        sources.get_source("tfds:imagenet2012", "train", data_dir=str(tmp_path))
    message = str(e.value)
    assert f"{tmp_path}/downloads/manual/" in message
    assert "ILSVRC2012_img_train.tar" in message and "ILSVRC2012_img_val.tar" in message
    with pytest.raises(ValueError, match="tfds build mnist"):
        sources.get_source("tfds:mnist", "train", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="Unknown TFDS dataset"):
        sources.get_source("tfds:no_such_dataset_xyz", "train", data_dir=str(tmp_path))
