"""Prints the top classes of image files (SavedModel, TF Serving dir or .keras).

    python training/predict.py cat.jpg --model saved_models/googlenet
"""
import argparse

from keras_googlenet.inference import predict


def main(argv=None):
    """Parses `argv` and predicts; returns the results."""
    parser = predict.add_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    return predict.run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
