"""Choosing the Keras backend, and guarding what only TensorFlow can do.

Keras reads its backend once, when it is first imported: `select` sets
KERAS_BACKEND before that (`googlenet train --backend jax`), and refuses a
backend other than the one an already imported Keras runs on. Nothing here
imports Keras or TensorFlow unless asked for the current backend.
"""
import os
import sys

BACKENDS = ("tensorflow", "jax", "torch")


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
