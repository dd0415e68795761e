"""Int8 on CPUs: our calibrated int8 TFLite and ONNX Runtime files against our
float32 Keras model, torchvision's float32 GoogLeNet and torchvision's
quantised GoogLeNet (fbgemm/x86 post-training static quantisation), in one
interleaved run: 224x224, 1000 classes, 2 threads, batch 32 and batch 1.

    python benchmarks/int8.py --torch-python /tmp/tvenv/bin/python --json int8.json

torchvision runs in a child process of `--torch-python` (a venv with torch
and torchvision; the shared venv has no torchvision), driven over a pipe, so
that its OpenMP threads never share the cores with TensorFlow's pools. Both
sides calibrate on the same images (smooth random photos-like uint8 crops,
saved to a .npy file), each with its own normalisation. Weights are random
(the speed of a network does not depend on its weight values); the models
are the batch-norm variant, as torchvision's. "Interleaved": each round
times one call of every backend in turn, so load changes hit all alike; the
medians are reported. Without `--torch-python` the torchvision rows are
reported as not measured.

To tell what the kernels can do from what the networks make of it, the
same run measures GEMM peaks (best n x n x n, n = 1024 and 2048, in GMAC/s):
XNNPACK's int8 fully connected, ONNX Runtime's MatMulInteger, fbgemm's int8
linear (under torchvision's quantised convolutions), and float32 in
TensorFlow and PyTorch; it counts each network's multiply-adds per image and
prints the GMAC/s each variant reaches at batch 32, and what 1.5x
torchvision int8 would need.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import timeit

import numpy as np

IMAGE_SIZE = 224
CLASSES = 1000
PEAK_SIZES = (1024, 2048)  # the int8 GEMMs peak here (4096 is slower in both)


def calibration_set(count, seed=0):
    """Smooth random uint8 images (upsampled noise), `(count, 224, 224, 3)`."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, size=(count, 14, 14, 3))
    return np.clip(np.repeat(np.repeat(small, 16, axis=1), 16, axis=2)
                   + rng.normal(0, 8, size=(count, IMAGE_SIZE, IMAGE_SIZE, 3)), 0, 255
                   ).astype(np.uint8)


# ---------------------------------------------------------------------------
# The torchvision child process (no TensorFlow here).
# ---------------------------------------------------------------------------
def torch_worker():
    import torch
    import torchvision

    models = {}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["cmd"] == "init":
                torch.set_num_threads(request["threads"])
                torch.backends.quantized.engine = "x86"
                float_model = torchvision.models.googlenet(
                    weights=None, aux_logits=False, init_weights=True,
                    num_classes=CLASSES).eval()
                q = torchvision.models.quantization.googlenet(
                    weights=None, quantize=False, aux_logits=False, init_weights=True,
                    num_classes=CLASSES).eval()
                q.load_state_dict(float_model.state_dict())
                q.fuse_model(is_qat=False)
                q.qconfig = torch.ao.quantization.get_default_qconfig("x86")
                torch.ao.quantization.prepare(q, inplace=True)
                images = np.load(request["calibration"]).astype(np.float32) / 255.0
                mean = np.array([0.485, 0.456, 0.406], np.float32)
                std = np.array([0.229, 0.224, 0.225], np.float32)
                batch = torch.from_numpy(((images - mean) / std).transpose(0, 3, 1, 2).copy())
                with torch.inference_mode():
                    for start in range(0, len(batch), 8):
                        q(batch[start:start + 8])
                torch.ao.quantization.convert(q, inplace=True)
                models = {"torchvision_float32": float_model, "torchvision_int8": q}
                reply = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                         "engine": torch.backends.quantized.engine}
            elif request["cmd"] == "peak":
                reply = torch_gemm_peaks()
            elif request["cmd"] == "macs":
                reply = {"multiply_adds": torch_multiply_adds(models["torchvision_float32"])}
            elif request["cmd"] == "time":
                x = torch.randn(request["batch"], 3, IMAGE_SIZE, IMAGE_SIZE)
                model = models[request["name"]]
                with torch.inference_mode():
                    for _ in range(request.get("warmup", 0)):
                        model(x)
                    t0 = time.perf_counter()
                    model(x)
                    reply = {"seconds": time.perf_counter() - t0}
            else:
                reply = {"error": f"unknown command {request['cmd']!r}"}
        except Exception as error:  # reported to the parent
            reply = {"error": repr(error)}
        print(json.dumps(reply), flush=True)


def _best_seconds(fn, repeats=5):
    fn()  # warm-up: first calls allocate and pack
    return min(timeit.repeat(fn, number=1, repeat=repeats))


def torch_gemm_peaks(sizes=PEAK_SIZES):
    """Best GMAC/s of an n x n x n GEMM: fbgemm's int8 (uint8 x int8, the
    kernel under torchvision's quantised convolutions) and float32."""
    import torch

    out = {"fbgemm_int8": 0.0, "torch_float32": 0.0}
    for n in sizes:
        weight = torch.quantize_per_tensor(torch.randn(n, n), 0.05, 0, torch.qint8)
        packed = torch.ops.quantized.linear_prepack(weight, None)
        x = torch.quantize_per_tensor(torch.rand(n, n), 0.01, 0, torch.quint8)
        out["fbgemm_int8"] = max(out["fbgemm_int8"], n ** 3 / 1e9 / _best_seconds(
            lambda: torch.ops.quantized.linear(x, packed, 1.0, 0)))
        a = torch.randn(n, n)
        out["torch_float32"] = max(out["torch_float32"], n ** 3 / 1e9 / _best_seconds(
            lambda: a @ a))
    return out


