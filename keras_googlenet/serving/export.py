"""Exports a trained GoogLeNet as a TensorFlow Serving SavedModel.

`export_saved_model(model, "saved_models/googlenet")` writes
`saved_models/googlenet/<version>/`, the layout TF Serving watches. The
SavedModel holds the inference model (auxiliary heads dropped, Polyak/EMA
weights when the optimizer has them), the class names as an asset and three
signatures, all running the same preprocessing as evaluation (the functions
of `keras_googlenet.data.preprocessing`, called in the graph, never copied):

- `serving_default`: `image_bytes`, a `tf.string [None]` batch of encoded
  JPEG/PNG/GIF/BMP/WebP images of any sizes. The `_bytes` suffix makes TF
  Serving's REST API base64-decode `{"b64": "..."}` values.
- `serving_image`: `images`, `uint8 [None, None, None, 3]` RGB images (one
  batch shares a size; send different sizes as separate requests).
- `serving_image_float`: `images`, `float32 [None, None, None, 3]` RGB
  values in [0, 255] (e.g. already-decoded float images).

Each returns `probabilities` (`float32 [N, classes]`, softmax), and the top
`k = min(5, classes)`: `classes` (`int64 [N, k]`), `scores` (`float32
[N, k]`) and `labels` (`string [N, k]`, looked up in the class-names asset).

Bad input fails the request, never the server: an empty string, bytes of no
known image format, a truncated JPEG (no end-of-image marker FFD9) or PNG (no
IEND chunk) raise `InvalidArgumentError` "image at batch index 2 could not be
decoded: truncated JPEG ..." before anything is decoded, naming every bad
image of the batch; so are an image whose header declares more than
`max_pixels` pixels ("image at batch index 0 is too large: 23000x23000
pixels (PNG header) ...", see `keras_googlenet.image_header`) and a JPEG
with a marker inside its compressed data ("is corrupt", refused before
libjpeg prints "Corrupt JPEG data" on stderr). An empty batch returns empty
outputs. Grayscale, RGBA, 16-bit and palette images are converted to RGB; a
batch may mix sizes. Corruption the header checks cannot see (lost or
altered compressed bytes) still fails, or decodes to garbage, in the decoder.

The exported directory needs only TensorFlow to load (`tf.saved_model.load`,
`saved_model_cli`, TF Serving): no Keras, no keras_googlenet.

EMA rule: Keras' `model.fit` ends by copying the optimizer's moving averages
into the weights (`finalize_variable_values`), so a model right after `fit`
already holds them and re-applying them changes nothing. A model saved or
exported mid-training (a checkpoint, a custom loop, `train_on_batch`) does
not: there the averages are taken from `optimizer._model_variables_moving_average`
and copied into a clone, leaving the caller's model untouched.
"""
import errno
import json
import os
import shutil
import socket
import tempfile
import time
import warnings

import keras
import tensorflow as tf

from keras_googlenet import files
from keras_googlenet.data import image_header, preprocessing
from keras_googlenet.models import contract
from keras_googlenet.models.googlenet import OUTPUT_NAME, inference_model

CLASS_NAMES_ASSET = "class_names.txt"
EXPORT_INFO_FILE = os.path.join("assets.extra", "export_info.json")
DEFAULT_SIGNATURE = "serving_default"
IMAGE_SIGNATURE = "serving_image"
FLOAT_IMAGE_SIGNATURE = "serving_image_float"
BYTES_INPUT = "image_bytes"
IMAGE_INPUT = "images"
OUTPUT_KEYS = ("probabilities", "classes", "scores", "labels")
DEFAULT_TOP_K = 5
DEFAULT_MAX_PIXELS = image_header.DEFAULT_MAX_PIXELS
# TF Serving only loads children whose names are integers, so a name starting
# with a dot is never picked up half-written.
TEMP_PREFIX = ".tmp-export-"
# A temporary directory whose export is gone: its process is dead (same
# host), or it is older than this (another host, or a name without a pid).
STALE_TEMP_SECONDS = 24 * 3600
# Concurrent exports racing for the next free version retry this often.
_MAX_VERSION_ATTEMPTS = 1000

_JPEG_EOI = b"\xff\xd9"
_PNG_IEND = b"IEND"
# Data after the end marker (camera padding) is tolerated within this window.
_TAIL_WINDOW = 1024


