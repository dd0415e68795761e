"""Pretrained ImageNet weights: converters from the two published sets.

Two sets of GoogLeNet ImageNet weights exist; neither is published for
Keras, so this module reads them as published and converts them:

* **Caffe bvlc_googlenet**, the paper's architecture (LRN, real 5x5
  branches), 68.7% top-1 / 88.9% top-5, as republished by the ONNX model
  zoo (`googlenet-12.onnx`, `googlenet-9.onnx`, ... read with the `onnx`
  package). It loads into the default `GoogLeNet()`. Expected input: BGR,
  224x224, minus the channel means (B 104, G 117, R 123), no scaling --
  `preprocess_input(x, mode="caffe")`, whose means (103.939, 116.779,
  123.68) differ from Caffe's integers by < 0.4.
* **torchvision googlenet** (`googlenet-1378be20.pth`), the batch-norm
  variant ported from TF-slim, 69.8% top-1 / 89.5% top-5. It loads into
  `GoogLeNet(**TORCHVISION_CONFIG)`: batch norm, a 3x3 kernel in the "5x5"
  branch and a 2x2/2 pool4. torchvision's `transform_input=True` turns its
  ImageNet-normalised input into `(x / 255 - 0.5) / 0.5` per channel, i.e.
  RGB scaled to [-1, 1]: the converted model expects
  `preprocess_input(x, mode="tf")`. Its auxiliary heads are NOT pretrained
  (torchvision's own warning); they are skipped unless asked for.

Tensors are mapped by layer names (Caffe's `inception_3a/5x5` is the Keras
layer `inception_3a_5x5`; torchvision's `inception3a.branch3.1.conv` is the
same layer), never by order. A file that does not fit the model raises a
`WeightsMismatchError` naming the first mismatching tensor.

`GoogLeNet(weights=...)` accepts a `.onnx`, a `.pth`/`.pt` state dict, a
converted `.weights.h5`, or `"imagenet"`: the original files cannot be
downloaded here, so "imagenet" looks for them (see `find_imagenet_file`),
checks their hash and converts them.

Command line: `python -m keras_googlenet.weights.converters SOURCE OUT.weights.h5` (or
`OUT.keras` for the whole model, e.g. for `googlenet finetune --model`).
"""
import collections
import hashlib
import os
import pickle
import re
import sys
import warnings
import zipfile

import numpy as np

from keras_googlenet.models import architecture

# ---------------------------------------------------------------------------
# Published files.
# ---------------------------------------------------------------------------
# GoogLeNet(**TORCHVISION_CONFIG) is torchvision's architecture exactly.
TORCHVISION_CONFIG = {"batch_norm": True, "kernel_5x5": 3, "pool4_size": 2}
# The default GoogLeNet() is the paper / Caffe bvlc_googlenet.
BVLC_CONFIG = {"batch_norm": False, "kernel_5x5": 5, "pool4_size": 3}

TORCHVISION_FILENAME = "googlenet-1378be20.pth"
TORCHVISION_URL = "https://download.pytorch.org/models/" + TORCHVISION_FILENAME
# torch.hub convention: the part of the file name after the last "-" is the
# first hex digits of the file's SHA-256 (what `check_hash=True` verifies).
TORCHVISION_SHA256_PREFIX = "1378be20"

# ONNX model zoo: validated/vision/classification/inception_and_googlenet/
# googlenet/model/googlenet-<opset>.onnx (the bvlc_googlenet Caffe model via
# Caffe2). The tarballs (googlenet-<opset>.tar.gz) hold model.onnx.
ONNX_ZOO_URL = (
    "https://github.com/onnx/models/tree/main/validated/vision/classification/"
    "inception_and_googlenet/googlenet"
)
ONNX_FILENAMES = (
    "googlenet-12.onnx", "googlenet-9.onnx", "googlenet-8.onnx", "googlenet-7.onnx",
    "googlenet-6.onnx", "googlenet-3.onnx", "bvlc_googlenet.onnx",
)
# SHA-256 of the ONNX zoo files. Deliberately empty: the files could not be
# downloaded while writing this module and a hash is never guessed. Pin the
# digest of the file you downloaded with the environment variable below (or
# add it here); without one, "imagenet" warns and prints the digest.
ONNX_SHA256 = {}
ONNX_SHA256_ENV = "KERAS_GOOGLENET_ONNX_SHA256"
WEIGHTS_DIR_ENV = "KERAS_GOOGLENET_WEIGHTS_DIR"

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


