"""Predictors: every kind of model as one function of crops.

A `Predictor` takes float32 crops `(N, S, S, 3)` RGB in [0, 255] and returns
`(N, classes)` softmax probabilities, whatever runs it:

- a Keras model or `.keras` file (`keras_predictor`): auxiliary heads
  dropped, moving-average weights used as by the export, the contract's
  normalisation applied here;
- a SavedModel directory or TF Serving base directory (highest version,
  `resolve_saved_model_dir`): a keras_googlenet export through its
  `serving_image_float` signature, another through `serve` or a one-input
  `serving_default`;
- a `.tflite` / `.onnx` file with its `<file>.json` sidecar
  (`converted_predictor`, run by `inference.converted`).

`load_predictor` picks one from what it is given. `evaluation.evaluate` runs
every model through here, `predict.predict_files` its Keras and converted
ones. `predict_dataset` runs a Keras model over a labelled dataset (what
training and finetuning score their validation passes with).
"""
import dataclasses
import os
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from keras_googlenet.data import preprocessing
from keras_googlenet.inference import converted, loader
from keras_googlenet.models import averages, contract as contract_lib

AUTO = "auto"


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
    return contract_lib.check_normalization(contract_lib.requested_normalization(normalization))


def keras_predictor(model, image_size=None, normalization=preprocessing.DEFAULT_MODE,
                    logits=None, name=None, crop_fraction=None):
    """A `Predictor` for a Keras classifier taking normalised images.

    Args:
        model: a GoogLeNet (training model with auxiliary heads accepted: they
            are dropped; EMA weights used as by `averages.serving_model`) or any
            single-output Keras classifier.
        image_size: crop side; default the model's input size, or 224.
        normalization: `preprocess_input` mode applied to the crops, or None.
        logits: whether the output is logits (softmax applied here); None
            decides from the activation of the "predictions" (else last) layer.
        name: label for tables.
    """
    net, _ = averages.serving_model(model)
    fixed = tuple(net.input_shape[1:3])
    if image_size is None:
        image_size = fixed[0] if None not in fixed else 224
    preprocessing.check_image_size(image_size)
    if None not in fixed and fixed != (image_size, image_size):
        raise ValueError(
            f"The model takes {fixed[0]}x{fixed[1]} inputs but image_size={image_size}.")
    if logits is None:
        activation = averages.output_activation(net)
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


def existing_versions(base_dir):
    """The numeric version directories of `base_dir`, sorted ascending.

    Args:
        base_dir: a TF Serving model base directory (may not exist).

    Returns:
        A list of ints (empty when `base_dir` does not exist).
    """
    if not os.path.isdir(base_dir):
        return []
    return sorted(
        int(name)
        for name in os.listdir(base_dir)
        if name.isdigit() and os.path.isdir(os.path.join(base_dir, name))
    )


def latest_version_dir(base_dir):
    """The path of the highest version in `base_dir`, or None if there is none."""
    versions = existing_versions(base_dir)
    return os.path.join(base_dir, str(versions[-1])) if versions else None


def resolve_saved_model_dir(path):
    """The SavedModel directory for `path`: itself, or its highest version.

    Args:
        path: a SavedModel directory or a TF Serving base directory.

    Returns:
        The directory holding `saved_model.pb`.
    """
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    latest = latest_version_dir(path)
    if latest is None or not os.path.isfile(os.path.join(latest, "saved_model.pb")):
        raise ValueError(
            f"{path!r} is neither a SavedModel directory (no saved_model.pb) nor a "
            "TF Serving base directory with numeric version subdirectories."
        )
    return latest


def _saved_model_predictor(path, image_size, normalization, logits, name):
    export_dir = resolve_saved_model_dir(path)
    loaded = tf.saved_model.load(export_dir)
    name = name or os.path.basename(os.path.normpath(path))
    info = contract_lib.read_info(export_dir, "saved_model")
    if info is not None and contract_lib.FLOAT_IMAGE_SIGNATURE in loaded.signatures:
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
        signature = loaded.signatures[contract_lib.FLOAT_IMAGE_SIGNATURE]
        paddings = [[0, 0], [offset, canvas - size - offset], [offset, canvas - size - offset],
                    [0, 0]]

        def fn(images):
            return signature(**{contract_lib.IMAGE_INPUT: tf.pad(images, paddings)})[
                "probabilities"]

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


def converted_predictor(path, image_size=None, name=None, num_threads=None):
    """A `Predictor` of a `.tflite` / `.onnx` file with its sidecar:
    crops in [0, 255] are normalised as the contract says, run, and a logits
    output gets a softmax.

    Raises (before any image is run) a ValueError naming the file when the
    sidecar is missing or invalid, the runtime cannot read the file
    (`converted.load_tflite` / `load_onnx`), or the sidecar disagrees with the
    model (`converted.check_against_model`)."""
    path = os.fspath(path)
    converted.require_file(path)
    contract, info = contract_lib.read_sidecar(path)
    if image_size is not None and image_size != contract.image_size:
        raise ValueError(f"{path!r} takes {contract.image_size}x{contract.image_size} crops "
                         f"(fixed at conversion); image_size={image_size} cannot be applied.")
    run = converted.runner(path, num_threads)
    converted.check_against_model(path, contract, run.input_shape, run.output_shape)
    width_known = run.output_shape[-1] is not None
    normalization = contract.normalization
    logits = info["output"] == "logits"

    def fn(images):
        outputs = run(preprocessing.normalize(tf.convert_to_tensor(images, tf.float32),
                                              normalization).numpy())
        outputs = np.asarray(outputs, np.float32)
        if not width_known:  # a dynamic class dimension: checked on its first output
            converted.check_against_model(path, contract, run.input_shape, outputs.shape)
        if logits:
            outputs = tf.nn.softmax(outputs).numpy()
        return outputs

    predictor = Predictor(name or path, fn, contract.image_size, info["classes"],
                          crop_fraction=contract.crop_fraction, owner=run)
    predictor.class_names = list(contract.class_names)
    return predictor


def load_predictor(model, image_size=None, normalization=AUTO, logits=None, name=None):
    """A `Predictor` from a Keras model, a `.keras`, `.tflite` or `.onnx` file
    or a SavedModel directory.

    Args:
        model: `keras.Model`, `.keras` path, `.tflite` / `.onnx` file with its
            `<file>.json` contract (`googlenet export --tflite/--onnx/--int8`,
            see `inference.converted`), SavedModel directory / TF Serving
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
        if converted.is_converted(path):
            # A converted file (`googlenet export --tflite/--onnx/--int8`):
            # its `<file>.json` contract says how to normalise and crop.
            return converted_predictor(path, image_size, name=name)
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
