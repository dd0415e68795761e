"""The training configuration: every flag of `googlenet train`, defined once.

`TrainConfig` fields are the command-line flags (`--learning-rate` for
`learning_rate`) and the keys of the optional JSON config file. Defaults
depend on the data: the paper's recipe for real datasets, a short recipe for
the embedded digits (the main job). Explicit values always win.
"""
import argparse
import dataclasses
import functools
import json
import math
import typing
from typing import Optional

from keras_googlenet.train import distribute
from keras_googlenet.data import preprocessing
from keras_googlenet.train import recipe

# The paper's recipe where the paper gives it (SGD momentum 0.9, x0.96 every
# 8 epochs, Polyak averaging, aux weight 0.3, dropout 0.4/0.7); the rest from
# Caffe's bvlc_googlenet solver (lr 0.01 at batch 32, weight decay 2e-4,
# about 60 epochs).
PAPER_DEFAULTS = dict(
    image_size=224, batch_size=32, epochs=60, learning_rate=0.01, schedule="paper",
    warmup_epochs=0.0, batch_norm=False, min_crop_area=0.08, flip=True,
    weight_decay=2e-4, ema_momentum=0.9999,
)
# The embedded digits (1437 training images of 32x32): a small resolution,
# batch norm and a short averaging horizon reach >90% in minutes on 2 CPU
# cores. Deviations from the paper, each for a reason:
# - batch_norm: the paper variant learns slowly from scratch (65% after 8
#   epochs here), the BN variant reaches >90% in a few.
# - flip off: a mirrored digit is another glyph.
# - min_crop_area 0.25: an 8% crop of a 32x32 digit is a blob.
EMBEDDED_DEFAULTS = dict(
    image_size=80, batch_size=32, epochs=12, learning_rate=0.02, schedule="cosine",
    warmup_epochs=1.0, batch_norm=True, min_crop_area=0.25, flip=False,
    weight_decay=5e-5, ema_momentum=0.99,
)


