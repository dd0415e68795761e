"""Classifies images with a TF Serving model over gRPC.

    pip install tensorflow-serving-api   # same minor version as tensorflow
    python examples/grpc_client.py cat.jpg dog.png --server localhost:8500

Sends one PredictRequest to the `serving_default` signature of the model
exported by `googlenet export`, with the encoded files as the `image_bytes`
string tensor (no base64 over gRPC), and prints the top labels and scores.
"""
import argparse

import grpc
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc


def build_predict_request(images, model_name="googlenet", signature_name="serving_default",
                          version=None):
    """A PredictRequest feeding encoded images to `image_bytes`.

    Args:
        images: encoded image bytes and/or file paths.
        model_name: the model name TF Serving was started with.
        signature_name: signature to call.
        version: model version, or None for the latest.

    Returns:
        A `tensorflow_serving.apis.predict_pb2.PredictRequest`.
    """
    encoded = []
    for image in images:
        if not isinstance(image, (bytes, bytearray)):
            with open(image, "rb") as f:
                image = f.read()
        encoded.append(bytes(image))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    request.inputs["image_bytes"].CopyFrom(tf.make_tensor_proto(encoded, dtype=tf.string))
    return request


def parse_predict_response(response):
    """`[(label, score), ...]` per image from a PredictResponse."""
    labels = tf.make_ndarray(response.outputs["labels"])
    scores = tf.make_ndarray(response.outputs["scores"])
    return [
        [(label.decode("utf-8"), float(score)) for label, score in zip(row_labels, row_scores)]
        for row_labels, row_scores in zip(labels, scores)
    ]


def predict(images, server="localhost:8500", model_name="googlenet", timeout=30.0):
    """Sends `images` to TF Serving at `server`; returns `parse_predict_response`."""
    with grpc.insecure_channel(server) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.Predict(build_predict_request(images, model_name), timeout=timeout)
    return parse_predict_response(response)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--server", default="localhost:8500", help="TF Serving gRPC host:port")
    parser.add_argument("--model-name", default="googlenet")
    args = parser.parse_args(argv)
    for path, predictions in zip(args.images, predict(args.images, args.server, args.model_name)):
        print(path)
        for label, score in predictions:
            print(f"  {label:<30} {score:.4f}")


if __name__ == "__main__":
    main()
