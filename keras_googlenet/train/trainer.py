"""The main job: train GoogLeNet with the paper's recipe, then export.

`run(config)` does everything `googlenet train` does, in three steps:
`prepare` (strategy, data, the resume check, config.json, the compiled
model), `fit` (resumable checkpoints, progress, TensorBoard, history.csv; a
custom loop under MultiWorkerMirroredStrategy) and `finalize` (the files of
`outputs.finalize`, shared with fine-tuning, and the validation pictures).
"""
import dataclasses
import os
import time

import keras
import tensorflow as tf

from keras_googlenet import files
from keras_googlenet.data import augment, sources
from keras_googlenet.data import pipeline as data
from keras_googlenet.models import contract as contract_lib
from keras_googlenet.models import objective, schedules
from keras_googlenet.models.googlenet import GoogLeNet, inference_model
from keras_googlenet.train import checkpointing, custom_loop, distribute, outputs
from keras_googlenet.train.callbacks import StopOnNaN
from keras_googlenet.train.resume import check_resume, run_settings


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
        pool4_size=config.pool4_size,
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


class Job:
    """A prepared run: its strategy, data, compiled model and callbacks."""

    def __init__(self, config):
        self.config = config
        # The strategy first: MultiWorkerMirroredStrategy must configure
        # collective ops before any other TensorFlow call.
        self.strategy = distribute.get_strategy(config.strategy)
        keras.utils.set_random_seed(config.seed)
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        self.policy = distribute.set_precision(config.precision)
        self.chief = distribute.is_chief(self.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        self.global_batch = config.batch_size * self.replicas
        self.train_source, self.val_source = _sources(config)
        self.steps_per_epoch = _steps(self.train_source, config, self.global_batch)
        self.backup_dir = os.path.join(config.output_dir, "backup")
        self.model = self.output_names = None

    def build(self):
        with self.strategy.scope():
            self.model = build_model(self.config, self.train_source.num_classes)
            compile_for(self.model, self.config, self.steps_per_epoch)
        output = self.model.output
        self.output_names = list(output) if isinstance(output, dict) else None

    def train_stream(self, input_context=None, start_epoch=0, skip_batches=0):
        config = self.config
        return data.training_stream(
            self.train_source, image_size=config.image_size, batch_size=self.global_batch,
            steps_per_epoch=self.steps_per_epoch, seed=config.seed, start_epoch=start_epoch,
            skip_batches=skip_batches, output_names=self.output_names,
            augment=augment_config(config), normalization=config.normalization,
            cache=config.cache, input_context=input_context)

    def val_dataset(self, input_context=None):
        """The validation split, not sharded: every worker validates on all of it."""
        config = self.config
        return data.build_dataset(
            self.val_source, training=False, image_size=config.image_size,
            batch_size=config.batch_size if input_context else self.global_batch,
            output_names=self.output_names, normalization=config.normalization,
            cache=config.cache)

    def callbacks(self):
        callbacks = [StopOnNaN(self.config)]
        if self.chief:
            callbacks += [
                keras.callbacks.CSVLogger(os.path.join(self.config.output_dir, "history.csv"),
                                          append=True),
                keras.callbacks.TensorBoard(os.path.join(self.config.output_dir,
                                                         "tensorboard")),
            ]
        return callbacks


def run(config):
    """Trains (resuming from `output_dir/backup` when a checkpoint is there)
    and exports. Returns a dict of results (history, export path, times)."""
    config = config.resolved()
    started = time.time()
    job = prepare(config)
    history = fit(job)
    results = {"history": history, "train_seconds": time.time() - started,
               "output_dir": config.output_dir}
    if job.chief:
        finalize(job, results)
    return results


def prepare(config):
    """The `Job` of a resolved config: refuses a resume of another model
    before anything is written, then records the run (backup state,
    config.json) and builds the compiled model."""
    backend = keras.backend.backend()
    if config.backend is not None and config.backend != backend:
        raise ValueError(
            f"--backend {config.backend} was asked for, but Keras is already imported with "
            f"the {backend} backend; set KERAS_BACKEND={config.backend} before starting "
            "Python (googlenet train --backend does).")
    config = dataclasses.replace(config, backend=backend)
    job = Job(config)
    settings = run_settings(config, job.train_source, job.replicas, job.steps_per_epoch)
    # Before writing anything: a refused resume leaves the run as it was.
    resuming = check_resume(job.backup_dir, settings) is not None
    os.makedirs(config.output_dir, exist_ok=True)
    if job.chief and not resuming:
        checkpointing.start(job.backup_dir, settings)
    if job.chief:
        files.write_json(os.path.join(config.output_dir, "config.json"), dict(
            dataclasses.asdict(config), policy=job.policy, replicas=job.replicas,
            global_batch=job.global_batch, steps_per_epoch=job.steps_per_epoch,
            num_classes=job.train_source.num_classes, class_names=job.train_source.class_names,
            validation=_validation_record(job.train_source, job.val_source)))
    job.build()
    return job


def fit(job):
    """Trains the job's model to its last epoch; the history dict."""
    config = job.config
    if config.strategy == "multi_worker" or isinstance(
            job.strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return custom_loop.train(
            job.model, job.strategy, job.train_stream, config.epochs, job.steps_per_epoch,
            validation_dataset_fn=job.val_dataset if job.val_source else None,
            backup_dir=job.backup_dir, save_freq=config.save_freq, callbacks=job.callbacks(),
            chief=job.chief, verbose=config.verbose)
    return fit_resumable(job.model, config, job.train_stream,
                         job.val_dataset() if job.val_source else None,
                         job.steps_per_epoch, job.backup_dir, job.callbacks())


def finalize(job, results):
    """The chief's files of a trained job (`outputs.finalize`)."""
    config, model = job.config, job.model
    step = int(model.optimizer.iterations.numpy())

    def pictures(probabilities, labels):
        write_validation_pictures(config, job.val_source, probabilities, labels, step)

    return outputs.finalize(
        inference_model(model), config.output_dir, model_contract(config, job.train_source),
        results, val_data=job.val_dataset() if job.val_source is not None else None,
        export_dir=config.export_dir, step=step, pictures=pictures,
        preset_dir=config.preset_dir)


def model_contract(config, train_source):
    """The preprocessing contract of a model trained with `config`."""
    return contract_lib.Contract(
        normalization=config.normalization, image_size=config.image_size,
        class_names=train_source.class_names,
        variant={"batch_norm": config.batch_norm, "kernel_5x5": config.kernel_5x5,
                 "pool4_size": config.pool4_size})


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
        # A checkpoint at an epoch's last batch: its training is complete
        # (a fit of 0 steps would never end).
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
