"""`GoogLeNet(weights=...)`: "imagenet" (the published file, found on disk and
hash-checked), a .onnx, a .pth or a Keras weights file."""
import hashlib
import os
import warnings

from keras_googlenet.models.presets import BVLC, TORCHVISION, TORCHVISION_CONFIG, WEIGHTS_DIR_ENV
from keras_googlenet.weights.bvlc_onnx import convert_onnx_bvlc, load_onnx_bvlc
from keras_googlenet.weights.common import (WeightsMismatchError, WeightsNotFoundError,
                                            describe_config, model_config)
from keras_googlenet.weights.torchvision import convert_torchvision, load_torchvision


def convert(source, include_aux=False):
    """`convert_onnx_bvlc` or `convert_torchvision`, chosen by the file."""
    path = os.fspath(source)
    if path.endswith(".onnx"):
        return convert_onnx_bvlc(path)
    if path.endswith((".pth", ".pt")):
        return convert_torchvision(path, include_aux=include_aux)
    raise ValueError(
        f"Expected an ONNX bvlc_googlenet (.onnx) or torchvision state dict (.pth). "
        f"Received: {path!r}"
    )


def weights_dirs():
    """Where `weights="imagenet"` looks: $KERAS_GOOGLENET_WEIGHTS_DIR, then
    $KERAS_HOME/models (default `~/.keras/models`)."""
    dirs = []
    if os.environ.get(WEIGHTS_DIR_ENV):
        dirs.append(os.environ[WEIGHTS_DIR_ENV])
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    dirs.append(os.path.join(keras_home, "models"))
    return dirs


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_imagenet_file(batch_norm):
    """The published file for a variant, hash-checked, or a FileNotFoundError
    explaining where to get it."""
    weight_set = TORCHVISION if batch_norm else BVLC
    dirs = weights_dirs()
    for directory in dirs:
        for name in weight_set.filenames:
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                check_hash(path)
                return path
    if batch_norm:
        how = (f"torchvision's googlenet weights: download {TORCHVISION.url}")
    else:
        how = (f"the ONNX model zoo's bvlc_googlenet: download googlenet-12.onnx (or "
               f"googlenet-9.onnx, ...) from {BVLC.url}")
    raise WeightsNotFoundError(
        f"weights='imagenet' converts {how} -- nothing is downloaded automatically. "
        f"Put the file in one of {dirs} (the first is ${WEIGHTS_DIR_ENV} when set), or "
        "pass its path as `weights=`."
    )


def check_hash(path):
    """Checks a published file: torchvision by its file-name SHA-256 prefix,
    ONNX by $KERAS_GOOGLENET_ONNX_SHA256 or `BVLC.sha256` (warns if neither)."""
    name = os.path.basename(path)
    digest = sha256(path)
    weight_set = TORCHVISION if name in TORCHVISION.filenames else BVLC
    expected = weight_set.expected_sha256(name)
    if not expected:
        warnings.warn(
            f"No known SHA-256 for {name}; its digest is {digest}. Set "
            f"{weight_set.sha256_env} to the published value to verify it.",
            stacklevel=3,
        )
        return digest
    if not digest.startswith(expected.lower()):
        raise ValueError(
            f"Hash mismatch for {path}: SHA-256 {digest}, expected {expected}. The file is "
            "corrupt or not the published one; download it again."
        )
    return digest


def load_weights(model, weights):
    """What `GoogLeNet(weights=...)` does: "imagenet", .onnx, .pth or a Keras file."""
    if weights == "imagenet":
        config = model_config(model)
        if config["batch_norm"] and (
                {k: config.get(k) for k in TORCHVISION_CONFIG} != TORCHVISION_CONFIG):
            raise WeightsMismatchError(
                "The only published batch-norm weights are torchvision's, for "
                f"GoogLeNet({describe_config(TORCHVISION_CONFIG)}). This model has "
                f"{describe_config(config)}."
            )
        weights = find_imagenet_file(config["batch_norm"])
    path = os.fspath(weights)
    if path.endswith(".onnx"):
        return load_onnx_bvlc(model, path)
    if path.endswith((".pth", ".pt")):
        return load_torchvision(model, path)
    model.load_weights(path)
    return model