def _keras_name_from_caffe(caffe_name):
    """Caffe `inception_3a/5x5` -> `inception_3a_5x5`; loss heads renamed."""
    name = caffe_name.replace("/", "_")
    match = re.fullmatch(r"loss([123])_(conv|fc|classifier)", name)
    if match:
        index, kind = match.groups()
        return "classifier" if index == "3" else f"aux{index}_{kind}"
    return name


def _is_aux(name):
    return name.startswith(_AUX_PREFIXES)


def _permute_flatten_rows(kernel, channels=architecture.AUX_CONV_FILTERS):
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


# ---------------------------------------------------------------------------
# ONNX bvlc_googlenet.
# ---------------------------------------------------------------------------
_ONNX_WEIGHT_SUFFIX = re.compile(r"(_w(_\d+)?|_weights?(_\d+)?|/weights?|\.weight)$")
_ONNX_OUTPUT_SUFFIX = re.compile(r"_\d+$")


def _onnx_layer_name(node, initializers, known):
    """The Keras layer of a Conv/Gemm node, from its names (not its position).

    ONNX zoo convention (Caffe2 export): weights `conv1/7x7_s2_w_0`, bias
    `conv1/7x7_s2_b_0`, output `conv1/7x7_s2_1`, input `data_0` (the names
    public tools' tests use for the zoo's googlenet, e.g. OpenVINO's ONNX
    editor tests; not checked against the file itself here). Tries the
    weight's name, then the output's, then the node's name.
    """
    candidates = []
    if len(node.input) > 1 and node.input[1] in initializers:
        candidates.append(_ONNX_WEIGHT_SUFFIX.sub("", node.input[1]))
    if node.output:
        candidates.append(_ONNX_OUTPUT_SUFFIX.sub("", node.output[0]))
    if node.name:
        candidates.append(node.name)
    for candidate in candidates:
        name = _keras_name_from_caffe(candidate)
        if name in known:
            return name
    return None


