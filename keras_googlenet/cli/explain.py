"""`googlenet explain`: Grad-CAM overlays of image files.

    googlenet explain cat.jpg dog.png --model runs/digits/model.keras \\
        --layer inception_5b --top 3 --output-dir explain

For each image and each of its top-k classes, writes a PNG of the model's
centre crop with the Grad-CAM map of that class laid over it, titled with
the label and the probability (see `keras_googlenet.explain`). Importing
this module imports no TensorFlow.
"""
NORMALIZATION_CHOICES = ("auto", "caffe", "torch", "tf", "none")
DEFAULT_LAYER = "inception_5b"
DEFAULT_TOP = 3
DEFAULT_OUTPUT_DIR = "explain"


def _positive_int(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_arguments(parser):
    """Adds the `googlenet explain` arguments to an argparse parser."""
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files to explain (JPEG, PNG, GIF, BMP); required, one or more")
    parser.add_argument("--model", required=True,
                        help="the .keras model to explain (required; a `googlenet train` "
                             "model or converted published weights, whose preprocessing "
                             "contract is read from the file)")
    parser.add_argument("--layer", default=DEFAULT_LAYER,
                        help="layer whose output is explained: an Inception block such as "
                             "inception_3a ... inception_5b (default: %(default)s; "
                             "inception_4e gives maps twice as fine)")
    parser.add_argument("--top", type=_positive_int, default=DEFAULT_TOP,
                        help="classes explained per image, best first: a positive integer "
                             "(default: %(default)s)")
    parser.add_argument("--output-dir", "--output", dest="output_dir",
                        default=DEFAULT_OUTPUT_DIR,
                        help="folder for the PNGs, created if needed (default: %(default)s)")
    parser.add_argument("--normalization", default="auto", choices=NORMALIZATION_CHOICES,
                        help="preprocess_input mode; choices: %(choices)s (default: auto, "
                             "the model's own contract; none: [0, 255] inputs)")
    return parser


def run(args):
    """Runs `googlenet explain` from parsed `args`; returns 0."""
    from keras_googlenet.explain import images

    normalization = None if args.normalization == "none" else args.normalization
    results = images.explain_images(args.model, args.images, top=args.top, layer=args.layer,
                                    output_dir=args.output_dir, normalization=normalization)
    print(f"wrote {len(results)} Grad-CAM overlay(s) to {args.output_dir}")
    return 0
