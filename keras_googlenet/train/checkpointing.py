"""Fault tolerance: atomic, resumable training checkpoints.

`keras.callbacks.BackupAndRestore` (Keras 3) rewrites its weights file in
place, so a kill during the write leaves a corrupt backup, and it resumes at
the start of the interrupted epoch, not at the step it had reached. This
module writes each checkpoint under a new name, then publishes it by
atomically replacing a small `state.json` that names it: a reader sees the
previous complete checkpoint or the new one, never half of one. It also
saves the dropout layers' random-generator states, which Keras' weights
files leave out, so a resumed run draws the same dropout masks as an
uninterrupted one.
"""
import json
import os
import tempfile

import keras
import numpy as np

STATE_FILE = "state.json"


def atomic_write_text(path, text):
    """Writes `text` to `path` via a temporary file and `os.replace`."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _seed_states(model):
    return [v for v in model.non_trainable_variables if "seed_generator_state" in v.path]


def save(model, directory, epoch, batch, step):
    """Writes a complete checkpoint of `model` (weights, optimizer state,
    random-generator states) and its position in training, atomically.

    Args:
        epoch: the epoch in progress (0-based).
        batch: batches of that epoch already trained.
        step: the global optimizer step.
    """
    os.makedirs(directory, exist_ok=True)
    name = f"ckpt-{step}.weights.h5"
    tmp = os.path.join(directory, f".tmp-{name}")
    model.save_weights(tmp, overwrite=True)
    os.replace(tmp, os.path.join(directory, name))
    state = {
        "epoch": int(epoch),
        "batch": int(batch),
        "step": int(step),
        "weights": name,
        "seed_states": [np.asarray(v.numpy()).tolist() for v in _seed_states(model)],
    }
    atomic_write_text(os.path.join(directory, STATE_FILE), json.dumps(state))
    # Only now is the previous checkpoint unreferenced.
    for entry in os.listdir(directory):
        if entry.startswith(("ckpt-", ".tmp-ckpt-")) and entry != name:
            os.remove(os.path.join(directory, entry))
    return state


def load_state(directory):
    """The published state of `directory`, or None when there is none."""
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def restore(model, directory):
    """Restores the last complete checkpoint into `model` (compiled).

    Returns:
        The state dict (`epoch`, `batch`, `step`) or None if there is no
        checkpoint, in which case `model` is left untouched.
    """
    state = load_state(directory)
    if state is None:
        return None
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(directory, state["weights"]))
    seeds = _seed_states(model)
    if len(seeds) != len(state["seed_states"]):
        raise ValueError(
            f"The checkpoint in {directory} was written by a different model "
            f"({len(state['seed_states'])} random generators, this model has {len(seeds)})."
        )
    for variable, value in zip(seeds, state["seed_states"]):
        variable.assign(np.asarray(value, dtype=variable.dtype))
    return state


class ResumableBackup(keras.callbacks.Callback):
    """Saves a checkpoint every `save_freq` steps and at each epoch end.

    Resuming is done by `train.fit_resumable`, which restores the
    checkpoint, skips the batches already trained and continues the same
    epoch. `initial_epoch` and `initial_batch` tell the callback where the
    (resumed) run starts.
    """

    def __init__(self, directory, save_freq=100, initial_epoch=0, initial_batch=0):
        super().__init__()
        if save_freq != "epoch" and (not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(
                f"`save_freq` must be 'epoch' or a positive int. Received: save_freq={save_freq!r}"
            )
        self.directory = directory
        self.save_freq = save_freq
        self._epoch = initial_epoch
        self._offset = initial_batch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self._epoch:
            self._offset = 0
        self._epoch = epoch

    def _save(self, batch_in_epoch):
        step = int(self.model.optimizer.iterations.numpy())
        save(self.model, self.directory, self._epoch, batch_in_epoch, step)

    def on_train_batch_end(self, batch, logs=None):
        done = self._offset + batch + 1
        if self.save_freq != "epoch" and done % self.save_freq == 0:
            self._save(done)

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        save(self.model, self.directory, epoch + 1, 0, step)
        self._offset = 0