@dataclasses.dataclass
class TrainConfig:
    """Configuration of `googlenet train` (see README for each flag)."""

    data: str = "embedded"
    data_dir: Optional[str] = None
    train_split: str = "train"
    val_split: Optional[str] = "validation"
    num_classes: Optional[int] = dataclasses.field(default=None, metadata={"help": (
        "TFRecord data only: the number of classes; every label is read before training "
        "and one outside [0, N) after --label-offset is refused, naming its file. "
        "Default: inferred from the largest label, with the count per label logged")})
    label_offset: int = dataclasses.field(default=0, metadata={"help": (
        "TFRecord data only: added to each stored label, e.g. -1 for TF-slim's 1-based "
        "labels. Default: 0")})
    holdout_fraction: float = dataclasses.field(default=0.1, metadata={"help": (
        "Folder data without a <val-split> sub-folder: fraction of each class held out "
        "for validation (at least one image per class); 0 validates on the training "
        "images. Default: 0.1")})
    holdout_seed: int = dataclasses.field(default=0, metadata={"help": (
        "Seed of the hold-out draw (kept apart from --seed so that runs with different "
        "seeds validate on the same images). Default: 0")})
    image_size: Optional[int] = None
    batch_size: Optional[int] = None  # per replica; global = x replicas
    epochs: Optional[int] = None
    steps_per_epoch: Optional[int] = None
    learning_rate: Optional[float] = None  # for the global batch
    schedule: Optional[str] = None
    warmup_epochs: Optional[float] = None
    decay_rate: float = 0.96
    decay_epochs: float = 8.0
    momentum: float = 0.9
    weight_decay: Optional[float] = None
    ema_momentum: Optional[float] = None  # 0 disables Polyak averaging
    label_smoothing: float = 0.0
    aux_classifiers: bool = True
    aux_weight: float = 0.3
    batch_norm: Optional[bool] = None
    dropout_rate: float = 0.4
    aux_dropout_rate: float = 0.7
    kernel_5x5: int = 5
    min_crop_area: Optional[float] = None
    flip: Optional[bool] = None
    photometric: bool = True
    normalization: str = preprocessing.DEFAULT_MODE
    cache: bool = True
    precision: str = "auto"
    jit_compile: bool = False
    strategy: str = "auto"
    seed: int = 1
    deterministic: bool = False
    init_weights: Optional[str] = None
    output_dir: str = "runs/googlenet"
    save_freq: int = 100
    export_dir: Optional[str] = "saved_models/googlenet"
    verbose: int = 1

    def resolved(self):
        """A copy with every None default filled in from the data's recipe."""
        defaults = EMBEDDED_DEFAULTS if self.data == "embedded" else PAPER_DEFAULTS
        values = dataclasses.asdict(self)
        for key, value in defaults.items():
            if values[key] is None:
                values[key] = value
        config = TrainConfig(**values)
        config.validate()
        return config

    def validate(self):
        """Raises ValueError naming the first invalid value."""
        def bad(name, expected):
            raise ValueError(f"--{name.replace('_', '-')} must be {expected}. "
                             f"Received: {name}={getattr(self, name)!r}")

        # inf and nan pass every comparison below (inf > 0, nan < 0 is
        # false) and only show up as a diverged run.
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if _field_type(field) is float and value is not None and not math.isfinite(value):
                bad(field.name, "a finite number")
        for name in ("image_size", "batch_size", "epochs", "save_freq"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                bad(name, "a positive integer")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            bad("steps_per_epoch", "a positive integer")
        if self.image_size is not None and self.image_size < 65 and self.aux_classifiers:
            bad("image_size", "at least 65 with the auxiliary classifiers (--no-aux-classifiers allows 32)")
        if self.image_size is not None and self.image_size < 32:
            bad("image_size", "at least 32")
        if self.learning_rate is not None and not self.learning_rate > 0:
            bad("learning_rate", "positive")
        if self.schedule is not None and self.schedule not in recipe.SCHEDULES:
            bad("schedule", f"one of {recipe.SCHEDULES}")
        if self.warmup_epochs is not None and self.warmup_epochs < 0:
            bad("warmup_epochs", ">= 0")
        if not 0 < self.decay_rate <= 1:
            bad("decay_rate", "in (0, 1]")
        if not self.decay_epochs > 0:
            bad("decay_epochs", "positive")
        if not 0 <= self.momentum < 1:
            bad("momentum", "in [0, 1)")
        if self.weight_decay is not None and self.weight_decay < 0:
            bad("weight_decay", ">= 0")
        if self.ema_momentum is not None and not 0 <= self.ema_momentum < 1:
            bad("ema_momentum", "in [0, 1) (0 disables averaging)")
        if not 0 <= self.label_smoothing < 1:
            bad("label_smoothing", "in [0, 1)")
        if self.aux_weight < 0:
            bad("aux_weight", ">= 0")
        for name in ("dropout_rate", "aux_dropout_rate"):
            if not 0 <= getattr(self, name) < 1:
                bad(name, "in [0, 1)")
        if self.kernel_5x5 not in (3, 5):
            bad("kernel_5x5", "5 (the paper) or 3 (torchvision)")
        if self.min_crop_area is not None and not 0 < self.min_crop_area <= 1:
            bad("min_crop_area", "in (0, 1]")
        if self.normalization not in preprocessing.MODES:
            bad("normalization", f"one of {preprocessing.MODES}")
        if self.precision not in distribute.PRECISIONS:
            bad("precision", f"one of {distribute.PRECISIONS}")
        if self.strategy not in distribute.STRATEGIES:
            bad("strategy", f"one of {distribute.STRATEGIES}")
        if self.verbose not in (0, 1, 2):
            bad("verbose", "0, 1 or 2")
        if self.num_classes is not None and self.num_classes < 2:
            bad("num_classes", "at least 2 (a classifier needs two classes)")
        if ((self.num_classes is not None or self.label_offset)
                and not self.data.startswith("tfrecord:")):
            raise ValueError("--num-classes and --label-offset apply to TFRecord data "
                             "(--data tfrecord:GLOB); the other kinds know their classes. "
                             f"Received: data={self.data!r}")
        if not 0 <= self.holdout_fraction < 1:
            bad("holdout_fraction", "in [0, 1) (0 validates on the training images)")


def _field_type(field):
    hint = typing.get_type_hints(TrainConfig)[field.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def coerce(name, value):
    """Converts a config-file or flag value to the field's type, or raises."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if name not in fields:
        raise ValueError(f"Unknown configuration key {name!r}. Known keys: {sorted(fields)}")
    if value is None:
        return None
    kind = _field_type(fields[name])
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ValueError(f"{name} must be true or false. Received: {name}={value!r}")
    try:
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
        return kind(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be of type {kind.__name__}. Received: {name}={value!r}"
        ) from None


def load_config_file(path):
    """Reads a JSON config file whose keys are `TrainConfig` fields."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = json.load(f)
    except FileNotFoundError:
        raise ValueError(f"Config file not found. Received: --config={path!r}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"Config file {path!r} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"Config file {path!r} must hold a JSON object of flag names.")
    return {k.replace("-", "_"): coerce(k.replace("-", "_"), v) for k, v in raw.items()}


def add_arguments(parser):
    """Adds one flag per `TrainConfig` field (and --config) to `parser`."""
    parser.add_argument("--config", help="JSON file of flag values; flags given here win.")
    for field in dataclasses.fields(TrainConfig):
        flag = "--" + field.name.replace("_", "-")
        kind = _field_type(field)
        if kind is bool:
            group = parser.add_mutually_exclusive_group()
            group.add_argument(flag, dest=field.name, action="store_const", const=True,
                               default=None)
            group.add_argument("--no-" + field.name.replace("_", "-"), dest=field.name,
                               action="store_const", const=False, default=None)
        else:
            parser.add_argument(flag, dest=field.name, default=None,
                                type=functools.partial(_flag_value, field.name),
                                help=field.metadata.get("help", f"default: {field.default!r}"))


def _flag_value(name, value):
    try:
        return coerce(name, value)
    except ValueError as e:
        # argparse prints an ArgumentTypeError's message as it is.
        raise argparse.ArgumentTypeError(str(e)) from None


def from_args(args):
    """The `TrainConfig` of parsed flags over an optional config file."""
    values = load_config_file(args.config) if getattr(args, "config", None) else {}
    for field in dataclasses.fields(TrainConfig):
        value = getattr(args, field.name, None)
        if value is not None:
            values[field.name] = value
    return TrainConfig(**values).resolved()
