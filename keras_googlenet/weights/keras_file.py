"""A published weights file converted into a Keras file for the model it
fits (`googlenet weights convert`). Apart from `lookup`, which the model
builder itself uses (`GoogLeNet(weights=...)`), so that the builder never
imports what imports it."""
from keras_googlenet.models.googlenet import GoogLeNet
from keras_googlenet.weights.common import (converted_contract, is_aux_layer, load_converted,
                                            save_converted)
from keras_googlenet.weights.lookup import convert


def convert_file(source, out_path, include_top=True, classes=1000, include_aux=False,
                 preset_dir=None):
    """Converts a published file to a Keras `.weights.h5` (or `.keras`) for the
    matching model; with `preset_dir`, also a KerasHub preset folder whose
    image converter is the published weights' preprocessing.

    Returns:
        `(out_path, config)`: build `GoogLeNet(**config)` to load it.
    """
    converted = convert(source, include_aux=include_aux)
    config = dict(converted.config, include_top=include_top)
    if include_top:
        config["classes"] = classes
    if include_aux and any(is_aux_layer(name) for name in converted):
        config["aux_classifiers"] = True
    model = GoogLeNet(**config)
    load_converted(model, converted, warn_aux=False)
    out_path = save_converted(model, out_path, converted.origin)
    if preset_dir:
        from keras_googlenet.models import hub_format

        hub_format.write_preset(model, preset_dir, converted_contract(model, converted.origin))
    return out_path, config
