"""Every command, run as a user runs it (`python -m keras_googlenet ...` in
a process of its own), on the Keras backend of this test run. CI's backend
matrix runs this file under KERAS_BACKEND=jax and torch (with triton
installed, as every CUDA build of torch has it: importing it after
TensorFlow aborted every command there); the TensorFlow run skips it, its
commands are tested in-process throughout the suite."""
import json
import os

import pytest

import helpers as fx

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
pytestmark = pytest.mark.skipif(BACKEND == "tensorflow",
                                reason="for the backend matrix (KERAS_BACKEND=jax|torch)")


def googlenet(*args, timeout=600):
    """`googlenet ARGS` on this run's backend; the completed process."""
    return fx.run_under(BACKEND, ["-m", "keras_googlenet", *map(str, args)], timeout=timeout)


def ok(process):
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    return process


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A short `googlenet train` with export, on a folder of two classes."""
    root = tmp_path_factory.mktemp("commands")
    fx.write_class_folder(str(root / "data"), num_classes=2, per_class=6, size=(40, 48))
    image = fx.write_file(str(root / "cat.png"), fx.encode(fx.photo_like(40, 48, seed=5)))
    process = ok(googlenet(
        "train", "--data", f"folder:{root / 'data'}", "--image-size", 65, "--batch-size", 4,
        "--steps-per-epoch", 2, "--epochs", 1, "--holdout-fraction", 0.25,
        "--precision", "float32", "--verbose", 0, "--output-dir", root / "run",
        "--export-dir", root / "serving"))
    return root, image, process


def test_train_ends_with_its_export(run):
    root, _, process = run
    results = json.loads((root / "run" / "results.json").read_text())
    assert json.loads((root / "run" / "config.json").read_text())["backend"] == BACKEND
    assert results["export_path"] == str(root / "serving" / "1")
    assert (root / "serving" / "1" / "saved_model.pb").exists()
    assert "from a process on the TensorFlow backend" in process.stderr


@pytest.mark.parametrize("model", ["run/model.keras", "serving"])
def test_predict(run, model):
    root, image, _ = run
    out = ok(googlenet("predict", image, "--model", root / model)).stdout
    assert "class_0" in out and "class_1" in out


def test_evaluate(run):
    root, _, _ = run
    out = ok(googlenet("evaluate", "--model", root / "run" / "model.keras", "--data",
                       f"folder:{root / 'data'}", "--split", "train", "--crops", 1,
                       "--verbose", 0, "--json", root / "evaluate.json")).stdout
    assert "Top-1" in out or json.loads((root / "evaluate.json").read_text())


def test_export_and_explain_run_on_tensorflow(run):
    root, image, _ = run
    ok(googlenet("export", "--model", root / "run" / "model.keras", "--base-dir",
                 root / "serving2"))
    assert (root / "serving2" / "1" / "saved_model.pb").exists()
    ok(googlenet("explain", image, "--model", root / "run" / "model.keras", "--output-dir",
                 root / "explain"))
    assert any(name.endswith(".png") for name in os.listdir(root / "explain"))


def test_finetune_and_augment(run):
    root, image, _ = run
    ok(googlenet("finetune", "--model", root / "run" / "model.keras", "--data",
                 f"folder:{root / 'data'}", "--mode", "linear-probe", "--verbose", 0,
                 "--output-dir", root / "finetune"))
    assert (root / "finetune" / "model.keras").exists()
    ok(googlenet("augment", image, "--output", root / "grid.png", "-n", 2))
    assert (root / "grid.png").exists()
