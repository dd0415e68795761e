"""LocalResponseNormalization on every installed Keras backend.

Each backend runs in its own subprocess (KERAS_BACKEND is read once, at
import). There the layer's output for a fixed input is checked against a
float64 NumPy reference; on TensorFlow, also `tf.nn`'s kernel against the
`keras.ops` formula. Under mixed_bfloat16 the layer takes and returns
bfloat16 but computes in float32: its output is exactly the float32 result
rounded to bfloat16 once.
"""
import importlib.util
import os
import subprocess
import sys

import pytest

TOL = 1e-5
# The subprocesses import this checkout's package, whatever is installed.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CODE = r"""
import json, sys
import numpy as np
import keras
from keras import ops
from keras_googlenet.models import layers

TOL = float(sys.argv[1])
rng = np.random.default_rng(0)
x = rng.normal(0, 30, (2, 5, 5, 24)).astype("float32")

def reference(x, r=2, bias=1.0, alpha=2e-5, beta=0.75):
    x = x.astype("float64")
    sq = np.pad(x ** 2, [(0, 0)] * 3 + [(r, r)])
    total = sum(sq[..., s:s + x.shape[-1]] for s in range(2 * r + 1))
    return x / (bias + alpha * total) ** beta

def close(actual, expected):
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=TOL, atol=TOL * scale)

layer = layers.LocalResponseNormalization()
assert (layer.depth_radius, layer.bias, layer.alpha, layer.beta) == (2, 1.0, 2e-5, 0.75), \
    layer.get_config()
expected = reference(x)
out = layer(ops.convert_to_tensor(x))
assert keras.backend.standardize_dtype(out.dtype) == "float32", out.dtype
close(ops.convert_to_numpy(out), expected)
formula = ops.convert_to_numpy(layers.lrn_keras_ops(ops.convert_to_tensor(x), 2, 1.0, 2e-5, 0.75))
close(formula, expected)
if keras.backend.backend() == "tensorflow":
    fused = ops.convert_to_numpy(layers.lrn_tf_nn(ops.convert_to_tensor(x), 2, 1.0, 2e-5, 0.75))
    close(fused, formula)
    close(fused, expected)

# mixed_bfloat16: bf16 in, bf16 out, float32 inside.
mixed = layers.LocalResponseNormalization(dtype="mixed_bfloat16")
assert mixed.compute_dtype == "bfloat16", mixed.compute_dtype
xb = ops.cast(ops.convert_to_tensor(x), "bfloat16")
yb = mixed(xb)
assert keras.backend.standardize_dtype(yb.dtype) == "bfloat16", yb.dtype
in_f32 = layers.lrn_keras_ops(ops.cast(xb, "float32"), 2, 1.0, 2e-5, 0.75)
np.testing.assert_array_equal(ops.convert_to_numpy(ops.cast(yb, "float32")),
                              ops.convert_to_numpy(ops.cast(ops.cast(in_f32, "bfloat16"),
                                                            "float32")))
in_bf16 = ops.convert_to_numpy(ops.cast(layers.lrn_keras_ops(xb, 2, 1.0, 2e-5, 0.75), "float32"))
print(json.dumps({"backend": keras.backend.backend(), "ok": True,
                  "bf16_compute_would_differ": bool(
                      np.abs(in_bf16 - ops.convert_to_numpy(ops.cast(yb, "float32"))).max() > 0)}))
"""

_NEEDS = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


@pytest.mark.parametrize("backend", sorted(_NEEDS))
@pytest.mark.slow
def test_lrn_on_backend(backend):
    if importlib.util.find_spec(_NEEDS[backend]) is None:
        pytest.skip(f"{_NEEDS[backend]} is not installed")
    env = {**os.environ, "KERAS_BACKEND": backend,
           "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", CODE, str(TOL)], capture_output=True,
                            text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert f'"backend": "{backend}", "ok": true' in last, last
