import json

import pytest

from keras_googlenet.train import distribute


def test_auto_precision_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(distribute, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert distribute.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(distribute, "cpu_flags", lambda: {"avx2", "fma"})
    assert distribute.resolve_precision("auto") == "float32"
    assert distribute.resolve_precision("mixed_float16") == "mixed_float16"
    with pytest.raises(ValueError, match="precision='half'"):
        distribute.resolve_precision("half")


def test_strategy_names_and_tf_config_errors(monkeypatch):
    with pytest.raises(ValueError, match="strategy='gpus'"):
        distribute.get_strategy("gpus")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs the TF_CONFIG"):
        distribute.check_tf_config()
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="not valid multi-worker JSON"):
        distribute.check_tf_config()
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}))
    with pytest.raises(ValueError, match="task index 3"):
        distribute.check_tf_config()
