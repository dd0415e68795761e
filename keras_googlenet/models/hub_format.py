"""KerasHub preset folders, read and written without KerasHub.

A preset folder (what `keras_googlenet.hub.to_preset` and KerasHub's
`save_to_preset` write) holds JSON configs and Keras weights files:

- config.json: the `GoogLeNetBackbone` (image_shape, batch_norm,
  kernel_5x5, pool4_size); model.weights.h5: its weights.
- task.json + task.weights.h5 (a classifier): the `GoogLeNetImageClassifier`
  head (num_classes, activation, dropout) and the classifier's weights.
- preprocessor.json, image_converter.json: the `GoogLeNetImageConverter`
  (normalization, image_size).
- metadata.json: KerasHub's record, plus our contract under
  `"keras_googlenet"`: KerasHub has no place for class names or the
  evaluation crop. KerasHub's `save_to_preset` rewrites this file, so the
  class names are also in task.json (the classifier's `class_names`); the
  crop fraction is then lost (the default, 0.875, is read).

`read_preset` parses the configs as JSON data (nothing is deserialised, no
code runs) and loads the weights into our `GoogLeNet`, whose layers are the
backbone's in the same order: Keras' weights files key layers by class and
position, not by name. Nothing here imports KerasHub.
"""
import json
import os

from keras_googlenet.models import contract as contract_lib

PACKAGE = "keras_googlenet"
BACKBONE = "GoogLeNetBackbone"
TASK = "GoogLeNetImageClassifier"
PREPROCESSOR = "GoogLeNetImageClassifierPreprocessor"
CONVERTER = "GoogLeNetImageConverter"
CONFIG_FILE, TASK_FILE, METADATA_FILE = "config.json", "task.json", "metadata.json"
PREPROCESSOR_FILE, CONVERTER_FILE = "preprocessor.json", "image_converter.json"
WEIGHTS_FILE, TASK_WEIGHTS_FILE = "model.weights.h5", "task.weights.h5"
CLASSIFIER = "classifier"  # the paper's linear layer, in both models
FEATURES = "inception_5b"  # the backbone's output
CONTRACT_KEY = "keras_googlenet"  # our record in metadata.json

# preprocess_input's modes as an ImageConverter's `x * scale + offset`
# (keras.applications.imagenet_utils' constants); caffe then reverses the
# channels, so its offset is in RGB order.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN, _TORCH_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def scale_and_offset(normalization):
    """`(scale, offset)` of an ImageConverter for a `preprocess_input` mode
    (None: RGB in [0, 255] as is)."""
    contract_lib.check_normalization(normalization)
    if normalization == "caffe":
        return None, [-m for m in reversed(_CAFFE_MEAN_BGR)]
    if normalization == "torch":
        return ([1 / (255 * s) for s in _TORCH_STD],
                [-m / s for m, s in zip(_TORCH_MEAN, _TORCH_STD)])
    if normalization == "tf":
        return 1 / 127.5, -1.0
    return None, None


def is_preset(path):
    """Whether `path` is a folder that looks like a KerasHub preset."""
    path = os.fspath(path)
    return os.path.isdir(path) and (os.path.exists(os.path.join(path, CONFIG_FILE))
                                    or os.path.exists(os.path.join(path, WEIGHTS_FILE)))


class Head:
    """What a preset says of a model's top: `variant` (the GoogLeNet
    arguments batch_norm, kernel_5x5, pool4_size), `classes` (None: no top),
    `activation` ("softmax" or None) and `dropout`."""

    def __init__(self, variant, classes=None, activation="softmax", dropout=0.4):
        self.variant, self.classes = variant, classes
        self.activation, self.dropout = activation, dropout


def describe(model, contract=None):
    """The functional network, contract and head of a `GoogLeNet` model or a
    `GoogLeNetClassifier`."""
    network = getattr(model, "network", model)
    if contract is None:
        contract = getattr(model, "contract", None)
    names = {layer.name for layer in network.layers}
    if FEATURES not in names:
        raise ValueError("Expected a GoogLeNet model or a GoogLeNetClassifier (a model with an "
                         f"{FEATURES!r} layer). Received: model={model.name!r}")
    variant = {"batch_norm": "inception_3a_1x1_bn" in names,
               "kernel_5x5": int(network.get_layer("inception_3a_5x5").kernel_size[0]),
               "pool4_size": int(network.get_layer("pool4_3x3_s2").pool_size[0])}
    shape = tuple(network.input.shape[1:])
    side = shape[0] if shape[-1] == 3 else shape[1]
    square = side if side is not None and side == (shape[1] if shape[-1] == 3 else shape[2]) else None
    if contract is None:
        contract = contract_lib.Contract(image_size=square)
    contract = contract.replace(image_size=contract.image_size or square, variant=variant)
    head = Head(variant)
    if CLASSIFIER in names:
        dense = network.get_layer(CLASSIFIER)
        activation = network.get_layer("predictions").get_config()["activation"]
        head = Head(variant, classes=int(dense.units),
                    activation=None if activation == "linear" else activation,
                    dropout=float(network.get_layer("pool5_dropout").rate))
    return network, contract, head


