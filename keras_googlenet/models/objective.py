"""The paper's training objective: its loss, metrics and optimizer.

Paper section 6: SGD with momentum 0.9, learning rate decreased by 4% every
8 epochs (`models.schedules`), Polyak averaging of the weights for the final
model, auxiliary losses weighted by 0.3.
"""
import keras

from keras_googlenet.models import architecture
from keras_googlenet.models.googlenet import OUTPUT_NAME, has_aux_classifiers
from keras_googlenet.models.losses import SparseCrossentropy
from keras_googlenet.models.metrics import TopKAccuracy


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
    metrics = top_k_metrics(model.get_layer(OUTPUT_NAME).output.shape[-1])
    return {OUTPUT_NAME: metrics} if has_aux_classifiers(model) else metrics


def top_k_metrics(classes):
    """Top-1 accuracy, and top-5 with more than 5 classes."""
    metrics = [TopKAccuracy(k=1, name="top1")]
    if classes > 5:
        metrics.append(TopKAccuracy(k=5, name="top5"))
    return metrics


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
