"""Tests of the TF Serving export (keras_googlenet.serving.export, serving_client)."""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_googlenet import GoogLeNet
from keras_googlenet.models import averages, contract
from keras_googlenet.serving import export, signatures, versions
from keras_googlenet.models import imagenet
from keras_googlenet.serving import client as serving_client
import helpers as fx

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, export dir, loaded SavedModel), one export for the module."""
    model = fx.small_model()
    base_dir = tmp_path_factory.mktemp("serving") / "googlenet"
    path = export.export_saved_model(model, base_dir, image_size=fx.IMAGE_SIZE,
                                     class_names=["ant", "bee", "cat", "dog", "eel"])
    return model, path, tf.saved_model.load(path)


def _serve(loaded, images, signature=signatures.DEFAULT_SIGNATURE):
    function = loaded.signatures[signature]
    key = (signatures.BYTES_INPUT if signature == signatures.DEFAULT_SIGNATURE
           else signatures.IMAGE_INPUT)
    return {k: v.numpy() for k, v in function(**{key: tf.constant(images)}).items()}


# ---------------------------------------------------------------------------
# Layout and loading without keras_googlenet.
# ---------------------------------------------------------------------------
_FRESH_PROCESS = r"""
import json, sys
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
images = [open(p, "rb").read() for p in sys.argv[3:]]
out = loaded.signatures["serving_default"](image_bytes=tf.constant(images))
np.savez(sys.argv[2], **{k: v.numpy() for k, v in out.items()})
assert "keras_googlenet" not in sys.modules, "the SavedModel must not need keras_googlenet"
print(json.dumps(sorted(loaded.signatures.keys())))
"""


@pytest.mark.slow
def test_fresh_process_matches_inference_model(exported, tmp_path):
    model, path, _ = exported
    images = [fx.jpeg(80, 100, seed=1), fx.jpeg(300, 70, seed=2)]
    files = []
    for i, data in enumerate(images):
        files.append(tmp_path / f"{i}.jpg")
        files[-1].write_bytes(data)
    result = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, path, str(tmp_path / "out.npz"), *map(str, files)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "serving_default", "serving_image", "serving_image_float"]
    out = np.load(tmp_path / "out.npz", allow_pickle=True)
    expected = fx.reference_probabilities(model, images)
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, atol=1e-5)
    assert out["probabilities"].dtype == np.float32
    top = np.argsort(-expected, axis=1, kind="stable")
    np.testing.assert_array_equal(out["classes"], top)
    np.testing.assert_allclose(out["scores"], np.take_along_axis(expected, top, 1), atol=1e-5)
    names = np.array(["ant", "bee", "cat", "dog", "eel"])
    np.testing.assert_array_equal(out["labels"].astype(str), names[top])


def test_layout(exported):
    _, path, _ = exported
    assert os.path.basename(path) == "1"
    assert sorted(os.listdir(os.path.dirname(path))) == ["1"]  # no temp dir left
    with open(os.path.join(path, "assets", signatures.CLASS_NAMES_ASSET)) as f:
        assert f.read() == "ant\nbee\ncat\ndog\neel\n"
    info = export.read_export_info(path)
    assert info["image_size"] == fx.IMAGE_SIZE and info["classes"] == fx.CLASSES
    assert info["ema_weights"] is False
    # The record names the classes too (a client reading it needs no asset).
    assert info.contract.class_names == ("ant", "bee", "cat", "dog", "eel")


def test_image_signatures_match_bytes_signature(exported):
    model, _, loaded = exported
    array = fx.random_array(90, 120, seed=3)
    png = fx.encode(array, "PNG")  # lossless: same pixels as `array`
    expected = _serve(loaded, [png])
    for signature, images in ((signatures.IMAGE_SIGNATURE, array[None]),
                              (signatures.FLOAT_IMAGE_SIGNATURE, array[None].astype(np.float32))):
        out = _serve(loaded, images, signature)
        np.testing.assert_allclose(out["probabilities"], expected["probabilities"], atol=1e-6)
        np.testing.assert_array_equal(out["labels"], expected["labels"])
    np.testing.assert_allclose(expected["probabilities"], fx.reference_probabilities(model, [png]),
                               atol=1e-5)


@pytest.mark.slow
def test_saved_model_cli_show_and_run(exported, tmp_path):
    _, path, _ = exported
    cli = os.path.join(VENV_BIN, "saved_model_cli")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    shown = subprocess.run([cli, "show", "--dir", path, "--all"], capture_output=True,
                           text=True, timeout=120, env=env)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in ("serving_default", "serving_image", "serving_image_float", "image_bytes"):
        assert f"'{name}'" in shown.stdout

    data = fx.jpeg(60, 70, seed=4)
    expected = _serve(exported[2], [data])["scores"][0]
    (tmp_path / "image.jpg").write_bytes(data)
    np.save(tmp_path / "image.npy", np.array([data], dtype=object))
    # --input_exprs is split on ";" and read with ast.literal_eval: escape
    # every byte so the literal holds no ";" or quote.
    literal = "[b'" + "".join(f"\\x{byte:02x}" for byte in data) + "']"
    # `run` loads through the TF1 session loader, the code path of TF Serving.
    for inputs in (["--inputs", f"image_bytes={tmp_path / 'image.npy'}"],
                   ["--input_exprs", f"image_bytes={literal}"]):
        ran = subprocess.run(
            [cli, "run", "--dir", path, "--tag_set", "serve", "--signature_def",
             "serving_default", *inputs], capture_output=True, text=True, timeout=120, env=env)
        assert ran.returncode == 0, ran.stderr[-3000:]
        scores = ran.stdout.split("Result for output key scores:")[1].split("Result")[0]
        values = np.array(scores.replace("[", " ").replace("]", " ").split(), dtype=np.float32)
        np.testing.assert_allclose(values, expected, atol=1e-5)


# ---------------------------------------------------------------------------
# Versions and atomicity.
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_versions_and_no_overwrite(tmp_path):
    model = fx.small_model()
    base = tmp_path / "googlenet"
    assert os.path.basename(export.export_saved_model(model, base)) == "1"
    assert os.path.basename(export.export_saved_model(model, base)) == "2"
    assert os.path.basename(export.export_saved_model(model, base, version=10)) == "10"
    (base / "notes").mkdir()  # non-numeric entries are not versions
    assert versions.existing_versions(base) == [1, 2, 10]
    assert versions.latest_version_dir(base) == os.path.join(base, "10")
    with pytest.raises(FileExistsError, match="Version 2 already exists"):
        export.export_saved_model(model, base, version=2)
    with pytest.raises(ValueError, match="positive integer"):
        export.export_saved_model(model, base, version=0)
    assert sorted(os.listdir(base)) == ["1", "10", "2", "notes"]


def test_interrupted_export_leaves_nothing(tmp_path, monkeypatch):
    model = fx.small_model()
    base = tmp_path / "googlenet"
    real_save = tf.saved_model.save

    def failing_save(obj, export_dir, **kwargs):
        with open(os.path.join(export_dir, "saved_model.pb"), "wb") as f:
            f.write(b"half written")
        raise KeyboardInterrupt("interrupted midway")

    monkeypatch.setattr(tf.saved_model, "save", failing_save)
    with pytest.raises(KeyboardInterrupt):
        export.export_saved_model(model, base)
    assert os.listdir(base) == []
    monkeypatch.setattr(tf.saved_model, "save", real_save)
    assert os.path.basename(export.export_saved_model(model, base)) == "1"
    assert os.listdir(base) == ["1"]


# ---------------------------------------------------------------------------
# EMA weights.
# ---------------------------------------------------------------------------
def _train_with_ema(model, steps=3):
    model.compile(optimizer=keras.optimizers.SGD(1e-3, use_ema=True, ema_momentum=0.5),
                  loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 50, (4, *model.input_shape[1:])).astype(np.float32)
    y = np.arange(4) % fx.CLASSES
    if isinstance(model.output, dict):
        y = {name: y for name in model.output}
    for _ in range(steps):  # train_on_batch never finalises the EMA (fit does)
        model.train_on_batch(x, y)


def _averaged_copy(model):
    """What the exported weights must be: the optimizer's averages."""
    optimizer = model.optimizer
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    for variable, target in zip(model.trainable_variables, copy.trainable_variables):
        target.assign(optimizer._model_variables_moving_average[
            optimizer._get_variable_index(variable)])
    return copy


