"""The `googlenet` console command: train, export, predict, augment, ...

Each sub-command is a library module exposing `add_arguments(parser)` and
`run(args)`; this file only wires them, and scripts under training/ call
the same functions.

An error the user can fix (a bad flag, a path that cannot be read or
written, a diverged run) prints one line, `googlenet CMD: error: ...`, and
exits with 2; `googlenet --verbose CMD` or KERAS_GOOGLENET_VERBOSE=1 also
prints the traceback.
"""
import argparse
import errno
import importlib
import importlib.util
import logging
import os
import sys
import tempfile
import traceback

from keras_googlenet import backends
from keras_googlenet.cli import flags

# name -> (module, help)
COMMANDS = {
    "train": ("keras_googlenet.cli.train", "train GoogLeNet (default: the embedded digits), then export"),
    "finetune": ("keras_googlenet.cli.finetune", "transfer learning: new classifier, frozen then unfrozen backbone"),
    "export": ("keras_googlenet.cli.export", "export a .keras model as a TF Serving SavedModel"),
    "predict": ("keras_googlenet.cli.predict", "top-5 classes of image files from a SavedModel or .keras file"),
    "evaluate": ("keras_googlenet.cli.evaluate",
                 "top-1/top-5 accuracy with 1/10/144 crops per image and model ensembles "
                 "(the paper's test protocol)"),
    "augment": ("keras_googlenet.cli.augment", "write a PNG grid of augmented versions of images"),
    "explain": ("keras_googlenet.cli.explain",
                "Grad-CAM overlays of image files for their top-k classes"),
    "weights": ("keras_googlenet.cli.weights", "convert the published ImageNet weights to Keras"),
}
# What TensorFlow alone does (a SavedModel, Grad-CAM's GradientTape): under
# another Keras backend these commands rerun themselves on TensorFlow.
TENSORFLOW_COMMANDS = ("export", "explain")
# Set to 1 for the traceback of an error, as `googlenet --verbose CMD`.
VERBOSE_ENV = "KERAS_GOOGLENET_VERBOSE"


def build_parser(commands=None):
    parser = argparse.ArgumentParser(
        prog="googlenet", formatter_class=flags.HelpFormatter, allow_abbrev=False,
        description="GoogLeNet (Inception v1, Szegedy et al. 2015) for Keras 3: train, "
                    "fine-tune, evaluate, export and serve. `googlenet CMD --help` explains "
                    "each command's flags.")
    # Its own dest: `train` and `evaluate` have a --verbose level of their own.
    parser.add_argument("--verbose", dest="show_traceback", action="store_true",
                        help="show the Python traceback of an error and TensorFlow's start-up "
                             f"log (or set {VERBOSE_ENV}=1); give it before the command")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in commands or COMMANDS:
        module_name, help_text = COMMANDS[name]
        module = importlib.import_module(module_name)
        # No abbreviations: --output must not silently mean --output-dir.
        command = sub.add_parser(name, help=help_text, description=module.__doc__ or help_text,
                                 formatter_class=flags.HelpFormatter, allow_abbrev=False)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def _user_errors():
    """Errors the user can act on from their message alone."""
    errors = [ValueError, OSError]  # OSError: permissions, files in the way, ...
    # Only training raises divergence, and it has then imported the module.
    callbacks = sys.modules.get("keras_googlenet.train.callbacks")
    if callbacks is not None:
        errors.append(callbacks.TrainingDiverged)
    return tuple(errors)


def _blocking_file(path):
    """The existing non-directory at or above `path`, or None."""
    path = os.path.abspath(path)
    while not os.path.lexists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    return None if os.path.isdir(path) else path


def _error_message(error):
    """One line for `error`: an OSError's reason and path (and the file in
    the way of a directory), without the errno prefix."""
    text = str(error)
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        text = f"{error.strerror}: {error.filename!r}"
        if error.filename2 is not None:
            text += f" -> {error.filename2!r}"
        if error.errno in (errno.ENOTDIR, errno.EEXIST) and isinstance(error.filename, str):
            blocking = _blocking_file(error.filename)
            if blocking == os.path.abspath(error.filename):
                text += " (a file, not a directory)"
            elif blocking is not None:
                text += f" ({blocking!r} is a file, not a directory)"
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _gpu_present():
    return any(os.path.exists(p) for p in ("/dev/nvidia0", "/dev/nvidiactl", "/dev/dxg"))


def quiet_tensorflow_start(verbose=False):
    """Imports Keras, then TensorFlow (the order backends.py explains), with
    TensorFlow's C++ start-up lines hidden on a machine without a GPU (the
    oneDNN notice, "Could not find cuda drivers", the cuInit error), unless
    `verbose` or the user set TF_CPP_MIN_LOG_LEVEL.

    Some of those lines are printed before absl's logging reads
    TF_CPP_MIN_LOG_LEVEL, so stderr itself is set aside during the import;
    if the import fails, what it printed is shown.
    """
    if (verbose or "TF_CPP_MIN_LOG_LEVEL" in os.environ or _gpu_present()
            or importlib.util.find_spec("tensorflow") is None
            or "tensorflow" in sys.modules):
        import keras  # noqa: F401  (before TensorFlow, without hiding anything)

        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _verbose_requested(args):
    return args.show_traceback or os.environ.get(VERBOSE_ENV, "").lower() in ("1", "true", "yes")


def main(argv=None, commands=None):
    """Entry point; returns the process exit code."""
    # Our INFO messages; only warnings from TensorFlow's chatty loggers.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("keras_googlenet").setLevel(logging.INFO)
    argv = sys.argv[1:] if argv is None else argv
    # Import only the requested command's module: importing them all would
    # pull in every optional dependency for `googlenet predict`. The only
    # option before the command (--verbose) takes no value.
    command = next((a for a in argv if not a.startswith("-")), None)
    chosen = [command] if command in COMMANDS else None
    args = build_parser(chosen).parse_args(argv)  # --help exits here, before TensorFlow
    verbose = _verbose_requested(args)
    if args.command in TENSORFLOW_COMMANDS and backends.configured() != "tensorflow":
        logging.getLogger("keras_googlenet").info(
            "googlenet %s runs on the TensorFlow backend (Keras is configured for %s).",
            args.command, backends.configured())
        return backends.run_command_under_tensorflow(argv)
    try:
        # Before anything imports Keras (TensorFlow's import does): Keras
        # reads its backend once.
        backends.select(getattr(args, "backend", None))
        quiet_tensorflow_start(verbose)
        result = args._run(args)
    except _user_errors() as e:  # evaluated when raised: after the command's imports
        if verbose:
            traceback.print_exc()
        print(f"googlenet {args.command}: error: {_error_message(e)}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
