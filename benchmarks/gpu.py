"""GoogLeNet on a GPU, side by side: Keras/JAX against torchvision.

One run measures, with synthetic data already on the device:

* keras_jax: our training model (`GoogLeNet(aux_classifiers=True)`, the full
  loss: 1.0 main + 0.3 per auxiliary head, `models.objective`'s losses, SGD with
  momentum 0.9) in float32 and mixed_bfloat16: training images/s (a jitted
  step of `model.stateless_call` + `optimizer.stateless_apply`, buffers
  donated: the step `model.fit` runs, without metrics), inference images/s
  (the main head; XLA drops the unused auxiliary heads) and batch-1
  latency (median of single calls);
* torchvision: `googlenet(aux_logits=True)` with the same loss and optimizer,
  channels_last: eager float32, eager with bf16 autocast, and torch.compile
  with bf16 autocast;
* peak device memory of each: `torch.cuda.max_memory_allocated` (reset per
  variant); JAX's `memory_stats()["peak_bytes_in_use"]` is process-wide and
  never resets, so mixed_bfloat16 runs first and float32's figure is
  max(float32, mixed_bfloat16) (float32 is the larger).

Each framework runs in its own child process (Keras: this script with
--only keras; torchvision: `torch_worker.py`, whose `gpu` command measures
it), so that JAX's preallocated pool and PyTorch's allocator do not share
the GPU; the parent prints ONE JSON object. The Keras child sets KERAS_BACKEND=jax
before importing Keras and imports no TensorFlow (checked, reported as
`tensorflow_imported`): it uses `keras_googlenet.models` and
`keras_googlenet.models.objective`, which import none.

    python benchmarks/gpu.py                    # 224x224, batch 256, the H200 run
    JAX_PLATFORMS=cpu python benchmarks/gpu.py --quick --image-size 65 \\
        --batch-size 2 --steps 1                # CPU smoke test

torchvision parts are reported as skipped when torchvision is not installed.
A variant that fails reports its error instead of stopping the run.
"""
import json
import os
import subprocess
import sys
import time

import harness  # benchmarks/harness.py, beside this file
from harness import AUX_WEIGHT, LEARNING_RATE, MOMENTUM
from torch_worker import GPU_VARIANTS  # standard library, numpy and harness at import


def parse_args(argv=None):
    parser = harness.parser(__doc__)
    harness.add_flags(parser, batch_size=(256, "training and inference batch"), image_size=224,
                      classes=1000,
                      steps=(None, "timed steps per measurement", "30 (3 with --quick)"),
                      warmup=(None, "untimed steps after compilation", "5 (1 with --quick)"))
    parser.add_argument("--latency-calls", type=int, default=None,
                        help="batch-1 calls timed (default 100; 3 with --quick)")
    parser.add_argument("--only", choices=("keras", "torch"), default=None,
                        help="measure one framework only; default: both")
    harness.add_flags(parser, quick=(None, "few steps: a smoke test, not a measurement"))
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 3 if args.quick else 30
    if args.warmup is None:
        args.warmup = 1 if args.quick else 5
    if args.latency_calls is None:
        args.latency_calls = 3 if args.quick else 100
    return args


