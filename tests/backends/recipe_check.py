"""Run under KERAS_BACKEND=jax or torch by test_recipe_backends.py: the training
recipe's loss, schedule and EMA on that backend, and its clear errors.
Prints one JSON object."""
import json
import math
import subprocess
import sys

import keras
import numpy as np

from keras_googlenet import GoogLeNet
from keras_googlenet.models import objective, schedules
from keras_googlenet.train import distribute

out = {"backend": keras.backend.backend()}
keras.utils.set_random_seed(0)

# The loss: main + 0.3 aux1 + 0.3 aux2, by hand from the three outputs.
model = GoogLeNet(input_shape=(65, 65, 3), classes=4, weights=None, aux_classifiers=True,
                  batch_norm=True, dropout_rate=0.0, aux_dropout_rate=0.0)
objective.compile_model(model, objective.make_optimizer(0.01, weight_decay=0.0, ema_momentum=None))
rng = np.random.RandomState(0)
x = rng.uniform(-1, 1, (4, 65, 65, 3)).astype("float32")
y = np.array([0, 1, 2, 3])
labels = {name: y for name in model.output}
outputs = {k: np.asarray(v, dtype="float64") for k, v in model.predict(x, verbose=0).items()}
def crossentropy(p):
    return float(np.mean(-np.log(np.clip(p[np.arange(4), y], 1e-7, 1.0))))
by_hand = (crossentropy(outputs["predictions"]) + 0.3 * crossentropy(outputs["aux1"])
           + 0.3 * crossentropy(outputs["aux2"]))
out["loss"] = float(model.evaluate(x, labels, verbose=0, return_dict=True)["loss"])
out["loss_by_hand"] = by_hand

# The schedules: cosine with a linear warm-up, the paper's staircase.
cosine = schedules.learning_rate_schedule(0.1, 10, 3, "cosine", warmup_epochs=1)
paper = schedules.learning_rate_schedule(0.1, 10, 20, "paper", decay_epochs=8)
steps = [0, 5, 10, 20, 29]
out["cosine"] = [float(keras.ops.convert_to_numpy(cosine(s))) for s in steps]
out["cosine_by_hand"] = [0.1 * s / 10 if s < 10 else
                         0.1 * 0.5 * (1 + math.cos(math.pi * (s - 10) / 20)) for s in steps]
out["paper"] = [float(keras.ops.convert_to_numpy(paper(s))) for s in (0, 79, 80, 160)]
out["paper_by_hand"] = [0.1, 0.1, 0.1 * 0.96, 0.1 * 0.96 ** 2]

# EMA: after two SGD steps the averages are m * w1 + (1 - m) * w2 (the
# first step starts them at w1), and finalize writes them into the model.
keras.utils.set_random_seed(1)
small = GoogLeNet(input_shape=(32, 32, 3), classes=4, weights=None, aux_classifiers=False,
                  batch_norm=True, dropout_rate=0.0)
objective.compile_model(small, objective.make_optimizer(0.05, weight_decay=1e-3, ema_momentum=0.9))
xs = rng.uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
kernel = small.trainable_variables[0]
small.train_on_batch(xs, y)
w1 = np.array(kernel.numpy())
small.train_on_batch(xs, y)
w2 = np.array(kernel.numpy())
small.optimizer.finalize_variable_values(small.trainable_variables)
out["ema_error"] = float(np.max(np.abs(np.array(kernel.numpy()) - (0.9 * w1 + 0.1 * w2))))
out["ema_moved"] = float(np.max(np.abs(w2 - w1)))

# The TensorFlow-only parts say so.
errors = {}
for name in ("mirrored", "one_device", "multi_worker", "tpu") + (
        ("data_parallel",) if out["backend"] != "jax" else ()):
    try:
        distribute.get_strategy(name)
    except ValueError as e:
        errors[name] = str(e)
out["strategy_errors"] = errors
# `googlenet export` reruns itself on TensorFlow (a child process): what it
# refuses is the missing file, not the backend.
export = subprocess.run([sys.executable, "-m", "keras_googlenet", "export", "--model",
                         "missing.keras", "--base-dir", "x"], capture_output=True, text=True)
out["export_exit"] = export.returncode
out["export_error"] = export.stderr
print("RESULT " + json.dumps(out))
sys.stdout.flush()
