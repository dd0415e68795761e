"""keras_googlenet: GoogLeNet (Inception v1) for Keras 3, as in the paper.

The public API is resolved lazily: `import keras_googlenet` imports neither
Keras nor TensorFlow, and `keras_googlenet.GoogLeNet` imports only the model
subpackage (Keras, no TensorFlow), so the model works on every backend. Once
this package is imported, plain `keras.models.load_model` reads every
`.keras` file it writes (its classes are registered when Keras is imported).
"""
import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_API = {
    "GoogLeNet": "keras_googlenet.models.googlenet",
    "GoogLeNetClassifier": "keras_googlenet.models.classifier",
    "feature_model": "keras_googlenet.models.googlenet",
    "inference_model": "keras_googlenet.models.googlenet",
    "LocalResponseNormalization": "keras_googlenet.models.layers",
    "preprocess_input": "keras_googlenet.data.preprocessing",
    "decode_predictions": "keras_googlenet.models.imagenet",
    "load_model": "keras_googlenet.inference.loader",
    "evaluate": "keras_googlenet.inference.evaluation",
    "export_saved_model": "keras_googlenet.serving.export",
}

__all__ = sorted(_API)

# keras.models.load_model reads our files once this package is imported
# (without importing Keras here: see models/registration.py).
from keras_googlenet.models import registration as _registration  # noqa: E402

_registration.register_when_keras_is_imported()


def __getattr__(name):
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # resolve once
        return value
    raise AttributeError(f"module 'keras_googlenet' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
