"""The main job: train GoogLeNet with the paper's recipe, then export.

`run(config)` does everything `googlenet train` does: data, model, compile,
distribution, resumable checkpoints, logs (progress bars, TensorBoard, CSV,
the configuration, a PNG of the curves) and the SavedModel export.
"""
import dataclasses
import json
import logging
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from keras_googlenet import backends, files
from keras_googlenet.data import augment
from keras_googlenet.train import checkpointing
from keras_googlenet.train import custom_loop
from keras_googlenet.data import pipeline as data
from keras_googlenet.train import distribute
from keras_googlenet.train.resume import check_resume, run_settings
from keras_googlenet.models import objective, schedules
from keras_googlenet.data import sources
from keras_googlenet.models import contract as contract_lib
from keras_googlenet.models.googlenet import GoogLeNet, inference_model

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class StopOnNaN(keras.callbacks.Callback):
    """Like `keras.callbacks.TerminateOnNaN`, but stops with an error that
    says where it happened, what to try, and which checkpoint (if any) is
    from before."""

    def __init__(self, config):
        super().__init__()
        self.config = config

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingDiverged(
                f"The training loss became {float(loss)} at step "
                f"{int(self.model.optimizer.iterations.numpy())} (batch {batch}). "
                f"Try a lower --learning-rate (now {self.config.learning_rate}), "
                "a warm-up (--warmup-epochs 1), --batch-norm, or --precision float32; "
                f"check the data for corrupt labels or images. {self._last_checkpoint()}"
            )

    def _last_checkpoint(self):
        backup_dir = os.path.join(self.config.output_dir, "backup")
        try:
            state = checkpointing.load_state(backup_dir)
        except ValueError:  # named when the run started; not this error's subject
            state = None
        if not state or state["weights"] is None:
            return "No checkpoint was written before it."
        return (f"The last checkpoint, {os.path.join(backup_dir, state['weights'])} "
                f"(step {state['step']}), is from before.")


def augment_config(config):
    return augment.AugmentConfig(
        area_range=(config.min_crop_area, 1.0),
        random_flip=config.flip,
        photometric=config.photometric,
    )


def build_model(config, num_classes):
    """The GoogLeNet of `config` (compiled separately)."""
    return GoogLeNet(
        input_shape=(config.image_size, config.image_size, 3),
        classes=num_classes,
        aux_classifiers=config.aux_classifiers,
        batch_norm=config.batch_norm,
        dropout_rate=config.dropout_rate,
        aux_dropout_rate=config.aux_dropout_rate,
        kernel_5x5=config.kernel_5x5,
        weights=config.init_weights,
    )


def compile_for(model, config, steps_per_epoch):
    schedule = schedules.learning_rate_schedule(
        config.learning_rate, steps_per_epoch, config.epochs, config.schedule,
        decay_rate=config.decay_rate, decay_epochs=config.decay_epochs,
        warmup_epochs=config.warmup_epochs,
    )
    optimizer = objective.make_optimizer(
        schedule, momentum=config.momentum, weight_decay=config.weight_decay,
        ema_momentum=config.ema_momentum or None,
    )
    return objective.compile_model(model, optimizer, label_smoothing=config.label_smoothing,
                                aux_weight=config.aux_weight, jit_compile=config.jit_compile)


def _previous_export(output_dir, step, export_dir):
    """The export a finished run of this job already wrote at optimizer step
    `step` into `export_dir` (from its results.json), or None: a re-run
    asked for another destination exports there."""
    try:
        with open(os.path.join(output_dir, "results.json"), encoding="utf-8") as f:
            previous = json.load(f)
    except (OSError, ValueError):
        return None
    path = previous.get("export_path")
    if (previous.get("export_step") == step and path and os.path.isdir(path)
            and os.path.isdir(export_dir)
            and os.path.samefile(os.path.dirname(os.path.abspath(path)), export_dir)):
        return path
    return None


