"""Badly timed kills and damaged checkpoints (issue 11, items 3, 9 and 12).

A kill is simulated in-process: `checkpointing.save` (or validation) raises
right after the moment chosen, so the files on disk are those a SIGKILL
there would leave; the resumed run then starts afresh, as a new process
would. tests/test_train.py checks the same with a real SIGKILL.
"""
import contextlib
import dataclasses
import errno
import json
import logging
import os
import shutil
import signal
import subprocess

import h5py

import keras
import numpy as np
import pytest
from PIL import Image

from keras_googlenet import cli
from keras_googlenet.train import checkpointing
from keras_googlenet.train import config as config_lib
from keras_googlenet.train import resume
from keras_googlenet.train import callbacks
from keras_googlenet.train import trainer as train

STEPS, SAVE_FREQ, EPOCHS = 4, 2, 2
# Checkpoints a full run publishes, in order: (epoch, batch) of state.json.
# None after an epoch's last batch: the epoch-end one, after validation, is next.
SAVES = [(0, 2), (1, 0), (1, 2), (2, 0)]


class Killed(Exception):
    """Stands for the SIGKILL: nothing after it runs."""


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("validation", 2)):
        for label in range(3):
            folder = root / split / f"class_{label}"
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
                pixels[..., label] = 255  # the class is visible
                Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def _config(data_root, output_dir, **overrides):
    values = dict(data=f"folder:{data_root}", output_dir=str(output_dir), export_dir=None,
                  image_size=32, aux_classifiers=False, batch_size=2, steps_per_epoch=STEPS,
                  epochs=EPOCHS, save_freq=SAVE_FREQ, learning_rate=0.01, batch_norm=True,
                  ema_momentum=0.9,
                  deterministic=True, verbose=0)
    values.update(overrides)
    return config_lib.TrainConfig(**values)


def _run(config):
    keras.backend.clear_session()  # as a new process would start
    return train.run(config)


def _run_killed_after_save(monkeypatch, config, count):
    """Runs until the `count`-th checkpoint is published, then 'kills'."""
    real_save, saved = checkpointing.save, []

    def save(*args, **kwargs):
        state = real_save(*args, **kwargs)
        saved.append(state)
        if len(saved) == count:
            raise Killed
        return state

    with monkeypatch.context() as m:
        m.setattr(checkpointing, "save", save)
        with pytest.raises(Killed):
            _run(config)
    return saved[-1]


