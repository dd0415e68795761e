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
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

IMAGE_SIZE = 224
CLASSES = 1000


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
    from keras_googlenet.serving import quantize

    model = GoogLeNet(classes=CLASSES, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), batch_norm=True)
    calibration = preprocessing.normalize(
        tf.constant(calibration_uint8[:calibration_count], tf.float32), "caffe").numpy()
    tflite_path, tflite_float = quantize.to_tflite_int8(model, os.path.join(work, "int8.tflite"),
                                                        calibration)
    onnx_path, onnx_float = quantize.to_onnx_int8(model, os.path.join(work, "int8.onnx"),
                                                  calibration)
    runners = {"ours_int8_tflite": quantize.runner(tflite_path, threads),
               "ours_int8_onnxruntime": quantize.runner(onnx_path, threads)}

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
    return timers, {"tflite_float_ops": tflite_float, "onnx_float_ops": onnx_float}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch-python", default=None,
                        help="python of a venv with torch and torchvision; default: not measured")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per batch size")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 1])
    parser.add_argument("--calibration-images", type=int, default=32)
    parser.add_argument("--json", default=None, help="also write the JSON here")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.torch_worker:
        return torch_worker()

    work = tempfile.mkdtemp(prefix="int8-bench-")
    images = calibration_set(args.calibration_images)
    calibration_file = os.path.join(work, "calibration.npy")
    np.save(calibration_file, images)
    timers, graphs = our_timers(work, images, args.threads, args.calibration_images)
    result = {"image_size": IMAGE_SIZE, "classes": CLASSES, "threads": args.threads,
              "rounds": args.rounds, "calibration_images": args.calibration_images,
              "cpu": _cpu_name(), "graphs": graphs, "median_seconds": {}, "images_per_second": {}}
    if args.torch_python:
        child = TorchChild(args.torch_python, calibration_file, args.threads)
        result["torch"] = child.info
        timers["torchvision_float32"] = child.timer("torchvision_float32")
        timers["torchvision_int8"] = child.timer("torchvision_int8")
    else:
        result["torch"] = "not measured (no --torch-python)"
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
