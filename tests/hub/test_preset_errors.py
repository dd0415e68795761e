"""The core preset reader's errors (no KerasHub needed): a folder without
config.json, or with the config of another model, fails naming the file."""
import json

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
