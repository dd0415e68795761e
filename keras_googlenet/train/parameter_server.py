"""Asynchronous SGD on parameter servers: the paper's own training method
(DistBelief) on `tf.distribute.ParameterServerStrategy`.

Every machine starts the same `googlenet train --strategy parameter_server`
command, with its own `TF_CONFIG`; its task type decides what the process
does. `ps` and `worker` tasks run a `tf.distribute.Server` until they are
stopped. The `chief` runs `train`: it schedules training steps on the
workers (`ClusterCoordinator.schedule`), each on that worker's own batches,
and each worker applies its gradients to the variables on the parameter
servers as soon as it has them, without waiting for the others. A worker
that dies has its steps rescheduled on the others, and rejoins when it is
restarted.

Keras 3's `model.fit` does not support this strategy (keras-team/keras#18624),
so `train` is a loop like `custom_loop.train` around Keras' own
`model.train_step`. Keras variables add by reading, adding and assigning
(`Variable.assign_add`); on a parameter server two workers doing that at once
lose one of the increments, so the optimizer's step counter (which drives
the learning-rate schedule, the averaging and the checkpoints) and the
metrics' totals are given the variable's own atomic add (`exact_updates`).
"""
import collections
import functools
import json
import os

import keras
import numpy as np
import tensorflow as tf

from keras_googlenet.train import checkpointing, custom_loop

TASK_TYPES = ("chief", "worker", "ps")
_EXAMPLE = ('{"cluster": {"chief": ["host0:2222"], "worker": ["host1:2222", "host2:2222"], '
            '"ps": ["host3:2222"]}, "task": {"type": "worker", "index": 0}}')


def read_tf_config(raw=None):
    """The `TF_CONFIG` of a parameter-server cluster, validated.

    Args:
        raw: the JSON text; default: the `TF_CONFIG` environment variable.

    Returns:
        The parsed dict: `cluster` with one `chief`, one or more `worker`
        and `ps` addresses, and this process' `task` (`type`, `index`).

    Raises:
        ValueError: one line naming what is missing or wrong.
    """
    raw = os.environ.get("TF_CONFIG") if raw is None else raw
    if not raw:
        raise ValueError("--strategy parameter_server needs the TF_CONFIG environment "
                         f"variable, e.g. {_EXAMPLE}. Received: TF_CONFIG unset")
    try:
        config = json.loads(raw)
        cluster, task = config["cluster"], config["task"]
        task_type, index = task["type"], task.get("index", 0)
        jobs = {name: list(cluster[name]) for name in cluster}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"TF_CONFIG is not JSON with a cluster and a task ({e!r}), e.g. "
                         f"{_EXAMPLE}. Received: TF_CONFIG={raw!r}") from None
    if len(jobs.get("chief", [])) != 1 or not jobs.get("worker") or not jobs.get("ps"):
        counts = {name: len(jobs.get(name, [])) for name in TASK_TYPES}
        raise ValueError("--strategy parameter_server needs a cluster of 1 chief, at least 1 "
                         f"worker and at least 1 ps in TF_CONFIG. Received: {counts}")
    if task_type not in TASK_TYPES:
        raise ValueError(f"TF_CONFIG task type {task_type!r} is not one that --strategy "
                         f"parameter_server takes: {', '.join(TASK_TYPES)}.")
    if not isinstance(index, int) or not 0 <= index < len(jobs[task_type]):
        raise ValueError(f"TF_CONFIG task index {index!r} is not among the "
                         f"{len(jobs[task_type])} {task_type} addresses {jobs[task_type]}.")
    return {"cluster": jobs, "task": {"type": task_type, "index": index}}


def server_config(num_workers):
    """The session config of a worker or parameter-server process: one
    inter-op thread per worker and one more, as TF's own in-process
    clusters use (fewer can deadlock a worker that waits on the others)."""
    config = tf.compat.v1.ConfigProto()
    config.inter_op_parallelism_threads = num_workers + 1
    return config


