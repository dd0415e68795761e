"""Transfer learning: a trained GoogLeNet as the backbone of a new classifier.

The recipe keras.applications users know: replace the classifier for the new
classes, train it with the backbone frozen, then unfreeze the backbone and
train everything with a lower learning rate. Batch-norm layers stay in
inference mode throughout (frozen statistics): small fine-tuning batches
would otherwise overwrite the pretrained statistics.

`run` is `googlenet finetune`: three modes (`linear-probe`: a logistic
regression on the frozen backbone's pooled features, fitted by
scikit-learn and written into an ordinary Dense softmax head; `head`: a new
classifier trained by SGD on the frozen backbone; `full`: the head first,
fitted by the linear probe, then everything, keeping the probe's weights when
everything ends below the probe on the validation data), the logs
`googlenet train` writes (history.csv, curves.png, config.json,
results.json, model.keras with its contract) and an optional TF Serving
export.
"""
import dataclasses
import math
import os
import time

import keras
import numpy as np

from keras_googlenet import files
from keras_googlenet.inference import loader
from keras_googlenet.models import objective
from keras_googlenet.models.googlenet import OUTPUT_NAME, inference_model
from keras_googlenet.train import outputs
from keras_googlenet.train.callbacks import (NOTHING_SAVED, StopOnNonFinite, TrainingDiverged,
                                             check_finite_weights)
from keras_googlenet.train.finetune_config import FinetuneConfig, default

BACKBONE_OUTPUT = "pool5_7x7_s1"
GLOBAL_CLIPNORM = 5.0


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
             learning_rate=0.001, steps_per_epoch=None, verbose=1, callbacks=None):
    """Two phases: the head alone on a frozen backbone, then everything.

    Args:
        model: the result of `replace_classifier`.
        train_data, val_data: datasets of (normalised images, labels).
        head_epochs: epochs of phase 1 (backbone frozen).
        epochs: epochs of phase 2 (backbone unfrozen), at `learning_rate`,
            which should be well below `head_learning_rate`.

        callbacks: Keras callbacks of both phases; the epochs of the second
            phase are numbered after the first's (one history.csv).

    Raises:
        callbacks.TrainingDiverged: the loss (or a weight) became NaN or
            infinite; the run stops there.

    Returns:
        {"head": history dict, "full": history dict}.
    """
    histories = {}
    done = 0
    for phase, n, lr, trainable in (("head", head_epochs, head_learning_rate, False),
                                    ("full", epochs, learning_rate, True)):
        if n <= 0:
            continue
        set_backbone_trainable(model, trainable)
        # Re-compiling after changing `trainable` is what makes it take effect.
        optimizer = objective.make_optimizer(lr, weight_decay=0, ema_momentum=None)
        # A loose clip of the gradients' global norm: it seldom acts, but a
        # confident head meeting augmented views (or weak pretrained
        # features) can otherwise blow the unfrozen backbone up to NaN.
        optimizer.global_clipnorm = GLOBAL_CLIPNORM
        objective.compile_model(model, optimizer)
        h = model.fit(train_data, validation_data=val_data, epochs=done + n, initial_epoch=done,
                      steps_per_epoch=steps_per_epoch, verbose=verbose,
                      callbacks=[StopOnNonFinite(phase, lr), *(callbacks or [])])
        check_finite_weights(model, phase)
        histories[phase] = h.history
        done += n
    return histories


def backbone_features(model, dataset):
    """`(features, labels)`: the pooled backbone features (pool5, before the
    classifier) of every batch of a labelled dataset, as NumPy arrays."""
    from keras_googlenet.inference.predictors import predict_dataset

    features_model = keras.Model(model.input, model.get_layer(BACKBONE_OUTPUT).output)
    return predict_dataset(features_model, dataset, np.float64)


