"""Fault injection for the command line and the metrics (issue 11, items 5,
10 and 12): one line per error, class counts checked before inference, and
top-k without ties counted as hits (issue 20, item 3)."""
import os
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_googlenet.inference import evaluation, predictors
from keras_googlenet.models.metrics import TopKAccuracy
from keras_googlenet.train import callbacks, outputs
from keras_googlenet.train import trainer as train

SIZE = 32
CLASSES = 10


def constant_model(bias):
    """Outputs softmax(bias) whatever the input."""
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(len(bias), activation="softmax", name="predictions")
    model = keras.Model(inputs, dense(x))
    dense.set_weights([np.zeros((3, len(bias))), np.asarray(bias, np.float32)])
    return model


def balanced_dataset(per_class=2, classes=CLASSES):
    """`(image, label)` pairs, labels 0..classes-1 `per_class` times."""
    labels = np.tile(np.arange(classes), per_class).astype(np.int32)
    images = np.random.RandomState(0).randint(0, 256, (len(labels), SIZE, SIZE, 3))
    return tf.data.Dataset.from_tensor_slices((images.astype(np.uint8), labels))


def keras_metric(metric, model, dataset):
    """A Keras metric over the model's outputs on `dataset`."""
    images, labels = next(iter(dataset.batch(1000)))
    metric.update_state(labels, model.predict_on_batch(tf.cast(images, tf.float32)))
    return float(metric.result())


def _scores(model, data):
    """What `evaluate` and `outputs.infer_metrics` (results.json) score."""
    results = evaluation.evaluate(model, data=data, normalization=None, verbose=0)
    metrics, _, _ = outputs.infer_metrics(model, data.map(lambda x, y: (tf.cast(x, tf.float32), y))
                                        .batch(8))
    return results, metrics


# ---------------------------------------------------------------------------
# Item 10 (issue 11) and item 3 (issue 20): ties are not hits.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("scores, top1, top5", [
    # Every class tied: top-1 is argmax's class 0 alone, top-5 classes 0-4.
    ([0.1] * CLASSES, 0.1, 0.5),
    # Always class 0; the other nine tie for second place: 1-4 are top-5.
    ([10.0] + [0.0] * (CLASSES - 1), 0.1, 0.5),
])
def test_a_constant_or_uniform_model_scores_no_tie_as_a_hit(scores, top1, top5):
    model = constant_model(scores)
    data = balanced_dataset()
    results, metrics = _scores(model, data)
    assert (results["top1_accuracy"], results["top5_accuracy"]) == pytest.approx((top1, top5))
    assert (metrics["top1"], metrics["top5"]) == pytest.approx((top1, top5))
    # Top-1 is Keras' own accuracy; training's metrics follow the same rule.
    assert keras_metric(keras.metrics.SparseCategoricalAccuracy(), model, data) == (
        pytest.approx(top1))
    assert keras_metric(TopKAccuracy(k=1), model, data) == pytest.approx(top1)
    assert keras_metric(TopKAccuracy(k=5), model, data) == pytest.approx(top5)


def test_diverged_model_scores_nothing_as_in_keras():
    # NaN outputs (a diverged model): no hit at any k; the strict
    # comparisons alone would count every label as a hit.
    model = constant_model([np.nan] * CLASSES)
    data = balanced_dataset()
    metrics, _, _ = outputs.infer_metrics(model, data.map(lambda x, y: (tf.cast(x, tf.float32), y))
                                        .batch(8))
    keras_top5 = keras_metric(keras.metrics.SparseTopKCategoricalAccuracy(k=5), model, data)
    assert metrics["top5"] == pytest.approx(keras_top5) == 0.0
    assert metrics["top1"] == keras_metric(TopKAccuracy(k=1), model, data) == 0.0


# ---------------------------------------------------------------------------
# Item 5: a model whose class count is not the data's fails before inference.
# ---------------------------------------------------------------------------
def test_evaluate_refuses_a_class_count_mismatch_before_the_first_batch(tmp_path, monkeypatch,
                                                                          capsys):
    from keras_googlenet import cli

    path = tmp_path / "three.keras"
    constant_model([1.0, 0.0, 0.0]).save(path)  # 3 classes; the digits have 10

    def no_inference(*args, **kwargs):
        raise AssertionError("inference ran before the class counts were compared")

    monkeypatch.setattr(evaluation, "predict_crops", no_inference)
    code = cli.main(["evaluate", "--model", str(path), "--data", "embedded", "--verbose", "0"])
    assert code != 0
    line, = capsys.readouterr().err.splitlines()
    assert line.startswith("googlenet evaluate: error: ")
    assert str(path) in line and "3 classes" in line and "10" in line


