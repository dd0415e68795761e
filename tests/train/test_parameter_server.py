"""Asynchronous SGD on ParameterServerStrategy (train/parameter_server.py).

Each cluster check runs in its own process (tests/train/ps_check.py): an
in-process loopback cluster of tf.distribute.Servers, which cannot be
stopped once started."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_googlenet.train import parameter_server

CHECK = os.path.join(os.path.dirname(__file__), "ps_check.py")


def _check(kind, out):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    proc = subprocess.run([sys.executable, CHECK, kind, str(out)], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=420)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_step_counter_is_exact_with_two_workers(tmp_path):
    # Keras' Variable.assign_add reads, adds and assigns: two workers at once
    # lost 61 of 300 increments here before `exact_updates`.
    out = tmp_path / "exact.json"
    _check("exact", out)
    with open(out) as f:
        result = json.load(f)
    assert result["iterations"] == 300
    assert len(result["staleness"]) == 300 and min(result["staleness"]) >= 0
    history = result["history"]
    assert len(history["loss"]) == len(history["val_accuracy"]) == 2
    assert history["val_accuracy"][-1] > 0.9  # it learns (3 separable classes)
    with open(tmp_path / "b" / "state.json") as f:
        assert json.load(f)["step"] == 300  # the checkpoint holds exactly its steps


def test_one_worker_gives_the_one_device_weights(tmp_path):
    # One worker is synchronous: the same batches give the same weights
    # (with momentum, weight decay and the Polyak averages written at the end).
    _check("one_worker", tmp_path / "ps")
    _check("one_device", tmp_path / "single")
    with np.load(tmp_path / "ps.npz") as a, np.load(tmp_path / "single.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        assert int(a["iterations"]) == 10
        for key in a.files:
            np.testing.assert_allclose(a[key], b[key], atol=2e-6, rtol=1e-5, err_msg=key)


CLUSTER = {"chief": ["127.0.0.1:2000"], "worker": ["127.0.0.1:2001", "127.0.0.1:2002"],
           "ps": ["127.0.0.1:2003"]}


def test_tf_config_is_read_and_checked():
    config = parameter_server.read_tf_config(json.dumps(
        {"cluster": CLUSTER, "task": {"type": "worker", "index": 1}}))
    assert config["task"] == {"type": "worker", "index": 1}
    with pytest.raises(ValueError, match="needs the TF_CONFIG environment variable.*unset"):
        parameter_server.read_tf_config("")
    with pytest.raises(ValueError, match="not JSON with a cluster and a task"):
        parameter_server.read_tf_config("{cluster")
    with pytest.raises(ValueError, match=r"1 chief, at least 1 worker and at least 1 ps.*"
                                         r"'ps': 0"):
        parameter_server.read_tf_config(json.dumps(
            {"cluster": {"chief": CLUSTER["chief"], "worker": CLUSTER["worker"]},
             "task": {"type": "chief", "index": 0}}))
    with pytest.raises(ValueError, match="task type 'evaluator' is not one"):
        parameter_server.read_tf_config(json.dumps(
            {"cluster": CLUSTER, "task": {"type": "evaluator", "index": 0}}))
    with pytest.raises(ValueError, match="task index 2 is not among the 2 worker"):
        parameter_server.read_tf_config(json.dumps(
            {"cluster": CLUSTER, "task": {"type": "worker", "index": 2}}))


def test_staleness_summary():
    summary = parameter_server.staleness_summary([0, 0, 1, 3, 0])
    assert summary["steps"] == 5 and summary["max"] == 3 and summary["median"] == 0
    assert summary["histogram"] == {"0": 3, "1": 1, "3": 1}
    assert summary["mean"] == pytest.approx(0.8)
    assert parameter_server.staleness_summary([]) == {"steps": 0}
