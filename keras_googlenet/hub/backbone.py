"""GoogLeNetBackbone: the network up to inception_5b, as a KerasHub backbone."""
import keras
from keras_hub.models import Backbone

from keras_googlenet.models.googlenet import GoogLeNet


@keras.saving.register_keras_serializable(package="keras_googlenet")
class GoogLeNetBackbone(Backbone):
    """GoogLeNet (Inception v1) without its top: `GoogLeNet(include_top=False)`.

    The layers and their names are `GoogLeNet`'s (the paper's), so weights
    move between the two by layer name. Input: an `image` of `image_shape`,
    normalised as the preset's `GoogLeNetImageConverter` does; output: the
    inception_5b feature map (1/32 of the input, 1024 channels).

    Args:
        image_shape: `(height, width, 3)` (channels_last) or `(3, height,
            width)`; None: any size, `(None, None, 3)`.
        batch_norm, kernel_5x5, pool4_size: the architecture, as
            `keras_googlenet.GoogLeNet`'s arguments.
        dtype: the dtype policy the layers are built under.
    """

    def __init__(self, image_shape=None, batch_norm=False, kernel_5x5=5, pool4_size=3,
                 dtype=None, **kwargs):
        # GoogLeNet takes no dtype: its layers follow the global policy,
        # set for the build only.
        policy = keras.config.dtype_policy()
        if dtype is not None:
            keras.config.set_dtype_policy(dtype)
        try:
            network = GoogLeNet(include_top=False, input_shape=None if image_shape is None
                                else tuple(image_shape), batch_norm=batch_norm,
                                kernel_5x5=kernel_5x5, pool4_size=pool4_size)
        finally:
            keras.config.set_dtype_policy(policy)
        kwargs.setdefault("name", "googlenet_backbone")
        super().__init__(inputs=network.input, outputs=network.output, dtype=dtype, **kwargs)
        self.image_shape = tuple(network.input.shape[1:])
        self.batch_norm = bool(batch_norm)
        self.kernel_5x5 = kernel_5x5
        self.pool4_size = pool4_size
        # ImageClassifier's pooler reads it.
        self.data_format = keras.config.image_data_format()

    def get_config(self):
        config = super().get_config()
        config.update(image_shape=list(self.image_shape), batch_norm=self.batch_norm,
                      kernel_5x5=self.kernel_5x5, pool4_size=self.pool4_size)
        return config