def convert_onnx_bvlc(path_or_model):
    """Converts the ONNX bvlc_googlenet to Keras weights for `GoogLeNet()`.

    Args:
        path_or_model: path of the `.onnx` file or an `onnx.ModelProto`.

    Returns:
        A `ConvertedWeights` `{layer: [kernel, bias]}`: conv kernels OIHW ->
        HWIO, Gemm weights -> (in, out), auxiliary fc rows (if the file has
        the loss1/loss2 heads) re-ordered from a CHW to an HWC flatten.

    Raises:
        WeightsMismatchError: a Conv/Gemm node that is not a GoogLeNet layer
            (wrong file), or a tensor missing.
    """
    import onnx
    from onnx import numpy_helper

    model = path_or_model
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(os.fspath(path_or_model))
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    convs, denses = set(conv_layer_names()), set(dense_layer_names())
    converted = ConvertedWeights("bvlc", BVLC_CONFIG)

    def tensor(node, index, role, layer):
        if len(node.input) <= index or node.input[index] not in initializers:
            raise WeightsMismatchError(
                f"The {node.op_type} node of layer {layer!r} (output "
                f"{node.output[0]!r}) has no {role} initializer."
            )
        name = node.input[index]
        return numpy_helper.to_array(initializers[name]).astype(np.float32), name

    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        known = convs if node.op_type == "Conv" else denses
        layer = _onnx_layer_name(node, initializers, known)
        if layer is None:
            weight = node.input[1] if len(node.input) > 1 else "?"
            raise WeightsMismatchError(
                f"The tensor {weight!r} ({node.op_type} node {node.name or node.output[0]!r}) "
                "is not a layer of bvlc_googlenet: expected the ONNX model zoo naming "
                "(e.g. 'conv1/7x7_s2_w_0'). Is this the googlenet ONNX file?"
            )
        kernel, kernel_name = tensor(node, 1, "weight", layer)
        bias, bias_name = tensor(node, 2, "bias", layer)
        if node.op_type == "Conv":
            if kernel.ndim != 4:
                raise WeightsMismatchError(
                    f"The tensor {kernel_name!r} (layer {layer!r}) should be a 4-D OIHW "
                    f"kernel; found shape {kernel.shape}."
                )
            group = next((a.i for a in node.attribute if a.name == "group"), 1)
            if group != 1:
                raise WeightsMismatchError(f"Layer {layer!r}: grouped convolution ({group}).")
            kernel = kernel.transpose(2, 3, 1, 0)
        else:
            attrs = {a.name: a for a in node.attribute}
            if kernel.ndim != 2:
                raise WeightsMismatchError(
                    f"The tensor {kernel_name!r} (layer {layer!r}) should be a 2-D "
                    f"matrix; found shape {kernel.shape}."
                )
            if attrs.get("transA") is not None and attrs["transA"].i:
                raise WeightsMismatchError(f"Layer {layer!r}: Gemm with transA=1.")
            for scale in ("alpha", "beta"):
                if scale in attrs and attrs[scale].f != 1.0:
                    raise WeightsMismatchError(f"Layer {layer!r}: Gemm with {scale} != 1.")
            if attrs.get("transB") is not None and attrs["transB"].i:
                kernel = kernel.T
            if layer.endswith("_fc"):
                kernel = _permute_flatten_rows(kernel)
        converted.add(layer, [kernel, bias.reshape(-1)], [kernel_name, bias_name])
    if not converted:
        raise WeightsMismatchError(
            "The ONNX file has no Conv or Gemm node: not a bvlc_googlenet model."
        )
    return converted


def load_onnx_bvlc(model, path_or_model):
    """Loads the ONNX bvlc_googlenet into `model` (a default `GoogLeNet()`)."""
    load_converted(model, convert_onnx_bvlc(path_or_model))
    return model


# ---------------------------------------------------------------------------
# torchvision googlenet.
# ---------------------------------------------------------------------------
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


