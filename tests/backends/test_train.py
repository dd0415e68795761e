"""`googlenet train --backend jax|torch` end to end on the embedded digits
(tiny): model.keras, logs and pictures written, and the SavedModel exported
by a child process on TensorFlow; the model.keras then loads under
TensorFlow with the same predictions and exports there again."""
import json
import os

import numpy as np
import pytest

import helpers as fx

HERE = os.path.dirname(os.path.abspath(__file__))


# About a minute per backend on 2 CPU cores.
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_train_on_backend_then_export_under_tensorflow(backend, tmp_path):
    out_dir, export_dir = tmp_path / "run", tmp_path / "serving"
    process = fx.run_under(backend, [
        "-m", "keras_googlenet", "train", "--backend", backend, "--epochs", "1",
        "--steps-per-epoch", "2", "--image-size", "65", "--batch-size", "8",
        "--save-freq", "1", "--verbose", "0", "--output-dir", str(out_dir),
        # float32: a file saved under mixed_bfloat16 keeps that policy, and
        # bfloat16 rounds differently per backend (~4e-3 relative, seen here).
        "--precision", "float32",
        "--export-dir", str(export_dir)])
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    assert "from a process on the TensorFlow backend" in process.stderr
    results = json.loads((out_dir / "results.json").read_text())
    assert results["export_path"] == str(export_dir / "1")
    assert (export_dir / "1" / "saved_model.pb").exists()
    assert 0 <= results["val"]["top1"] <= 1
    assert json.loads((out_dir / "config.json").read_text())["backend"] == backend
    for name in ("model.keras", "history.csv", "curves.png", "confusion_matrix.png"):
        assert (out_dir / name).exists(), name
    assert json.loads((out_dir / "backup" / "state.json").read_text())["step"] == 2

    # The same predictions under TensorFlow (this process) as on `backend`.
    model_path = str(out_dir / "model.keras")
    fx.result_of(fx.run_under(backend, [os.path.join(HERE, "predict_check.py"), model_path,
                                        str(tmp_path / "theirs.npy")]))
    from keras_googlenet import cli
    from keras_googlenet.inference import loader

    model, contract = loader.load_model(model_path)
    x = np.random.RandomState(3).uniform(
        -100, 100, (2, contract.image_size, contract.image_size, 3)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.load(tmp_path / "theirs.npy"),
                               atol=1e-5)
    assert cli.main(["export", "--model", model_path, "--base-dir", str(export_dir)]) == 0
    assert (export_dir / "2" / "saved_model.pb").exists()
