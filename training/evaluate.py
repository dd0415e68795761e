"""Evaluates models with 1/10/144 crops per image and ensembles (the paper's protocol).

    python training/evaluate.py --model /tmp/run2/model.keras --crops 1 10 144
"""
import sys

from keras_googlenet.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate"] + sys.argv[1:]))
