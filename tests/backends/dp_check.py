"""Run under KERAS_BACKEND=jax with two host devices by
test_data_parallel.py: the same few SGD steps on one device and with
--strategy data_parallel over two, from the same weights on the same
tf.data batches. Prints the largest weight difference as JSON."""
import json

import jax
import keras
import numpy as np
import tensorflow as tf

from keras_googlenet import GoogLeNet
from keras_googlenet.train import distribute, recipe

BATCH, STEPS = 8, 3
rng = np.random.RandomState(0)
images = rng.uniform(-1, 1, (BATCH * STEPS, 32, 32, 3)).astype("float32")
labels = rng.randint(0, 4, BATCH * STEPS)


def train(strategy):
    keras.utils.set_random_seed(7)
    with strategy.scope():
        model = GoogLeNet(input_shape=(32, 32, 3), classes=4, weights=None,
                          aux_classifiers=False, batch_norm=True, dropout_rate=0.0)
        recipe.compile_model(model, recipe.make_optimizer(
            recipe.learning_rate_schedule(0.05, STEPS, 1, "cosine"), weight_decay=1e-4,
            ema_momentum=0.9))
    data = tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH)
    model.fit(data, epochs=1, verbose=0)
    return [np.array(v.numpy()) for v in model.weights]


single = distribute.get_strategy("auto")
one = train(single)
parallel = distribute.get_strategy("data_parallel")
two = train(parallel)
print("RESULT " + json.dumps({
    "devices": len(jax.devices()),
    "replicas": parallel.num_replicas_in_sync,
    "single_replicas": single.num_replicas_in_sync,
    "max_diff": max(float(np.max(np.abs(a - b))) for a, b in zip(one, two)),
    "max_change": max(float(np.max(np.abs(a))) for a in one),
}))
