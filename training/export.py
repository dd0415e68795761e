"""Exports a trained .keras model as a TF Serving SavedModel (+ TFLite/ONNX).

    python training/export.py --model model.keras --base-dir saved_models/googlenet
"""
import argparse

from keras_googlenet.serving import export


def main(argv=None):
    """Parses `argv` and exports; returns the written paths."""
    parser = export.add_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    return export.run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