def test_evaluate_checks_the_class_names_of_a_dataset():
    # A tf.data.Dataset has no class count; its class names give one.
    with pytest.raises(ValueError, match=r"has 10 classes but `class_names` has 3"):
        evaluation.evaluate(constant_model([0.0] * CLASSES), data=balanced_dataset(),
                            class_names=["a", "b", "c"], normalization=None, verbose=0)


def test_a_predictor_of_unknown_class_count_is_asked_with_one_crop():
    calls = []

    def three_classes(crops):
        calls.append(int(crops.shape[0]))
        return tf.fill([tf.shape(crops)[0], 3], 1 / 3)

    foreign = predictors.Predictor("foreign", three_classes, SIZE)  # classes=None
    with pytest.raises(ValueError, match=r"'foreign' has 3 classes but `class_names` has 10"):
        evaluation.evaluate(foreign, data=balanced_dataset(), class_names=list("0123456789"),
                            verbose=0)
    assert calls == [1]


# ---------------------------------------------------------------------------
# Item 12: one line per error, naming the problem and the path or flag.
# ---------------------------------------------------------------------------
def run_cli(argv, capsys):
    """`googlenet argv` in this process: (exit code, stderr lines)."""
    from keras_googlenet import cli

    code = cli.main(argv)
    return code, capsys.readouterr().err.splitlines()


def no_training(config):
    raise AssertionError(f"training started with {config}")


def assert_one_error_line(command, lines, *names):
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"googlenet {command}: error: "), lines
    for name in names:
        assert name in lines[0], lines


@pytest.mark.parametrize("flag, value", [
    ("--learning-rate", "inf"), ("--learning-rate", "nan"), ("--weight-decay", "inf"),
    ("--aux-weight", "nan"), ("--decay-epochs", "inf"),
])
def test_non_finite_float_flag_is_one_line_naming_the_flag(tmp_path, capsys, monkeypatch,
                                                           flag, value):
    monkeypatch.setattr(train, "run", no_training)
    out = tmp_path / "never"
    code, lines = run_cli(["train", "--output-dir", str(out), flag, value], capsys)
    assert code == 2
    assert_one_error_line("train", lines, flag, "finite")
    assert not out.exists()


def test_non_finite_value_in_a_config_file_names_the_flag(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train, "run", no_training)
    path = tmp_path / "c.json"
    path.write_text('{"learning_rate": Infinity}')  # Python's json reads it
    code, lines = run_cli(["train", "--recipe", str(path), "--output-dir",
                           str(tmp_path / "never")], capsys)
    assert code == 2
    assert_one_error_line("train", lines, "--learning-rate", "finite")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "three.keras"
    constant_model([1.0, 0.0, 0.0]).save(path)
    return str(path)


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody can write to, root included (chattr +i as root)."""
    path = tmp_path / "read_only"
    path.mkdir()
    path.chmod(0o555)
    immutable = False
    if os.access(path, os.W_OK):  # root ignores the mode
        immutable = shutil.which("chattr") and subprocess.run(
            ["chattr", "+i", str(path)], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("cannot make a directory read-only here")
    yield path
    if immutable:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    path.chmod(0o755)


def test_read_only_output_dir_is_one_line_naming_it(read_only_dir, capsys):
    code, lines = run_cli(["train", "--output-dir", str(read_only_dir), "--epochs", "1",
                           "--export-dir", ""], capsys)
    assert code == 2
    assert_one_error_line("train", lines, str(read_only_dir))
    assert "Traceback" not in lines[0] and "Errno" not in lines[0]


def test_output_dir_below_a_read_only_dir(read_only_dir, capsys):
    out = read_only_dir / "run"
    code, lines = run_cli(["train", "--output-dir", str(out), "--epochs", "1"], capsys)
    assert code == 2
    assert_one_error_line("train", lines, str(out))


def test_export_under_a_file_names_the_file(tmp_path, capsys, model_file):
    blocking = tmp_path / "a_file"
    blocking.write_text("not a directory")
    code, lines = run_cli(["export", "--model", model_file, "--base-dir",
                           str(blocking / "serving")], capsys)
    assert code == 2
    assert_one_error_line("export", lines, str(blocking / "serving"),
                          f"{str(blocking)!r} is a file, not a directory")
    code, lines = run_cli(["export", "--model", model_file, "--base-dir", str(blocking)],
                          capsys)
    assert code == 2
    assert_one_error_line("export", lines, str(blocking), "a file, not a directory")


def test_predict_on_a_directory_names_it(tmp_path, capsys, model_file):
    code, lines = run_cli(["predict", str(tmp_path), "--model", model_file], capsys)
    assert code == 2
    assert_one_error_line("predict", lines, f"{str(tmp_path)!r} is a directory")


def diverging_run(config):
    """What train.run meets when the loss becomes NaN: the real callback."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    x = np.array([[1.0, np.nan, 0.0]] * 4, np.float32)
    model.fit(x, np.zeros((4, 2)), callbacks=[callbacks.StopOnNaN(config)], verbose=0)


