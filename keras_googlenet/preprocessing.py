"""The one place that owns image preprocessing.

Training augmentation, evaluation cropping and the exported serving signature
all call into this module, so the three cannot drift apart (the TF Model
Garden habit). Pixel values enter as RGB in [0, 255].
"""
from keras.applications import imagenet_utils

# Caffe's bvlc_googlenet (the paper architecture whose weights issue 8 imports)
# was trained on BGR images minus the ImageNet channel means, unscaled.
DEFAULT_MODE = "caffe"
MODES = ("caffe", "torch", "tf")


def preprocess_input(x, data_format=None, mode=DEFAULT_MODE):
    """Normalises RGB images in [0, 255] the way GoogLeNet's weights expect.

    Args:
        x: float tensor or numpy array of RGB images in [0, 255], NHWC
            (or NCHW with `data_format="channels_first"`).
        data_format: `None` (the Keras default) or `"channels_last"` /
            `"channels_first"`.
        mode: `"caffe"` (default: RGB->BGR, minus the ImageNet means
            103.939/116.779/123.68, no scaling; the convention of the Caffe
            bvlc_googlenet weights and of models trained with this package),
            `"torch"` (scaled to [0, 1], minus mean, divided by std, the
            torchvision convention) or `"tf"` (scaled to [-1, 1]).

    Returns:
        The normalised images, float32.
    """
    if mode not in MODES:
        raise ValueError(
            f"`mode` must be one of {MODES}. Received: mode={mode!r}"
        )
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode=mode)
