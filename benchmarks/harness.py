"""What every benchmark script here shares: timing, interleaved rounds,
JSON output, the machine's description and matmul peaks, child processes
and the common command-line flags.

Timing: wall times of single calls after untimed warm-up calls, summarised
by the median (or, for the GEMM peaks, the best call). Interleaving: each
round runs every variant once in turn, so a load change on a shared machine
hits them alike and their ratios stay meaningful.

Only the standard library is imported at module level:
`torch_worker.py` (run by another Python that may have neither TensorFlow
nor `keras_googlenet`) imports this file. TensorFlow and `keras_googlenet`
are imported inside the functions that need them.
"""
import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time

# The recipe both sides train with: SGD, momentum, aux heads' loss weight.
LEARNING_RATE = 0.01
MOMENTUM = 0.9
AUX_WEIGHT = 0.3

# The ISA flags reported with every result.
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile")

TORCH_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_worker.py")


# --------------------------------------------------------------------------
# Timing

def median(values):
    return statistics.median(values) if values else float("nan")


def rounded(x, digits=2):
    return None if x is None else round(float(x), digits)


def timed_calls(fn, warmup, repeats):
    """Wall times of `repeats` calls of `fn` after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def best_seconds(fn, repeats=5):
    """The fastest of `repeats` calls after one warm-up call (first calls
    allocate and pack)."""
    return min(timed_calls(fn, 1, repeats))


def gemm_gmacs(fn, n, repeats=5):
    """GMAC/s of `fn`, one n x n x n GEMM, at its best call."""
    return n ** 3 / 1e9 / best_seconds(fn, repeats)


def interleaved(tasks, rounds, log=None):
    """Runs `tasks`, a list of `(key, label, fn)`, once each per round, in
    order; returns {key: samples}, each call's samples (a list, or one
    value) appended. `label` (None: quiet) is logged as `round N: label`."""
    samples = {key: [] for key, _, _ in tasks}
    for r in range(rounds):
        for key, label, fn in tasks:
            if label and log:
                log(f"round {r + 1}: {label}")
            value = fn()
            samples[key] += value if isinstance(value, list) else [value]
    return samples


def labels(batch_size, classes, seed=0):
    """The random int32 labels of a synthetic batch (both frameworks)."""
    import numpy as np

    return np.random.RandomState(seed).randint(0, classes, size=(batch_size,)).astype("int32")


def error_report():
    """The current exception as a result entry: a failed variant reports
    it instead of stopping the run."""
    import traceback

    return {"error": traceback.format_exc(limit=4)[-2000:]}


def stderr_log(*args):
    print(*args, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# The machine

def cpu_info():
    """The CPU's model, core count, the ISA flags that matter, load average."""
    from keras_googlenet import hardware  # standard library only

    flags = hardware.cpu_flags()
    return {
        "model": hardware.cpu_model(),
        "cpu_count": os.cpu_count(),
        "flags": [f for f in REPORTED_FLAGS if f in flags],
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
    }


def configure_threads(intra=None, inter=None):
    """TensorFlow's thread pools (call before TensorFlow runs anything).

    None leaves TensorFlow's default (one thread per core for both)."""
    import tensorflow as tf

    if intra is not None:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter is not None:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


