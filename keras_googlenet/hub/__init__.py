"""GoogLeNet as KerasHub classes and presets (needs `pip install keras_googlenet[hub]`)."""
from keras_googlenet.hub.backbone import GoogLeNetBackbone
from keras_googlenet.hub.image_classifier import GoogLeNetImageClassifier
from keras_googlenet.hub.image_converter import GoogLeNetImageConverter
from keras_googlenet.hub.preprocessor import GoogLeNetImageClassifierPreprocessor
from keras_googlenet.hub.convert import to_preset

__all__ = ["GoogLeNetBackbone", "GoogLeNetImageClassifier", "GoogLeNetImageClassifierPreprocessor",
           "GoogLeNetImageConverter", "to_preset"]
