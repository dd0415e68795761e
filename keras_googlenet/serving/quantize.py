"""Calibrated full-integer (int8) post-training quantisation, and the
contract sidecar of every converted file.

Two int8 files of the inference model, for CPU serving:

- TFLite with int8 builtin ops (`to_tflite_int8`): `tf.lite.Optimize.DEFAULT`
  with a representative dataset, `TFLITE_BUILTINS_INT8`; weights per channel
  (the converter's default for convolutions), activations per tensor. Input
  and output stay float32 (a QUANTIZE op first, a DEQUANTIZE op last), so
  the file takes what the float one takes. Run it with the default
  interpreter (XNNPACK runs its int8 convolutions).
- ONNX Runtime QDQ (`to_onnx_int8`): the float ONNX of `convert.to_onnx`,
  `onnxruntime.quantization.quant_pre_process`, then `quantize_static`
  with a `CalibrationDataReader`, QDQ format, per-channel int8 weights and
  uint8 activations (U8S8, the fast path of x86 VNNI).

Both calibrate on images of a data spec (`calibration_images`: a few
hundred training images by default) that go through the training
pipeline's evaluation preprocessing (`preprocessing.eval_preprocess`, then
`preprocessing.normalize` with the model's contract). Bad calibration input
(an empty folder, a spec that yields no image) raises a one-line
`ValueError` before any conversion starts.

The paper variant's LRN: TFLite has only a float LOCAL_RESPONSE_NORMALIZATION
kernel and ONNX Runtime only a float LRN, so in both files it stays float
between DEQUANTIZE and QUANTIZE; `to_tflite_int8` then converts with
`TFLITE_BUILTINS` allowed as a fallback and records the float ops in the
sidecar (`float_ops`).

Sidecar: every converted file `<file>` gets `<file>.json` (`write_sidecar`),
its `models.contract.ArtifactInfo`, written by `contract.write_info` and
validated on read (`contract.read_sidecar`): the model's preprocessing
contract (normalization, image_size, crop_fraction, class_names), the
output kind (probabilities or logits), the input's name, dtype and, for
int8 files, the quantisation (scale, zero point) of the first int8 tensor,
and how the file was calibrated. `inference.predictors.converted_predictor`
runs a `.tflite` or `.onnx` file with it.
"""
import dataclasses
import os
import tempfile

import numpy as np
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet import files
from keras_googlenet.data import preprocessing
from keras_googlenet.inference import converted
from keras_googlenet.models import contract as contract_lib
from keras_googlenet.models.contract import sidecar_path
from keras_googlenet.serving import convert

DEFAULT_CALIBRATION_DATA = "embedded"
DEFAULT_CALIBRATION_SPLIT = "train"
DEFAULT_CALIBRATION_IMAGES = 300


# ---------------------------------------------------------------------------
# Calibration images.
# ---------------------------------------------------------------------------
def calibration_images(data=DEFAULT_CALIBRATION_DATA, count=DEFAULT_CALIBRATION_IMAGES,
                       image_size=224, normalization=preprocessing.DEFAULT_MODE,
                       crop_fraction=preprocessing.DEFAULT_CROP_FRACTION,
                       split=DEFAULT_CALIBRATION_SPLIT, data_dir=None):
    """The first `count` images of a data spec, preprocessed as at evaluation.

    Args:
        data: a `sources.get_source` spec ("embedded", "folder:PATH",
            "tfds:NAME", "tfrecord:GLOB"), or a `tf.data.Dataset` of
            `(image, label)` or of images.
        count: how many images (at most).
        image_size, normalization, crop_fraction: the model's contract.
        split: the split of a spec (default "train").
        data_dir: TFDS data directory.

    Returns:
        A float32 numpy array `(n, image_size, image_size, 3)`, `1 <= n <= count`.

    Raises:
        ValueError: one line naming the data, when it yields no image (an
            empty folder, an empty split) or cannot be read.
    """
    from keras_googlenet.data import sources

    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"The number of calibration images must be a positive int. "
                         f"Received: {count!r}")
    preprocessing.check_image_size(image_size)
    contract_lib.check_normalization(normalization)
    if isinstance(data, tf.data.Dataset):
        dataset, name = data, "the calibration dataset"
    else:
        name = f"calibration data {data!r}"
        try:
            source = sources.get_source(data, split, data_dir=data_dir)
        except (ValueError, OSError, tf.errors.OpError) as error:
            reason = " ".join(str(error).split())
            raise ValueError(f"Cannot read the {name}: {reason}") from None
        dataset = source.dataset()
    crops = []
    try:
        for element in dataset.take(count):
            image = element[0] if isinstance(element, (tuple, list)) else element
            # Encoded or decoded: `eval_preprocess` decodes bytes itself.
            crops.append(preprocessing.eval_preprocess(image, image_size, crop_fraction))
    except tf.errors.OpError as error:
        reason = " ".join(str(error.message).split())
        raise ValueError(f"Cannot read the {name}: {reason}") from None
    if not crops:
        raise ValueError(f"The {name} yields no images: int8 calibration needs some "
                         "(e.g. a few hundred training images).")
    return preprocessing.normalize(tf.stack(crops), normalization).numpy().astype(np.float32)


