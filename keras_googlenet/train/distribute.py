"""Choosing a tf.distribute strategy and a precision policy."""
import json
import logging
import os

import keras
import tensorflow as tf

# The one CPU-feature helper. resolve_precision passes cpu_flags() explicitly,
# so replacing this module's cpu_flags (as tests do) changes what "auto" picks.
from keras_googlenet.hardware import cpu_flags, has_bf16_hardware
from keras_googlenet.train.config import PRECISIONS, STRATEGIES  # noqa: F401


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
    bfloat16 would be emulated and slower. Measured on a 2-core AVX512_BF16
    CPU: GoogLeNet training 1.6x faster than float32 (17.4 -> 28.3 images/s
    at 224, batch 32), the main job 98.06% vs 98.61% validation top-1.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"`precision` must be one of {PRECISIONS}. Received: precision={precision!r}")
    if precision != "auto":
        return precision
    if tf.config.list_logical_devices("GPU"):
        return "mixed_float16"
    if tf.config.list_logical_devices("TPU") or has_bf16_hardware(cpu_flags()):
        return "mixed_bfloat16"
    return "float32"


def set_precision(precision="auto"):
    """Sets Keras' global dtype policy; returns the policy name. Call it
    before building the model. The classifiers' softmax stays float32
    (see `model._classifier`); mixed_float16 gets loss scaling from
    `model.compile`."""
    policy = resolve_precision(precision)
    keras.mixed_precision.set_global_policy(policy)
    return policy
