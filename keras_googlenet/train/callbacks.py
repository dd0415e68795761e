"""Callbacks that stop a run whose loss or weights are no longer finite,
with an error that says where it happened and what to try."""
import math
import os

import keras
import numpy as np

from keras_googlenet.train import checkpointing

NOTHING_SAVED = "Nothing was saved or exported."
# The flag of each fine-tuning phase's learning rate, named in its error.
PHASE_FLAGS = {"head": "--head-learning-rate", "full": "--learning-rate"}


class TrainingDiverged(RuntimeError):
    """The loss (or a weight) became NaN or infinite."""


class StopOnNaN(keras.callbacks.Callback):
    """Like `keras.callbacks.TerminateOnNaN`, but stops with an error that
    says where it happened, what to try, and which checkpoint (if any) is
    from before."""

    def __init__(self, config):
        super().__init__()
        self.config = config

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"The training loss became {float(loss)} at step "
                f"{int(self.model.optimizer.iterations.numpy())} (batch {batch}). "
                f"Try a lower --learning-rate (now {self.config.learning_rate}), "
                "a warm-up (--warmup-epochs 1), --batch-norm, or --precision float32; "
                f"check the data for corrupt labels or images. {self._last_checkpoint()}"
            )

    def _last_checkpoint(self):
        backup_dir = os.path.join(self.config.output_dir, "backup")
        try:
            state = checkpointing.load_state(backup_dir)
        except ValueError:  # named when the run started; not this error's subject
            state = None
        if not state or state["weights"] is None:
            return "No checkpoint was written before it."
        return (f"The last checkpoint, {os.path.join(backup_dir, state['weights'])} "
                f"(step {state['step']}), is from before.")


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops fine-tuning at the first non-finite training (or validation)
    loss, naming the phase and its learning rate flag: a NaN model is never
    worth saving or exporting."""

    def __init__(self, phase, learning_rate):
        super().__init__()
        self.phase, self.learning_rate = phase, learning_rate

    def _check(self, logs, keys, where):
        for key in keys:
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(float(value)):
                raise TrainingDiverged(
                    f"The {'validation' if key.startswith('val_') else 'training'} loss became "
                    f"{float(value)} in the {self.phase} phase of fine-tuning {where}. Try a "
                    f"lower {PHASE_FLAGS[self.phase]} (now {self.learning_rate}) or --precision "
                    f"float32; check the data for corrupt labels or images. {NOTHING_SAVED}")

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self._check(logs, ("loss",), f"at step {step} (batch {batch})")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, ("loss", "val_loss"), f"at the end of epoch {epoch + 1}")


def check_finite_weights(model, phase):
    """Raises `TrainingDiverged` if a weight of `model` is NaN or infinite
    (the last update of a run can break it after its loss was computed)."""
    for weight in model.weights:
        if not np.all(np.isfinite(keras.ops.convert_to_numpy(weight))):
            raise TrainingDiverged(
                f"The weight {weight.path!r} is not finite after the {phase} phase of "
                f"fine-tuning: try a lower --head-learning-rate or --learning-rate, or "
                f"--precision float32. {NOTHING_SAVED}")