# ---------------------------------------------------------------------------
# Versions of a TF Serving base directory.
# ---------------------------------------------------------------------------
def existing_versions(base_dir):
    """The numeric version directories of `base_dir`, sorted ascending.

    Args:
        base_dir: a TF Serving model base directory (may not exist).

    Returns:
        A list of ints (empty when `base_dir` does not exist).
    """
    if not os.path.isdir(base_dir):
        return []
    return sorted(
        int(name)
        for name in os.listdir(base_dir)
        if name.isdigit() and os.path.isdir(os.path.join(base_dir, name))
    )


def latest_version_dir(base_dir):
    """The path of the highest version in `base_dir`, or None if there is none."""
    versions = existing_versions(base_dir)
    return os.path.join(base_dir, str(versions[-1])) if versions else None


def _temp_owner_alive(name):
    """False when the export that made temporary directory `name` is dead
    (its pid is gone on this host); None when that cannot be told."""
    host, _, rest = name[len(TEMP_PREFIX):].rpartition("-pid")
    pid = rest.split("-", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return None
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        pass
    return True


def remove_stale_temp_dirs(base_dir, max_age=STALE_TEMP_SECONDS):
    """Removes the `.tmp-export-*` directories of killed exports.

    A directory is stale when the process that made it is dead (its name
    holds host and pid), or when it is older than `max_age` seconds and its
    owner cannot be checked (another host). A live export's directory stays.

    Returns:
        The removed paths.
    """
    removed = []
    for name in os.listdir(base_dir):
        path = os.path.join(base_dir, name)
        if not name.startswith(TEMP_PREFIX) or not os.path.isdir(path):
            continue
        alive = _temp_owner_alive(name)
        try:
            old = time.time() - os.path.getmtime(path) > max_age
        except OSError:
            continue  # removed meanwhile by a concurrent export
        if alive is False or (alive is None and old):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _publish_version(temp_dir, base_dir, version):
    """Renames `temp_dir` to the version directory; returns its path.

    rename(2) is atomic on one filesystem and fails on a non-empty target,
    so a concurrent export never clobbers a version: with `version=None`
    the next free number is taken, retrying after a lost race.
    """
    number = 0
    for _ in range(_MAX_VERSION_ATTEMPTS):
        # Past the last number tried too: a plain file may hold a number.
        number = version or max((existing_versions(base_dir) or [0])[-1], number) + 1
        final_dir = os.path.join(base_dir, str(number))
        try:
            if os.path.exists(final_dir):  # an empty directory would be replaced
                raise FileExistsError(errno.EEXIST, "exists", final_dir)
            os.rename(temp_dir, final_dir)
            return final_dir
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            if version is not None:
                raise FileExistsError(
                    f"Version {version} already exists in {base_dir!r} ({final_dir}); "
                    "versions are never overwritten: pass another `version` or None."
                ) from None
    raise RuntimeError(f"No free version found in {base_dir!r} after "
                       f"{_MAX_VERSION_ATTEMPTS} attempts (too many concurrent exports?).")


def _check_version(version):
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ValueError(
            f"`version` must be a positive integer or None. Received: version={version!r}"
        )


# ---------------------------------------------------------------------------
# The model to serve: inference head, EMA weights.
# ---------------------------------------------------------------------------
def _moving_averages(model, optimizer):
    """{id(variable): EMA variable} for the variables of `model` that the
    optimizer averages, or {} when it keeps no usable averages."""
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # LossScaleOptimizer
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if not getattr(optimizer, "use_ema", False) or not averages:
        return {}
    # Before the first step the averages are still their zero initial value.
    if int(optimizer.iterations.numpy()) == 0:
        return {}
    result = {}
    for variable in model.variables:
        index = optimizer._trainable_variables_indices.get(optimizer._var_key(variable))
        # The optimizer keeps its variables alive, so an id match with the
        # same object is the variable it averaged.
        if index is not None and optimizer._trainable_variables[index] is variable:
            if averages[index] is not None:
                result[id(variable)] = averages[index]
    if not result:
        warnings.warn(
            "The optimizer keeps moving averages (use_ema=True) but of none of "
            "this model's variables; exporting the raw weights.",
            stacklevel=3,
        )
    return result


def serving_model(model, use_ema=True, optimizer=None):
    """The single-output model to export, with the EMA weights if any.

    Args:
        model: a GoogLeNet classifier, with or without auxiliary heads.
        use_ema: use the optimizer's moving averages of the weights when it
            keeps them (`use_ema=True` optimizers, after at least one step).
        optimizer: the optimizer holding the averages; defaults to
            `model.optimizer` (e.g. a custom training loop passes its own).

    Returns:
        `(model, used_ema)`: the inference model itself when no averages are
        used, else a clone holding the averaged weights (the caller's model
        is never modified).
    """
    single = inference_model(model)
    if len(single.outputs) != 1 or len(single.output.shape) != 2:
        raise ValueError(
            "Only classifiers (a single `(batch, classes)` output, "
            f"`include_top=True`) can be exported. Received outputs: {single.outputs}"
        )
    averages = {}
    if use_ema:
        averages = _moving_averages(single, optimizer or getattr(model, "optimizer", None))
    if not averages:
        return single, False
    clone = keras.models.clone_model(single)
    # clone_model keeps layer names; variable paths may not (seed generators
    # get fresh names), so variables are matched layer by layer.
    for layer in single.layers:
        targets = clone.get_layer(layer.name).variables
        if len(targets) != len(layer.variables):
            raise RuntimeError(
                f"Layer {layer.name!r} has {len(layer.variables)} variables, its "
                f"clone {len(targets)}."
            )
        for source, target in zip(layer.variables, targets):
            if tuple(source.shape) != tuple(target.shape):
                raise RuntimeError(
                    f"Cloned variables of {layer.name!r} are out of order: "
                    f"{source.path!r} {source.shape} vs {target.path!r} {target.shape}"
                )
            target.assign(averages.get(id(source), source))
    return clone, True


def output_activation(model):
    """The activation of the main classifier: "softmax", or "linear" for logits."""
    layer = next((l for l in model.layers if l.name == OUTPUT_NAME), model.layers[-1])
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "linear")


