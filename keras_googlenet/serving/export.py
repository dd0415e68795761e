"""Exports a trained GoogLeNet as a TensorFlow Serving SavedModel.

`export_saved_model(model, "saved_models/googlenet")` writes
`saved_models/googlenet/<version>/`, the layout TF Serving watches (see
`versions`). The SavedModel holds the inference model (auxiliary heads
dropped, Polyak/EMA weights when the optimizer has them), the class names
as an asset, the three signatures of `signatures` (`serving_default` on
encoded image bytes, `serving_image`, `serving_image_float`) and its record
`assets.extra/export_info.json` (`models.contract.ArtifactInfo`: image size,
crop, normalisation, classes, EMA, ...). It needs only TensorFlow to load
(`tf.saved_model.load`, `saved_model_cli`, TF Serving): no Keras, no
keras_googlenet.

The EMA weights and the inference head come from `models.averages`.
"""
import os
import tempfile

import keras
import tensorflow as tf

from keras_googlenet.data import preprocessing
from keras_googlenet.models import contract
from keras_googlenet.models.averages import output_activation, serving_model
from keras_googlenet.serving import signatures, versions


def resolve_image_size(model, image_size):
    """`image_size`, checked against the model's fixed input, or that input (224 if free)."""
    fixed = tuple(model.input_shape[1:3])
    if image_size is None:
        return fixed[0] if None not in fixed else 224
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"`image_size` must be a positive int. Received: image_size={image_size!r}")
    if None not in fixed and fixed != (image_size, image_size):
        raise ValueError(
            f"The model takes {fixed[0]}x{fixed[1]} inputs but image_size={image_size} "
            "was given."
        )
    return image_size


# ---------------------------------------------------------------------------
# Export.
# ---------------------------------------------------------------------------
def export_saved_model(
    model,
    base_dir,
    version=None,
    class_names=None,
    image_size=None,
    normalization=preprocessing.DEFAULT_MODE,
    use_ema=True,
    optimizer=None,
    crop_fraction=preprocessing.DEFAULT_CROP_FRACTION,
    top_k=signatures.DEFAULT_TOP_K,
    max_pixels=signatures.DEFAULT_MAX_PIXELS,
):
    """Writes `base_dir/<version>/`, a SavedModel ready for TF Serving.

    The version appears atomically (`versions.write_version`): on any error
    no version appears; concurrent exports into one base directory get
    distinct versions; the temporary directories of killed exports are
    removed by the next export. Files get the usual modes (0644,
    directories 0755, under umask 022).

    Args:
        model: a GoogLeNet classifier (`include_top=True`); auxiliary heads
            are dropped.
        base_dir: the TF Serving model base directory (created if needed).
        version: positive int; None picks one more than the highest
            existing version (1 in an empty directory). An existing version
            is never overwritten.
        class_names: None (ImageNet names for 1000 classes, else "0".."N-1"),
            a list of `classes` names or the path of a file with one per line.
        image_size: side of the crop fed to the model; None means the
            model's input size, or 224 for a model taking any size.
        normalization: `preprocess_input` mode the model was trained with
            ("caffe", "torch", "tf"), or None for raw [0, 255] inputs.
        use_ema: export the optimizer's moving averages when it has some
            (see the module docstring for the rule).
        optimizer: optimizer holding the averages (default `model.optimizer`).
        crop_fraction: evaluation centre-crop fraction.
        top_k: number of top classes in the outputs (capped at `classes`).
        max_pixels: largest decoded image (height x width) served.

    Returns:
        The path of the written version directory.
    """
    versions.check_version(version)
    if normalization is not None and normalization not in preprocessing.MODES:
        raise ValueError(
            f"`normalization` must be one of {preprocessing.MODES} or None. "
            f"Received: normalization={normalization!r}"
        )
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"`top_k` must be a positive int. Received: top_k={top_k!r}")
    net, used_ema = serving_model(model, use_ema=use_ema, optimizer=optimizer)
    activation = output_activation(net)
    if activation not in ("softmax", "linear"):
        raise ValueError(
            "The exported `probabilities` are a softmax: the model must end "
            f"in softmax or logits (linear). Received activation: {activation!r}"
        )
    image_size = resolve_image_size(net, image_size)
    classes = int(net.output.shape[-1])
    names = contract.resolve_class_names(class_names, classes)
    info = contract.ArtifactInfo(
        contract.Contract(normalization=normalization, image_size=image_size,
                          crop_fraction=crop_fraction, class_names=names),
        kind="saved_model", classes=classes, top_k=min(top_k, classes), ema_weights=used_ema,
        max_pixels=max_pixels, signatures=signatures.SIGNATURES,
        tensorflow_version=tf.__version__, keras_version=keras.__version__)

    def write(directory):
        with tempfile.TemporaryDirectory() as staging:
            names_path = os.path.join(staging, signatures.CLASS_NAMES_ASSET)
            with open(names_path, "w", encoding="utf-8") as f:
                f.write("\n".join(names) + "\n")
            signatures.GoogLeNetServing(
                net, names_path, image_size, normalization, crop_fraction=crop_fraction,
                top_k=top_k, max_pixels=max_pixels, logits=activation == "linear",
            ).write(directory)
        contract.write_info(directory, info)

    return versions.write_version(base_dir, write, version)


def export_model_file(path, base_dir, version=None, use_ema=True):
    """`export_saved_model` of a `.keras` file with the preprocessing contract
    it carries (normalisation, image size, crop, class names); what a run on
    another backend calls through `backends.call_under_tensorflow`.

    Returns:
        The path of the written version directory.
    """
    from keras_googlenet.inference import loader

    model, model_contract = loader.load_model(path)
    return export_saved_model(
        model, base_dir, version=version, class_names=model_contract.class_names,
        image_size=model_contract.image_size, normalization=model_contract.normalization,
        crop_fraction=model_contract.crop_fraction, use_ema=use_ema)


def read_export_info(export_dir):
    """The record `assets.extra/export_info.json` of an export (a
    `contract.ArtifactInfo`: `info.contract.image_size`, `info["ema_weights"]`, ...).

    Raises:
        FileNotFoundError: `export_dir` holds no such file (not an export of
            keras_googlenet).
        ValueError: the file is not valid JSON or not an export's record.
    """
    info = contract.read_info(export_dir, "saved_model")
    if info is None:
        raise FileNotFoundError(
            f"{contract.info_path(export_dir, 'saved_model')!r} does not exist: "
            f"{os.fspath(export_dir)!r} is not an export of keras_googlenet.")
    return info
