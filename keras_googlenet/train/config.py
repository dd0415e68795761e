"""The training configuration: every flag of `googlenet train`, defined once.

`TrainConfig` fields are the command-line flags (`--learning-rate` for
`learning_rate`), with their help as field metadata, and the keys of the
recipe files. Unset values come from a named recipe, a JSON file of
`keras_googlenet/recipes/` (`--recipe paper_imagenet`, `--recipe
embedded_digits`) or a user's JSON file; explicit flags always win. Nothing
here imports TensorFlow: `googlenet train --help` reads this module.
"""
import dataclasses
import json
import os
from typing import Optional

from keras_googlenet import checks, recipes
from keras_googlenet.backends import BACKENDS
from keras_googlenet.data.subsets import parse_classes
from keras_googlenet.models import contract
from keras_googlenet.models.architecture import SCHEDULES
from keras_googlenet.train import fields

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu", "data_parallel")
# The tf.distribute strategies: TensorFlow backend only. data_parallel is
# keras.distribution.DataParallel: JAX backend only.
TF_STRATEGIES = ("one_device", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
RECIPES = recipes.NAMES
PRESET_HELP = ("also write a KerasHub preset folder of the saved model here (import "
               "keras_googlenet.hub, then keras_hub.models.ImageClassifier.from_preset); an empty "
               "string writes none")
DATA_HELP = ('data: "embedded" (the bundled digits), "tfds:NAME", "folder:PATH" (one '
             'sub-folder per class) or "tfrecord:GLOB"')
# Without --data, `googlenet train` is the main job on the embedded digits;
# with --data, the paper's recipe is the one to start from.
RECIPE_WITHOUT_DATA = "embedded_digits"
RECIPE_WITH_DATA = "paper_imagenet"
_RECIPE_ONLY_KEYS = ("description", "base")
# What a checkpoint means: resuming it with another value of one of these
# would go on training another model (other classes or images, other
# preprocessing, architecture or optimizer state) or another step count,
# so a resume refuses a difference (`resume.check_resume`). Every other
# field may change on resume, and a change is logged.
SAME_ON_RESUME = ("data", "train_split", "classes", "examples_per_class", "holdout_fraction",
                  "holdout_seed", "label_offset", "image_size", "batch_size",
                  "normalization", "aux_classifiers", "batch_norm", "kernel_5x5", "pool4_size",
                  "momentum", "ema_momentum", "seed")


# Rules of the fields that are neither a plain count nor a fraction.
_AT_LEAST_TWO = checks.Rule("at least 2 (a classifier needs two classes)", int,
                            lambda v: v >= 2)
_DISABLED_AT_0 = checks.Rule("in [0, 1) (0 disables averaging)", float, lambda v: 0 <= v < 1)


_field = fields.field


@dataclasses.dataclass
class TrainConfig:
    """Configuration of `googlenet train`; see each field's help."""

    recipe: Optional[str] = _field(None, (
        "the recipe whose values fill every flag not given: a name (paper_imagenet, "
        "embedded_digits) or a JSON file of flag values (its \"base\" key names the recipe "
        "under it); default: embedded_digits without --data, paper_imagenet with it"))
    data: Optional[str] = _field(None, f"training {DATA_HELP}")
    data_dir: Optional[str] = _field(None, "TFDS data directory; default: TFDS's own")
    train_split: Optional[str] = _field("train", "split to train on")
    val_split: Optional[str] = _field("validation", "split to validate on")
    num_classes: Optional[int] = _field(None, (
        "TFRecord data only: the number of classes; every label is read before training "
        "and one outside [0, N) after --label-offset is refused, naming its file. "
        "Default: inferred from the largest label, with the count per label logged"),
        rule=_AT_LEAST_TWO)
    label_offset: Optional[int] = _field(0, (
        "TFRecord data only: added to each stored label, e.g. -1 for TF-slim's 1-based "
        "labels"),
        rule=checks.INTEGER)
    classes: Optional[str] = _field(None, (
        "train on these classes only, e.g. 5,6,7,8,9: relabelled 0..N-1 in this order, "
        "their names kept; validation keeps the same classes; default: every class"))
    examples_per_class: Optional[int] = _field(None, (
        "few-shot training: K training images of each class, drawn with --seed (the same "
        "seed, the same images); validation keeps all its images; default: all"),
        rule=checks.POSITIVE_INT)
    holdout_fraction: Optional[float] = _field(0.1, (
        "folder data without a <val-split> sub-folder: fraction of each class held out "
        "for validation (at least one image per class); 0 validates on the training images"),
        rule=checks.HOLDOUT_FRACTION)
    holdout_seed: Optional[int] = _field(0, (
        "seed of the hold-out draw (apart from --seed, so that runs with different seeds "
        "validate on the same images)"),
        rule=checks.SEED)
    image_size: Optional[int] = _field(None, "input side in pixels (square crops)",
        rule=checks.POSITIVE_INT)
    batch_size: Optional[int] = _field(None, "images per step and replica",
        rule=checks.POSITIVE_INT)
    epochs: Optional[int] = _field(None, "epochs to train",
        rule=checks.POSITIVE_INT)
    steps_per_epoch: Optional[int] = _field(None, "steps per epoch; default: one pass over "
                                                  "the training data",
        rule=checks.POSITIVE_INT)
    learning_rate: Optional[float] = _field(None, "peak learning rate for the global batch",
        rule=checks.POSITIVE)
    schedule: Optional[str] = _field(None, (
        "learning-rate schedule: paper (x0.96 every --decay-epochs), cosine, constant"),
        SCHEDULES)
    warmup_epochs: Optional[float] = _field(None, "linear warm-up from 0, in epochs",
        rule=checks.NON_NEGATIVE)
    decay_rate: Optional[float] = _field(0.96, "paper schedule: factor per --decay-epochs",
        rule=checks.FRACTION)
    decay_epochs: Optional[float] = _field(8.0, "paper schedule: epochs between decays",
        rule=checks.POSITIVE)
    momentum: Optional[float] = _field(0.9, "SGD momentum",
        rule=checks.PROPER_FRACTION)
    weight_decay: Optional[float] = _field(None, "L2 weight decay of the convolution and "
                                                 "dense kernels",
        rule=checks.NON_NEGATIVE)
    ema_momentum: Optional[float] = _field(None, (
        "Polyak averaging of the weights (the paper's), used for validation and export; "
        "0 turns it off"),
        rule=_DISABLED_AT_0)
    label_smoothing: Optional[float] = _field(0.0, "label smoothing of the loss",
        rule=checks.PROPER_FRACTION)
    aux_classifiers: Optional[bool] = _field(True, "train with the two auxiliary heads (the paper's)")
    aux_weight: Optional[float] = _field(0.3, "loss weight of each auxiliary head (the paper: 0.3)",
        rule=checks.NON_NEGATIVE)
    batch_norm: Optional[bool] = _field(None, "batch norm after every convolution instead "
                                              "of LRN (the TF-slim / torchvision variant)")
    dropout_rate: Optional[float] = _field(0.4, "dropout before the classifier (the paper: 0.4)",
        rule=checks.PROPER_FRACTION)
    aux_dropout_rate: Optional[float] = _field(0.7, "dropout in the auxiliary heads (the paper: 0.7)",
        rule=checks.PROPER_FRACTION)
    kernel_5x5: Optional[int] = _field(5, "kernel of the \"5x5\" branch: 5 (the paper) or 3 "
                                "(torchvision)", (3, 5))
    pool4_size: Optional[int] = _field(3, "pool4 (after inception_4e): a 3x3/2 max pool (3, the "
                                          "paper) or 2x2/2 (2, torchvision)", (2, 3))
    min_crop_area: Optional[float] = _field(None, "smallest random crop, as a fraction of "
                                                  "the image area (the paper: 0.08)",
        rule=checks.FRACTION)
    flip: Optional[bool] = _field(None, "random horizontal flips")
    photometric: Optional[bool] = _field(True, "the paper's photometric distortions")
    normalization: Optional[str] = _field(contract.DEFAULT_NORMALIZATION, (
        "preprocess_input mode the model is trained with; stored in model.keras"),
        contract.NORMALIZATIONS)
    cache: Optional[bool] = _field(True, "cache decoded images in memory")
    precision: Optional[str] = _field("auto", (
        "compute precision; auto = mixed_bfloat16 on CPUs with AVX512_BF16/AMX and TPUs, "
        "mixed_float16 on GPUs, else float32"), PRECISIONS)
    jit_compile: Optional[bool] = _field(None, (
        "XLA-compile the training step; default: on under JAX (op by op is several times "
        "slower there), off under TensorFlow and PyTorch (XLA slowed TensorFlow's CPU "
        "training step: docs/performance.md)"))
    backend: Optional[str] = _field(None, (
        "Keras backend to train on (TensorFlow stays the input pipeline); default: "
        "KERAS_BACKEND, else Keras' configured backend"), BACKENDS)
    strategy: Optional[str] = _field("auto", (
        "distribution: auto = mirrored on several GPUs (TensorFlow), else one device; "
        "one_device, mirrored, multi_worker (TF_CONFIG) and tpu are tf.distribute "
        "strategies (TensorFlow backend); data_parallel = keras.distribution.DataParallel "
        "over all local devices (JAX backend)"), STRATEGIES)
    seed: Optional[int] = _field(1, "random seed: the same seed gives the same run",
        rule=checks.SEED)
    deterministic: Optional[bool] = _field(False, "deterministic ops (slower; exact reruns)")
    init_weights: Optional[str] = _field(None, "weights to start from: a .weights.h5, "
                                               ".onnx, .pth or \"imagenet\"; default: random "
                                               "initialisation")
    output_dir: Optional[str] = _field("runs/googlenet", "directory for checkpoints, logs, curves, "
                                               "config.json, results.json and model.keras")
    save_freq: Optional[int] = _field(100, "steps between checkpoints",
        rule=checks.POSITIVE_INT)
    export_dir: Optional[str] = _field("saved_models/googlenet", (
        "TF Serving base directory to export to at the end; an empty string skips export"))
    preset_dir: Optional[str] = _field("", PRESET_HELP)
    verbose: Optional[int] = _field(1, "Keras progress output: 0 silent, 1 bar, 2 a line per epoch",
                          (0, 1, 2))

    def resolved(self):
        """A copy with every unset (None) field filled in, validated: the
        values given here win over the recipe's, the recipe's over the
        defaults."""
        recipe = self.recipe or default_recipe(self.data)
        config = fields.resolve(dataclasses.replace(self, recipe=recipe), recipe_values(recipe))
        config.validate()
        return config

    def validate(self):
        """Raises ValueError naming the first invalid value: each field's
        rule and choices (its metadata), then the rules between fields."""
        fields.validate(self)
        if self.classes is not None:
            parse_classes(self.classes)
        if self.image_size is not None and self.image_size < 65 and self.aux_classifiers:
            raise ValueError("--image-size must be at least 65 with the auxiliary classifiers "
                             "(--no-aux-classifiers allows 32). "
                             f"Received: image_size={self.image_size!r}")
        if self.image_size is not None and self.image_size < 32:
            raise ValueError(f"--image-size must be at least 32. "
                             f"Received: image_size={self.image_size!r}")
        if ((self.num_classes is not None or self.label_offset)
                and not (self.data or "").startswith("tfrecord:")):
            raise ValueError("--num-classes and --label-offset apply to TFRecord data "
                             "(--data tfrecord:GLOB); the other kinds know their classes. "
                             f"Received: data={self.data!r}")


def field_type(field):
    """The field's type (`int`, `float`, `str`, `bool`) without Optional."""
    return fields.field_type(TrainConfig, field)


def coerce(name, value):
    """Converts a config-file or flag value to the field's type, or raises."""
    return fields.coerce(TrainConfig, name, value)


def default_recipe(data):
    """The recipe used when --recipe is not given."""
    return RECIPE_WITH_DATA if data else RECIPE_WITHOUT_DATA


def recipe_file(name_or_path):
    """The JSON file of a recipe name (`recipes/NAME.json`) or path."""
    text = os.fspath(name_or_path)
    if text in RECIPES:
        return recipes.recipe_path(text)
    if not (text.endswith(".json") or os.sep in text):
        raise ValueError(f"Unknown recipe. Expected one of {RECIPES} or a path to a JSON file. "
                         f"Received: --recipe={text!r}")
    return text


def load_config_file(path):
    """The values of a recipe file: `TrainConfig` keys (dashes or underscores)
    checked and converted, plus its "base" recipe, if any."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"Config file not found. Received: --recipe={path!r}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"Config file {path!r} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"Config file {path!r} must hold a JSON object of flag names.")
    values = {}
    for key, value in raw.items():
        key = key.replace("-", "_")
        if key == "base":
            values[key] = value
        elif key not in _RECIPE_ONLY_KEYS:
            try:
                _check_json_type(key, value)
                values[key] = coerce(key, value)
            except ValueError as e:
                raise ValueError(f"Config file {path!r}: {e}") from None
    return values


# JSON types a recipe file may give each field type: its true is no epoch
# count and its 3 no path. A string is read as the flag's text would be
# ("7", "true"), by `coerce`.
_JSON_TYPES = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}


def _check_json_type(name, value):
    known = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if (name not in known or value is None or isinstance(value, str)
            or (name == "classes" and isinstance(value, list))):
        return  # coerce names an unknown key and parses text; None is "not set"
    kind = field_type(known[name])
    if not isinstance(value, _JSON_TYPES[kind]) or (kind is not bool and isinstance(value, bool)):
        expected = {bool: "true or false", int: "an integer", float: "a number",
                    str: "a string"}[kind]
        raise ValueError(f"{name} must be {expected}. Received: {name}={value!r}")


def recipe_values(name_or_path, _seen=()):
    """Every value a recipe sets, following its "base" chain (a user file
    without one builds on the default recipe for its data)."""
    path = recipe_file(name_or_path)
    if path in _seen:
        raise ValueError(f"Recipe {name_or_path!r} is its own base.")
    values = load_config_file(path)
    base = values.pop("base", None)
    if base is None and os.fspath(name_or_path) not in RECIPES:
        base = default_recipe(values.get("data"))
    if base is None:
        return values
    merged = recipe_values(base, _seen + (path,))
    merged.update(values)
    return merged


def build(flags, recipe=None):
    """The resolved `TrainConfig` of explicit flag values over a recipe."""
    values = {k: v for k, v in flags.items() if v is not None}
    if recipe is not None:
        values["recipe"] = os.fspath(recipe)
    return TrainConfig(**values).resolved()


field_choices = fields.field_choices
default_value = fields.default_value
