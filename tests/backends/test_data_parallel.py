"""--strategy data_parallel (keras.distribution.DataParallel on JAX) on two
host devices trains like one device on the same global batch."""
import os

import pytest

import helpers as fx


# Slow: 2.5 minutes of XLA compilation (five models).
@pytest.mark.slow
def test_data_parallel_matches_one_device():
    out = fx.result_of(fx.run_under(
        "jax", [os.path.join(os.path.dirname(__file__), "dp_check.py")],
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}))
    assert out["devices"] == 2 and out["replicas"] == 2 and out["single_replicas"] == 1
    # The paper variant: 3 steps of the full recipe; the same tolerance as
    # MirroredStrategy against one device (tests/train/test_distributed.py).
    assert out["paper_max_update"] > 1e-3, out  # 6e-3: the steps moved the weights
    assert out["paper_max_diff"] < 2e-5, out
    # Batch norm: statistics over the global batch, not each device's half
    # (which would move them by ~2e-2, so this can fail).
    assert out["bn_half_batch_stats_diff"] > 1e-3, out
    assert out["bn_moving_stats_diff"] < 1e-5, out


def test_data_parallel_refused_off_jax():
    # This process runs Keras on TensorFlow, the default backend.
    from keras_googlenet.train import distribute

    with pytest.raises(ValueError, match="needs the JAX backend, and Keras runs on tensorflow"):
        distribute.get_strategy("data_parallel")
