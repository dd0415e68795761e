"""Grad-CAM (Selvaraju et al., 2017) for GoogLeNet and other Keras classifiers.

The map of class `c` at a block's output `A` (`(h, w, K)`) is

    ReLU(sum_k alpha_k A_k),   alpha_k = mean over (i, j) of d y_c / d A_k[i, j],

upsampled (bilinear) to the input size and divided by its maximum, so that
it lies in [0, 1]. `y_c` is the class score before the softmax: the output
of the `classifier` Dense layer of a GoogLeNet, else the model's output if it
is linear, else the log of the probability.

The gradients come from a `tf.GradientTape` (the TensorFlow backend).
"""
import dataclasses

import numpy as np

DEFAULT_LAYER = "inception_5b"
_LOGITS_LAYER = "classifier"  # GoogLeNet's main Dense layer (pre-softmax)


@dataclasses.dataclass
class GradCam:
    """Grad-CAM maps and what they were computed for.

    Attributes:
        maps: float32 `(N, H, W)` in [0, 1] at the input resolution (all zero
            where the class has no positive evidence at the layer).
        class_index: int `(N,)`, the class of each map.
        probabilities: float32 `(N, classes)`, the model's softmax output.
        layer: the layer the maps were taken at.
    """

    maps: np.ndarray
    class_index: np.ndarray
    probabilities: np.ndarray
    layer: str


def _single_output(model):
    """The model without auxiliary heads (the main output of a training model)."""
    from keras_googlenet.models import averages

    net, _ = averages.serving_model(model)  # aux heads dropped, EMA weights if any
    return net


@dataclasses.dataclass
class Scorer:
    """`model(x) -> (layer output, class scores, model output)`, sharing the
    classifier's weights; `scores_are_logits` (else probabilities) and
    `output_is_logits` say what the last two are."""

    model: object
    layer: str
    scores_are_logits: bool
    output_is_logits: bool


def scorer(model, layer=DEFAULT_LAYER):
    """The `Scorer` of a classifier at `layer` (build once, reuse over calls)."""
    import keras

    from keras_googlenet.models import averages

    if isinstance(model, Scorer):
        if model.layer != layer:
            raise ValueError(f"The Scorer explains {model.layer!r}, not {layer!r}.")
        return model
    net = _single_output(model)
    names = [l.name for l in net.layers]
    if layer not in names:
        blocks = [n for n in names if n.startswith("inception_") and "_" not in n[len("inception_"):]]
        raise ValueError(f"The model has no layer {layer!r}. Inception blocks: {blocks}")
    features = net.get_layer(layer).output
    if len(features.shape) != 4:
        raise ValueError(f"Grad-CAM needs a 4D (N, H, W, C) feature map; layer {layer!r} "
                         f"outputs {tuple(features.shape)}.")
    output_is_logits = averages.output_activation(net) == "linear"
    if _LOGITS_LAYER in names:
        scores, scores_are_logits = net.get_layer(_LOGITS_LAYER).output, True
    else:
        scores, scores_are_logits = net.output, output_is_logits
    return Scorer(keras.Model(net.input, [features, scores, net.output]), layer,
                  scores_are_logits, output_is_logits)


def _class_indices(class_index, probabilities):
    count, classes = probabilities.shape
    if class_index is None:
        return np.argmax(probabilities, axis=-1).astype(np.int64)
    index = np.asarray(class_index, dtype=np.int64)
    if index.ndim == 0:
        index = np.full(count, int(index), dtype=np.int64)
    if index.shape != (count,):
        raise ValueError(f"`class_index` must be None, an int or one int per image ({count}). "
                         f"Received shape {index.shape}.")
    if index.min() < 0 or index.max() >= classes:
        raise ValueError(f"`class_index` must be in [0, {classes}). Received {index.tolist()}.")
    return index