def fit_linear_probe(model, features, labels, num_classes, c=1.0, seed=0):
    """Fits a multinomial logistic regression (scikit-learn, on standardised
    features) and writes it into `model`'s `classifier` Dense layer, so the
    model computes exactly its probabilities: softmax(W x + b) with the
    standardisation folded into W and b.

    Raises:
        callbacks.TrainingDiverged: the features, or the head fitted to them,
            are not finite (a broken backbone).

    Returns:
        The fitted `LogisticRegression`.
    """
    from sklearn.linear_model import LogisticRegression

    if not np.all(np.isfinite(features)):
        raise TrainingDiverged(
            f"The backbone's pooled features ({BACKBONE_OUTPUT}) of "
            f"{int(np.sum(~np.all(np.isfinite(features), axis=1)))} of {len(features)} training "
            "images are NaN or infinite, so the linear-probe phase has no loss to fit: the "
            "pretrained model's weights are not finite, or its --normalization is not the one "
            f"it was trained with. {NOTHING_SAVED}")
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    # A (nearly) constant feature, e.g. a dead ReLU channel, is left out:
    # dividing by its tiny spread would put a huge weight into the kernel,
    # and full fine-tuning from that head diverges.
    floor = 1e-3 * float(np.max(std)) if np.max(std) > 0 else 1.0
    std = np.where(std > floor, std, np.inf)
    classifier = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    classifier.fit((features - mean) / std, labels)
    coef = np.zeros((num_classes, features.shape[1]))
    intercept = np.zeros(num_classes)
    present = classifier.classes_.astype(int)
    if len(present) == 2 and classifier.coef_.shape[0] == 1:
        # Binary: p(class 1) = sigmoid(z) = softmax([0, z])[1].
        coef[present[1]], intercept[present[1]] = classifier.coef_[0], classifier.intercept_[0]
    else:
        coef[present], intercept[present] = classifier.coef_, classifier.intercept_
    if len(present) < num_classes:
        intercept[np.setdiff1d(np.arange(num_classes), present)] = -1e4  # never seen: never predicted
    kernel = (coef / std).T
    bias = intercept - (coef / std) @ mean
    if not (np.all(np.isfinite(kernel)) and np.all(np.isfinite(bias))):
        raise TrainingDiverged(
            "The linear-probe phase fitted a head that is not finite: try a lower --probe-c "
            f"(now {c}). {NOTHING_SAVED}")
    layer = model.get_layer("classifier")
    layer.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return classifier


def _history_row(model, dataset, prefix=""):
    """Loss and top-1 (top-5) of `model` over a dataset, as history.csv keys."""
    from keras_googlenet.inference.metrics import classification_metrics
    from keras_googlenet.inference.predictors import predict_dataset

    probabilities, labels = predict_dataset(model, dataset, np.float64)
    loss = float(np.mean(-np.log(np.clip(probabilities[np.arange(len(labels)), labels],
                                         1e-7, 1.0))))
    metrics = classification_metrics(probabilities, labels)
    row = {f"{prefix}loss": loss, f"{prefix}top1": metrics["top1_accuracy"]}
    if probabilities.shape[1] > 5:
        row[f"{prefix}top5"] = metrics["top5_accuracy"]
    return row


def keep_the_better(model, probe, val_data, verbose=1):
    """Full fine-tuning's safeguard: when it ends below its own starting
    point, the linear probe, on the validation data, `model` gets the probe's
    weights back (backbone and head). Few images and an unfrozen backbone
    can lose what the probe had (50% against its 75% on 80 circles and
    squares), and a default must do no harm.

    Args:
        model: the fine-tuned model.
        probe: `{"weights": ..., "val_top1": ...}` of the model after the probe.
        val_data: the validation dataset both are scored on.
        verbose: 0 keeps the one line that says what was kept out of stdout.

    Returns:
        `{"model": "fine-tuned" or "linear probe", "probe_val_top1",
        "finetuned_val_top1"}`, also logged.
    """
    tuned = _history_row(model, val_data, "val_")["val_top1"]
    keep_probe = tuned < probe["val_top1"]
    if keep_probe:
        model.set_weights(probe["weights"])
    kept = {"model": "linear probe" if keep_probe else "fine-tuned",
            "probe_val_top1": probe["val_top1"], "finetuned_val_top1": tuned}
    if verbose:
        print(f"Kept the {kept['model']}: validation top-1 {tuned:.2%} after fine-tuning, "
              f"{probe['val_top1']:.2%} with the linear probe"
              + (" (the probe's weights are restored)." if keep_probe else "."))
    return kept


def steps_for(num_examples, batch_size):
    """One pass over the data, at least one step (a few-shot set smaller than
    a batch is repeated within the step)."""
    return max(1, math.ceil(num_examples / batch_size))


def load_sources(data, data_dir=None, classes=None, examples_per_class=None, seed=1,
                 holdout_fraction=default("holdout_fraction")):
    """The training and validation sources of a fine-tuning run: `--classes`
    slices both, `--examples-per-class` the training one (drawn with `seed`)."""
    from keras_googlenet.data import sources

    train, val = sources.train_val_sources(data, "train", "validation", data_dir=data_dir,
                                           holdout_fraction=holdout_fraction)
    train = sources.subset(train, classes, examples_per_class, seed=seed)
    val = sources.subset(val, classes) if val is not None else None
    if train.num_classes < 2:
        raise ValueError(f"{train.name!r} has {train.num_classes} class: a classifier needs "
                         "at least 2 classes (for a folder, one sub-folder per class).")
    return train, val


