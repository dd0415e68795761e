"""Hostile and careless data: TFRecord labels outside the class range, a
one-class folder, a folder without a validation split (issue 11, items 4
and 11). Every file is made here, and no model is trained."""
import json
import logging
import os

import pytest
import tensorflow as tf

import helpers as fx
from keras_googlenet import cli
from keras_googlenet.train import config as config_lib
from keras_googlenet.data import sources
from keras_googlenet.train import trainer as train

SIZE = (16, 16)


def _tfrecords(tmp_path, stray_label=None):
    """2 classes x 2 images as TFRecords, plus a file of one record with
    `stray_label` (the hostile record); returns (glob, stray file)."""
    fx.write_class_folder(str(tmp_path / "img"), num_classes=2, per_class=2, size=SIZE)
    sources.write_tfrecords(str(tmp_path / "img"), str(tmp_path / "rec"), num_shards=1)
    stray = None
    if stray_label is not None:
        stray = str(tmp_path / "rec" / "train-stray.tfrecord")
        example = tf.train.Example(features=tf.train.Features(feature={
            "image/encoded": tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[fx.encode(fx.photo_like(*SIZE, seed=9))])),
            "image/class/label": tf.train.Feature(int64_list=tf.train.Int64List(
                value=[stray_label])),
        }))
        with tf.io.TFRecordWriter(stray) as writer:
            writer.write(example.SerializeToString())
    return str(tmp_path / "rec" / "train-*"), stray


def _train_argv(out, data, *extra):
    return ["train", "--data", data, "--output-dir", str(out), "--export-dir", "",
            "--image-size", "32", "--no-aux-classifiers", "--batch-size", "2",
            "--steps-per-epoch", "1", "--epochs", "1", "--verbose", "0", *extra]


# --------------------------------------------------------------------------
# Item 4: the TFRecord class count.
# --------------------------------------------------------------------------
def test_label_outside_declared_classes_is_refused_naming_its_file(tmp_path, capsys):
    pattern, stray = _tfrecords(tmp_path, stray_label=1000)
    out = tmp_path / "run"
    assert cli.main(_train_argv(out, f"tfrecord:{pattern}", "--num-classes", "2")) == 2
    err = capsys.readouterr().err
    assert repr(stray) in err and "outside [0, 2)" in err and "(first: 1000)" in err
    assert not (out / "config.json").exists()  # Refused before anything is written.


def test_label_offset_flag_shifts_labels_and_a_negative_one_names_its_file(tmp_path, capsys):
    pattern, _ = _tfrecords(tmp_path)  # 0-based labels, read as if 1-based.
    out = tmp_path / "run"
    argv = _train_argv(out, f"tfrecord:{pattern}", "--num-classes", "2", "--label-offset", "-1")
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    shard = os.path.join(str(tmp_path / "rec"), "train-00000-of-00001.tfrecord")
    assert repr(shard) in err and "label_offset=-1" in err and "(first: -1)" in err


def test_label_checked_while_reading_names_its_file(tmp_path):
    # No scan up front (a big set with --steps-per-epoch): the reader fails.
    pattern, stray = _tfrecords(tmp_path, stray_label=1000)
    source = sources.tfrecord_source(pattern, num_classes=2, scan=False)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Label out of range") as info:
        list(source.dataset())
    assert stray in str(info.value)


def test_inferred_class_count_is_logged_with_records_per_label(tmp_path, caplog):
    pattern, _ = _tfrecords(tmp_path, stray_label=1000)
    with caplog.at_level(logging.INFO, logger="keras_googlenet"):
        source = sources.tfrecord_source(pattern)
    assert source.num_classes == 1001 and source.num_examples == 5
    [record] = [r for r in caplog.records if "num_classes inferred" in r.getMessage()]
    assert record.levelno == logging.WARNING  # 998 empty classes: not a quiet INFO.
    message = record.getMessage()
    assert "num_classes inferred as 1001" in message and "pass --num-classes" in message
    assert "{0: 2, 1: 2, 1000: 1}" in message
    assert "998 of the 1001 classes have no record" in message


def test_inferred_class_count_of_a_clean_set_is_an_info(tmp_path, caplog):
    pattern, _ = _tfrecords(tmp_path)
    with caplog.at_level(logging.INFO, logger="keras_googlenet"):
        assert sources.tfrecord_source(pattern).num_classes == 2
    [record] = [r for r in caplog.records if "num_classes inferred" in r.getMessage()]
    assert record.levelno == logging.INFO and "{0: 2, 1: 2}" in record.getMessage()


@pytest.mark.parametrize("argv, message", [
    (["--data", "embedded", "--num-classes", "10"], "apply to TFRecord data"),
    (["--data", "embedded", "--label-offset", "-1"], "apply to TFRecord data"),
    (["--data", "tfrecord:/x/*", "--num-classes", "1"], "--num-classes must be at least 2"),
    (["--holdout-fraction", "1"], "--holdout-fraction must be in [0, 1)"),
])
def test_data_flags_are_checked_before_any_work(tmp_path, capsys, argv, message):
    assert cli.main(["train", "--output-dir", str(tmp_path / "never"), *argv]) == 2
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------
# Item 11: a one-class folder; a folder without a validation split.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("with_validation", [True, False])
def test_one_class_folder_is_refused_naming_it(tmp_path, capsys, with_validation):
    root = tmp_path / "one"
    fx.write_class_folder(str(root / "train"), num_classes=1, per_class=3, size=SIZE)
    if with_validation:
        fx.write_class_folder(str(root / "validation"), num_classes=1, per_class=1, size=SIZE)
    out = tmp_path / "run"
    assert cli.main(_train_argv(out, f"folder:{root}")) == 2
    err = capsys.readouterr().err
    assert f"folder:{root / 'train'}" in err and "at least 2 classes" in err
    assert not (out / "config.json").exists()


