"""Trains a small GoogLeNet for a few steps under a given strategy and saves
its weights; run as a subprocess by test_distributed.py.

    python distributed_worker.py STRATEGY OUT.npz [LOGICAL_CPUS]

STRATEGY: "single" (default strategy, model.fit), "mirrored" (model.fit on
LOGICAL_CPUS logical CPU devices), "single_loop" (custom loop, default
strategy) or "multi_worker" (custom loop, TF_CONFIG).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

GLOBAL_BATCH, STEPS, SIZE, CLASSES = 8, 3, 65, 3


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(GLOBAL_BATCH * STEPS, SIZE, SIZE, 3)).astype(np.float32)
    y = (np.arange(GLOBAL_BATCH * STEPS) % CLASSES).astype(np.int32)
    return x, {"predictions": y, "aux1": y, "aux2": y}


def main(kind, out, logical_cpus=1):
    if logical_cpus > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
    import keras

    from keras_googlenet import GoogLeNet
    from keras_googlenet.train import custom_loop
    from keras_googlenet.train import distribute
    from keras_googlenet.models import objective

    strategy = {
        "single": tf.distribute.get_strategy,
        "single_loop": tf.distribute.get_strategy,
        "mirrored": lambda: distribute.get_strategy("mirrored"),
        "multi_worker": lambda: distribute.get_strategy("multi_worker"),
    }[kind]()
    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    with strategy.scope():
        # No dropout and no batch norm: both make replicas differ from one
        # device by design (independent masks, per-replica batch statistics).
        model = GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=CLASSES, aux_classifiers=True,
                          dropout_rate=0.0, aux_dropout_rate=0.0)
        objective.compile_model(model, objective.make_optimizer(0.05, ema_momentum=0.9))
    np.savez(out.replace(".npz", ".init.npz"), *model.get_weights())
    x, y = data()
    if kind in ("single", "mirrored"):
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(GLOBAL_BATCH)
        model.fit(ds, epochs=1, verbose=0)
    else:
        def dataset_fn(ctx, start_epoch=0, skip=0):
            # Worker i takes examples i, i+n, ...: the workers' batches
            # together are exactly the single process's global batch.
            per_replica = ctx.get_per_replica_batch_size(GLOBAL_BATCH)
            return (tf.data.Dataset.from_tensor_slices((x, y))
                    .shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
                    .batch(per_replica).repeat())
        custom_loop.train(model, strategy, dataset_fn, epochs=1, steps_per_epoch=STEPS,
                          verbose=0)
    np.savez(out, *[w for w in model.get_weights()])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