def test_ema_weights_exported_without_touching_model(tmp_path):
    model = fx.small_model(size=72, aux_classifiers=True)
    assert averages.serving_model(model)[1] is False  # no averages before a step
    _train_with_ema(model)
    before = [w.copy() for w in model.get_weights()]
    images = [fx.jpeg(seed=5)]
    serving, used = averages.serving_model(model)
    assert used and len(serving.outputs) == 1
    # The averages of the training model, auxiliary heads dropped.
    averaged = _averaged_copy(model)
    expected = fx.reference_probabilities(
        keras.Model(averaged.input, averaged.output["predictions"]), images)
    raw = fx.reference_probabilities(averages.serving_model(model, use_ema=False)[0], images)
    assert np.abs(expected - raw).max() > 1e-4, "EMA and raw weights should differ"

    ema_dir = export.export_saved_model(model, tmp_path / "m")
    raw_dir = export.export_saved_model(model, tmp_path / "m", use_ema=False)
    assert export.read_export_info(ema_dir)["ema_weights"] is True
    assert export.read_export_info(raw_dir)["ema_weights"] is False
    ema_out = _serve(tf.saved_model.load(ema_dir), images)["probabilities"]
    raw_out = _serve(tf.saved_model.load(raw_dir), images)["probabilities"]
    np.testing.assert_allclose(ema_out, expected, atol=1e-5)
    np.testing.assert_allclose(raw_out, raw, atol=1e-5)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)

    # A .keras checkpoint keeps the optimizer's averages: the CLI path.
    model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(
        fx.reference_probabilities(averages.serving_model(reloaded)[0], images), expected, atol=1e-5)