def test_holdout_is_disjoint_per_class_and_seeded(tmp_path, caplog):
    written = fx.write_class_folder(str(tmp_path), num_classes=3, per_class=10, size=SIZE)
    with caplog.at_level(logging.INFO, logger="keras_googlenet"):
        train_part, val_part = sources.folder_holdout(str(tmp_path), fraction=0.2, seed=5)
    train_files, val_files = _files(train_part), _files(val_part)
    assert not set(train_files) & set(val_files)
    assert set(train_files) | set(val_files) == set(written)
    # 20% of each class: 2 of its 10 images, with their labels.
    assert sorted(written[f] for f in val_files) == [0, 0, 1, 1, 2, 2]
    assert sorted(_labels(val_part)) == [0, 0, 1, 1, 2, 2]
    assert val_part.holdout == train_part.holdout == dict(
        folder=str(tmp_path), fraction=0.2, seed=5, train_examples=24, validation_examples=6)
    assert "holding out 6 of its 30 images" in caplog.text
    again = _files(sources.folder_holdout(str(tmp_path), fraction=0.2, seed=5)[1])
    other = _files(sources.folder_holdout(str(tmp_path), fraction=0.2, seed=6)[1])
    assert again == val_files and other != val_files


def test_holdout_takes_one_image_per_class_but_never_a_whole_class(tmp_path, caplog):
    fx.write_class_folder(str(tmp_path / "a"), num_classes=1, per_class=3, size=SIZE)
    fx.write_class_folder(str(tmp_path / "b"), num_classes=1, per_class=1, size=SIZE)
    for part in ("a", "b"):  # Classes "a" (3 images) and "b" (1 image).
        os.rename(tmp_path / part / "class_0", tmp_path / f"{part}_class")
        os.rmdir(tmp_path / part)
    mask = sources.holdout_mask([0, 0, 0, 1], fraction=0.01, seed=0)
    assert mask[:3].sum() == 1 and not mask[3]
    with caplog.at_level(logging.INFO, logger="keras_googlenet"):
        train_part, val_part = sources.folder_holdout(str(tmp_path), fraction=0.01)
    assert (train_part.num_examples, val_part.num_examples) == (3, 1)
    assert "single image stay in training" in caplog.text and "'b_class'" in caplog.text


def test_folder_without_validation_trains_on_a_recorded_holdout(tmp_path, monkeypatch, caplog):
    root = tmp_path / "data"
    fx.write_class_folder(str(root / "train"), num_classes=2, per_class=5, size=SIZE)

    class Stop(Exception):
        pass

    seen = {}

    def stop_at_the_model(config, num_classes):
        # config.json is written before the model is built: stop there.
        seen["num_classes"] = num_classes
        raise Stop

    monkeypatch.setattr(train, "build_model", stop_at_the_model)
    out = tmp_path / "run"
    config = config_lib.TrainConfig(data=f"folder:{root}", output_dir=str(out), export_dir="",
                                    image_size=32, aux_classifiers=False, batch_size=2,
                                    holdout_fraction=0.2, holdout_seed=3, verbose=0)
    with caplog.at_level(logging.INFO, logger="keras_googlenet"), pytest.raises(Stop):
        train.run(config)
    recorded = json.loads((out / "config.json").read_text())
    assert recorded["validation"] == dict(kind="holdout", folder=str(root / "train"),
                                          fraction=0.2, seed=3, train_examples=8,
                                          validation_examples=2)
    assert (recorded["holdout_fraction"], recorded["holdout_seed"]) == (0.2, 3)
    assert recorded["steps_per_epoch"] == 4  # 8 training images, not 10.
    assert seen["num_classes"] == 2
    assert "has no validation split: holding out 2 of its 10 images" in caplog.text


def test_validation_folder_is_used_when_present_and_holdout_can_be_turned_off(tmp_path, caplog):
    root = tmp_path / "data"
    fx.write_class_folder(str(root / "train"), num_classes=2, per_class=3, size=SIZE)
    train_part, val_part = sources.train_val_sources(f"folder:{root}")
    assert (train_part.num_examples, val_part.num_examples) == (4, 2)  # No validation/.
    assert val_part.holdout["validation_examples"] == 2
    with caplog.at_level(logging.WARNING, logger="keras_googlenet"):
        same_train, same_val = sources.train_val_sources(f"folder:{root}", holdout_fraction=0)
    assert same_val.name == same_train.name and same_val.num_examples == 6
    assert "Validation reads the training data" in caplog.text
    fx.write_class_folder(str(root / "validation"), num_classes=2, per_class=1, size=SIZE)
    train_part, val_part = sources.train_val_sources(f"folder:{root}")
    assert val_part.name == f"folder:{root / 'validation'}" and val_part.holdout is None
    assert train_part.num_examples == 6


def _files(source):
    """The sorted paths of the files a hold-out part reads (found by their bytes)."""
    by_bytes = {}
    for root, _, names in os.walk(source.holdout["folder"]):
        for name in names:
            with open(os.path.join(root, name), "rb") as f:
                by_bytes[f.read()] = os.path.join(root, name)
    return sorted(by_bytes[image.numpy()] for image, _ in source.dataset())


def _labels(source):
    return [int(label) for _, label in source.dataset()]
