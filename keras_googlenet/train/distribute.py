"""Choosing a distribution strategy and a precision policy.

On the TensorFlow backend the strategies are tf.distribute's. On JAX,
`data_parallel` is Keras' own `keras.distribution.DataParallel`, and
`auto` one device; on PyTorch only `auto` (one device) is available.
"""
import contextlib
import json
import logging
import os

import keras
import tensorflow as tf

# The one CPU-feature helper. resolve_precision passes cpu_flags() explicitly,
# so replacing this module's cpu_flags (as tests do) changes what "auto" picks.
from keras_googlenet.hardware import cpu_flags, has_bf16_hardware
from keras_googlenet.train.config import PRECISIONS, STRATEGIES, TF_STRATEGIES  # noqa: F401


log = logging.getLogger(__name__)


def get_strategy(name="auto", tpu_address=None):
    """Returns the `tf.distribute.Strategy` called `name`.

    - `auto`: MirroredStrategy when more than one GPU is visible, the one
      GPU when there is one, TensorFlow's default strategy on a CPU.
    - `one_device`: the first GPU, else the CPU.
    - `mirrored`: all local GPUs (or all logical CPU devices when there are no
      GPUs: what tests use), synchronous all-reduce.
    - `multi_worker`: MultiWorkerMirroredStrategy configured from the
      `TF_CONFIG` environment variable. Keras 3's `model.fit` fails under it
      (keras-team/keras#20585), so training uses `custom_loop.train` there.
    - `tpu`: TPUStrategy on `tpu_address` (or the resolver's default).
    """
    if name not in STRATEGIES:
        raise ValueError(f"`strategy` must be one of {STRATEGIES}. Received: strategy={name!r}")
    backend = keras.backend.backend()
    if name == "data_parallel":
        if backend != "jax":
            raise ValueError(
                "--strategy data_parallel (keras.distribution.DataParallel) needs the JAX "
                f"backend, and Keras runs on {backend}; use --backend jax, or --strategy "
                "mirrored on TensorFlow.")
        return KerasDistribution(keras.distribution.DataParallel(
            devices=keras.distribution.list_devices()))
    if backend != "tensorflow":
        if name in TF_STRATEGIES:
            raise ValueError(
                f"--strategy {name} is a tf.distribute strategy: it needs the TensorFlow "
                f"backend, and Keras runs on {backend}; use --backend tensorflow"
                + (", or --strategy data_parallel on JAX" if backend == "jax" else "")
                + ", or --strategy auto (one device).")
        return SingleDevice()
    if name == "multi_worker":
        # Before anything else touches TensorFlow: collective ops must be
        # configured at program start-up.
        check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if len(gpus) > 1:
            name = "mirrored"
        elif not gpus:
            # Plain CPU: the default strategy skips the per-device iterator
            # that OneDeviceStrategy adds around the dataset.
            return tf.distribute.get_strategy()
        else:
            name = "one_device"
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices)


class SingleDevice:
    """The `auto` strategy on JAX and PyTorch: one device, Keras' default
    placement (the strategy interface the trainer uses)."""

    num_replicas_in_sync = 1
    cluster_resolver = None

    def scope(self):
        return contextlib.nullcontext()


class KerasDistribution:
    """A `keras.distribution.Distribution` (JAX) behind the strategy
    interface the trainer uses. Entering `scope()` makes it the global
    distribution: variables created there are laid out by it, and
    `model.fit` shards each batch over its devices."""

    cluster_resolver = None

    def __init__(self, distribution):
        self.distribution = distribution
        self.num_replicas_in_sync = len(distribution.device_mesh.devices.flatten())

    def scope(self):
        # Global, not a context: fit, evaluate and predict run outside the
        # scope that built the model, and must shard their batches too.
        keras.distribution.set_distribution(self.distribution)
        return contextlib.nullcontext()


def check_tf_config():
    """Validates `TF_CONFIG` for multi-worker training, with a clear error."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "--strategy multi_worker needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}}. Received: TF_CONFIG unset'
        )
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        index = config["task"]["index"]
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"TF_CONFIG is not valid multi-worker JSON ({e}). Received: TF_CONFIG={raw!r}"
        ) from None
    if not 0 <= index < len(workers):
        raise ValueError(f"TF_CONFIG task index {index} is not among {len(workers)} workers.")
    return config


def is_chief(strategy):
    """Whether this process writes logs, checkpoints and exports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (
        task_type == "worker" and task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )


def resolve_precision(precision="auto"):
    """The Keras dtype policy name for `precision`.

    `auto` is `mixed_float16` on GPUs, `mixed_bfloat16` on TPUs and on CPUs
    with native bfloat16 (AVX512_BF16 or AMX), float32 on other CPUs, where
    bfloat16 would be emulated and slower. On an AVX512_BF16 CPU it trains
    GoogLeNet faster than float32 at about the same accuracy
    (docs/performance.md).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}")
    if precision != "auto":
        return precision
    accelerator = _accelerator()
    if accelerator == "gpu":
        return "mixed_float16"
    if accelerator == "tpu" or has_bf16_hardware(cpu_flags()):
        return "mixed_bfloat16"
    return "float32"


def _accelerator():
    """"gpu", "tpu" or None: what the Keras backend computes on."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        platform = jax.default_backend()
        return platform if platform in ("gpu", "tpu") else ("gpu" if platform in (
            "cuda", "rocm") else None)
    if backend == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else None
    if tf.config.list_logical_devices("GPU"):
        return "gpu"
    return "tpu" if tf.config.list_logical_devices("TPU") else None


def set_precision(precision="auto"):
    """Sets Keras' global dtype policy; returns the policy name. Call it
    before building the model. The classifiers' softmax stays float32
    (see `model._classifier`); mixed_float16 gets loss scaling from
    `model.compile`."""
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy
