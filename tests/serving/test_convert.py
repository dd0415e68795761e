"""Tests of the TFLite and ONNX conversions against the SavedModel."""
import numpy as np
import pytest
import tensorflow as tf

from keras_googlenet.inference.converted import onnx_predict, tflite_predict
from keras_googlenet.serving import convert
from keras_googlenet.serving import export
import helpers as fx

# float32 conversions run the same float ops; dynamic-range quantisation
# stores int8 weights, so its probabilities move by up to a few 1e-3.
FLOAT_TOLERANCE = 1e-5
QUANTIZED_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """(model, preprocessed batch, SavedModel probabilities of the same images)."""
    model = fx.small_model(seed=3)
    images = [fx.jpeg(seed=40), fx.encode(fx.random_array(50, 130, seed=41), "PNG")]
    path = export.export_saved_model(model, tmp_path_factory.mktemp("convert") / "m")
    served = tf.saved_model.load(path).signatures["serving_default"](image_bytes=tf.constant(images))
    batch = convert.preprocessed_batch(images, fx.IMAGE_SIZE)
    return model, batch, served["probabilities"].numpy()


def test_tflite_float_and_dynamic_range(reference, tmp_path):
    model, batch, expected = reference
    float_path = convert.to_tflite(model, str(tmp_path / "m.tflite"))
    quant_path = convert.to_tflite(model, str(tmp_path / "q.tflite"), quantize="dynamic_range",
                                   select_tf_ops=False)
    np.testing.assert_allclose(tflite_predict(float_path, batch), expected,
                               atol=FLOAT_TOLERANCE)
    np.testing.assert_allclose(tflite_predict(quant_path, batch), expected,
                               atol=QUANTIZED_TOLERANCE)
    # Builtin ops only (no Flex delegate): LRN is a TFLite builtin.
    ops = convert.tflite_ops(float_path)
    assert "LOCAL_RESPONSE_NORMALIZATION" in ops and not any(op.startswith("Flex") for op in ops)
    assert (tmp_path / "q.tflite").stat().st_size < (tmp_path / "m.tflite").stat().st_size / 3


@pytest.mark.slow
def test_tflite_batch_norm_variant(tmp_path):
    model = fx.small_model(seed=4, batch_norm=True)
    batch = convert.preprocessed_batch([fx.jpeg(seed=42)], fx.IMAGE_SIZE)
    path = convert.to_tflite(model, str(tmp_path / "bn.tflite"))
    np.testing.assert_allclose(tflite_predict(path, batch),
                               model(batch, training=False).numpy(), atol=FLOAT_TOLERANCE)


def test_onnx(reference, tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    model, batch, expected = reference
    path = convert.to_onnx(model, str(tmp_path / "m.onnx"))
    np.testing.assert_allclose(onnx_predict(path, batch), expected, atol=FLOAT_TOLERANCE)


def test_bad_arguments(tmp_path):
    model = fx.small_model()
    with pytest.raises(ValueError, match="`quantize` must be one of"):
        convert.to_tflite(model, str(tmp_path / "x.tflite"), quantize="int4")


@pytest.mark.slow
def test_cli_export_with_conversions(tmp_path):
    from keras_googlenet.cli import build_parser

    pytest.importorskip("tf2onnx")
    model = fx.small_model(seed=5)
    model.save(tmp_path / "model.keras")
    args = build_parser(["export"]).parse_args(
        ["export", "--model", str(tmp_path / "model.keras"), "--base-dir",
         str(tmp_path / "serving"), "--tflite", "--onnx"])
    written = args._run(args)
    converted = tmp_path / "serving_converted" / "1"
    # Each converted file with its contract sidecar (<file>.json).
    assert sorted(p.name for p in converted.iterdir()) == [
        "googlenet.onnx", "googlenet.onnx.json", "googlenet.tflite", "googlenet.tflite.json",
        "googlenet_dynamic_range.tflite", "googlenet_dynamic_range.tflite.json"]
    assert sorted(p.name for p in (tmp_path / "serving").iterdir()) == ["1"]
    batch = convert.preprocessed_batch([fx.jpeg(seed=43)], fx.IMAGE_SIZE)
    expected = model(batch, training=False).numpy()
    np.testing.assert_allclose(tflite_predict(written["tflite"], batch), expected,
                               atol=FLOAT_TOLERANCE)
    np.testing.assert_allclose(onnx_predict(written["onnx"], batch), expected,
                               atol=FLOAT_TOLERANCE)
