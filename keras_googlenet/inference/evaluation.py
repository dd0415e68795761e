"""Multi-crop, multi-model evaluation: the paper's test protocol.

    results = keras_googlenet.evaluate(["a.keras", "b.keras"], data="embedded",
                                       split="validation", crops=(1, 10, 144),
                                       table="table.md", csv="table.csv")

Each image of a `sources.get_source` dataset is cut into a crop set of
`crops.make_crops` (1, 10 or 144 crops) inside the `tf.data` pipeline; the
crops of a batch of images go through each model in one call as a
`(images * crops, S, S, 3)` tensor, normalised by `preprocessing.normalize`.
The outputs reshape to `(images, crops, classes)` and the softmax
probabilities are averaged over the crops, then over the models (the same as
one average over all, since both are plain means). A model whose output
layer is linear (logits) gets a softmax first: probabilities are averaged,
never logits.

Models may be `keras.Model`s (a training model's auxiliary heads are
dropped, moving-average weights used as by the export), `.keras` files,
`.tflite` / `.onnx` files with their `<file>.json` contract (float32 or int8,
see `keras_googlenet.serving.quantize`), or SavedModel directories (see
`load_predictor`). With several models, a per-model table (each model alone,
and the fraction of images whose top-1 class agrees with the first model's)
follows the ensemble table.

Ensembles of the first k models, for every k, come for free from the same
per-model probabilities, so a table "models x crops" like the paper's
Table 3 costs one pass per model and crop set. A cell's time is the sum of
the measured passes of its models (what running that ensemble costs).
"""
import csv as csv_lib
import dataclasses
import io
import os
import time
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from keras_googlenet import files
from keras_googlenet.data import crops as crops_lib
from keras_googlenet.data import preprocessing
from keras_googlenet.inference import loader
from keras_googlenet.models import contract as contract_lib
from keras_googlenet.models import metrics as metrics_lib

AUTO = "auto"
DEFAULT_CROPS_PER_BATCH = 288
DEFAULT_TOP_K = (1, 5)


# ---------------------------------------------------------------------------
# Predictors: float32 crops in [0, 255] -> probabilities.
# ---------------------------------------------------------------------------
@dataclasses.dataclass
class Predictor:
    """A model as a function of un-normalised crops.

    Attributes:
        name: a label for tables (file name or model name).
        fn: `fn(crops)` with `crops` float32 `(N, S, S, 3)` RGB in [0, 255];
            returns `(N, classes)` softmax probabilities (a tensor or array).
        image_size: `S`, the crop side the model takes.
        classes: number of classes, or None if unknown until the first call.
        crop_fraction: the centre-crop fraction the model's contract names,
            or None.
    """

    name: str
    fn: Callable
    image_size: int
    classes: Optional[int] = None
    crop_fraction: Optional[float] = None
    # Keeps a loaded SavedModel alive: its functions only hold weak
    # references to their variables.
    owner: object = dataclasses.field(default=None, repr=False)

    def __call__(self, crops):
        return np.asarray(self.fn(tf.convert_to_tensor(crops, tf.float32)), dtype=np.float64)


def _check_normalization(normalization):
    return contract_lib.check_normalization(None if normalization == "none" else normalization)


