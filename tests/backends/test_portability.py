"""A model saved under one Keras backend loads under every other one.

Two GoogLeNets (the bvlc variant with LRN, and the batch-norm variant, both
with their auxiliary heads) with seeded random weights (batch-norm moving
statistics included) are saved under each installed backend, with
`keras.saving.save_model` and with `models.contract.save_model` (the
contract inside the file), and loaded under each backend, with
`keras.saving.load_model` and `inference.loader.load_model`. The loaded
model's logits (all three heads) equal the saver's within 1e-5.

Also under each backend: the weight converters (bvlc ONNX, torchvision)
load into a model that matches the source framework's output, using the
random reference networks of tests/weights/test_weights.py.

Each backend runs in a subprocess (KERAS_BACKEND is read once, at import).
Round 1: each backend saves its files, checks the converters and loads the
files saved before it; round 2: each backend loads the files saved after it.
"""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

# Minutes each: the slow tier (CI runs it after the quick one).
pytestmark = pytest.mark.slow

TOL = 1e-5
SIZE = 65  # the smallest side at which the auxiliary heads still fit
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BACKENDS = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b)]
VARIANTS = ("lrn", "batch_norm")
KINDS = ("keras", "contract")

WORKER = r"""
import json, os, sys
import numpy as np
import keras
import keras_googlenet as kg
from keras_googlenet.inference import loader
from keras_googlenet.models import contract as contract_lib
# keras.saving.load_model needs the LRN class registered; `keras_googlenet`
# imports its modules lazily, so import the layers module (loader.load_model
# does this itself).
from keras_googlenet.models import layers  # noqa: F401

folder, save, check_weights, load_from = sys.argv[1], sys.argv[2] == "1", sys.argv[3] == "1", \
    [b for b in sys.argv[4].split(",") if b]
backend = keras.backend.backend()
SIZE = int(os.environ["PORTABILITY_SIZE"])
VARIANTS = {"lrn": {}, "batch_norm": {"batch_norm": True, "kernel_5x5": 3}}
x = np.random.default_rng(1).normal(0, 60, (2, SIZE, SIZE, 3)).astype("float32")
report = {"backend": backend, "loaded": []}


def seeded_weights(model, seed):
    rng = np.random.default_rng(seed)
    values = []
    for w in model.weights:
        shape, path = tuple(w.shape), w.path
        if "moving_variance" in path:
            values.append(rng.uniform(0.5, 1.5, shape))
        elif "gamma" in path:
            values.append(rng.uniform(0.8, 1.2, shape))
        elif len(shape) > 1:
            values.append(rng.normal(0, (2.0 / np.prod(shape[:-1])) ** 0.5, shape))
        else:  # biases, beta, moving_mean
            values.append(rng.normal(0, 0.1, shape))
    model.set_weights([v.astype("float32") for v in values])


def outputs(model):
    out = model.predict(x, verbose=0)
    return {k: np.asarray(v) for k, v in out.items()}


if save:
    for seed, (variant, kwargs) in enumerate(VARIANTS.items()):
        model = kg.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=5, aux_classifiers=True,
                             classifier_activation=None, **kwargs)
        seeded_weights(model, seed)
        np.savez(os.path.join(folder, f"{backend}_{variant}_ref.npz"), **outputs(model))
        keras.saving.save_model(model, os.path.join(folder, f"{backend}_{variant}_keras.keras"))
        contract = contract_lib.Contract(normalization="torch", image_size=SIZE,
                                         class_names=list("abcde"), variant=kwargs)
        contract_lib.save_model(model, os.path.join(folder, f"{backend}_{variant}_contract.keras"),
                                contract)

for saver in load_from:
    for variant in VARIANTS:
        for kind in ("keras", "contract"):
            path = os.path.join(folder, f"{saver}_{variant}_{kind}.keras")
            if kind == "keras":
                model = keras.saving.load_model(path, compile=False)
            else:
                model, contract = loader.load_model(path)
                assert (contract.normalization, contract.image_size, contract.class_names) == \
                    ("torch", SIZE, tuple("abcde")), contract
            np.savez(os.path.join(folder, f"{saver}_{variant}_{kind}_by_{backend}.npz"),
                     **outputs(model))
            report["loaded"].append([saver, variant, kind])

if check_weights:
    # The converters against the random reference networks of the weights tests.
    sys.path.insert(0, os.path.join(os.environ["PORTABILITY_REPO"], "tests", "weights"))
    import test_weights as tw
    from keras_googlenet import weights as W

    onnx_model, names = tw.bvlc_onnx(96, seed=3)
    xc = tw.caffe_input(96, seed=4)
    ref = dict(zip(names, tw.run_onnx(onnx_model, xc)))
    model = kg.GoogLeNet(input_shape=(96, 96, 3), classifier_activation=None)
    W.load_converted(model, W.convert_onnx_bvlc(onnx_model))
    tw._close(model.predict(xc, verbose=0), ref["loss3/classifier_1"])
    report["onnx_bvlc"] = "ok"
    try:
        import torch
    except ImportError:
        report["torchvision"] = "skipped: no torch"
    else:
        net = tw.torchvision_googlenet(transform_input=False)
        xt = np.random.default_rng(8).normal(size=(2, 96, 96, 3)).astype(np.float32)
        with torch.no_grad():
            ref = net(torch.from_numpy(np.ascontiguousarray(xt.transpose(0, 3, 1, 2)))).numpy()
        model = kg.GoogLeNet(input_shape=(96, 96, 3), classifier_activation=None,
                             **W.TORCHVISION_CONFIG)
        W.load_converted(model, W.convert_torchvision(net.state_dict()))
        tw._close(model.predict(xt, verbose=0), ref)
        report["torchvision"] = "ok"
print("REPORT " + json.dumps(report))
"""