def _batches(images, batch_size=1):
    for start in range(0, len(images), batch_size):
        yield images[start:start + batch_size]


# ---------------------------------------------------------------------------
# TFLite int8.
# ---------------------------------------------------------------------------
def _int8_converter(saved_model_dir, calibration, allow_float):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative_dataset():
        for batch in _batches(calibration):
            yield [batch]

    converter.representative_dataset = representative_dataset
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if allow_float:
        ops.append(tf.lite.OpsSet.TFLITE_BUILTINS)
    converter.target_spec.supported_ops = ops
    return converter


def to_tflite_int8(model, path, calibration, image_size=None, use_ema=True, optimizer=None):
    """Writes a full-integer `.tflite` file (float32 input and output).

    Args:
        model: a GoogLeNet classifier.
        path: output file.
        calibration: float32 `(n, S, S, 3)` preprocessed images
            (`calibration_images`).
        image_size: input size (default: the model's, or 224).
        use_ema, optimizer: see `averages.serving_model`.

    Returns:
        `(path, float_ops)`: the ops left in float (e.g.
        `["LOCAL_RESPONSE_NORMALIZATION"]` for the paper variant), [] when
        every op between the first QUANTIZE and last DEQUANTIZE is int8.
    """

    calibration = _check_calibration(calibration)
    net, spec = convert.resolve(model, image_size, use_ema, optimizer)
    if tuple(calibration.shape[1:3]) != tuple(spec.shape[1:3]):
        raise ValueError(f"Calibration images are {calibration.shape[1]}x{calibration.shape[2]} "
                         f"but the model takes {spec.shape[1]}x{spec.shape[2]}.")
    with tempfile.TemporaryDirectory() as saved_model_dir:
        convert.write_serve_archive(net, spec, saved_model_dir)
        try:
            data = _int8_converter(saved_model_dir, calibration, False).convert()
        except Exception:  # an op without an int8 kernel (the LRN): keep it float
            data = _int8_converter(saved_model_dir, calibration, True).convert()
    files.atomic_write(path, data)
    return path, tflite_float_ops(path)


def _tflite_interpreter(path):
    """For inspecting the ops and tensors of a file: not allocated."""
    return converted.load_tflite(path, allocate=False).handle


def tflite_float_ops(path):
    """The compute ops of an int8 `.tflite` file that run in float."""
    interpreter = _tflite_interpreter(path)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    found = set()
    for op in interpreter._get_ops_details():
        if op["op_name"] in ("QUANTIZE", "DEQUANTIZE"):
            continue
        outputs = [tensors[i] for i in op["outputs"] if i in tensors]
        if outputs and all(t["dtype"] == np.float32 for t in outputs):
            found.add(op["op_name"])
    return sorted(found)


def tflite_input_quantization(path):
    """`{"scale", "zero_point", "dtype"}` of the int8 tensor the float input is
    quantised to (the first QUANTIZE op's output, or the input itself)."""
    interpreter = _tflite_interpreter(path)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    input_index = interpreter.get_input_details()[0]["index"]
    candidates = [tensors[input_index]]
    for op in interpreter._get_ops_details():
        if op["op_name"] == "QUANTIZE" and input_index in list(op["inputs"]):
            candidates = [tensors[i] for i in op["outputs"]]
            break
    tensor = candidates[0]
    scale, zero_point = tensor["quantization"]
    if not scale:
        return None
    return {"scale": float(scale), "zero_point": int(zero_point),
            "dtype": np.dtype(tensor["dtype"]).name}


# ---------------------------------------------------------------------------
# ONNX Runtime QDQ.
# ---------------------------------------------------------------------------
def _onnx_reader(name, calibration):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter(_batches(calibration))

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {name: batch}

        def rewind(self):
            self._batches = iter(_batches(calibration))

    return Reader()