@contextlib.contextmanager
def _deadline(seconds):
    """Fails instead of hanging (a run that trains forever)."""
    def expire(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _weights(results):
    return keras.models.load_model(results["model_path"]).get_weights()


def _assert_same_weights(expected, results):
    actual = _weights(results)
    assert len(expected) == len(actual)
    for a, b in zip(expected, actual):
        np.testing.assert_array_equal(a, b)


def _logged_epochs(output_dir):
    lines = (output_dir / "history.csv").read_text().strip().splitlines()
    return [line.split(",")[0] for line in lines[1:]]


def _state(output_dir):
    return json.loads((output_dir / "backup" / "state.json").read_text())


def _checkpoint_files(output_dir):
    return sorted(f for f in os.listdir(output_dir / "backup") if f.startswith("ckpt-"))


def _snapshot(directory):
    return {p: (directory / p).read_bytes() for p in sorted(os.listdir(directory))}


@pytest.fixture(scope="module")
def reference(data_root, tmp_path_factory):
    """The uninterrupted run: its final weights and its backup directory."""
    out = tmp_path_factory.mktemp("reference")
    results = _run(_config(data_root, out))
    return _weights(results), out


def _with_backup(reference, output_dir):
    """`output_dir` with a copy of the reference run's backup directory."""
    shutil.copytree(reference[1] / "backup", output_dir / "backup")
    return output_dir / "backup"


# Item 3: a resume from any recorded state finishes the job exactly.

@pytest.mark.slow
def test_full_run_keeps_the_last_two_checkpoints(reference):
    _, out = reference
    state = _state(out)
    assert (state["epoch"], state["batch"], state["step"]) == (EPOCHS, 0, EPOCHS * STEPS)
    assert state["previous"]["step"] == EPOCHS * STEPS - SAVE_FREQ
    assert _checkpoint_files(out) == [f"ckpt-{EPOCHS * STEPS - SAVE_FREQ}.weights.h5",
                                      f"ckpt-{EPOCHS * STEPS}.weights.h5"]
    assert _logged_epochs(out) == ["0", "1"]


@pytest.mark.slow
def test_kills_during_validation_and_in_the_last_epoch_resume_to_the_same_weights(
        data_root, reference, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"

    # Killed while validating epoch 1. STEPS is a multiple of SAVE_FREQ: a
    # checkpoint after the epoch's last batch would say batch ==
    # steps_per_epoch (the endless resume); the last one is before it.
    def killed_evaluate(*args, **kwargs):
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(keras.Model, "evaluate", killed_evaluate)
        with pytest.raises(Killed):
            _run(_config(data_root, out))
    state = _state(out)
    assert (state["epoch"], state["batch"]) == (0, STEPS - SAVE_FREQ)

    # Resumed in the middle of epoch 1, killed in the middle of the last
    # epoch (after the epoch-end checkpoint and one more).
    state = _run_killed_after_save(monkeypatch, _config(data_root, out), 2)
    assert (state["epoch"], state["batch"]) == SAVES[2]
    assert f"epoch 1, batch {STEPS - SAVE_FREQ}." in capsys.readouterr().out

    with _deadline(300):
        results = _run(_config(data_root, out))
    assert f"Resuming from {out / 'backup'}: epoch 2, batch {SAVE_FREQ}." in (
        capsys.readouterr().out)
    _assert_same_weights(reference[0], results)
    assert _logged_epochs(out) == ["0", "1"]


@pytest.mark.slow
def test_state_at_the_end_of_an_epoch_resumes_with_the_next_epoch(
        data_root, reference, tmp_path, monkeypatch, capsys):
    # What earlier versions left after a kill during validation: epoch 0,
    # batch == steps_per_epoch, with the weights after the epoch's last
    # batch (those of the epoch-end checkpoint).
    out = tmp_path / "run"
    _run_killed_after_save(monkeypatch, _config(data_root, out), 2)
    path = out / "backup" / "state.json"
    state = json.loads(path.read_text())
    assert (state["epoch"], state["batch"]) == (1, 0)
    state.update(epoch=0, batch=STEPS)
    path.write_text(json.dumps(state))
    capsys.readouterr()
    with _deadline(300):
        results = _run(_config(data_root, out))
    printed = capsys.readouterr().out
    assert f"epoch 1, batch {STEPS}." in printed
    assert "Epoch 1 was trained to its end; its validation is skipped." in printed
    _assert_same_weights(reference[0], results)


# Item 3: changed settings on resume are refused, naming the flag, and the
# refused run changes nothing.

@pytest.mark.parametrize("overrides, message", [
    (dict(steps_per_epoch=1), "--steps-per-epoch is 1 but the checkpoint in {} was written "
                              "with 4; use a new --output-dir or the same value."),
    (dict(steps_per_epoch=6), "--steps-per-epoch is 6 but the checkpoint in {} was written "
                              "with 4; use a new --output-dir or the same value."),
    (dict(batch_size=3), "--batch-size is 3 but the checkpoint in {} was written with 2; "
                         "use a new --output-dir or the same value."),
    (dict(batch_norm=False), "--batch-norm is False but the checkpoint in {} was written with "
                             "True; use a new --output-dir or the same value."),
    (dict(image_size=40, kernel_5x5=3),
     "--image-size is 40 but the checkpoint in {0} was written with 32; --kernel-5x5 is 3 "
     "but the checkpoint in {0} was written with 5; use a new --output-dir or the same values."),
    # What the model means: the same number of classes in another order (or
    # others), another normalisation, another subset.
    (dict(classes="2,1,0"),
     "--classes is 2,1,0 but the checkpoint in {0} was written without it; the class names of "
     "the training data are ['class_2', 'class_1', 'class_0'] but the checkpoint in {0} was "
     "written with ['class_0', 'class_1', 'class_2']; use a new --output-dir or the same "
     "values."),
    (dict(normalization="torch"), "--normalization is torch but the checkpoint in {} was "
                                  "written with caffe; use a new --output-dir or the same value."),
    (dict(examples_per_class=3), "--examples-per-class is 3 but the checkpoint in {} was "
                                 "written without it; use a new --output-dir or the same value."),
    (dict(ema_momentum=0.0), "--ema-momentum is 0.0 but the checkpoint in {} was written with "
                             "0.9; use a new --output-dir or the same value."),
])
def test_resume_with_other_settings_is_refused(data_root, reference, tmp_path,
                                               overrides, message):
    out = tmp_path / "run"
    backup = _with_backup(reference, out)
    before = _snapshot(backup)
    with pytest.raises(ValueError) as error:
        _run(_config(data_root, out, **overrides))
    assert str(error.value) == message.format(backup)
    assert _snapshot(backup) == before
    assert not (out / "config.json").exists()


def test_every_setting_that_changes_the_model_is_compared_on_resume():
    # The whole resolved config is recorded; what may not change is a list
    # of its fields (a typo there would compare nothing).
    fields = {f.name for f in dataclasses.fields(config_lib.TrainConfig)}
    assert set(config_lib.SAME_ON_RESUME) <= fields
    assert {"classes", "examples_per_class", "normalization", "image_size", "batch_norm",
            "kernel_5x5", "pool4_size", "aux_classifiers", "seed", "holdout_seed"} <= set(
                config_lib.SAME_ON_RESUME)


def test_other_training_values_resume_and_are_logged(reference, caplog):
    backup = reference[1] / "backup"
    settings = dict(_state(reference[1])["run"], epochs=EPOCHS + 2, learning_rate=0.02)
    with caplog.at_level(logging.INFO, logger="keras_googlenet"):
        assert resume.check_resume(str(backup), settings) is not None
    assert (f"--epochs {EPOCHS + 2} (was {EPOCHS}), --learning-rate 0.02 (was 0.01)"
            in caplog.text)


def test_other_class_count_is_refused(data_root, reference, tmp_path):
    out = tmp_path / "run"
    backup = _with_backup(reference, out)
    state = _state(out)
    state["run"]["num_classes"] = 5
    (backup / "state.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match=(
            r"^the number of classes of the training data is 3 but the checkpoint in .* "
            r"was written with 5; use a new --output-dir or the same value\.$")):
        _run(_config(data_root, out))


def test_state_past_a_smaller_steps_per_epoch_is_refused_without_settings(
        data_root, reference, tmp_path):
    # Checkpoints of earlier versions record no settings: the position
    # itself shows that --steps-per-epoch shrank.
    out = tmp_path / "run"
    backup = _with_backup(reference, out)
    state = _state(out)
    del state["run"]
    state.update(epoch=1, batch=2)
    (backup / "state.json").write_text(json.dumps(state))
    with _deadline(120), pytest.raises(ValueError) as error:
        _run(_config(data_root, out, steps_per_epoch=1))
    assert str(error.value) == (
        f"The checkpoint in {backup} is at batch 2 of epoch 2, past --steps-per-epoch 1: it "
        "was written with a larger --steps-per-epoch; use a new --output-dir or the same value.")


def test_refusal_is_one_line_from_the_command(data_root, reference, tmp_path, capsys):
    out = tmp_path / "run"
    backup = _with_backup(reference, out)
    argv = ["train", "--data", f"folder:{data_root}", "--output-dir", str(out),
            "--export-dir", "", "--image-size", "32", "--no-aux-classifiers",
            "--batch-norm", "--batch-size", "16", "--steps-per-epoch", str(STEPS),
            "--ema-momentum", "0.9"]  # the reference's, not the recipe's
    assert cli.main(argv) == 2
    assert capsys.readouterr().err == (
        f"googlenet train: error: --batch-size is 16 but the checkpoint in {backup} was "
        "written with 2; use a new --output-dir or the same value.\n")


# Item 9: damaged checkpoints.

@pytest.mark.parametrize("content, problem", [
    (None, "is missing, but {backup} holds checkpoint files "
           "(ckpt-6.weights.h5, ckpt-8.weights.h5)"),
    ("", "The checkpoint state {path} is empty"),
    ("{\"epoch\": 0, \"bat", "The checkpoint state {path} is unreadable (Unterminated string"),
    ("[1, 2]", "The checkpoint state {path} is unreadable (expected an object with the keys "
               "epoch, batch, step, weights, seed_states)"),
])
def test_damaged_state_file_is_named_and_nothing_is_deleted(
        data_root, reference, tmp_path, content, problem):
    out = tmp_path / "run"
    backup = _with_backup(reference, out)
    path = backup / "state.json"
    if content is None:
        path.unlink()
    else:
        path.write_text(content)
    before = _snapshot(backup)
    with pytest.raises(ValueError) as error:
        _run(_config(data_root, out))
    message = str(error.value)
    assert problem.format(backup=backup, path=path) in message
    assert str(path) in message
    assert message.endswith(f"restore it, or move {backup} away to start afresh "
                            "(or use a new --output-dir).")
    assert _snapshot(backup) == before  # the checkpoint is still there


@pytest.mark.slow
def test_newest_checkpoint_unreadable_falls_back_to_the_older_one(
        data_root, reference, tmp_path, monkeypatch, caplog, capsys):
    out = tmp_path / "run"
    state = _run_killed_after_save(monkeypatch, _config(data_root, out), 3)
    assert _checkpoint_files(out) == ["ckpt-4.weights.h5", "ckpt-6.weights.h5"]
    newest = out / "backup" / state["weights"]
    newest.write_bytes(newest.read_bytes()[:1000])  # truncated
    with caplog.at_level(logging.WARNING, logger="keras_googlenet"), _deadline(300):
        results = _run(_config(data_root, out))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
                and r.name.startswith("keras_googlenet")]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"The newest checkpoint {newest} is unreadable (")
    assert warnings[0].endswith("); resuming from the older one, ckpt-4.weights.h5 "
                                "(epoch 2, batch 0).")
    assert "Resuming from" in capsys.readouterr().out
    _assert_same_weights(reference[0], results)
    # ckpt-6 was written again, readable this time; still two are kept.
    assert _checkpoint_files(out) == ["ckpt-6.weights.h5", "ckpt-8.weights.h5"]


