"""Top-k accuracy: one rule for the training metrics and for evaluation.

A label is among the top k when fewer than k classes come before it, where
a class comes before the label if it scores higher, or scores the same and
has a lower index: ties are broken as `argmax` and `top_k` break them, so a
uniform or constant output scores one hit per tie, not every label (Keras'
`SparseTopKCategoricalAccuracy` counts every tied label as a hit: a uniform
10-class output has top-5 = 100% there, 50% here; its top-1,
`SparseCategoricalAccuracy`, agrees with this rule). A row with a NaN or
infinite score is a miss: a diverged model scores nothing.

`top_k_hits` is written with the names that NumPy and `keras.ops` share, so
the same lines run on NumPy arrays (evaluation) and inside a compiled
training step on any backend (`TopKAccuracy`).
"""
import keras
import numpy as np


def top_k_hits(labels, scores, k, xp=keras.ops):
    """Whether each label is among the top `k` classes of its row of scores.

    Args:
        labels: `(N,)` integer class indices (or `(N, 1)`).
        scores: `(N, classes)` probabilities or logits.
        k: a positive int; k >= classes makes every finite row a hit.
        xp: `keras.ops` (tensors of the backend) or `numpy` (arrays).

    Returns:
        `(N,)` booleans.
    """
    labels = xp.reshape(labels, (-1, 1))
    if xp is np:
        labels = labels.astype(np.int64)
    else:
        labels = xp.cast(labels, "int32")
    true = xp.take_along_axis(scores, labels, axis=-1)
    index = xp.expand_dims(xp.arange(scores.shape[-1]), 0)
    ahead = xp.logical_or(xp.greater(scores, true),
                          xp.logical_and(xp.equal(scores, true), xp.less(index, labels)))
    return xp.logical_and(xp.all(xp.isfinite(scores), axis=-1),
                          xp.less(xp.sum(ahead, axis=-1), k))


def top_k_accuracy(y_true, y_pred, k=5):
    """Per-example 1.0 / 0.0 of `top_k_hits`, as a Keras metric function."""
    return keras.ops.cast(top_k_hits(y_true, y_pred, k), "float32")


@keras.saving.register_keras_serializable(package="keras_googlenet")
class TopKAccuracy(keras.metrics.MeanMetricWrapper):
    """Top-k accuracy of integer labels under `top_k_hits`' tie rule.

    Args:
        k: number of top classes a label may be among (1: top-1 accuracy).
        name: metric name; default `top{k}`.
    """

    def __init__(self, k=5, name=None, dtype=None):
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"`k` must be a positive int. Received: k={k!r}")
        super().__init__(fn=top_k_accuracy, name=name or f"top{k}", dtype=dtype, k=k)
        self.k = k
        self._direction = "up"

    def get_config(self):
        return {"k": self.k, "name": self.name, "dtype": self.dtype}
