"""`googlenet export`: a trained `.keras` model as a versioned TF Serving
SavedModel (and optionally TFLite / ONNX files), with the preprocessing and
class names the model carries."""
import os

from keras_googlenet.cli import flags


def add_arguments(parser):
    flags.add_model(parser, "trained model (.keras file, e.g. runs/googlenet/model.keras)")
    parser.add_argument("--base-dir", required=True,
                        help="TF Serving model base directory, e.g. saved_models/googlenet; "
                             "the export goes to BASE_DIR/VERSION")
    parser.add_argument("--version", type=flags.positive_int, default=None,
                        help="version number; default: one more than the highest existing")
    flags.add_class_names(parser)
    flags.add_image_size(parser)
    flags.add_normalization(parser)
    parser.add_argument("--no-ema", action="store_true",
                        help="export the raw weights even if the optimizer keeps Polyak "
                             "averages; default: the averages")
    parser.add_argument("--tflite", action="store_true",
                        help="also write float32 and dynamic-range quantised .tflite files")
    parser.add_argument("--onnx", action="store_true", help="also write a .onnx file")
    parser.add_argument("--converted-dir", default=None,
                        help="where --tflite/--onnx files go; default: BASE_DIR_converted/"
                             "VERSION, outside the directory TF Serving watches")


def run(args):
    from keras_googlenet import backends

    # A SavedModel (and TFLite) is TensorFlow's: a model.keras trained on
    # any backend exports from the TensorFlow backend.
    backends.require_tensorflow(
        "googlenet export (a TensorFlow SavedModel)",
        f"run `KERAS_BACKEND=tensorflow googlenet export --model {args.model} ...`; "
        "a .keras file trained on any backend exports there")
    from keras_googlenet.inference import loader
    from keras_googlenet.serving import export

    model, contract = loader.load_model(
        args.model, normalization=flags.normalization_arg(args.normalization),
        image_size=args.image_size, class_names=args.class_names)
    path = export.export_saved_model(
        model, args.base_dir, version=args.version, class_names=contract.class_names,
        image_size=contract.image_size, normalization=contract.normalization,
        crop_fraction=contract.crop_fraction, use_ema=not args.no_ema)
    print(f"SavedModel written to {path}")
    written = {"saved_model": path}
    if args.tflite or args.onnx:
        from keras_googlenet.serving import convert

        info = export.read_export_info(path)
        out_dir = args.converted_dir or os.path.join(
            os.path.normpath(args.base_dir) + "_converted", os.path.basename(path))
        os.makedirs(out_dir, exist_ok=True)
        kwargs = dict(image_size=info["image_size"], use_ema=not args.no_ema)
        if args.tflite:
            for quantize in (None, "dynamic_range"):
                suffix = "" if quantize is None else f"_{quantize}"
                target = os.path.join(out_dir, f"googlenet{suffix}.tflite")
                written[f"tflite{suffix}"] = convert.to_tflite(model, target, quantize=quantize,
                                                               **kwargs)
                print(f"TFLite model written to {target}")
        if args.onnx:
            target = os.path.join(out_dir, "googlenet.onnx")
            written["onnx"] = convert.to_onnx(model, target, **kwargs)
            print(f"ONNX model written to {target}")
    return written
