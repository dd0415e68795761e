"""Flags that several commands share, defined once so that the same flag means
the same thing everywhere. Nothing here imports TensorFlow: `--help` must
answer at once."""
import argparse
import math

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


# argparse `type=` functions of the numeric flags. Each refuses what its
# flag cannot mean with "must be ... Received: 'TEXT'", which argparse
# prints as "argument --flag: must be ...". The floats refuse NaN and the
# infinities: inf passes `x > 0`, nan fails every comparison, and either
# only shows up later as a diverged run or a NaN model.
SEED_MAX = 2 ** 32 - 1  # keras.utils.set_random_seed's range


def _refuse(expected, text):
    raise argparse.ArgumentTypeError(f"must be {expected}. Received: {text!r}")


def _int(text, expected, low=None, high=None):
    try:
        value = int(text)
    except (TypeError, ValueError):
        _refuse(expected, text)
    if (low is not None and value < low) or (high is not None and value > high):
        _refuse(expected, text)
    return value


def _float(text, expected, accept):
    try:
        value = float(text)
    except (TypeError, ValueError):
        _refuse(expected, text)
    if not (math.isfinite(value) and accept(value)):
        _refuse(expected, text)
    return value


def integer(text):
    """Any integer (a choice among integers, e.g. --verbose)."""
    return _int(text, "an integer")


def positive_int(text):
    """An integer >= 1: counts of epochs, steps, images, classes shown."""
    return _int(text, "a positive integer", low=1)


def non_negative_int(text):
    """An integer >= 0 (0 skips what it counts, e.g. --head-epochs 0)."""
    return _int(text, "an integer >= 0", low=0)


def seed(text):
    """A random seed: an integer that keras.utils.set_random_seed takes."""
    return _int(text, "an integer in [0, 2**32 - 1]", low=0, high=SEED_MAX)


def finite_float(text):
    """Any finite number."""
    return _float(text, "a finite number", lambda v: True)


def positive_float(text):
    """A finite number > 0: learning rates, regularisation strengths."""
    return _float(text, "a positive number", lambda v: v > 0)


def non_negative_float(text):
    """A finite number >= 0."""
    return _float(text, "a number >= 0", lambda v: v >= 0)


def fraction(text):
    """A fraction in (0, 1]: crop areas and fractions (0 is nothing left)."""
    return _float(text, "in (0, 1]", lambda v: 0 < v <= 1)


def proper_fraction(text):
    """A fraction in [0, 1): held-out shares (1 would leave nothing to train on)."""
    return _float(text, "in [0, 1)", lambda v: 0 <= v < 1)


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
