"""GoogLeNetImageClassifierPreprocessor: the classifier's image converter."""
import keras
from keras_hub.models import ImageClassifierPreprocessor

from keras_googlenet.hub.backbone import GoogLeNetBackbone
from keras_googlenet.hub.image_converter import GoogLeNetImageConverter


@keras.saving.register_keras_serializable(package="keras_googlenet")
class GoogLeNetImageClassifierPreprocessor(ImageClassifierPreprocessor):
    """Raw RGB images in [0, 255] to the `GoogLeNetImageClassifier`'s inputs."""

    backbone_cls = GoogLeNetBackbone
    image_converter_cls = GoogLeNetImageConverter

    def __init__(self, image_converter=None, **kwargs):
        kwargs.setdefault("name", "googlenet_preprocessor")
        super().__init__(image_converter=image_converter, **kwargs)
