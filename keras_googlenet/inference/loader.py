"""The one loader of `.keras` models: the model and the contract it carries.

`predict`, `export`, `evaluate`, `finetune` and the benchmarks all load a
model file here, so a model trained with `--normalization tf` is fed
tf-normalised images everywhere, and its class names travel with it.
Explicit arguments (command-line flags) override what the file says.
"""
import dataclasses
import json
import logging
import os

from keras_googlenet.models import contract as contract_lib
from keras_googlenet.models import hub_format

logger = logging.getLogger(__name__)


def contract_from_config_json(path):
    """The contract implied by the trainer's `config.json` beside `path`, for
    models saved before the contract was stored in the file; None if absent."""
    config_path = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    try:
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    fields = {k: config[k] for k in ("normalization", "image_size", "class_names")
              if k in config}
    if fields.get("normalization") == "none":
        fields["normalization"] = None
    return contract_lib.Contract.from_json(fields, origin=config_path)


def read_model_contract(path):
    """The contract of a `.keras` file: stored in it, else from a `config.json`
    beside it, else the defaults (with a warning: they may be wrong)."""
    found = contract_lib.read_contract(path) or contract_from_config_json(path)
    if found is None:
        logger.warning("%s carries no preprocessing contract and has no config.json beside "
                       "it: assuming normalization=%r (pass --normalization if it was "
                       "trained otherwise).", path, contract_lib.DEFAULT_NORMALIZATION)
        return contract_lib.Contract()
    return found


def load_model(path, normalization="auto", image_size=None, crop_fraction=None,
               class_names=None, compile=False):
    """Loads a `.keras` model or a KerasHub preset folder, and its contract.

    Args:
        path: a `.keras` file (as written by `googlenet train`, `finetune`,
            `weights convert` or `contract.save_model`), or a KerasHub preset
            folder of a GoogLeNet (`keras_googlenet.hub.to_preset`), read as
            our `GoogLeNet` without KerasHub (`models.hub_format`).
        normalization: "auto" (what the model says), a `preprocess_input`
            mode, or "none"/None for [0, 255] inputs.
        image_size, crop_fraction, class_names: None (what the model says)
            or an override.
        compile: passed to `keras.models.load_model`.

    Returns:
        `(model, contract)`, the contract with the overrides applied and its
        class names resolved for the model's number of outputs.
    """
    from keras_googlenet.models import layers  # noqa: F401  (registers the LRN layer)

    path = os.fspath(path)
    if hub_format.is_preset(path):
        model, contract = hub_format.read_preset(path)
    else:
        model, contract = _load_keras_file(path, compile)
    if normalization != "auto":
        contract = dataclasses.replace(
            contract, normalization=None if normalization in (None, "none") else normalization)
    contract = contract.replace(image_size=image_size, crop_fraction=crop_fraction)
    classes = model_classes(model)
    if classes is not None:
        names = class_names if class_names is not None else contract.class_names
        contract = dataclasses.replace(
            contract, class_names=contract_lib.resolve_class_names(names, classes))
    return model, contract


def _load_keras_file(path, compile):
    import keras

    if not path.endswith(".keras"):
        raise ValueError(f"Expected a .keras model file or a KerasHub preset folder. "
                         f"Received: {path!r}")
    if os.path.isdir(path) or not os.path.exists(path):
        raise FileNotFoundError(f"No model file at {path}")
    contract = read_model_contract(path)
    # safe_mode (the default) refuses lambda layers: loading runs no code.
    return keras.models.load_model(path, compile=compile), contract


def model_classes(model):
    """The number of classes of a classifier (its main output's last axis),
    or None for a backbone without a classifier."""
    output = model.output
    if isinstance(output, dict):
        from keras_googlenet.models import OUTPUT_NAME

        output = output[OUTPUT_NAME]
    shape = tuple(output.shape)
    return int(shape[-1]) if len(shape) == 2 and shape[-1] is not None else None
