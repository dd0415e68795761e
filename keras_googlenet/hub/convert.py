"""Our models as KerasHub presets, written by KerasHub's own `save_to_preset`."""
from keras_googlenet.hub.backbone import GoogLeNetBackbone
from keras_googlenet.hub.image_classifier import GoogLeNetImageClassifier
from keras_googlenet.hub.image_converter import GoogLeNetImageConverter
from keras_googlenet.hub.preprocessor import GoogLeNetImageClassifierPreprocessor
from keras_googlenet.models import hub_format


def from_model(model, contract=None):
    """The KerasHub classes of a `GoogLeNet` functional model or a
    `GoogLeNetClassifier`, with its weights copied by layer name.

    Returns:
        `(task_or_backbone, preprocessor, contract)`: a
        `GoogLeNetImageClassifier` for a model with the top (its auxiliary
        heads are left out, as the paper does at inference), else a
        `GoogLeNetBackbone`.
    """
    network, contract, head = hub_format.describe(model, contract)
    backbone = GoogLeNetBackbone(image_shape=tuple(network.input.shape[1:]), **head.variant)
    for layer in backbone.layers:
        if layer.weights:
            layer.set_weights(network.get_layer(layer.name).get_weights())
    size = contract.image_size
    preprocessor = GoogLeNetImageClassifierPreprocessor(GoogLeNetImageConverter(
        normalization=contract.normalization, image_size=(size, size) if size else None))
    if head.classes is None:
        return backbone, preprocessor, contract
    task = GoogLeNetImageClassifier(backbone, head.classes, preprocessor=preprocessor,
                                    activation=head.activation, dropout=head.dropout,
                                    class_names=contract.class_names)
    task.get_layer(hub_format.CLASSIFIER).set_weights(
        network.get_layer(hub_format.CLASSIFIER).get_weights())
    return task, preprocessor, contract


def to_preset(model, directory, contract=None):
    """Writes a KerasHub preset folder of a `GoogLeNet` or a `GoogLeNetClassifier`.

    The folder (config.json, model.weights.h5, preprocessor.json,
    image_converter.json, metadata.json, and task.json + task.weights.h5
    for a model with the top) loads with
    `keras_hub.models.ImageClassifier.from_preset(directory)` or
    `keras_hub.models.Backbone.from_preset(directory)` once
    `keras_googlenet.hub` is imported, and with `keras_googlenet.load_model`
    without KerasHub.

    Args:
        model: a `GoogLeNet` functional model or a `GoogLeNetClassifier`.
        directory: the folder to write (created if needed).
        contract: the preprocessing contract; default: the classifier's own,
            or the defaults (caffe) with the model's input size.

    Returns:
        The directory.
    """
    task, preprocessor, contract = from_model(model, contract)
    task.save_to_preset(directory)
    if isinstance(task, GoogLeNetBackbone):  # its preprocessor apart
        preprocessor.save_to_preset(directory)
    hub_format.write_contract(directory, contract)
    return directory
