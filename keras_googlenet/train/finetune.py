"""Transfer learning: a trained GoogLeNet as the backbone of a new classifier.

The recipe keras.applications users know: replace the classifier for the new
classes, train it with the backbone frozen, then unfreeze the backbone and
train everything with a lower learning rate. Batch-norm layers stay in
inference mode throughout (frozen statistics): small fine-tuning batches
would otherwise overwrite the pretrained statistics.
"""
import os

import keras

from keras_googlenet.inference import loader
from keras_googlenet.models.googlenet import OUTPUT_NAME, inference_model
from keras_googlenet.train import recipe

BACKBONE_OUTPUT = "pool5_7x7_s1"


def load_pretrained(path, **overrides):
    """A `.keras` GoogLeNet (e.g. the main job's `model.keras`) as an inference
    model, and its preprocessing contract (see `keras_googlenet.load_model`)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such model file. Received: model={path!r}")
    if not path.endswith(".keras"):
        raise ValueError(
            "--model must be a `.keras` file saved by `googlenet train` or `model.save`. "
            f"Received: model={path!r}"
        )
    model, contract = loader.load_model(path, **overrides)
    return inference_model(model), contract


def replace_classifier(model, num_classes, dropout_rate=0.4,
                       classifier_activation="softmax"):
    """A new model: `model`'s backbone (up to pool5) and a fresh classifier.

    The backbone layers are shared with `model` (not copied), named as in
    the paper; the new head is `pool5_dropout`, `classifier`, `predictions`.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"`num_classes` must be a positive int. Received: {num_classes!r}")
    names = {layer.name for layer in model.layers}
    if BACKBONE_OUTPUT not in names:
        raise ValueError(
            f"The model has no {BACKBONE_OUTPUT!r} layer: pass a GoogLeNet built with "
            "include_top=True (or build yours with pooling='avg')."
        )
    features = model.get_layer(BACKBONE_OUTPUT).output
    x = keras.layers.Dropout(dropout_rate, name="pool5_dropout")(features)
    x = keras.layers.Dense(num_classes, name="classifier")(x)
    outputs = keras.layers.Activation(classifier_activation or "linear", dtype="float32",
                                      name=OUTPUT_NAME)(x)
    return keras.Model(model.input, outputs, name=f"{model.name}_finetuned")


def set_backbone_trainable(model, trainable):
    """Freezes or unfreezes everything but the new head. Batch norm stays
    frozen: Keras 3 runs a non-trainable BatchNormalization in inference
    mode."""
    head = {"pool5_dropout", "classifier", OUTPUT_NAME}
    for layer in model.layers:
        if layer.name in head:
            layer.trainable = True
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
        else:
            layer.trainable = trainable


def finetune(model, train_data, val_data=None, head_epochs=2, epochs=4, head_learning_rate=0.01,
             learning_rate=0.001, steps_per_epoch=None, verbose=1):
    """Two phases: the head alone on a frozen backbone, then everything.

    Args:
        model: the result of `replace_classifier`.
        train_data, val_data: datasets of (normalised images, labels).
        head_epochs: epochs of phase 1 (backbone frozen).
        epochs: epochs of phase 2 (backbone unfrozen), at `learning_rate`,
            which should be well below `head_learning_rate`.

    Returns:
        {"head": history dict, "full": history dict}.
    """
    histories = {}
    for phase, n, lr, trainable in (("head", head_epochs, head_learning_rate, False),
                                    ("full", epochs, learning_rate, True)):
        if n <= 0:
            continue
        set_backbone_trainable(model, trainable)
        # Re-compiling after changing `trainable` is what makes it take effect.
        recipe.compile_model(model, recipe.make_optimizer(lr, weight_decay=0, ema_momentum=None))
        h = model.fit(train_data, validation_data=val_data, epochs=n,
                      steps_per_epoch=steps_per_epoch, verbose=verbose)
        histories[phase] = h.history
    return histories
