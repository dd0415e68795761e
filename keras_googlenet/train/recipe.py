"""The paper's training recipe: losses, learning-rate schedules, optimizer.

Paper section 6: SGD with momentum 0.9, learning rate decreased by 4% every
8 epochs, Polyak averaging of the weights for the final model, auxiliary
losses weighted by 0.3.
"""
import math

import keras

from keras_googlenet.models import architecture
from keras_googlenet.models.googlenet import OUTPUT_NAME, has_aux_classifiers
from keras_googlenet.models.losses import SparseCrossentropy
from keras_googlenet.models.metrics import TopKAccuracy
from keras_googlenet.train.config import SCHEDULES  # noqa: F401



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


def make_optimizer(learning_rate, momentum=0.9, weight_decay=2e-4, ema_momentum=0.999,
                   nesterov=False):
    """SGD with momentum and Polyak averaging (the optimizer's EMA).

    Args:
        learning_rate: a float or a schedule (`learning_rate_schedule`).
        momentum: paper: 0.9.
        weight_decay: decoupled weight decay (Keras applies
            `w -= lr * weight_decay * w`); Caffe's bvlc_googlenet used L2
            0.0002. 0 disables it.
        ema_momentum: Polyak averaging decay; None disables averaging. The
            averaged weights are swapped in for validation
            (`keras.callbacks.SwapEMAWeights`) and written into the model at
            the end of `fit`, so evaluation and export use them.
    """
    if not 0 <= momentum < 1:
        raise ValueError(f"`momentum` must be in [0, 1). Received: momentum={momentum!r}")
    if weight_decay is not None and weight_decay < 0:
        raise ValueError(f"`weight_decay` must be >= 0. Received: weight_decay={weight_decay!r}")
    if ema_momentum is not None and not 0 < ema_momentum < 1:
        raise ValueError(
            f"`ema_momentum` must be in (0, 1) or None. Received: ema_momentum={ema_momentum!r}"
        )
    return keras.optimizers.SGD(
        learning_rate=learning_rate,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay or None,
        use_ema=ema_momentum is not None,
        ema_momentum=ema_momentum if ema_momentum is not None else 0.99,
    )


def _from_logits(model):
    activation = model.get_layer(OUTPUT_NAME).activation
    return getattr(activation, "__name__", "") == "linear"


def losses_and_weights(model, label_smoothing=0.0, aux_weight=architecture.AUX_LOSS_WEIGHT):
    """Per-output losses and their weights: 1.0 for `predictions`, 0.3 for
    each auxiliary head (only when the model has them)."""
    if not 0 <= label_smoothing < 1:
        raise ValueError(
            f"`label_smoothing` must be in [0, 1). Received: label_smoothing={label_smoothing!r}"
        )
    classes = model.get_layer(OUTPUT_NAME).output.shape[-1]
    def loss():
        return SparseCrossentropy(classes, label_smoothing, from_logits=_from_logits(model))
    if not has_aux_classifiers(model):
        return loss(), None
    names = [OUTPUT_NAME] + list(architecture.AUX_HEADS)
    return ({n: loss() for n in names},
            {n: 1.0 if n == OUTPUT_NAME else aux_weight for n in names})


def accuracy_metrics(model):
    """Top-1 and top-5 accuracy on the main head, under evaluation's tie
    rule (`models.metrics`)."""
    classes = model.get_layer(OUTPUT_NAME).output.shape[-1]
    metrics = [TopKAccuracy(k=1, name="top1")]
    if classes > 5:
        metrics.append(TopKAccuracy(k=5, name="top5"))
    return {OUTPUT_NAME: metrics} if has_aux_classifiers(model) else metrics


def compile_model(model, optimizer, label_smoothing=0.0,
                  aux_weight=architecture.AUX_LOSS_WEIGHT, jit_compile=None,
                  steps_per_execution=1):
    """Compiles `model` with the paper's loss: main + 0.3 aux1 + 0.3 aux2.
    `jit_compile=None` XLA-compiles on JAX only: JAX runs op by op otherwise,
    much slower, while XLA slowed TensorFlow's CPU training step
    (docs/performance.md, "Options measured")."""
    if jit_compile is None:
        jit_compile = keras.backend.backend() == "jax"
    loss, loss_weights = losses_and_weights(model, label_smoothing, aux_weight)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        loss_weights=loss_weights,
        metrics=accuracy_metrics(model),
        jit_compile=jit_compile,
        steps_per_execution=steps_per_execution,
    )
    return model
