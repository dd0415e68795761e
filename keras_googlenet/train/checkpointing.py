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

The last two checkpoints are kept, each with the SHA-256 of its file: when
the newest cannot be read, or its bytes are not those written (an HDF5 file
with bytes overwritten in the middle often loads, as other weights),
`restore` falls back to the older one and says so. A save first checks
that the disk has room for the file: h5py can crash the process when a
write fails half-way (a full disk); a save that fails anyway closes and
removes its partial file. `state.json` also records the
settings of the run that writes the directory (`start`), so that a resume
with other settings can be refused.
"""
import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil

import h5py
import keras
import numpy as np

from keras_googlenet import files

log = logging.getLogger(__name__)

STATE_FILE = "state.json"
_KEYS = ("epoch", "batch", "step", "weights", "seed_states")
# Recorded since the checkpoints were hashed; older states lack it.
_OPTIONAL_KEYS = ("sha256",)


def _seed_states(model):
    return [v for v in model.non_trainable_variables if "seed_generator_state" in v.path]


def save(model, directory, epoch, batch, step):
    """Writes a complete checkpoint of `model` (weights, optimizer state,
    random-generator states) and its position in training, atomically.

    The checkpoint published before stays as `state["previous"]`; older
    ones are deleted.

    Args:
        epoch: the epoch in progress (0-based).
        batch: batches of that epoch already trained.
        step: the global optimizer step.
    """
    os.makedirs(directory, exist_ok=True)
    current = load_state(directory) or {}
    name = f"ckpt-{step}.weights.h5"
    tmp = os.path.join(directory, f".tmp-{name}")
    _check_space(model, directory)
    try:
        model.save_weights(tmp, overwrite=True)
    except BaseException:
        _discard_partial_h5(tmp)
        raise
    digest = _sha256(tmp)
    os.replace(tmp, os.path.join(directory, name))
    previous = _checkpoint(current)
    if previous and previous["weights"] == name:
        # The same step saved again (or rewritten after a fallback): the
        # older one is still the one before it.
        previous = current.get("previous")
    state = {
        "epoch": int(epoch),
        "batch": int(batch),
        "step": int(step),
        "weights": name,
        "sha256": digest,
        "seed_states": [np.asarray(v.numpy()).tolist() for v in _seed_states(model)],
        "previous": previous,
        "run": current.get("run"),
    }
    files.atomic_write(os.path.join(directory, STATE_FILE), json.dumps(state))
    # Only now are the checkpoints before `previous` unreferenced.
    keep = {name, previous["weights"] if previous else None}
    for entry in os.listdir(directory):
        if entry.startswith(("ckpt-", ".tmp-ckpt-")) and entry not in keep:
            os.remove(os.path.join(directory, entry))
    return state


def _checkpoint(state):
    """The checkpoint part of `state` (no run settings, no older one), or
    None when it names no checkpoint."""
    if not state or state.get("weights") is None:
        return None
    return {k: state[k] for k in _KEYS + _OPTIONAL_KEYS if k in state}


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_space(model, directory):
    """Raises OSError(ENOSPC) before writing when `directory` has no room
    for a checkpoint of `model`: its variables (and the optimizer's) plus
    HDF5's metadata (about 1 KB per variable, measured on GoogLeNet)."""
    optimizer = getattr(model, "optimizer", None)
    variables = list(model.weights) + (list(optimizer.variables) if optimizer else [])
    needed = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
    needed += 4096 * len(variables) + 2**16
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"No space left for a checkpoint (it needs about "
                                    f"{needed / 2**20:.1f} MB, {free / 2**20:.1f} MB are free)",
                      directory)


def _discard_partial_h5(path):
    """Closes the HDF5 file Keras left open at `path` when its save failed
    (h5py would flush it again at exit, and crash on a full disk) and
    removes it."""
    for file_id in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        if os.path.abspath(os.fsdecode(file_id.name)) == os.path.abspath(path):
            with contextlib.suppress(Exception):  # its flush fails as the save did
                h5py.File(file_id).close()
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


def start(directory, run):
    """Marks `directory` as used by a new run with settings `run` (a dict
    stored as `state["run"]`), before any checkpoint: from then on, a
    checkpoint file without a readable `state.json` cannot come from a
    kill, and is refused rather than overwritten."""
    os.makedirs(directory, exist_ok=True)
    state = {"epoch": 0, "batch": 0, "step": 0, "weights": None, "seed_states": [],
             "previous": None, "run": run}
    files.atomic_write(os.path.join(directory, STATE_FILE), json.dumps(state))


def _checkpoint_files(directory):
    if not os.path.isdir(directory):
        return []
    return sorted(e for e in os.listdir(directory) if e.startswith("ckpt-"))


