"""`googlenet weights convert`: published ImageNet weights to a Keras file."""


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    convert = sub.add_parser(
        "convert", help="convert bvlc_googlenet (.onnx) or torchvision (.pth) weights",
        description="Convert published GoogLeNet ImageNet weights to a Keras .weights.h5 "
                    "(weights only) or .keras (the whole model, e.g. for googlenet finetune).")
    convert.add_argument("source", help="googlenet-*.onnx (Caffe bvlc_googlenet from the ONNX "
                         "model zoo) or googlenet-1378be20.pth (torchvision)")
    convert.add_argument("out", help="output path ending in .weights.h5 or .keras")
    convert.add_argument("--no-top", action="store_true",
                         help="drop the 1000-class classifier (a backbone); default: keep it")
    convert.add_argument("--preset-dir", default="", metavar="DIR",
                         help="also write a KerasHub preset folder here (keras_hub.models."
                              "ImageClassifier.from_preset, or Backbone with --no-top, loads it; "
                              "its image converter is the weights' preprocessing); default: none")


def run(args):
    from keras_googlenet import weights

    out, config = weights.convert_file(args.source, args.out, include_top=not args.no_top,
                                       preset_dir=args.preset_dir)
    if args.preset_dir:
        print(f"Wrote the preset {args.preset_dir} (import keras_googlenet.hub, then "
              "keras_hub.models.ImageClassifier.from_preset)")
    if out.endswith(".keras"):
        print(f"Wrote {out} (load it with keras.models.load_model)")
    else:
        print(f"Wrote {out}; load it with GoogLeNet(weights={out!r}, "
              f"{weights.describe_config(config)})")
    return 0
