"""ImageNet class names, shipped inside the package (no download)."""
import functools
import json
import os

import numpy as np

_CLASS_INDEX_PATH = os.path.join(
    os.path.dirname(__file__), "resources", "imagenet_class_index.json"
)


@functools.lru_cache(maxsize=None)
def class_index():
    """Returns {index: (wnid, name)} for the 1000 ILSVRC-2012 classes."""
    with open(_CLASS_INDEX_PATH, encoding="utf-8") as f:
        raw = json.load(f)
    return {int(k): (v[0], v[1]) for k, v in raw.items()}


def class_names():
    """The 1000 human-readable ILSVRC-2012 class names, in label order."""
    index = class_index()
    return [index[i][1] for i in range(len(index))]


def decode_predictions(preds, top=5):
    """Decodes a batch of ImageNet predictions, like keras.applications.

    Args:
        preds: array of shape (batch, 1000) of probabilities or scores.
        top: how many classes to return per row.

    Returns:
        A list with one list per row of `(wnid, class_name, score)` tuples,
        highest score first.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError(
            "`decode_predictions` expects a batch of predictions of shape "
            f"(samples, 1000). Received: preds.shape={preds.shape}"
        )
    if not isinstance(top, int) or top < 1:
        raise ValueError(f"`top` must be a positive integer. Received: top={top!r}")
    index = class_index()
    results = []
    for row in preds:
        order = np.argsort(-row, kind="stable")[:top]
        results.append([(index[i][0], index[i][1], float(row[i])) for i in order])
    return results
