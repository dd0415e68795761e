"""Ensembles over crops, metrics, the table and `googlenet evaluate`."""
import csv
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_googlenet.data import crops
from keras_googlenet.inference import evaluation, metrics, predictors
from keras_googlenet.data import preprocessing

SIZE = 24
CLASSES = 5


def tiny_model(activation="softmax", seed=0, scale=1.0, classes=CLASSES):
    """Input-dependent classifier small enough for fast tests."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(classes, activation=activation, name="predictions")(x)
    model = keras.Model(inputs, outputs)
    if scale != 1.0:
        kernel, bias = model.get_layer("predictions").get_weights()
        model.get_layer("predictions").set_weights([kernel * scale, bias])
    return model


def constant_model(probabilities):
    """Outputs `probabilities` whatever the input."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(CLASSES, activation="softmax", name="predictions")
    outputs = dense(x)
    model = keras.Model(inputs, outputs)
    dense.set_weights([np.zeros((3, CLASSES)), np.log(np.asarray(probabilities))])
    return model


def logits_model():
    """Linear logits of the crop's mean colour: crops of a gradient image
    get clearly different logits."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(CLASSES, name="predictions")  # linear: logits
    model = keras.Model(inputs, dense(x))
    kernel = np.array([[0.06, -0.04, 0.0, 0.02, -0.05],
                       [-0.03, 0.05, 0.01, -0.02, 0.04],
                       [0.02, 0.0, -0.06, 0.05, 0.01]])
    dense.set_weights([kernel, np.zeros(CLASSES)])
    return model


def gradient_dataset(n=4):
    images = []
    for i in range(n):
        h, w = (30, 44) if i % 2 else (44, 30)
        rows, cols = np.meshgrid(np.linspace(0, 255, h), np.linspace(0, 255, w), indexing="ij")
        images.append(np.stack([cols, rows, 255 - cols], -1).astype(np.uint8))
    return tf.data.Dataset.from_generator(
        lambda: ((im, i % CLASSES) for i, im in enumerate(images)),
        output_signature=(tf.TensorSpec([None, None, 3], tf.uint8),
                          tf.TensorSpec([], tf.int32)))


def image_dataset(n=12, seed=0):
    rng = np.random.RandomState(seed)
    images, labels = [], []
    for i in range(n):
        shape = (30, 44, 3) if i % 3 else (44, 30, 3)  # landscape and portrait
        images.append(rng.randint(0, 256, shape).astype(np.uint8))
        labels.append(i % CLASSES)
    return tf.data.Dataset.from_generator(
        lambda: zip(images, labels),
        output_signature=(tf.TensorSpec([None, None, 3], tf.uint8),
                          tf.TensorSpec([], tf.int32)))


# ---------------------------------------------------------------------------
# Metrics against hand computations.
# ---------------------------------------------------------------------------
def test_top_k_metrics_by_hand():
    probabilities = np.array([
        [0.5, 0.2, 0.1, 0.1, 0.1],   # label 0: rank 1
        [0.1, 0.2, 0.3, 0.4, 0.0],   # label 1: 3 higher -> top-4 only
        [0.3, 0.3, 0.2, 0.1, 0.1],   # label 1: tied first with class 0, which comes first
        [0.05, 0.15, 0.2, 0.25, 0.35],  # label 0: last -> not in top-4, in top-5
    ])
    labels = [0, 1, 1, 0]
    result = metrics.classification_metrics(probabilities, labels, top_k=(1, 2, 4, 5),
                                               class_names=list("abcde"))
    assert result["num_examples"] == 4
    assert result["top1_accuracy"] == pytest.approx(1 / 4)
    assert result["top1_error"] == pytest.approx(3 / 4)
    assert result["top2_accuracy"] == pytest.approx(2 / 4)
    assert result["top4_accuracy"] == pytest.approx(3 / 4)
    assert result["top5_accuracy"] == pytest.approx(1.0)
    assert result["top5_error"] == pytest.approx(0.0)
    # Per class (top-1): class a: 1 of 2; class b: 0 of 2; others have no examples.
    assert result["per_class_accuracy"] == {"a": 0.5, "b": 0.0, "c": None, "d": None, "e": None}


def test_top_k_is_capped_at_the_class_count():
    result = metrics.classification_metrics([[0.1, 0.9], [0.8, 0.2]], [0, 0], top_k=(1, 5))
    assert result["top1_accuracy"] == 0.5
    assert result["top5_accuracy"] == 1.0


def test_metrics_reject_bad_labels():
    with pytest.raises(ValueError, match="Labels"):
        metrics.classification_metrics([[0.5, 0.5]], [2])


# ---------------------------------------------------------------------------
# Averaging over crops and models.
# ---------------------------------------------------------------------------
def test_constant_model_gives_the_same_result_under_every_crop_set():
    constant = [0.1, 0.4, 0.2, 0.25, 0.05]
    model = constant_model(constant)
    results = evaluation.evaluate(model, data=image_dataset(), crops=(1, 10, 144),
                                  normalization="caffe", verbose=0)
    rows = results["results"]
    assert [r["crops"] for r in rows] == [1, 10, 144]
    for row in rows:
        # Labels are 0..4 repeated: only class 1 (the argmax) is right at top-1.
        assert row["top1_accuracy"] == pytest.approx(3 / 12)
        assert row["top5_accuracy"] == 1.0
        assert row["per_class_accuracy"] == rows[0]["per_class_accuracy"]
    predictor = predictors.load_predictor(model)
    for n in (1, 10, 144):
        probabilities, labels, _ = evaluation.predict_crops(
            [predictor], image_dataset(4), n, SIZE, verbose=0)
        np.testing.assert_allclose(probabilities[0], np.tile(constant, (4, 1)), rtol=1e-5)


def test_two_identical_models_equal_one():
    model = tiny_model(seed=3)
    one = evaluation.predict_crops([predictors.load_predictor(model)], image_dataset(), 10,
                                   SIZE, verbose=0)[0][0]
    results_one = evaluation.evaluate(model, data=image_dataset(), crops=10, verbose=0)
    results_two = evaluation.evaluate([model, model], data=image_dataset(), crops=10, verbose=0)
    for key in ("top1_accuracy", "top5_accuracy", "per_class_accuracy"):
        assert results_two[key] == results_one[key]
    assert results_two["models"] == 2
    predictor = predictors.load_predictor(model)
    probabilities, _, _ = evaluation.predict_crops([predictor, predictor], image_dataset(), 10,
                                                   SIZE, verbose=0)
    np.testing.assert_allclose(np.mean(probabilities, axis=0), one, rtol=1e-6)


def _manual_crop_outputs(model, dataset, n, normalization="caffe"):
    outputs = []
    for image, _ in dataset:
        batch = preprocessing.normalize(crops.make_crops(image, n, SIZE), normalization)
        outputs.append(model(batch, training=False).numpy())
    return np.stack(outputs)  # (images, crops, classes)


def _softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_logits_are_softmaxed_before_averaging():
    model = logits_model()
    for n in (10, 144):
        logits = _manual_crop_outputs(model, gradient_dataset(), n)
        expected = _softmax(logits).mean(axis=1)
        wrong = _softmax(logits.mean(axis=1))
        assert np.abs(expected - wrong).max() > 0.02  # the test can tell them apart
        got, _, _ = evaluation.predict_crops([predictors.load_predictor(model)],
                                             gradient_dataset(), n, SIZE, batch_size=3,
                                             verbose=0)
        np.testing.assert_allclose(got[0], expected, rtol=1e-4, atol=1e-6)


def test_ensemble_averages_probabilities_of_different_models():
    a, b = tiny_model(seed=1, scale=5.0), logits_model()
    pa = _manual_crop_outputs(a, gradient_dataset(), 10).mean(axis=1)
    pb = _softmax(_manual_crop_outputs(b, gradient_dataset(), 10)).mean(axis=1)
    got, labels, seconds = evaluation.predict_crops(
        [predictors.load_predictor(a), predictors.load_predictor(b)], gradient_dataset(), 10,
        SIZE, verbose=0)
    np.testing.assert_allclose(got[0], pa, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got[1], pb, rtol=1e-4, atol=1e-6)
    results = evaluation.evaluate([a, b], data=gradient_dataset(), crops=10, verbose=0)
    expected = metrics.classification_metrics((pa + pb) / 2, labels)
    assert results["top1_accuracy"] == expected["top1_accuracy"]
    assert len(seconds) == 2 and all(s > 0 for s in seconds)


def test_batch_size_does_not_change_the_result():
    model = tiny_model(seed=4)
    predictor = predictors.load_predictor(model)
    a = evaluation.predict_crops([predictor], image_dataset(5), 144, SIZE, batch_size=1,
                                 verbose=0)[0][0]
    b = evaluation.predict_crops([predictor], image_dataset(5), 144, SIZE, batch_size=4,
                                 verbose=0)[0][0]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_training_model_with_aux_heads_uses_the_main_head():
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    main = keras.layers.Dense(CLASSES, activation="softmax", name="predictions")(x)
    aux = keras.layers.Dense(CLASSES, activation="softmax", name="aux1")(x)
    model = keras.Model(inputs, {"predictions": main, "aux1": aux})
    predictor = predictors.load_predictor(model)
    out = predictor(np.full((2, SIZE, SIZE, 3), 100.0, np.float32))
    assert out.shape == (2, CLASSES)


# ---------------------------------------------------------------------------
# Files: .keras, SavedModels, the table, the command.
# ---------------------------------------------------------------------------
def test_keras_file_reads_normalization_from_config(tmp_path):
    model = tiny_model(seed=5)
    path = tmp_path / "model.keras"
    model.save(path)
    (tmp_path / "config.json").write_text(json.dumps({"normalization": "torch"}))
    images = np.random.RandomState(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype(np.float32)
    got = predictors.load_predictor(str(path))(images)
    expected = model(preprocessing.normalize(images, "torch")).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_keras_googlenet_savedmodel_is_exact(tmp_path):
    from keras_googlenet.serving import export

    model = logits_model()  # exported with a softmax on top
    export_dir = export.export_saved_model(model, str(tmp_path / "sm"), normalization="caffe")
    saved = predictors.load_predictor(str(tmp_path / "sm"))
    assert saved.image_size == SIZE
    reference = predictors.load_predictor(model, normalization="caffe")
    image, _ = next(iter(gradient_dataset()))
    images = crops.make_crops(image, 10, SIZE)
    expected = reference(images)
    # The model sees where a crop is: a shifted or rescaled crop would show.
    assert np.abs(expected - expected[4]).max() > 1e-3
    np.testing.assert_allclose(saved(images), expected, rtol=1e-5, atol=1e-7)
    assert os.path.isdir(export_dir)


def test_plain_keras_export_savedmodel(tmp_path):
    model = tiny_model(activation="linear", seed=7, scale=5.0)
    model.export(str(tmp_path / "plain"), format="tf_saved_model", verbose=False)
    with pytest.raises(ValueError, match="image_size"):
        predictors.load_predictor(str(tmp_path / "plain"))
    saved = predictors.load_predictor(str(tmp_path / "plain"), image_size=SIZE,
                                      normalization="caffe")
    reference = predictors.load_predictor(model, normalization="caffe")
    images = np.random.RandomState(2).uniform(0, 255, (4, SIZE, SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(saved(images), reference(images), rtol=1e-5, atol=1e-7)


def test_table_markdown_and_csv(tmp_path):
    models = [tiny_model(seed=8), tiny_model(seed=9)]
    results = evaluation.evaluate(models, data=image_dataset(6), crops=[1, 10],
                                  table=str(tmp_path / "t.md"), csv=str(tmp_path / "t.csv"),
                                  names=["A", "B"], verbose=0)
    assert [(r["models"], r["crops"]) for r in results["results"]] == [
        (1, 1), (1, 10), (2, 1), (2, 10)]
    assert [r["cost"] for r in results["results"]] == [1, 10, 2, 20]
    markdown = (tmp_path / "t.md").read_text()
    assert markdown.count("\n") == 6  # header, rule, 4 rows
    assert "| 1 | 1 | 1 |" in markdown and "base" in markdown
    with open(tmp_path / "t.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert rows[3]["model_names"] == "A;B"
    assert float(rows[3]["top1_accuracy"]) == pytest.approx(results["top1_accuracy"])
    assert results["models"] == 2 and results["crops"] == 10
    assert len(results["per_model"]) == 4


def test_mismatched_image_sizes_are_refused():
    inputs = keras.Input((SIZE + 8, SIZE + 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    other = keras.Model(inputs, keras.layers.Dense(CLASSES, activation="softmax",
                                                   name="predictions")(x))
    with pytest.raises(ValueError, match="same crops"):
        evaluation.evaluate([tiny_model(), other], data=image_dataset(2), verbose=0)


def test_evaluate_command_on_embedded_data(tmp_path, capsys):
    from keras_googlenet import cli

    model = tiny_model(seed=10, classes=10)  # the digits have 10 classes
    model.save(tmp_path / "m.keras")
    code = cli.main(["evaluate", "--model", str(tmp_path / "m.keras"),
                     "--model", str(tmp_path / "m.keras"), "--data", "embedded",
                     "--split", "validation", "--crops", "1", "10", "--max-examples", "10",
                     "--table", str(tmp_path / "t.md"), "--csv", str(tmp_path / "t.csv"),
                     "--json", str(tmp_path / "r.json"), "--verbose", "0"])
    assert code == 0
    out = capsys.readouterr().out
    assert "per-class top-1 accuracy" in out and "| Models |" in out
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["num_examples"] == 10 and len(result["results"]) == 4
    assert (tmp_path / "t.md").exists() and (tmp_path / "t.csv").exists()


def test_no_mirror_rows_use_half_the_crops():
    model = logits_model()
    results = evaluation.evaluate(model, data=gradient_dataset(), crops=[1, 10, 144],
                                  mirror=False, verbose=0)
    assert [(r["crops"], r["cost"], r["mirror"]) for r in results["results"]] == [
        (1, 1, False), (5, 5, False), (72, 72, False)]
    logits = _manual_crop_outputs(model, gradient_dataset(), 10)[:, :5]
    got, _, _ = evaluation.predict_crops([predictors.load_predictor(model)], gradient_dataset(),
                                         10, SIZE, mirror=False, verbose=0)
    np.testing.assert_allclose(got[0], _softmax(logits).mean(axis=1), rtol=1e-4, atol=1e-6)