def keras_predictor(model, image_size=None, normalization=preprocessing.DEFAULT_MODE,
                    logits=None, name=None, crop_fraction=None):
    """A `Predictor` for a Keras classifier taking normalised images.

    Args:
        model: a GoogLeNet (training model with auxiliary heads accepted: they
            are dropped; EMA weights used as by `export.serving_model`) or any
            single-output Keras classifier.
        image_size: crop side; default the model's input size, or 224.
        normalization: `preprocess_input` mode applied to the crops, or None.
        logits: whether the output is logits (softmax applied here); None
            decides from the activation of the "predictions" (else last) layer.
        name: label for tables.
    """
    from keras_googlenet.serving import export

    net, _ = export.serving_model(model)
    fixed = tuple(net.input_shape[1:3])
    if image_size is None:
        image_size = fixed[0] if None not in fixed else 224
    preprocessing.check_image_size(image_size)
    if None not in fixed and fixed != (image_size, image_size):
        raise ValueError(
            f"The model takes {fixed[0]}x{fixed[1]} inputs but image_size={image_size}.")
    if logits is None:
        activation = export.output_activation(net)
        if activation not in ("softmax", "linear"):
            raise ValueError(
                "Probabilities are averaged: the model must end in softmax or logits "
                f"(linear), or pass logits=True/False. Received activation: {activation!r}")
        logits = activation == "linear"
    normalization = _check_normalization(normalization)

    def probabilities(outputs):
        outputs = tf.cast(outputs, tf.float32)
        return tf.nn.softmax(outputs) if logits else outputs

    if keras.backend.backend() == "tensorflow":
        @tf.function(reduce_retracing=True)
        def fn(images):
            return probabilities(net(preprocessing.normalize(images, normalization),
                                     training=False))
    else:
        def fn(images):
            # JAX, PyTorch: Keras' own compiled predict step, NumPy in and out
            # (the crops still come from tf.data).
            x = preprocessing.normalize(images, normalization).numpy()
            return probabilities(np.asarray(net.predict_on_batch(x), np.float32))

    return Predictor(name or net.name, fn, image_size, int(net.output.shape[-1]),
                     crop_fraction=crop_fraction)


def _saved_model_predictor(path, image_size, normalization, logits, name):
    from keras_googlenet.serving import signatures
    from keras_googlenet.inference.predict import resolve_saved_model_dir

    export_dir = resolve_saved_model_dir(path)
    loaded = tf.saved_model.load(export_dir)
    name = name or os.path.basename(os.path.normpath(path))
    info = contract_lib.read_info(export_dir, "saved_model")
    if info is not None and signatures.FLOAT_IMAGE_SIGNATURE in loaded.signatures:
        # A keras_googlenet export: its `serving_image_float` signature runs
        # eval_preprocess (shorter side to round(S / crop_fraction), centre
        # S x S crop) and the model's own normalisation, then a softmax. A crop
        # placed at the centre of a zero canvas of side R = round(S /
        # crop_fraction) comes back out exactly: the canvas is already R x R
        # (the bilinear resize to the same size is the identity) and the
        # centre crop is at offset (R - S) // 2.
        size = info.contract.image_size
        if image_size is not None and image_size != size:
            raise ValueError(
                f"The SavedModel {export_dir!r} takes {size}x{size} crops (fixed at export); "
                f"image_size={image_size} cannot be applied.")
        canvas = int(round(size / float(info.contract.crop_fraction)))
        offset = (canvas - size) // 2
        signature = loaded.signatures[signatures.FLOAT_IMAGE_SIGNATURE]
        paddings = [[0, 0], [offset, canvas - size - offset], [offset, canvas - size - offset],
                    [0, 0]]

        def fn(images):
            return signature(**{signatures.IMAGE_INPUT: tf.pad(images, paddings)})["probabilities"]

        return Predictor(name, fn, size, info.classes, owner=loaded)

    # Any other SavedModel (`model.export()`, `tf.saved_model.save`): a `serve`
    # endpoint (or the one-input `serving_default` signature) on normalised images.
    if hasattr(loaded, "serve"):
        endpoint = loaded.serve
    elif "serving_default" in loaded.signatures:
        signature = loaded.signatures["serving_default"]
        input_names = list(signature.structured_input_signature[1])
        if len(input_names) != 1:
            raise ValueError(f"{export_dir!r}: serving_default takes {input_names}, expected one "
                             "image input.")

        def endpoint(images):
            outputs = signature(**{input_names[0]: images})
            return outputs[sorted(outputs)[0]] if len(outputs) == 1 else outputs["predictions"]
    else:
        raise ValueError(f"{export_dir!r} has neither a `serve` endpoint nor a serving_default "
                         "signature.")
    if image_size is None:
        raise ValueError(f"Pass image_size for the SavedModel {export_dir!r}: it records none.")
    normalization = _check_normalization(normalization)

    def fn(images):
        outputs = endpoint(preprocessing.normalize(images, normalization))
        if isinstance(outputs, dict):
            outputs = outputs["predictions"]
        outputs = tf.cast(outputs, tf.float32)
        use_softmax = logits
        if use_softmax is None:
            # Nothing records the activation: rows that are not distributions
            # are taken for logits.
            sums = tf.reduce_sum(outputs, axis=-1)
            use_softmax = not bool(tf.reduce_all(outputs >= 0.0)
                                   and tf.reduce_all(tf.abs(sums - 1.0) < 1e-3))
        return tf.nn.softmax(outputs) if use_softmax else outputs

    return Predictor(name, fn, image_size, owner=loaded)


