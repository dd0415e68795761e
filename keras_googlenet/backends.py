"""Choosing the Keras backend, and guarding what only TensorFlow can do.

Keras reads its backend once, when it is first imported: `select` sets
KERAS_BACKEND before that (`googlenet train --backend jax`), and refuses a
backend other than the one an already imported Keras runs on. Nothing here
imports Keras or TensorFlow unless asked for the current backend.

Keras is imported before TensorFlow, everywhere: Keras' PyTorch backend
imports torch._dynamo and with it triton (part of every CUDA build of
torch), and LLVM aborts the process when triton is loaded after TensorFlow
("Option ... registered more than once"). Every module that imports
TensorFlow therefore imports Keras first, and `googlenet` starts Keras
before TensorFlow (tests/backends/test_import_order.py checks both).
"""
import json
import os
import subprocess
import sys

BACKENDS = ("tensorflow", "jax", "torch")
_RESULT = "KERAS_GOOGLENET_RESULT "


def select(name):
    """Makes `name` the Keras backend of this process (None: leave it).

    Raises:
        ValueError: `name` is not a backend, or Keras is already imported
            with another backend.
    """
    if name is None:
        return
    if name not in BACKENDS:
        raise ValueError(f"--backend must be one of {BACKENDS}. Received: backend={name!r}")
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        running = keras.backend.backend()
        if running != name:
            raise ValueError(
                f"Keras is already imported with the {running} backend, so --backend {name} "
                f"cannot take effect; set KERAS_BACKEND={name} before starting Python.")
        return
    os.environ["KERAS_BACKEND"] = name


def configured():
    """The backend Keras runs on, or will run on once imported, without
    importing it: Keras' own order (KERAS_BACKEND, then the "backend" of
    KERAS_HOME/keras.json or ~/.keras/keras.json, then tensorflow)."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return keras.backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            return json.load(f).get("backend") or "tensorflow"
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def tensorflow_environment():
    """This process's environment with Keras on TensorFlow, quiet at start."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return env


def run_command_under_tensorflow(argv):
    """Runs `googlenet ARGV` in a child process on the TensorFlow backend
    (its output goes where this process's goes); returns its exit code."""
    return subprocess.call([sys.executable, "-m", "keras_googlenet", *argv],
                           env=tensorflow_environment())


def call_under_tensorflow(module, function, *args):
    """`module.function(*args)` in a child process on the TensorFlow backend,
    for the work only TensorFlow does (a SavedModel) from a run on another
    backend. Arguments and result travel as JSON.

    Raises:
        RuntimeError: the call failed; the message ends with the child's
            last line of error output.
    """
    code = ("import json, sys\n"
            f"from {module} import {function}\n"
            f"result = {function}(*json.loads(sys.argv[1]))\n"
            f"print({_RESULT!r} + json.dumps(result))\n")
    child = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True,
                           text=True, env=tensorflow_environment())
    results = [line[len(_RESULT):] for line in child.stdout.splitlines()
               if line.startswith(_RESULT)]
    if child.returncode != 0 or not results:
        errors = [line for line in child.stderr.splitlines() if line.strip()]
        raise RuntimeError(f"{module}.{function} failed on the TensorFlow backend (exit code "
                           f"{child.returncode}): {errors[-1] if errors else 'no output'}")
    return json.loads(results[-1])


def current():
    """The backend Keras runs on (imports Keras)."""
    import keras

    return keras.backend.backend()


def require_tensorflow(what, instead=""):
    """Raises a one-line ValueError when Keras does not run on TensorFlow.

    Args:
        what: what needs TensorFlow, e.g. "--strategy mirrored".
        instead: what the user can do instead (a sentence), if anything.
    """
    backend = current()
    if backend != "tensorflow":
        raise ValueError(f"{what} needs the TensorFlow backend, and Keras runs on {backend}"
                         + (f"; {instead}" if instead else
                            "; use --backend tensorflow (or KERAS_BACKEND=tensorflow)") + ".")
