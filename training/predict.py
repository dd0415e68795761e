"""`googlenet predict` as a script (same flags; see `googlenet predict --help`)."""
import sys

from keras_googlenet.cli import main

if __name__ == "__main__":
    sys.exit(main(["predict"] + sys.argv[1:]))
