"""Mirrored and multi-worker training equal one device with the same global
batch. Each configuration runs in its own process: logical devices and
TF_CONFIG must be set before TensorFlow starts."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

# Minutes each: the slow tier (CI runs it after the quick one).
pytestmark = pytest.mark.slow

WORKER = os.path.join(os.path.dirname(__file__), "distributed_worker.py")
# float32 sums in a different order (all-reduce of two half-batch gradients
# versus one full-batch gradient) after 3 SGD steps.
ATOL, RTOL = 2e-5, 1e-4


def _env(**extra):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **extra)
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _run(kind, out, *extra, env=None):
    return subprocess.Popen([sys.executable, WORKER, kind, str(out), *extra],
                            env=env or _env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(proc, timeout=300):
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output[-3000:]


def _weights(path):
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k.split("_")[1]))]


def _assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=ATOL, rtol=RTOL)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single") / "w.npz"
    _finish(_run("single", out))
    return _weights(out)


def test_mirrored_on_two_logical_cpus_equals_one_device(single, tmp_path):
    _finish(_run("mirrored", tmp_path / "m.npz", "2"))
    mirrored = _weights(tmp_path / "m.npz")
    _assert_same(mirrored, single)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_equal_each_other_and_one_process(single, tmp_path):
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        procs.append(_run("multi_worker", tmp_path / f"w{index}.npz",
                          env=_env(TF_CONFIG=json.dumps(tf_config))))
    for proc in procs:
        _finish(proc)
    w0, w1 = _weights(tmp_path / "w0.npz"), _weights(tmp_path / "w1.npz")
    for a, b in zip(w0, w1):
        np.testing.assert_array_equal(a, b)
    # The custom loop on one process equals fit on one process, and the two
    # workers equal both.
    _finish(_run("single_loop", tmp_path / "loop.npz"))
    _assert_same(_weights(tmp_path / "loop.npz"), single)
    _assert_same(w0, single)
    # Training moved the weights far more than the tolerance (the
    # comparisons are not vacuous), from the same start in every process.
    initial = _weights(tmp_path / "w0.init.npz")
    _assert_same(initial, _weights(tmp_path / "loop.init.npz"))
    assert max(np.abs(a - b).max() for a, b in zip(initial, w0)) > 100 * ATOL
