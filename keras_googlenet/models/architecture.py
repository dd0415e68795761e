"""GoogLeNet's Table 1 (Szegedy et al., CVPR 2015), written once, as data.

Every other module reads the architecture from here; nothing else repeats a
channel count.
"""
import collections

# One row of Table 1 for an Inception module. Field names follow the paper's
# column headers (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
InceptionRow = collections.namedtuple(
    "InceptionRow",
    ["name", "ch1x1", "ch3x3_reduce", "ch3x3", "ch5x5_reduce", "ch5x5", "pool_proj"],
)

# The stem: (name, filters, kernel size, stride). conv2 is a 1x1 reduction
# followed by a 3x3 convolution (Table 1, "#3x3 reduce" 64, "#3x3" 192).
CONV1 = ("conv1_7x7_s2", 64, 7, 2)
CONV2_REDUCE = ("conv2_3x3_reduce", 64, 1, 1)
CONV2 = ("conv2_3x3", 192, 3, 1)

# The Inception rows of Table 1, in order. A "pool" entry is a 3x3/2 max pool
# between stages (pool3 after 3b, pool4 after 4e).
INCEPTION_ROWS = (
    InceptionRow("inception_3a", 64, 96, 128, 16, 32, 32),
    InceptionRow("inception_3b", 128, 128, 192, 32, 96, 64),
    "pool3_3x3_s2",
    InceptionRow("inception_4a", 192, 96, 208, 16, 48, 64),
    InceptionRow("inception_4b", 160, 112, 224, 24, 64, 64),
    InceptionRow("inception_4c", 128, 128, 256, 24, 64, 64),
    InceptionRow("inception_4d", 112, 144, 288, 32, 64, 64),
    InceptionRow("inception_4e", 256, 160, 320, 32, 128, 128),
    "pool4_3x3_s2",
    InceptionRow("inception_5a", 256, 160, 320, 32, 128, 128),
    InceptionRow("inception_5b", 384, 192, 384, 48, 128, 128),
)

# Auxiliary classifiers (paper section 5): attached after these blocks.
AUX_HEADS = {"aux1": "inception_4a", "aux2": "inception_4d"}
OUTPUT_NAME = "predictions"  # the main head's output, beside AUX_HEADS' names
AUX_POOL_SIZE, AUX_POOL_STRIDE = 5, 3
AUX_CONV_FILTERS = 128
AUX_FC_UNITS = 1024
AUX_LOSS_WEIGHT = 0.3

# Learning-rate schedules (`models.schedules`): the paper's (section 6,
# x0.96 every 8 epochs) and two common ones. Here, where nothing imports
# Keras, because the flags offer them as choices.
SCHEDULES = ("paper", "cosine", "constant")

# Caffe bvlc_googlenet LRN: local_size 5, alpha 1e-4, beta 0.75, k 1, with
# alpha divided by local_size; in TensorFlow's terms (radius, alpha per term):
LRN_DEPTH_RADIUS = 2
LRN_BIAS = 1.0
LRN_ALPHA = 1e-4 / 5
LRN_BETA = 0.75

# Total stride of the network at each stage output: 4a sits at 1/16, so the
# 5x5 auxiliary pool needs ceil(size / 16) >= 5.
MIN_INPUT_SIZE = 32
MIN_INPUT_SIZE_WITH_AUX = 65


def block_output_channels(row):
    """Output channels of an Inception module: #1x1 + #3x3 + #5x5 + pool proj."""
    return row.ch1x1 + row.ch3x3 + row.ch5x5 + row.pool_proj


def inception_rows():
    """The Inception rows of Table 1 (without the pooling markers)."""
    return [r for r in INCEPTION_ROWS if isinstance(r, InceptionRow)]


STAGE_NAMES = (
    ["conv1_7x7_s2", "pool1_3x3_s2", "conv2_3x3", "pool2_3x3_s2"]
    + [r if isinstance(r, str) else r.name for r in INCEPTION_ROWS]
    + ["pool5_7x7_s1"]
)