def test_after_fit_weights_already_averaged():
    model = fx.small_model()
    model.compile(optimizer=keras.optimizers.SGD(1e-3, use_ema=True, ema_momentum=0.5),
                  loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(1).normal(0, 50, (4, fx.IMAGE_SIZE, fx.IMAGE_SIZE, 3))
    model.fit(x.astype(np.float32), np.arange(4) % fx.CLASSES, epochs=2, verbose=0)
    images = [fx.jpeg(seed=6)]
    serving, used = averages.serving_model(model)
    assert used  # applied again, a no-op: fit already copied the averages
    np.testing.assert_allclose(fx.reference_probabilities(serving, images),
                               fx.reference_probabilities(model, images), atol=1e-6)


# ---------------------------------------------------------------------------
# Class names.
# ---------------------------------------------------------------------------
def test_class_names_resolution(tmp_path):
    assert contract.resolve_class_names(None, 1000) == imagenet.class_names()
    assert contract.resolve_class_names(None, 3) == ["0", "1", "2"]
    (tmp_path / "names.txt").write_text("a\nb\nc\n")
    assert contract.resolve_class_names(str(tmp_path / "names.txt"), 3) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="3 classes but 2 class names"):
        contract.resolve_class_names(["a", "b"], 3)
    with pytest.raises(ValueError, match="line breaks"):
        contract.resolve_class_names(["a", "b\nc", "d"], 3)


def test_bad_arguments(tmp_path):
    model = fx.small_model()
    with pytest.raises(ValueError, match="5 classes but 2 class names"):
        export.export_saved_model(model, tmp_path / "m", class_names=["a", "b"])
    with pytest.raises(ValueError, match="takes 64x64 inputs but image_size=224"):
        export.export_saved_model(model, tmp_path / "m", image_size=224)
    with pytest.raises(ValueError, match="Only classifiers"):
        export.export_saved_model(GoogLeNet(include_top=False), tmp_path / "m")
    assert versions.existing_versions(tmp_path / "m") == []


# ---------------------------------------------------------------------------
# Bad input.
# ---------------------------------------------------------------------------
def _error(loaded, images, signature=signatures.DEFAULT_SIGNATURE):
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        _serve(loaded, images, signature)
    return info.value.message


