"""Smoke test of the speed benchmark: the figures are produced (not their size).

benchmarks/ is not part of the package: its modules are loaded from their
files under the names its sibling scripts import them by (`harness`,
`benchmarking`).
"""
import importlib.util
import math
import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "benchmarks")


def _load(filename, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCHMARKS, filename))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


harness = _load("harness.py", "harness")
benchmarking = _load("benchmarking.py", "benchmarking")


def _load_script():
    return _load("benchmark.py", "benchmark_script")


def _positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow
def test_quick_benchmark_produces_every_figure(capsys):
    # One precision, small images, 1 round of 2 steps; torchvision only when
    # it is installed (the optional extra).
    torch = benchmarking.torch_available()
    result = _load_script().main([
        "--quick", "--image-size", "80", "--classes", "10", "--batch-sizes", "2", "4",
        "--precisions", "float32", "--torch" if torch else "--no-torch",
    ])
    assert '"benchmark": "googlenet_speed"' in capsys.readouterr().out
    train = result["train"]["keras_float32"]
    for key in ("batch2_memory_images_per_s", "batch4_memory_images_per_s",
                "batch4_jpeg_images_per_s"):
        assert _positive(train[key]), key
    assert isinstance(train["batch4_jpeg_input_overhead"], float)
    for name in ("keras_float32", "savedmodel_float32", "tflite_float32"):
        assert _positive(result["inference"][name]["batch4_images_per_s"]), name
        assert _positive(result["inference"][name]["batch1_latency_ms"]), name
    assert _positive(result["flops"]["keras_forward_gflops_per_image"])
    efficiency = result["efficiency"]
    assert _positive(efficiency["matmul_peak_gflops"]["float32"])
    assert _positive(efficiency["matmul_peak_gflops"]["bfloat16"])
    assert _positive(efficiency["keras_float32_train_batch4"]["fraction_of_peak"])
    assert _positive(result["peak_rss_mib"]["keras_float32"])
    if torch:
        assert _positive(result["train"]["torchvision_float32"]["batch4_memory_images_per_s"])
        assert _positive(result["ratios_vs_torchvision_float32"]["keras_float32"]["train_batch4"])
        assert _positive(result["peak_rss_mib"]["torchvision_float32"])


def test_matmul_peak_and_flops():
    peak = harness.matmul_peak("float32", n=128, warmup=1, repeats=2)
    assert _positive(peak["gflops"]) and peak["gflops_best"] >= peak["gflops"]
    model = benchmarking.build_keras(80, "float32", classes=10)
    assert _positive(benchmarking.forward_flops(model))


@pytest.mark.skipif(not benchmarking.torch_available(), reason="torch/torchvision not installed")
def test_torchvision_googlenet_runs_in_its_worker_process():
    # In a child process: torch (with triton, in CUDA builds) imported after
    # TensorFlow can crash, and the two thread pools fight in one process.
    worker = benchmarking.TorchWorker(80, classes=10, threads=2)
    try:
        assert all(_positive(t) for t in worker.train_times(2, warmup=0, steps=1))
        assert all(_positive(t) for t in worker.predict_times(2, warmup=0, repeats=1))
        assert _positive(worker.info["forward_flops"])
    finally:
        worker.close()


def test_benchmark_children_import_no_tensorflow():
    # The torch worker and the memory children run benchmarking.py as a
    # script; with keras_googlenet.hardware it must not load TensorFlow or
    # Keras (torch beside TensorFlow in one process fights or crashes).
    code = ("import sys; sys.argv = ['benchmarking.py']; import runpy; "
            f"runpy.run_path({os.path.join(BENCHMARKS, 'benchmarking.py')!r}); "
            "import keras_googlenet; print(keras_googlenet.__file__); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=benchmarking._child_env(), check=True).stdout.splitlines()
    import keras_googlenet

    assert out == [keras_googlenet.__file__, "[]"]


def test_torch_worker_imports_no_tensorflow_nor_the_package():
    # torch_worker.py runs in another Python (--torch-python) that may have
    # neither: at import it needs the standard library, numpy and harness.
    code = ("import sys, runpy; "
            f"sys.path.insert(0, {BENCHMARKS!r}); "
            f"runpy.run_path({os.path.join(BENCHMARKS, 'torch_worker.py')!r}); "
            "print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('tensorflow', 'keras', 'keras_googlenet', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["[]"]
