"""The evaluation pictures: PNG files of sensible size, honest titles."""
import os
import struct

import numpy as np
import pytest

from keras_googlenet.inference import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_MAGIC, f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])  # width, height


def fake_results(classes=10, n=200, accuracy=0.8, seed=0):
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, classes, n)
    logits = rng.normal(size=(n, classes))
    right = rng.rand(n) < accuracy
    logits[np.arange(n)[right], labels[right]] += 6.0
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    images = rng.randint(0, 256, size=(n, 32, 32, 3)).astype(np.uint8)
    return images, probabilities, labels


def check_png(path, min_side=200, max_side=2000):
    assert os.path.isfile(path)
    width, height = png_size(path)
    assert min_side <= width <= max_side and min_side <= height <= max_side, (width, height)
    return width, height


def test_confusion_matrix_and_bars(tmp_path):
    images, probabilities, labels = fake_results()
    names = [f"digit {i}" for i in range(10)]
    check_png(plots.confusion_matrix(probabilities, labels, names, str(tmp_path / "cm.png")))
    check_png(plots.per_class_accuracy(probabilities, labels, names, str(tmp_path / "acc.png")))


def test_confusion_matrix_many_classes_says_so(tmp_path, monkeypatch):
    images, probabilities, labels = fake_results(classes=50, n=400)
    titles = []
    from matplotlib.axes import Axes

    original = Axes.set_title
    monkeypatch.setattr(Axes, "set_title",
                        lambda self, label, *a, **k: titles.append(label) or original(
                            self, label, *a, **k))
    path = plots.confusion_matrix(probabilities, labels, None, str(tmp_path / "cm.png"))
    check_png(path)
    assert any("30 most confused of 50 classes" in t for t in titles), titles
    # The 30 shown are those involved in the most mistakes.
    counts = plots.confusion_counts(np.argmax(probabilities, 1), labels, 50)
    shown = plots.most_confused(counts)
    errors = counts - np.diag(np.diag(counts))
    involvement = errors.sum(0) + errors.sum(1)
    assert len(shown) == 30 and involvement[shown].min() >= np.sort(involvement)[-30]


def test_mistakes_grid_and_no_mistakes(tmp_path):
    images, probabilities, labels = fake_results()
    width, height = check_png(plots.mistakes(images, probabilities, labels, None,
                                             str(tmp_path / "m.png")))
    assert width > 600 and height > 600  # a 4x4 grid
    # The most confident mistake comes first.
    order = plots.mistake_indices(probabilities, labels, 16)
    predicted = probabilities.argmax(1)
    assert (predicted[order] != labels[order]).all()
    confidence = probabilities[order, predicted[order]]
    assert (np.diff(confidence) <= 0).all()
    # Images may come from a function of the indices asked for.
    asked = []
    plots.mistakes(lambda idx: asked.extend(idx) or images[idx], probabilities, labels, None,
                   str(tmp_path / "lazy.png"), count=3)
    assert asked == list(order[:3])
    perfect = np.eye(10)[labels]
    check_png(plots.mistakes(images, perfect, labels, None, str(tmp_path / "none.png")),
              min_side=150)


def test_crops_vs_error_and_writers(tmp_path, monkeypatch):
    rows = [{"models": k, "crops": c, "top1_error": 0.1 / k + 0.05 / c}
            for k in (1, 2, 3) for c in (1, 10, 144)]
    check_png(plots.crops_vs_error(rows, str(tmp_path / "c.png")))
    images, probabilities, labels = fake_results()
    paths = plots.write_evaluation_pictures(str(tmp_path / "eval"), rows, images,
                                            probabilities, labels, None)
    assert sorted(os.path.basename(p) for p in paths.values()) == sorted(
        plots.EVALUATION_PICTURES)
    for path in paths.values():
        png_size(path)
    logdir = tmp_path / "tb"
    paths = plots.write_validation_pictures(str(tmp_path / "val"), images, probabilities,
                                            labels, None, tensorboard_logdir=str(logdir), step=3)
    assert sorted(os.listdir(tmp_path / "val")) == sorted(plots.VALIDATION_PICTURES)
    import tensorflow as tf

    tags = set()
    for event_file in os.listdir(logdir):
        for record in tf.compat.v1.train.summary_iterator(str(logdir / event_file)):
            for value in record.summary.value:
                tags.add((value.tag, record.step))
    assert {("confusion_matrix", 3), ("mistakes", 3)} <= tags


def test_importing_plots_is_cheap():
    import subprocess
    import sys

    code = ("import sys, keras_googlenet.inference.plots; "
            "print('matplotlib' in sys.modules, 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.stdout.split() == ["False", "False"]


def test_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="class names"):
        plots.confusion_matrix(np.eye(3), [0, 1, 2], ["a"], str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="No result rows"):
        plots.crops_vs_error([], str(tmp_path / "x.png"))


def test_evaluate_writes_the_pictures(tmp_path):
    import keras

    from keras_googlenet.inference import evaluation

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(10, activation="softmax")(
        keras.layers.GlobalAveragePooling2D()(inputs))
    model = keras.Model(inputs, outputs)
    out = tmp_path / "plots"
    evaluation.evaluate(model, data="embedded", crops=[1, 10], max_examples=24,
                        normalization="tf", verbose=0, plots=str(out))
    assert sorted(os.listdir(out)) == sorted(plots.EVALUATION_PICTURES)
    for name in plots.EVALUATION_PICTURES:
        check_png(str(out / name), min_side=150)
