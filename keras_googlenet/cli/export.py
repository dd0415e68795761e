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
    parser.add_argument("--int8", action="store_true",
                        help="also write calibrated full-integer files, googlenet_int8.tflite "
                             "(int8 builtin ops) and googlenet_int8.onnx (ONNX Runtime QDQ), "
                             "beside the float32 .tflite and .onnx (written too)")
    parser.add_argument("--calibration-data", default="embedded",
                        help=f"--int8 calibration images: {flags.DATA_HELP}; its train split "
                             "(else the folder itself) is used; default: embedded")
    parser.add_argument("--calibration-images", type=flags.positive_int, default=300,
                        help="--int8: how many calibration images (the first N); default: 300")
    parser.add_argument("--converted-dir", default=None,
                        help="where --tflite/--onnx/--int8 files (each with a <file>.json "
                             "contract) go; default: BASE_DIR_converted/"
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
    from keras_googlenet.models import averages
    from keras_googlenet.serving import export

    model, contract = loader.load_model(
        args.model, normalization=flags.normalization_arg(args.normalization),
        image_size=args.image_size, class_names=args.class_names)
    calibration = None
    if args.int8:
        # Read the calibration images first: bad calibration input fails
        # before anything is exported or converted.
        from keras_googlenet.serving import quantize

        net, _ = averages.serving_model(model, use_ema=not args.no_ema)
        size = export.resolve_image_size(net, contract.image_size)
        calibration = quantize.calibration_images(
            args.calibration_data, args.calibration_images, size, contract.normalization,
            contract.crop_fraction, data_dir=getattr(args, "data_dir", None))
        print(f"{len(calibration)} calibration images from {args.calibration_data!r}")
    path = export.export_saved_model(
        model, args.base_dir, version=args.version, class_names=contract.class_names,
        image_size=contract.image_size, normalization=contract.normalization,
        crop_fraction=contract.crop_fraction, use_ema=not args.no_ema)
    print(f"SavedModel written to {path}")
    written = {"saved_model": path}
    if args.tflite or args.onnx or args.int8:
        written.update(_convert(args, model, contract, path, calibration))
    return written


def _convert(args, model, contract, path, calibration):
    """The converted files, each with its `<file>.json` contract."""
    import dataclasses

    from keras_googlenet.models import averages
    from keras_googlenet.serving import convert, export, quantize

    info = export.read_export_info(path)
    out_dir = args.converted_dir or os.path.join(
        os.path.normpath(args.base_dir) + "_converted", os.path.basename(path))
    os.makedirs(out_dir, exist_ok=True)
    kwargs = dict(image_size=info.contract.image_size, use_ema=not args.no_ema)
    contract = dataclasses.replace(contract, image_size=info.contract.image_size)
    sidecar = dict(contract=contract, classes=info.classes, output=averages.output_kind(model))
    written = {}
    if args.tflite or args.int8:
        modes = (None, "dynamic_range") if args.tflite else (None,)
        for quantize_mode in modes:
            suffix = "" if quantize_mode is None else f"_{quantize_mode}"
            target = os.path.join(out_dir, f"googlenet{suffix}.tflite")
            written[f"tflite{suffix}"] = convert.to_tflite(model, target, quantize=quantize_mode,
                                                           **kwargs)
            quantize.write_sidecar(target, runtime="tflite",
                                   precision=quantize_mode or "float32", **sidecar)
            print(f"TFLite model written to {target}")
    if args.onnx or args.int8:
        target = os.path.join(out_dir, "googlenet.onnx")
        written["onnx"] = convert.to_onnx(model, target, **kwargs)
        quantize.write_sidecar(target, runtime="onnxruntime", precision="float32", **sidecar)
        print(f"ONNX model written to {target}")
    if args.int8:
        calibrated = {"data": args.calibration_data, "split": quantize.DEFAULT_CALIBRATION_SPLIT,
                      "images": int(len(calibration))}
        # One int8 file per runtime, each with its contract beside it.
        for key, label, convert_int8, input_quantization in (
                ("tflite", "TFLite", quantize.to_tflite_int8, quantize.tflite_input_quantization),
                ("onnx", "ONNX", quantize.to_onnx_int8, quantize.onnx_input_quantization)):
            target = os.path.join(out_dir, f"googlenet_int8.{key}")
            _, float_ops = convert_int8(model, target, calibration, **kwargs)
            quantize.write_sidecar(target, runtime="tflite" if key == "tflite" else "onnxruntime",
                                   precision="int8", input_quantization=input_quantization(target),
                                   float_ops=float_ops, calibration=calibrated, **sidecar)
            written[f"{key}_int8"] = target
            print(f"Int8 {label} model written to {target}"
                  + (f" (float ops: {', '.join(float_ops)})" if float_ops else ""))
    return written
