"""`googlenet export` as a script (same flags; see `googlenet export --help`)."""
import sys

from keras_googlenet.cli import main

if __name__ == "__main__":
    sys.exit(main(["export"] + sys.argv[1:]))
