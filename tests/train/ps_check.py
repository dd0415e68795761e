"""One parameter-server check in its own process (a tf.distribute.Server
cannot be stopped, so each cluster lives and dies with one process).

    python ps_check.py exact OUT_JSON      # 2 workers: the step counter after N steps
    python ps_check.py one_worker OUT        # 1 worker: OUT.npz, the weights after the steps
    python ps_check.py one_device OUT        # the one-device custom loop, same batches

The cluster is in-process on 127.0.0.1 ports, as TensorFlow's own tests
start it: workers with inter_op_parallelism_threads >= workers + 1.
"""
import json
import os
import socket
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_googlenet.train import custom_loop, parameter_server  # noqa: E402

BATCH, FEATURES, CLASSES = 8, 6, 3


def _port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def in_process_cluster(workers, ps=1):
    cluster = {"worker": [f"127.0.0.1:{_port()}" for _ in range(workers)],
               "ps": [f"127.0.0.1:{_port()}" for _ in range(ps)]}
    spec = tf.train.ClusterSpec(cluster)
    for i in range(workers):
        tf.distribute.Server(spec, job_name="worker", task_index=i, protocol="grpc",
                             config=parameter_server.server_config(workers), start=True)
    for i in range(ps):
        tf.distribute.Server(spec, job_name="ps", task_index=i, protocol="grpc", start=True)
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(spec, rpc_layer="grpc")
    return parameter_server.strategy_from(resolver)


def build(strategy):
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(CLASSES, activation="softmax")])
        # The recipe's optimizer: momentum, weight decay and Polyak averaging.
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9, weight_decay=1e-4, use_ema=True),
                      "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def batches(stream_index=0, start_epoch=0, skip=0):
    """The same batches for a given stream: a function of the index only."""
    seed = tf.stack([tf.cast(stream_index, tf.int64), tf.constant(7, tf.int64)])
    x = tf.random.stateless_normal([64, FEATURES], seed=seed)
    y = tf.cast(tf.argmax(x[:, :CLASSES], axis=1), tf.int32)
    del start_epoch, skip
    return tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(BATCH)


def main(kind, out):
    probe = next(iter(batches()))
    if kind == "exact":
        strategy = in_process_cluster(2)
        model = build(strategy)
        history, staleness = parameter_server.train(
            model, strategy, batches, epochs=2, steps_per_epoch=150, probe_batch=probe, num_workers=2,
            validation_data=batches().take(2), backup_dir=os.path.join(os.path.dirname(out), "b"),
            save_freq=40, verbose=0)
        with open(out, "w") as f:
            json.dump({"iterations": int(model.optimizer.iterations.numpy()),
                       "history": history, "staleness": staleness}, f)
        return
    if kind == "one_worker":
        strategy = in_process_cluster(1)
        model = build(strategy)
        parameter_server.train(model, strategy, lambda *_: batches(), epochs=2,
                               steps_per_epoch=5, probe_batch=probe, num_workers=1,
                               verbose=0)
    else:
        strategy = tf.distribute.get_strategy()
        model = build(strategy)
        custom_loop.train(model, strategy, lambda *_: batches(), epochs=2, steps_per_epoch=5,
                          verbose=0)
    np.savez(out, *[v.numpy() for v in model.trainable_variables],
             iterations=model.optimizer.iterations.numpy())


if __name__ == "__main__":
    main(*sys.argv[1:])
