"""The main job: flags, logs, export, NaN handling and resuming after a kill."""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_googlenet import cli
from keras_googlenet.train import config as config_lib
from keras_googlenet.train import callbacks

# A shortened main job: the embedded digits at the smallest size the
# auxiliary heads allow, a few steps.
TINY = ["--image-size", "65", "--batch-size", "8", "--steps-per-epoch", "6", "--epochs", "2",
        "--save-freq", "2", "--deterministic", "--verbose", "0"]


def _train_cmd(output_dir, *extra):
    return [sys.executable, "-m", "keras_googlenet", "train", "--output-dir", str(output_dir),
            "--export-dir", "", "--val-split", "", *TINY, *extra]


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _final_weights(output_dir):
    return keras.models.load_model(os.path.join(output_dir, "model.keras")).get_weights()


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(_train_cmd(reference), check=True, env=_env(), timeout=300,
                   capture_output=True)

    resumed = tmp_path / "resumed"
    proc = subprocess.Popen(_train_cmd(resumed), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    state_file = resumed / "backup" / "state.json"
    deadline = time.time() + 240
    state = None
    while time.time() < deadline and proc.poll() is None:
        if state_file.exists():
            state = json.loads(state_file.read_text())
            if state["batch"] > 0:  # a checkpoint from the middle of an epoch
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (resumed / "model.keras").exists()

    result = subprocess.run(_train_cmd(resumed), env=_env(), timeout=300, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming from" in result.stdout
    expected, actual = _final_weights(reference), _final_weights(resumed)
    assert len(expected) == len(actual)
    for a, b in zip(expected, actual):
        np.testing.assert_array_equal(a, b)
    # Every epoch is logged once, however the run was cut.
    lines = (resumed / "history.csv").read_text().strip().splitlines()
    epochs = [line.split(",")[0] for line in lines[1:]]
    assert epochs[-1] == "1"


@pytest.mark.slow
def test_short_main_job_writes_logs_model_and_export(tmp_path):
    out, export = tmp_path / "run", tmp_path / "export"
    preset = tmp_path / "preset"
    argv = ["train", "--output-dir", str(out), "--export-dir", str(export), "--image-size", "65",
            "--batch-size", "16", "--steps-per-epoch", "3", "--epochs", "1", "--verbose", "0",
            "--preset-dir", str(preset)]
    assert cli.main(argv) == 0
    for name in ("config.json", "history.csv", "curves.png", "model.keras", "results.json"):
        assert (out / name).exists(), name
    assert any(f.startswith("events") for _, _, files in os.walk(out / "tensorboard")
               for f in files)
    config = json.loads((out / "config.json").read_text())
    assert config["global_batch"] == 16 and config["num_classes"] == 10
    assert config["batch_norm"] is True  # the embedded recipe's documented deviation
    header = (out / "history.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "predictions_top1", "val_loss", "val_predictions_top1"} <= set(header)
    results = json.loads((out / "results.json").read_text())
    assert results["export_path"] == str(export / "1")
    assert (export / "1" / "saved_model.pb").exists()
    assert 0.0 <= results["val"]["top1"] <= 1.0 and results["val"]["examples"] == 360
    # The preset folder is the saved model, with its contract.
    from keras_googlenet.inference import loader

    assert results["preset_path"] == str(preset)
    saved, saved_contract = loader.load_model(str(out / "model.keras"))
    from_preset, preset_contract = loader.load_model(str(preset))
    assert preset_contract.class_names == saved_contract.class_names == tuple(map(str, range(10)))
    assert preset_contract.normalization == saved_contract.normalization
    x = np.random.default_rng(0).uniform(-100, 100, (2, 65, 65, 3)).astype("float32")
    np.testing.assert_allclose(from_preset.predict(x, verbose=0), saved.predict(x, verbose=0),
                               atol=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["--learning-rate", "-1"], "--learning-rate must be positive"),
    (["--precision", "half"], "--precision: invalid choice: 'half'"),
    (["--image-size", "64"], "at least 65 with the auxiliary classifiers"),
    (["--ema-momentum", "1.5"], "--ema-momentum must be in"),
])
def test_invalid_flag_fails_before_any_work(tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    try:
        code = cli.main(["train", "--output-dir", str(out), *argv])
    except SystemExit as e:  # argparse refuses a value outside the choices
        code = e.code
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_flag_of_wrong_type_and_bad_config_file(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--epochs", "many"])
    assert "epochs must be of type int. Received: epochs='many'" in capsys.readouterr().err
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"epochs": 3, "learning_rat": 0.1}))
    assert cli.main(["train", "--recipe", str(bad)]) == 2
    assert "Unknown configuration key 'learning_rat'" in capsys.readouterr().err


def test_config_file_values_and_flags_that_override_them(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 3, "learning-rate": 0.5, "flip": "true"}))
    args = cli.build_parser(["train"]).parse_args(["train", "--recipe", str(path), "--epochs", "5"])
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_lib.TrainConfig)}
    config = config_lib.build(values)
    assert (config.epochs, config.learning_rate, config.flip) == (5, 0.5, True)
    # Unset values come from the default recipe for no --data: embedded_digits.
    assert config.image_size == config_lib.recipe_values("embedded_digits")["image_size"]
    paper = config_lib.TrainConfig(data="tfds:imagenet2012").resolved()
    assert (paper.image_size, paper.schedule, paper.batch_norm) == (224, "paper", False)


def test_nan_loss_stops_with_advice():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    config = config_lib.TrainConfig(learning_rate=0.5).resolved()
    x = np.array([[1.0, np.nan, 0.0]] * 4, np.float32)
    with pytest.raises(callbacks.TrainingDiverged, match="lower --learning-rate \\(now 0.5\\)"):
        model.fit(x, np.zeros((4, 2)), callbacks=[callbacks.StopOnNaN(config)], verbose=0)
