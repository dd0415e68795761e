"""Custom layers of GoogLeNet."""
import keras
from keras import ops

from keras_googlenet.models import architecture


def lrn_keras_ops(x, depth_radius=architecture.LRN_DEPTH_RADIUS, bias=architecture.LRN_BIAS,
                  alpha=architecture.LRN_ALPHA, beta=architecture.LRN_BETA, axis=-1):
    """Local response normalisation over the channel `axis`, in `keras.ops`.

    `x / (bias + alpha * sum_{|j-c| <= depth_radius} x_j^2) ** beta`, the
    semantics of `tf.nn.local_response_normalization`, on any backend and
    either layout (no transpose for channels_first). The window sum adds
    2r+1 shifted slices of the zero-padded squares (exact, unlike
    differences of a cumulative sum). Computes in `x`'s dtype: cast to
    float32 first for mixed precision.
    """
    x = ops.convert_to_tensor(x)
    squares = ops.square(x)
    rank = len(squares.shape)
    axis = axis % rank
    channels = squares.shape[axis]
    pad = [[0, 0]] * rank
    pad[axis] = [depth_radius, depth_radius]
    padded = ops.pad(squares, pad)

    def window(start):
        index = [slice(None)] * rank
        index[axis] = slice(start, start + channels)
        return padded[tuple(index)]

    total = window(0)
    for shift in range(1, 2 * depth_radius + 1):
        total = total + window(shift)
    return x * ops.power(bias + alpha * total, -beta)


def lrn_tf_nn(x, depth_radius=architecture.LRN_DEPTH_RADIUS, bias=architecture.LRN_BIAS,
              alpha=architecture.LRN_ALPHA, beta=architecture.LRN_BETA, axis=-1):
    """The same with TensorFlow's fused kernel (TensorFlow backend only),
    which normalises over the last axis: another axis is moved there and
    back.

    TensorFlow is imported here, so that the model imports and runs on JAX
    and PyTorch without it.
    """
    import tensorflow as tf

    rank = len(x.shape)
    axis = axis % rank
    if axis != rank - 1:
        order = [i for i in range(rank) if i != axis] + [axis]
        inverse = [order.index(i) for i in range(rank)]
        x = tf.transpose(x, order)
    y = tf.nn.local_response_normalization(
        x, depth_radius=depth_radius, bias=bias, alpha=alpha, beta=beta)
    return y if axis == rank - 1 else tf.transpose(y, inverse)


@keras.saving.register_keras_serializable(package="keras_googlenet")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalisation across channels (AlexNet / Caffe LRN).

    Computes `x / (bias + alpha * sum_{|j-c| <= depth_radius} x_j^2) ** beta`,
    the semantics of `tf.nn.local_response_normalization`. The defaults are
    Caffe's bvlc_googlenet parameters (local_size 5, alpha 1e-4 divided by the
    window size, beta 0.75, k 1), as the paper's reference port uses them.

    The op always runs in float32: TensorFlow's LRN kernel has no bfloat16
    CPU implementation, and the squared sum loses too much precision in 16
    bits anyway. Under a mixed-precision policy the result is cast back to
    the layer's compute dtype.

    Args:
        axis: the channel axis: -1 (channels_last, the default) or 1
            (channels_first).
    """

    def __init__(
        self,
        depth_radius=architecture.LRN_DEPTH_RADIUS,
        bias=architecture.LRN_BIAS,
        alpha=architecture.LRN_ALPHA,
        beta=architecture.LRN_BETA,
        axis=-1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if axis not in (-1, 1, 3):
            raise ValueError(f"`axis` must be the channel axis, -1 (or 3) for channels_last "
                             f"or 1 for channels_first. Received: axis={axis!r}")
        self.axis = axis
        if not isinstance(depth_radius, int) or depth_radius < 0:
            raise ValueError(
                "`depth_radius` must be a non-negative integer. "
                f"Received: depth_radius={depth_radius!r}"
            )
        self.depth_radius = depth_radius
        self.bias = float(bias)
        self.alpha = float(alpha)
        self.beta = float(beta)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        # TensorFlow keeps its fused kernel: the keras.ops formula is several
        # times slower forward+backward on CPU (benchmarks/lrn.py; figures in
        # docs/performance.md).
        lrn = lrn_tf_nn if keras.backend.backend() == "tensorflow" else lrn_keras_ops
        outputs = lrn(x, depth_radius=self.depth_radius, bias=self.bias, alpha=self.alpha,
                      beta=self.beta, axis=self.axis)
        return ops.cast(outputs, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            depth_radius=self.depth_radius,
            bias=self.bias,
            alpha=self.alpha,
            beta=self.beta,
            axis=self.axis,
        )
        return config
