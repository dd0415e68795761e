"""--strategy data_parallel (keras.distribution.DataParallel on JAX) on two
host devices trains to the same weights as one device."""
import os

import pytest

import conftest as fx


# Minutes of JAX/PyTorch compilation on 2 CPU cores; not yet seen to pass.
@pytest.mark.slow
def test_data_parallel_matches_one_device():
    out = fx.result_of(fx.run_under(
        "jax", [os.path.join(os.path.dirname(__file__), "dp_check.py")],
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}))
    assert out["devices"] == 2 and out["replicas"] == 2 and out["single_replicas"] == 1
    assert out["max_diff"] < 1e-4, out


def test_data_parallel_refused_off_jax():
    # This process runs Keras on TensorFlow (tests/conftest.py imports it).
    from keras_googlenet.train import distribute

    with pytest.raises(ValueError, match="needs the JAX backend, and Keras runs on tensorflow"):
        distribute.get_strategy("data_parallel")
