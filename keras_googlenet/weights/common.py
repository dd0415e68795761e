"""What both converters share: the converted-weights container, layer names,
and loading converted weights into a model, all or nothing."""
import os
import warnings

import numpy as np

from keras_googlenet.models import architecture, contract, presets

_AUX_PREFIXES = ("aux1_", "aux2_")
_TOP_LAYERS = ("classifier",)


class WeightsMismatchError(ValueError):
    """A weights file does not fit the model (wrong file, variant or tensor)."""


class WeightsNotFoundError(FileNotFoundError, ValueError):
    """`weights="imagenet"` and the published file is not on disk."""


class ConvertedWeights(dict):
    """`{keras layer name: [arrays in layer.get_weights() order]}`.

    `sources[layer]` lists the source tensor name of each array (for error
    messages); `origin` is "bvlc" or "torchvision"; `config` the
    `GoogLeNet` arguments the weights need.
    """

    def __init__(self, origin, config):
        super().__init__()
        self.origin = origin
        self.config = dict(config)
        self.sources = {}

    def add(self, layer, arrays, sources):
        if layer in self:
            raise WeightsMismatchError(
                f"Two tensors map to the Keras layer {layer!r}: {self.sources[layer][0]!r} "
                f"and {sources[0]!r}."
            )
        self[layer] = [np.asarray(a, dtype=np.float32) for a in arrays]
        self.sources[layer] = list(sources)


# ---------------------------------------------------------------------------
# Layer names.
# ---------------------------------------------------------------------------
def conv_layer_names():
    """Keras names of every convolution of GoogLeNet (aux heads included)."""
    names = [architecture.CONV1[0], architecture.CONV2_REDUCE[0], architecture.CONV2[0]]
    for row in architecture.inception_rows():
        names += [f"{row.name}_{s}" for s in
                  ("1x1", "3x3_reduce", "3x3", "5x5_reduce", "5x5", "pool_proj")]
    return names + [f"{head}_conv" for head in architecture.AUX_HEADS]


def dense_layer_names():
    names = ["classifier"]
    for head in architecture.AUX_HEADS:
        names += [f"{head}_fc", f"{head}_classifier"]
    return names


def is_aux_layer(name):
    return name.startswith(_AUX_PREFIXES)


def permute_flatten_rows(kernel, channels=architecture.AUX_CONV_FILTERS):
    """Rows of a (in, out) kernel fed by an NCHW flatten -> NHWC flatten.

    PyTorch and Caffe flatten a (C, H, W) map channel-major; Keras flattens
    (H, W, C). The auxiliary fc reads a 4x4x128 map at 224x224.
    """
    units_in, units_out = kernel.shape
    side = round((units_in / channels) ** 0.5)
    if side * side * channels != units_in:
        raise WeightsMismatchError(
            f"An auxiliary fc with {units_in} inputs does not read a square map of "
            f"{channels} channels."
        )
    kernel = kernel.reshape(channels, side, side, units_out)
    return kernel.transpose(1, 2, 0, 3).reshape(units_in, units_out)


def model_config(model):
    names = {layer.name for layer in model.layers}
    config = {"batch_norm": "conv1_7x7_s2_bn" in names}
    if "inception_3a_5x5" in names:
        config["kernel_5x5"] = int(model.get_layer("inception_3a_5x5").kernel_size[0])
    if "pool4_3x3_s2" in names:
        config["pool4_size"] = int(model.get_layer("pool4_3x3_s2").pool_size[0])
    return config


def describe_config(config):
    return ", ".join(f"{k}={v!r}" for k, v in config.items())


