"""benchmarks/gpu.py's CPU smoke run: one JSON object, both Keras/JAX
precisions measured, no TensorFlow imported, torchvision measured or
reported as skipped. Most of its time is XLA compiling the CPU training step
(minutes on a loaded 2-core machine; 19 min once under load 12)."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


# Minutes on 2 CPU cores: JAX compiles two training steps of the full model.
@pytest.mark.slow
def test_gpu_benchmark_cpu_smoke():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}
    env.pop("KERAS_BACKEND", None)  # the script sets it
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "benchmarks", "gpu.py"), "--quick",
         "--image-size", "65", "--batch-size", "2", "--steps", "1"],
        capture_output=True, text=True, env=env, timeout=2400)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    keras_res = report["keras_jax"]
    assert keras_res.get("tensorflow_imported") is False, keras_res
    for precision in ("float32", "mixed_bfloat16"):
        res = keras_res[precision]
        assert "error" not in res, res
        assert res["train_images_per_s"] > 0 and res["infer_images_per_s"] > 0
        assert res["batch1_latency_ms"] > 0
    torch_res = report["torchvision"]
    if importlib.util.find_spec("torchvision") is None:
        assert torch_res == {"skipped": "not installed: torchvision"}
    else:
        assert "error" not in torch_res["eager_float32"], torch_res
    assert set(report["goals"]) == {"train_bf16_vs_fastest_torch", "infer_bf16_vs_torch_compile",
                                    "batch1_latency_vs_torch_eager_float32"}