def test_bad_bytes_are_named_and_model_keeps_working(exported):
    _, _, loaded = exported
    good = fx.jpeg(seed=7)
    expected = _serve(loaded, [good])
    png = fx.encode(fx.random_array(50, 60, seed=8), "PNG")
    message = _error(loaded, [good, b"", b"not an image at all", good[: len(good) // 2],
                              png[:-20]])
    assert "image at batch index 1 could not be decoded: empty string" in message
    assert "image at batch index 2 could not be decoded: not a JPEG, PNG, GIF, BMP or WebP" in message
    assert "image at batch index 3 could not be decoded: truncated JPEG" in message
    assert "image at batch index 4 could not be decoded: truncated PNG" in message
    assert "batch index 0" not in message
    # The loaded model answers the next request as before.
    np.testing.assert_array_equal(_serve(loaded, [good])["probabilities"], expected["probabilities"])


@pytest.mark.parametrize("fmt, mode", [("PNG", "L"), ("PNG", "RGBA"), ("PNG", "P"),
                                       ("GIF", None), ("BMP", None), ("WEBP", None)])
def test_other_formats_and_modes_are_served(exported, fmt, mode):
    model, _, loaded = exported
    data = fx.encode(fx.random_array(70, 50, seed=9), fmt, mode)
    out = _serve(loaded, [data])
    np.testing.assert_allclose(out["probabilities"], fx.reference_probabilities(model, [data]),
                               atol=1e-5)


def test_batch_mixing_sizes_and_formats(exported):
    model, _, loaded = exported
    images = [fx.jpeg(40, 300, seed=10), fx.encode(fx.random_array(200, 33, seed=11), "PNG", "L"),
              fx.jpeg(64, 64, seed=12)]
    out = _serve(loaded, images)
    np.testing.assert_allclose(out["probabilities"], fx.reference_probabilities(model, images),
                               atol=1e-5)


def test_undetectable_corruption_fails_in_decoder(exported):
    _, _, loaded = exported
    good = fx.jpeg(seed=13)
    corrupt = good[:200] + b"\x00" * (len(good) - 202) + good[-2:]  # keeps SOI and EOI
    try:
        _serve(loaded, [corrupt])  # libjpeg may decode garbage: acceptable
    except tf.errors.InvalidArgumentError:
        pass
    assert _serve(loaded, [good])["probabilities"].shape == (1, fx.CLASSES)


def test_image_signature_bad_input(exported):
    _, _, loaded = exported
    message = _error(loaded, np.full((1, 8, 8, 3), 300.0, np.float32),
                     signatures.FLOAT_IMAGE_SIGNATURE)
    assert "float images must hold finite values in [0, 255]" in message
    assert "positive height and width" in _error(loaded, np.zeros((1, 0, 5, 3), np.uint8),
                                                 signatures.IMAGE_SIGNATURE)


def test_max_pixels_refuses_large_images():
    module = _in_memory_module(fx.small_model(), max_pixels=100 * 100)
    module.serve_bytes(tf.constant([fx.jpeg(100, 100)]))
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"image at batch index 1 is too large: 101x100 pixels"):
        module.serve_bytes(tf.constant([fx.jpeg(100, 100), fx.jpeg(101, 100)]))


def _in_memory_module(model, **kwargs):
    """The serving module without saving it (the labels file stays behind)."""
    path = os.path.join(tempfile.mkdtemp(), "names.txt")
    with open(path, "w") as f:
        f.write("\n".join(map(str, range(fx.CLASSES))) + "\n")
    return signatures.GoogLeNetServing(model, path, fx.IMAGE_SIZE, "caffe", **kwargs)


@pytest.mark.slow
def test_huge_image_is_served(exported):
    model, _, loaded = exported
    data = fx.jpeg(8000, 8000, seed=14)
    out = _serve(loaded, [data, fx.jpeg(seed=15)])
    np.testing.assert_allclose(out["probabilities"][:1], fx.reference_probabilities(model, [data]),
                               atol=1e-5)


