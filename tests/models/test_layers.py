import numpy as np
import keras
import pytest
import tensorflow as tf

from keras_googlenet import LocalResponseNormalization

# TensorFlow references (tf.nn, tf tensors); tests/models/test_layers_backends.py
# checks the layer on every backend.
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="TensorFlow-backend test")


def caffe_lrn(x, local_size=5, alpha=1e-4, beta=0.75, k=1.0):
    """Caffe's ACROSS_CHANNELS LRN, written from its documentation: alpha is
    divided by local_size, the window is centred on the channel."""
    half = local_size // 2
    channels = x.shape[-1]
    squared = np.square(x.astype(np.float64))
    out = np.empty_like(x, dtype=np.float64)
    for c in range(channels):
        lo, hi = max(0, c - half), min(channels, c + half + 1)
        scale = k + alpha / local_size * squared[..., lo:hi].sum(axis=-1)
        out[..., c] = x[..., c] / scale ** beta
    return out


def test_lrn_matches_tensorflow_and_caffe_formula():
    x = np.random.default_rng(0).normal(scale=30.0, size=(2, 5, 5, 16)).astype(np.float32)
    layer = LocalResponseNormalization()
    out = layer(x).numpy()
    expected_tf = tf.nn.local_response_normalization(
        x, depth_radius=2, bias=1.0, alpha=2e-5, beta=0.75).numpy()
    np.testing.assert_allclose(out, expected_tf, rtol=1e-6)
    np.testing.assert_allclose(out, caffe_lrn(x), rtol=1e-5)
    # The normalisation really acts at this input scale (not a no-op).
    assert np.abs(out - x).max() > 1e-2


def test_lrn_runs_in_float32_under_bfloat16_and_serialises():
    layer = LocalResponseNormalization(dtype="mixed_bfloat16", depth_radius=1, alpha=1e-3)
    x = tf.cast(tf.random.normal((1, 3, 3, 8), stddev=10.0), tf.bfloat16)
    out = layer(x)
    assert out.dtype == tf.bfloat16
    clone = LocalResponseNormalization.from_config(layer.get_config())
    assert (clone.depth_radius, clone.alpha, clone.beta, clone.bias) == (1, 1e-3, 0.75, 1.0)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, LocalResponseNormalization)