def torch_multiply_adds(model):
    """Multiply-adds per image of the convolutions and linear layers (what
    keras_googlenet.models.flops counts on our side)."""
    import torch

    total = []

    def hook(module, inputs, output):
        if isinstance(module, torch.nn.Conv2d):
            total.append(output[0].numel() * module.in_channels // module.groups
                         * module.kernel_size[0] * module.kernel_size[1])
        else:
            total.append(module.in_features * module.out_features)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.inference_mode():
        model(torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE))
    for handle in handles:
        handle.remove()
    return sum(total)


class TorchChild:
    def __init__(self, python, calibration, threads):
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen([python, os.path.abspath(__file__), "--torch-worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env)
        self.info = self.call("init", calibration=calibration, threads=threads)

    def call(self, cmd, **kwargs):
        self.proc.stdin.write(json.dumps(dict(kwargs, cmd=cmd)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the torchvision worker died")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    def timer(self, name):
        def run(batch, warmup=0):
            return self.call("time", name=name, batch=batch, warmup=warmup)["seconds"]
        return run


# ---------------------------------------------------------------------------
# Our side.
# ---------------------------------------------------------------------------
def our_timers(work, calibration_uint8, threads, calibration_count):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from keras_googlenet import GoogLeNet
    from keras_googlenet.data import preprocessing
    from keras_googlenet.inference import converted
    from keras_googlenet.serving import quantize

    model = GoogLeNet(classes=CLASSES, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), batch_norm=True)
    calibration = preprocessing.normalize(
        tf.constant(calibration_uint8[:calibration_count], tf.float32), "caffe").numpy()
    tflite_path, tflite_float = quantize.to_tflite_int8(model, os.path.join(work, "int8.tflite"),
                                                        calibration)
    onnx_path, onnx_float = quantize.to_onnx_int8(model, os.path.join(work, "int8.onnx"),
                                                  calibration)
    runners = {"ours_int8_tflite": converted.runner(tflite_path, threads),
               "ours_int8_onnxruntime": converted.runner(onnx_path, threads)}

    @tf.function(jit_compile=False, reduce_retracing=True)
    def keras_forward(x):
        return model(x, training=False)

    def timer(fn):
        def run(batch, warmup=0):
            x = np.random.default_rng(batch).normal(
                size=(batch, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
            for _ in range(warmup):
                np.asarray(fn(x))
            t0 = time.perf_counter()
            np.asarray(fn(x))
            return time.perf_counter() - t0
        return run

    timers = {name: timer(r) for name, r in runners.items()}
    timers["ours_float32_keras"] = timer(keras_forward)
    return timers, {"tflite_float_ops": tflite_float, "onnx_float_ops": onnx_float}, model


def our_gemm_peaks(work, threads, sizes=PEAK_SIZES):
    """Best GMAC/s of an n x n x n GEMM in the kernels our int8 files run on:
    XNNPACK's int8 fully connected (TFLite), ONNX Runtime's MatMulInteger
    (uint8 x int8, MLAS), and TensorFlow's float32 matmul."""
    import keras
    import onnxruntime
    import tensorflow as tf
    from onnx import TensorProto, helper, numpy_helper

    from keras_googlenet.inference import converted

    rng = np.random.default_rng(0)
    out = {"xnnpack_int8": 0.0, "onnxruntime_int8": 0.0, "tensorflow_float32": 0.0}
    for n in sizes:
        inputs = keras.Input((n,), batch_size=n)
        dense = keras.Model(inputs, keras.layers.Dense(n, use_bias=False)(inputs))
        converter = tf.lite.TFLiteConverter.from_keras_model(dense)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [rng.normal(size=(n, n)).astype(np.float32)] for _ in range(2))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        path = os.path.join(work, f"gemm{n}.tflite")
        with open(path, "wb") as f:
            f.write(converter.convert())
        fc = converted.TFLiteRunner(path, threads)
        x = rng.integers(-128, 127, (n, n), dtype=np.int8)
        fc.interpreter.allocate_tensors()
        fc.interpreter.set_tensor(fc.input_index, x)
        out["xnnpack_int8"] = max(out["xnnpack_int8"],
                                  n ** 3 / 1e9 / _best_seconds(fc.interpreter.invoke))

        graph = helper.make_graph(
            [helper.make_node("MatMulInteger", ["A", "B"], ["C"])], "gemm",
            [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n])],
            [helper.make_tensor_value_info("C", TensorProto.INT32, [n, n])],
            initializer=[numpy_helper.from_array(
                rng.integers(-128, 127, (n, n), dtype=np.int8), "B")])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        session = onnxruntime.InferenceSession(
            helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
            .SerializeToString(), options, providers=["CPUExecutionProvider"])
        a = rng.integers(0, 255, (n, n), dtype=np.uint8)
        out["onnxruntime_int8"] = max(out["onnxruntime_int8"], n ** 3 / 1e9 / _best_seconds(
            lambda: session.run(None, {"A": a})))

        b = tf.constant(rng.normal(size=(n, n)).astype(np.float32))
        matmul = tf.function(lambda: tf.linalg.matmul(b, b))
        out["tensorflow_float32"] = max(out["tensorflow_float32"], n ** 3 / 1e9 / _best_seconds(
            lambda: matmul().numpy()))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch-python", default=None,
                        help="python of a venv with torch and torchvision; default: none, and "
                             "the torchvision rows and goals are reported as not measured")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads of every runtime (intra-op; inter-op 1); default: 2")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved rounds per batch size; medians are reported; default: 5")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 1],
                        help="batch sizes to time; the goals use 32 and 1; default: 32 1")
    parser.add_argument("--calibration-images", type=int, default=32,
                        help="images both sides calibrate on; default: 32")
    parser.add_argument("--json", default=None,
                        help="also write the JSON here (stdout also carries the converters' "
                             "messages); default: stdout only")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.torch_worker:
        return torch_worker()

    work = tempfile.mkdtemp(prefix="int8-bench-")
    images = calibration_set(args.calibration_images)
    calibration_file = os.path.join(work, "calibration.npy")
    np.save(calibration_file, images)
    timers, graphs, model = our_timers(work, images, args.threads, args.calibration_images)
    from keras_googlenet.models import flops

    result = {"image_size": IMAGE_SIZE, "classes": CLASSES, "threads": args.threads,
              "rounds": args.rounds, "calibration_images": args.calibration_images,
              "cpu": _cpu_name(), "graphs": graphs, "median_seconds": {}, "images_per_second": {}}
    if args.torch_python:
        child = TorchChild(args.torch_python, calibration_file, args.threads)
        result["torch"] = child.info
        result["gemm_peak_gmacs"] = dict(our_gemm_peaks(work, args.threads), **child.call("peak"))
        result["multiply_adds"] = {"ours": flops.multiply_adds(model),
                                   "torchvision": child.call("macs")["multiply_adds"]}
        timers["torchvision_float32"] = child.timer("torchvision_float32")
        timers["torchvision_int8"] = child.timer("torchvision_int8")
    else:
        result["torch"] = "not measured (no --torch-python)"
        result["gemm_peak_gmacs"] = our_gemm_peaks(work, args.threads)
        result["multiply_adds"] = {"ours": flops.multiply_adds(model)}
    for batch in args.batch_sizes:
        for run in timers.values():  # warm-up: first calls allocate and trace
            run(batch, warmup=1)
        samples = {name: [] for name in timers}
        for _ in range(args.rounds):
            for name, run in timers.items():
                samples[name].append(run(batch))
        for name, values in samples.items():
            median = float(np.median(values))
            result["median_seconds"].setdefault(name, {})[f"batch{batch}"] = median
            result["images_per_second"].setdefault(name, {})[f"batch{batch}"] = batch / median
    result["gmacs_achieved_batch32"] = {}
    for name, rates in result["images_per_second"].items():
        macs = result["multiply_adds"].get(name.split("_")[0])  # "ours" or "torchvision"
        if "batch32" in rates and macs:
            result["gmacs_achieved_batch32"][name] = rates["batch32"] * macs / 1e9
    result["goals"] = _goals(result)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


