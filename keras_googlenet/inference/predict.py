"""Top-k predictions for image files, from a SavedModel, a `.keras` model or
a converted `.tflite` / `.onnx` file.

    googlenet predict cat.jpg dog.png --model saved_models/googlenet

`--model` may be an exported SavedModel directory, a TF Serving base
directory (its highest version is used), a `.keras` file, or a `.tflite` /
`.onnx` file (float32 or int8) with the `<file>.json` contract that
`googlenet export` writes beside it (here the images are preprocessed as that
contract says). Either way the
images go through the preprocessing of `keras_googlenet.data.preprocessing`: for
a SavedModel inside its `serving_default` signature, for a Keras model here.
"""
import os

import numpy as np
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet.data import preprocessing
from keras_googlenet.inference import converted, loader, predictors
from keras_googlenet.models import averages, contract as contract_lib


def _top(probabilities, names, top):
    order = np.argsort(-probabilities, kind="stable")[:top]
    return [(names[i], float(probabilities[i])) for i in order]


def _reason(error):
    """The signature's own message out of TF's "Graph execution error" text."""
    message = error.message
    if "assertion failed: [" in message:
        return message.split("assertion failed: [", 1)[1].split("]\n", 1)[0].rstrip("]")
    return message.strip()


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _predict_saved_model(export_dir, paths, top, image_size):
    if image_size is not None:
        exported = contract_lib.read_info(export_dir, "saved_model").contract.image_size
        if image_size != exported:
            raise ValueError(
                f"The SavedModel {export_dir!r} crops to {exported}x{exported} (fixed at "
                f"export); image_size={image_size} cannot be applied."
            )
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures[contract_lib.DEFAULT_SIGNATURE]
    names = contract_lib.read_class_names(
        os.path.join(export_dir, "assets", contract_lib.CLASS_NAMES_ASSET))
    results = []
    # One request per file, so that a bad file is named in the error.
    for path in paths:
        try:
            outputs = serve(**{contract_lib.BYTES_INPUT: tf.constant([_read(path)])})
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(f"{path}: {_reason(error)}") from None
        results.append((path, _top(outputs["probabilities"].numpy()[0], names, top)))
    return results


def _predict_keras(model, paths, top, image_size, normalization, class_names,
                   crop_fraction=preprocessing.DEFAULT_CROP_FRACTION):
    net, _ = averages.serving_model(model)  # EMA weights, auxiliary heads dropped
    # `predictors.keras_predictor` runs the model on every backend; any output
    # that is not linear is taken as probabilities, as predict always did.
    predictor = predictors.keras_predictor(
        net, image_size, normalization, logits=averages.output_activation(net) == "linear",
        crop_fraction=crop_fraction)
    names = contract_lib.resolve_class_names(class_names, predictor.classes)
    return _classify(predictor, paths, top, names)


def _predict_converted(location, paths, top, image_size, class_names):
    """A `.tflite` / `.onnx` file with its `<file>.json` contract (float32 or int8)."""
    predictor = predictors.converted_predictor(location, image_size)
    names = (contract_lib.resolve_class_names(class_names, predictor.classes)
             if class_names is not None else predictor.class_names)
    return _classify(predictor, paths, top, names)


def _classify(predictor, paths, top, names):
    """Top classes of each image file, centre-cropped as `predictor` says."""
    results = []
    for path in paths:
        crop = preprocessing.eval_crops([path], predictor.image_size, predictor.crop_fraction)
        results.append((path, _top(predictor(crop)[0], names, top)))
    return results


def predict_files(model_or_path, paths, top=5, image_size=None, normalization="auto",
                  class_names=None, verbose=True):
    """Classifies image files and prints their top classes.

    Args:
        model_or_path: a `keras.Model`, a `.keras` file, a `.tflite` /
            `.onnx` file with its `<file>.json` contract, a SavedModel
            directory or a TF Serving base directory (highest version).
        paths: image files (JPEG, PNG, GIF, BMP, WebP).
        top: how many classes per image (capped at the number of classes).
        image_size: crop size for a Keras model (default: its input size, or
            224); for a SavedModel it must be None or the exported size.
        normalization: `preprocess_input` mode of a Keras model: "auto" (what
            a `.keras` file's contract says; "caffe" for an in-memory model),
            a mode, or None/"none". A SavedModel carries its own.
        class_names: names for a Keras model (default: what a `.keras`
            file's contract says, else ImageNet for 1000 classes, else
            "0".."N-1"); a SavedModel carries its own.
        verbose: print the results.

    Returns:
        A list of `(path, [(class name, score), ...])`, best first.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"`top` must be a positive int. Received: top={top!r}")
    paths = [os.fspath(p) for p in ([paths] if isinstance(paths, (str, os.PathLike)) else paths)]
    for path in paths:  # before loading the model, and clearer than open()'s error
        if os.path.isdir(path):
            raise ValueError(f"{path!r} is a directory: pass image files (e.g. {path}/*.jpg).")
    if isinstance(model_or_path, (str, os.PathLike)):
        location = os.fspath(model_or_path)
        if converted.is_converted(location):
            results = _predict_converted(location, paths, top, image_size, class_names)
        elif os.path.isdir(location):
            results = _predict_saved_model(predictors.resolve_saved_model_dir(location), paths,
                                           top, image_size)
        elif location.endswith(".keras") and os.path.isfile(location):
            model, contract = loader.load_model(location, normalization=normalization,
                                                image_size=image_size, class_names=class_names)
            results = _predict_keras(model, paths, top, contract.image_size,
                                     contract.normalization, contract.class_names,
                                     contract.crop_fraction)
        else:
            raise ValueError(
                "`model_or_path` must be a keras.Model, a .keras, .tflite or .onnx file or a "
                "SavedModel / "
                f"TF Serving directory. Received: {location!r}"
            )
    else:
        if normalization == "auto":
            normalization = contract_lib.DEFAULT_NORMALIZATION
        results = _predict_keras(model_or_path, paths, top, image_size,
                                 contract_lib.requested_normalization(normalization), class_names)
    if verbose:
        print(format_predictions(results))
    return results


def format_predictions(results):
    """Human-readable text of `predict_files` results."""
    lines = []
    for path, predictions in results:
        lines.append(path)
        lines.extend(f"  {rank}. {name:<30} {score:.4f}"
                     for rank, (name, score) in enumerate(predictions, 1))
    return "\n".join(lines)