def to_onnx_int8(model, path, calibration, image_size=None, use_ema=True, optimizer=None,
                 float_onnx=None):
    """Writes an ONNX Runtime QDQ `.onnx` file (per-channel int8 weights,
    uint8 activations, float32 input and output).

    Args:
        model: a GoogLeNet classifier (unused when `float_onnx` is given).
        path: output file.
        calibration: float32 `(n, S, S, 3)` preprocessed images.
        image_size, use_ema, optimizer: see `convert.to_onnx`.
        float_onnx: an existing float `.onnx` of the same model to quantise
            (default: converted here).

    Returns:
        `(path, float_ops)`: the op types left in float between the
        dequantise and quantise nodes (e.g. `["LRN"]`); layout ops
        (Transpose, Reshape) that merely move int8 data are not counted.
    """
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    calibration = _check_calibration(calibration)
    with tempfile.TemporaryDirectory() as work:
        if float_onnx is None:
            net, _ = convert.resolve(model, image_size, use_ema, optimizer)
            float_onnx = convert.to_onnx(net, os.path.join(work, "float.onnx"),
                                         image_size=image_size, use_ema=False)
        prepared = os.path.join(work, "prepared.onnx")
        quant_pre_process(os.fspath(float_onnx), prepared, skip_symbolic_shape=True)
        import onnx

        name = onnx.load(prepared).graph.input[0].name
        quantize_static(prepared, os.fspath(path), _onnx_reader(name, calibration),
                        quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return path, onnx_float_ops(path)


_LAYOUT_OPS = {"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity",
               "Shape", "Gather", "Cast", "Slice", "Constant", "QuantizeLinear",
               "DequantizeLinear"}


def onnx_float_ops(path):
    """Op types that ONNX Runtime (CPU) runs in float in a QDQ `.onnx` file.

    What matters is the graph ONNX Runtime executes: it fuses each
    DequantizeLinear -> op -> QuantizeLinear group into an int8 kernel
    (QLinearConv, QLinearConcat, NhwcMaxPool, ...) where it has one. The file
    is loaded with its graph optimisations, and the optimised graph's compute
    ops that are not int8 kernels are returned (e.g. `["LRN", "MaxPool"]`
    around the paper variant's LRN); layout ops and the quantise/dequantise
    nodes are not counted.
    """
    import onnx
    import onnxruntime

    with tempfile.TemporaryDirectory() as work:
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        options.optimized_model_filepath = os.path.join(work, "optimized.onnx")
        onnxruntime.InferenceSession(os.fspath(path), options,
                                     providers=["CPUExecutionProvider"])
        graph = onnx.load(options.optimized_model_filepath).graph
    return sorted({node.op_type for node in graph.node
                   if node.op_type not in _LAYOUT_OPS
                   and not node.op_type.startswith(("QLinear", "Nhwc", "QGemm", "DynamicQuantize"))
                   and node.domain != "com.microsoft.nchwc"})


def onnx_input_quantization(path):
    """The scale and zero point of the first QuantizeLinear on the input."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(os.fspath(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    consumers = {graph.input[0].name}
    for node in graph.node:  # follow layout ops from the input to its QuantizeLinear
        if node.input and node.input[0] in consumers:
            if node.op_type == "QuantizeLinear":
                scale = inits.get(node.input[1])
                zero = inits.get(node.input[2]) if len(node.input) > 2 else None
                if scale is None:
                    return None
                return {"scale": float(np.asarray(scale).ravel()[0]),
                        "zero_point": int(np.asarray(zero).ravel()[0]) if zero is not None else 0,
                        "dtype": np.asarray(zero).dtype.name if zero is not None else "uint8"}
            consumers.update(node.output)
    return None


def _check_calibration(calibration):
    calibration = np.asarray(calibration, np.float32)
    if calibration.ndim != 4 or calibration.shape[-1] != 3 or len(calibration) == 0:
        raise ValueError("Calibration images must be a non-empty float32 (n, S, S, 3) array. "
                         f"Received shape {calibration.shape}.")
    return calibration


# ---------------------------------------------------------------------------
# The sidecar contract.
# ---------------------------------------------------------------------------
def write_sidecar(path, contract, runtime, precision, classes, output="probabilities",
                  input_quantization=None, float_ops=(), calibration=None):
    """Writes `<path>.json`, the contract of a converted file (a
    `contract.ArtifactInfo`, read back by `contract.read_sidecar`).

    Args:
        path: the `.tflite` / `.onnx` file.
        contract: a `contract.Contract` (normalization, image_size,
            crop_fraction, class_names).
        runtime: "tflite" or "onnxruntime".
        precision: "float32", "dynamic_range" or "int8".
        classes: number of outputs.
        output: "probabilities" or "logits".
        input_quantization: for int8 files, `{"scale", "zero_point", "dtype"}`
            of the quantised input.
        float_ops: ops left in float in an int8 file.
        calibration: `{"data", "split", "images"}` of an int8 file.

    Returns:
        The sidecar's path.
    """
    names = contract_lib.resolve_class_names(contract.class_names, classes)
    info = contract_lib.ArtifactInfo(
        dataclasses.replace(contract, class_names=names, origin=sidecar_path(path)),
        kind="converted", classes=int(classes), file=os.path.basename(os.fspath(path)),
        runtime=runtime, precision=precision, output=output,
        input={"name": convert.INPUT_NAME, "dtype": "float32", "layout": "NHWC",
               "quantization": input_quantization},
        float_ops=list(float_ops), calibration=calibration)
    return contract_lib.write_info(path, info)
