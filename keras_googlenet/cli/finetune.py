"""`googlenet finetune`: a trained GoogLeNet as the backbone of a new classifier.

Modes: linear-probe (a logistic regression on the frozen backbone's pooled
features), head (a new classifier trained on the frozen backbone), full
(the head first, fitted as by linear-probe, then everything at a low
learning rate; the default).
The input size and normalisation are the model's own (its contract).
Writes what `googlenet train` writes to --output-dir: config.json,
history.csv, curves.png, results.json (validation top-1/top-5) and
model.keras, which carries its preprocessing and the new class names.

    googlenet finetune --model runs/googlenet/model.keras --data folder:shapes/
"""
import dataclasses
import json

from keras_googlenet.cli import flags
from keras_googlenet.train.finetune_config import FinetuneConfig


def add_arguments(parser):
    flags.add_fields(parser, FinetuneConfig)


def config_from_args(args):
    """The resolved `FinetuneConfig` of parsed flags (those not given are None)."""
    return FinetuneConfig(**{f.name: getattr(args, f.name)
                             for f in dataclasses.fields(FinetuneConfig)}).resolved()


def run(args):
    config = config_from_args(args)  # every value refused before TensorFlow loads
    from keras_googlenet.train import finetune

    results = finetune.run(**dataclasses.asdict(config))
    print(json.dumps(results, indent=2, default=str))
    return 0
