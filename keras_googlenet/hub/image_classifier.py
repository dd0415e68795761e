"""GoogLeNetImageClassifier: the backbone under the paper's head."""
import keras
from keras_hub.models import ImageClassifier
from keras_hub.src.models.task import Task

from keras_googlenet.hub.backbone import GoogLeNetBackbone
from keras_googlenet.hub.preprocessor import GoogLeNetImageClassifierPreprocessor


@keras.saving.register_keras_serializable(package="keras_googlenet")
class GoogLeNetImageClassifier(ImageClassifier):
    """KerasHub's `ImageClassifier` with GoogLeNet's head.

    The paper's head: global average pooling (`pool5_7x7_s1`), 40% dropout
    (`pool5_dropout`) and a linear layer with softmax (`classifier`), named
    as in `keras_googlenet.GoogLeNet` so that its weights carry over.

    Args:
        backbone: a `GoogLeNetBackbone`.
        num_classes: the number of classes.
        preprocessor: a `GoogLeNetImageClassifierPreprocessor` or None.
        pooling: "avg" (the paper) or "max".
        activation: of the classifier, "softmax" (the paper) or None (logits).
        dropout: before the classifier (the paper: 0.4).
        head_dtype: the head's dtype policy (default: the backbone's).
        class_names: one name per class, or None. KerasHub has no place for
            them: kept in this config (task.json), so that they survive
            KerasHub's `save_to_preset`, which rewrites metadata.json.
    """

    backbone_cls = GoogLeNetBackbone
    preprocessor_cls = GoogLeNetImageClassifierPreprocessor

    def __init__(self, backbone, num_classes, preprocessor=None, pooling="avg",
                 activation="softmax", dropout=0.4, head_dtype=None, class_names=None,
                 **kwargs):
        # ImageClassifier.__init__ names its layers "pooler", "output_dropout"
        # and "predictions": the same head built here with the paper's names.
        head_dtype = head_dtype or backbone.dtype_policy
        pools = {"avg": keras.layers.GlobalAveragePooling2D,
                 "max": keras.layers.GlobalMaxPooling2D}
        if pooling not in pools:
            raise ValueError("`pooling` must be 'avg' or 'max'. "
                             f"Received: pooling={pooling!r}")
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.pooler = pools[pooling](backbone.data_format, dtype=head_dtype, name="pool5_7x7_s1")
        self.output_dropout = keras.layers.Dropout(dropout, dtype=head_dtype, name="pool5_dropout")
        self.output_dense = keras.layers.Dense(num_classes, activation=activation,
                                               dtype=head_dtype, name="classifier")
        inputs = backbone.input
        outputs = self.output_dense(self.output_dropout(self.pooler(backbone(inputs))))
        kwargs.setdefault("name", "googlenet_image_classifier")
        Task.__init__(self, inputs=inputs, outputs=outputs, **kwargs)
        self.num_classes = num_classes
        self.activation = activation
        self.pooling = pooling
        self.dropout = dropout
        self.class_names = None if class_names is None else list(class_names)

    def get_config(self):
        config = super().get_config()
        config["class_names"] = self.class_names
        return config
