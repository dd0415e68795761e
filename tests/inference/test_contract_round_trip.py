"""A trained model describes itself: the path a user takes, end to end.

Train with `--normalization tf` on a folder of named classes, move
`model.keras` alone to another directory, then use it through `predict`,
through `export` + the SavedModel, and through `evaluate`: each must give the
training run's own validation probabilities and its class names. Before the
contract was stored in the file, every one of them fed caffe-normalised
images and labelled the classes 0..N-1.
"""
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from keras_googlenet import cli
from keras_googlenet.data import pipeline, sources
from keras_googlenet.inference import evaluation, loader, predictors
from keras_googlenet.models import contract as contract_lib
from keras_googlenet.serving import export
import helpers as fx

NAMES = ["circle", "square", "triangle"]
SIZE = 32


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    for split, per_class in (("train", 4), ("validation", 3)):
        written = fx.write_class_folder(str(root / split), num_classes=3, per_class=per_class,
                                        size=(40, 48))
        for label, name in enumerate(NAMES):  # named classes, not class_<k>
            os.rename(root / split / f"class_{label}", root / split / name)
        assert len(written) == 3 * per_class
    run = tmp_path_factory.mktemp("run")
    assert cli.main(["train", "--data", f"folder:{root}", "--normalization", "tf",
                     "--image-size", str(SIZE), "--no-aux-classifiers", "--epochs", "1",
                     "--steps-per-epoch", "2", "--batch-size", "4", "--precision", "float32",
                     "--output-dir", str(run), "--export-dir", "", "--verbose", "0"]) == 0
    # The training run's own validation: its pipeline, its normalisation.
    model, _ = loader.load_model(str(run / "model.keras"))
    val = sources.get_source(f"folder:{root}", "validation")
    batches = pipeline.build_dataset(val, training=False, image_size=SIZE, batch_size=16,
                                     normalization="tf")
    probabilities = np.concatenate([model.predict_on_batch(x) for x, _ in batches])
    labels = np.concatenate([y.numpy() for _, y in batches])
    # The validation pipeline reads the folder in this order.
    files, file_labels, names = sources.list_image_folder(str(root / "validation"))
    assert names == NAMES and list(file_labels) == list(labels)
    # Moved alone: no config.json beside it any more.
    moved_dir = tmp_path_factory.mktemp("elsewhere")
    moved = str(moved_dir / "shapes.keras")
    shutil.copy(run / "model.keras", moved)
    shutil.rmtree(run)
    return dict(root=root, moved=moved, probabilities=probabilities, labels=labels, files=files,
                val=val)


def test_the_file_carries_its_contract(trained):
    contract = contract_lib.read_contract(trained["moved"])
    assert contract.normalization == "tf"
    assert contract.image_size == SIZE
    assert list(contract.class_names) == NAMES


def test_predict_gives_the_validation_probabilities_and_names(trained):
    from keras_googlenet.inference import predict

    results = predict.predict_files(trained["moved"], trained["files"], top=3, verbose=False)
    got = np.array([[dict(top)[name] for name in NAMES] for _, top in results])
    np.testing.assert_allclose(got, trained["probabilities"], atol=1e-5)
    # With the old default (caffe) the probabilities differ: the test can fail.
    wrong = predict.predict_files(trained["moved"], trained["files"], top=3,
                                  normalization="caffe", verbose=False)
    wrong = np.array([[dict(top)[name] for name in NAMES] for _, top in wrong])
    assert np.abs(wrong - got).max() > 1e-3


@pytest.mark.slow
def test_export_and_the_saved_model(trained, tmp_path):
    assert cli.main(["export", "--model", trained["moved"], "--base-dir",
                     str(tmp_path / "serving")]) == 0
    loaded = tf.saved_model.load(str(tmp_path / "serving" / "1"))
    images = tf.constant([open(f, "rb").read() for f in trained["files"]])
    outputs = loaded.signatures["serving_default"](image_bytes=images)
    np.testing.assert_allclose(outputs["probabilities"].numpy(), trained["probabilities"],
                               atol=1e-5)
    names = [n.decode() for n in outputs["labels"].numpy()[:, 0]]
    assert names == [NAMES[i] for i in trained["probabilities"].argmax(axis=1)]
    assert export.read_export_info(str(tmp_path / "serving" / "1"))["normalization"] == "tf"


def test_evaluate(trained):
    predictor = predictors.load_predictor(trained["moved"])
    batches = pipeline.build_dataset(trained["val"], training=False, image_size=SIZE,
                                     batch_size=16, normalization=None)
    probabilities = np.concatenate([np.asarray(predictor(x)) for x, _ in batches])
    np.testing.assert_allclose(probabilities, trained["probabilities"], atol=1e-5)
    results = evaluation.evaluate([trained["moved"]], data=f"folder:{trained['root']}",
                                  verbose=0)
    assert list(results["per_class_accuracy"]) == NAMES
    expected = float(np.mean(trained["probabilities"].argmax(1) == trained["labels"]))
    assert results["top1_accuracy"] == pytest.approx(expected)