def read_state_dict(path, use_torch=None):
    """Reads a PyTorch state dict (`.pth`) into `{name: numpy array}`.

    Nothing in the file runs: with torch (`use_torch=None` uses it when it
    is installed) through `torch.load(weights_only=True)`, otherwise through
    a small pure-Python reader of the two `torch.save` formats (zip, and the
    legacy pickle format of 2019 files such as googlenet-1378be20.pth) whose
    unpickler accepts only tensors, storages and plain containers.

    Raises:
        NotAStateDictError: the file holds anything else, or is damaged.
    """
    if use_torch is None:
        try:
            import torch  # noqa: F401
            use_torch = True
        except ImportError:
            use_torch = False
    if not use_torch:
        return _read_state_dict_without_torch(path)
    import torch

    try:
        state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise NotAStateDictError(
            f"{os.fspath(path)} is not a plain PyTorch state dict: {first_line}") from None
    if not isinstance(state, dict):
        raise NotAStateDictError(f"{os.fspath(path)} is not a plain PyTorch state dict: it "
                                 f"holds a {type(state).__name__}")
    return {k: v.detach().cpu().numpy() for k, v in state.items() if hasattr(v, "detach")}


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
            file) or an incomplete layer (missing tensor).
    """
    state = state_dict_or_path
    if isinstance(state, (str, os.PathLike)):
        state = read_state_dict(state)
    arrays = {}
    for key, value in state.items():
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        arrays[key] = np.asarray(value)
    converted = ConvertedWeights("torchvision", TORCHVISION_CONFIG)
    pending = {}  # keras layer -> {slot: (array, source)}

    def put(layer, slot, array, source):
        pending.setdefault(layer, {})[slot] = (array, source)

    for key, value in arrays.items():
        if key.endswith("num_batches_tracked"):
            continue
        if _is_aux(key.replace(".", "_")) and not include_aux:
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
                    value = _permute_flatten_rows(value)
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


# ---------------------------------------------------------------------------
# Loading converted weights into a model.
# ---------------------------------------------------------------------------
def _model_config(model):
    names = {layer.name for layer in model.layers}
    config = {"batch_norm": "conv1_7x7_s2_bn" in names}
    if "inception_3a_5x5" in names:
        config["kernel_5x5"] = int(model.get_layer("inception_3a_5x5").kernel_size[0])
    if "pool4_3x3_s2" in names:
        config["pool4_size"] = int(model.get_layer("pool4_3x3_s2").pool_size[0])
    return config


def _describe(config):
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
    source = {"bvlc": "Caffe bvlc_googlenet (ONNX)", "torchvision": "torchvision googlenet"}.get(
        converted.origin, converted.origin)
    config = _model_config(model)
    wrong = {k: v for k, v in converted.config.items() if k in config and config[k] != v}
    if wrong:
        raise WeightsMismatchError(
            f"The {source} weights are for GoogLeNet({_describe(converted.config)}); this model "
            f"has {_describe({k: config[k] for k in wrong})}. Build it with "
            + ("GoogLeNet(**keras_googlenet.weights.converters.TORCHVISION_CONFIG)."
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
            if _is_aux(layer.name):
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
        if name not in model_layers and not (_is_aux(name) or name in _TOP_LAYERS):
            raise WeightsMismatchError(
                f"The tensor {converted.sources[name][0]!r} (layer {name!r}) has no layer in "
                f"this model: the {source} weights are for GoogLeNet("
                f"{_describe(converted.config)})."
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


def save_converted(model, out_path):
    """Saves a model with converted weights: `.weights.h5` (the weights, for
    `GoogLeNet(weights=...)`) or `.keras` (the whole model, e.g. for
    `googlenet finetune --model`)."""
    out_path = os.fspath(out_path)
    if out_path.endswith(".keras"):
        model.save(out_path)
    elif out_path.endswith(".weights.h5"):
        model.save_weights(out_path)
    else:
        raise ValueError(
            f"The output must end with '.weights.h5' or '.keras'. Received: {out_path!r}")
    return out_path


def convert_file(source, out_path, include_top=True, classes=1000, include_aux=False):
    """Converts a published file to a Keras `.weights.h5` (or `.keras`) for the
    matching model.

    Returns:
        `(out_path, config)`: build `GoogLeNet(**config)` to load it.
    """
    from keras_googlenet.models.googlenet import GoogLeNet

    converted = convert(source, include_aux=include_aux)
    config = dict(converted.config, include_top=include_top)
    if include_top:
        config["classes"] = classes
    if include_aux and any(_is_aux(name) for name in converted):
        config["aux_classifiers"] = True
    model = GoogLeNet(**config)
    load_converted(model, converted, warn_aux=False)
    return save_converted(model, out_path), config


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


# ---------------------------------------------------------------------------
# GoogLeNet(weights=...).
# ---------------------------------------------------------------------------
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
    names = (TORCHVISION_FILENAME,) if batch_norm else ONNX_FILENAMES
    dirs = weights_dirs()
    for directory in dirs:
        for name in names:
            path = os.path.join(directory, name)
            if os.path.isfile(path):
                check_hash(path)
                return path
    if batch_norm:
        how = (f"torchvision's googlenet weights: download {TORCHVISION_URL}")
    else:
        how = (f"the ONNX model zoo's bvlc_googlenet: download googlenet-12.onnx (or "
               f"googlenet-9.onnx, ...) from {ONNX_ZOO_URL}")
    raise WeightsNotFoundError(
        f"weights='imagenet' converts {how} -- nothing is downloaded automatically. "
        f"Put the file in one of {dirs} (the first is ${WEIGHTS_DIR_ENV} when set), or "
        "pass its path as `weights=`."
    )


def check_hash(path):
    """Checks a published file: torchvision by its file-name SHA-256 prefix,
    ONNX by $KERAS_GOOGLENET_ONNX_SHA256 or `ONNX_SHA256` (warns if neither)."""
    name = os.path.basename(path)
    digest = sha256(path)
    if name == TORCHVISION_FILENAME:
        expected = TORCHVISION_SHA256_PREFIX
    else:
        expected = os.environ.get(ONNX_SHA256_ENV) or ONNX_SHA256.get(name)
        if not expected:
            warnings.warn(
                f"No known SHA-256 for {name}; its digest is {digest}. Set "
                f"{ONNX_SHA256_ENV} to the published value to verify it.",
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
        config = _model_config(model)
        if config["batch_norm"] and (
                {k: config.get(k) for k in TORCHVISION_CONFIG} != TORCHVISION_CONFIG):
            raise WeightsMismatchError(
                "The only published batch-norm weights are torchvision's, for "
                f"GoogLeNet({_describe(TORCHVISION_CONFIG)}). This model has "
                f"{_describe(config)}."
            )
        weights = find_imagenet_file(config["batch_norm"])
    path = os.fspath(weights)
    if path.endswith(".onnx"):
        return load_onnx_bvlc(model, path)
    if path.endswith((".pth", ".pt")):
        return load_torchvision(model, path)
    model.load_weights(path)
    return model


# ---------------------------------------------------------------------------
# A torch-free reader of torch.save files.
#
# Every pickle of the file, the small legacy header pickles included, goes
# through `_StateDictUnpickler`, which resolves only the names a state dict
# needs: a pickle is a program, and any other global (os.system, eval, ...)
# would run code on load.
# ---------------------------------------------------------------------------
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class NotAStateDictError(WeightsMismatchError):
    """A .pth file that is not a plain state dict of tensors (or is damaged)."""


class _StorageType:
    def __init__(self, name):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _LazyStorage:
    """A legacy-format storage: its bytes follow the pickle that uses it."""

    def __init__(self, dtype, view=None):
        self.dtype = dtype
        self.view = view
        self._data = None

    @property
    def data(self):
        if self.view is not None:
            root, offset, size = self.view
            return root.data[offset:offset + size]
        if self._data is None:
            raise NotAStateDictError("a tensor uses a storage that the file does not contain")
        return self._data

    @data.setter
    def data(self, value):
        self._data = value


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = storage, offset, size, stride

    def resolve(self):
        storage, offset, size, stride = self.args
        return _rebuild_tensor(storage.data, offset, size, stride)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_view(length, offset, size, stride):
    """Refuses a (offset, size, stride) view that leaves a storage of `length`.

    `as_strided` trusts its arguments: unchecked, a crafted file reads heap
    memory beyond the storage or crashes the process. Python integers do not
    overflow, so the arithmetic below is exact.
    """
    size, stride = tuple(size), tuple(stride)
    if not (_is_int(offset) and all(map(_is_int, size + stride)) and len(size) == len(stride)):
        raise NotAStateDictError(f"malformed tensor view: offset {offset!r}, size {size!r}, "
                                 f"stride {stride!r}")
    if offset < 0 or min(size + stride, default=0) < 0:
        raise NotAStateDictError(f"negative tensor view: offset {offset}, size {size}, "
                                 f"stride {stride}")
    numel = int(np.prod(size, dtype=object)) if size else 1
    if numel == 0:
        return 0
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    # A parameter never overlaps itself, so it has at most `length` elements.
    if last >= length or numel > length:
        raise NotAStateDictError(
            f"a tensor of size {size} (stride {stride}, offset {offset}) does not fit "
            f"its storage of {length} elements")
    return numel


def _rebuild_tensor(storage, offset, size, stride, *args):
    if isinstance(storage, _LazyStorage):
        return _LazyTensor(storage, offset, size, stride)
    if not isinstance(storage, np.ndarray):
        raise NotAStateDictError(f"a tensor is built on {type(storage).__name__}, not a storage")
    if _check_view(len(storage), offset, size, stride) == 0:
        return np.zeros(tuple(size), storage.dtype)
    if not size:
        return storage[offset:offset + 1].reshape(()).copy()
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride)
    ).copy()


class _StateDictUnpickler(pickle.Unpickler):
    """Unpickles plain data, tensors and OrderedDicts; refuses any other global."""

    def __init__(self, file, load_storage=None):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a state dict "
                                     "never needs (refused: unpickling it could run code)")

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata]);
        # legacy files may store a view (view_key, offset, size) of a storage.
        if (self._load_storage is None or not isinstance(pid, tuple) or len(pid) < 5
                or pid[0] != "storage" or not isinstance(pid[1], _StorageType)
                or not _is_int(pid[4])):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.80}")
        storage = self._load_storage(pid[1].dtype, str(pid[2]), pid[4])
        view = pid[5] if len(pid) > 5 else None
        if view is None:
            return storage
        if not (isinstance(view, tuple) and len(view) == 3
                and _is_int(view[1]) and _is_int(view[2])):
            raise pickle.UnpicklingError(f"malformed storage view {view!r:.80}")
        _, offset, size = view
        if isinstance(storage, _LazyStorage):
            return _LazyStorage(storage.dtype, view=(storage, offset, size))
        _check_view(len(storage), offset, (size,), (1,))
        return storage[offset:offset + size]


def _read_state_dict_without_torch(path):
    path = os.fspath(path)
    try:
        state = _read_torch_save(path)
        if not isinstance(state, dict):
            raise NotAStateDictError(f"it holds a {type(state).__name__}, not a dict")
        state = {k: (v.resolve() if isinstance(v, _LazyTensor) else v)
                 for k, v in state.items()}
    except NotAStateDictError as e:
        raise NotAStateDictError(f"{path} is not a plain PyTorch state dict: {e}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
            AttributeError, IndexError, zipfile.BadZipFile, StopIteration) as e:
        raise NotAStateDictError(f"{path} is not a plain PyTorch state dict: {e}") from None
    return state


def _read_torch_save(path):
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            pkl = next(n for n in archive.namelist() if n.endswith("data.pkl"))
            prefix = pkl[: -len("data.pkl")]

            def load_storage(dtype, key, numel):
                data = np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=dtype)
                if len(data) < numel:
                    raise NotAStateDictError(f"storage {key} is truncated")
                return data

            with archive.open(pkl) as f:
                return _StateDictUnpickler(f, load_storage).load()
    with open(path, "rb") as f:  # legacy format: consecutive pickles
        if _StateDictUnpickler(f).load() != _LEGACY_MAGIC:
            raise NotAStateDictError("it is not a torch.save file")
        _StateDictUnpickler(f).load()  # protocol version
        _StateDictUnpickler(f).load()  # sys info
        storages = {}

        def load_storage(dtype, key, numel):
            return storages.setdefault(key, _LazyStorage(dtype))

        state = _StateDictUnpickler(f, load_storage).load()
        for key in _StateDictUnpickler(f).load():
            storage = storages[str(key)]
            numel = int(np.frombuffer(f.read(8), dtype="<i8")[0])
            nbytes = numel * storage.dtype.itemsize
            data = f.read(nbytes)
            if numel < 0 or len(data) != nbytes:
                raise NotAStateDictError(f"storage {key} is truncated")
            storage.data = np.frombuffer(data, dtype=storage.dtype)
    return state


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m keras_googlenet.weights.converters",
        description="Convert published GoogLeNet ImageNet weights to a Keras .weights.h5.",
    )
    parser.add_argument("source", help="googlenet-*.onnx (bvlc) or googlenet-1378be20.pth")
    parser.add_argument("out", help="output path ending in .weights.h5 (weights) or "
                        ".keras (whole model)")
    parser.add_argument("--no-top", action="store_true", help="drop the classifier")
    args = parser.parse_args(argv)
    out, config = convert_file(args.source, args.out, include_top=not args.no_top)
    if out.endswith(".keras"):
        print(f"Wrote {out} (load it with keras.models.load_model)")
    else:
        print(f"Wrote {out}; load it with GoogLeNet(weights={out!r}, {_describe(config)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
