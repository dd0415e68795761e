"""Learning-rate schedules of the recipes: the paper's (x0.96 every 8 epochs,
staircase), cosine and constant, each after an optional linear warm-up.

A leaf module (Keras only): `LinearWarmup` is named in saved optimizer
configs, so `models.registration` imports this module with Keras.
"""
import math

import keras

from keras_googlenet.models.architecture import SCHEDULES


@keras.saving.register_keras_serializable(package="keras_googlenet")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from `initial_learning_rate * start_factor` to the
    wrapped schedule's value at `warmup_steps`, then the wrapped schedule
    (evaluated at `step - warmup_steps`)."""

    def __init__(self, schedule, warmup_steps, start_factor=0.0):
        self.schedule = schedule
        self.warmup_steps = int(warmup_steps)
        self.start_factor = float(start_factor)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        after = self.schedule(keras.ops.maximum(step - self.warmup_steps, 0.0))
        if self.warmup_steps == 0:
            return after
        target = self.schedule(0)
        fraction = keras.ops.minimum(step / self.warmup_steps, 1.0)
        warm = target * (self.start_factor + (1.0 - self.start_factor) * fraction)
        return keras.ops.where(step < self.warmup_steps, warm, after)

    def get_config(self):
        return {
            "schedule": keras.saving.serialize_keras_object(self.schedule),
            "warmup_steps": self.warmup_steps,
            "start_factor": self.start_factor,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["schedule"] = keras.saving.deserialize_keras_object(config["schedule"])
        return cls(**config)


def learning_rate_schedule(
    learning_rate,
    steps_per_epoch,
    epochs,
    schedule="paper",
    decay_rate=0.96,
    decay_epochs=8,
    warmup_epochs=0,
):
    """The learning rate as a function of the optimizer's step.

    Args:
        learning_rate: the initial (peak) learning rate.
        steps_per_epoch: optimizer steps per epoch (global batches).
        epochs: total epochs (the cosine schedule decays to 0 at the end).
        schedule: `"paper"` (times `decay_rate` every `decay_epochs` epochs,
            staircase: the paper's "decrease by 4% every 8 epochs"),
            `"cosine"` or `"constant"`.
        warmup_epochs: linear warm-up from 0 over this many epochs (may be
            fractional), then `schedule` (shifted to start after warm-up).

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule` or a float.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"`schedule` must be one of {SCHEDULES}. Received: schedule={schedule!r}")
    for name, value in (("learning_rate", learning_rate), ("steps_per_epoch", steps_per_epoch),
                        ("epochs", epochs), ("decay_epochs", decay_epochs)):
        if not value > 0:
            raise ValueError(f"`{name}` must be positive. Received: {name}={value!r}")
    if warmup_epochs < 0:
        raise ValueError(f"`warmup_epochs` must be >= 0. Received: warmup_epochs={warmup_epochs!r}")
    warmup_steps = int(round(warmup_epochs * steps_per_epoch))
    if schedule == "paper":
        lr = keras.optimizers.schedules.ExponentialDecay(
            learning_rate,
            decay_steps=decay_epochs * steps_per_epoch,
            decay_rate=decay_rate,
            staircase=True,
        )
    elif schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=max(1, math.ceil(epochs * steps_per_epoch) - warmup_steps)
        )
    else:
        if warmup_steps == 0:
            return float(learning_rate)
        lr = keras.optimizers.schedules.ExponentialDecay(learning_rate, 1, 1.0)
    return LinearWarmup(lr, warmup_steps) if warmup_steps else lr