# ---------------------------------------------------------------------------
# Keras / JAX.
# ---------------------------------------------------------------------------
def run_keras(args):
    os.environ["KERAS_BACKEND"] = "jax"
    import functools

    import jax
    import keras
    import numpy as np

    from keras_googlenet.models import googlenet
    from keras_googlenet.models import objective

    assert keras.backend.backend() == "jax", keras.backend.backend()
    device = jax.devices()[0]
    result = {"device": str(device), "platform": device.platform,
              "versions": {"jax": jax.__version__, "keras": keras.__version__}}
    rng = np.random.default_rng(0)
    shape = (args.batch_size, args.image_size, args.image_size, 3)
    x = jax.device_put(rng.normal(0, 1, shape).astype("float32"), device)
    y = jax.device_put(rng.integers(0, args.classes, args.batch_size).astype("int32"), device)
    x1 = jax.device_put(rng.normal(0, 1, (1, *shape[1:])).astype("float32"), device)

    def peak():
        stats = device.memory_stats() if hasattr(device, "memory_stats") else None
        return (stats or {}).get("peak_bytes_in_use")

    # mixed_bfloat16 first: JAX's peak never resets (see the docstring).
    for precision in ("mixed_bfloat16", "float32"):
        try:
            result[precision] = _keras_variant(args, precision, x, y, x1, peak, jax, keras,
                                               functools, googlenet, objective)
        except Exception:  # noqa: BLE001 - report it, measure the rest
            result[precision] = harness.error_report()
        keras.backend.clear_session()
    result["tensorflow_imported"] = any(m.split(".")[0] == "tensorflow" for m in sys.modules)
    return result


def _keras_variant(args, precision, x, y, x1, peak, jax, keras, functools, googlenet, objective):
    keras.mixed_precision.set_global_policy(precision)
    try:
        model = googlenet.GoogLeNet(
            input_shape=(args.image_size, args.image_size, 3), classes=args.classes,
            aux_classifiers=True, classifier_activation=None)
        losses, weights = objective.losses_and_weights(model, aux_weight=AUX_WEIGHT)
        # Plain SGD with momentum, as torchvision's side (no EMA, no decay).
        optimizer = objective.make_optimizer(LEARNING_RATE, momentum=MOMENTUM, weight_decay=0,
                                          ema_momentum=None)
        optimizer.build(model.trainable_variables)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    ov = [v.value for v in optimizer.variables]

    def outputs_dict(out):
        return out if isinstance(out, dict) else dict(zip(model.output_names, out))

    def loss_fn(tv, ntv, x, y):
        out, ntv = model.stateless_call(tv, ntv, x, training=True)
        out = outputs_dict(out)
        total = sum(weights[name] * losses[name](y, out[name]) for name in losses)
        return total, ntv

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def train_step(tv, ntv, ov, x, y):
        (loss, ntv), grads = grad_fn(tv, ntv, x, y)
        tv, ov = optimizer.stateless_apply(ov, grads, tv)
        return tv, ntv, ov, loss

    @jax.jit
    def infer(tv, ntv, x):
        out, _ = model.stateless_call(tv, ntv, x, training=False)
        return outputs_dict(out)[googlenet.OUTPUT_NAME]

    res = {"params": int(model.count_params())}
    start = time.perf_counter()
    tv, ntv, ov, loss = train_step(tv, ntv, ov, x, y)
    loss.block_until_ready()
    res["train_first_step_s"] = harness.rounded(time.perf_counter() - start, 2)
    for _ in range(args.warmup):
        tv, ntv, ov, loss = train_step(tv, ntv, ov, x, y)
    loss.block_until_ready()
    start = time.perf_counter()
    for _ in range(args.steps):
        tv, ntv, ov, loss = train_step(tv, ntv, ov, x, y)
    loss.block_until_ready()
    elapsed = time.perf_counter() - start
    res["train_images_per_s"] = harness.rounded(args.batch_size * args.steps / elapsed, 1)
    res["train_loss"] = harness.rounded(float(loss), 4)
    res["train_peak_bytes"] = peak()

    start = time.perf_counter()
    infer(tv, ntv, x).block_until_ready()
    res["infer_first_call_s"] = harness.rounded(time.perf_counter() - start, 2)
    for _ in range(args.warmup):
        out = infer(tv, ntv, x)
    out.block_until_ready()
    start = time.perf_counter()
    for _ in range(args.steps):
        out = infer(tv, ntv, x)
    out.block_until_ready()
    res["infer_images_per_s"] = harness.rounded(
        args.batch_size * args.steps / (time.perf_counter() - start), 1)
    res["infer_peak_bytes"] = peak()

    infer(tv, ntv, x1).block_until_ready()
    for _ in range(args.warmup):
        infer(tv, ntv, x1).block_until_ready()
    times = harness.timed_calls(lambda: infer(tv, ntv, x1).block_until_ready(), 0,
                                args.latency_calls)
    res["batch1_latency_ms"] = harness.rounded(1000 * harness.median(times), 3)
    return res


