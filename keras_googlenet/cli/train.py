"""`googlenet train`: train GoogLeNet, then export it for TF Serving.

Without flags it is the main job: the embedded digits with the
embedded_digits recipe, then an export to saved_models/googlenet. With
--data it starts from the paper's recipe (paper_imagenet). Every flag below
overrides its recipe's value; the resolved configuration is written to
OUTPUT_DIR/config.json with the recipe's name.
"""
import argparse
import dataclasses
import functools
import json

from keras_googlenet import backends
from keras_googlenet.cli import flags
from keras_googlenet.train import config as config_lib


def _recipe_defaults():
    """{field: {recipe name: value}} for the named recipes' values."""
    defaults = {}
    for name in config_lib.RECIPES:
        for key, value in config_lib.recipe_values(name).items():
            defaults.setdefault(key, {})[name] = value
    return defaults


def _default_text(field, recipes):
    if field.name in recipes:
        values = recipes[field.name]
        if len(set(map(repr, values.values()))) == 1:
            return f"default: {flags.show(next(iter(values.values())))}"
        return "default: " + ", ".join(f"{flags.show(v)} ({k})" for k, v in values.items())
    default = config_lib.default_value(field)
    if default is None or field.name == "recipe":
        return ""
    return f"default: {flags.show(default)}"


def add_arguments(parser):
    recipes = _recipe_defaults()
    flags.add_fields(parser, config_lib.TrainConfig,
                     default_text=functools.partial(_default_text, recipes=recipes),
                     parse_rules=False)
    # --config: a hidden alias of --recipe (scripts and notes use it).
    parser.add_argument("--config", dest="recipe", default=None, help=argparse.SUPPRESS)
    parser.epilog = ("Each on/off flag FLAG has its --no-FLAG (e.g. --no-aux-classifiers, "
                     "--no-flip).")


def config_from_args(args):
    """The resolved `TrainConfig` of parsed flags (those not given are None)."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_lib.TrainConfig)}
    return config_lib.build(values)


def run(args):
    # Validate every flag before importing TensorFlow or touching data.
    config = config_from_args(args)
    # Before Keras is imported (when `googlenet` is the caller, cli.main
    # has already done it, before TensorFlow's import).
    backends.select(config.backend)
    from keras_googlenet.train import trainer

    results = trainer.run(config)
    summary = {k: v for k, v in results.items() if k != "history"}
    print(json.dumps(summary, indent=2, default=str))
    return 0
