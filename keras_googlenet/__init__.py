"""keras_googlenet: GoogLeNet (Inception v1) for Keras 3, as in the paper."""
from keras_googlenet.evaluation import evaluate
from keras_googlenet.export import export_saved_model
from keras_googlenet.imagenet import decode_predictions
from keras_googlenet.layers import LocalResponseNormalization
from keras_googlenet.model import GoogLeNet, feature_model, inference_model
from keras_googlenet.preprocessing import preprocess_input

__version__ = "0.1.0"

__all__ = [
    "GoogLeNet",
    "LocalResponseNormalization",
    "decode_predictions",
    "evaluate",
    "export_saved_model",
    "feature_model",
    "inference_model",
    "preprocess_input",
]
