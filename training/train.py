"""Train GoogLeNet (same flags as `googlenet train`; see README)."""
import sys

from keras_googlenet.cli import main

if __name__ == "__main__":
    sys.exit(main(["train"] + sys.argv[1:]))
