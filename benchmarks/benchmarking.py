"""The Keras side of the speed benchmark (`benchmark.py`) and its torchvision
worker client: models, datasets, timed `fit` steps, predictors, a profile,
peak memory, synthetic photos.

Everything here measures; nothing changes the model. This file lives
outside the package: it uses an installed (or importable) `keras_googlenet`
through its public modules only, and relies on the repository only for its
sibling files in `benchmarks/`. It is also the script of the Keras memory
children (`python benchmarking.py --memory`), which import the same
`keras_googlenet` as the parent; torchvision runs in `torch_worker.py`.
"""
import json
import os
import sys
import tempfile
import time

import numpy as np

# The siblings (harness.py) also when this file is loaded by path.
if os.path.dirname(os.path.abspath(__file__)) not in sys.path:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (benchmarks/harness.py: standard library only)


def _child_env(**extra):
    """The environment of a Keras child process running this file: the
    parent's, with this process's `keras_googlenet` first on PYTHONPATH, so
    the child imports the same copy (not, say, another checkout's editable
    install)."""
    import keras_googlenet

    root = os.path.dirname(os.path.dirname(os.path.abspath(keras_googlenet.__file__)))
    paths = [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths), **extra)


# --------------------------------------------------------------------------
# Keras side

def build_keras(image_size, precision="float32", classes=1000, jit_compile=False,
                batch_norm=False, kernel_5x5=5, steps_per_execution=1):
    """A compiled GoogLeNet training model (aux heads, the paper's loss)."""
    import keras

    from keras_googlenet.train import distribute
    from keras_googlenet.models import objective
    from keras_googlenet.models.googlenet import GoogLeNet

    previous = keras.mixed_precision.global_policy().name
    distribute.set_precision(precision)
    try:
        model = GoogLeNet(input_shape=(image_size, image_size, 3), classes=classes,
                          aux_classifiers=True, batch_norm=batch_norm, kernel_5x5=kernel_5x5)
        objective.compile_model(model, objective.make_optimizer(harness.LEARNING_RATE),
                             jit_compile=jit_compile, steps_per_execution=steps_per_execution)
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


def memory_dataset(model, batch_size, image_size, classes):
    """One random batch held in memory, repeated (no input cost)."""
    import tensorflow as tf

    x = tf.random.normal((batch_size, image_size, image_size, 3), seed=0) * 50.0
    y = tf.constant(harness.labels(batch_size, classes))
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

    from keras_googlenet.inference import converted

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        interpreter = converted.tflite_interpreter_class()(model_path=os.fspath(path),
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
# torchvision side (torch_worker.py, in a child process)

def torch_available(python=None):
    """Whether torch and torchvision are installed, without importing them
    (this process may hold TensorFlow): in this Python, or in `python`."""
    import importlib.util
    import subprocess

    names = ("torch", "torchvision")
    if python:
        code = "import importlib.util as u, sys; sys.exit(not all(map(u.find_spec, sys.argv[1:])))"
        return subprocess.run([python, "-c", code, *names], env=harness.torch_env(python),
                              check=False).returncode == 0
    return all(importlib.util.find_spec(name) is not None for name in names)


class TorchWorker:
    """torchvision's GoogLeNet training model (`torch_worker.TorchGoogLeNet`)
    in a child process of `python` (default: this one), driven over a pipe;
    the parent waits while it runs, and vice versa."""

    def __init__(self, image_size, classes=1000, threads=None, bfloat16=False,
                 channels_last=False, python=None):
        self.child = harness.torch_child(python)
        self.info = self.child.call("init", image_size=image_size, classes=classes,
                                    threads=threads, bfloat16=bfloat16,
                                    channels_last=channels_last)

    def train_times(self, batch_size, warmup, steps):
        return self.child.call("train", batch_size=batch_size, warmup=warmup,
                               steps=steps)["times"]

    def predict_times(self, batch_size, warmup, repeats):
        return self.child.call("predict", batch_size=batch_size, warmup=warmup,
                               repeats=repeats)["times"]

    def close(self):
        self.child.close()


# --------------------------------------------------------------------------
# Peak memory (a child process per measurement: its own peak RSS)

def memory_child(precision, batch_size, image_size, classes, steps, threads):
    """Trains `steps` Keras steps in this process, then prints its peak RSS."""
    harness.configure_threads(threads, None)
    model = build_keras(image_size, precision, classes)
    keras_fit_step_times(model, memory_dataset(model, batch_size, image_size, classes), steps, 0)
    harness.print_peak_rss()


def peak_rss_mib(framework, precision, batch_size, image_size, classes, steps=3,
                 threads=None, python=None):
    """Peak RSS (MiB) of a fresh process training `steps` steps: Keras (this
    file as a script) or torchvision (torch_worker.py in `python`)."""
    if framework == "torch":
        args = dict(image_size=image_size, classes=classes, steps=steps, threads=threads,
                    batch_size=batch_size, bfloat16=precision == "mixed_bfloat16")
        command = [python or sys.executable, harness.TORCH_WORKER, "--memory", json.dumps(args)]
        return harness.peak_rss_of(command, harness.torch_env(python))
    args = json.dumps([precision, batch_size, image_size, classes, steps, threads])
    command = [sys.executable, os.path.abspath(__file__), "--memory", args]
    return harness.peak_rss_of(command, _child_env(TF_CPP_MIN_LOG_LEVEL="2",
                                                   PYTHONWARNINGS="ignore"))


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
        "wall_ms_per_step": harness.rounded(1000 * harness.median(wall), 1),
        "op_time_ms_per_step": harness.rounded(total * ms, 1),
        "by_op_type": {k: {"ms_per_step": harness.rounded(v * ms, 1), "share": harness.rounded(v / total, 3)}
                       for k, v in top_types[:20]},
        "top_ops": {k: harness.rounded(v * ms, 1) for k, v in top_names},
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


if __name__ == "__main__" and sys.argv[1:2] == ["--memory"]:  # peak_rss_mib's child
    memory_child(*json.loads(sys.argv[2]))
