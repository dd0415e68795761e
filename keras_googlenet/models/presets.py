"""Presets as data: the published GoogLeNet weight sets and the model each fits.

Nothing here imports TensorFlow or builds a model; `keras_googlenet.weights`
reads these to find, check and convert the files.
"""
# GoogLeNet(**TORCHVISION_CONFIG) is torchvision's architecture exactly.
TORCHVISION_CONFIG = {"batch_norm": True, "kernel_5x5": 3, "pool4_size": 2}
# The default GoogLeNet() is the paper / Caffe bvlc_googlenet.
BVLC_CONFIG = {"batch_norm": False, "kernel_5x5": 5, "pool4_size": 3}

TORCHVISION_FILENAME = "googlenet-1378be20.pth"
TORCHVISION_URL = "https://download.pytorch.org/models/" + TORCHVISION_FILENAME
# torch.hub convention: the part of the file name after the last "-" is the
# first hex digits of the file's SHA-256 (what `check_hash=True` verifies).
TORCHVISION_SHA256_PREFIX = "1378be20"

# ONNX model zoo: validated/vision/classification/inception_and_googlenet/
# googlenet/model/googlenet-<opset>.onnx (the bvlc_googlenet Caffe model via
# Caffe2). The tarballs (googlenet-<opset>.tar.gz) hold model.onnx.
ONNX_ZOO_URL = (
    "https://github.com/onnx/models/tree/main/validated/vision/classification/"
    "inception_and_googlenet/googlenet"
)
ONNX_FILENAMES = (
    "googlenet-12.onnx", "googlenet-9.onnx", "googlenet-8.onnx", "googlenet-7.onnx",
    "googlenet-6.onnx", "googlenet-3.onnx", "bvlc_googlenet.onnx",
)
# SHA-256 of the ONNX zoo files. Deliberately empty: the files could not be
# downloaded while writing this module and a hash is never guessed. Pin the
# digest of the file you downloaded with the environment variable below (or
# add it here); without one, "imagenet" warns and prints the digest.
ONNX_SHA256 = {}
ONNX_SHA256_ENV = "KERAS_GOOGLENET_ONNX_SHA256"
WEIGHTS_DIR_ENV = "KERAS_GOOGLENET_WEIGHTS_DIR"

# The `preprocess_input` mode each published set expects (written into a
# converted `.keras` file's contract): Caffe's BGR minus the means, and
# torchvision's transform_input, which is exactly RGB scaled to [-1, 1].
NORMALIZATION = {"bvlc": "caffe", "torchvision": "tf"}