def plot_history(csv_path, png_path):
    """Writes a PNG of loss and top-1 accuracy, train and validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = np.genfromtxt(csv_path, delimiter=",", names=True, dtype=float)
    rows = np.atleast_1d(rows)
    epochs = rows["epoch"] + 1
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "top1")):
        for prefix, style in (("", "-"), ("val_", "--")):
            # Keras prefixes a multi-output model's metrics with the head name.
            for name in (prefix + metric, f"{prefix}predictions_{metric}"):
                if name in rows.dtype.names:
                    ax.plot(epochs, rows[name], style, marker="o",
                            label=("validation " if prefix else "train ") + metric)
                    break
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)


def _steps(source, config, global_batch):
    if config.steps_per_epoch:
        return config.steps_per_epoch
    if not source.num_examples:
        raise ValueError(
            f"The number of examples of {source.name!r} is unknown: pass --steps-per-epoch."
        )
    steps = source.num_examples // global_batch
    if steps < 1:
        raise ValueError(
            f"{source.name!r} has {source.num_examples} examples, fewer than one global "
            f"batch of {global_batch}: lower --batch-size."
        )
    return steps


def _sources(config):
    """The training and validation sources; refuses data with under 2 classes."""
    kwargs = {}
    if config.data.startswith("tfrecord:"):
        # Read every label once now: a wrong one is refused naming its file
        # before any training (the records were always read to count them).
        kwargs = dict(num_classes=config.num_classes, label_offset=config.label_offset,
                      scan=True)
    train_source, val_source = sources.train_val_sources(
        config.data, config.train_split, config.val_split, data_dir=config.data_dir,
        holdout_fraction=config.holdout_fraction, holdout_seed=config.holdout_seed, **kwargs)
    # --classes slices both splits; --examples-per-class only the training one.
    train_source = sources.subset(train_source, config.classes, config.examples_per_class,
                                  seed=config.seed)
    if val_source is not None:
        val_source = sources.subset(val_source, config.classes)
    if train_source.num_classes < 2:
        # One class trains to 100% accuracy and can predict nothing else.
        raise ValueError(
            f"{train_source.name!r} has {train_source.num_classes} class "
            f"({train_source.class_names or 'no names'}): a classifier needs at least 2 "
            "classes (for a folder, one sub-folder per class)."
        )
    return train_source, val_source


def _validation_record(train_source, val_source):
    """What the run validates on, for config.json."""
    if val_source is None:
        return None
    if val_source.holdout:
        return dict(val_source.holdout, kind="holdout")
    if val_source.name == train_source.name:
        return {"kind": "training data", "source": val_source.name}
    return {"kind": "split", "source": val_source.name}


def run(config):
    """Trains (resuming from `output_dir/backup` when a checkpoint is there)
    and exports. Returns a dict of results (history, export path, times)."""
    config = config.resolved()
    started = time.time()
    backend = keras.backend.backend()
    if config.backend is not None and config.backend != backend:
        raise ValueError(
            f"--backend {config.backend} was asked for, but Keras is already imported with "
            f"the {backend} backend; set KERAS_BACKEND={config.backend} before starting "
            "Python (googlenet train --backend does).")
    config = dataclasses.replace(config, backend=backend)
    # The strategy first: MultiWorkerMirroredStrategy must configure
    # collective ops before any other TensorFlow call.
    strategy = distribute.get_strategy(config.strategy)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = distribute.set_precision(config.precision)
    chief = distribute.is_chief(strategy)
    replicas = strategy.num_replicas_in_sync
    global_batch = config.batch_size * replicas

    train_source, val_source = _sources(config)
    steps_per_epoch = _steps(train_source, config, global_batch)

    backup_dir = os.path.join(config.output_dir, "backup")
    # Before writing anything: a refused resume leaves the run as it was.
    settings = run_settings(config, train_source, replicas, steps_per_epoch)
    resuming = check_resume(backup_dir, settings) is not None
    os.makedirs(config.output_dir, exist_ok=True)
    if chief and not resuming:
        checkpointing.start(backup_dir, settings)
    if chief:
        files.write_json(os.path.join(config.output_dir, "config.json"),
                    dict(dataclasses.asdict(config), policy=policy, replicas=replicas,
                         global_batch=global_batch, steps_per_epoch=steps_per_epoch,
                         num_classes=train_source.num_classes,
                         class_names=train_source.class_names,
                         validation=_validation_record(train_source, val_source)))

    with strategy.scope():
        model = build_model(config, train_source.num_classes)
        compile_for(model, config, steps_per_epoch)
    output_names = list(model.output) if isinstance(model.output, dict) else None
    augment_cfg = augment_config(config)

    def train_stream(input_context=None, start_epoch=0, skip_batches=0):
        return data.training_stream(
            train_source, image_size=config.image_size, batch_size=global_batch,
            steps_per_epoch=steps_per_epoch, seed=config.seed, start_epoch=start_epoch,
            skip_batches=skip_batches, output_names=output_names, augment=augment_cfg,
            normalization=config.normalization, cache=config.cache,
            input_context=input_context)

    def val_dataset(input_context=None):
        # Not sharded: every worker validates on the whole split.
        return data.build_dataset(
            val_source, training=False, image_size=config.image_size,
            batch_size=config.batch_size if input_context else global_batch,
            output_names=output_names, normalization=config.normalization, cache=config.cache)

    callbacks = [StopOnNaN(config)]
    if chief:
        callbacks += [
            keras.callbacks.CSVLogger(os.path.join(config.output_dir, "history.csv"),
                                      append=True),
            keras.callbacks.TensorBoard(os.path.join(config.output_dir, "tensorboard")),
        ]
    if config.strategy == "multi_worker" or isinstance(
            strategy, tf.distribute.MultiWorkerMirroredStrategy):
        history = custom_loop.train(
            model, strategy, train_stream, config.epochs, steps_per_epoch,
            validation_dataset_fn=val_dataset if val_source else None,
            backup_dir=backup_dir, save_freq=config.save_freq, callbacks=callbacks,
            chief=chief, verbose=config.verbose)
    else:
        history = fit_resumable(model, config, train_stream,
                                val_dataset() if val_source else None,
                                steps_per_epoch, backup_dir, callbacks)
    results = {"history": history, "train_seconds": time.time() - started,
               "output_dir": config.output_dir}
    if chief:
        csv_path = os.path.join(config.output_dir, "history.csv")
        if os.path.exists(csv_path):
            plot_history(csv_path, os.path.join(config.output_dir, "curves.png"))
        model_path = os.path.join(config.output_dir, "model.keras")
        infer = inference_model(model)
        # The model file carries what a consumer needs to use it correctly.
        contract_lib.save_model(infer, model_path, model_contract(config, train_source))
        results["model_path"] = model_path
        if val_source is not None:
            results["val"], probabilities, labels = infer_metrics(infer, val_dataset())
            write_validation_pictures(config, val_source, probabilities, labels,
                                      int(model.optimizer.iterations.numpy()))
        if config.export_dir:
            step = int(model.optimizer.iterations.numpy())
            # A re-run of a finished job trains nothing: it must not publish
            # the same weights again as a new version.
            results["export_path"] = _previous_export(config.output_dir, step,
                                                      config.export_dir)
            if results["export_path"]:
                print(f"Already exported at step {step}: {results['export_path']}")
            elif backend == "tensorflow":
                from keras_googlenet.serving.export import export_saved_model

                results["export_path"] = export_saved_model(
                    infer, config.export_dir, class_names=train_source.class_names,
                    image_size=config.image_size, normalization=config.normalization)
            else:
                # A SavedModel is a TensorFlow graph: model.keras, with its
                # contract, is exported by a child process on TensorFlow.
                log.info("Exporting %s from a process on the TensorFlow backend (this run "
                         "trained on %s).", model_path, backend)
                results["export_path"] = backends.call_under_tensorflow(
                    "keras_googlenet.serving.export", "export_model_file", model_path,
                    config.export_dir)
            results["export_step"] = step
        files.write_json(os.path.join(config.output_dir, "results.json"),
                    {k: v for k, v in results.items() if k != "history"})
    return results


def model_contract(config, train_source):
    """The preprocessing contract of a model trained with `config`."""
    return contract_lib.Contract(
        normalization=config.normalization, image_size=config.image_size,
        class_names=train_source.class_names,
        variant={"batch_norm": config.batch_norm, "kernel_5x5": config.kernel_5x5})


def infer_metrics(model, dataset):
    """Top-1 and top-5 accuracy of a single-output model over a labelled
    dataset (the evaluation module's metrics, on the 1-crop pipeline)."""
    from keras_googlenet.inference.metrics import classification_metrics
    from keras_googlenet.inference.predictors import predict_dataset

    probabilities, labels = predict_dataset(model, dataset)
    metrics = classification_metrics(probabilities, labels)
    return ({"top1": metrics["top1_accuracy"], "top5": metrics["top5_accuracy"],
             "examples": metrics["num_examples"]}, probabilities, labels)


def write_validation_pictures(config, val_source, probabilities, labels, step):
    """The confusion matrix and the most confident mistakes of the final
    validation pass, beside curves.png and in TensorBoard."""
    from keras_googlenet.inference import evaluation, plots

    images = evaluation.centre_crop_images(val_source.dataset(), config.image_size,
                                           contract_lib.DEFAULT_CROP_FRACTION)
    return plots.write_validation_pictures(
        config.output_dir, images, probabilities, labels, val_source.class_names,
        tensorboard_logdir=os.path.join(config.output_dir, "tensorboard", "validation"),
        step=step)


def fit_resumable(model, config, train_stream, val_data, steps_per_epoch, backup_dir, callbacks):
    """`model.fit` that resumes from the last checkpoint at the exact step.

    After a kill mid-epoch the checkpoint says (epoch e, batch k): one
    `fit` finishes epoch e on the batches from k on, a second runs the
    remaining epochs. Keras' `fit` writes the averaged (EMA) weights into
    the model when it returns; the first `fit` must not, or training would
    go on from the averages instead of the raw weights.
    """
    state = checkpointing.restore(model, backup_dir) or {"epoch": 0, "batch": 0}
    start_epoch, skip = state["epoch"], state["batch"]
    if skip > steps_per_epoch:
        raise ValueError(
            f"The checkpoint in {backup_dir} is at batch {skip} of epoch {start_epoch + 1}, "
            f"past --steps-per-epoch {steps_per_epoch}: it was written with a larger "
            "--steps-per-epoch; use a new --output-dir or the same value.")
    if state.get("step"):
        print(f"Resuming from {backup_dir}: epoch {start_epoch + 1}, batch {skip}.")
    if skip == steps_per_epoch:
        # Written after an epoch's last batch by earlier versions: its
        # training is complete (a fit of 0 steps would never end).
        print(f"Epoch {start_epoch + 1} was trained to its end; its validation is skipped.")
        start_epoch, skip = start_epoch + 1, 0
    use_ema = model.optimizer.use_ema
    history = {}

    def fit(start, stop, steps, skip_batches):
        backup = checkpointing.ResumableBackup(backup_dir, config.save_freq,
                                               initial_epoch=start, initial_batch=skip_batches,
                                               steps_per_epoch=steps_per_epoch)
        extra = [keras.callbacks.SwapEMAWeights()] if use_ema else []
        h = model.fit(train_stream(None, start, skip_batches), epochs=stop, initial_epoch=start,
                      steps_per_epoch=steps, validation_data=val_data,
                      callbacks=callbacks + extra + [backup], verbose=config.verbose)
        for key, values in h.history.items():
            history.setdefault(key, []).extend(values)

    if skip and start_epoch < config.epochs:
        finalize = model.optimizer.finalize_variable_values
        model.optimizer.finalize_variable_values = lambda variables: None
        try:
            fit(start_epoch, start_epoch + 1, steps_per_epoch - skip, skip)
        finally:
            model.optimizer.finalize_variable_values = finalize
        start_epoch += 1
    if start_epoch < config.epochs:
        fit(start_epoch, config.epochs, steps_per_epoch, 0)
    elif use_ema:
        # No fit wrote the averages into the model: the job was already
        # trained to the end (a re-run), or only the rest of its last epoch
        # was left (a kill there).
        model.optimizer.finalize_variable_values(model.trainable_variables)
    return history
