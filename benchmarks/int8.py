"""Int8 on CPUs: our calibrated int8 TFLite and ONNX Runtime files against our
float32 Keras model, torchvision's float32 GoogLeNet and torchvision's
quantised GoogLeNet (fbgemm/x86 post-training static quantisation), in one
interleaved run: 224x224, 1000 classes, 2 threads, batch 32 and batch 1.

    python benchmarks/int8.py --torch-python /tmp/tvenv/bin/python --json int8.json

torchvision runs in `torch_worker.py`, a child process of `--torch-python`
(a venv with torch and torchvision), driven over a pipe, so
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
import os
import sys
import tempfile
import time

import numpy as np

import harness  # benchmarks/harness.py, beside this file

IMAGE_SIZE = 224
CLASSES = 1000
PEAK_SIZES = (1024, 2048)  # where the int8 GEMMs peak (docs/performance.md)


def calibration_set(count, seed=0):
    """Smooth random uint8 images (upsampled noise), `(count, 224, 224, 3)`."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, size=(count, 14, 14, 3))
    return np.clip(np.repeat(np.repeat(small, 16, axis=1), 16, axis=2)
                   + rng.normal(0, 8, size=(count, IMAGE_SIZE, IMAGE_SIZE, 3)), 0, 255
                   ).astype(np.uint8)


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
        # A plain interpreter: converted.TFLiteRunner takes image models only.
        fc = converted.tflite_interpreter_class()(model_path=path, num_threads=threads)
        fc.allocate_tensors()
        fc.set_tensor(fc.get_input_details()[0]["index"],
                      rng.integers(-128, 127, (n, n), dtype=np.int8))
        out["xnnpack_int8"] = max(out["xnnpack_int8"], harness.gemm_gmacs(fc.invoke, n))

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
        out["onnxruntime_int8"] = max(out["onnxruntime_int8"], harness.gemm_gmacs(
            lambda: session.run(None, {"A": a}), n))

        b = tf.constant(rng.normal(size=(n, n)).astype(np.float32))
        matmul = tf.function(lambda: tf.linalg.matmul(b, b))
        out["tensorflow_float32"] = max(out["tensorflow_float32"], harness.gemm_gmacs(
            lambda: matmul().numpy(), n))
    return out


def main(argv=None):
    parser = harness.parser(__doc__)
    harness.add_flags(
        parser,
        torch_python=(None, None, "none, and the torchvision rows and goals are reported as "
                                  "not measured"),
        threads=(2, "threads of every runtime (intra-op; inter-op 1)"),
        rounds=(5, "interleaved rounds per batch size; medians are reported"),
        batch_sizes=([32, 1], "batch sizes to time; the goals use 32 and 1"))
    parser.add_argument("--calibration-images", type=int, default=32,
                        help="images both sides calibrate on; default: 32")
    parser.add_argument("--json", default=None,
                        help="also write the JSON here (stdout also carries the converters' "
                             "messages); default: stdout only")
    args = parser.parse_args(argv)

    work = tempfile.mkdtemp(prefix="int8-bench-")
    images = calibration_set(args.calibration_images)
    calibration_file = os.path.join(work, "calibration.npy")
    np.save(calibration_file, images)
    timers, graphs, model = our_timers(work, images, args.threads, args.calibration_images)
    from keras_googlenet import hardware
    from keras_googlenet.models import flops

    result = {"image_size": IMAGE_SIZE, "classes": CLASSES, "threads": args.threads,
              "rounds": args.rounds, "calibration_images": args.calibration_images,
              "cpu": hardware.cpu_model(), "graphs": graphs, "median_seconds": {},
              "images_per_second": {}}
    if args.torch_python:
        child = harness.torch_child(args.torch_python)
        result["torch"] = child.call("int8_init", calibration=calibration_file,
                                     threads=args.threads, classes=CLASSES)
        result["gemm_peak_gmacs"] = dict(our_gemm_peaks(work, args.threads),
                                         **child.call("peak", sizes=PEAK_SIZES))
        result["multiply_adds"] = {"ours": flops.multiply_adds(model),
                                   "torchvision": child.call("macs")["multiply_adds"]}
        for name in ("torchvision_float32", "torchvision_int8"):
            timers[name] = lambda batch, warmup=0, name=name: child.call(
                "time", name=name, batch=batch, warmup=warmup)["seconds"]
    else:
        result["torch"] = "not measured (no --torch-python)"
        result["gemm_peak_gmacs"] = our_gemm_peaks(work, args.threads)
        result["multiply_adds"] = {"ours": flops.multiply_adds(model)}
    for batch in args.batch_sizes:
        for run in timers.values():  # warm-up: first calls allocate and trace
            run(batch, warmup=1)
        samples = harness.interleaved(
            [(name, None, lambda run=run: run(batch)) for name, run in timers.items()],
            args.rounds)
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
    harness.emit(result, args.json)
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


if __name__ == "__main__":
    sys.exit(main())