def test_no_readable_checkpoint_is_an_error_naming_both(data_root, reference, tmp_path):
    out = tmp_path / "run"
    backup = _with_backup(reference, out)
    for name in _checkpoint_files(out):
        (backup / name).write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match=(
            rf"^Neither checkpoint in {backup} can be read: "
            rf"{backup / 'ckpt-8.weights.h5'}: .*; ckpt-6.weights.h5: .*\.$")):
        _run(_config(data_root, out))


def _small_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2),
                              keras.layers.Dropout(0.5)])
    model.compile("sgd", "mse")
    return model


def test_save_keeps_two_checkpoints_and_the_first_one_has_no_fallback(tmp_path):
    model = _small_model()
    checkpointing.save(model, tmp_path, 0, 1, 1)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-1.weights.h5", "state.json"]
    assert checkpointing.load_state(tmp_path)["previous"] is None
    (tmp_path / "ckpt-1.weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=(
            rf"^The checkpoint {tmp_path / 'ckpt-1.weights.h5'} is unreadable \(.*\), and "
            rf"there is no older one in {tmp_path}: move {tmp_path} away to start afresh\.$")):
        checkpointing.restore(_small_model(), tmp_path)
    for step in (2, 3):
        checkpointing.save(model, tmp_path, 0, step, step)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-2.weights.h5", "ckpt-3.weights.h5",
                                            "state.json"]
    state = checkpointing.load_state(tmp_path)
    assert (state["weights"], state["previous"]["weights"]) == ("ckpt-3.weights.h5",
                                                               "ckpt-2.weights.h5")


