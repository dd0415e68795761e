"""Calibrated int8 files (TFLite int8 builtins, ONNX Runtime QDQ): agreement
with float32, their sidecar contracts, and bad calibration input."""
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_googlenet import GoogLeNet, cli
from keras_googlenet.inference import evaluation, predict
from keras_googlenet.models import contract as contract_lib
from keras_googlenet.serving import quantize
import helpers as fx

AGREEMENT = 0.97
CALIBRATION_IMAGES = 32


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A 10-class 64x64 batch-norm model as .keras, int8 .tflite and int8 .onnx."""
    root = tmp_path_factory.mktemp("int8")
    keras.utils.set_random_seed(7)
    model = GoogLeNet(classes=10, input_shape=(64, 64, 3), batch_norm=True)
    contract = contract_lib.Contract(image_size=64, class_names=[f"d{i}" for i in range(10)])
    keras_path = contract_lib.save_model(model, str(root / "m.keras"), contract)
    calibration = quantize.calibration_images("embedded", CALIBRATION_IMAGES, 64, "caffe")
    assert calibration.shape == (CALIBRATION_IMAGES, 64, 64, 3)
    paths = {}
    for key, convert_fn, runtime in (("tflite", quantize.to_tflite_int8, "tflite"),
                                     ("onnx", quantize.to_onnx_int8, "onnxruntime")):
        path = str(root / f"m_int8.{key}")
        _, float_ops = convert_fn(model, path, calibration)
        quantization = (quantize.tflite_input_quantization(path) if key == "tflite"
                        else quantize.onnx_input_quantization(path))
        quantize.write_sidecar(path, contract, runtime, "int8", 10,
                               input_quantization=quantization, float_ops=float_ops,
                               calibration={"data": "embedded", "split": "train",
                                            "images": CALIBRATION_IMAGES})
        paths[key] = path
    return keras_path, paths


@pytest.mark.slow
def test_int8_agrees_with_float32_through_evaluate(converted):
    keras_path, paths = converted
    results = evaluation.evaluate([keras_path, paths["tflite"], paths["onnx"]],
                                  data="embedded", split="validation", verbose=0)
    rows = results["per_model"]
    assert [r["model"] for r in rows] == [keras_path, paths["tflite"], paths["onnx"]]
    assert rows[0]["top1_agreement_with_first"] == 1.0
    for row in rows[1:]:
        assert row["num_examples"] == 360
        assert row["top1_agreement_with_first"] >= AGREEMENT, row
    assert "agrees with first" in results["per_model_markdown"]


def test_int8_files_are_integer_and_carry_their_contract(converted):
    _, paths = converted
    # The batch-norm variant has no LRN: every compute op runs in int8.
    ops = tf.lite.Interpreter(model_path=paths["tflite"])._get_ops_details()
    assert "CONV_2D" in {op["op_name"] for op in ops}
    for path in paths.values():
        contract, info = contract_lib.read_sidecar(path)
        assert contract.image_size == 64 and contract.normalization == "caffe"
        assert contract.class_names[0] == "d0" and info["precision"] == "int8"
        assert info["float_ops"] == []
        assert info["input"]["quantization"]["scale"] > 0


def test_predict_reads_the_sidecar(converted, tmp_path):
    keras_path, paths = converted
    image = tmp_path / "a.jpg"
    image.write_bytes(fx.jpeg(seed=3))
    expected = predict.predict_files(keras_path, [str(image)], top=1, verbose=False)
    for path in paths.values():
        got = predict.predict_files(path, [str(image)], top=1, verbose=False)
        assert got[0][1][0][0].startswith("d")
        assert abs(got[0][1][0][1] - expected[0][1][0][1]) < 0.1


def test_sidecar_missing_or_invalid(converted, tmp_path):
    _, paths = converted
    lone = tmp_path / "lone.tflite"
    lone.write_bytes(open(paths["tflite"], "rb").read())
    with pytest.raises(FileNotFoundError, match="no contract"):
        contract_lib.read_sidecar(str(lone))
    data = json.load(open(paths["tflite"] + ".json"))
    for bad in ({**data, "normalization": "bogus"}, {**data, "classes": 3},
                {**data, "format": "x"}):
        with open(str(lone) + ".json", "w") as f:
            json.dump(bad, f)
        with pytest.raises(ValueError, match="lone.tflite.json"):
            contract_lib.read_sidecar(str(lone))
    with open(str(lone) + ".json", "w") as f:
        f.write("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        contract_lib.read_sidecar(str(lone))


def test_bad_calibration_data_is_one_clear_line(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for spec in (f"folder:{empty}", f"tfrecord:{tmp_path}/none-*.tfrecord"):
        with pytest.raises(ValueError) as raised:
            quantize.calibration_images(spec, 10, 64)
        message = str(raised.value)
        assert "\n" not in message and "calibration data" in message, message
    import tensorflow as tf

    with pytest.raises(ValueError, match="yields no images"):
        quantize.calibration_images(tf.data.Dataset.from_tensor_slices(
            np.zeros([0, 8, 8, 3], np.uint8)), 10, 64)
    with pytest.raises(ValueError, match="positive int"):
        quantize.calibration_images("embedded", 0, 64)


def test_export_int8_fails_before_converting(converted, tmp_path, capsys):
    keras_path, _ = converted
    empty = tmp_path / "empty"
    empty.mkdir()
    base = tmp_path / "serving"
    code = cli.main(["export", "--model", keras_path, "--base-dir", str(base), "--int8",
                     "--calibration-data", f"folder:{empty}"])
    assert code != 0
    err = capsys.readouterr().err
    assert "calibration data" in err
    assert not base.exists() and not os.path.exists(str(base) + "_converted")
