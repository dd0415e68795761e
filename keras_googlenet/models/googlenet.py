"""GoogLeNet (Inception v1) as a Keras functional model.

Reference:
    Szegedy et al., "Going deeper with convolutions", CVPR 2015
    (https://arxiv.org/abs/1409.4842).

Layer names are the paper's and Caffe bvlc_googlenet's, with "/" written as
"_" because Keras 3 forbids "/" in layer names: Caffe's
`inception_3a/5x5_reduce` is the layer `inception_3a_5x5_reduce` here.
"""
import functools
import os

import keras
from keras import layers

from keras_googlenet.models import architecture
from keras_googlenet.models.layers import LocalResponseNormalization

OUTPUT_NAME = architecture.OUTPUT_NAME
DEFAULT_FEATURE_STAGES = ("inception_3b", "inception_4e", "inception_5b")
_BN_EPSILON = 1e-3  # TF-slim's and torchvision's Inception-v1 value.


def channel_axis():
    """The channel axis of Keras' image data format: -1 (channels_last) or 1."""
    return 1 if keras.config.image_data_format() == "channels_first" else -1


@functools.lru_cache(maxsize=1)
def _tensorflow_runs_nchw_convolutions():
    """Whether TensorFlow has an NCHW convolution kernel here (its CPU
    kernels have none: only a GPU runs channels_first)."""
    import tensorflow as tf

    try:
        tf.nn.conv2d(tf.zeros((1, 1, 4, 4)), tf.zeros((1, 1, 1, 1)), 1, "VALID",
                     data_format="NCHW")
        return True
    except (tf.errors.UnimplementedError, tf.errors.InvalidArgumentError):
        return False


def _check_layout():
    """A channels_first GoogLeNet on TensorFlow without NCHW kernels would
    build and then fail at its first convolution with a long trace."""
    if (channel_axis() == 1 and keras.backend.backend() == "tensorflow"
            and not _tensorflow_runs_nchw_convolutions()):
        raise ValueError(
            "TensorFlow has no channels_first (NCHW) convolution on this machine's devices "
            "(its CPU kernels are NHWC only): use channels_last on TensorFlow (weights load "
            "into either layout), or channels_first on a GPU or the JAX or PyTorch backend. "
            "Received: keras.config.image_data_format()='channels_first'")


