"""Time GoogLeNet's LRN on the TensorFlow backend: `tf.nn`'s fused kernel
against the `keras.ops` formula (`layers.lrn_keras_ops`), forward + backward.

Both run as the layer runs them: input in the compute dtype (float32, or
bfloat16 under mixed_bfloat16), cast to float32, LRN, cast back; the
gradient with respect to the input for a random upstream gradient. Each
runs inside a `tf.function` (no XLA: Keras does not jit on a CPU-only
TensorFlow). The two are interleaved round by round, so that a load change
on a shared machine hits both alike. Prints one JSON object: per shape and
dtype, the median milliseconds of each and the ratio keras_ops / tf_nn.

    PYTHONPATH=. python benchmarks/lrn.py [--batch-size 32] [--rounds 15]
"""
import os
import time

os.environ["KERAS_BACKEND"] = "tensorflow"

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import harness  # noqa: E402  (benchmarks/harness.py, beside this file)
from keras_googlenet.models import layers  # noqa: E402

# GoogLeNet's two LRNs at 224x224: after pool1 (56x56x64) and after conv2
# (56x56x192).
SHAPES = ((56, 56, 64), (56, 56, 192))


def _step(lrn):
    @tf.function
    def step(x, upstream):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.cast(lrn(tf.cast(x, tf.float32)), x.dtype)
        return y, tape.gradient(y, x, output_gradients=upstream)
    return step


def _seconds(step, x, upstream):
    start = time.perf_counter()
    y, dx = step(x, upstream)
    _ = dx.numpy(), y.numpy()
    return time.perf_counter() - start


def main(argv=None):
    parser = harness.parser(__doc__)
    harness.add_flags(parser, batch_size=(32, "batch of the two LRN shapes"), rounds=15,
                      warmup=(2, "untimed calls of each first (tracing)"))
    args = parser.parse_args(argv)
    impls = {"tf_nn": _step(layers.lrn_tf_nn), "keras_ops": _step(layers.lrn_keras_ops)}
    rng = np.random.default_rng(0)
    results = []
    for shape in SHAPES:
        for dtype in ("float32", "bfloat16"):
            x = tf.cast(tf.constant(rng.normal(0, 30, (args.batch_size, *shape)), tf.float32),
                        dtype)
            g = tf.cast(tf.constant(rng.normal(0, 1, x.shape), tf.float32), dtype)
            # Warm-up rounds interleaved too, then the timed ones.
            tasks = [(name, None, lambda step=step: _seconds(step, x, g))
                     for name, step in impls.items()]
            harness.interleaved(tasks, args.warmup)
            times = harness.interleaved(tasks, args.rounds)
            ms = {name: 1000 * harness.median(t) for name, t in times.items()}
            results.append({
                "shape": [args.batch_size, *shape],
                "precision": "float32" if dtype == "float32" else "mixed_bfloat16",
                "tf_nn_ms": round(ms["tf_nn"], 2), "keras_ops_ms": round(ms["keras_ops"], 2),
                "keras_ops_over_tf_nn": round(ms["keras_ops"] / ms["tf_nn"], 3),
            })
    total = {name: sum(r[f"{name}_ms"] for r in results) for name in impls}
    harness.emit({
        "what": "LRN forward+backward, TensorFlow backend, tf.function, CPU",
        "threads": os.cpu_count(), "tensorflow": tf.__version__, "rounds": args.rounds,
        "results": results,
        "faster_overall": min(total, key=total.get),
    }, indent=1)


if __name__ == "__main__":
    main()