def run(model, **options):
    """Fine-tunes a `.keras` GoogLeNet on new data: `googlenet finetune`.

    Normalisation and input size come from the model's contract (override
    with `normalization`, `image_size`). Writes to `output_dir`:
    config.json, history.csv, curves.png, model.keras (its contract carries
    the new class names) and results.json (validation top-1/top-5 of the
    saved model); exports to `export_dir` unless it is empty.

    Args:
        model: path of the pretrained `.keras` model.
        **options: the fields of `FinetuneConfig` (the flags of `googlenet
            finetune`, with their defaults and rules): `mode`
            ("linear-probe", "head" or "full"; see the module docstring),
            `head_epochs`, `full_head_epochs`, `epochs`, `probe_c`, ...

    Returns:
        The results dict (also in results.json).
    """
    from keras_googlenet.data import augment, pipeline
    from keras_googlenet.models import contract as contract_lib
    from keras_googlenet.train import distribute

    config = FinetuneConfig(model=os.fspath(model), **options).resolved()
    started = time.time()
    keras.utils.set_random_seed(config.seed)
    policy = distribute.set_precision(config.precision)
    normalization = contract_lib.requested_normalization(config.normalization)
    pretrained, contract = load_pretrained(config.model, normalization=normalization,
                                           image_size=config.image_size)
    image_size = contract.image_size or pretrained.input.shape[1]
    if image_size is None:
        raise ValueError("The model takes any size: pass --image-size.")
    train_source, val_source = load_sources(config.data, config.data_dir, config.classes,
                                            config.examples_per_class, config.seed,
                                            config.holdout_fraction)
    steps = config.steps_per_epoch or steps_for(train_source.num_examples, config.batch_size)
    net = replace_classifier(pretrained, train_source.num_classes)
    names = list(train_source.class_names or map(str, range(train_source.num_classes)))

    def eval_data(source):
        return pipeline.build_dataset(source, training=False, image_size=image_size,
                                      batch_size=config.batch_size,
                                      normalization=contract.normalization,
                                      crop_fraction=contract.crop_fraction, cache=True)

    val_data = eval_data(val_source) if val_source is not None else None
    output_dir = config.output_dir
    os.makedirs(output_dir, exist_ok=True)
    csv_path = os.path.join(output_dir, "history.csv")
    if os.path.exists(csv_path):
        os.remove(csv_path)  # a new run, not a resumed one
    files.write_json(os.path.join(output_dir, "config.json"), dict(
        dataclasses.asdict(config), image_size=image_size, normalization=contract.normalization,
        crop_fraction=contract.crop_fraction, steps_per_epoch=steps, policy=policy,
        num_classes=train_source.num_classes, class_names=names,
        train_source=train_source.name, train_examples=train_source.num_examples,
        validation_source=val_source.name if val_source is not None else None))

    if config.mode in ("linear-probe", "full"):
        # The linear probe is also the head that full fine-tuning starts
        # from: a fitted head, not a random one, meets the unfrozen backbone
        # (LP-FT, Kumar et al. 2022), and it costs one forward pass.
        features, labels = backbone_features(net, eval_data(train_source))
        fit_linear_probe(net, features, labels, train_source.num_classes, c=config.probe_c,
                         seed=config.seed)
    probe = None
    if config.mode == "full" and val_data is not None:
        probe = {"weights": net.get_weights(), **_history_row(net, val_data, "val_")}
    if config.mode == "linear-probe":
        row = {"epoch": 0, **_history_row(net, eval_data(train_source))}
        if val_data is not None:
            row.update(_history_row(net, val_data, "val_"))
        files.atomic_write(csv_path, ",".join(row) + "\n"
                           + ",".join(str(v) for v in row.values()) + "\n")
        history = {k: [v] for k, v in row.items() if k != "epoch"}
    else:
        train_data = pipeline.training_stream(
            train_source, image_size=image_size, batch_size=config.batch_size,
            steps_per_epoch=steps, seed=config.seed,
            augment=augment.AugmentConfig(area_range=(config.min_crop_area, 1.0),
                                          random_flip=config.flip),
            normalization=contract.normalization, cache=True)
        histories = finetune(
            net, train_data, val_data,
            head_epochs=config.head_epochs if config.mode == "head" else config.full_head_epochs,
            epochs=config.epochs if config.mode == "full" else 0,
            head_learning_rate=config.head_learning_rate, learning_rate=config.learning_rate,
            steps_per_epoch=steps, verbose=config.verbose,
            callbacks=[keras.callbacks.CSVLogger(csv_path, append=True)])
        history = {}
        for phase_history in histories.values():
            for key, values in phase_history.items():
                history.setdefault(key, []).extend(values)
    kept = keep_the_better(net, probe, val_data, config.verbose) if probe is not None else None
    model_contract = contract_lib.Contract(
        normalization=contract.normalization, image_size=image_size,
        crop_fraction=contract.crop_fraction, class_names=names, variant=contract.variant)
    results = {"mode": config.mode, "output_dir": output_dir,
               "train_examples": train_source.num_examples, "steps_per_epoch": steps,
               "class_names": names, "final": {k: v[-1] for k, v in history.items()},
               "train_seconds": time.time() - started}
    if kept is not None:
        results["kept"] = kept
    return outputs.finalize(net, output_dir, model_contract, results, val_data=val_data,
                            export_dir=config.export_dir, preset_dir=config.preset_dir)
