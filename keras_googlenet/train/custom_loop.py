"""A training loop with `strategy.run`, for MultiWorkerMirroredStrategy.

Keras 3's `model.fit` fails under MultiWorkerMirroredStrategy
(keras-team/keras#20585). This loop drives the same compiled Keras model
through Keras' own `model.train_step` / `model.test_step` (so the losses,
their 1.0/0.3/0.3 weights, the optimizer with its EMA and the metrics are
exactly those of `fit`) inside `strategy.run`, with the dataset distributed
by `strategy.distribute_datasets_from_function`. It works for any strategy,
so tests can compare it with `fit`.
"""
import contextlib
import logging

import keras
import tensorflow as tf

from keras_googlenet.train import checkpointing

log = logging.getLogger(__name__)


def _reduce_logs(strategy, logs):
    # Logged from the first local replica: the loss and metrics shown are
    # that replica's running means (training itself all-reduces gradients).
    local = strategy.experimental_local_results(logs)[0]
    return {k: float(v) for k, v in local.items()}


def train(
    model,
    strategy,
    train_dataset_fn,
    epochs,
    steps_per_epoch,
    validation_dataset_fn=None,
    backup_dir=None,
    save_freq=100,
    callbacks=(),
    chief=True,
    verbose=1,
):
    """Trains a compiled `model` (built under `strategy.scope()`).

    Args:
        model: compiled Keras model.
        strategy: the `tf.distribute.Strategy` whose scope built the model.
        train_dataset_fn: `fn(input_context, start_epoch, skip_batches)`
            returning the per-worker training `tf.data.Dataset`, infinite,
            where epoch e's batches depend only on e (so a resumed run sees
            the batches an uninterrupted one would).
        epochs, steps_per_epoch: the length of training.
        validation_dataset_fn: optional `fn(input_context)` for validation
            after each epoch.
        backup_dir: where to write and find resumable checkpoints (the
            chief writes; every worker restores from it, so it must be on a
            shared file system for several hosts).
        save_freq: checkpoint every this many steps (and at epoch ends).
        callbacks: Keras callbacks; `on_epoch_end(epoch, logs)` and
            `on_train_end` are called (CSVLogger, TensorBoard, ...).
        chief: whether this worker writes checkpoints.

    Returns:
        A `keras.callbacks.History`-like dict {metric: [per-epoch values]}.
    """
    start_epoch, skip = 0, 0
    if backup_dir:
        state = checkpointing.restore(model, backup_dir)
        if state is not None:
            start_epoch, skip = state["epoch"], state["batch"]
            log.info("Resuming from %s at epoch %d, batch %d.", backup_dir, start_epoch, skip)

    train_iter = iter(strategy.distribute_datasets_from_function(
        lambda ctx: train_dataset_fn(ctx, start_epoch, skip)))

    @tf.function
    def train_step(iterator):
        return strategy.run(model.train_step, args=(next(iterator),))

    @tf.function
    def test_step(batch):
        return strategy.run(model.test_step, args=(batch,))

    history = keras.callbacks.History()
    # Keras' own progress bar (verbose 1) or line per epoch (2), on the chief.
    callback_list = keras.callbacks.CallbackList(
        [*callbacks, history], add_progbar=bool(verbose and chief), model=model,
        epochs=epochs, steps=steps_per_epoch, verbose=verbose)
    callback_list.on_train_begin()
    for epoch in range(start_epoch, epochs):
        callback_list.on_epoch_begin(epoch)
        for metric in model.metrics:
            metric.reset_state()
        begin = skip if epoch == start_epoch else 0
        logs = {}
        for batch in range(begin, steps_per_epoch):
            logs = train_step(train_iter)
            callback_list.on_train_batch_end(batch, _reduce_logs(strategy, logs))
            if backup_dir and (batch + 1) % save_freq == 0 and batch + 1 < steps_per_epoch:
                _save(model, backup_dir, epoch, batch + 1, chief)
        logs = _reduce_logs(strategy, logs)
        if validation_dataset_fn is not None:
            logs.update(evaluate(model, strategy, validation_dataset_fn, test_step))
        if backup_dir:
            _save(model, backup_dir, epoch + 1, 0, chief)
        callback_list.on_epoch_end(epoch, logs)
    callback_list.on_train_end(logs if epochs > start_epoch else {})
    # Like fit: the Polyak-averaged weights become the model's weights.
    if model.optimizer.use_ema and epochs > start_epoch:
        model.optimizer.finalize_variable_values(model.trainable_variables)
    return history.history


def _save(model, backup_dir, epoch, batch, chief):
    if chief:
        checkpointing.save(model, backup_dir, epoch, batch,
                           int(model.optimizer.iterations.numpy()))


def evaluate(model, strategy, dataset_fn, test_step=None):
    """Validation metrics over the distributed dataset, with the EMA weights
    swapped in when the optimizer averages them (as `SwapEMAWeights` does
    for `fit`)."""
    if test_step is None:
        test_step = tf.function(lambda b: strategy.run(model.test_step, args=(b,)))
    with averaged_weights(model):
        for metric in model.metrics:
            metric.reset_state()
        logs = {}
        for batch in strategy.distribute_datasets_from_function(dataset_fn):
            logs = test_step(batch)
        return {f"val_{k}": v for k, v in _reduce_logs(strategy, logs).items()} if logs else {}


@contextlib.contextmanager
def averaged_weights(model):
    """The model with its Polyak-averaged (EMA) weights swapped in while the
    block runs, when its optimizer keeps them."""
    swap = keras.callbacks.SwapEMAWeights()
    swap.set_model(model)
    use_ema = model.optimizer is not None and model.optimizer.use_ema
    if use_ema:
        swap.on_test_begin()
    try:
        yield model
    finally:
        if use_ema:
            swap.on_test_end()