def load_state(directory):
    """The published state of `directory`, or None when there is none.

    Raises:
        ValueError: `state.json` is unreadable, or missing while checkpoint
            files are there (neither can come from a kill: resuming cannot
            be done, and starting afresh would delete the checkpoints).
    """
    path = os.path.join(directory, STATE_FILE)
    advice = (f"restore it, or move {directory} away to start afresh "
              "(or use a new --output-dir)")
    if not os.path.exists(path):
        files = _checkpoint_files(directory)
        if files:
            raise ValueError(f"{path} is missing, but {directory} holds checkpoint files "
                             f"({', '.join(files)}): it says which one to resume from; "
                             f"{advice}.")
        return None
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        if not isinstance(state, dict) or any(k not in state for k in _KEYS):
            raise ValueError(f"expected an object with the keys {', '.join(_KEYS)}")
    except (OSError, UnicodeDecodeError, ValueError) as e:
        empty = os.path.isfile(path) and os.path.getsize(path) == 0
        raise ValueError(f"The checkpoint state {path} is "
                         + ("empty" if empty else f"unreadable ({e})")
                         + f": it says which checkpoint to resume from; {advice}.") from None
    return state


def _load(model, directory, checkpoint):
    seeds = _seed_states(model)
    if len(seeds) != len(checkpoint["seed_states"]):
        raise ValueError(
            f"The checkpoint in {directory} was written by a different model "
            f"({len(checkpoint['seed_states'])} random generators, this model has {len(seeds)})."
        )
    path = os.path.join(directory, checkpoint["weights"])
    if checkpoint.get("sha256") and _sha256(path) != checkpoint["sha256"]:
        raise ValueError("its bytes differ from those written, by their SHA-256")
    model.load_weights(path)
    for variable, value in zip(seeds, checkpoint["seed_states"]):
        variable.assign(np.asarray(value, dtype=variable.dtype))


def restore(model, directory):
    """Restores the last readable checkpoint into `model` (compiled).

    When the newest checkpoint cannot be read, the one before it is
    restored (with a warning) and published as the newest.

    Returns:
        The state dict (`epoch`, `batch`, `step`, ...) or None if there is
        no checkpoint, in which case `model` is left untouched.

    Raises:
        ValueError: `state.json` is unreadable (see `load_state`), or no
            checkpoint it names can be read.
    """
    state = load_state(directory)
    newest = _checkpoint(state)
    if newest is None:
        return None
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    try:
        _load(model, directory, newest)
        return state
    except Exception as e:  # any failure to read it: the older one may be intact
        error = e
    older = _checkpoint(state.get("previous"))
    path = os.path.join(directory, newest["weights"])
    if older is None:
        raise ValueError(f"The checkpoint {path} is unreadable ({error}), and there is no "
                         f"older one in {directory}: move {directory} away to start afresh.")
    log.warning("The newest checkpoint %s is unreadable (%s); resuming from the older one, "
                "%s (epoch %d, batch %d).", path, error, older["weights"],
                older["epoch"] + 1, older["batch"])
    try:
        _load(model, directory, older)
    except Exception as e:
        raise ValueError(f"Neither checkpoint in {directory} can be read: {path}: {error}; "
                         f"{older['weights']}: {e}.") from None
    # Published, so that the next save keeps this one as the older one.
    state = dict(older, previous=None, run=state.get("run"))
    files.atomic_write(os.path.join(directory, STATE_FILE), json.dumps(state))
    return state


class ResumableBackup(keras.callbacks.Callback):
    """Saves a checkpoint every `save_freq` steps and at each epoch end.

    Resuming is done by `train.fit_resumable`, which restores the
    checkpoint, skips the batches already trained and continues the same
    epoch. `initial_epoch` and `initial_batch` tell the callback where the
    (resumed) run starts. Given `steps_per_epoch`, no checkpoint is saved
    after an epoch's last batch: the epoch-end one follows validation, and
    a kill during validation then resumes before the last batches, so the
    epoch is validated and logged once.
    """

    def __init__(self, directory, save_freq=100, initial_epoch=0, initial_batch=0,
                 steps_per_epoch=None):
        super().__init__()
        if save_freq != "epoch" and (not isinstance(save_freq, int) or save_freq < 1):
            raise ValueError(
                f"`save_freq` must be 'epoch' or a positive int. Received: save_freq={save_freq!r}"
            )
        self.directory = directory
        self.save_freq = save_freq
        self._epoch = initial_epoch
        self._offset = initial_batch
        self.steps_per_epoch = steps_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch != self._epoch:
            self._offset = 0
        self._epoch = epoch

    def _save(self, batch_in_epoch):
        step = int(self.model.optimizer.iterations.numpy())
        save(self.model, self.directory, self._epoch, batch_in_epoch, step)

    def on_train_batch_end(self, batch, logs=None):
        done = self._offset + batch + 1
        if (self.save_freq != "epoch" and done % self.save_freq == 0
                and done != self.steps_per_epoch):
            self._save(done)

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        save(self.model, self.directory, epoch + 1, 0, step)
        self._offset = 0