# ---------------------------------------------------------------------------
# The serving module.
# ---------------------------------------------------------------------------
def check_encoded_images(image_bytes, max_pixels=DEFAULT_MAX_PIXELS):
    """Graph-side validity check of a batch of encoded images.

    Looks only at the bytes (no decoding): empty strings, unknown formats,
    truncated JPEG/PNG files, JPEGs with markers out of place and images
    whose header declares more than `max_pixels` pixels are reported
    together, each with its batch index.

    Args:
        image_bytes: `tf.string [N]`.
        max_pixels: largest height x width accepted.

    Returns:
        An op raising `InvalidArgumentError` naming every bad image.
    """
    length = tf.strings.length(image_bytes)

    def substr(start, size):
        start = tf.minimum(start, length)  # Substr rejects a start past the end.
        return tf.strings.substr(image_bytes, start, tf.fill(tf.shape(length), size))

    def tail_contains(marker):
        tail = substr(tf.maximum(length - _TAIL_WINDOW, 0), _TAIL_WINDOW)
        return tf.strings.split(tail, sep=marker).row_lengths() > 1

    fmt = image_header.image_format(image_bytes)
    is_jpeg, is_png, known = fmt == "jpeg", fmt == "png", fmt != ""
    problem = tf.where(
        length == 0,
        "empty string (no image bytes)",
        tf.where(
            ~known,
            "not a JPEG, PNG, GIF, BMP or WebP image (unknown leading bytes)",
            tf.where(
                is_jpeg & ~tail_contains(_JPEG_EOI),
                "truncated JPEG (no end-of-image marker FFD9)",
                tf.where(is_png & ~tail_contains(_PNG_IEND), "truncated PNG (no IEND chunk)", ""),
            ),
        ),
    )
    problem = tf.where(problem == "", "", tf.strings.join(["could not be decoded: ", problem]))
    # The header checks never raise, so every bad image is still named.
    header = tf.map_fn(lambda encoded: image_header.header_problem(encoded, max_pixels),
                       image_bytes, fn_output_signature=tf.string)
    problem = tf.where(problem == "", header, problem)
    bad = problem != ""
    index = tf.strings.as_string(tf.range(tf.size(length)))
    messages = tf.strings.join(
        ["image at batch index ", index, " ", problem, " (", tf.strings.as_string(length), " bytes)"]
    )
    message = tf.strings.reduce_join(tf.boolean_mask(messages, bad), separator="; ")
    return tf.debugging.Assert(~tf.reduce_any(bad), [message])


