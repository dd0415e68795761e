"""GoogLeNet as one image classifier, with the paper's recipe inside.

`GoogLeNetClassifier` is what a Keras user trains from a script:

    model = keras_googlenet.GoogLeNetClassifier(classes=10, input_shape=(80, 80, 3))
    model.compile()                       # the paper's recipe
    model.fit(dataset, epochs=12)         # (images, integer labels) batches
    probabilities = model.predict(images)
    model.save("model.keras")             # loads with keras.models.load_model

Training runs the three heads of the paper's training network and adds the
two auxiliary losses with their 0.3 weights itself; `predict`, `evaluate`
and the saved model's serving use the main head only (the paper discards
the auxiliary classifiers at inference). The classifier carries its
preprocessing contract (normalization, image size, crop fraction, class
names) in its config and in the `.keras` file, like every file the package
writes. Works on TensorFlow, JAX and PyTorch.
"""
import math

import keras

# This module registers its class when Keras is imported (registration.py),
# which may happen inside the `import keras` of googlenet.py or layers.py:
# googlenet (and objective, which imports it) are imported when used, not here,
# and the other modules as module objects (they may be half imported).
from keras_googlenet.models import architecture, losses, schedules
from keras_googlenet.models import contract as contract_lib
from keras_googlenet.recipes import recipe_values

FEATURE_LAYER = architecture.STAGE_NAMES[-2]  # inception_5b, before pool5_7x7_s1

# What `compile()` takes from a recipe: the optimizer, its schedule and the loss.
RECIPE_KEYS = ("learning_rate", "schedule", "warmup_epochs", "decay_rate", "decay_epochs",
               "momentum", "weight_decay", "ema_momentum", "label_smoothing")