def test_divergence_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(train, "run", diverging_run)
    code, lines = run_cli(["train", "--output-dir", str(tmp_path / "run")], capsys)
    assert code == 2
    assert_one_error_line("train", lines, "--learning-rate")


@pytest.mark.parametrize("flag, env", [(True, None), (False, "1")])
def test_verbose_shows_the_traceback(tmp_path, capsys, monkeypatch, model_file, flag, env):
    from keras_googlenet import cli

    if env:
        monkeypatch.setenv(cli.VERBOSE_ENV, env)
    else:
        monkeypatch.delenv(cli.VERBOSE_ENV, raising=False)
    argv = ["--verbose"] * flag + ["predict", str(tmp_path), "--model", model_file]
    code, lines = run_cli(argv, capsys)
    assert code == 2
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1].startswith("googlenet predict: error: ") and str(tmp_path) in lines[-1]


def test_train_keeps_its_own_verbose_level(monkeypatch):
    from keras_googlenet import cli

    args = cli.build_parser(["train"]).parse_args(["--verbose", "train", "--verbose", "0"])
    assert args.show_traceback and args.verbose == 0


# TensorFlow's C++ start-up logs, which no Python setting silences.
TF_LOG_LINE = re.compile(r"^([IWE]\d{4} |WARNING: All log messages before absl)")


@pytest.mark.parametrize("verbose", [False, True])
def test_real_process_exit_code_and_stderr(tmp_path, model_file, verbose):
    blocking = tmp_path / "a_file"
    blocking.write_text("not a directory")
    # Without a TF_CPP_MIN_LOG_LEVEL of the user's, TensorFlow's start-up
    # lines are hidden unless --verbose.
    env = {k: v for k, v in os.environ.items()
           if k not in ("TF_CPP_MIN_LOG_LEVEL", "KERAS_GOOGLENET_VERBOSE")}
    argv = ["--verbose"] * verbose + ["export", "--model", model_file,
                                      "--base-dir", str(blocking / "serving")]
    done = subprocess.run([sys.executable, "-m", "keras_googlenet", *argv],
                          capture_output=True, text=True, env=env, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("googlenet export: error: ") and str(blocking) in lines[-1]
    if verbose:
        assert "Traceback (most recent call last):" in lines
        assert any(TF_LOG_LINE.match(line) for line in lines)
    else:
        # The model file was saved by plain model.save: the loader says once
        # that it assumes the default normalisation, then the one error line.
        assert len(lines) == 2 and "carries no preprocessing contract" in lines[0], done.stderr


# ---------------------------------------------------------------------------
# Converted files (.tflite / .onnx) that disagree with their sidecar, or are
# not models at all: one line naming the file, when the model is loaded.
# ---------------------------------------------------------------------------
CONVERTED_SIZE = 16


@pytest.fixture(scope="module")
def converted_files(tmp_path_factory):
    """A 10-class 16x16 model (the digits' class count) as float .tflite and
    .onnx files with their sidecars, and an image to predict."""
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    from keras_googlenet.models import contract as contract_lib
    from keras_googlenet.serving import convert, quantize
    import helpers as fx

    root = tmp_path_factory.mktemp("converted")
    inputs = keras.Input((CONVERTED_SIZE, CONVERTED_SIZE, 3))
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="predictions")(
        keras.layers.GlobalAveragePooling2D()(inputs))
    model = keras.Model(inputs, outputs)
    contract = contract_lib.Contract(image_size=CONVERTED_SIZE,
                                     class_names=[f"c{i}" for i in range(CLASSES)])
    paths = {}
    for ext, to_file, runtime in (("tflite", convert.to_tflite, "tflite"),
                                  ("onnx", convert.to_onnx, "onnxruntime")):
        paths[ext] = str(root / f"good.{ext}")
        to_file(model, paths[ext])
        quantize.write_sidecar(paths[ext], contract, runtime, "float32", CLASSES)
    image = root / "image.png"
    image.write_bytes(fx.encode(fx.random_array(20, 24)))
    return paths, str(image)


def converted_copy(directory, source, name, data=None, sidecar=None):
    """`directory/name`: `data` (default: `source`'s bytes) with `source`'s
    sidecar, its fields updated from `sidecar`."""
    import json

    target = directory / name
    with open(source, "rb") as f:
        target.write_bytes(f.read() if data is None else data)
    with open(source + ".json", encoding="utf-8") as f:
        contract = json.load(f)
    contract.update(sidecar or {})
    (directory / (name + ".json")).write_text(json.dumps(contract))
    return str(target)