def _run(backend, folder, save, check_weights, load_from):
    env = {**os.environ, "KERAS_BACKEND": backend, "PORTABILITY_SIZE": str(SIZE),
           "PORTABILITY_REPO": REPO, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", WORKER, folder, str(int(save)), str(int(check_weights)),
         ",".join(load_from)], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, f"{backend}:\n{result.stderr[-4000:]}"
    line = [s for s in result.stdout.splitlines() if s.startswith("REPORT ")][-1]
    return json.loads(line[len("REPORT "):])


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    if len(BACKENDS) < 2:
        pytest.skip(f"needs two Keras backends installed; found {BACKENDS}")
    folder = str(tmp_path_factory.mktemp("portability"))
    reports = {}
    for i, backend in enumerate(BACKENDS):  # round 1: save, converters, load earlier
        reports[backend] = [_run(backend, folder, True, True, BACKENDS[:i])]
    for i, backend in enumerate(BACKENDS[:-1]):  # round 2: load later
        reports[backend].append(_run(backend, folder, False, False, BACKENDS[i + 1:]))
    return folder, reports


PAIRS = [(s, l) for s in ("tensorflow", "jax", "torch") for l in ("tensorflow", "jax", "torch")
         if s != l]


@pytest.mark.parametrize("saver,loader", PAIRS, ids=[f"{s}-to-{l}" for s, l in PAIRS])
def test_saved_model_loads_with_same_predictions(matrix, saver, loader):
    if saver not in BACKENDS or loader not in BACKENDS:
        pytest.skip(f"{saver} or {loader} is not installed")
    folder, _ = matrix
    for variant in VARIANTS:
        ref = np.load(os.path.join(folder, f"{saver}_{variant}_ref.npz"))
        assert sorted(ref.files) == ["aux1", "aux2", "predictions"], ref.files
        for kind in KINDS:
            got = np.load(os.path.join(folder, f"{saver}_{variant}_{kind}_by_{loader}.npz"))
            assert sorted(got.files) == sorted(ref.files)
            for head in ref.files:
                scale = max(1.0, float(np.abs(ref[head]).max()))
                np.testing.assert_allclose(
                    got[head], ref[head], rtol=TOL, atol=TOL * scale,
                    err_msg=f"{variant} {head} saved ({kind}) under {saver}, loaded under {loader}")


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_weight_converters_on_backend(matrix, backend):
    if backend not in BACKENDS:
        pytest.skip(f"{backend} is not installed")
    _, reports = matrix
    first = reports[backend][0]
    assert first["onnx_bvlc"] == "ok"
    assert first["torchvision"] == ("ok" if "torch" in BACKENDS else "skipped: no torch")
