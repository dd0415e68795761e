"""The `googlenet` console command: train, export, predict, augment, ...

Each sub-command is a library module exposing `add_arguments(parser)` and
`run(args)`; this file only wires them, and scripts under training/ call
the same functions.
"""
import argparse
import importlib
import logging
import os
import sys

# name -> (module, help)
COMMANDS = {
    "train": ("keras_googlenet.cli.train", "train GoogLeNet (default: the embedded digits), then export"),
    "finetune": ("keras_googlenet.train.finetune", "transfer learning: new classifier, frozen then unfrozen backbone"),
    "export": ("keras_googlenet.serving.export", "export a .keras model as a TF Serving SavedModel"),
    "predict": ("keras_googlenet.inference.predict", "top-5 classes of image files from a SavedModel or .keras file"),
    "evaluate": ("keras_googlenet.cli.evaluate",
                 "top-1/top-5 accuracy with 1/10/144 crops per image and model ensembles "
                 "(the paper's test protocol)"),
    "augment": ("keras_googlenet.cli.augment", "write a PNG grid of augmented versions of images"),
    "weights": ("keras_googlenet.cli.weights", "convert the published ImageNet weights to Keras"),
}


def build_parser(commands=None):
    parser = argparse.ArgumentParser(prog="googlenet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in commands or COMMANDS:
        module_name, help_text = COMMANDS[name]
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv=None, commands=None):
    """Entry point; returns the process exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Our INFO messages; only warnings from TensorFlow's chatty loggers.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("keras_googlenet").setLevel(logging.INFO)
    argv = sys.argv[1:] if argv is None else argv
    # Import only the requested command's module: importing them all would
    # pull in every optional dependency for `googlenet predict`.
    chosen = [argv[0]] if argv and argv[0] in COMMANDS else None
    args = build_parser(chosen).parse_args(argv)
    try:
        result = args._run(args)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"googlenet {args.command}: error: {e}", file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
