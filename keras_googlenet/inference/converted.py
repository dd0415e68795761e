"""Opening and running converted files: `.tflite` / `.onnx`.

Every converted file is opened here (`load_tflite`, `load_onnx`: the one
place that catches the runtimes' errors) and run here (`TFLiteRunner`,
`OnnxRunner`, `runner`). Its sidecar `<file>.json` (the preprocessing
contract, output kind, input quantisation, calibration) is read by
`models.contract.read_sidecar`; writing both is `keras_googlenet.serving`.
`predictors.converted_predictor` makes a `Predictor` of a file and its
sidecar.

Of keras_googlenet it imports only `models.contract`: it is a leaf, so
inference reads what serving writes without importing serving.
"""
import os
import warnings
from typing import NamedTuple

import numpy as np
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet.models import contract as contract_lib

CONVERTED_EXTENSIONS = (".tflite", ".onnx")


def is_converted(path):
    """Whether `path` names a converted file (`.tflite` or `.onnx`)."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).endswith(CONVERTED_EXTENSIONS)


# ---------------------------------------------------------------------------
# Opening converted files: every .tflite / .onnx file is opened here.
# ---------------------------------------------------------------------------
def tflite_interpreter_class():
    """tf.lite.Interpreter, or LiteRT's where TensorFlow has no tf.lite."""
    try:
        return tf.lite.Interpreter
    except AttributeError:  # TF releases without tf.lite
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter


class LoadedModel(NamedTuple):
    """A converted file opened by its runtime, and its one input's and one
    output's shapes (`None` for a dynamic dimension)."""

    handle: object  # a TFLite interpreter or an ONNX Runtime session
    input_shape: tuple
    output_shape: tuple


def _first_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _checked(path, handle, inputs, outputs):
    """`LoadedModel` of one `(batch, S, S, 3)` input and one `(batch,
    classes)` output, else a ValueError naming `path`."""
    if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0]) != 4 or len(outputs[0]) != 2:
        def shapes(found):
            return ", ".join(str(list(s)) for s in found) or "none"

        raise ValueError(
            f"{path}: expected one (batch, S, S, 3) input and one (batch, classes) output; "
            f"the model has inputs {shapes(inputs)} and outputs {shapes(outputs)}.")
    return LoadedModel(handle, inputs[0], outputs[0])


def require_file(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No model file at {path!r}.")


def load_tflite(path, num_threads=None, allocate=True):
    """A `.tflite` file's interpreter as a `LoadedModel`; its tensors are
    allocated unless `allocate=False` (allocating applies the default
    delegate, and the ops inspected in `serving.quantize.tflite_float_ops` become one
    DELEGATE op).

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming `path`, when the interpreter cannot read it
            (damaged, truncated, not a TFLite model) or it has not one image
            input and one `(batch, classes)` output.
    """
    path = os.fspath(path)
    require_file(path)
    with open(path, "rb") as f:
        header = f.read(8)
    if header[4:8] != b"TFL3":
        # The interpreter refuses it too, quoting the 4 bytes raw (a PNG's
        # hold newlines), so it is said here.
        raise ValueError(f"{path} is not a readable TFLite model: no 'TFL3' file identifier "
                         f"(found {header[4:8]!r}).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            interpreter = tflite_interpreter_class()(model_path=path, num_threads=num_threads)
        if allocate:
            interpreter.allocate_tensors()
    except Exception as error:  # ValueError, RuntimeError: the runtime's own
        raise ValueError(f"{path} is not a readable TFLite model: {_first_line(error)}") from None

    def shapes(details):
        return [tuple(None if d < 0 else int(d)
                      for d in t.get("shape_signature", t["shape"])) for t in details]

    return _checked(path, interpreter, shapes(interpreter.get_input_details()),
                    shapes(interpreter.get_output_details()))


def load_onnx(path, num_threads=None):
    """A `.onnx` file's ONNX Runtime (CPU) session as a `LoadedModel`.

    Raises:
        FileNotFoundError, ValueError: as `load_tflite`.
    """
    import onnxruntime

    path = os.fspath(path)
    require_file(path)
    options = onnxruntime.SessionOptions()
    if num_threads:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    try:
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime's errors (InvalidProtobuf, Fail, ...) share no base
        raise ValueError(f"{path} is not a readable ONNX model: {_first_line(error)}") from None

    def shapes(values):
        return [tuple(d if isinstance(d, int) and d >= 0 else None for d in v.shape)
                for v in values]

    return _checked(path, session, shapes(session.get_inputs()), shapes(session.get_outputs()))


# ---------------------------------------------------------------------------
# Running converted files.
# ---------------------------------------------------------------------------
class TFLiteRunner:
    """A `.tflite` file as a function of preprocessed float32 batches; the
    interpreter is resized only when the batch shape changes."""

    def __init__(self, path, num_threads=None):
        loaded = load_tflite(path, num_threads)
        self.interpreter = loaded.handle
        self.input_shape, self.output_shape = loaded.input_shape, loaded.output_shape
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self.shape = None

    def __call__(self, images):
        images = np.ascontiguousarray(images, np.float32)
        if self.shape != images.shape:
            self.interpreter.resize_tensor_input(self.input_index, images.shape)
            self.interpreter.allocate_tensors()
            self.shape = images.shape
        self.interpreter.set_tensor(self.input_index, images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output_index).copy()


class OnnxRunner:
    """A `.onnx` file in ONNX Runtime (CPU) as a function of preprocessed batches."""

    def __init__(self, path, num_threads=None):
        loaded = load_onnx(path, num_threads)
        self.session = loaded.handle
        self.input_shape, self.output_shape = loaded.input_shape, loaded.output_shape
        self.name = self.session.get_inputs()[0].name

    def __call__(self, images):
        return self.session.run(None, {self.name: np.ascontiguousarray(images, np.float32)})[0]


def runner(path, num_threads=None):
    """A `TFLiteRunner` or `OnnxRunner` for a converted file, by its extension."""
    path = os.fspath(path)
    if path.endswith(".tflite"):
        return TFLiteRunner(path, num_threads)
    if path.endswith(".onnx"):
        return OnnxRunner(path, num_threads)
    raise ValueError(f"Expected a .tflite or .onnx file. Received: {path!r}")


def check_against_model(path, contract, input_shape, output_shape):
    """Raises a ValueError naming `path` when its sidecar's contract disagrees
    with the model: the class names with its output width, the image size
    with its input's height and width (where the model fixes them)."""
    target = contract_lib.sidecar_path(path)
    classes = output_shape[-1]
    if classes is not None and len(contract.class_names) != classes:
        raise ValueError(f"{path}: its contract {target} lists {len(contract.class_names)} "
                         f"class names but the model outputs {classes} classes.")
    height, width = input_shape[1:3]
    if any(side not in (None, contract.image_size) for side in (height, width)):
        raise ValueError(f"{path}: its contract {target} says image_size {contract.image_size} "
                         f"but the model takes {height or '?'}x{width or '?'} inputs.")


def tflite_predict(path, images):
    """Runs a `.tflite` file from `serving.convert.to_tflite` on a preprocessed batch.

    Args:
        path: the `.tflite` file.
        images: float32 `(N, S, S, 3)` preprocessed images.

    Returns:
        The model's output, a float32 numpy array `(N, classes)`.
    """
    return TFLiteRunner(path)(images)


def onnx_predict(path, images):
    """`tflite_predict` for a `.onnx` file from `serving.convert.to_onnx`, with onnxruntime (CPU)."""
    return OnnxRunner(path)(images)
