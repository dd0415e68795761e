"""Speed and memory measurements of GoogLeNet, optionally beside torchvision's.

Everything here measures; nothing changes the model. The figures are
medians of per-step (per-call) wall times after a warm-up, and a run
interleaves the variants it compares (Keras float32, Keras mixed_bfloat16,
torchvision) round by round, so a load change on a shared machine hits them
alike and their *ratios* stay meaningful. `benchmarks/benchmark.py` is the
command line; `run_benchmark` returns the JSON-ready dict it prints.

This file lives outside the package: it uses an installed (or importable)
`keras_googlenet` through its public modules only, and relies on the
repository only for its sibling files in `benchmarks/`. It is also the
script of its child processes (`python benchmarking.py --torch-worker`,
`--memory`), which import the same `keras_googlenet` as the parent.

Definitions:
- training throughput: images per second of `model.fit` steps with the
  auxiliary heads and the full loss (1.0 main + 0.3 + 0.3 aux), SGD with
  momentum, weight decay and Polyak averaging (`recipe.compile_model`),
  from a batch held in memory, or end to end from JPEG files through
  `data.build_dataset(training=True)`. input overhead = 1 - memory/jpeg step
  time ratio (the share of an end-to-end step spent waiting for input).
- FLOPs: 2 x `flops.multiply_adds` (convolutions and dense layers, as the
  paper counts); a training step is counted as 3x the forward FLOPs
  (forward, input gradients, weight gradients).
- matmul peak: GFLOP/s of a square `tf.linalg.matmul` in float32 and bfloat16
  measured in the same run, with the same threads.
"""
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from keras_googlenet import hardware  # standard library only: no TensorFlow

TRAIN_LR = 0.01

# The ISA flags reported with every result.
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")


# --------------------------------------------------------------------------
# Machine

def cpu_info():
    """The CPU's model, core count, the ISA flags that matter, load average."""
    flags = hardware.cpu_flags()
    return {
        "model": hardware.cpu_model(),
        "cpu_count": os.cpu_count(),
        "flags": [f for f in REPORTED_FLAGS if f in flags],
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
    }


def _child_env(**extra):
    """The environment of a child process running this file: the parent's,
    with this process's `keras_googlenet` first on PYTHONPATH, so the child
    imports the same copy (not, say, another checkout's editable install)."""
    import keras_googlenet

    root = os.path.dirname(os.path.dirname(os.path.abspath(keras_googlenet.__file__)))
    paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), **extra)


def configure_threads(intra=None, inter=None):
    """TensorFlow's thread pools (call before TensorFlow runs anything).

    None leaves TensorFlow's default (one thread per core for both)."""
    import tensorflow as tf

    if intra is not None:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter is not None:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


def _median(values):
    return statistics.median(values) if values else float("nan")


def _timed_calls(fn, warmup, repeats):
    """Wall times of `repeats` calls of `fn` after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def _r(x, digits=2):
    return None if x is None else round(float(x), digits)


# --------------------------------------------------------------------------
# Matmul peak

def matmul_peak(dtype="float32", n=2048, warmup=2, repeats=7):
    """GFLOP/s of an `n x n` matmul: median and best of `repeats` calls."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)

    @tf.function
    def step(a, b):
        return tf.reduce_sum(tf.cast(tf.linalg.matmul(a, b)[:1, :1], tf.float32))

    times = _timed_calls(lambda: step(a, b).numpy(), warmup, repeats)
    flops = 2.0 * n ** 3
    return {"gflops": _r(flops / _median(times) / 1e9, 1),
            "gflops_best": _r(flops / min(times) / 1e9, 1), "n": n}


def matmul_peaks(sizes=(1024, 2048, 4096), dtypes=("float32", "bfloat16"), repeats=3):
    """{dtype: best GFLOP/s over `sizes`} (the best size differs by dtype and
    by load: 4096 for float32, 1024-2048 for bfloat16 here)."""
    return {dt: max(matmul_peak(dt, n, warmup=1, repeats=repeats)["gflops_best"] for n in sizes)
            for dt in dtypes}


# --------------------------------------------------------------------------
# Keras side

