"""The model subpackage runs on any Keras 3 backend: importing the package and
building GoogLeNet loads no TensorFlow module."""
import importlib.util
import os
import subprocess
import sys

import pytest

CODE = """
import sys
import numpy as np
import keras_googlenet as kg
import keras_googlenet.models
from keras_googlenet.models import contract, presets, architecture, flops
model = kg.GoogLeNet(classes=3, input_shape=(64, 64, 3))
out = model.predict(np.zeros((1, 64, 64, 3), "float32"), verbose=0)
print(out.shape, sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow')[:3])
"""


@pytest.mark.parametrize("backend", ["numpy", pytest.param("jax", marks=pytest.mark.slow)])
def test_model_imports_no_tensorflow(backend):
    # Keras' numpy backend uses jax.numpy for some ops, so both need jax.
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "(1, 3) []"


def test_import_keras_googlenet_imports_nothing_heavy():
    result = subprocess.run(
        [sys.executable, "-c", "import sys, keras_googlenet; print(sorted(m for m in sys.modules "
         "if m.split('.')[0] in ('tensorflow', 'keras', 'jax', 'torch')))"],
        capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stderr
