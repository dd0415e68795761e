"""`googlenet explain`: Grad-CAM overlays of image files.

    googlenet explain cat.jpg dog.png --model runs/digits/model.keras \\
        --layer inception_5b --top 3 --output-dir explain

For each image and each of its top-k classes, writes a PNG of the model's
centre crop with the Grad-CAM map of that class laid over it, titled with
the label and the probability (see `keras_googlenet.explain`). Importing
this module imports no TensorFlow.
"""
from keras_googlenet.cli import flags

DEFAULT_LAYER = "inception_5b"


def add_arguments(parser):
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files to explain (JPEG, PNG, GIF, BMP, WebP)")
    flags.add_model(parser, "the .keras model to explain (a googlenet train model or converted "
                            "published weights; its preprocessing contract is read from it)")
    parser.add_argument("--layer", default=DEFAULT_LAYER,
                        help="layer whose output is explained: an Inception block, "
                             "inception_3a ... inception_5b (inception_4e gives maps twice "
                             f"as fine); default: {DEFAULT_LAYER}")
    parser.add_argument("--top", type=flags.positive_int, default=3,
                        help="classes explained per image, best first; default: 3")
    flags.add_output_dir(parser, "explain")
    flags.add_normalization(parser)


def run(args):
    from keras_googlenet.explain import images

    results = images.explain_images(args.model, args.images, top=args.top, layer=args.layer,
                                    output_dir=args.output_dir,
                                    normalization=flags.normalization_arg(args.normalization))
    print(f"wrote {len(results)} Grad-CAM overlay(s) to {args.output_dir}")
    return 0