def build_keras(image_size, precision="float32", classes=1000, jit_compile=False,
                batch_norm=False, kernel_5x5=5, steps_per_execution=1):
    """A compiled GoogLeNet training model (aux heads, the paper's loss)."""
    import keras

    from keras_googlenet.train import distribute
    from keras_googlenet.train import recipe
    from keras_googlenet.models.googlenet import GoogLeNet

    previous = keras.mixed_precision.global_policy().name
    distribute.set_precision(precision)
    try:
        model = GoogLeNet(input_shape=(image_size, image_size, 3), classes=classes,
                          aux_classifiers=True, batch_norm=batch_norm, kernel_5x5=kernel_5x5)
        recipe.compile_model(model, recipe.make_optimizer(TRAIN_LR), jit_compile=jit_compile,
                             steps_per_execution=steps_per_execution)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return model


def forward_flops(model):
    """FLOPs of one image's forward pass (2 x multiply-adds)."""
    from keras_googlenet.models.flops import multiply_adds

    return 2 * multiply_adds(model)


class _StepTimer:
    """A Keras callback recording the wall time between batch ends."""

    def __new__(cls):
        import keras

        class StepTimer(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.times, self._last = [], time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                now = time.perf_counter()
                self.times.append(now - self._last)
                self._last = now

        return StepTimer()


def _labels(batch_size, classes, seed=0):
    return np.random.RandomState(seed).randint(0, classes, size=(batch_size,)).astype("int32")


def memory_dataset(model, batch_size, image_size, classes):
    """One random batch held in memory, repeated (no input cost)."""
    import tensorflow as tf

    x = tf.random.normal((batch_size, image_size, image_size, 3), seed=0) * 50.0
    y = tf.constant(_labels(batch_size, classes))
    return tf.data.Dataset.from_tensors((x, {name: y for name in model.output})).repeat()


def jpeg_dataset(model, folder, batch_size, image_size, cache=True):
    """The real training pipeline on a folder of JPEG files, repeated."""
    from keras_googlenet.data import pipeline as data
    from keras_googlenet.data import sources

    return data.build_dataset(sources.folder_source(folder), training=True,
                              image_size=image_size, batch_size=batch_size,
                              output_names=list(model.output), seed=0, repeat=True,
                              cache=cache)


def keras_fit_step_times(model, dataset, steps, warmup):
    """Wall times of `steps` `model.fit` steps after `warmup` steps."""
    timer = _StepTimer()
    model.fit(dataset, epochs=1, steps_per_epoch=warmup + steps, verbose=0, callbacks=[timer])
    return timer.times[warmup:]


def keras_predictor(model):
    """`predict_on_batch` of the inference model (aux heads dropped)."""
    from keras_googlenet.models.googlenet import inference_model

    net = inference_model(model)
    return lambda x: net.predict_on_batch(x)


def export_artifacts(model, workdir, image_size):
    """A SavedModel (TF Serving export) and a TFLite file of `model`."""
    from keras_googlenet.serving import convert
    from keras_googlenet.serving import export

    saved = export.export_saved_model(model, os.path.join(workdir, "saved_model"),
                                      image_size=image_size)
    tflite = convert.to_tflite(model, os.path.join(workdir, "model.tflite"),
                               image_size=image_size)
    return saved, tflite


def saved_model_predictor(path, crop_size):
    """The SavedModel's `serving_image` signature on uint8 images: it runs the
    export's evaluation preprocessing (central crop, resize, normalise) too."""
    import tensorflow as tf

    from keras_googlenet.serving import signatures

    fn = tf.saved_model.load(path).signatures[signatures.IMAGE_SIGNATURE]

    def predict(images):
        return fn(images=images)["probabilities"].numpy()

    predict.crop_size = crop_size
    return predict


def tflite_predictor(path, batch_size, threads):
    """An interpreter resized to `batch_size`, `threads` threads (XNNPACK)."""
    import warnings

    from keras_googlenet.serving import convert

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = convert.tflite_interpreter_class()(model_path=os.fspath(path),
                                                         num_threads=threads)
    detail = interpreter.get_input_details()[0]
    shape = list(detail["shape"])
    shape[0] = batch_size
    interpreter.resize_tensor_input(detail["index"], shape)
    interpreter.allocate_tensors()
    output = interpreter.get_output_details()[0]["index"]

    def predict(images):
        interpreter.set_tensor(detail["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(output)

    return predict


# --------------------------------------------------------------------------
# torchvision side

def torch_available():
    """Whether torch and torchvision are installed (without importing them:
    this process may hold TensorFlow, and torch runs in a child process)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("torch", "torchvision"))


class TorchGoogLeNet:
    """torchvision's `googlenet(aux_logits=True)` trained the same way: the
    main loss plus 0.3 x each aux loss, SGD momentum 0.9, weight decay 2e-4."""

    def __init__(self, image_size, classes=1000, threads=None, bfloat16=False,
                 channels_last=False):
        import torch
        import torchvision

        if threads:
            torch.set_num_threads(threads)
        torch.manual_seed(0)
        self.torch = torch
        self.bfloat16 = bfloat16
        self.model = torchvision.models.googlenet(weights=None, aux_logits=True,
                                                  init_weights=True, num_classes=classes)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = self.model.to(memory_format=self.memory_format)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=TRAIN_LR, momentum=0.9,
                                         weight_decay=2e-4)
        self.loss = torch.nn.CrossEntropyLoss()
        self.image_size, self.classes = image_size, classes

    def batch(self, batch_size):
        torch = self.torch
        g = torch.Generator().manual_seed(0)
        x = torch.randn(batch_size, 3, self.image_size, self.image_size, generator=g)
        x = x.contiguous(memory_format=self.memory_format)
        y = torch.from_numpy(_labels(batch_size, self.classes)).long()
        return x, y

    def _autocast(self):
        return self.torch.autocast("cpu", dtype=self.torch.bfloat16, enabled=self.bfloat16)

    def train_step(self, x, y):
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            out = self.model(x)
            loss = (self.loss(out.logits, y) + 0.3 * self.loss(out.aux_logits1, y)
                    + 0.3 * self.loss(out.aux_logits2, y))
        loss.backward()
        self.optimizer.step()
        return loss.detach().item()

    def predict(self, x):
        self.model.eval()
        with self.torch.inference_mode(), self._autocast():
            return self.model(x).float().numpy()

    def forward_flops(self):
        """2 x multiply-adds of convolutions and linear layers (inference)."""
        torch = self.torch
        total = [0]

        def hook(module, inputs, output):
            if isinstance(module, torch.nn.Conv2d):
                k = module.kernel_size[0] * module.kernel_size[1]
                total[0] += output.numel() // output.shape[0] * k * module.in_channels // module.groups
            elif isinstance(module, torch.nn.Linear):
                total[0] += module.in_features * module.out_features

        handles = [m.register_forward_hook(hook) for m in self.model.modules()
                   if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        try:
            self.model.eval()
            with torch.inference_mode():
                self.model(self.batch(1)[0])
        finally:
            for h in handles:
                h.remove()
        return 2 * total[0]


class TorchWorker:
    """A `TorchGoogLeNet` in a child process, driven over a pipe.

    torch's OpenMP threads and TensorFlow's thread pools in one process
    fight for the cores (a batch-1 torchvision forward took 2.4 s instead of
    0.15 s beside an idle TensorFlow here), so torchvision runs in its own
    process; the parent waits while it runs, and vice versa. The child runs
    this file as a script, so TensorFlow is never imported there."""

    def __init__(self, image_size, classes=1000, threads=None, bfloat16=False,
                 channels_last=False, python=None):
        env = _child_env(PYTHONWARNINGS="ignore")
        self.proc = subprocess.Popen(
            [python or sys.executable, os.path.abspath(__file__), "--torch-worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.info = self._call("init", image_size=image_size, classes=classes, threads=threads,
                               bfloat16=bfloat16, channels_last=channels_last)

    def _call(self, cmd, **kwargs):
        self.proc.stdin.write(json.dumps(dict(kwargs, cmd=cmd)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the torchvision worker process died")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"torchvision worker: {reply['error']}")
        return reply

    def train_times(self, batch_size, warmup, steps):
        return self._call("train", batch_size=batch_size, warmup=warmup, steps=steps)["times"]

    def predict_times(self, batch_size, warmup, repeats):
        return self._call("predict", batch_size=batch_size, warmup=warmup,
                          repeats=repeats)["times"]

    def close(self):
        with contextlib.suppress(Exception):
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def _torch_worker_main():
    net = None
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request.pop("cmd")
        try:
            if cmd == "init":
                net = TorchGoogLeNet(**request)
                import torchvision

                reply = {"torch": net.torch.__version__, "torchvision": torchvision.__version__,
                         "threads": net.torch.get_num_threads(),
                         "forward_flops": net.forward_flops()}
            elif cmd == "train":
                x, y = net.batch(request["batch_size"])
                reply = {"times": _timed_calls(lambda: net.train_step(x, y),
                                               request["warmup"], request["steps"])}
            elif cmd == "predict":
                x, _ = net.batch(request["batch_size"])
                reply = {"times": _timed_calls(lambda: net.predict(x), request["warmup"],
                                               request["repeats"])}
            else:
                reply = {"error": f"unknown command {cmd!r}"}
        except Exception as e:  # reported to the parent
            reply = {"error": repr(e)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


# --------------------------------------------------------------------------
# Peak memory (a child process per measurement: its own peak RSS)

def memory_child(framework, precision, batch_size, image_size, classes, steps, threads):
    """Trains `steps` steps in this process; returns its peak RSS in MiB."""
    if framework == "torch":
        net = TorchGoogLeNet(image_size, classes, threads=threads,
                             bfloat16=precision == "mixed_bfloat16")
        x, y = net.batch(batch_size)
        for _ in range(steps):
            net.train_step(x, y)
    else:
        configure_threads(threads, None)
        model = build_keras(image_size, precision, classes)
        keras_fit_step_times(model, memory_dataset(model, batch_size, image_size, classes),
                             steps, 0)
    return peak_rss_self_mib()


def peak_rss_self_mib():
    """This process's peak RSS in MiB: VmHWM, which starts afresh at exec
    (getrusage's ru_maxrss keeps the forking parent's peak across exec)."""
    with contextlib.suppress(OSError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_rss_mib(framework, precision, batch_size, image_size, classes, steps=3,
                 threads=None, python=None):
    """Peak RSS (MiB) of a fresh process training `steps` steps."""
    args = json.dumps([framework, precision, batch_size, image_size, classes, steps, threads])
    env = _child_env(TF_CPP_MIN_LOG_LEVEL="2", PYTHONWARNINGS="ignore")
    # This file as a script: the torch child never loads TensorFlow.
    command = [python or sys.executable, os.path.abspath(__file__), "--memory", args]
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("PEAK_RSS"):
            return _r(float(line.split()[1]), 0)
    raise RuntimeError(f"memory measurement failed:\n{out.stderr[-3000:]}")


# --------------------------------------------------------------------------
# Profile

def profile_train_step(model, dataset, steps=2, logdir=None):
    """Per-op-type share of the host time of `steps` training steps, from a
    TensorFlow profiler trace. Returns {op type: {"ms_per_step", "share"}}
    (time summed over threads: with 2 threads the total can be 2x the wall
    time) and the per-layer-name top list of the main convolutions."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # shipped with TensorFlow

    keras_fit_step_times(model, dataset, 1, 1)  # traced and warm
    logdir = logdir or tempfile.mkdtemp(prefix="googlenet-profile-")
    tf.profiler.experimental.start(logdir)
    wall = keras_fit_step_times(model, dataset, steps, 0)
    tf.profiler.experimental.stop()
    paths = [os.path.join(d, f) for d, _, fs in os.walk(logdir) for f in fs
             if f.endswith(".xplane.pb")]
    space = xplane_pb2.XSpace()
    with open(max(paths, key=os.path.getmtime), "rb") as f:
        space.ParseFromString(f.read())
    by_type, by_name = {}, {}
    for plane in space.planes:
        if not plane.name.startswith("/host:CPU"):
            continue
        for line in plane.lines:
            if line.name.startswith("python") or line.name == "TraceMe":
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" not in name:  # op events are "name:Type"
                    continue
                op_name, op_type = name.rsplit(":", 1)
                if op_type == "Process" or not op_type:  # executor spans around ops
                    continue
                by_type[op_type] = by_type.get(op_type, 0) + event.duration_ps
                by_name[op_name] = by_name.get(op_name, 0) + event.duration_ps
    total = sum(by_type.values()) or 1
    ms = 1e-9 / steps
    top_types = sorted(by_type.items(), key=lambda kv: -kv[1])
    top_names = sorted(by_name.items(), key=lambda kv: -kv[1])[:15]
    return {
        "wall_ms_per_step": _r(1000 * _median(wall), 1),
        "op_time_ms_per_step": _r(total * ms, 1),
        "by_op_type": {k: {"ms_per_step": _r(v * ms, 1), "share": _r(v / total, 3)}
                       for k, v in top_types[:20]},
        "top_ops": {k: _r(v * ms, 1) for k, v in top_names},
    }


# --------------------------------------------------------------------------
# Synthetic photos (the JPEG measurements here and benchmarks/input_pipeline.py)

def _photo_like(rng, height=375, width=500):
    """Smooth random gradients, a few soft blobs and sensor-like noise."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / width
    image = np.zeros((height, width, 3), np.float32)
    for c in range(3):
        image[..., c] = 120 + 60 * np.sin(2 * np.pi * (rng.uniform(0.3, 2) * x + rng.uniform(0.3, 2) * y))
    for _ in range(5):
        cy, cx, r = rng.uniform(0, height / width), rng.uniform(0, 1), rng.uniform(0.05, 0.2)
        blob = np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
        image += blob[..., None] * rng.uniform(-90, 90, 3)
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_jpegs(root, count, num_classes=4, seed=0):
    """`count` photo-like 500x375 JPEGs (ImageNet's typical size) in an
    image folder `root/class_<i>/`."""
    from PIL import Image

    rng = np.random.RandomState(seed)
    for i in range(count):
        class_dir = os.path.join(root, f"class_{i % num_classes}")
        os.makedirs(class_dir, exist_ok=True)
        Image.fromarray(_photo_like(rng)).save(os.path.join(class_dir, f"{i:05d}.jpg"), quality=90)


# --------------------------------------------------------------------------
# The whole run

def _ips(batch_size, times):
    return _r(batch_size / _median(times), 2) if times else None


def run_benchmark(quick=False, image_size=224, batch_sizes=(16, 32), precisions=None,
                  torch=None, rounds=None, steps=None, warmup=None, intra=None, inter=None,
                  jit=False, jpeg=True, export=True, memory=True, classes=1000,
                  jpeg_cache=True, torch_channels_last=False, log=None):
    """Runs the measurements and returns a JSON-ready dict (see module doc).

    Args:
        quick: a smoke run: 2 steps, 1 round, few files.
        precisions: Keras precisions to compare; default float32 and, on CPUs
            with AVX512_BF16/AMX, mixed_bfloat16.
        torch: also run torchvision (None: when importable).
        rounds: interleaved rounds (each variant runs once per round).
        jit: also measure the float32 training model with `jit_compile=True`.
        jpeg: the end-to-end measurement from JPEG files.
        export: SavedModel and TFLite inference.
        memory: peak RSS of a batch-32 training run (child processes).
    """
    import keras
    import tensorflow as tf

    log = log or (lambda *a: print(*a, file=sys.stderr, flush=True))
    configure_threads(intra, inter)
    threads = intra or os.cpu_count()
    if precisions is None:
        precisions = ["float32"] + (["mixed_bfloat16"] if hardware.has_bf16_hardware() else [])
    if torch is None:
        torch = torch_available()
    rounds = rounds or (1 if quick else 2)
    steps = steps or (2 if quick else 5)
    warmup = 1 if quick and warmup is None else (warmup if warmup is not None else 2)
    infer_repeats = 2 if quick else 8
    latency_repeats = 3 if quick else 20
    infer_batch = 4 if quick else 32
    keras.utils.set_random_seed(0)

    result = {
        "benchmark": "googlenet_speed",
        "quick": quick,
        "image_size": image_size,
        "classes": classes,
        "cpu": cpu_info(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf_threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                       "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        "method": (f"median of per-step wall times; {rounds} interleaved round(s) of "
                   f"{warmup} warm-up + {steps} timed steps per variant"),
    }

    peak_sizes = (256, 512) if quick else (1024, 2048, 4096)
    peak_rounds = []

    # Variants: name -> object with train(batch) / predict(batch).
    variants = {}
    for precision in precisions:
        variants[f"keras_{precision}"] = build_keras(image_size, precision, classes)
    if jit:
        variants["keras_float32_jit"] = build_keras(image_size, "float32", classes,
                                                    jit_compile=True)
    torch_nets = {}
    if torch:
        log("starting the torchvision worker process")
        worker = TorchWorker(image_size, classes, threads=threads,
                             channels_last=torch_channels_last)
        torch_nets["torchvision_float32"] = worker
        result["torch"] = worker.info["torch"]
        result["torchvision"] = worker.info["torchvision"]
        result["torch_threads"] = worker.info["threads"]
        result["torch_process"] = "separate (torch and TensorFlow thread pools in one process fight)"
    flops = forward_flops(next(iter(variants.values())))
    result["flops"] = {"keras_forward_gflops_per_image": _r(flops / 1e9, 3),
                       "keras_train_gflops_per_image": _r(3 * flops / 1e9, 3)}
    if torch_nets:
        tflops = next(iter(torch_nets.values())).info["forward_flops"]
        result["flops"]["torchvision_forward_gflops_per_image"] = _r(tflops / 1e9, 3)

    train_times = {(n, b, src): [] for n in list(variants) + list(torch_nets)
                   for b in batch_sizes for src in ("memory",)}
    datasets = {(n, b): memory_dataset(m, b, image_size, classes)
                for n, m in variants.items() for b in batch_sizes}

    workdir = tempfile.mkdtemp(prefix="googlenet-bench-")
    jpeg_sets = {}
    if jpeg:
        folder = os.path.join(workdir, "jpegs")
        num_files = 32 if quick else 256
        log(f"writing {num_files} JPEGs")
        write_jpegs(folder, num_files, num_classes=min(classes, 4))
        jpeg_batch = max(batch_sizes)
        for n in precisions:
            name = f"keras_{n}"
            jpeg_sets[name] = jpeg_dataset(variants[name], folder, jpeg_batch, image_size,
                                           cache=jpeg_cache)
            train_times[(name, jpeg_batch, "jpeg")] = []

    predictors, latency_predictors = {}, {}
    x_infer = np.random.RandomState(1).normal(0, 50, (infer_batch, image_size, image_size, 3)
                                              ).astype("float32")
    x_one = x_infer[:1]
    for name, model in variants.items():
        if name.endswith("_jit"):
            continue
        predictors[name] = latency_predictors[name] = keras_predictor(model)
    if export and "keras_float32" in variants:
        log("exporting SavedModel and TFLite")
        saved, tflite = export_artifacts(variants["keras_float32"], workdir, image_size)
        crop = int(np.ceil(image_size / 0.875))
        sm = saved_model_predictor(saved, crop)
        u8_batch = np.random.RandomState(2).randint(0, 256, (infer_batch, crop, crop, 3)
                                                    ).astype("uint8")
        predictors["savedmodel_float32"] = lambda x, sm=sm, u=u8_batch: sm(u[:len(x)])
        latency_predictors["savedmodel_float32"] = predictors["savedmodel_float32"]
        predictors["tflite_float32"] = tflite_predictor(tflite, infer_batch, threads)
        latency_predictors["tflite_float32"] = tflite_predictor(tflite, 1, threads)
    infer_times = {n: [] for n in list(predictors) + list(torch_nets)}
    latency_times = {n: [] for n in list(latency_predictors) + list(torch_nets)}
    for r in range(rounds):
        log(f"round {r + 1}: matmul peaks")
        peak_rounds.append(matmul_peaks(peak_sizes))
        for b in batch_sizes:
            for name, model in variants.items():
                log(f"round {r + 1}: train {name} batch {b} (memory)")
                train_times[(name, b, "memory")] += keras_fit_step_times(
                    model, datasets[(name, b)], steps, warmup)
            for name, net in torch_nets.items():
                log(f"round {r + 1}: train {name} batch {b}")
                train_times[(name, b, "memory")] += net.train_times(b, warmup, steps)
        for name, ds in jpeg_sets.items():
            log(f"round {r + 1}: train {name} batch {max(batch_sizes)} (JPEG)")
            train_times[(name, max(batch_sizes), "jpeg")] += keras_fit_step_times(
                variants[name], ds, steps, warmup)
        for name, fn in predictors.items():
            log(f"round {r + 1}: inference {name}")
            infer_times[name] += _timed_calls(lambda fn=fn: fn(x_infer), 1, infer_repeats)
        for name, net in torch_nets.items():
            log(f"round {r + 1}: inference {name}")
            infer_times[name] += net.predict_times(infer_batch, 1, infer_repeats)
        for name, fn in latency_predictors.items():
            latency_times[name] += _timed_calls(lambda fn=fn: fn(x_one), 2, latency_repeats)
        for name, net in torch_nets.items():
            latency_times[name] += net.predict_times(1, 2, latency_repeats)

    train = {}
    for (name, b, src), times in train_times.items():
        train.setdefault(name, {})[f"batch{b}_{src}_images_per_s"] = _ips(b, times)
    for name in jpeg_sets:
        b = max(batch_sizes)
        mem, e2e = train[name][f"batch{b}_memory_images_per_s"], train[name][f"batch{b}_jpeg_images_per_s"]
        train[name][f"batch{b}_jpeg_input_overhead"] = _r(1 - e2e / mem, 3)
    result["train"] = train
    result["inference"] = {n: {f"batch{infer_batch}_images_per_s": _ips(infer_batch, t)}
                           for n, t in infer_times.items()}
    for n, t in latency_times.items():
        result["inference"].setdefault(n, {})["batch1_latency_ms"] = _r(1000 * _median(t), 1)
    if "savedmodel_float32" in result["inference"]:
        result["inference"]["savedmodel_float32"]["note"] = (
            "serving_image signature on uint8 images: includes crop/resize/normalise")

    # Efficiency against the matmul peaks.
    b = max(batch_sizes)
    # The peak is the best matmul call of any size and round (what the
    # hardware reaches); the model's figures are medians, so the fractions
    # are conservative.
    peaks = {dt: max(p[dt] for p in peak_rounds) for dt in ("float32", "bfloat16")}
    eff = {"matmul_peak_gflops": peaks,
           "matmul_peak_gflops_by_round": peak_rounds,
           "train_flops_note": "a training step counted as 3x the forward FLOPs"}
    for name, figures in train.items():
        ips = figures.get(f"batch{b}_memory_images_per_s")
        if not ips:
            continue
        per_image = (3 * tflops if name.startswith("torch") else 3 * flops)
        gflops = ips * per_image / 1e9
        peak = peaks["bfloat16" if "bfloat16" in name else "float32"]
        eff[f"{name}_train_batch{b}"] = {
            "gflops": _r(gflops, 1), "fraction_of_peak": _r(gflops / peak, 3),
            "fraction_of_float32_peak": _r(gflops / peaks["float32"], 3)}
    for name, figures in result["inference"].items():
        ips = figures.get(f"batch{infer_batch}_images_per_s")
        if not ips:
            continue
        per_image = tflops if name.startswith("torch") else flops
        gflops = ips * per_image / 1e9
        peak = peaks["bfloat16" if "bfloat16" in name else "float32"]
        eff[f"{name}_inference_batch{infer_batch}"] = {"gflops": _r(gflops, 1),
                                                        "fraction_of_peak": _r(gflops / peak, 3)}
    result["efficiency"] = eff

    if torch_nets:
        base = "torchvision_float32"
        ratios = {}
        for name in list(variants) + [n for n in infer_times if n not in variants]:
            if name.startswith("torch"):
                continue
            entry = {}
            for bb in batch_sizes:
                k = f"batch{bb}_memory_images_per_s"
                if name in train and train[name].get(k) and train[base].get(k):
                    entry[f"train_batch{bb}"] = _r(train[name][k] / train[base][k], 2)
            ki = f"batch{infer_batch}_images_per_s"
            if name in result["inference"] and result["inference"][name].get(ki):
                entry[f"inference_batch{infer_batch}"] = _r(
                    result["inference"][name][ki] / result["inference"][base][ki], 2)
                entry["latency_batch1"] = _r(result["inference"][name]["batch1_latency_ms"]
                                             / result["inference"][base]["batch1_latency_ms"], 2)
            ratios[name] = entry
        result["ratios_vs_torchvision_float32"] = ratios

    if memory:
        log("peak memory (child processes)")
        mem_batch = 4 if quick else 32
        mem_steps = 1 if quick else 3
        result["peak_rss_mib"] = {"batch_size": mem_batch}
        for precision in precisions:
            result["peak_rss_mib"][f"keras_{precision}"] = peak_rss_mib(
                "keras", precision, mem_batch, image_size, classes, mem_steps, intra)
        if torch_nets:
            result["peak_rss_mib"]["torchvision_float32"] = peak_rss_mib(
                "torch", "float32", mem_batch, image_size, classes, mem_steps, threads)
    for net in torch_nets.values():
        net.close()
    result["cpu"]["loadavg_1m_at_end"] = _r(os.getloadavg()[0], 2)
    with contextlib.suppress(OSError):
        import shutil

        shutil.rmtree(workdir)
    return result


if __name__ == "__main__":  # the child processes (TorchWorker, peak_rss_mib)
    if sys.argv[1:2] == ["--torch-worker"]:
        _torch_worker_main()
    elif sys.argv[1:2] == ["--memory"]:
        print("PEAK_RSS", memory_child(*json.loads(sys.argv[2])))
