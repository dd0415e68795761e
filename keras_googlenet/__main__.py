"""`python -m keras_googlenet ...` is the `googlenet` command."""
import sys

from keras_googlenet.cli import main

sys.exit(main())
