"""`googlenet finetune`: a trained GoogLeNet as the backbone of a new classifier.

Modes: linear-probe (a logistic regression on the frozen backbone's pooled
features), head (a new classifier trained on the frozen backbone), full
(the head first, fitted as by linear-probe, then everything at a low
learning rate; the default).
The input size and normalisation are the model's own (its contract).
Writes what `googlenet train` writes to --output-dir: config.json,
history.csv, curves.png, results.json (validation top-1/top-5) and
model.keras, which carries its preprocessing and the new class names.

    googlenet finetune --model runs/googlenet/model.keras --data folder:shapes/
"""
import argparse
import json

from keras_googlenet.cli import flags

MODES = ("linear-probe", "head", "full")
# The library's defaults (keras_googlenet.train.finetune.DEFAULTS), repeated
# here so that --help imports no TensorFlow; a test keeps them equal.
DEFAULTS = dict(mode="full", batch_size=32, head_epochs=10, epochs=10, head_learning_rate=0.1,
                learning_rate=0.001, min_crop_area=0.25, flip=False, holdout_fraction=0.1,
                probe_c=1.0, seed=1, precision="auto")


def add_arguments(parser):
    from keras_googlenet.train.config import PRECISIONS

    flags.add_model(parser, "pretrained GoogLeNet (.keras file, e.g. runs/googlenet/model.keras "
                            "or one written by googlenet weights convert)")
    flags.add_data(parser)
    parser.add_argument("--classes", default=None,
                        help="use these classes of the data only, e.g. 5,6,7,8,9: relabelled "
                             "0..N-1 in this order, their names kept (training and "
                             "validation); default: every class")
    parser.add_argument("--examples-per-class", type=flags.positive_int, default=None,
                        help="few-shot: K training images of each class, drawn with --seed "
                             "(the same seed, the same images); validation keeps all its "
                             "images; default: all")
    parser.add_argument("--holdout-fraction", type=flags.proper_fraction,
                        default=DEFAULTS["holdout_fraction"],
                        help="folder data without a validation sub-folder: fraction of each "
                             "class held out for validation (0 validates on the training "
                             f"images); default: {DEFAULTS['holdout_fraction']}")
    parser.add_argument("--mode", default=DEFAULTS["mode"], choices=MODES,
                        help="linear-probe: logistic regression (scikit-learn) on the frozen "
                             "backbone's pooled features, saved as a Dense softmax head; "
                             "head: a new classifier trained by SGD on the frozen backbone; "
                             "full: the head first (the linear probe's), then everything; "
                             f"default: {DEFAULTS['mode']}")
    flags.add_image_size(parser)
    flags.add_normalization(parser)
    flags.add_batch_size(parser, DEFAULTS["batch_size"])
    parser.add_argument("--head-epochs", type=flags.non_negative_int,
                        default=DEFAULTS["head_epochs"],
                        help="mode head: epochs of the new head on the frozen backbone; "
                             f"default: {DEFAULTS['head_epochs']}")
    parser.add_argument("--epochs", type=flags.non_negative_int, default=DEFAULTS["epochs"],
                        help="epochs of everything after unfreezing (mode full); default: "
                             f"{DEFAULTS['epochs']}")
    parser.add_argument("--head-learning-rate", type=flags.positive_float,
                        default=DEFAULTS["head_learning_rate"],
                        help="SGD learning rate of the head phase; default: "
                             f"{DEFAULTS['head_learning_rate']}")
    parser.add_argument("--learning-rate", type=flags.positive_float,
                        default=DEFAULTS["learning_rate"],
                        help="SGD learning rate after unfreezing (well below the head's); "
                             f"default: {DEFAULTS['learning_rate']}")
    parser.add_argument("--steps-per-epoch", type=flags.positive_int, default=None,
                        help="steps per epoch; default: one pass over the training data "
                             "(at least one step)")
    parser.add_argument("--min-crop-area", type=flags.fraction, default=DEFAULTS["min_crop_area"],
                        help="smallest random crop, as a fraction of the image area; default: "
                             f"{DEFAULTS['min_crop_area']}")
    flip = parser.add_mutually_exclusive_group()
    flip.add_argument("--flip", dest="flip", action="store_true", default=DEFAULTS["flip"],
                      help="random horizontal flips (off by default: a mirrored digit is "
                           "another glyph); --no-flip turns them off")
    flip.add_argument("--no-flip", dest="flip", action="store_false", help=argparse.SUPPRESS)
    parser.add_argument("--probe-c", type=flags.positive_float, default=DEFAULTS["probe_c"],
                        help="linear-probe: inverse L2 strength of the logistic regression "
                             f"(standardised features); default: {DEFAULTS['probe_c']}")
    flags.add_seed(parser, DEFAULTS["seed"])
    parser.add_argument("--precision", default=DEFAULTS["precision"], choices=PRECISIONS,
                        help="compute precision, as for googlenet train; default: auto "
                             "(mixed_bfloat16 on CPUs with AVX512_BF16/AMX and TPUs, "
                             "mixed_float16 on GPUs, else float32)")
    flags.add_output_dir(parser, "runs/finetune")
    parser.add_argument("--export-dir", default="",
                        help="TF Serving base directory to export the fine-tuned model to; "
                             'default: "" (no export)')
    parser.add_argument("--verbose", type=flags.integer, default=1, choices=(0, 1, 2),
                        help="Keras progress output: 0 silent, 1 bar, 2 a line per epoch; "
                             "default: 1")


def run(args):
    from keras_googlenet.data.subsets import parse_classes

    parse_classes(args.classes)  # refuse a bad value before loading TensorFlow
    from keras_googlenet.train import finetune

    results = finetune.run(
        args.model, output_dir=args.output_dir, data=args.data, data_dir=args.data_dir,
        classes=args.classes, examples_per_class=args.examples_per_class, mode=args.mode,
        image_size=args.image_size, normalization=flags.normalization_arg(args.normalization),
        batch_size=args.batch_size, head_epochs=args.head_epochs, epochs=args.epochs,
        head_learning_rate=args.head_learning_rate, learning_rate=args.learning_rate,
        steps_per_epoch=args.steps_per_epoch, min_crop_area=args.min_crop_area, flip=args.flip,
        holdout_fraction=args.holdout_fraction, probe_c=args.probe_c, seed=args.seed,
        precision=args.precision, export_dir=args.export_dir, verbose=args.verbose)
    print(json.dumps(results, indent=2, default=str))
    return 0
