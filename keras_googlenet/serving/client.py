"""TF Serving REST helpers: request bodies, responses, and an offline check.

TF Serving's REST API (`POST /v1/models/<name>[/versions/<v>]:predict`)
takes binary tensors as `{"b64": "<base64>"}` objects. For the exported
`serving_default` signature a request body is::

    {"signature_name": "serving_default",
     "instances": [{"image_bytes": {"b64": "/9j/4AAQSk..."}}, ...]}

and the answer, one object per image (TF Serving's "row" format)::

    {"predictions": [{"probabilities": [...], "classes": [...],
                      "scores": [...], "labels": [...]}, ...]}

`rest_body_to_inputs` turns a body back into the signature's input tensors
the way TF Serving does, so a body can be checked against a SavedModel with
`local_rest_predict` without running a server. Only the standard library and
TensorFlow are used (no `requests`).
"""
import base64
import json
import os
import urllib.error
import urllib.request

import numpy as np
import keras  # noqa: F401  (imported before TensorFlow: see backends.py)
import tensorflow as tf

from keras_googlenet.serving.signatures import BYTES_INPUT, DEFAULT_SIGNATURE, IMAGE_INPUT


class ServingError(RuntimeError):
    """An error answer (`{"error": ...}`) of TF Serving."""


def _read_bytes(image):
    """`image` as bytes: a path (str / PathLike) is read, bytes are kept."""
    if isinstance(image, (bytes, bytearray)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        with open(image, "rb") as f:
            return f.read()
    raise TypeError(
        f"Expected image bytes or a file path. Received: {type(image).__name__}"
    )


def rest_request_body(images, signature_name=DEFAULT_SIGNATURE, input_name=BYTES_INPUT):
    """Builds a TF Serving REST predict body from image files or bytes.

    Args:
        images: iterable of file paths and/or encoded image bytes.
        signature_name: signature to call.
        input_name: the signature's bytes input.

    Returns:
        A dict, ready for `json.dumps`.
    """
    instances = [
        {input_name: {"b64": base64.b64encode(_read_bytes(image)).decode("ascii")}}
        for image in images
    ]
    if not instances:
        raise ValueError("`images` is empty: a request needs at least one image.")
    return {"signature_name": signature_name, "instances": instances}


def _decode_value(value):
    """A JSON value as TF Serving reads it: {"b64": s} -> bytes, str -> bytes."""
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise ValueError(f"A JSON object value must be {{'b64': ...}}. Received keys: {sorted(value)}")
        return base64.b64decode(value["b64"], validate=True)
    if isinstance(value, list):
        return [_decode_value(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    return value


def rest_body_to_inputs(body):
    """Turns a REST predict body into the signature's input tensors.

    Accepts both TF Serving formats: row (`"instances"`, a list of objects
    or, for single-input signatures, of bare values) and columnar
    (`"inputs"`, an object of lists or a bare list).

    Args:
        body: the body as a dict or a JSON string.

    Returns:
        `(signature_name, {input name: tf.Tensor})`.
    """
    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    signature_name = body.get("signature_name", DEFAULT_SIGNATURE)
    if ("instances" in body) == ("inputs" in body):
        raise ValueError(
            "A predict body needs exactly one of 'instances' (row format) and "
            f"'inputs' (columnar format). Received keys: {sorted(body)}"
        )
    if "instances" in body:
        instances = body["instances"]
        if not instances:
            raise ValueError("'instances' is empty.")
        if all(isinstance(row, dict) and "b64" not in row for row in instances):
            names = set(instances[0])
            if any(set(row) != names for row in instances):
                raise ValueError("Every instance must have the same input names.")
            columns = {name: [row[name] for row in instances] for name in names}
        else:  # Bare values: the signature's only input.
            columns = {_bare_input_name(instances): instances}
    else:
        inputs = body["inputs"]
        columns = inputs if isinstance(inputs, dict) else {_bare_input_name(inputs): inputs}
    tensors = {}
    for name, values in columns.items():
        values = _decode_value(values)
        tensors[name] = tf.constant(values, dtype=tf.string if _is_bytes(values) else None)
    return signature_name, tensors


def _bare_input_name(values):
    """The input a bare value feeds: `image_bytes` for {"b64"}, else `images`."""
    while isinstance(values, list) and values:
        values = values[0]
    return BYTES_INPUT if isinstance(values, (dict, str)) else IMAGE_INPUT


def _is_bytes(values):
    while isinstance(values, list) and values:
        values = values[0]
    return isinstance(values, bytes)


def _to_json_value(array):
    array = np.asarray(array)
    if array.dtype == object or array.dtype.kind == "S":
        return np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])(array).tolist()
    return array.tolist()


def outputs_to_rest_response(outputs):
    """Signature outputs as TF Serving's row-format JSON answer.

    Args:
        outputs: {name: tensor or array}, all with the same batch size.

    Returns:
        `{"predictions": [{name: value, ...}, ...]}`.
    """
    columns = {name: _to_json_value(value) for name, value in outputs.items()}
    batch = len(next(iter(columns.values())))
    return {"predictions": [{name: columns[name][i] for name in columns} for i in range(batch)]}


def local_rest_predict(saved_model, body):
    """Answers a REST body with a SavedModel, the way TF Serving would.

    Args:
        saved_model: a SavedModel directory or an object returned by
            `tf.saved_model.load`.
        body: the request body (dict or JSON string).

    Returns:
        The row-format response dict, or `{"error": message}` when the
        signature rejects the input (TF Serving answers HTTP 400 with it).
    """
    if isinstance(saved_model, (str, os.PathLike)):
        saved_model = tf.saved_model.load(os.fspath(saved_model))
    signature_name, inputs = rest_body_to_inputs(body)
    if signature_name not in saved_model.signatures:
        return {"error": f"Serving signature name: \"{signature_name}\" not found in signature def"}
    signature = saved_model.signatures[signature_name]
    specs = signature.structured_input_signature[1]
    unknown = set(inputs) - set(specs)
    if unknown:
        return {"error": f"Unknown inputs {sorted(unknown)}; the signature takes {sorted(specs)}"}
    # JSON numbers carry no dtype: TF Serving converts them to the signature's.
    inputs = {name: tf.cast(value, specs[name].dtype) if value.dtype != tf.string else value
              for name, value in inputs.items()}
    try:
        outputs = signature(**inputs)
    except tf.errors.InvalidArgumentError as error:
        return {"error": error.message}
    return outputs_to_rest_response(outputs)


def parse_rest_response(response):
    """Reads a TF Serving predict answer.

    Args:
        response: the answer as a dict or a JSON string (row format
            `"predictions"` or columnar `"outputs"`).

    Returns:
        A list with one dict per image: `{"labels": [...], "scores": [...],
        "classes": [...], "probabilities": [...]}` (whichever were returned).

    Raises:
        ServingError: for an `{"error": ...}` answer.
    """
    if isinstance(response, (str, bytes)):
        response = json.loads(response)
    if "error" in response:
        raise ServingError(response["error"])
    if "predictions" in response:
        return list(response["predictions"])
    if "outputs" in response:
        outputs = response["outputs"]
        batch = len(next(iter(outputs.values())))
        return [{name: values[i] for name, values in outputs.items()} for i in range(batch)]
    raise ValueError(
        f"Not a predict response (no 'predictions', 'outputs' or 'error'). Keys: {sorted(response)}"
    )


def top_predictions(parsed):
    """`[(label, score), ...]` per image from `parse_rest_response` rows."""
    return [list(zip(row["labels"], row["scores"])) for row in parsed]


def predict_url(host="localhost", port=8501, model_name="googlenet", version=None):
    """The REST predict URL of a model (a version or the latest)."""
    version_part = "" if version is None else f"/versions/{version}"
    return f"http://{host}:{port}/v1/models/{model_name}{version_part}:predict"


def post_predict(url, images, signature_name=DEFAULT_SIGNATURE, timeout=30.0):
    """Sends images to a running TF Serving and returns the parsed answer.

    Args:
        url: e.g. `predict_url()`.
        images: file paths and/or encoded bytes.
        signature_name: signature to call.
        timeout: seconds.

    Returns:
        `parse_rest_response` of the answer.
    """
    data = json.dumps(rest_request_body(images, signature_name)).encode("utf-8")
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return parse_rest_response(answer.read())
    except urllib.error.HTTPError as error:
        # TF Serving puts the reason (e.g. a bad image) in the JSON body.
        return parse_rest_response(error.read())
