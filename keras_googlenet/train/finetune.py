"""Transfer learning: a trained GoogLeNet as the backbone of a new classifier.

The recipe keras.applications users know: replace the classifier for the new
classes, train it with the backbone frozen, then unfreeze the backbone and
train everything with a lower learning rate. Batch-norm layers stay in
inference mode throughout (frozen statistics): small fine-tuning batches
would otherwise overwrite the pretrained statistics.
"""
import json
import os

import keras

from keras_googlenet.data import pipeline as data
from keras_googlenet.train import recipe
from keras_googlenet.data import sources
from keras_googlenet.models.googlenet import OUTPUT_NAME, inference_model

BACKBONE_OUTPUT = "pool5_7x7_s1"


def load_pretrained(path):
    """A `.keras` GoogLeNet (e.g. the main job's `model.keras`)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such model file. Received: model={path!r}")
    if not path.endswith(".keras"):
        raise ValueError(
            "--model must be a `.keras` file saved by `googlenet train` or `model.save`. "
            f"Received: model={path!r}"
        )
    return inference_model(keras.models.load_model(path, compile=False))


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


def add_arguments(parser):
    parser.add_argument("--model", required=True, help="pretrained .keras GoogLeNet")
    parser.add_argument("--data", default="embedded", help="data spec (see googlenet train)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--image-size", type=int, default=None,
                        help="default: the model's input size")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--head-epochs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=4, help="epochs after unfreezing")
    parser.add_argument("--head-learning-rate", type=float, default=0.01)
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--steps-per-epoch", type=int, default=None)
    parser.add_argument("--normalization", default="caffe")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", default="runs/finetune/model.keras")
    parser.add_argument("--verbose", type=int, default=1)


def run(args):
    if args.head_epochs < 0 or args.epochs < 0 or args.head_epochs + args.epochs == 0:
        raise ValueError("--head-epochs and --epochs must be >= 0 and not both 0. Received: "
                         f"head_epochs={args.head_epochs}, epochs={args.epochs}")
    pretrained = load_pretrained(args.model)
    image_size = args.image_size or pretrained.input.shape[1]
    if image_size is None:
        raise ValueError("The model takes any size: pass --image-size.")
    train_source = sources.get_source(args.data, "train", data_dir=args.data_dir)
    val_source = sources.get_source(args.data, "validation", data_dir=args.data_dir)

    def dataset(source, training):
        return data.build_dataset(source, training=training, image_size=image_size,
                                  batch_size=args.batch_size, seed=args.seed,
                                  normalization=args.normalization, cache=True)

    model = replace_classifier(pretrained, train_source.num_classes)
    histories = finetune(model, dataset(train_source, True), dataset(val_source, False),
                         head_epochs=args.head_epochs, epochs=args.epochs,
                         head_learning_rate=args.head_learning_rate,
                         learning_rate=args.learning_rate,
                         steps_per_epoch=args.steps_per_epoch, verbose=args.verbose)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    model.save(args.output)
    last = {phase: {k: v[-1] for k, v in h.items()} for phase, h in histories.items()}
    print(json.dumps({"model_path": args.output, "final": last}, indent=2))
    return 0
