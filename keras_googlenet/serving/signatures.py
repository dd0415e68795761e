"""The serving signatures of a GoogLeNet SavedModel.

All three run the same preprocessing as evaluation (the functions of
`keras_googlenet.data.preprocessing`, called in the graph, never copied):

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
pixels (PNG header) ...", see `keras_googlenet.data.image_header`) and a JPEG
with a marker inside its compressed data ("is corrupt", refused before
libjpeg prints "Corrupt JPEG data" on stderr). An empty batch returns empty
outputs. Grayscale, RGBA, 16-bit and palette images are converted to RGB; a
batch may mix sizes. Corruption the header checks cannot see (lost or
altered compressed bytes) still fails, or decodes to garbage, in the decoder.

`GoogLeNetServing.write` saves them with Keras' `ExportArchive`, which keeps
what the signatures read (the variables and the labels table, whose text
file becomes the SavedModel's `assets/class_names.txt`) and nothing of
Keras: the SavedModel needs only TensorFlow to load.
"""
import keras
import tensorflow as tf

from keras_googlenet.data import image_header, preprocessing
# The names a client of the SavedModel uses are the artifact's own (readers
# need them without serving): models.contract holds them.
from keras_googlenet.models.contract import (  # noqa: F401
    BYTES_INPUT, CLASS_NAMES_ASSET, DEFAULT_SIGNATURE, FLOAT_IMAGE_SIGNATURE, IMAGE_INPUT,
    IMAGE_SIGNATURE, OUTPUT_KEYS, SIGNATURES)

DEFAULT_TOP_K = 5
DEFAULT_MAX_PIXELS = image_header.DEFAULT_MAX_PIXELS

_JPEG_EOI = b"\xff\xd9"
_PNG_IEND = b"IEND"
# Data after the end marker (camera padding) is tolerated within this window.
_TAIL_WINDOW = 1024


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


class GoogLeNetServing:
    """The serving functions of a model (`serve_bytes`, `serve_image`,
    `serve_image_float`: `tf.function`s callable in memory), written as a
    SavedModel by `write`.

    Args:
        model: single-output Keras classifier taking normalised images.
        class_names_path: text file with one class name per line; it becomes
            the `assets/class_names.txt` of the SavedModel.
        image_size: side of the centre crop fed to the model.
        normalization: `preprocess_input` mode, or None for [0, 255] inputs.
        crop_fraction: see `preprocessing.eval_preprocess`.
        top_k: number of top classes returned (capped at the class count).
        max_pixels: largest decoded image (height x width) accepted.
        logits: the model outputs logits (the signatures apply the softmax)
            rather than probabilities (`averages.output_activation` tells).
    """

    def __init__(self, model, class_names_path, image_size, normalization,
                 crop_fraction=preprocessing.DEFAULT_CROP_FRACTION,
                 top_k=DEFAULT_TOP_K, max_pixels=DEFAULT_MAX_PIXELS, logits=False):
        self._model = model
        self._image_size = image_size
        self._normalization = normalization
        self._crop_fraction = crop_fraction
        self._classes = int(model.output.shape[-1])
        self._top_k = min(top_k, self._classes)
        self._max_pixels = max_pixels
        self._logits = logits
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

    def write(self, directory):
        """Saves the SavedModel of the three signatures to `directory`.

        `ExportArchive` tracks the `tf.Variable`s the traced signatures read
        (tracking the Keras model instead would save its `KerasVariable`
        wrappers, and the TF1/C++ loader of TF Serving and `saved_model_cli
        run` would restore one set of resources while the graph reads the
        other); the labels table is tracked explicitly, as ExportArchive
        asks of lookup tables.
        """
        archive = keras.export.ExportArchive()
        archive.track(self.labels_table)
        for name, function in zip(SIGNATURES, (self.serve_bytes, self.serve_image,
                                               self.serve_image_float)):
            function.get_concrete_function()  # a traced tf.function is added as it is
            archive.add_endpoint(name, function)
        archive.write_out(directory, verbose=False)
        return directory

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
            outputs = self._model(preprocessing.normalize(images, self._normalization),
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
