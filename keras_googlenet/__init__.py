"""keras_googlenet: GoogLeNet (Inception v1) for Keras 3, as in the paper."""
from keras_googlenet.inference.evaluation import evaluate
from keras_googlenet.serving.export import export_saved_model
from keras_googlenet.data.imagenet import decode_predictions
from keras_googlenet.models.layers import LocalResponseNormalization
from keras_googlenet.models.googlenet import GoogLeNet, feature_model, inference_model
from keras_googlenet.data.preprocessing import preprocess_input

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