def serve(tf_config):
    """Runs this process' worker or ps task of `tf_config` (from
    `read_tf_config`) until it is stopped; never returns."""
    task = tf_config["task"]
    cluster = tf.train.ClusterSpec(tf_config["cluster"])
    server = tf.distribute.Server(
        cluster, job_name=task["type"], task_index=task["index"], protocol="grpc",
        config=server_config(len(tf_config["cluster"]["worker"])), start=True)
    print(f"{task['type']} {task['index']} serving at "
          f"{tf_config['cluster'][task['type']][task['index']]}", flush=True)
    server.join()


def strategy_from(cluster_resolver=None):
    """The ParameterServerStrategy of `cluster_resolver` (default: TF_CONFIG's)."""
    resolver = cluster_resolver or tf.distribute.cluster_resolver.TFConfigClusterResolver()
    return tf.distribute.ParameterServerStrategy(resolver)


def _atomic(variable, op, value):
    return getattr(variable.value, op)(tf.cast(value, variable.dtype))


def exact_updates(variables):
    """Makes `assign_add` and `assign_sub` of these Keras variables the
    underlying tf.Variable's atomic ops, so that updates from several
    workers at once are all counted (Keras' own read the value, add and
    assign). Call it before the step function is traced."""
    for variable in variables:
        variable.assign_add = functools.partial(_atomic, variable, "assign_add")
        variable.assign_sub = functools.partial(_atomic, variable, "assign_sub")


def staleness_summary(staleness):
    """The distribution of per-step staleness (the updates other workers
    applied while a step ran), for logs and results.json."""
    values = np.asarray(staleness, dtype=np.int64)
    if values.size == 0:
        return {"steps": 0}
    counts = collections.Counter(values.tolist())
    return {"steps": int(values.size), "mean": float(values.mean()),
            "median": float(np.median(values)), "p90": float(np.percentile(values, 90)),
            "max": int(values.max()),
            "histogram": {str(k): counts[k] for k in sorted(counts)}}


class ParameterServerLost(RuntimeError):
    """A parameter server stopped answering: the variables it held are gone."""


