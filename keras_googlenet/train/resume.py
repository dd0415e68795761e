"""What a resume compares: the settings a checkpoint was written with
against the run's (`config.SAME_ON_RESUME` and what the data resolved to).
"""
import dataclasses
import logging

from keras_googlenet.train import checkpointing
from keras_googlenet.train import config as config_lib

log = logging.getLogger(__name__)


# Settings derived from the config and the data, compared like
# `config.SAME_ON_RESUME`; named by what they are, not by a flag.
_SETTING_NAMES = {"num_classes": "the number of classes of the training data",
                  "class_names": "the class names of the training data",
                  "replicas": "the number of replicas"}


def run_settings(config, train_source, replicas, steps_per_epoch):
    """The settings recorded with the checkpoints (see `check_resume`): the
    whole resolved config, and what it resolved to in the data."""
    settings = dataclasses.asdict(config)
    settings.update(steps_per_epoch=steps_per_epoch, num_classes=train_source.num_classes,
                    class_names=list(train_source.class_names or []), replicas=replicas)
    return settings


def _setting_text(value):
    return "not given" if value is None else str(value)


def check_resume(backup_dir, settings):
    """The state of the checkpoint in `backup_dir` (None when there is
    none), after checking that it was written with `settings`: any
    difference in `config.SAME_ON_RESUME` or the derived settings is
    refused, other differences (a longer --epochs, another
    --learning-rate) are logged.

    Raises:
        ValueError: naming each setting that differs (and see
            `checkpointing.load_state`).
    """
    state = checkpointing.load_state(backup_dir)
    if state is None or state["weights"] is None:
        return None
    # A setting the checkpoint does not record is not compared.
    recorded = state.get("run") or {}
    compared = set(config_lib.SAME_ON_RESUME) | set(_SETTING_NAMES) | {"steps_per_epoch"}
    differs = [name for name, value in settings.items()
               if name in recorded and recorded[name] != value]
    refused = [
        f"{_SETTING_NAMES.get(name, '--' + name.replace('_', '-'))} "
        f"{'are' if name == 'class_names' else 'is'} "
        f"{_setting_text(settings[name])} but the checkpoint in {backup_dir} was written "
        + (f"with {recorded[name]}" if recorded[name] is not None else "without it")
        for name in differs if name in compared]
    if refused:
        plural = "s" if len(refused) > 1 else ""
        raise ValueError("; ".join(refused)
                         + f"; use a new --output-dir or the same value{plural}.")
    changed = [f"--{name.replace('_', '-')} {_setting_text(settings[name])} (was "
               f"{_setting_text(recorded[name])})" for name in differs]
    if changed:
        log.info("Resuming %s with other values than the run that wrote it: %s.",
                 backup_dir, ", ".join(changed))
    return state
