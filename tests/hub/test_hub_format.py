"""The core preset folder reader and writer (no KerasHub needed): what
write_preset writes, read_preset reads back with the same outputs; a folder
without config.json, or with the config of another model, fails naming the
file."""
import json

import numpy as np
import pytest

from keras_googlenet.models import hub_format


def test_missing_config(tmp_path):
    (tmp_path / "model.weights.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"config\.json: missing"):
        hub_format.read_preset(tmp_path)
    from keras_googlenet import load_model

    with pytest.raises(ValueError, match=r"config\.json: missing"):
        load_model(tmp_path)


def test_config_of_another_model(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "module": "keras_hub.src.models.resnet.resnet_backbone", "class_name": "ResNetBackbone",
        "config": {}, "registered_name": "keras_hub>ResNetBackbone"}))
    with pytest.raises(ValueError, match=r"config\.json: not a GoogLeNet preset.*"
                                         r"registered_name='keras_hub>ResNetBackbone'"):
        hub_format.read_preset(tmp_path)


def test_not_json(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json: not a readable JSON file"):
        hub_format.read_preset(tmp_path)


@pytest.mark.parametrize("include_top", [True, False])
def test_write_then_read(tmp_path, include_top):
    from keras_googlenet import GoogLeNet
    from keras_googlenet.models.contract import Contract

    model = GoogLeNet(include_top=include_top, classes=3, input_shape=(65, 65, 3),
                      batch_norm=True, kernel_5x5=3, pool4_size=2)
    contract = Contract(normalization="tf", class_names=["a", "b", "c"], crop_fraction=0.8)
    hub_format.write_preset(model, tmp_path, contract)
    read, read_contract = hub_format.read_preset(tmp_path)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 65, 65, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(read(x)), np.asarray(model(x)), atol=1e-5, rtol=0)
    assert read_contract.normalization == "tf" and read_contract.image_size == 65
    assert read_contract.crop_fraction == 0.8 and list(read_contract.class_names) == ["a", "b", "c"]
    assert read_contract.variant == {"batch_norm": True, "kernel_5x5": 3, "pool4_size": 2}
