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

Command line: `googlenet weights convert SOURCE OUT.weights.h5` (or
`OUT.keras` for the whole model, e.g. for `googlenet finetune --model`).
"""
from keras_googlenet.models.presets import (BVLC, BVLC_CONFIG, TORCHVISION, TORCHVISION_CONFIG,
                                            WEIGHT_SETS, WEIGHTS_DIR_ENV, WeightSet)
from keras_googlenet.weights.bvlc_onnx import convert_onnx_bvlc, load_onnx_bvlc
from keras_googlenet.weights.common import (ConvertedWeights, WeightsMismatchError,
                                            WeightsNotFoundError, conv_layer_names,
                                            dense_layer_names, describe_config,
                                            load_converted, model_config, save_converted)
from keras_googlenet.weights.lookup import (check_hash, convert,
                                            find_imagenet_file, load_weights, sha256,
                                            weights_dirs)
from keras_googlenet.weights.pth_reader import NotAStateDictError, read_state_dict
from keras_googlenet.weights.torchvision import convert_torchvision, load_torchvision

__all__ = [
    "BVLC", "BVLC_CONFIG", "TORCHVISION", "TORCHVISION_CONFIG", "WEIGHT_SETS",
    "WEIGHTS_DIR_ENV", "WeightSet", "ConvertedWeights", "NotAStateDictError",
    "WeightsMismatchError", "WeightsNotFoundError", "check_hash", "conv_layer_names",
    "convert", "convert_file", "convert_onnx_bvlc", "convert_torchvision",
    "dense_layer_names", "describe_config", "find_imagenet_file", "load_converted",
    "load_onnx_bvlc", "load_torchvision", "load_weights", "model_config",
    "read_state_dict", "save_converted", "sha256", "weights_dirs",
]


def __getattr__(name):
    # Lazily: weights.keras_file builds GoogLeNet models, and the builder
    # imports weights.lookup (GoogLeNet(weights=...)).
    if name == "convert_file":
        from keras_googlenet.weights.keras_file import convert_file

        return convert_file
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