def load_predictor(model, image_size=None, normalization=AUTO, logits=None, name=None):
    """A `Predictor` from a Keras model, a `.keras`, `.tflite` or `.onnx` file
    or a SavedModel directory.

    Args:
        model: `keras.Model`, `.keras` path, `.tflite` / `.onnx` file with its
            `<file>.json` contract (`googlenet export --tflite/--onnx/--int8`,
            see `serving.quantize`), SavedModel directory / TF Serving
            base directory (highest version), or a `Predictor` (returned as is).
            A keras_googlenet export (`googlenet export`) is evaluated exactly
            through its `serving_image_float` signature (its own normalisation
            and image size); another SavedModel needs a `serve` endpoint or a
            one-input `serving_default` signature taking normalised images, and
            `image_size`.
        image_size: crop side (default: the model's input size, or 224).
        normalization: `"auto"` (what a `.keras` file's contract says, see
            `keras_googlenet.load_model`; "caffe" for an in-memory model), a
            `preprocess_input` mode, or None / "none" for [0, 255] inputs.
            Ignored for keras_googlenet exports (they carry theirs).
        logits: whether outputs are logits; None decides (output activation
            for Keras models; for a foreign SavedModel, rows that are not
            probability distributions are taken for logits).
        name: label for tables.
    """
    if isinstance(model, Predictor):
        return model
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if path.endswith((".tflite", ".onnx")):
            # A converted file (`googlenet export --tflite/--onnx/--int8`):
            # its `<file>.json` contract says how to normalise and crop.
            from keras_googlenet.serving import quantize

            return quantize.converted_predictor(path, image_size, name=name)
        if os.path.isdir(path):
            if normalization == AUTO:
                normalization = preprocessing.DEFAULT_MODE
            return _saved_model_predictor(path, image_size, normalization, logits, name)
        if path.endswith(".keras") and os.path.isfile(path):
            loaded, contract = loader.load_model(path, normalization=normalization,
                                                 image_size=image_size)
            return keras_predictor(loaded, contract.image_size, contract.normalization, logits,
                                   name=name or path, crop_fraction=contract.crop_fraction)
        raise FileNotFoundError(
            f"No .keras, .tflite or .onnx file or SavedModel directory at {path!r}.")
    if normalization == AUTO:
        normalization = preprocessing.DEFAULT_MODE
    return keras_predictor(model, image_size, normalization, logits, name)


# ---------------------------------------------------------------------------
# Metrics.
# ---------------------------------------------------------------------------
def predict_dataset(model, dataset, dtype=np.float32):
    """`(outputs, labels)` of `model` over a labelled dataset of batches, as
    NumPy arrays: NumPy in and out, since JAX and PyTorch models take no
    TensorFlow tensors. A dict of labels (a training dataset) gives its
    `predictions` entry."""
    outputs, labels = [], []
    for images, batch_labels in dataset:
        if isinstance(batch_labels, dict):
            batch_labels = batch_labels["predictions"]
        outputs.append(np.asarray(keras.ops.convert_to_numpy(
            model.predict_on_batch(np.asarray(images))), dtype))
        labels.append(np.asarray(batch_labels))
    return np.concatenate(outputs), np.concatenate(labels)


