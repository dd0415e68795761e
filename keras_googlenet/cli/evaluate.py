"""`googlenet evaluate`: the paper's multi-crop, multi-model test protocol.

    googlenet evaluate --model a.keras --model b.keras --data embedded \\
        --split validation --crops 1 10 144 --table table.md --csv table.csv

Prints top-1/top-5 accuracy and error, per-class accuracy and a table of
models x crops (every ensemble of the first k models, each crop set); see
`keras_googlenet.inference.evaluation`.
"""
import json

from keras_googlenet.cli import flags

CROP_CHOICES = (1, 10, 144)


def add_arguments(parser):
    parser.add_argument("--model", action="append", required=True, dest="models",
                        help=".keras, .tflite or .onnx file (the latter two with the <file>.json "
                             "contract `googlenet export` writes) or SavedModel directory; "
                             "repeat for an ensemble (and a per-model table)")
    flags.add_data(parser)
    parser.add_argument("--split", default="validation",
                        help="split to evaluate; default: validation")
    parser.add_argument("--classes", default=None,
                        help="evaluate these classes of the data only, e.g. 5,6,7,8,9, "
                             "relabelled 0..N-1 in this order (as train and finetune --classes "
                             "do); default: every class")
    parser.add_argument("--crops", type=flags.integer, nargs="+", default=[1],
                        choices=CROP_CHOICES,
                        help="crop sets per image, several make a table; default: 1")
    parser.add_argument("--no-mirror", dest="mirror", action="store_false",
                        help="drop the mirrored crops (10 -> 5, 144 -> 72): for data that is "
                             "not left-right symmetric; not the paper's protocol")
    flags.add_image_size(parser)
    flags.add_normalization(parser)
    parser.add_argument("--crop-fraction", type=flags.fraction, default=None,
                        help="1- and 10-crop centre fraction; default: the model's own "
                             "(0.875: 224 of 256)")
    parser.add_argument("--batch-size", type=flags.positive_int, default=None,
                        help="images per model call; default: about 288 crops per call")
    parser.add_argument("--max-examples", type=flags.positive_int, default=None,
                        help="evaluate only the first N images; default: all")
    parser.add_argument("--ensemble-sizes", type=flags.positive_int, nargs="+", default=None,
                        help="ensembles (first k models) in the table; default: every k")
    parser.add_argument("--table", default=None, help="write the Markdown table to this file; default: not written")
    parser.add_argument("--csv", default=None, help="write the table as CSV to this file; default: not written")
    parser.add_argument("--json", default=None, help="write all results as JSON to this file; default: not written")
    parser.add_argument("--plots", default=None,
                        help="write confusion_matrix.png, per_class_accuracy.png, mistakes.png "
                             "and crops_vs_error.png into this folder; default: none")
    parser.add_argument("--verbose", type=flags.integer, default=1, choices=(0, 1),
                        help="1: progress and the table as it fills; default: 1")


def run(args):
    from keras_googlenet.data.subsets import parse_classes

    parse_classes(args.classes)  # refuse a bad value before loading TensorFlow
    from keras_googlenet.inference import evaluation

    data, class_names = args.data, None
    if args.classes:
        from keras_googlenet.data import sources

        source = sources.subset(sources.get_source(args.data, args.split,
                                                   data_dir=args.data_dir), args.classes)
        data, class_names = source.dataset(), source.class_names
    results = evaluation.evaluate(
        args.models, data=data, split=args.split, class_names=class_names, crops=args.crops,
        image_size=args.image_size, normalization=flags.normalization_arg(args.normalization),
        data_dir=args.data_dir, batch_size=args.batch_size, crop_fraction=args.crop_fraction,
        max_examples=args.max_examples, ensemble_sizes=args.ensemble_sizes,
        table=args.table, csv=args.csv, verbose=args.verbose, mirror=args.mirror,
        plots=args.plots)
    final = {k: results[k] for k in ("models", "crops", "num_examples", "top1_accuracy",
                                     "top1_error", "top5_accuracy", "top5_error", "seconds")}
    if not args.verbose:
        print(results["markdown"])
        if len(args.models) > 1:
            print("Per model:")
            print(results["per_model_markdown"])
    print("per-class top-1 accuracy (%d model(s), %d crops):" % (final["models"], final["crops"]))
    for name, accuracy in results["per_class_accuracy"].items():
        print(f"  {name:<20} {'-' if accuracy is None else f'{100 * accuracy:.2f}%'}")
    print(json.dumps(final, indent=2))
    if args.json:
        from keras_googlenet import files

        files.atomic_write(args.json, json.dumps(results, indent=2) + "\n")
    return 0
