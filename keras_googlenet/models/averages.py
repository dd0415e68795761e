"""The model that predicts: a training model's main head with the
optimizer's Polyak averages as its weights, for export, prediction and
Grad-CAM alike.

EMA rule: Keras' `model.fit` ends by copying the optimizer's moving averages
into the weights (`finalize_variable_values`), so a model right after `fit`
already holds them and re-applying them changes nothing. A model saved or
exported mid-training (a checkpoint, a custom loop, `train_on_batch`) does
not: there the averages are read with the same public
`optimizer.finalize_variable_values`, into copies, and go into a clone,
leaving the caller's model untouched.
"""
import warnings

import keras

from keras_googlenet.models.googlenet import OUTPUT_NAME, inference_model


def _moving_averages(model, optimizer):
    """{id(variable): its moving average} for the trainable variables of
    `model` (the model the optimizer trained, auxiliary heads included), or
    {} when the optimizer keeps no usable averages.

    The averages are written by `optimizer.finalize_variable_values` (what
    `fit` calls at its end) into copies of the variables, in the order the
    optimizer was built with (`model.trainable_variables`, as `fit` passes
    them): the model's own variables are never written.
    """
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    if not getattr(optimizer, "use_ema", False) or not getattr(optimizer, "built", False):
        return {}
    # Before the first step the averages are still their zero initial value.
    if int(optimizer.iterations.numpy()) == 0:
        return {}
    variables = model.trainable_variables
    copies = [keras.Variable(variable.numpy(), trainable=False) for variable in variables]
    try:
        optimizer.finalize_variable_values(copies)
    except ValueError:  # built on other variables: their number (or shapes) differ
        warnings.warn(
            "The optimizer keeps moving averages (use_ema=True) but of none of "
            "this model's variables; exporting the raw weights.",
            stacklevel=3,
        )
        return {}
    return {id(variable): copy for variable, copy in zip(variables, copies)}


def serving_model(model, use_ema=True, optimizer=None):
    """The single-output model to export, with the EMA weights if any.

    Args:
        model: a GoogLeNet classifier, with or without auxiliary heads.
        use_ema: use the optimizer's moving averages of the weights when it
            keeps them (`use_ema=True` optimizers, after at least one step).
        optimizer: the optimizer holding the averages; defaults to
            `model.optimizer` (e.g. a custom training loop passes its own).

    Returns:
        `(model, used_ema)`: the inference model itself when no averages are
        used, else a clone holding the averaged weights (the caller's model
        is never modified).
    """
    single = inference_model(model)
    if len(single.outputs) != 1 or len(single.output.shape) != 2:
        raise ValueError(
            "Only classifiers (a single `(batch, classes)` output, "
            f"`include_top=True`) can be exported. Received outputs: {single.outputs}"
        )
    averages = {}
    if use_ema:
        averages = _moving_averages(model, optimizer or getattr(model, "optimizer", None))
    if not averages:
        return single, False
    clone = keras.models.clone_model(single)
    # clone_model keeps layer names; variable paths may not (seed generators
    # get fresh names), so variables are matched layer by layer.
    for layer in single.layers:
        targets = clone.get_layer(layer.name).variables
        if len(targets) != len(layer.variables):
            raise RuntimeError(
                f"Layer {layer.name!r} has {len(layer.variables)} variables, its "
                f"clone {len(targets)}."
            )
        for source, target in zip(layer.variables, targets):
            if tuple(source.shape) != tuple(target.shape):
                raise RuntimeError(
                    f"Cloned variables of {layer.name!r} are out of order: "
                    f"{source.path!r} {source.shape} vs {target.path!r} {target.shape}"
                )
            target.assign(averages.get(id(source), source))
    return clone, True


def output_activation(model):
    """The activation of the main classifier: "softmax", or "linear" for logits."""
    layer = next((l for l in model.layers if l.name == OUTPUT_NAME), model.layers[-1])
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "linear")


def output_kind(model):
    """"logits" or "probabilities" for the serving model of `model`."""
    net, _ = serving_model(model)
    return "logits" if output_activation(net) == "linear" else "probabilities"