def _goals(result):
    ips, secs = result["images_per_second"], result["median_seconds"]
    goals = {}
    if "torchvision_float32" not in ips:
        return "torchvision not measured"
    for ours in ("ours_int8_tflite", "ours_int8_onnxruntime"):
        if "batch32" in ips.get(ours, {}):
            goals[f"{ours}_b32_vs_torchvision_float32 (goal >= 5)"] = (
                ips[ours]["batch32"] / ips["torchvision_float32"]["batch32"])
            goals[f"{ours}_b32_vs_torchvision_int8 (goal >= 1.5)"] = (
                ips[ours]["batch32"] / ips["torchvision_int8"]["batch32"])
        if "batch1" in secs.get(ours, {}):
            goals[f"{ours}_b1_latency_vs_torchvision_float32 (goal <= 0.3)"] = (
                secs[ours]["batch1"] / secs["torchvision_float32"]["batch1"])
    if "batch32" not in ips["torchvision_int8"]:
        return goals
    # What 1.5x torchvision int8 asks of the int8 kernels: GMAC/s at our
    # multiply-adds per image, against the best int8 GEMM peak measured.
    needed = 1.5 * ips["torchvision_int8"]["batch32"] * result["multiply_adds"]["ours"] / 1e9
    peak = max(v for k, v in result["gemm_peak_gmacs"].items() if k.endswith("_int8"))
    goals["int8_gmacs_needed_for_1.5x_torchvision_int8"] = needed
    goals["int8_gmacs_needed_over_best_int8_gemm_peak"] = needed / peak
    return goals


def _cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


if __name__ == "__main__":
    sys.exit(main())