def top_k_correct(probabilities, labels, k):
    """Whether each label is among the top `k` classes: the rule of the
    training metrics (`models.metrics.top_k_hits`: ties broken by class
    index, as argmax does; a non-finite row is a miss), on NumPy arrays."""
    return metrics_lib.top_k_hits(np.asarray(labels), np.asarray(probabilities), k, xp=np)


def classification_metrics(probabilities, labels, top_k=DEFAULT_TOP_K, class_names=None):
    """Top-k accuracy / error and per-class (top-1) accuracy.

    Args:
        probabilities: `(N, classes)` scores.
        labels: `(N,)` int class indices.
        top_k: the k values to report.
        class_names: names for `per_class_accuracy` (default "0".."C-1").

    Returns:
        A dict with `num_examples`, `top{k}_accuracy` and `top{k}_error` for
        each k, and `per_class_accuracy` ({class name: top-1 accuracy over the
        examples of that class, or None when it has none}).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise ValueError(f"Expected (N, classes) probabilities and N labels. Received "
                         f"{probabilities.shape} and {labels.shape}.")
    if len(labels) == 0:
        raise ValueError("No examples to evaluate.")
    classes = probabilities.shape[1]
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"Labels must be in [0, {classes}). Received {labels.min()}..{labels.max()}.")
    names = list(class_names) if class_names is not None else [str(i) for i in range(classes)]
    if len(names) != classes:
        raise ValueError(f"{len(names)} class names for {classes} classes.")
    result = {"num_examples": int(len(labels))}
    for k in top_k:
        accuracy = float(top_k_correct(probabilities, labels, k).mean())
        result[f"top{k}_accuracy"] = accuracy
        result[f"top{k}_error"] = 1.0 - accuracy
    top1 = top_k_correct(probabilities, labels, 1)  # same tie rule as top-k
    result["per_class_accuracy"] = {
        names[c]: (float(top1[labels == c].mean()) if np.any(labels == c) else None)
        for c in range(classes)
    }
    return result


# ---------------------------------------------------------------------------
# Prediction over crops.
# ---------------------------------------------------------------------------
def _images_per_batch(n_crops, batch_size, crops_per_batch):
    if batch_size is not None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int. Received: {batch_size!r}")
        return batch_size
    return max(1, crops_per_batch // n_crops)


def crop_dataset(dataset, n_crops, image_size, batch_size,
                 crop_fraction=preprocessing.DEFAULT_CROP_FRACTION, mirror=True):
    """`(image, label)` -> batches of `((B * n, S, S, 3) crops, (B,) labels)`,
    `n = crops.crop_count(n_crops, mirror)`."""
    n_crops = crops_lib.check_crop_set(n_crops)

    def cut(image, label):
        return crops_lib.make_crops(image, n_crops, image_size, crop_fraction, mirror), label

    def flatten(images, labels):
        return tf.reshape(images, [-1, image_size, image_size, 3]), labels

    return (dataset.map(cut, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch_size).map(flatten).prefetch(2))


def predict_crops(predictors, dataset, n_crops, image_size, batch_size=None,
                  crops_per_batch=DEFAULT_CROPS_PER_BATCH,
                  crop_fraction=preprocessing.DEFAULT_CROP_FRACTION, num_examples=None,
                  verbose=1, mirror=True):
    """Crop-averaged probabilities of each model over a dataset.

    Every batch of images is cut once and fed to each model in one call.

    Args:
        predictors: list of `Predictor`s (same `image_size`).
        dataset: `tf.data.Dataset` of `(image, label)` (decoded or encoded).
        n_crops: 1, 10 or 144.
        image_size: crop side.
        batch_size: images per model call (default `crops_per_batch //
            n_crops`, at least 1: bounded memory whatever the crop set).
        crops_per_batch: target number of crops per model call.
        crop_fraction: see `crops.make_crops`.
        num_examples: for the progress bar, if known.
        verbose: 1 shows a `keras.utils.Progbar`.
        mirror: False drops the mirrored crops (see `crops.make_crops`).

    Returns:
        `(probabilities, labels, seconds)`: `probabilities` is a list with
        one `(N, classes)` array per model (mean over crops of the softmax),
        `seconds` the wall time spent in each model's calls (cropping, shared,
        is added to each in proportion to its model time).
    """
    import keras

    crop_set, n_crops = n_crops, crops_lib.crop_count(n_crops, mirror)  # crops per image
    images_per_batch = _images_per_batch(n_crops, batch_size, crops_per_batch)
    batches = crop_dataset(dataset, crop_set, image_size, images_per_batch, crop_fraction,
                           mirror)
    sums = [[] for _ in predictors]
    model_seconds = np.zeros(len(predictors))
    labels = []
    progbar = keras.utils.Progbar(num_examples, unit_name="image") if verbose else None
    seen = 0
    # Trace each model for the full batch shape first, so that the timings
    # measure evaluation rather than tf.function tracing.
    warm = tf.zeros([images_per_batch * n_crops, image_size, image_size, 3])
    for predictor in predictors:
        predictor(warm)
    start = time.perf_counter()
    for images, batch_labels in batches:
        count = int(batch_labels.shape[0])
        for i, predictor in enumerate(predictors):
            t0 = time.perf_counter()
            probabilities = predictor(images)
            model_seconds[i] += time.perf_counter() - t0
            if probabilities.shape[0] != count * n_crops:
                raise ValueError(f"{predictor.name}: {probabilities.shape[0]} outputs for "
                                 f"{count * n_crops} crops.")
            sums[i].append(probabilities.reshape(count, n_crops, -1).mean(axis=1))
        labels.append(batch_labels.numpy())
        seen += count
        if progbar is not None:
            progbar.update(seen)
    total = time.perf_counter() - start
    if not labels:
        raise ValueError("The dataset is empty.")
    if progbar is not None and num_examples is None:
        progbar.update(seen, finalize=True)
    shared = max(total - model_seconds.sum(), 0.0)
    share = (model_seconds / model_seconds.sum()) if model_seconds.sum() > 0 else (
        np.full(len(predictors), 1.0 / len(predictors)))
    seconds = model_seconds + shared * share
    return [np.concatenate(s) for s in sums], np.concatenate(labels), seconds.tolist()


# ---------------------------------------------------------------------------
# evaluate(): the table of models x crops.
# ---------------------------------------------------------------------------
def _as_list(value):
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _check_classes(predictors, models, num_classes, data_name):
    """Refuses a model whose class count is not the data's, before any batch
    runs: otherwise the whole pass runs and fails on the labels at the end."""
    for predictor, model in zip(predictors, models):
        classes = predictor.classes
        if classes is None:  # a foreign SavedModel: ask it, one crop
            size = predictor.image_size
            classes = int(predictor(np.zeros([1, size, size, 3], np.float32)).shape[-1])
        if classes != num_classes:
            where = os.fspath(model) if isinstance(model, (str, os.PathLike)) else predictor.name
            raise ValueError(
                f"The model {where!r} has {classes} classes but {data_name} has "
                f"{num_classes}: evaluate a model trained on these classes.")


def evaluate(models, data="embedded", split="validation", crops=1, image_size=None,
             normalization=AUTO, logits=None, data_dir=None, batch_size=None,
             crops_per_batch=DEFAULT_CROPS_PER_BATCH, crop_fraction=None, top_k=DEFAULT_TOP_K,
             max_examples=None, class_names=None, ensemble_sizes=None, table=None, csv=None,
             names=None, verbose=1, mirror=True, plots=None):
    """Evaluates a model or an ensemble with the paper's multi-crop protocol.

    Args:
        models: one model or a list: `keras.Model`s, `.keras` files,
            SavedModel directories or `Predictor`s (see `load_predictor`).
            An ensemble averages the softmax probabilities of its models over
            the same crops.
        data: `sources.get_source` spec ("embedded", "tfds:NAME",
            "folder:PATH", "tfrecord:GLOB") or a `tf.data.Dataset` of
            `(image, label)`.
        split: split name (for a spec).
        crops: 1, 10 or 144 (see `keras_googlenet.data.crops`), or a list of them.
        image_size: crop side (default: the first model's input size, or 224).
            All models must take the same size.
        normalization: per model or one for all, see `load_predictor`.
        logits: see `load_predictor`.
        data_dir: TFDS data directory.
        batch_size: images per model call (default: `crops_per_batch //
            crops`, at least 1).
        crops_per_batch: target crops per model call (bounds memory).
        crop_fraction: 1- and 10-crop centre fraction; default: the first
            model's contract, else 0.875 (224 of 256).
        top_k: k values of the top-k metrics (capped at the class count).
        max_examples: evaluate only the first N images.
        class_names: names for per-class accuracy (default: the source's).
        ensemble_sizes: which ensembles (the first k models) to report;
            default every k from 1 to len(models). They come free: one pass
            per model and crop set.
        table: path of a Markdown table of models x crops (paper Table 3).
        csv: path of the same table as CSV.
        names: labels of the models (default file or model names).
        verbose: 1 prints progress bars and the table.
        mirror: False drops the mirrored crops (10 -> 5, 144 -> 72), for data
            that is not left-right symmetric; the rows' `crops` say how many
            were used. Not the paper's protocol, which always mirrors.
        plots: a folder for the pictures of `inference.plots` (confusion
            matrix, per-class accuracy, mistakes on the centre crops, top-1
            error vs crops) of the full ensemble at the last crop set.

    Returns:
        A dict: `results`, a list of one dict per (ensemble size, crop set)
        with `models` (k), `model_names`, `crops`, `cost` (model evaluations
        per image, k x crops), `seconds`, the `classification_metrics` and
        `top5_error_vs_base` (difference to 1 model, 1 crop, when measured);
        `per_model`, the same per individual model; `num_examples`;
        `class_names`; `markdown`, the table text; and, at the top level, the
        metrics of the full ensemble with the last crop set in `crops`.
    """
    from keras_googlenet.data import sources

    crop_sets = [crops_lib.check_crop_set(c) for c in _as_list(crops)]
    model_list = _as_list(models)
    if not model_list:
        raise ValueError("`models` is empty.")
    normalizations = _as_list(normalization)
    if len(normalizations) == 1:
        normalizations = normalizations * len(model_list)
    if len(normalizations) != len(model_list):
        raise ValueError(f"{len(normalizations)} normalizations for {len(model_list)} models.")
    labels_for = list(names) if names is not None else [None] * len(model_list)
    predictors = [load_predictor(model, image_size, mode, logits, label)
                  for model, mode, label in zip(model_list, normalizations, labels_for)]
    image_size = predictors[0].image_size
    if crop_fraction is None:
        crop_fraction = predictors[0].crop_fraction or contract_lib.DEFAULT_CROP_FRACTION
    for predictor in predictors[1:]:
        if predictor.image_size != image_size:
            raise ValueError(
                f"All models must take the same crops: {predictor.name} takes "
                f"{predictor.image_size}x{predictor.image_size}, {predictors[0].name} "
                f"{image_size}x{image_size}.")
    if ensemble_sizes is None:
        ensemble_sizes = list(range(1, len(predictors) + 1))
    for k in ensemble_sizes:
        if not 1 <= k <= len(predictors):
            raise ValueError(f"Ensemble size {k} is not in [1, {len(predictors)}].")

    num_examples = data_classes = None
    if isinstance(data, tf.data.Dataset):
        dataset = data
    else:
        source = sources.get_source(data, split, data_dir=data_dir)
        dataset = source.dataset()
        num_examples = source.num_examples
        data_classes, data_name = source.num_classes, f"the data {source.name!r}"
        if class_names is None:
            class_names = source.class_names
    if data_classes is None and class_names is not None:
        data_classes, data_name = len(class_names), "`class_names`"
    if data_classes is not None:
        _check_classes(predictors, model_list, data_classes, data_name)
    if max_examples is not None:
        dataset = dataset.take(max_examples)
        num_examples = min(num_examples, max_examples) if num_examples else max_examples

    per_crop = {}
    for n_crops in crop_sets:
        if verbose:
            print(f"{n_crops} crop(s) per image, {len(predictors)} model(s):")
        probabilities, labels, seconds = predict_crops(
            predictors, dataset, n_crops, image_size, batch_size=batch_size,
            crops_per_batch=crops_per_batch, crop_fraction=crop_fraction,
            num_examples=num_examples, verbose=verbose, mirror=mirror)
        per_crop[n_crops] = (probabilities, labels, seconds)

    model_names = [p.name for p in predictors]
    results, per_model = [], []
    for crop_set in crop_sets:
        probabilities, labels, seconds = per_crop[crop_set]
        n_crops = crops_lib.crop_count(crop_set, mirror)
        for k in ensemble_sizes:
            mean = np.mean(probabilities[:k], axis=0)
            row = {"models": k, "model_names": model_names[:k], "crops": n_crops,
                   "mirror": bool(mirror), "cost": k * n_crops,
                   "seconds": float(sum(seconds[:k]))}
            row.update(classification_metrics(mean, labels, top_k, class_names))
            results.append(row)
        first_top1 = np.argmax(probabilities[0], axis=1)
        for i, name in enumerate(model_names):
            row = {"model": name, "crops": n_crops, "mirror": bool(mirror),
                   "seconds": float(seconds[i])}
            row.update(classification_metrics(probabilities[i], labels, top_k, class_names))
            # The fraction of images whose top-1 class is the first model's
            # (e.g. an int8 file against its float32 original).
            row["top1_agreement_with_first"] = float(
                np.mean(np.argmax(probabilities[i], axis=1) == first_top1))
            per_model.append(row)
    results.sort(key=lambda r: (r["models"], r["crops"]))
    base = next((r for r in results if r["models"] == 1 and r["crops"] == 1), None)
    for row in results:
        row["is_base"] = row is base
        for k in top_k:
            key = f"top{k}_error"
            row[f"{key}_vs_base"] = (row[key] - base[key]) if base else None

    markdown = format_markdown(results, top_k)
    per_model_markdown = format_per_model_markdown(per_model, top_k)
    if table:
        _write_text(table, markdown + "\n")
    if csv:
        write_csv(csv, results, top_k)
    if verbose:
        print(markdown)
        if len(predictors) > 1:
            print("Per model:")
            print(per_model_markdown)
    final = next(r for r in results
                 if r["models"] == max(ensemble_sizes)
                 and r["crops"] == crops_lib.crop_count(crop_sets[-1], mirror))
    if plots:
        _write_plots(plots, results, per_crop[crop_sets[-1]], ensemble_sizes, class_names,
                     dataset, image_size, crop_fraction)
    summary = dict(final)
    summary.update({"results": results, "per_model": per_model, "markdown": markdown,
                    "per_model_markdown": per_model_markdown,
                    "class_names": list(class_names) if class_names is not None else None})
    return summary


def _write_plots(output_dir, results, last, ensemble_sizes, class_names, dataset, image_size,
                 crop_fraction):
    """The evaluation pictures of the full ensemble at the last crop set; the
    mistakes grid shows the centre crops of the few images it needs."""
    from keras_googlenet.inference import plots as plots_lib

    probabilities, labels, _ = last
    mean = np.mean(probabilities[:max(ensemble_sizes)], axis=0)

    images = centre_crop_images(dataset, image_size, crop_fraction)
    return plots_lib.write_evaluation_pictures(output_dir, results, images, mean, labels,
                                               class_names)


def centre_crop_images(dataset, image_size, crop_fraction):
    """A function of example indices returning those examples' 1-crop centre
    crops (uint8-range floats) from an `(image, label)` dataset; it reads the
    dataset only up to the last index asked for, so pictures of a few
    mistakes never hold a whole evaluation set in memory."""
    def images(indices):
        wanted = {int(i): None for i in indices}
        if not wanted:
            return []
        for i, (image, _) in enumerate(dataset):
            if i in wanted:
                wanted[i] = crops_lib.make_crops(image, 1, image_size, crop_fraction)[0].numpy()
            if i >= max(wanted):
                break
        return [wanted[int(i)] for i in indices]

    return images


def _write_text(path, text):
    files.atomic_write(path, text)


def _table_columns(top_k):
    columns = [("Models", "models"), ("Crops", "crops"), ("Cost", "cost")]
    for k in top_k:
        columns.append((f"Top-{k} acc", f"top{k}_accuracy"))
        columns.append((f"Top-{k} error", f"top{k}_error"))
        columns.append((f"Top-{k} error vs base", f"top{k}_error_vs_base"))
    columns.append(("Time (s)", "seconds"))
    return columns


def _fmt(key, value, row):
    if value is None:
        return ""
    if key.endswith("_vs_base"):
        return "base" if row.get("is_base") else f"{100 * value:+.2f}%"
    if key.endswith(("_accuracy", "_error")):
        return f"{100 * value:.2f}%"
    if key == "seconds":
        return f"{value:.1f}"
    return str(value)


def format_markdown(results, top_k=DEFAULT_TOP_K):
    """A Markdown table of models x crops (one row per ensemble and crop set)."""
    columns = _table_columns(top_k)
    lines = ["| " + " | ".join(title for title, _ in columns) + " |",
             "|" + "|".join("---:" for _ in columns) + "|"]
    for row in results:
        lines.append("| " + " | ".join(_fmt(key, row.get(key), row) for _, key in columns) + " |")
    return "\n".join(lines)


def format_per_model_markdown(per_model, top_k=DEFAULT_TOP_K):
    """A Markdown table of each model alone (one row per model and crop set),
    with its top-1 agreement with the first model: puts an int8 file beside
    its float32 original."""
    lines = ["| Model | Crops | " + " | ".join(f"Top-{k} acc" for k in top_k)
             + " | Top-1 agrees with first | Time (s) |",
             "|---|" + "---:|" * (len(top_k) + 3)]
    for row in per_model:
        cells = [str(row["model"]), str(row["crops"])]
        cells += [f"{100 * row[f'top{k}_accuracy']:.2f}%" for k in top_k]
        cells += [f"{100 * row['top1_agreement_with_first']:.2f}%", f"{row['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(path, results, top_k=DEFAULT_TOP_K):
    """The table as CSV: raw fractions and seconds, plus the model names."""
    keys = [key for _, key in _table_columns(top_k)] + ["mirror", "num_examples", "model_names"]
    text = io.StringIO(newline="")
    writer = csv_lib.writer(text)
    writer.writerow(keys)
    for row in results:
        values = []
        for key in keys:
            value = row.get(key)
            if key == "model_names":
                value = ";".join(value)
            values.append("" if value is None else value)
        writer.writerow(values)
    files.atomic_write(path, text.getvalue())