def write_contract(directory, contract):
    """Adds our contract to the preset's metadata.json."""
    path = os.path.join(os.fspath(directory), METADATA_FILE)
    metadata = _read_json(path) if os.path.exists(path) else {}
    metadata[CONTRACT_KEY] = contract_lib.ArtifactInfo(contract).to_json()
    with open(path, "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=4)


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e}).") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object. Received: {type(data).__name__}")
    return data


def _registered(data, path, expected):
    """Checks that a config is one of our classes (by its registered name)."""
    name = data.get("registered_name")
    if name != f"{PACKAGE}>{expected}":
        raise ValueError(f"{path}: not a GoogLeNet preset: expected the config of "
                         f"{PACKAGE}>{expected}. Received: registered_name={name!r}")
    config = data.get("config")
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the config of {expected} must be a JSON object. "
                         f"Received: config={config!r:.80}")
    return config


def read_config(directory):
    """The parsed preset: `(backbone config, task config or None, contract)`.

    Raises:
        ValueError: naming the file, when config.json is missing or not a
            GoogLeNetBackbone's, or another file is not what it should be.
    """
    directory = os.fspath(directory)
    path = os.path.join(directory, CONFIG_FILE)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: missing: a KerasHub preset folder has a {CONFIG_FILE}. "
                         f"Received: directory={directory!r}")
    backbone = _registered(_read_json(path), path, BACKBONE)
    task = None
    task_path = os.path.join(directory, TASK_FILE)
    if os.path.isfile(task_path):
        task = _registered(_read_json(task_path), task_path, TASK)
        if task.get("pooling", "avg") != "avg":
            raise ValueError(f"{task_path}: GoogLeNet's top pools by average. "
                             f"Received: pooling={task.get('pooling')!r}")
    fields = {}
    if task is not None and task.get("class_names") is not None:
        fields["class_names"] = task["class_names"]
    converter_path = os.path.join(directory, CONVERTER_FILE)
    if os.path.isfile(converter_path):
        converter = _registered(_read_json(converter_path), converter_path, CONVERTER)
        fields["normalization"] = converter.get("normalization", contract_lib.DEFAULT_NORMALIZATION)
        size = converter.get("image_size")
        if isinstance(size, list) and len(size) == 2 and size[0] == size[1]:
            fields["image_size"] = size[0]
    metadata_path = os.path.join(directory, METADATA_FILE)
    if os.path.isfile(metadata_path):
        ours = _read_json(metadata_path).get(CONTRACT_KEY)
        if isinstance(ours, dict):  # what image_converter.json says wins
            fields = {**{k: v for k, v in ours.items() if k != "format"}, **fields}
    contract = contract_lib.Contract.from_json(fields, origin=directory)
    return backbone, task, contract


def read_preset(directory):
    """Loads a GoogLeNet preset folder as our `GoogLeNet` functional model.

    Args:
        directory: a folder written by `keras_googlenet.hub.to_preset`,
            `write_preset` or KerasHub's `save_to_preset` of a
            `GoogLeNetImageClassifier` / `GoogLeNetBackbone`.

    Returns:
        `(model, contract)`: `GoogLeNet(include_top=True)` when the folder
        has task.json and task.weights.h5 (the classifier), else the
        backbone `GoogLeNet(include_top=False)`.
    """
    from keras_googlenet.models.googlenet import GoogLeNet

    directory = os.fspath(directory)
    backbone, task, contract = read_config(directory)
    task_weights = os.path.join(directory, TASK_WEIGHTS_FILE)
    top = task is not None and os.path.isfile(task_weights)
    shape = backbone.get("image_shape")
    kwargs = dict(input_shape=tuple(shape) if shape else None,
                  **{k: backbone[k] for k in ("batch_norm", "kernel_5x5", "pool4_size")
                     if k in backbone})
    try:
        if top:
            model = GoogLeNet(include_top=True, classes=task.get("num_classes"),
                              classifier_activation=task.get("activation"),
                              dropout_rate=task.get("dropout", 0.4), **kwargs)
        else:
            model = GoogLeNet(include_top=False, **kwargs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{directory}: the preset's config is not a GoogLeNet's: {e}") from None
    load_weights_by_name(model, os.path.join(directory, WEIGHTS_FILE))
    if top:
        load_weights_by_name(model, task_weights)
    return model, contract


def load_weights_by_name(model, path):
    """Loads a Keras `.weights.h5` file into `model` by layer name.

    Keras' files key a layer by its class and position, but keep its name
    in the `name` attribute of its `vars` group: read here, so the layers
    need not come in the file's order. Layers without weights are skipped.

    Returns:
        The number of layers loaded.
    """
    import h5py

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"{path}: missing: the preset has no weights file there.")
    loaded = 0
    with h5py.File(path, "r") as f:
        for key, group in f.get("layers", {}).items():
            variables = group.get("vars")
            if variables is None or not len(variables):
                continue
            name = variables.attrs.get("name", key)
            name = name.decode() if isinstance(name, bytes) else str(name)
            try:
                layer = model.get_layer(name)
            except ValueError:
                raise ValueError(f"{path}: the weights of layer {name!r}, which the model "
                                 f"{model.name!r} does not have.") from None
            values = [variables[str(i)][()] for i in range(len(variables))]
            expected = [tuple(w.shape) for w in layer.weights]
            if [v.shape for v in values] != expected:
                raise ValueError(f"{path}: the weights of layer {name!r} have shapes "
                                 f"{[v.shape for v in values]}, the model's {expected}.")
            layer.set_weights(values)
            loaded += 1
    return loaded