@keras.saving.register_keras_serializable(package="keras_googlenet")
class GoogLeNetClassifier(keras.Model):
    """GoogLeNet (Inception v1) as an image classifier trained by `fit`.

    Args:
        classes: number of classes.
        input_shape: `(height, width, 3)` (channels last) or `(3, height,
            width)` under `channels_first`; at least 65 pixels a side with
            the auxiliary heads.
        aux_classifiers: train with the paper's two auxiliary heads.
        aux_weight: the weight of each auxiliary loss (the paper: 0.3).
        batch_norm, dropout_rate, aux_dropout_rate, kernel_5x5, pool4_size:
            the architecture, as `keras_googlenet.GoogLeNet`'s arguments.
        weights: as `GoogLeNet`'s (a weights file, or None).
        normalization, crop_fraction, class_names: the preprocessing
            contract the model is used with (`keras_googlenet.preprocess_input`
            mode, evaluation crop, one name per class).
    """

    def __init__(self, classes=1000, input_shape=(224, 224, 3), aux_classifiers=True,
                 aux_weight=architecture.AUX_LOSS_WEIGHT, batch_norm=False, dropout_rate=0.4,
                 aux_dropout_rate=0.7, kernel_5x5=5, pool4_size=3, weights=None,
                 normalization=contract_lib.DEFAULT_NORMALIZATION,
                 crop_fraction=contract_lib.DEFAULT_CROP_FRACTION, class_names=None, **kwargs):
        from keras_googlenet.models.googlenet import GoogLeNet

        network = GoogLeNet(input_shape=tuple(input_shape), classes=classes,
                            aux_classifiers=aux_classifiers, batch_norm=batch_norm,
                            dropout_rate=dropout_rate, aux_dropout_rate=aux_dropout_rate,
                            kernel_5x5=kernel_5x5, pool4_size=pool4_size, weights=weights)
        kwargs.setdefault("name", "googlenet_classifier")
        super().__init__(**kwargs)
        self.network = network
        self.classes = int(classes)
        self.aux_weight = float(aux_weight)
        self.architecture = dict(
            input_shape=tuple(input_shape), aux_classifiers=bool(aux_classifiers),
            batch_norm=bool(batch_norm), dropout_rate=dropout_rate,
            aux_dropout_rate=aux_dropout_rate, kernel_5x5=kernel_5x5, pool4_size=pool4_size)
        self.contract = contract_lib.Contract(
            normalization=normalization, image_size=_image_size(input_shape),
            crop_fraction=crop_fraction, class_names=class_names,
            variant={"batch_norm": bool(batch_norm), "kernel_5x5": kernel_5x5,
                     "pool4_size": pool4_size})
        if self.contract.class_names is not None and len(self.contract.class_names) != classes:
            raise ValueError(f"`class_names` must have one name per class ({classes}). "
                             f"Received: {len(self.contract.class_names)} names")
        self._recipe = None  # the recipe whose optimizer `fit` builds

    def call(self, images, training=False):
        outputs = self.network(images, training=training)
        if isinstance(outputs, dict) and not training:
            return outputs[architecture.OUTPUT_NAME]
        return outputs

    @property
    def backbone(self):
        """The network up to `inception_5b` (its 4D feature map, as
        `GoogLeNet(include_top=False)`), sharing this model's weights: the
        base of a new head for fine-tuning."""
        return keras.Model(self.network.input, self.network.get_layer(FEATURE_LAYER).output,
                           name=f"{self.name}_backbone")

    def compile(self, optimizer="auto", loss="auto", metrics="auto", *, recipe="paper_imagenet",
                steps_per_epoch=None, epochs=None, **kwargs):
        """Compiles with the recipe's loss, optimizer and metrics by default.

        Args:
            optimizer: "auto": SGD with the recipe's momentum, learning rate
                schedule, weight decay and Polyak averaging (`recipe`); its
                schedule needs the steps per epoch and the epochs, so it is
                built by the first `fit` (from its `epochs` and data) unless
                both are given here. Or any Keras optimizer.
            loss: "auto": sparse categorical cross-entropy with the recipe's
                label smoothing, on every head. Or any Keras loss, used on
                every head.
            metrics: "auto": top-1 and top-5 accuracy (the evaluation's tie
                rule), on the main head.
            recipe: a named recipe ("paper_imagenet", "embedded_digits") or a
                dict of its keys (`RECIPE_KEYS`).
            steps_per_epoch, epochs: the schedule's length, when known.
            **kwargs: as `keras.Model.compile` (jit_compile defaults to XLA
                on JAX only).
        """
        from keras_googlenet.models import objective

        values = _recipe_values(recipe)
        if loss == "auto":
            loss = losses.SparseCrossentropy(self.classes, values["label_smoothing"])
        if metrics == "auto":
            metrics = objective.top_k_metrics(self.classes)
        kwargs.setdefault("jit_compile", keras.backend.backend() == "jax")
        self._compile_args = dict(loss=loss, metrics=metrics, **kwargs)
        self._recipe = None
        if optimizer == "auto":
            self._recipe = {k: values[k] for k in RECIPE_KEYS}
            if steps_per_epoch and epochs:
                optimizer = self._recipe_optimizer(steps_per_epoch, epochs)
            else:
                # A placeholder until `fit` knows the schedule's length.
                optimizer = keras.optimizers.SGD(values["learning_rate"])
        super().compile(optimizer=optimizer, **self._compile_args)
        if steps_per_epoch and epochs:
            self._recipe = None

    def _recipe_optimizer(self, steps_per_epoch, epochs):
        from keras_googlenet.models import objective

        r = self._recipe
        schedule = schedules.learning_rate_schedule(
            r["learning_rate"], steps_per_epoch, epochs, r["schedule"],
            decay_rate=r["decay_rate"], decay_epochs=r["decay_epochs"],
            warmup_epochs=r["warmup_epochs"])
        return objective.make_optimizer(schedule, momentum=r["momentum"],
                                        weight_decay=r["weight_decay"],
                                        ema_momentum=r["ema_momentum"] or None)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, steps_per_epoch=None, **kwargs):
        if self._recipe is not None:
            steps = _steps_per_epoch(x, batch_size, steps_per_epoch)
            super().compile(optimizer=self._recipe_optimizer(steps, epochs),
                            **self._compile_args)
            self._recipe = None
        if hasattr(x, "cardinality"):  # tf.data shuffles in its pipeline
            kwargs.setdefault("shuffle", False)
        history = super().fit(x, y, batch_size=batch_size, epochs=epochs,
                              steps_per_epoch=steps_per_epoch, **kwargs)
        return history

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if not isinstance(y_pred, dict):
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        # The paper's loss: the main head's plus 0.3 times each auxiliary head's.
        total = super().compute_loss(x, y, y_pred[architecture.OUTPUT_NAME], sample_weight, training)
        loss = self.loss
        if not isinstance(loss, keras.losses.Loss):  # a name or a function
            loss = keras.losses.LossFunctionWrapper(keras.losses.get(loss))
        for head in architecture.AUX_HEADS:
            aux = loss(y, y_pred[head], sample_weight)
            total = total + self.aux_weight * keras.ops.cast(aux, total.dtype)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        if isinstance(y_pred, dict):
            y_pred = y_pred[architecture.OUTPUT_NAME]
        return super().compute_metrics(x, y, y_pred, sample_weight)

    def get_compile_config(self):
        config = super().get_compile_config()
        if config is not None and self._recipe is not None:
            # Compiled with the recipe, not fitted yet: the loaded model
            # builds the recipe's optimizer at its first fit too.
            config["pending_recipe"] = dict(self._recipe)
        return config

    def compile_from_config(self, config):
        """A loaded model is compiled as it was saved (Keras skips models
        whose `compile` is overridden unless they say how)."""
        config = dict(config)
        pending = config.pop("pending_recipe", None)
        config = keras.saving.deserialize_keras_object(config)
        super().compile(**config)
        self._compile_args = {k: v for k, v in config.items() if k != "optimizer"}
        self._recipe = pending
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def save(self, filepath, *args, **kwargs):
        """`keras.Model.save`; a `.keras` file also carries the contract
        where `keras_googlenet.load_model` and the commands read it."""
        super().save(filepath, *args, **kwargs)
        if str(filepath).endswith(".keras"):
            contract_lib.write_info(filepath, contract_lib.ArtifactInfo(self.contract))

    def get_config(self):
        config = super().get_config()
        config.update(self.architecture, classes=self.classes, aux_weight=self.aux_weight,
                      normalization=self.contract.normalization,
                      crop_fraction=self.contract.crop_fraction,
                      class_names=(list(self.contract.class_names)
                                   if self.contract.class_names is not None else None))
        return config


