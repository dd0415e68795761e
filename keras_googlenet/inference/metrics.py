"""Classification metrics of scored examples: top-k accuracy and error, and
per-class accuracy.

The top-k rule is the training metrics' (`models.metrics.top_k_hits`: ties
broken by class index, as argmax does; a non-finite row is a miss), so an
evaluation and a validation pass count the same hits.
"""
import numpy as np

from keras_googlenet.models import metrics as metrics_lib

DEFAULT_TOP_K = (1, 5)


def top_k_correct(probabilities, labels, k):
    """Whether each label is among the top `k` classes: the rule of the
    training metrics (`models.metrics.top_k_hits`: ties broken by class
    index, as argmax does; a non-finite row is a miss), on NumPy arrays."""
    return metrics_lib.top_k_hits(np.asarray(labels), np.asarray(probabilities), k, xp=np)


def classification_metrics(probabilities, labels, top_k=DEFAULT_TOP_K, class_names=None):
    """Top-k accuracy / error and per-class (top-1) accuracy.

    Args:
        probabilities: `(N, classes)` scores.
        labels: `(N,)` int class indices.
        top_k: the k values to report.
        class_names: names for `per_class_accuracy` (default "0".."C-1").

    Returns:
        A dict with `num_examples`, `top{k}_accuracy` and `top{k}_error` for
        each k, and `per_class_accuracy` ({class name: top-1 accuracy over the
        examples of that class, or None when it has none}).
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise ValueError(f"Expected (N, classes) probabilities and N labels. Received "
                         f"{probabilities.shape} and {labels.shape}.")
    if len(labels) == 0:
        raise ValueError("No examples to evaluate.")
    classes = probabilities.shape[1]
    if labels.min() < 0 or labels.max() >= classes:
        raise ValueError(f"Labels must be in [0, {classes}). Received {labels.min()}..{labels.max()}.")
    names = list(class_names) if class_names is not None else [str(i) for i in range(classes)]
    if len(names) != classes:
        raise ValueError(f"{len(names)} class names for {classes} classes.")
    result = {"num_examples": int(len(labels))}
    for k in top_k:
        accuracy = float(top_k_correct(probabilities, labels, k).mean())
        result[f"top{k}_accuracy"] = accuracy
        result[f"top{k}_error"] = 1.0 - accuracy
    top1 = top_k_correct(probabilities, labels, 1)  # same tie rule as top-k
    result["per_class_accuracy"] = {
        names[c]: (float(top1[labels == c].mean()) if np.any(labels == c) else None)
        for c in range(classes)
    }
    return result