def train(
    model,
    strategy,
    train_dataset_fn,
    epochs,
    steps_per_epoch,
    probe_batch,
    num_workers,
    validation_data=None,
    backup_dir=None,
    save_freq=100,
    callbacks=(),
    verbose=1,
):
    """Trains a compiled `model` (built under `strategy.scope()`) with
    asynchronous steps on the strategy's workers.

    An epoch is `steps_per_epoch` steps, whichever workers take them; the
    step counter after epoch e is exactly `(e + 1) * steps_per_epoch`.

    Args:
        train_dataset_fn: `fn(worker_index, start_epoch, skip_batches)`,
            traced for the workers (the index is a tensor), returning that
            worker's infinite dataset of batches from batch `skip_batches`
            of its epoch `start_epoch` on (epochs of `steps_per_epoch`).
        probe_batch: one `(images, labels)` batch, evaluated once on the
            chief before training to create the metrics' variables, so that
            their updates are made exact before the step is traced.
        num_workers: the cluster's number of workers.
        validation_data: a `tf.data.Dataset` evaluated on the chief after each
            epoch, with the averaged weights when the optimizer keeps them.
        backup_dir, save_freq: resumable checkpoints every `save_freq` steps
            and at each epoch's end (`checkpointing`).
        callbacks: Keras callbacks (`on_epoch_end`, `on_train_end`, ...).

    Returns:
        `(history, staleness)`: the history dict {metric: [per-epoch
        values]} and the staleness of every step trained in this call.

    Raises:
        ParameterServerLost: a parameter server stopped answering.
    """
    coordinator = tf.distribute.coordinator.ClusterCoordinator(strategy)
    start_epoch, skip = 0, 0
    optimizer = model.optimizer
    # Variables made now (the optimizer's, the metrics') go to the servers.
    with strategy.scope():
        state = checkpointing.restore(model, backup_dir) if backup_dir else None
        if state is not None:
            start_epoch, skip = state["epoch"], state["batch"]
            print(f"Resuming from {backup_dir}: epoch {start_epoch + 1}, batch {skip}, "
                  f"step {state['step']}.", flush=True)
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        model.test_step(probe_batch)
    exact_updates([optimizer.iterations, *model.metrics_variables])

    # Each worker has taken about 1/workers of the steps so far: its own
    # stream goes on from there (which worker took which step is not kept).
    stream_epoch, stream_skip = divmod((start_epoch * steps_per_epoch + skip) // num_workers,
                                       steps_per_epoch)

    @tf.function
    def per_worker_dataset():
        index = tf.distribute.coordinator.experimental_get_current_worker_index()
        return strategy.distribute_datasets_from_function(
            lambda _: train_dataset_fn(index, stream_epoch, stream_skip))

    train_iter = iter(coordinator.create_per_worker_dataset(per_worker_dataset))
    counter = optimizer.iterations.value

    @tf.function
    def train_step(iterator):
        def step(batch):
            before = counter.read_value()
            logs = model.train_step(batch)
            # The updates applied while this step ran, its own excluded.
            return logs, counter.read_value() - before - 1

        return strategy.run(step, args=(next(iterator),))

    test_step = tf.function(model.test_step)
    history = keras.callbacks.History()
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history], add_progbar=bool(verbose), model=model, epochs=epochs,
        steps=steps_per_epoch, verbose=verbose)
    staleness = []
    logs = {}
    callback_list.on_train_begin()
    try:
        for epoch in range(start_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            for metric in model.metrics:
                metric.reset_state()
            batch = skip if epoch == start_epoch else 0
            epoch_staleness = []
            while batch < steps_per_epoch:
                # Up to the next checkpoint: scheduled, then joined, so the
                # checkpoint holds exactly the steps it says.
                stop = min(steps_per_epoch, (batch // save_freq + 1) * save_freq)
                results = [coordinator.schedule(train_step, args=(train_iter,))
                           for _ in range(batch, stop)]
                coordinator.join()
                for offset, result in enumerate(results):
                    step_logs, step_staleness = result.fetch()
                    epoch_staleness.append(int(step_staleness))
                    logs = {k: float(v) for k, v in step_logs.items()}
                    callback_list.on_train_batch_end(batch + offset, logs)
                batch = stop
                if backup_dir and batch < steps_per_epoch:
                    _save(model, backup_dir, epoch, batch)
            staleness += epoch_staleness
            logs = dict(logs, staleness=float(np.mean(epoch_staleness)))
            if validation_data is not None:
                logs.update(_evaluate(model, validation_data, test_step))
            if backup_dir:
                _save(model, backup_dir, epoch + 1, 0)
            callback_list.on_epoch_end(epoch, logs)
    except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
            tf.errors.NotFoundError, tf.errors.FailedPreconditionError) as e:
        raise ParameterServerLost(_lost_message(e, backup_dir)) from None
    callback_list.on_train_end(logs if epochs > start_epoch else {})
    # Like fit: the Polyak-averaged weights become the model's weights.
    if optimizer.use_ema and epochs > start_epoch:
        optimizer.finalize_variable_values(model.trainable_variables)
    return history.history, staleness


def _lost_message(error, backup_dir):
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    state = checkpointing.load_state(backup_dir) if backup_dir else None
    where = (f"resumes from its last checkpoint (step {state['step']})" if state and
             state.get("step") else "starts afresh (no checkpoint yet)")
    return (f"A parameter server was lost, and with it the variables it held ({first_line[:200]}); "
            f"restart it and rerun the same command: it {where}.")


def _save(model, backup_dir, epoch, batch):
    checkpointing.save(model, backup_dir, epoch, batch, int(model.optimizer.iterations.numpy()))


def _evaluate(model, dataset, test_step):
    """Validation on the chief (reading the variables from the parameter
    servers), with the averaged weights when the optimizer keeps them."""
    with custom_loop.averaged_weights(model):
        for metric in model.metrics:
            metric.reset_state()
        logs = {}
        for batch in dataset:
            logs = test_step(batch)
    return {f"val_{k}": float(v) for k, v in logs.items()}
