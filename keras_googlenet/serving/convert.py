"""TFLite and ONNX conversions of the inference model.

Both artifacts take what the Keras model takes: a `float32 [batch, S, S, 3]`
batch of *preprocessed* images (`preprocess_input(eval_preprocess(image))`,
see `preprocessed_batch`), and return the model's output (softmax
probabilities). Decoding and cropping stay outside: TFLite and ONNX have no
portable image decoder, and on-device apps decode with the platform's
codecs. The weights are those `averages.serving_model` picks (auxiliary heads
dropped, EMA averages when the optimizer keeps them).

- TFLite: Keras model -> temporary SavedModel (Keras `ExportArchive`) ->
  `tf.lite.TFLiteConverter.from_saved_model`, builtin ops only (the LRN of
  the paper model is the builtin LOCAL_RESPONSE_NORMALIZATION); if a
  converter ever rejects an op, `select_tf_ops="auto"` retries with
  SELECT_TF_OPS (the file then needs the Flex delegate). `quantize=
  "dynamic_range"` stores the weights in int8 (about 4x smaller).
  Converting a traced function directly (`from_concrete_functions`) is
  avoided: with Keras 3 variables it keeps them as uninitialised resource
  variables (READ_VARIABLE ops) and the file outputs NaN.
- ONNX: `tf2onnx.convert.from_function` (opset 17; the LRN becomes ONNX
  `LRN` between NHWC<->NCHW transposes), checked with onnxruntime.

Opening and running the files (`load_tflite`, `load_onnx`, `tflite_predict`,
`onnx_predict`) is `keras_googlenet.inference.converted`: this module only
writes them.

Requires the `convert` extra: tf2onnx, onnx and onnxruntime for ONNX;
TFLite ships with TensorFlow (`tf.lite`; `inference.converted` opens files
with `ai_edge_litert`'s interpreter when `tf.lite` is gone).
"""
import os
import tempfile
import warnings

import numpy as np
import keras  # imported before TensorFlow: see backends.py
import tensorflow as tf

from keras_googlenet import files
from keras_googlenet.data import preprocessing
from keras_googlenet.inference import converted
from keras_googlenet.models import averages
from keras_googlenet.serving import export

QUANTIZE_MODES = (None, "dynamic_range")
DEFAULT_OPSET = 17
INPUT_NAME = "images"


def resolve(model, image_size, use_ema, optimizer):
    """The float32 serving model (EMA weights, main output) and its input spec:
    what every converter here converts."""
    net, _ = averages.serving_model(model, use_ema=use_ema, optimizer=optimizer)
    net = float32_model(net)
    image_size = export.resolve_image_size(net, image_size)
    spec = tf.TensorSpec([None, image_size, image_size, 3], tf.float32, name=INPUT_NAME)
    return net, spec


def float32_model(net):
    """`net` with float32 compute: a model trained under a mixed policy
    (the main job's `mixed_bfloat16`) is rebuilt from its config with every
    layer's dtype float32 and its weights copied in; the int8 quantisers
    calibrate and quantise float32 graphs only (bfloat16 ops have no int8
    kernels and the converter rejects them), and a float TFLite file of bf16
    ops needs the Flex delegate. A float32 model is returned as is."""

    if all(getattr(layer.dtype_policy, "name", "float32") == "float32" for layer in net.layers):
        return net
    config = net.get_config()
    for layer in config["layers"]:
        if "dtype" in layer.get("config", {}):
            layer["config"]["dtype"] = "float32"
    copy = net.__class__.from_config(config)
    copy.set_weights([np.asarray(w, np.float32) for w in net.get_weights()])
    return copy


def preprocessed_batch(images, image_size, normalization=preprocessing.DEFAULT_MODE):
    """The converted models' input from encoded images (bytes or paths).

    Args:
        images: encoded image bytes and/or file paths.
        image_size: the crop size the model was converted for.
        normalization: `preprocess_input` mode of the model.

    Returns:
        A float32 numpy array `(len(images), image_size, image_size, 3)`.

    Raises:
        ValueError: naming the first image that cannot be decoded
            (`preprocessing.eval_crops`).
    """
    crops = preprocessing.eval_crops(images, image_size)
    return preprocessing.normalize(crops, normalization).numpy()