def matmul_peak(dtype="float32", n=2048, warmup=2, repeats=7):
    """GFLOP/s of an `n x n` TensorFlow matmul: median and best of
    `repeats` calls."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)

    @tf.function
    def step(a, b):
        return tf.reduce_sum(tf.cast(tf.linalg.matmul(a, b)[:1, :1], tf.float32))

    times = timed_calls(lambda: step(a, b).numpy(), warmup, repeats)
    flops = 2.0 * n ** 3
    return {"gflops": rounded(flops / median(times) / 1e9, 1),
            "gflops_best": rounded(flops / min(times) / 1e9, 1), "n": n}


def matmul_peaks(sizes=(1024, 2048, 4096), dtypes=("float32", "bfloat16"), repeats=3):
    """{dtype: best GFLOP/s over `sizes`} (the best size differs by dtype
    and by load)."""
    return {dt: max(matmul_peak(dt, n, warmup=1, repeats=repeats)["gflops_best"] for n in sizes)
            for dt in dtypes}


# --------------------------------------------------------------------------
# Child processes

def peak_rss_self_mib():
    """This process's peak RSS in MiB: VmHWM, which starts afresh at exec
    (getrusage's ru_maxrss keeps the forking parent's peak across exec)."""
    with contextlib.suppress(OSError):
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def print_peak_rss():
    """The last line of a memory child: what `peak_rss_of` reads."""
    print("PEAK_RSS", peak_rss_self_mib())


def peak_rss_of(command, env):
    """Runs `command` (a memory child) and returns the peak RSS (MiB) it
    printed with `print_peak_rss`."""
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("PEAK_RSS"):
            return rounded(float(line.split()[1]), 0)
    raise RuntimeError(f"memory measurement failed:\n{out.stderr[-3000:]}")


def torch_env(python=None):
    """The environment of a torch child: this one's, quiet, and without
    PYTHONPATH for another Python (this venv's paths are not its own)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if python and os.path.realpath(python) != os.path.realpath(sys.executable):
        env.pop("PYTHONPATH", None)
    return env


class Child:
    """A child process serving JSON commands, one line each way
    (`serve` on its side)."""

    def __init__(self, command, env=None):
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)

    def call(self, cmd, **kwargs):
        self.proc.stdin.write(json.dumps(dict(kwargs, cmd=cmd)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the torchvision worker process died")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"torchvision worker: {reply['error']}")
        return reply

    def close(self):
        with contextlib.suppress(Exception):
            self.proc.stdin.close()
            self.proc.wait(timeout=30)


def torch_child(python=None):
    """`torch_worker.py` in `python` (default: this one), run by path."""
    return Child([python or sys.executable, TORCH_WORKER], env=torch_env(python))


def serve(commands, stdin=sys.stdin, stdout=sys.stdout):
    """The child's side of `Child`: each request line {"cmd": name, ...}
    is answered with `commands[name](**rest)`, or {"error": ...}."""
    for line in stdin:
        request = json.loads(line)
        cmd = request.pop("cmd")
        try:
            if cmd not in commands:
                raise KeyError(f"unknown command {cmd!r}")
            reply = commands[cmd](**request)
        except Exception as e:  # reported to the parent
            reply = {"error": repr(e)}
        stdout.write(json.dumps(reply) + "\n")
        stdout.flush()


# --------------------------------------------------------------------------
# Output and flags

def emit(result, path=None, indent=2):
    """Prints `result` as JSON; also writes the same text to `path`."""
    text = json.dumps(result, indent=indent)
    print(text)
    if path:
        from keras_googlenet import files

        files.atomic_write(path, text + "\n")
    return result


def parser(doc, full=False):
    """An ArgumentParser described by the first paragraph of `doc` (`full`:
    all of it, as written)."""
    if full:
        return argparse.ArgumentParser(description=doc,
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
    return argparse.ArgumentParser(description=doc.split("\n\n")[0])


# name: (argparse keywords, help). Each script gives the defaults.
FLAGS = {
    "quick": ({"action": "store_true"}, "smoke run: tiny and short"),
    "image_size": ({"type": int}, "square input size"),
    "classes": ({"type": int}, "classes of every head"),
    "batch_size": ({"type": int}, "batch"),
    "batch_sizes": ({"type": int, "nargs": "+"}, "batch sizes"),
    "rounds": ({"type": int}, "interleaved rounds; medians are reported"),
    "steps": ({"type": int}, "timed steps per round"),
    "warmup": ({"type": int}, "untimed steps first"),
    "threads": ({"type": int}, "threads"),
    "torch_python": ({}, "python of a venv with torch and torchvision"),
    "output": ({}, "also write the JSON here"),
}


def add_flags(parser, **flags):
    """Adds the shared flags named: name=default, or name=(default, help)
    or (default, help, default as --help shows it)."""
    for name, spec in flags.items():
        keywords, text = FLAGS[name]
        spec = spec if isinstance(spec, tuple) else (spec,)
        default = spec[0]
        text = spec[1] if len(spec) > 1 and spec[1] else text
        if keywords.get("action") == "store_true":
            parser.add_argument("--" + name.replace("_", "-"), help=text, **keywords)
            continue
        shown = spec[2] if len(spec) > 2 else (
            " ".join(map(str, default)) if isinstance(default, (list, tuple)) else default)
        parser.add_argument("--" + name.replace("_", "-"), default=default,
                            help=f"{text}; default: {shown}", **keywords)
