"""The model: Table 1 as data, the layers, GoogLeNet and its presets.

Importing this package imports Keras but not TensorFlow: the model builds
and runs on any Keras 3 backend.
"""
from keras_googlenet.models.googlenet import (OUTPUT_NAME, GoogLeNet, feature_model,
                                              has_aux_classifiers, inference_model)
from keras_googlenet.models.layers import LocalResponseNormalization
from keras_googlenet.models.presets import BVLC_CONFIG, TORCHVISION_CONFIG

__all__ = [
    "BVLC_CONFIG", "OUTPUT_NAME", "TORCHVISION_CONFIG", "GoogLeNet",
    "LocalResponseNormalization", "feature_model", "has_aux_classifiers", "inference_model",
]
