"""Presets as data: the published GoogLeNet weight sets, one record each.

A `WeightSet` is what torchvision's `Weights` entries and timm's pretrained
configs hold: where the files are published and how to check them, the
model they fit (`GoogLeNet(**weight_set.config)`) and the preprocessing
contract they expect. Nothing here imports TensorFlow or builds a model;
`keras_googlenet.weights` reads these to find, check and convert the files.
"""
import dataclasses
import os

from keras_googlenet.models.contract import Contract

# Where `weights="imagenet"` looks first, before $KERAS_HOME/models.
WEIGHTS_DIR_ENV = "KERAS_GOOGLENET_WEIGHTS_DIR"


@dataclasses.dataclass(frozen=True)
class WeightSet:
    """One published set of ImageNet weights.

    Attributes:
        name: the set's name, written as the origin of converted weights.
        label: how messages name it.
        filenames: the published file names, the preferred first.
        url: where to download them (nothing is downloaded automatically).
        config: the `GoogLeNet` arguments of the architecture they fit.
        contract: the preprocessing they expect (the image size is the
            model's own).
        sha256: `{file name: SHA-256}` of files whose digest is pinned.
        sha256_prefix: torch.hub's convention, the first hex digits of the
            SHA-256 that end the file name (what `check_hash=True` verifies).
        sha256_env: an environment variable that pins the digest of the
            file downloaded.
    """

    name: str
    label: str
    filenames: tuple
    url: str
    config: dict
    contract: Contract
    sha256: dict = dataclasses.field(default_factory=dict)
    sha256_prefix: str = None
    sha256_env: str = None

    def expected_sha256(self, filename):
        """The SHA-256 (or its prefix) a file of this set must have, or None
        when none is known."""
        if self.sha256_env and os.environ.get(self.sha256_env):
            return os.environ[self.sha256_env]
        return self.sha256.get(filename) or self.sha256_prefix


# The default GoogLeNet() is the paper / Caffe bvlc_googlenet, as the ONNX
# model zoo republishes it: validated/vision/classification/
# inception_and_googlenet/googlenet/model/googlenet-<opset>.onnx (via
# Caffe2; the tarballs googlenet-<opset>.tar.gz hold model.onnx). It expects
# Caffe's BGR minus the means.
BVLC = WeightSet(
    name="bvlc",
    label="Caffe bvlc_googlenet (ONNX)",
    filenames=("googlenet-12.onnx", "googlenet-9.onnx", "googlenet-8.onnx", "googlenet-7.onnx",
               "googlenet-6.onnx", "googlenet-3.onnx", "bvlc_googlenet.onnx"),
    url=("https://github.com/onnx/models/tree/main/validated/vision/classification/"
         "inception_and_googlenet/googlenet"),
    config={"batch_norm": False, "kernel_5x5": 5, "pool4_size": 3},
    contract=Contract(normalization="caffe"),
    # No digest: the files could not be downloaded while writing this module
    # and a hash is never guessed. Pin the digest of the file you downloaded
    # with the environment variable (or add it here); without one,
    # "imagenet" warns and prints the digest.
    sha256={},
    sha256_env="KERAS_GOOGLENET_ONNX_SHA256",
)

# GoogLeNet(**TORCHVISION.config) is torchvision's architecture exactly. Its
# transform_input is exactly RGB scaled to [-1, 1], i.e. the "tf" mode.
TORCHVISION = WeightSet(
    name="torchvision",
    label="torchvision googlenet",
    filenames=("googlenet-1378be20.pth",),
    url="https://download.pytorch.org/models/googlenet-1378be20.pth",
    config={"batch_norm": True, "kernel_5x5": 3, "pool4_size": 2},
    contract=Contract(normalization="tf"),
    sha256_prefix="1378be20",
)

WEIGHT_SETS = {weight_set.name: weight_set for weight_set in (BVLC, TORCHVISION)}

# The architectures, as `GoogLeNet(**TORCHVISION_CONFIG)` is documented.
BVLC_CONFIG = BVLC.config
TORCHVISION_CONFIG = TORCHVISION.config
