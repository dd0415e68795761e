"""Trains GoogLeNet with `model.fit` from a script, then fine-tunes its backbone with `fit`.

    python examples/train_with_fit.py                                # the embedded digits
    python examples/train_with_fit.py --data folder:/data/flowers --image-size 224

1. `GoogLeNetClassifier.compile()` is the recipe (here `embedded_digits`:
   SGD with momentum, a cosine schedule with warm-up, weight decay, Polyak
   averaging, top-1/top-5); `fit` takes `(images, integer labels)` batches
   from the package's pipeline and adds the two auxiliary losses itself.
2. Its `backbone` (the network up to `inception_5b`, sharing the trained
   weights) is frozen under a new head that learns another task on the same
   images (odd or even digit; on a folder, its own classes again) with
   plain Keras `compile` and `fit`.
Both models are saved as `.keras` files that `keras.models.load_model`
reads once `keras_googlenet` is imported.
"""
import argparse
import json
import os

from keras_googlenet.cli import quiet_tensorflow_start

quiet_tensorflow_start()  # TensorFlow without its C++ start-up lines

import keras  # noqa: E402

import keras_googlenet as kg  # noqa: E402
from keras_googlenet.data import augment, pipeline, sources  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--data", default="embedded",
                        help="training data: embedded, folder:PATH or tfds:NAME (as `googlenet train`)")
    parser.add_argument("--output-dir", default="runs/fit_example", help="where the models go")
    parser.add_argument("--image-size", type=int, default=80, help="input height and width")
    parser.add_argument("--epochs", type=int, default=12, help="epochs of training")
    parser.add_argument("--finetune-epochs", type=int, default=3, help="epochs of the new head")
    parser.add_argument("--steps-per-epoch", type=int, default=None,
                        help="steps of each epoch (default: the whole training split)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the weights and the data")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    train_source, val_source = sources.train_val_sources(args.data)
    size = args.image_size
    # The embedded_digits recipe's augmentation: crops of at least 25% of
    # the area, no flips (a mirrored digit is another glyph).
    crops = augment.AugmentConfig(area_range=(0.25, 1.0), random_flip=False)

    def batches(source, training, relabel=None):
        ds = pipeline.build_dataset(source, training=training, image_size=size, batch_size=32,
                                    augment=crops, seed=args.seed, repeat=training)
        return ds.map(lambda x, y: (x, relabel(y))) if relabel else ds

    steps = args.steps_per_epoch or train_source.num_examples // 32

    # 1. Train: compile() is the recipe; fit takes plain integer labels.
    model = kg.GoogLeNetClassifier(classes=train_source.num_classes, input_shape=(size, size, 3),
                                   batch_norm=True, class_names=train_source.class_names)
    model.compile(recipe="embedded_digits")
    model.fit(batches(train_source, True), epochs=args.epochs, steps_per_epoch=steps, verbose=2)
    # fit leaves the Polyak-averaged weights in the model.
    scores = model.evaluate(batches(val_source, False), return_dict=True, verbose=0)
    os.makedirs(args.output_dir, exist_ok=True)
    model.save(os.path.join(args.output_dir, "classifier.keras"))

    # 2. Fine-tune: a frozen backbone under a new head, with plain Keras.
    digits = train_source.name.startswith("embedded")
    relabel = (lambda y: y % 2) if digits else None
    classes = 2 if digits else train_source.num_classes
    backbone = model.backbone
    backbone.trainable = False
    head = keras.Sequential([backbone, keras.layers.GlobalAveragePooling2D(),
                             keras.layers.Dense(classes, activation="softmax")], name="odd_even")
    head.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
                 metrics=["accuracy"])
    head.fit(batches(train_source, True, relabel), epochs=args.finetune_epochs,
             steps_per_epoch=steps, shuffle=False, verbose=2)  # the pipeline shuffles
    finetuned = head.evaluate(batches(val_source, False, relabel), return_dict=True, verbose=0)
    head.save(os.path.join(args.output_dir, "finetuned.keras"))

    results = {"classifier_val_top1": scores["top1"], "finetuned_val_accuracy": finetuned["accuracy"]}
    with open(os.path.join(args.output_dir, "results.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
