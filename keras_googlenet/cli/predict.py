"""`googlenet predict`: the top classes of image files, from a SavedModel, a
TF Serving base directory (its highest version), a `.keras` file or a
converted `.tflite` / `.onnx` file (float32 or int8) with its contract."""
from keras_googlenet.cli import flags


def add_arguments(parser):
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, GIF, BMP, WebP)")
    flags.add_model(parser, "SavedModel directory, TF Serving base directory, .keras file, "
                            "or .tflite / .onnx file with its <file>.json contract")
    parser.add_argument("--top", type=flags.positive_int, default=5,
                        help="classes shown per image; default: 5")
    flags.add_image_size(parser, "the model's own; a SavedModel's is fixed at export")
    flags.add_normalization(parser)
    flags.add_class_names(parser)


def run(args):
    from keras_googlenet.inference import predict

    return predict.predict_files(args.model, args.images, top=args.top,
                                 image_size=args.image_size,
                                 normalization=flags.normalization_arg(args.normalization),
                                 class_names=args.class_names)