class _Untracked:
    """Holds a Keras model out of sight of SavedModel's object tracking."""

    def __init__(self, model):
        self.model = model


class GoogLeNetServing(tf.Module):
    """The `tf.Module` written by `export_saved_model`.

    Args:
        model: single-output Keras classifier taking normalised images.
        class_names_path: text file with one class name per line; it becomes
            the `assets/class_names.txt` of the SavedModel.
        image_size: side of the centre crop fed to the model.
        normalization: `preprocess_input` mode, or None for [0, 255] inputs.
        crop_fraction: see `preprocessing.eval_preprocess`.
        top_k: number of top classes returned (capped at the class count).
        max_pixels: largest decoded image (height x width) accepted.
    """

    def __init__(self, model, class_names_path, image_size, normalization,
                 crop_fraction=preprocessing.DEFAULT_CROP_FRACTION,
                 top_k=DEFAULT_TOP_K, max_pixels=DEFAULT_MAX_PIXELS):
        super().__init__(name="googlenet_serving")
        # Not tracked as an attribute: see `_track_captured_variables`.
        self._net = _Untracked(model)
        self._image_size = image_size
        self._normalization = normalization
        self._crop_fraction = crop_fraction
        self._classes = int(model.output.shape[-1])
        self._top_k = min(top_k, self._classes)
        self._max_pixels = max_pixels
        activation = output_activation(model)
        if activation not in ("softmax", "linear"):
            raise ValueError(
                "The exported `probabilities` are a softmax: the model must end "
                f"in softmax or logits (linear). Received activation: {activation!r}"
            )
        self._logits = activation == "linear"
        # Rebuilt from the asset when the SavedModel is loaded (TF Serving
        # runs the table initializer), so the labels always match the file.
        self.labels_table = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                class_names_path,
                key_dtype=tf.int64,
                key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
                value_dtype=tf.string,
                value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
            ),
            default_value="",
        )
        self.serve_bytes = tf.function(
            self._serve_bytes,
            input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT)],
        )
        self.serve_image = tf.function(
            self._serve_image,
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name=IMAGE_INPUT)],
        )
        self.serve_image_float = tf.function(
            self._serve_image_float,
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name=IMAGE_INPUT)],
        )
        self._track_captured_variables()

    def _track_captured_variables(self):
        """Tracks the `tf.Variable`s the signatures read, as Keras' ExportArchive does.

        Tracking the Keras model instead saves its `KerasVariable` wrappers,
        while the traced functions capture the `tf.Variable`s inside them:
        `tf.saved_model.load` copes, but the TF1/C++ loader (TF Serving,
        `saved_model_cli run`) then restores one set of resources and the
        graph reads the other ("Could not find variable conv1_7x7_s2/kernel").
        """
        seen, variables = set(), []
        for function in self.signatures().values():
            for variable in function.variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    variables.append(variable)
        self.model_variables = variables

    def signatures(self):
        """{signature name: concrete function} for `tf.saved_model.save`."""
        return {
            DEFAULT_SIGNATURE: self.serve_bytes.get_concrete_function(),
            IMAGE_SIGNATURE: self.serve_image.get_concrete_function(),
            FLOAT_IMAGE_SIGNATURE: self.serve_image_float.get_concrete_function(),
        }

    def _crop_spec(self):
        return tf.TensorSpec([self._image_size, self._image_size, 3], tf.float32)

    def _crop(self, image):
        return preprocessing.eval_preprocess(image, self._image_size, self._crop_fraction)

    def _decode_and_crop(self, args):
        index, encoded = args
        # The header was checked by `check_encoded_images`; this catches the
        # images whose header could not be read.
        image = preprocessing.decode_image(encoded, max_pixels=None)
        shape = tf.shape(image, out_type=tf.int64)
        check = tf.debugging.Assert(
            shape[0] * shape[1] <= self._max_pixels,
            [tf.strings.format(
                "image at batch index {} is too large: {}x{} pixels, more than "
                "max_pixels={}", (index, shape[0], shape[1], self._max_pixels))],
        )
        with tf.control_dependencies([check]):
            image = tf.identity(image)
        return self._crop(image)

    def _serve_bytes(self, image_bytes):
        with tf.control_dependencies([check_encoded_images(image_bytes, self._max_pixels)]):
            image_bytes = tf.identity(image_bytes)
        index = tf.range(tf.size(image_bytes, out_type=tf.int64))
        # map_fn: the images of one request may all have different sizes.
        images = tf.map_fn(
            self._decode_and_crop, (index, image_bytes), fn_output_signature=self._crop_spec()
        )
        return self._predict(images)

    def _check_image_sizes(self, images):
        shape = tf.shape(images)
        return tf.debugging.Assert(
            tf.logical_and(shape[1] > 0, shape[2] > 0),
            ["images must have a positive height and width; received shape", shape],
        )

    def _serve_image(self, images):
        with tf.control_dependencies([self._check_image_sizes(images)]):
            images = tf.map_fn(self._crop, images, fn_output_signature=self._crop_spec())
        return self._predict(images)

    def _serve_image_float(self, images):
        in_range = tf.reduce_all((images >= 0.0) & (images <= 255.0))  # False on NaN too
        check = tf.debugging.Assert(
            in_range,
            ["float images must hold finite values in [0, 255]; received min",
             tf.reduce_min(images), "max", tf.reduce_max(images)],
        )
        with tf.control_dependencies([check, self._check_image_sizes(images)]):
            images = tf.map_fn(self._crop, images, fn_output_signature=self._crop_spec())
        return self._predict(images)

    def _predict(self, images):
        """Normalises a float32 [N, S, S, 3] batch in [0, 255] and classifies it."""

        def classify():
            outputs = self._net.model(preprocessing.normalize(images, self._normalization),
                                      training=False)
            outputs = tf.cast(outputs, tf.float32)
            return tf.nn.softmax(outputs) if self._logits else outputs

        # Some layers fail on a 0-image batch; an empty request gets empty outputs.
        probabilities = tf.cond(tf.shape(images)[0] > 0, classify,
                                lambda: tf.zeros([0, self._classes], tf.float32))
        scores, classes = tf.math.top_k(probabilities, k=self._top_k)
        classes = tf.cast(classes, tf.int64)
        return {
            "probabilities": probabilities,
            "classes": classes,
            "scores": scores,
            "labels": self.labels_table.lookup(classes),
        }


