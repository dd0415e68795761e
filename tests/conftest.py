"""Shared test fixtures: a clean Keras session per test, and a digits model
trained once per session. The plain helpers (encoded images, class folders,
a small model) are in helpers.py: `import helpers as fx`."""
import os

# Quiet TensorFlow's C++ start-up logs; deterministic ops for exact
# comparisons (Mirrored vs one device, resumed vs uninterrupted runs).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts with a clean Keras session and float32 policy.
    Without a forced garbage collection: with TensorFlow's objects of 400
    tests in the heap, a full collection took ~4 s per test (over 20 minutes
    of the suite); Python's own collector still runs."""
    keras.backend.clear_session(free_memory=False)
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


# A digits model shared by the fine-tuning tests (tests/train/test_protocol.py,
# tests/train/test_finetune_cli.py).
@pytest.fixture(scope="session")
def digits_model(tmp_path_factory):
    """A small digits model (classes 0-4, 32x32, no auxiliary heads) trained
    once for the fine-tuning tests: 320 steps, enough for the batch-norm
    moving statistics (momentum 0.99) to forget their initial values, which
    frozen-batch-norm fine-tuning relies on."""
    from keras_googlenet.train import config as config_lib
    from keras_googlenet.train import trainer

    results = trainer.run(config_lib.build(dict(
        classes="0,1,2,3,4", image_size=32, aux_classifiers=False, min_crop_area=0.5,
        ema_momentum=0, epochs=8, steps_per_epoch=40, export_dir="", verbose=0,
        output_dir=str(tmp_path_factory.mktemp("digits_0_4")))))
    print("pretrained on digits 0-4:", results["val"])
    return results["model_path"]
