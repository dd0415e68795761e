"""`python predict_check.py MODEL.keras OUT.npy`: the model's predictions on a
fixed batch under the current backend (for test_train.py)."""
import sys

import numpy as np

from keras_googlenet.inference import loader

model, contract = loader.load_model(sys.argv[1])
size = contract.image_size
x = np.random.RandomState(3).uniform(-100, 100, (2, size, size, 3)).astype("float32")
np.save(sys.argv[2], np.asarray(model.predict(x, verbose=0)))
print("RESULT {}")