def _image_size(input_shape):
    """The side of a square input shape in the configured layout, else None."""
    first = keras.config.image_data_format() == "channels_first"
    height, width = input_shape[1:3] if first else input_shape[0:2]
    return height if height == width and height else None


def _recipe_values(recipe):
    """The optimizer and loss values of a named recipe or a dict of
    `RECIPE_KEYS`; what it leaves out is the paper's (paper_imagenet)."""
    if isinstance(recipe, str):
        given = recipe_values(recipe)
    else:
        unknown = set(recipe) - set(RECIPE_KEYS)
        if unknown:
            raise ValueError(f"Unknown recipe keys {sorted(unknown)}: expected some of "
                             f"{RECIPE_KEYS}. Received: recipe={recipe!r}")
        given = dict(recipe)
    values = {**recipe_values("paper_imagenet"), **given}
    return {k: values[k] for k in RECIPE_KEYS}


def _steps_per_epoch(x, batch_size, steps_per_epoch):
    """The steps of one epoch of `fit`'s data, for the recipe's schedule."""
    if steps_per_epoch:
        return int(steps_per_epoch)
    cardinality = getattr(x, "cardinality", None)
    if cardinality is not None:  # tf.data
        n = int(cardinality())
        if n > 0:
            return n
        raise ValueError("The dataset's length is unknown (or infinite): pass "
                         "`steps_per_epoch` to fit (or to compile with `epochs`).")
    if hasattr(x, "shape"):  # arrays: Keras' default batch of 32
        return math.ceil(x.shape[0] / (batch_size or 32))
    if hasattr(x, "__len__"):  # keras.utils.PyDataset, torch DataLoader
        return len(x)
    raise ValueError(f"Cannot tell the steps per epoch of {type(x).__name__}: pass "
                     "`steps_per_epoch` to fit.")

