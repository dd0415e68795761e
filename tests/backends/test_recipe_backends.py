"""The training recipe on JAX and PyTorch (each in a subprocess with
KERAS_BACKEND set): the loss main + 0.3 aux1 + 0.3 aux2 by hand, the
schedule values, EMA applied, the tf.distribute strategies refused, and
`googlenet export` rerun on TensorFlow."""
import os

import pytest

import helpers as fx

HERE = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("backend", ["jax", "torch"])
@pytest.mark.slow
def test_recipe_on_backend(backend):
    out = fx.result_of(fx.run_under(backend, [os.path.join(HERE, "recipe_check.py")]))
    assert out["backend"] == backend
    assert out["loss"] == pytest.approx(out["loss_by_hand"], rel=1e-4)
    assert out["cosine"] == pytest.approx(out["cosine_by_hand"], rel=1e-5, abs=1e-7)
    assert out["paper"] == pytest.approx(out["paper_by_hand"], rel=1e-5)
    assert out["ema_moved"] > 1e-6 and out["ema_error"] < 1e-6
    for name in ("mirrored", "one_device", "multi_worker", "tpu"):
        message = out["strategy_errors"][name]
        assert "tf.distribute strategy" in message and f"runs on {backend}" in message
        assert "\n" not in message
    if backend != "jax":
        assert "needs the JAX backend" in out["strategy_errors"]["data_parallel"]
    # export runs on TensorFlow from any backend (issue 20): one line about the file.
    assert out["export_exit"] == 2
    error_lines = [l for l in out["export_error"].splitlines() if "error:" in l]
    assert len(error_lines) == 1 and "missing.keras" in error_lines[0], out["export_error"]