def conv_block(x, filters, kernel_size, name, strides=1, padding="same", batch_norm=False):
    """Convolution + (batch norm) + ReLU: the paper puts a ReLU after every conv.

    The convolution keeps the paper's name (`inception_3a_5x5`); its batch
    norm and ReLU are `<name>_bn` and `<name>_relu`. The layout is Keras'
    `image_data_format` (a kernel is (h, w, in, out) in both, so weights load
    into either).
    """
    x = layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        # A bias right before batch norm is redundant (BN's beta replaces it).
        use_bias=not batch_norm,
        name=name,
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(axis=channel_axis(), epsilon=_BN_EPSILON,
                                      name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def inception_block(x, row, batch_norm=False, kernel_5x5=5):
    """One Inception module: one row of Table 1.

    Four branches concatenated on channels, in the paper's order: 1x1;
    1x1 reduce -> 3x3; 1x1 reduce -> 5x5; 3x3/1 max pool -> 1x1 projection.

    Args:
        x: input tensor (NHWC, or NCHW under channels_first).
        row: an `architecture.InceptionRow`.
        batch_norm: batch norm after every convolution.
        kernel_5x5: kernel size of the third branch; 5 is the paper. 3
            reproduces torchvision/TF-slim, whose "5x5" branch is a 3x3.

    Returns:
        The concatenated output, a layer named `row.name`.
    """
    name = row.name

    def conv(t, filters, size, suffix):
        return conv_block(t, filters, size, f"{name}_{suffix}", batch_norm=batch_norm)

    branch1 = conv(x, row.ch1x1, 1, "1x1")
    branch2 = conv(conv(x, row.ch3x3_reduce, 1, "3x3_reduce"), row.ch3x3, 3, "3x3")
    branch3 = conv(conv(x, row.ch5x5_reduce, 1, "5x5_reduce"), row.ch5x5, kernel_5x5, "5x5")
    pool = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    branch4 = conv(pool, row.pool_proj, 1, "pool_proj")
    return layers.Concatenate(axis=channel_axis(), name=name)(
        [branch1, branch2, branch3, branch4])


def _stage_pool(x, name):
    # Caffe's 3x3/2 max pools round up (ceil mode); TensorFlow's "same"
    # pooling gives the same windows on even sizes, e.g. 112 -> 56 -> 28.
    return layers.MaxPooling2D(3, strides=2, padding="same", name=name)(x)


def _classifier(x, classes, activation, name):
    """Linear layer + activation; the activation runs in float32 so mixed
    precision never computes a softmax in 16 bits."""
    x = layers.Dense(classes, name=f"{name}_classifier" if name != OUTPUT_NAME else "classifier")(x)
    return layers.Activation(activation or "linear", dtype="float32", name=name)(x)


def aux_head(x, name, classes, activation, dropout_rate, batch_norm=False):
    """An auxiliary classifier (paper section 5): avg pool 5x5/3 (valid),
    1x1 conv 128 + ReLU, fc 1024 + ReLU, dropout, linear, activation."""
    x = layers.AveragePooling2D(
        architecture.AUX_POOL_SIZE,
        strides=architecture.AUX_POOL_STRIDE,
        padding="valid",
        name=f"{name}_ave_pool",
    )(x)
    x = conv_block(x, architecture.AUX_CONV_FILTERS, 1, f"{name}_conv", batch_norm=batch_norm)
    # Under channels_first, Flatten orders the features as channels_last
    # would: fc's weights are the same in both layouts.
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(architecture.AUX_FC_UNITS, activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(dropout_rate, name=f"{name}_dropout")(x)
    return _classifier(x, classes, activation, name)


def _check_rate(value, arg):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"`{arg}` must be a number in [0, 1). Received: {arg}={value!r}")


def _check_arguments(include_top, weights, input_shape, pooling, classes,
                     aux_classifiers, dropout_rate, aux_dropout_rate, kernel_5x5, pool4_size):
    if weights is not None:
        if weights == "imagenet":
            if include_top and classes != 1000:
                raise ValueError(
                    "`weights='imagenet'` with `include_top=True` needs "
                    f"`classes=1000`. Received: classes={classes!r}"
                )
        elif not isinstance(weights, (str, os.PathLike)) or not os.path.isfile(weights):
            raise ValueError(
                "`weights` must be None, 'imagenet' or the path of an existing "
                "weights file (`.weights.h5`, bvlc_googlenet `.onnx`, torchvision "
                f"`.pth`). Received: weights={weights!r}"
            )
    for arg, value in (("include_top", include_top), ("aux_classifiers", aux_classifiers)):
        if not isinstance(value, bool):
            raise ValueError(f"`{arg}` must be True or False. Received: {arg}={value!r}")
    if pooling not in (None, "avg", "max"):
        raise ValueError(
            f"`pooling` must be one of None, 'avg', 'max'. Received: pooling={pooling!r}"
        )
    if include_top and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 1):
        raise ValueError(f"`classes` must be a positive integer. Received: classes={classes!r}")
    if aux_classifiers and not include_top:
        raise ValueError(
            "The auxiliary classifiers are classification heads and need "
            "`include_top=True`. Received: include_top=False, aux_classifiers=True"
        )
    _check_rate(dropout_rate, "dropout_rate")
    _check_rate(aux_dropout_rate, "aux_dropout_rate")
    if kernel_5x5 not in (3, 5):
        raise ValueError(
            "`kernel_5x5` must be 5 (the paper) or 3 (torchvision/TF-slim). "
            f"Received: kernel_5x5={kernel_5x5!r}"
        )
    if pool4_size not in (2, 3):
        raise ValueError(
            "`pool4_size` must be 3 (the paper) or 2 (torchvision). "
            f"Received: pool4_size={pool4_size!r}"
        )
    if input_shape is not None:
        _check_input_shape(input_shape, aux_classifiers)


def _check_input_shape(input_shape, aux_classifiers):
    minimum = (architecture.MIN_INPUT_SIZE_WITH_AUX if aux_classifiers
               else architecture.MIN_INPUT_SIZE)
    shape = tuple(input_shape)
    first = channel_axis() == 1
    channels = shape[0] if first and len(shape) == 3 else shape[-1] if shape else None
    if len(shape) != 3 or not isinstance(channels, int) or channels < 1:
        layout = "(channels, height, width)" if first else "(height, width, channels)"
        raise ValueError(
            f"`input_shape` must be {layout} with a known number "
            f"of channels. Received: input_shape={input_shape!r}"
        )
    for size in (shape[1:] if first else shape[:2]):
        if size is None:
            if aux_classifiers:
                raise ValueError(
                    "The auxiliary classifiers flatten a fixed-size map, so "
                    "height and width must be known. Received: "
                    f"input_shape={input_shape!r}"
                )
        elif not isinstance(size, int) or size < minimum:
            raise ValueError(
                f"Height and width must be at least {minimum}"
                + (" with auxiliary classifiers (the 4a map, at 1/16 of the "
                   "input, must fit their 5x5 pool)" if aux_classifiers else "")
                + f". Received: input_shape={input_shape!r}"
            )


def GoogLeNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name="googlenet",
    aux_classifiers=False,
    batch_norm=False,
    dropout_rate=0.4,
    aux_dropout_rate=0.7,
    kernel_5x5=5,
    pool4_size=3,
):
    """Instantiates GoogLeNet (Inception v1), the network of the paper's Table 1.

    Reference:
        Szegedy et al., "Going deeper with convolutions", CVPR 2015.

    The defaults are the paper exactly: a real 5x5 in the third branch of
    every Inception module, a ReLU after every convolution, local response
    normalisation after pool1 and after conv2's 3x3 (Caffe's parameters),
    global average pooling, 40% dropout and a linear classifier. With 1000
    classes and no auxiliary heads it has 6,998,552 parameters.

    Inputs are RGB images normalised by `keras_googlenet.preprocess_input`.

    Args:
        include_top: whether to include pool5, dropout and the classifier.
        weights: `None` (random initialisation), the path of a weights file
            saved by `model.save_weights` for the same configuration, a
            published file converted on the fly (bvlc_googlenet `.onnx` for
            the default model, torchvision `googlenet-1378be20.pth` for
            `TORCHVISION_CONFIG`), or `"imagenet"`: the same published files
            found locally and hash-checked (see `keras_googlenet.weights`).
        input_tensor: optional Keras tensor (output of `keras.Input`) to use
            as the model's input.
        input_shape: optional `(height, width, channels)`, or `(channels,
            height, width)` under `keras.config.image_data_format() ==
            "channels_first"` (the layout every layer follows). Defaults to
            `(224, 224, 3)` with the top and `(None, None, 3)` without.
            Height and width must be at least 32, or 65 with auxiliary heads.
        pooling: with `include_top=False`, `None` (the 4D output of
            inception_5b), `"avg"` or `"max"` (global pooling to 2D).
        classes: number of classes, with `include_top=True`.
        classifier_activation: activation of the classifier(s), `"softmax"`
            by default; `None` returns logits.
        name: the model's name.
        aux_classifiers: add the paper's two auxiliary classifiers (after 4a
            and 4d). The model then outputs a dict with keys
            `"predictions"`, `"aux1"` and `"aux2"`: the training model. Use
            `inference_model` to drop them.
        batch_norm: Inception-v1 with batch norm after every convolution
            (bias-free convolutions, no LRN), the variant TF-slim and
            torchvision publish weights for.
        dropout_rate: dropout before the main classifier (paper: 0.4).
        aux_dropout_rate: dropout in the auxiliary heads (paper: 0.7).
        kernel_5x5: kernel size of the third branch ("5x5"); 5 is the paper,
            3 reproduces torchvision's port.
        pool4_size: pool4 (after 4e) is a 3x3/2 max pool in the paper and
            Caffe; torchvision's port has a 2x2/2 one (`pool4_size=2`).
            `GoogLeNet(**keras_googlenet.models.TORCHVISION_CONFIG)` is
            torchvision's architecture.

    Returns:
        A `keras.Model`.
    """
    _check_arguments(include_top, weights, input_shape, pooling, classes,
                     aux_classifiers, dropout_rate, aux_dropout_rate, kernel_5x5, pool4_size)
    _check_layout()
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise ValueError(
                "`input_tensor` must be a Keras tensor (from `keras.Input`). "
                f"Received: input_tensor={input_tensor!r}"
            )
        _check_input_shape(tuple(input_tensor.shape[1:]), aux_classifiers)
        inputs = input_tensor
    else:
        if input_shape is None:
            side = 224 if include_top else None
            input_shape = (3, side, side) if channel_axis() == 1 else (side, side, 3)
        inputs = keras.Input(shape=input_shape, name="image")

    # conv1: Caffe and PyTorch pad 7x7/2 symmetrically by 3; TensorFlow's
    # "same" would pad 2 before and 3 after and shift every window by one
    # pixel, so published weights would not carry over exactly.
    conv1_name, filters, size, stride = architecture.CONV1
    x = layers.ZeroPadding2D(3, name="conv1_pad")(inputs)
    x = conv_block(x, filters, size, conv1_name, strides=stride, padding="valid",
                   batch_norm=batch_norm)
    x = _stage_pool(x, "pool1_3x3_s2")
    if not batch_norm:
        x = LocalResponseNormalization(axis=channel_axis(), name="pool1_norm1")(x)
    for conv_name, filters, size, stride in (architecture.CONV2_REDUCE, architecture.CONV2):
        x = conv_block(x, filters, size, conv_name, strides=stride, batch_norm=batch_norm)
    if not batch_norm:
        x = LocalResponseNormalization(axis=channel_axis(), name="conv2_norm2")(x)
    x = _stage_pool(x, "pool2_3x3_s2")

    aux_inputs = {}
    for row in architecture.INCEPTION_ROWS:
        if isinstance(row, str):
            if row == "pool4_3x3_s2" and pool4_size == 2:
                # torchvision: MaxPool2d(2, 2, ceil_mode=True), same windows
                # as "same" on even sizes (14 -> 7).
                x = layers.MaxPooling2D(2, strides=2, padding="same", name=row)(x)
            else:
                x = _stage_pool(x, row)
            continue
        x = inception_block(x, row, batch_norm=batch_norm, kernel_5x5=kernel_5x5)
        for head, block in architecture.AUX_HEADS.items():
            if block == row.name:
                aux_inputs[head] = x

    if include_top:
        x = layers.GlobalAveragePooling2D(name="pool5_7x7_s1")(x)
        x = layers.Dropout(dropout_rate, name="pool5_dropout")(x)
        outputs = _classifier(x, classes, classifier_activation, OUTPUT_NAME)
        if aux_classifiers:
            outputs = {OUTPUT_NAME: outputs}
            for head, tensor in aux_inputs.items():
                outputs[head] = aux_head(tensor, head, classes, classifier_activation,
                                         aux_dropout_rate, batch_norm=batch_norm)
    elif pooling == "avg":
        outputs = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        outputs = layers.GlobalMaxPooling2D(name="max_pool")(x)
    else:
        outputs = x

    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
    model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        # Imported here: the weight readers import the architecture.
        from keras_googlenet.weights.lookup import load_weights

        load_weights(model, weights)
    return model