def _overwrite_middle(path):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = b"\xab" * 64  # HDF5 has no checksum: this often loads
    path.write_bytes(bytes(data))


def _other_model_weights(path, state_file):
    """A readable weights file of another model, under a state without
    hashes (as earlier versions wrote): Keras raises ValueError loading it."""
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(7),
                              keras.layers.Dropout(0.5)])
    other.compile("sgd", "mse")
    other.optimizer.build(other.trainable_variables)
    path.unlink()
    other.save_weights(path)
    state = json.loads(state_file.read_text())
    for checkpoint in (state, state["previous"]):
        del checkpoint["sha256"]
    state_file.write_text(json.dumps(state))


@pytest.mark.parametrize("damage", ["overwritten in the middle", "another model's weights"])
def test_any_failure_to_read_the_newest_falls_back_to_the_older_one(tmp_path, damage, caplog):
    model = _small_model()
    model.optimizer.build(model.trainable_variables)
    checkpointing.save(model, tmp_path, 0, 1, 1)
    older = [w.copy() for w in model.get_weights()]
    model.layers[0].kernel.assign(model.layers[0].kernel + 1.0)
    checkpointing.save(model, tmp_path, 0, 2, 2)
    newest = tmp_path / "ckpt-2.weights.h5"
    if damage == "overwritten in the middle":
        _overwrite_middle(newest)
    else:
        _other_model_weights(newest, tmp_path / "state.json")
    restored = _small_model()
    with caplog.at_level(logging.WARNING, logger="keras_googlenet"):
        state = checkpointing.restore(restored, tmp_path)
    assert (state["weights"], state["batch"]) == ("ckpt-1.weights.h5", 1)
    for a, b in zip(older, restored.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert f"The newest checkpoint {newest} is unreadable (" in caplog.text
    assert "resuming from the older one, ckpt-1.weights.h5 (epoch 1, batch 1)" in caplog.text
    if damage == "overwritten in the middle":
        assert "its bytes differ from those written, by their SHA-256" in caplog.text


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MB file system (a tmpfs; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        # Lazily: a file left open (the failure under test) keeps it busy.
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


def test_a_full_disk_is_refused_before_the_checkpoint_is_written(small_disk):
    # h5py can crash the process when a write fails half-way: nothing may
    # be written that does not fit.
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(100_000)])
    model.compile("sgd", "mse")
    with pytest.raises(OSError) as error:
        checkpointing.save(model, small_disk, 0, 1, 1)
    assert error.value.errno == errno.ENOSPC
    assert str(error.value).startswith("[Errno 28] No space left for a checkpoint (it needs "
                                       "about 1.6 MB, ")
    assert os.listdir(small_disk) == []
    assert len(h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE)) == 0
    # What fits is written.
    small = _small_model()
    checkpointing.save(small, small_disk, 0, 1, 1)
    assert sorted(os.listdir(small_disk)) == ["ckpt-1.weights.h5", "state.json"]