# ---------------------------------------------------------------------------
# TFLite.
# ---------------------------------------------------------------------------
def _tflite_converter(saved_model_dir, quantize, select_tf_ops):
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    if quantize == "dynamic_range":
        # Optimize.DEFAULT without a representative dataset: int8 weights,
        # float activations.
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter


def to_tflite(model, path, image_size=None, quantize=None, use_ema=True, optimizer=None,
              select_tf_ops="auto"):
    """Writes a `.tflite` file of the inference model.

    Args:
        model: a GoogLeNet classifier.
        path: output file (`.tflite`).
        image_size: input size (default: the model's, or 224).
        quantize: None (float32) or "dynamic_range" (int8 weights).
        use_ema, optimizer: see `averages.serving_model`.
        select_tf_ops: False (builtin ops only), True (allow TF ops via the
            Flex delegate) or "auto" (builtins, retrying with TF ops if the
            converter rejects an op; a warning names the error).

    Returns:
        `path`.
    """
    if quantize not in QUANTIZE_MODES:
        raise ValueError(f"`quantize` must be one of {QUANTIZE_MODES}. Received: quantize={quantize!r}")
    if select_tf_ops not in (True, False, "auto"):
        raise ValueError(
            f"`select_tf_ops` must be True, False or 'auto'. Received: select_tf_ops={select_tf_ops!r}"
        )

    net, spec = resolve(model, image_size, use_ema, optimizer)
    with tempfile.TemporaryDirectory() as saved_model_dir:
        write_serve_archive(net, spec, saved_model_dir)
        try:
            data = _tflite_converter(saved_model_dir, quantize, select_tf_ops is True).convert()
        except Exception as error:  # The converter raises ConverterError & co.
            if select_tf_ops != "auto":
                raise
            warnings.warn(
                f"TFLite builtin ops could not convert the model ({error}); retrying with "
                "SELECT_TF_OPS: the file needs the Flex delegate.",
                stacklevel=2,
            )
            data = _tflite_converter(saved_model_dir, quantize, True).convert()
    files.atomic_write(path, data)
    return path


def write_serve_archive(net, spec, directory):
    """A SavedModel of `net` with one "serve" endpoint, what the TFLite
    converters read."""
    archive = keras.export.ExportArchive()
    archive.track(net)
    archive.add_endpoint("serve", lambda images: net(images, training=False),
                         input_signature=[spec])
    archive.write_out(directory, verbose=False)
    return directory


def tflite_ops(path):
    """The sorted operator names used by a `.tflite` file."""
    interpreter = converted.load_tflite(path, allocate=False).handle
    return sorted({op["op_name"] for op in interpreter._get_ops_details()})


# ---------------------------------------------------------------------------
# ONNX.
# ---------------------------------------------------------------------------
def to_onnx(model, path, image_size=None, use_ema=True, optimizer=None, opset=DEFAULT_OPSET):
    """Writes a `.onnx` file of the inference model (needs tf2onnx).

    Args:
        model: a GoogLeNet classifier.
        path: output file (`.onnx`).
        image_size: input size (default: the model's, or 224).
        use_ema, optimizer: see `averages.serving_model`.
        opset: ONNX opset.

    Returns:
        `path`.
    """
    try:
        import tf2onnx
    except ImportError as error:
        raise ImportError(
            "ONNX export needs tf2onnx: pip install 'keras_googlenet[convert]'"
        ) from error
    net, spec = resolve(model, image_size, use_ema, optimizer)
    function = tf.function(lambda images: net(images, training=False), input_signature=[spec])
    tf2onnx.convert.from_function(function, input_signature=[spec], opset=opset,
                                  output_path=os.fspath(path))
    return path