def compute(model, images, class_index=None, layer=DEFAULT_LAYER, normalization=None,
            batch_size=16):
    """Grad-CAM maps with the classes and probabilities they belong to.

    Args:
        model: a Keras classifier (a GoogLeNet, with or without auxiliary
            heads; the main output is explained), or its `scorer(model,
            layer)` (to reuse it over calls).
        images: `(N, H, W, 3)` (or one `(H, W, 3)`) at the model's input size.
        class_index: None (each image's top class), an int (for all images)
            or one int per image.
        layer: the layer whose output is explained (an Inception block such
            as "inception_5b", "inception_4e", or any 4D layer).
        normalization: `preprocess_input` mode applied to `images` (then in
            [0, 255]), or None to feed them as they are.
        batch_size: images per gradient computation.

    Returns:
        A `GradCam`.
    """
    from keras_googlenet import backends

    # The gradients come from tf.GradientTape.
    backends.require_tensorflow("Grad-CAM", "run it with KERAS_BACKEND=tensorflow (it reads "
                                "a .keras file trained on any backend)")
    import tensorflow as tf

    from keras_googlenet.data import preprocessing

    score = scorer(model, layer)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4:
        raise ValueError(f"`images` must be (N, H, W, 3). Received shape {images.shape}.")
    height, width = images.shape[1:3]
    maps, indices, probabilities = [], [], []
    requested = class_index
    for start in range(0, len(images), batch_size):
        x = preprocessing.normalize(tf.constant(images[start:start + batch_size]), normalization)
        with tf.GradientTape() as tape:
            features, scores, outputs = score.model(x, training=False)
            scores = tf.cast(scores, tf.float32)
            outputs = tf.cast(outputs, tf.float32)
            probs = tf.nn.softmax(outputs) if score.output_is_logits else outputs
            if _is_sequence(requested):
                part = np.asarray(requested)[start:start + batch_size]
            else:
                part = requested
            index = _class_indices(part, probs.numpy())
            if not score.scores_are_logits:
                # A probability output: its log is the class score (its
                # gradient is the logit's, minus the probability-weighted mean).
                scores = tf.math.log(tf.maximum(scores, 1e-12))
            # Images are independent at inference: one sum gives every
            # image's gradient in one backward pass.
            total = tf.reduce_sum(tf.gather(scores, index, batch_dims=1))
        grads = tf.cast(tape.gradient(total, features), tf.float32)
        features = tf.cast(features, tf.float32)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # alpha_k
        cam = tf.nn.relu(tf.reduce_sum(weights * features, axis=-1))
        cam = tf.image.resize(cam[..., None], [height, width], method="bilinear")[..., 0]
        peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
        cam = tf.math.divide_no_nan(cam, peak)
        maps.append(cam.numpy())
        indices.append(index)
        probabilities.append(probs.numpy())
    return GradCam(np.concatenate(maps).astype(np.float32), np.concatenate(indices),
                   np.concatenate(probabilities).astype(np.float32), layer)


def _is_sequence(value):
    return value is not None and np.ndim(value) == 1


def grad_cam(model, images, class_index=None, layer=DEFAULT_LAYER, normalization=None):
    """Grad-CAM maps of a Keras classifier.

    Args:
        model: a `keras.Model` classifier (a GoogLeNet training model with
            auxiliary heads is accepted: the main output is explained).
        images: `(N, H, W, 3)` float images as the model takes them, or in
            [0, 255] with `normalization` set (e.g. `contract.normalization`
            of `keras_googlenet.inference.loader.load_model`).
        class_index: None for each image's top class, an int for all images,
            or one int per image.
        layer: the block explained (default "inception_5b", 1/32 of the input;
            "inception_4e" gives maps twice as fine).
        normalization: `preprocess_input` mode applied to `images` first, or
            None to feed them as they are.

    Returns:
        float32 numpy array `(N, H, W)` in [0, 1] at the input resolution.
    """
    return compute(model, images, class_index, layer, normalization).maps