def load_converted(model, converted, warn_aux=True):
    """Sets `model`'s weights from a `ConvertedWeights`, all or nothing.

    Every layer of the model with weights must be in `converted` (auxiliary
    heads excepted: left as initialised, with a warning, since neither
    published set has trained ones loadable here), with the same shapes;
    every converted layer must be in the model, except the classifier and
    the auxiliary heads (e.g. `include_top=False`).

    Raises:
        WeightsMismatchError: naming the first mismatching tensor.
    """
    weight_set = presets.WEIGHT_SETS.get(converted.origin)
    source = weight_set.label if weight_set else converted.origin
    config = model_config(model)
    wrong = {k: v for k, v in converted.config.items() if k in config and config[k] != v}
    if wrong:
        raise WeightsMismatchError(
            f"The {source} weights are for GoogLeNet({describe_config(converted.config)}); this model "
            f"has {describe_config({k: config[k] for k in wrong})}. Build it with "
            + ("GoogLeNet(**keras_googlenet.weights.TORCHVISION_CONFIG)."
               if converted.origin == "torchvision" else "the default GoogLeNet() (the paper).")
        )
    assignments = []
    skipped_aux = []
    model_layers = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        model_layers[layer.name] = layer
        expected = layer.weights
        if layer.name not in converted:
            if is_aux_layer(layer.name):
                skipped_aux.append(layer.name)
                continue
            raise WeightsMismatchError(
                f"Missing tensor: the {source} weights have no tensor for the layer "
                f"{layer.name!r} (expected {[tuple(w.shape) for w in expected]})."
            )
        arrays, sources = converted[layer.name], converted.sources[layer.name]
        if len(arrays) != len(expected):
            raise WeightsMismatchError(
                f"The layer {layer.name!r} has {len(expected)} weights "
                f"{[w.name for w in expected]}; the {source} weights give {len(arrays)} "
                f"({sources})."
            )
        for variable, array, tensor in zip(expected, arrays, sources):
            if tuple(variable.shape) != tuple(array.shape):
                hint = ""
                if layer.name.endswith("classifier"):
                    hint = (" The published classifiers have 1000 classes: use classes=1000, "
                            "or include_top=False for a backbone.")
                elif layer.name.endswith("_fc"):
                    hint = " The auxiliary fc needs a 224x224 input (a 4x4 map)."
                raise WeightsMismatchError(
                    f"Tensor {tensor!r} does not fit {variable.path!r}: expected shape "
                    f"{tuple(variable.shape)}, found {tuple(array.shape)}.{hint}"
                )
        assignments.append((layer, arrays))
    for name in converted:
        if name not in model_layers and not (is_aux_layer(name) or name in _TOP_LAYERS):
            raise WeightsMismatchError(
                f"The tensor {converted.sources[name][0]!r} (layer {name!r}) has no layer in "
                f"this model: the {source} weights are for GoogLeNet("
                f"{describe_config(converted.config)})."
            )
    for layer, arrays in assignments:
        layer.set_weights(arrays)
    if skipped_aux and warn_aux:
        warnings.warn(
            f"The {source} weights have no trained auxiliary heads; "
            f"{sorted(skipped_aux)} keep their initialisation (train them).",
            stacklevel=2,
        )
    return model


def converted_contract(model, origin="bvlc"):
    """The preprocessing contract of a model holding converted weights: the
    published set's (`presets.WEIGHT_SETS[origin].contract`) at the model's size."""
    return presets.WEIGHT_SETS[origin].contract.replace(
        image_size=model.input_shape[1], variant=model_config(model))


def save_converted(model, out_path, origin="bvlc"):
    """Saves a model with converted weights: `.weights.h5` (the weights, for
    `GoogLeNet(weights=...)`) or `.keras` (the whole model, e.g. for
    `googlenet finetune --model`), which carries the preprocessing the
    published weights expect (`presets.WEIGHT_SETS[origin].contract`) and, with the
    classifier, the ImageNet class names."""
    out_path = os.fspath(out_path)
    if out_path.endswith(".keras"):
        contract.save_model(model, out_path, converted_contract(model, origin))
    elif out_path.endswith(".weights.h5"):
        model.save_weights(out_path)
    else:
        raise ValueError(
            f"The output must end with '.weights.h5' or '.keras'. Received: {out_path!r}")
    return out_path
