"""Flags that several commands share, defined once so that the same flag means
the same thing everywhere. Nothing here imports TensorFlow: `--help` must
answer at once."""
import argparse
import dataclasses

from keras_googlenet import checks
from keras_googlenet.models.contract import NORMALIZATION_CHOICES, requested_normalization
from keras_googlenet.train import fields
from keras_googlenet.train.config import DATA_HELP


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows each flag's default unless its help already says it (or it has none)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if ("default" in text or action.default in (None, False, argparse.SUPPRESS)
                or action.option_strings == [] or action.nargs == 0):
            return text
        return f"{text} (default: %(default)s)"


def flag_type(rule):
    """The argparse `type=` of a `checks` rule: argparse prints its error as
    "argument --flag: must be a positive integer. Received: 'inf'"."""
    def parse(text):
        try:
            return checks.parse(rule, text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = rule.expected  # argparse names a type in some messages
    parse.__doc__ = f"A flag's text as {rule.kind.__name__}, {rule.expected}" + (
        " (and finite)" if rule.kind is float else "") + "."
    return parse


# The numeric flags' types, one per rule of keras_googlenet.checks.
integer = flag_type(checks.INTEGER)
positive_int = flag_type(checks.POSITIVE_INT)
non_negative_int = flag_type(checks.NON_NEGATIVE_INT)
seed = flag_type(checks.SEED)
finite_float = flag_type(checks.FINITE)
positive_float = flag_type(checks.POSITIVE)
non_negative_float = flag_type(checks.NON_NEGATIVE)
fraction = flag_type(checks.FRACTION)
proper_fraction = flag_type(checks.PROPER_FRACTION)


def add_fields(parser, config_class, default_text=None, parse_rules=True):
    """One flag per field of a `train.fields` dataclass (`--learning-rate`
    for `learning_rate`), each with its help, choices, rule and a "default:"
    that `default_text(field)` may say otherwise (a recipe's value). Every
    flag's value is None unless given; on/off fields get a --no-FLAG.

    `parse_rules`: argparse checks each value against its field's rule
    ("argument --epochs: must be ..."). `googlenet train` turns it off: its
    values may also come from a recipe file, so the config's `validate`
    checks them once, after the layers are merged, with one message for a
    flag and a file alike."""
    for field in dataclasses.fields(config_class):
        name = field.name.replace("_", "-")
        help_text = field.metadata["help"]
        default = default_text(field) if default_text else _default_text(field)
        if default and "default" not in help_text.lower():
            help_text = f"{help_text}; {default}"
        if fields.field_type(config_class, field) is bool:
            group = parser.add_mutually_exclusive_group()
            group.add_argument(f"--{name}", dest=field.name, action="store_const", const=True,
                               default=None, help=help_text)
            group.add_argument(f"--no-{name}", dest=field.name, action="store_const",
                               const=False, default=None, help=argparse.SUPPRESS)
            continue
        choices = fields.field_choices(field)
        parser.add_argument(f"--{name}", dest=field.name, default=None,
                            type=_field_parser(config_class, field, parse_rules),
                            choices=choices,
                            required=field.metadata["required"], help=help_text,
                            metavar="{" + ",".join(map(str, choices)) + "}" if choices else None)
    parser.epilog = "Each on/off flag FLAG has its --no-FLAG (e.g. --no-flip)."


def show(value):
    """A default as --help shows it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return '""' if value == "" else str(value)


def _default_text(field):
    default = fields.default_value(field)
    return "" if default is None else f"default: {show(default)}"


def _field_parser(config_class, field, parse_rules=True):
    """A numeric field's text parsed and checked by its rule (a number
    without one by "an integer" / "a finite number"), or only converted to
    its type (`parse_rules=False`); text stays text."""
    kind = fields.field_type(config_class, field)
    if kind is str:
        return None  # argparse's own
    if not parse_rules:
        def convert(text):
            try:
                return fields.coerce(config_class, field.name, text)
            except ValueError as e:
                raise argparse.ArgumentTypeError(str(e)) from None

        return convert
    rule = field.metadata["rule"] or {int: checks.INTEGER, float: checks.FINITE}.get(kind)
    return flag_type(rule) if rule is not None else None


def add_model(parser, help_text, required=True):
    parser.add_argument("--model", required=required, help=help_text)


def add_data(parser, default="embedded"):
    parser.add_argument("--data", default=default, help=f"{DATA_HELP}; default: {default}")
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data directory (default: TFDS's, ~/tensorflow_datasets)")


def add_image_size(parser, default_text="the model's own (its contract or input shape)"):
    parser.add_argument("--image-size", type=positive_int, default=None,
                        help=f"input side in pixels; default: {default_text}")


def add_normalization(parser):
    parser.add_argument(
        "--normalization", default="auto", choices=NORMALIZATION_CHOICES,
        help="preprocess_input mode of the images: auto = what the model file says "
             "(the mode it was trained with), none = RGB in [0, 255] as is; default: auto")


def add_class_names(parser):
    parser.add_argument("--class-names", default=None,
                        help="text file with one class name per line; default: the names "
                             "the model carries (else ImageNet's for 1000 classes, else 0..N-1)")


def add_seed(parser, default=1):
    parser.add_argument("--seed", type=seed, default=default,
                        help=f"random seed: the same seed gives the same run; default: {default}")


def add_batch_size(parser, default=32):
    parser.add_argument("--batch-size", type=positive_int, default=default,
                        help=f"images per step; default: {default}")


def add_output_dir(parser, default):
    parser.add_argument("--output-dir", default=default,
                        help=f"directory for everything the command writes; default: {default}")


def normalization_arg(value):
    """The loader's spelling of a --normalization value."""
    return requested_normalization(value)
