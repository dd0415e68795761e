"""`googlenet finetune` as a script (same flags; see `googlenet finetune --help`)."""
import sys

from keras_googlenet.cli import main

if __name__ == "__main__":
    sys.exit(main(["finetune"] + sys.argv[1:]))
