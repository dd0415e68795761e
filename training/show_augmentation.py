"""Writes a PNG grid of training augmentations of some image files.

    python training/show_augmentation.py a.jpg b.png --output grid.png -n 8

Same flags as `googlenet augment`.
"""
import sys

from keras_googlenet.cli import main

if __name__ == "__main__":
    sys.exit(main(["augment"] + sys.argv[1:]))
