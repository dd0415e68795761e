"""The training loss of the recipe, a Keras class that saved training models
name (registered: see models/registration.py). A leaf: Keras only."""
import keras


@keras.saving.register_keras_serializable(package="keras_googlenet")
class SparseCrossentropy(keras.losses.Loss):
    """Sparse categorical cross-entropy with label smoothing.

    Keras' `SparseCategoricalCrossentropy` has no label smoothing, and
    one-hot labels in the pipeline would tie the data to the class count.
    """

    def __init__(self, num_classes, label_smoothing=0.0, from_logits=False,
                 name="sparse_crossentropy", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        y_true = keras.ops.one_hot(
            keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,)), self.num_classes,
            dtype=y_pred.dtype,
        )
        return keras.losses.categorical_crossentropy(
            y_true, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, label_smoothing=self.label_smoothing,
                      from_logits=self.from_logits)
        return config
