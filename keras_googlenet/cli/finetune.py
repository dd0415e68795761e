"""`googlenet finetune`: a trained GoogLeNet as the backbone of a new classifier
(new head on a frozen backbone, then everything at a lower learning rate)."""
import json
import os

from keras_googlenet.cli import flags


def add_arguments(parser):
    flags.add_model(parser, "pretrained GoogLeNet (.keras file, e.g. runs/googlenet/model.keras "
                            "or one written by googlenet weights convert)")
    flags.add_data(parser)
    flags.add_image_size(parser)
    flags.add_normalization(parser)
    flags.add_batch_size(parser)
    parser.add_argument("--head-epochs", type=int, default=2,
                        help="epochs of the new head on the frozen backbone; default: 2")
    parser.add_argument("--epochs", type=int, default=4,
                        help="epochs of everything after unfreezing; default: 4")
    parser.add_argument("--head-learning-rate", type=float, default=0.01,
                        help="learning rate of the head phase; default: 0.01")
    parser.add_argument("--learning-rate", type=float, default=0.001,
                        help="learning rate after unfreezing; default: 0.001")
    parser.add_argument("--steps-per-epoch", type=flags.positive_int, default=None,
                        help="steps per epoch; default: one pass over the data")
    flags.add_seed(parser)
    flags.add_output_dir(parser, "runs/finetune")
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                        help="Keras progress output; default: 1")


def run(args):
    from keras_googlenet.data import pipeline, sources
    from keras_googlenet.models import contract as contract_lib
    from keras_googlenet.train import finetune

    if args.head_epochs < 0 or args.epochs < 0 or args.head_epochs + args.epochs == 0:
        raise ValueError("--head-epochs and --epochs must be >= 0 and not both 0. Received: "
                         f"head_epochs={args.head_epochs}, epochs={args.epochs}")
    pretrained, contract = finetune.load_pretrained(
        args.model, normalization=flags.normalization_arg(args.normalization),
        image_size=args.image_size)
    image_size = contract.image_size or pretrained.input.shape[1]
    if image_size is None:
        raise ValueError("The model takes any size: pass --image-size.")
    train_source = sources.get_source(args.data, "train", data_dir=args.data_dir)
    val_source = sources.get_source(args.data, "validation", data_dir=args.data_dir)

    def dataset(source, training):
        return pipeline.build_dataset(source, training=training, image_size=image_size,
                                      batch_size=args.batch_size, seed=args.seed,
                                      normalization=contract.normalization, cache=True)

    model = finetune.replace_classifier(pretrained, train_source.num_classes)
    histories = finetune.finetune(model, dataset(train_source, True), dataset(val_source, False),
                                  head_epochs=args.head_epochs, epochs=args.epochs,
                                  head_learning_rate=args.head_learning_rate,
                                  learning_rate=args.learning_rate,
                                  steps_per_epoch=args.steps_per_epoch, verbose=args.verbose)
    model_path = contract_lib.save_model(
        model, os.path.join(args.output_dir, "model.keras"),
        contract_lib.Contract(normalization=contract.normalization, image_size=image_size,
                              crop_fraction=contract.crop_fraction,
                              class_names=train_source.class_names,
                              variant=contract.variant))
    last = {phase: {k: v[-1] for k, v in h.items()} for phase, h in histories.items()}
    print(json.dumps({"model_path": model_path, "final": last}, indent=2))
    return 0
