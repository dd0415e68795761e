"""Flags that several commands share, defined once so that the same flag means
the same thing everywhere. Nothing here imports TensorFlow: `--help` must
answer at once."""
import argparse

from keras_googlenet import checks
from keras_googlenet.models.contract import NORMALIZATIONS

NORMALIZATION_CHOICES = ("auto", *NORMALIZATIONS, "none")
DATA_HELP = ('data: "embedded" (the bundled digits), "tfds:NAME", "folder:PATH" (one '
             'sub-folder per class) or "tfrecord:GLOB"')


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
    return None if value == "none" else value
