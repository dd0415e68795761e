"""The model: Table 1 as data, the layers, GoogLeNet, its presets, the
preprocessing contract a saved model carries and the ImageNet class names.

Nothing here imports TensorFlow: the model builds and runs on any Keras 3
backend. Names are resolved lazily, so that `keras_googlenet.models.contract`
(used by `googlenet --help`) does not import Keras either.
"""
import importlib

_API = {
    "OUTPUT_NAME": "googlenet", "GoogLeNet": "googlenet", "feature_model": "googlenet",
    "has_aux_classifiers": "googlenet", "inference_model": "googlenet",
    "LocalResponseNormalization": "layers",
    "BVLC_CONFIG": "presets", "TORCHVISION_CONFIG": "presets", "WeightSet": "presets",
}
__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        value = getattr(importlib.import_module(f"{__name__}.{_API[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