# ---------------------------------------------------------------------------
# torchvision: torch_worker.py's `gpu` command, in a child process.
# ---------------------------------------------------------------------------
def run_torch(args):
    try:
        child = harness.torch_child()
        try:
            return child.call("gpu", batch_size=args.batch_size, image_size=args.image_size,
                              classes=args.classes, steps=args.steps, warmup=args.warmup,
                              latency_calls=args.latency_calls)
        finally:
            child.close()
    except Exception:  # noqa: BLE001 - report it, measure the rest
        return harness.error_report()


# ---------------------------------------------------------------------------
# The parent: both children, one JSON object, the goals.
# ---------------------------------------------------------------------------
def _child(which, argv):
    cmd = [sys.executable, os.path.abspath(__file__), *argv, "--only", which]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [s for s in proc.stdout.splitlines() if s.startswith("{")]
    if proc.returncode == 0 and lines:
        return json.loads(lines[-1])
    return {"error": f"exit {proc.returncode}: {proc.stderr[-3000:]}"}


def goals(keras_res, torch_res):
    """The issue's goals as ratios from this run (None where a figure is missing)."""
    def get(d, *path):
        for key in path:
            d = d.get(key) if isinstance(d, dict) else None
        return d

    bf16 = get(keras_res, "mixed_bfloat16") or {}
    torch_train = [get(torch_res, v, "train_images_per_s") for v, _, _ in GPU_VARIANTS]
    torch_train = [t for t in torch_train if t]
    compiled = get(torch_res, "compile_bf16_autocast", "infer_images_per_s")
    eager_lat = get(torch_res, "eager_float32", "batch1_latency_ms")
    keras_lat = [get(keras_res, p, "batch1_latency_ms") for p in ("float32", "mixed_bfloat16")]
    keras_lat = [t for t in keras_lat if t]

    def ratio(a, b):
        return round(a / b, 3) if a and b else None

    out = {
        "train_bf16_vs_fastest_torch": {
            "goal": ">= 1.5",
            "ratio": ratio(bf16.get("train_images_per_s"), max(torch_train, default=None))},
        "infer_bf16_vs_torch_compile": {
            "goal": ">= 1.2", "ratio": ratio(bf16.get("infer_images_per_s"), compiled)},
        "batch1_latency_vs_torch_eager_float32": {
            "goal": "<= 1.0", "ratio": ratio(min(keras_lat, default=None), eager_lat)},
    }
    for name, goal in out.items():
        r = goal["ratio"]
        goal["met"] = None if r is None else (r <= 1.0 if name.startswith("batch1")
                                              else r >= float(goal["goal"].split()[-1]))
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.only == "keras":
        print(json.dumps(run_keras(args)))
        return
    if args.only == "torch":
        print(json.dumps(run_torch(args)))
        return
    start = time.perf_counter()
    keras_res = _child("keras", argv)
    torch_res = run_torch(args)
    harness.emit({
        "benchmark": "benchmarks/gpu.py",
        "command": " ".join(["python", "benchmarks/gpu.py", *argv]),
        "config": {"batch_size": args.batch_size, "image_size": args.image_size,
                   "classes": args.classes, "steps": args.steps, "warmup": args.warmup,
                   "latency_calls": args.latency_calls, "quick": args.quick,
                   "aux_weight": AUX_WEIGHT, "optimizer": f"SGD lr {LEARNING_RATE} momentum "
                                                         f"{MOMENTUM}",
                   "jax_platforms": os.environ.get("JAX_PLATFORMS")},
        "keras_jax": keras_res,
        "torchvision": torch_res,
        "goals": goals(keras_res, torch_res),
        "wall_s": round(time.perf_counter() - start, 1),
    }, indent=1)


if __name__ == "__main__":
    main()
