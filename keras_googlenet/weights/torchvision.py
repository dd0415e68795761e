"""torchvision's googlenet state dict to Keras weights for
`GoogLeNet(**TORCHVISION_CONFIG)` (batch norm, 3x3 "5x5" branch, 2x2 pool4)."""
import os
import re

import numpy as np

from keras_googlenet.models import architecture
from keras_googlenet.models.presets import TORCHVISION
from keras_googlenet.weights.common import (ConvertedWeights, WeightsMismatchError,
                                            dense_layer_names, is_aux_layer,
                                            load_converted, permute_flatten_rows)
from keras_googlenet.weights.pth_reader import read_state_dict

_TV_STEM = {"conv1": "conv1_7x7_s2", "conv2": "conv2_3x3_reduce", "conv3": "conv2_3x3"}
_TV_BRANCH = {"branch1": "1x1", "branch2.0": "3x3_reduce", "branch2.1": "3x3",
              "branch3.0": "5x5_reduce", "branch3.1": "5x5", "branch4.1": "pool_proj"}
_TV_BN = {"weight": 0, "bias": 1, "running_mean": 2, "running_var": 3}


def _torchvision_layer(module):
    """torchvision module path (without `.conv`/`.bn`) -> Keras conv layer."""
    if module in _TV_STEM:
        return _TV_STEM[module]
    match = re.fullmatch(r"inception(\d[a-e])\.(branch\d(?:\.\d)?)", module)
    if match and match.group(2) in _TV_BRANCH:
        return f"inception_{match.group(1)}_{_TV_BRANCH[match.group(2)]}"
    match = re.fullmatch(r"(aux[12])\.conv", module)
    if match:
        return f"{match.group(1)}_conv"
    return None


def expected_state_dict():
    """The names and shapes of torchvision's googlenet state dict, from Table 1.

    Returns:
        `(shapes, optional)`: `{name: shape}` (the classifiers' class count is
        `None`, any: a fine-tuned file may have other classes than 1000), and
        the names a file may lack: the aux heads (`aux_logits=False`) and the
        batch-norm `num_batches_tracked` counters (older torch).
    """
    shapes = {}
    kernel_5x5 = TORCHVISION.config["kernel_5x5"]

    def basic_conv(module, cin, cout, kernel):  # torchvision's BasicConv2d
        shapes[f"{module}.conv.weight"] = (cout, cin, kernel, kernel)
        for name in _TV_BN:
            shapes[f"{module}.bn.{name}"] = (cout,)
        shapes[f"{module}.bn.num_batches_tracked"] = ()

    basic_conv("conv1", 3, architecture.CONV1[1], architecture.CONV1[2])
    basic_conv("conv2", architecture.CONV1[1], architecture.CONV2_REDUCE[1],
               architecture.CONV2_REDUCE[2])
    basic_conv("conv3", architecture.CONV2_REDUCE[1], architecture.CONV2[1],
               architecture.CONV2[2])
    cin, block_outputs = architecture.CONV2[1], {}
    for row in architecture.inception_rows():
        module = "inception" + row.name[len("inception_"):]
        basic_conv(f"{module}.branch1", cin, row.ch1x1, 1)
        basic_conv(f"{module}.branch2.0", cin, row.ch3x3_reduce, 1)
        basic_conv(f"{module}.branch2.1", row.ch3x3_reduce, row.ch3x3, 3)
        basic_conv(f"{module}.branch3.0", cin, row.ch5x5_reduce, 1)
        basic_conv(f"{module}.branch3.1", row.ch5x5_reduce, row.ch5x5, kernel_5x5)
        basic_conv(f"{module}.branch4.1", cin, row.pool_proj, 1)
        cin = block_outputs[row.name] = architecture.block_output_channels(row)
    aux = set()
    for head, block in architecture.AUX_HEADS.items():
        before = set(shapes)
        basic_conv(f"{head}.conv", block_outputs[block], architecture.AUX_CONV_FILTERS, 1)
        # torchvision pools the aux input to 4x4 (adaptive), whatever the image size.
        fc1_in = architecture.AUX_CONV_FILTERS * 4 * 4
        shapes[f"{head}.fc1.weight"] = (architecture.AUX_FC_UNITS, fc1_in)
        shapes[f"{head}.fc1.bias"] = (architecture.AUX_FC_UNITS,)
        shapes[f"{head}.fc2.weight"] = (None, architecture.AUX_FC_UNITS)
        shapes[f"{head}.fc2.bias"] = (None,)
        aux |= set(shapes) - before
    shapes["fc.weight"] = (None, cin)
    shapes["fc.bias"] = (None,)
    optional = aux | {k for k in shapes if k.endswith("num_batches_tracked")}
    return shapes, optional


