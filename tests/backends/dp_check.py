"""Run under KERAS_BACKEND=jax with two host devices by
test_data_parallel.py: the same SGD steps on one device and with
--strategy data_parallel over two, from the same weights on the same
tf.data batches. Prints the largest differences as JSON.

Two cases, because the batch-norm variant cannot be compared weight for
weight after a few steps: its training gradient at this scale is
ill-conditioned (inputs moved by 1e-6 change some gradients by 15-40%,
and 3 steps on one device by 0.13), so float32 summation order alone
separates the runs. It is compared on what data parallelism could get
wrong: the batch statistics, which must be the global batch's.
- paper: the paper variant (LRN, both auxiliary heads, the full recipe
  optimizer with its schedule, weight decay and EMA), 3 steps: all weights.
- batch_norm: one step; the moving means and variances, beside what they
  would be from half the batch (what per-device statistics would give).
"""
import json

import jax
import keras
import numpy as np
import tensorflow as tf

from keras_googlenet import GoogLeNet
from keras_googlenet.models import objective, schedules
from keras_googlenet.train import distribute

BATCH, STEPS, SIZE, CLASSES = 8, 3, 65, 3
rng = np.random.RandomState(0)
images = rng.uniform(-1, 1, (BATCH * STEPS, SIZE, SIZE, 3)).astype("float32")
labels = rng.randint(0, CLASSES, BATCH * STEPS)


def train(strategy, batch_norm, steps, batch=BATCH):
    """The weights by path after `steps` steps (0: as initialised)."""
    keras.utils.set_random_seed(7)
    with strategy.scope():
        model = GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=CLASSES, weights=None,
                          aux_classifiers=not batch_norm, batch_norm=batch_norm,
                          dropout_rate=0.0, aux_dropout_rate=0.0)
        objective.compile_model(model, objective.make_optimizer(
            schedules.learning_rate_schedule(0.05, STEPS, 1, "cosine"), weight_decay=1e-4,
            ema_momentum=0.9))
    n = batch * steps
    if not n:
        return {v.path: np.array(v.numpy()) for v in model.weights}
    # The paper variant has auxiliary heads: each is trained on the labels.
    targets = {name: labels[:n] for name in model.output_names} if not batch_norm else labels[:n]
    model.fit(tf.data.Dataset.from_tensor_slices((images[:n], targets)).batch(batch),
              epochs=1, verbose=0)
    return {v.path: np.array(v.numpy()) for v in model.weights}


def max_diff(a, b, only=""):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a if only in k)


single = distribute.get_strategy("auto")
parallel = distribute.get_strategy("data_parallel")
initial = train(single, False, 0)
paper_one, paper_two = train(single, False, STEPS), train(parallel, False, STEPS)
bn_one, bn_two = train(single, True, 1), train(parallel, True, 1)
bn_half = train(single, True, 1, batch=BATCH // 2)
print("RESULT " + json.dumps({
    "devices": len(jax.devices()),
    "replicas": parallel.num_replicas_in_sync,
    "single_replicas": single.num_replicas_in_sync,
    "paper_max_diff": max_diff(paper_one, paper_two),
    "paper_max_update": max_diff(initial, paper_one),
    "bn_moving_stats_diff": max_diff(bn_one, bn_two, "moving_"),
    "bn_half_batch_stats_diff": max_diff(bn_one, bn_half, "moving_"),
}))