def _object(module, name, config):
    """A Keras-serialised object of one of our classes (KerasHub's layout)."""
    dtype = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
             "registered_name": None}
    return {"module": f"keras_googlenet.hub.{module}", "class_name": name,
            "config": {"trainable": True, "dtype": dtype, **config},
            "registered_name": f"{PACKAGE}>{name}"}


def write_preset(model, directory, contract=None):
    """Writes a GoogLeNet preset folder without KerasHub, in the layout that
    `keras_googlenet.hub.to_preset` (KerasHub's `save_to_preset`) writes:
    KerasHub loads it as a `GoogLeNetImageClassifier` (a model with the
    top; its auxiliary heads are left out) or a `GoogLeNetBackbone`.

    Args:
        model: a `GoogLeNet` functional model or a `GoogLeNetClassifier`
            (float32).
        directory: the folder to write (created if needed).
        contract: the preprocessing contract; default: the classifier's own,
            or the defaults with the model's input size.

    Returns:
        The directory.
    """
    import h5py
    import keras

    network, contract, head = describe(model, contract)
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    shape = list(network.input.shape[1:])
    backbone = _object("backbone", BACKBONE, {"name": "googlenet_backbone", "image_shape": shape,
                                              **head.variant})
    scale, offset = scale_and_offset(contract.normalization)
    size = contract.image_size
    converter = _object("image_converter", CONVERTER, {
        "name": "googlenet_image_converter", "image_size": [size, size] if size else None,
        "scale": scale, "offset": offset, "interpolation": "bilinear", "antialias": False,
        "crop_to_aspect_ratio": True, "pad_to_aspect_ratio": False,
        "bounding_box_format": "yxyx", "normalization": contract.normalization})
    preprocessor = _object("preprocessor", PREPROCESSOR, {
        "name": "googlenet_preprocessor", "image_converter": converter,
        "config_file": PREPROCESSOR_FILE})
    files = {CONFIG_FILE: backbone, CONVERTER_FILE: converter, PREPROCESSOR_FILE: preprocessor}
    if head.classes is not None:
        files[TASK_FILE] = _object("image_classifier", TASK, {
            "backbone": backbone, "preprocessor": preprocessor,
            "name": "googlenet_image_classifier", "num_classes": head.classes,
            "pooling": "avg", "activation": head.activation, "dropout": head.dropout,
            "class_names": None if contract.class_names is None else list(contract.class_names)})
    for name, data in files.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            json.dump(data, f, indent=4)
    # The backbone's layers, in the backbone's order: Keras writes the same file.
    features = keras.Model(network.input, network.get_layer(FEATURES).output,
                           name="googlenet_backbone")
    features.save_weights(os.path.join(directory, WEIGHTS_FILE))
    if head.classes is not None:
        # The head of a KerasHub task's weights file: its layers after the backbone.
        kernel, bias = network.get_layer(CLASSIFIER).get_weights()
        with h5py.File(os.path.join(directory, TASK_WEIGHTS_FILE), "w") as f:
            f.create_group("vars").attrs["name"] = "googlenet_image_classifier"
            for key, name in (("global_average_pooling2d", "pool5_7x7_s1"),
                              ("dropout", "pool5_dropout"), ("dense", CLASSIFIER)):
                f.create_group(f"layers/{key}/vars").attrs["name"] = name
            f["layers/dense/vars/0"], f["layers/dense/vars/1"] = kernel, bias
    metadata = {"keras_version": keras.version(), "parameter_count": features.count_params(),
                "tasks": ["ImageClassifier"]}
    with open(os.path.join(directory, METADATA_FILE), "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=4)
    write_contract(directory, contract)
    return directory