def convert_torchvision(state_dict_or_path, include_aux=False):
    """Converts torchvision's googlenet state dict for `GoogLeNet(**TORCHVISION_CONFIG)`.

    Args:
        state_dict_or_path: a state dict (torch tensors or numpy arrays) or
            the path of `googlenet-1378be20.pth`.
        include_aux: also convert aux1/aux2. Off by default: torchvision's
            auxiliary heads are NOT pretrained (random initialisation in the
            published file), and torchvision pools them with an adaptive 4x4
            average instead of the paper's 5x5/3, so they would not
            reproduce torchvision's (untrained) aux outputs anyway.

    Returns:
        A `ConvertedWeights`: conv OIHW -> HWIO, batch norm (weight, bias,
        running_mean, running_var) -> (gamma, beta, moving_mean,
        moving_variance), Linear (out, in) -> (in, out); aux fc1 rows
        re-ordered from torch's CHW flatten to Keras's HWC flatten.

    Raises:
        WeightsMismatchError: a tensor that is not a googlenet layer (wrong
            file) or an incomplete layer (missing tensor); for a path, also
            a name or shape not of `expected_state_dict()`, refused before
            any storage of the file is read.
    """
    state = state_dict_or_path
    if isinstance(state, (str, os.PathLike)):
        shapes, optional = expected_state_dict()
        try:
            state = read_state_dict(state, expected=shapes, optional=optional)
        except WeightsMismatchError as e:
            if type(e) is not WeightsMismatchError:  # NotAStateDictError: says it all
                raise
            raise WeightsMismatchError(
                f"{e} Is this torchvision's googlenet-1378be20.pth?") from None
    arrays = {}
    for key, value in state.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        arrays[key] = np.asarray(value)
    converted = ConvertedWeights(TORCHVISION.name, TORCHVISION.config)
    pending = {}  # keras layer -> {slot: (array, source)}

    def put(layer, slot, array, source):
        pending.setdefault(layer, {})[slot] = (array, source)

    for key, value in arrays.items():
        if key.endswith("num_batches_tracked"):
            continue
        if is_aux_layer(key.replace(".", "_")) and not include_aux:
            continue
        match = re.fullmatch(r"(.+)\.(conv|bn)\.(weight|bias|running_mean|running_var)", key)
        layer = _torchvision_layer(match.group(1)) if match else None
        if layer is not None and match.group(2) == "conv" and match.group(3) == "weight":
            put(layer, 0, value.transpose(2, 3, 1, 0), key)
            continue
        if layer is not None and match.group(2) == "bn":
            put(f"{layer}_bn", _TV_BN[match.group(3)], value, key)
            continue
        match = re.fullmatch(r"(fc|aux[12]\.fc[12])\.(weight|bias)", key)
        if match:
            module, kind = match.groups()
            layer = {"fc": "classifier"}.get(module) or module.replace(".fc1", "_fc").replace(
                ".fc2", "_classifier")
            if kind == "weight":
                value = value.T
                if layer.endswith("_fc"):
                    value = permute_flatten_rows(value)
            put(layer, 0 if kind == "weight" else 1, value, key)
            continue
        raise WeightsMismatchError(
            f"The tensor {key!r} (shape {tuple(value.shape)}) is not a layer of "
            "torchvision's googlenet. Is this googlenet-1378be20.pth?"
        )
    for layer, slots in pending.items():
        count = 4 if layer.endswith("_bn") else (2 if layer in dense_layer_names() else 1)
        missing = [i for i in range(count) if i not in slots]
        if missing:
            names = (["weight", "bias", "running_mean", "running_var"] if count == 4
                     else ["weight", "bias"])
            present = next(iter(slots.values()))[1]
            raise WeightsMismatchError(
                f"Missing tensor {names[missing[0]]!r} next to {present!r} "
                f"(Keras layer {layer!r})."
            )
        converted.add(layer, [slots[i][0] for i in range(count)],
                      [slots[i][1] for i in range(count)])
    if not converted:
        raise WeightsMismatchError("The state dict has no googlenet tensor.")
    return converted


def load_torchvision(model, state_dict_or_path, include_aux=False):
    """Loads torchvision's googlenet into `GoogLeNet(**TORCHVISION_CONFIG)`."""
    load_converted(model, convert_torchvision(state_dict_or_path, include_aux=include_aux))
    return model