def has_aux_classifiers(model):
    """Whether `model` is a training model with the auxiliary heads."""
    return isinstance(model.output, dict) and set(architecture.AUX_HEADS) <= set(model.output)


def inference_model(model):
    """The single-output model of a training model, sharing its weights.

    The paper discards the auxiliary classifiers at inference. The returned
    model reuses `model`'s layers, so a weight changed in one is changed in
    the other. A model without auxiliary heads is returned as it is.
    """
    if not isinstance(model.output, dict):
        return model
    if OUTPUT_NAME not in model.output:
        raise ValueError(
            f"The model has no {OUTPUT_NAME!r} output. Received outputs: "
            f"{sorted(model.output)}"
        )
    return keras.Model(model.input, model.output[OUTPUT_NAME], name=f"{model.name}_inference")


def feature_model(model, stages=DEFAULT_FEATURE_STAGES):
    """A multi-output backbone: the outputs of named stages of `model`.

    Args:
        model: a GoogLeNet (any configuration, e.g. `include_top=False`).
        stages: names of layers whose outputs to return, e.g.
            `("inception_3b", "inception_4e", "inception_5b")` (1/8, 1/16 and
            1/32 of the input), or any stage name in
            `keras_googlenet.models.architecture.STAGE_NAMES` (`conv2_3x3` maps to
            its ReLU output).

    Returns:
        A `keras.Model` sharing `model`'s weights whose output is a dict
        {stage name: feature map}.
    """
    if isinstance(stages, str):
        stages = (stages,)
    known = {layer.name for layer in model.layers}
    outputs = {}
    for stage in stages:
        layer_name = stage if stage not in ("conv1_7x7_s2", "conv2_3x3") else f"{stage}_relu"
        if layer_name not in known:
            # The batch-norm variant has no LRN, the ReLU follows the BN.
            raise ValueError(
                f"Unknown stage {stage!r}. Known stages: {list(architecture.STAGE_NAMES)}"
            )
        outputs[stage] = model.get_layer(layer_name).output
    return keras.Model(model.input, outputs, name=f"{model.name}_features")
