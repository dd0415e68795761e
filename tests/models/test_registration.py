"""Plain `keras.models.load_model` reads the package's files once
`keras_googlenet` is imported, before or after Keras, on every backend
(issue 22); `import keras_googlenet` itself still imports no Keras
(tests/models/test_no_tensorflow.py)."""
import shutil

import numpy as np
import pytest

import helpers as fx
from keras_googlenet.models import objective

LOAD = """
import sys
{imports}
import numpy as np
model = keras.models.load_model(sys.argv[1])
out = model.predict(np.load(sys.argv[2]), verbose=0)
np.save(sys.argv[3], out["predictions"] if isinstance(out, dict) else out)
print("RESULT {{}}")
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{name: (path, input, output)}: a paper-variant model (its LRN layer)
    and a compiled training model (the recipe's top-1/top-5 metrics, the
    optimizer with its averages), moved away from where they were written."""
    written, moved = tmp_path_factory.mktemp("written"), tmp_path_factory.mktemp("moved")
    paper = fx.small_model()
    training = fx.small_model(seed=1, size=65, aux_classifiers=True)
    objective.compile_model(training, objective.make_optimizer(0.01, ema_momentum=0.99))
    result = {}
    for name, model in (("paper", paper), ("training", training)):
        model.save(written / f"{name}.keras")
        shutil.move(written / f"{name}.keras", moved / f"{name}.keras")
        size = model.input_shape[1]
        x = np.random.RandomState(0).uniform(-100, 100, (2, size, size, 3)).astype("float32")
        np.save(moved / f"{name}.npy", x)
        out = model.predict(x, verbose=0)
        result[name] = (moved / f"{name}.keras", moved / f"{name}.npy",
                        out["predictions"] if isinstance(out, dict) else out)
    return result


def _load(backend, imports, path, x, out):
    return fx.run_under(backend, ["-c", LOAD.format(imports=imports), str(path), str(x),
                                  str(out)])


# TensorFlow in the quick tier; the other backends' processes take minutes.
@pytest.mark.parametrize("backend", ["tensorflow", pytest.param("jax", marks=pytest.mark.slow),
                                     pytest.param("torch", marks=pytest.mark.slow)])
@pytest.mark.parametrize("imports", ["import keras_googlenet, keras",
                                     "import keras, keras_googlenet"])
def test_plain_keras_load_model_after_import(files, backend, imports, tmp_path):
    for path, x, expected in files.values():
        fx.result_of(_load(backend, imports, path, x, tmp_path / "y.npy"))
        np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-5)


def test_keras_alone_cannot_place_our_layer(files, tmp_path):
    path, x, _ = files["paper"]
    process = _load("tensorflow", "import keras", path, x, tmp_path / "y.npy")
    assert process.returncode != 0
    assert "Could not locate class 'LocalResponseNormalization'" in process.stderr


@pytest.mark.parametrize("module", ["keras_googlenet.models.googlenet",
                                    "keras_googlenet.weights.keras_file",
                                    "keras_googlenet.models.objective"])
@pytest.mark.slow
def test_registering_inside_keras_import_reenters_nothing(module):
    # The registration runs inside the first `import keras`, which one of
    # our modules may be in the middle of: it must import none of them.
    process = fx.run_under("tensorflow", ["-c", f"import {module}; print('RESULT {{}}')"])
    fx.result_of(process)