# ---------------------------------------------------------------------------
# Export.
# ---------------------------------------------------------------------------
def resolve_image_size(model, image_size):
    """`image_size`, checked against the model's fixed input, or that input (224 if free)."""
    fixed = tuple(model.input_shape[1:3])
    if image_size is None:
        return fixed[0] if None not in fixed else 224
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"`image_size` must be a positive int. Received: image_size={image_size!r}")
    if None not in fixed and fixed != (image_size, image_size):
        raise ValueError(
            f"The model takes {fixed[0]}x{fixed[1]} inputs but image_size={image_size} "
            "was given."
        )
    return image_size


def export_saved_model(
    model,
    base_dir,
    version=None,
    class_names=None,
    image_size=None,
    normalization=preprocessing.DEFAULT_MODE,
    use_ema=True,
    optimizer=None,
    crop_fraction=preprocessing.DEFAULT_CROP_FRACTION,
    top_k=DEFAULT_TOP_K,
    max_pixels=DEFAULT_MAX_PIXELS,
):
    """Writes `base_dir/<version>/`, a SavedModel ready for TF Serving.

    The version appears atomically: the SavedModel is written to a hidden
    `base_dir/.tmp-export-<host>-pid<pid>-*` directory (TF Serving ignores
    non-numeric names) and renamed into place; on any error the temporary
    directory is removed and no version appears. Concurrent exports into one
    base directory get distinct versions; the temporary directories of
    killed exports are removed by the next export (`remove_stale_temp_dirs`).
    Files get the usual modes (0644, directories 0755, under umask 022).

    Args:
        model: a GoogLeNet classifier (`include_top=True`); auxiliary heads
            are dropped.
        base_dir: the TF Serving model base directory (created if needed).
        version: positive int; None picks one more than the highest
            existing version (1 in an empty directory). An existing version
            is never overwritten.
        class_names: None (ImageNet names for 1000 classes, else "0".."N-1"),
            a list of `classes` names or the path of a file with one per line.
        image_size: side of the crop fed to the model; None means the
            model's input size, or 224 for a model taking any size.
        normalization: `preprocess_input` mode the model was trained with
            ("caffe", "torch", "tf"), or None for raw [0, 255] inputs.
        use_ema: export the optimizer's moving averages when it has some
            (see the module docstring for the rule).
        optimizer: optimizer holding the averages (default `model.optimizer`).
        crop_fraction: evaluation centre-crop fraction.
        top_k: number of top classes in the outputs (capped at `classes`).
        max_pixels: largest decoded image (height x width) served.

    Returns:
        The path of the written version directory.
    """
    if version is not None:
        _check_version(version)
    if normalization is not None and normalization not in preprocessing.MODES:
        raise ValueError(
            f"`normalization` must be one of {preprocessing.MODES} or None. "
            f"Received: normalization={normalization!r}"
        )
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"`top_k` must be a positive int. Received: top_k={top_k!r}")
    net, used_ema = serving_model(model, use_ema=use_ema, optimizer=optimizer)
    image_size = resolve_image_size(net, image_size)
    classes = int(net.output.shape[-1])
    names = contract.resolve_class_names(class_names, classes)

    base_dir = os.fspath(base_dir)
    os.makedirs(base_dir, exist_ok=True)
    remove_stale_temp_dirs(base_dir)
    if version is not None and os.path.exists(os.path.join(base_dir, str(version))):
        raise FileExistsError(
            f"Version {version} already exists in {base_dir!r}; "
            "versions are never overwritten: pass another `version` or None."
        )
    temp_dir = tempfile.mkdtemp(
        prefix=f"{TEMP_PREFIX}{socket.gethostname()}-pid{os.getpid()}-", dir=base_dir)
    try:
        with tempfile.TemporaryDirectory() as staging:
            names_path = os.path.join(staging, CLASS_NAMES_ASSET)
            with open(names_path, "w", encoding="utf-8") as f:
                f.write("\n".join(names) + "\n")
            module = GoogLeNetServing(net, names_path, image_size, normalization,
                                      crop_fraction=crop_fraction, top_k=top_k,
                                      max_pixels=max_pixels)
            tf.saved_model.save(module, temp_dir, signatures=module.signatures())
        info = {
            "format": "keras_googlenet.serving/1",
            "image_size": image_size,
            "crop_fraction": crop_fraction,
            "normalization": normalization,
            "classes": classes,
            "top_k": min(top_k, classes),
            "ema_weights": used_ema,
            "max_pixels": max_pixels,
            "signatures": [DEFAULT_SIGNATURE, IMAGE_SIGNATURE, FLOAT_IMAGE_SIGNATURE],
            "tensorflow_version": tf.__version__,
            "keras_version": keras.__version__,
        }
        info_path = os.path.join(temp_dir, EXPORT_INFO_FILE)
        os.makedirs(os.path.dirname(info_path), exist_ok=True)
        with open(info_path, "w", encoding="utf-8") as f:
            json.dump(info, f, indent=2)
        files.publish_permissions(temp_dir)
        final_dir = _publish_version(temp_dir, base_dir, version)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return final_dir


def export_model_file(path, base_dir, version=None, use_ema=True):
    """`export_saved_model` of a `.keras` file with the preprocessing contract
    it carries (normalisation, image size, crop, class names); what a run on
    another backend calls through `backends.call_under_tensorflow`.

    Returns:
        The path of the written version directory.
    """
    from keras_googlenet.inference import loader

    model, model_contract = loader.load_model(path)
    return export_saved_model(
        model, base_dir, version=version, class_names=model_contract.class_names,
        image_size=model_contract.image_size, normalization=model_contract.normalization,
        crop_fraction=model_contract.crop_fraction, use_ema=use_ema)


def read_export_info(export_dir):
    """The `assets.extra/export_info.json` of an export (image size, EMA, ...)."""
    with open(os.path.join(export_dir, EXPORT_INFO_FILE), encoding="utf-8") as f:
        return json.load(f)
