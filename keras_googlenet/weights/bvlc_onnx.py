"""Caffe bvlc_googlenet, as the ONNX model zoo republishes it, to Keras weights
for the default `GoogLeNet()` (the paper's architecture)."""
import os
import re

import numpy as np

from keras_googlenet.models.presets import BVLC
from keras_googlenet.weights.common import (ConvertedWeights, WeightsMismatchError,
                                            conv_layer_names, dense_layer_names,
                                            load_converted, permute_flatten_rows)

def _keras_name_from_caffe(caffe_name):
    """Caffe `inception_3a/5x5` -> `inception_3a_5x5`; loss heads renamed."""
    name = caffe_name.replace("/", "_")
    match = re.fullmatch(r"loss([123])_(conv|fc|classifier)", name)
    if match:
        index, kind = match.groups()
        return "classifier" if index == "3" else f"aux{index}_{kind}"
    return name


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
    converted = ConvertedWeights(BVLC.name, BVLC.config)

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
                kernel = permute_flatten_rows(kernel)
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
