"""Top-k accuracy: the training metric and evaluation share one tie rule, on
every backend (this file runs in CI's backend matrix)."""
import keras
import numpy as np
import pytest

from keras_googlenet.models import metrics


def _uniform(n=10):
    return np.full((n, n), 1.0 / n, np.float32), np.arange(n)


@pytest.mark.parametrize("k, expected", [(1, 0.1), (5, 0.5), (10, 1.0), (20, 1.0)])
def test_ties_are_broken_by_class_index_not_counted_as_hits(k, expected):
    scores, labels = _uniform()
    numpy_hits = metrics.top_k_hits(labels, scores, k, xp=np)
    assert numpy_hits.tolist() == [i < k for i in range(10)]
    metric = metrics.TopKAccuracy(k=k)
    metric.update_state(labels, scores)
    assert float(metric.result()) == pytest.approx(expected)


def test_top1_is_keras_accuracy_and_agrees_with_numpy_on_random_scores():
    rng = np.random.default_rng(0)
    # Rounded, so that many rows have ties.
    scores = np.round(rng.random((200, 7)), 1).astype(np.float32)
    labels = rng.integers(0, 7, 200)
    keras_top1 = keras.metrics.SparseCategoricalAccuracy()
    keras_top1.update_state(labels, scores)
    ours = metrics.TopKAccuracy(k=1)
    ours.update_state(labels, scores)
    assert float(ours.result()) == pytest.approx(float(keras_top1.result()))
    for k in (1, 2, 3, 6):
        on_backend = keras.ops.convert_to_numpy(metrics.top_k_hits(labels, scores, k))
        np.testing.assert_array_equal(on_backend, metrics.top_k_hits(labels, scores, k, xp=np))
        # By hand: the label's rank after a stable sort by descending score.
        order = np.argsort(-scores, axis=1, kind="stable")
        rank = np.argmax(order == labels[:, None], axis=1)
        np.testing.assert_array_equal(on_backend, rank < k)


def test_non_finite_rows_are_misses_and_the_metric_round_trips():
    scores = np.array([[np.nan, 0.2, 0.1], [0.5, np.inf, 0.1], [0.7, 0.2, 0.1]], np.float32)
    assert metrics.top_k_hits([0, 1, 0], scores, 3, xp=np).tolist() == [False, False, True]
    metric = metrics.TopKAccuracy(k=2, name="top2")
    restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
    assert (type(restored), restored.k, restored.name) == (metrics.TopKAccuracy, 2, "top2")
    with pytest.raises(ValueError, match="`k` must be a positive int. Received: k=0"):
        metrics.TopKAccuracy(k=0)