def test_a_failed_save_closes_and_removes_its_partial_file(tmp_path, monkeypatch):
    model = _small_model()
    real = model.save_weights

    def fail_half_way(path, overwrite=True):
        real(path, overwrite=overwrite)
        h5py.File(path, "a")  # left open, as Keras leaves it when a write fails
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(model, "save_weights", fail_half_way)
    with pytest.raises(OSError, match="No space left on device"):
        checkpointing.save(model, tmp_path, 0, 1, 1)
    assert os.listdir(tmp_path) == []
    assert len(h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE)) == 0


def test_checkpoint_file_from_a_kill_during_the_first_save_is_not_a_checkpoint(tmp_path):
    # Killed between publishing the first checkpoint's file and state.json:
    # the run had marked the directory, so this is a fresh start.
    checkpointing.start(tmp_path, {"seed": 1})
    model = _small_model()
    model.save_weights(tmp_path / "ckpt-1.weights.h5")
    assert checkpointing.restore(_small_model(), tmp_path) is None
    checkpointing.save(model, tmp_path, 0, 1, 2)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-2.weights.h5", "state.json"]
    assert checkpointing.load_state(tmp_path)["run"] == {"seed": 1}


# Item 12: the divergence message names only a checkpoint that exists.

def _diverge(config):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile("sgd", "mse")
    x = np.array([[1.0, np.nan, 0.0]] * 4, np.float32)
    with pytest.raises(callbacks.TrainingDiverged) as error:
        model.fit(x, np.zeros((4, 2)), callbacks=[callbacks.StopOnNaN(config)], verbose=0)
    return str(error.value)


def test_divergence_before_any_checkpoint_says_there_is_none(tmp_path):
    config = config_lib.TrainConfig(output_dir=str(tmp_path / "run")).resolved()
    message = _diverge(config)
    assert message.endswith("check the data for corrupt labels or images. "
                            "No checkpoint was written before it.")
    assert "backup" not in message
    checkpointing.start(tmp_path / "run" / "backup", {})  # a run's mark, no checkpoint yet
    assert _diverge(config).endswith("No checkpoint was written before it.")


def test_divergence_after_a_checkpoint_names_it(tmp_path):
    config = config_lib.TrainConfig(output_dir=str(tmp_path / "run")).resolved()
    checkpointing.save(_small_model(), tmp_path / "run" / "backup", 0, 5, 5)
    assert _diverge(config).endswith(
        f"The last checkpoint, {tmp_path / 'run' / 'backup' / 'ckpt-5.weights.h5'} (step 5), "
        "is from before.")