# ---------------------------------------------------------------------------
# REST bodies and gRPC requests.
# ---------------------------------------------------------------------------
def test_rest_body_round_trip(exported, tmp_path):
    _, path, loaded = exported
    images = [fx.jpeg(seed=16), fx.encode(fx.random_array(30, 90, seed=17), "PNG")]
    (tmp_path / "a.jpg").write_bytes(images[0])
    body = serving_client.rest_request_body([str(tmp_path / "a.jpg"), images[1]])
    text = json.dumps(body)
    assert set(body) == {"signature_name", "instances"}
    assert set(body["instances"][0]["image_bytes"]) == {"b64"}
    signature_name, inputs = serving_client.rest_body_to_inputs(text)
    assert signature_name == "serving_default"
    assert inputs["image_bytes"].numpy().tolist() == images
    direct = _serve(loaded, images)
    answer = json.dumps(serving_client.local_rest_predict(loaded, text))
    rows = serving_client.parse_rest_response(answer)
    np.testing.assert_allclose([r["probabilities"] for r in rows], direct["probabilities"],
                               atol=1e-6)
    assert serving_client.top_predictions(rows)[1][0][0] == direct["labels"][1][0].decode()
    # Columnar format and an error answer.
    columnar = {"inputs": {"image_bytes": [i["image_bytes"] for i in body["instances"]]}}
    assert serving_client.rest_body_to_inputs(columnar)[1]["image_bytes"].numpy().tolist() == images
    bad = serving_client.rest_request_body([b"garbage"])
    with pytest.raises(serving_client.ServingError, match="batch index 0 could not be decoded"):
        serving_client.parse_rest_response(serving_client.local_rest_predict(path, bad))


def test_rest_image_signature_body(exported):
    _, _, loaded = exported
    array = fx.random_array(20, 30, seed=18)
    body = {"signature_name": "serving_image", "instances": [array.tolist()]}
    rows = serving_client.parse_rest_response(serving_client.local_rest_predict(loaded, body))
    np.testing.assert_allclose(rows[0]["probabilities"],
                               _serve(loaded, array[None], signatures.IMAGE_SIGNATURE)["probabilities"][0],
                               atol=1e-6)


def _grpc_example():
    pytest.importorskip("tensorflow_serving.apis.predict_pb2")
    spec = importlib.util.spec_from_file_location(
        "grpc_client", os.path.join(REPO, "examples", "grpc_client.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_grpc_request_feeds_signature(exported):
    client = _grpc_example()
    _, _, loaded = exported
    images = [fx.jpeg(seed=19), fx.jpeg(50, 50, seed=20)]
    request = client.build_predict_request(images, model_name="googlenet")
    assert request.model_spec.signature_name == "serving_default"
    inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    assert list(inputs) == ["image_bytes"] and inputs["image_bytes"].tolist() == images
    out = loaded.signatures["serving_default"](image_bytes=tf.constant(inputs["image_bytes"]))
    assert out["labels"].shape == (2, fx.CLASSES)


def test_grpc_client_against_fake_server(exported):
    """The example end to end over real gRPC, the server answering with the
    SavedModel the way TF Serving's Predict does."""
    client = _grpc_example()
    import grpc
    from concurrent import futures
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    _, _, loaded = exported

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            signature = loaded.signatures[request.model_spec.signature_name]
            inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
            try:
                outputs = signature(**inputs)
            except tf.errors.InvalidArgumentError as error:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, error.message)
            response = predict_pb2.PredictResponse()
            for name, value in outputs.items():
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        images = [fx.jpeg(seed=21)]
        result = client.predict(images, server=f"127.0.0.1:{port}")
        direct = _serve(loaded, images)
        assert [label for label, _ in result[0]] == [l.decode() for l in direct["labels"][0]]
        np.testing.assert_allclose([s for _, s in result[0]], direct["scores"][0], atol=1e-6)
        with pytest.raises(grpc.RpcError) as info:
            client.predict([b""], server=f"127.0.0.1:{port}")
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "empty string" in info.value.details()
    finally:
        server.stop(None)


# ---------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------
def test_cli_export(tmp_path, capsys):
    model = fx.small_model()
    model.save(tmp_path / "model.keras")
    (tmp_path / "names.txt").write_text("a\nb\nc\nd\ne\n")
    from keras_googlenet.cli import build_parser

    args = build_parser(["export"]).parse_args(
        ["export", "--model", str(tmp_path / "model.keras"), "--base-dir",
         str(tmp_path / "serving"), "--class-names", str(tmp_path / "names.txt"),
         "--version", "3"])
    written = args._run(args)
    assert written["saved_model"] == os.path.join(str(tmp_path / "serving"), "3")
    assert "SavedModel written to" in capsys.readouterr().out
    loaded = tf.saved_model.load(written["saved_model"])
    labels = _serve(loaded, [fx.jpeg()])["labels"][0]
    assert sorted(l.decode() for l in labels) == ["a", "b", "c", "d", "e"]
