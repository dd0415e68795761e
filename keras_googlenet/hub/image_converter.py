"""GoogLeNetImageConverter: resizing and `preprocess_input`'s normalisation."""
import keras
from keras import ops
from keras_hub.layers import ImageConverter
from keras_hub.src.utils.tensor_utils import in_tf_function

from keras_googlenet.hub.backbone import GoogLeNetBackbone
from keras_googlenet.models import contract as contract_lib
from keras_googlenet.models import hub_format


@keras.saving.register_keras_serializable(package="keras_googlenet")
class GoogLeNetImageConverter(ImageConverter):
    """KerasHub's `ImageConverter` normalising as `keras_googlenet.preprocess_input`.

    Args:
        normalization: a `preprocess_input` mode ("caffe", "torch", "tf") or
            None (RGB in [0, 255] as is). It sets `scale` and `offset`;
            "caffe" also reverses the channels (RGB -> BGR), which scale and
            offset cannot express.
        **kwargs: as `keras_hub.layers.ImageConverter` (`image_size`, ...).
    """

    backbone_cls = GoogLeNetBackbone

    def __init__(self, normalization=contract_lib.DEFAULT_NORMALIZATION, **kwargs):
        contract_lib.check_normalization(normalization)
        scale, offset = hub_format.scale_and_offset(normalization)
        # The mode decides: a config's saved scale and offset are its own.
        kwargs["scale"], kwargs["offset"] = scale, offset
        kwargs.setdefault("name", "googlenet_image_converter")
        super().__init__(**kwargs)
        self.normalization = normalization

    def _call_python(self, inputs):
        outputs = super()._call_python(inputs)
        if self.normalization != "caffe":
            return outputs
        if isinstance(outputs, dict):  # with bounding boxes
            return {**outputs, "images": self._to_bgr(outputs["images"])}
        if isinstance(outputs, (list, tuple)):  # images of different sizes
            return type(outputs)(self._to_bgr(x) for x in outputs)
        return self._to_bgr(outputs)

    def _to_bgr(self, x):
        axis = -3 if self.data_format == "channels_first" else -1
        if in_tf_function():  # in tf.data, on any backend
            import tensorflow as tf

            return tf.reverse(x, [axis])
        return ops.flip(x, axis=axis)

    def get_config(self):
        config = super().get_config()
        config["normalization"] = self.normalization
        return config