def class_count(count):
    return {"classes": count, "class_names": [f"c{i}" for i in range(count)]}


def cli_on_converted(command, model, image, capsys):
    argv = (["predict", image, "--model", model] if command == "predict" else
            ["evaluate", "--model", model, "--data", "embedded", "--max-examples", "4",
             "--verbose", "0"])
    return run_cli(argv, capsys)


@pytest.fixture
def no_inference(monkeypatch):
    """Fails a test whose model runs: every check is made when it is loaded."""
    from keras_googlenet.inference import converted

    def refuse(*args, **kwargs):
        raise AssertionError("the converted model ran before its checks")

    monkeypatch.setattr(converted.TFLiteRunner, "__call__", refuse)
    monkeypatch.setattr(converted.OnnxRunner, "__call__", refuse)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("ext, count", [("onnx", 7), ("onnx", 12), ("tflite", 7),
                                        ("tflite", 12)])
def test_sidecar_class_names_differ_from_the_model_outputs(converted_files, tmp_path, capsys,
                                                           no_inference, command, ext, count):
    paths, image = converted_files
    model = converted_copy(tmp_path, paths[ext], f"m.{ext}", sidecar=class_count(count))
    code, lines = cli_on_converted(command, model, image, capsys)
    assert code == 2
    assert_one_error_line(command, lines, model, f"{count} class names",
                          f"outputs {CLASSES} classes")


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("ext", ["onnx", "tflite"])
def test_sidecar_image_size_differs_from_the_model_input(converted_files, tmp_path, capsys,
                                                         no_inference, command, ext):
    paths, image = converted_files
    model = converted_copy(tmp_path, paths[ext], f"m.{ext}", sidecar={"image_size": 24})
    code, lines = cli_on_converted(command, model, image, capsys)
    assert code == 2
    assert_one_error_line(command, lines, model, "image_size 24",
                          f"{CONVERTED_SIZE}x{CONVERTED_SIZE}")


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("ext, runtime", [("onnx", "ONNX"), ("tflite", "TFLite")])
@pytest.mark.parametrize("damage", ["truncated", "png"])
def test_unreadable_converted_file_is_one_line(converted_files, tmp_path, capsys, command, ext,
                                               runtime, damage):
    import helpers as fx

    paths, image = converted_files
    with open(paths[ext], "rb") as f:
        data = f.read()
    data = data[:len(data) // 2] if damage == "truncated" else fx.encode(fx.random_array(8, 8))
    model = converted_copy(tmp_path, paths[ext], f"m.{ext}", data=data)
    code, lines = cli_on_converted(command, model, image, capsys)
    assert code == 2
    assert_one_error_line(command, lines, f"{model} is not a readable {runtime} model: ")
    assert "Traceback" not in lines[0]


def onnx_graph_file(path, inputs, outputs, nodes):
    """A hand-made ONNX file: `inputs`/`outputs` are `(name, shape)` pairs."""
    import onnx
    from onnx import helper

    def values(pairs):
        return [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in pairs]

    graph = helper.make_graph(nodes, "g", values(inputs), values(outputs))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("kind", ["two_inputs", "rank_4_output"])
def test_onnx_model_of_the_wrong_signature(converted_files, tmp_path, capsys, no_inference,
                                           command, kind):
    from onnx import helper

    paths, image = converted_files
    model = converted_copy(tmp_path, paths["onnx"], "m.onnx")
    shape = ["n", CONVERTED_SIZE, CONVERTED_SIZE, 3]
    if kind == "two_inputs":
        onnx_graph_file(model, [("images", shape), ("other", shape)], [("out", ["n", CLASSES])],
                        [helper.make_node("Add", ["images", "other"], ["sum"]),
                         helper.make_node("ReduceMean", ["sum"], ["out"], axes=[1, 2],
                                          keepdims=0)])
    else:
        onnx_graph_file(model, [("images", shape)], [("out", shape)],
                        [helper.make_node("Identity", ["images"], ["out"])])
    code, lines = cli_on_converted(command, model, image, capsys)
    assert code == 2
    assert_one_error_line(command, lines, model, "one (batch, S, S, 3) input")


@pytest.mark.parametrize("command", ["predict", "evaluate"])
@pytest.mark.parametrize("ext", ["onnx", "tflite"])
def test_a_consistent_converted_file_still_runs(converted_files, capsys, command, ext):
    paths, image = converted_files
    code, lines = cli_on_converted(command, paths[ext], image, capsys)
    assert code == 0, lines
