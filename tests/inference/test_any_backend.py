"""`predict` and the evaluation predictor on whatever backend Keras runs on
(CI reruns this file under KERAS_BACKEND=jax and torch): a `.keras` file with
its contract, moved where a user would move it, gives the probabilities of
the in-memory model. Grad-CAM says in one line that it needs TensorFlow."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import helpers as fx
import keras_googlenet as kg
from keras_googlenet.data import preprocessing
from keras_googlenet.inference import loader, predict, predictors
from keras_googlenet.models import contract as contract_lib

SIZE = 32
NAMES = ("cat", "dog", "owl")


@pytest.fixture
def saved(tmp_path):
    keras.utils.set_random_seed(3)
    model = kg.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=len(NAMES), batch_norm=True,
                         weights=None)
    written = tmp_path / "run" / "model.keras"
    written.parent.mkdir()
    contract_lib.save_model(model, str(written), contract_lib.Contract(
        normalization="torch", image_size=SIZE, class_names=list(NAMES)))
    moved = tmp_path / "model.keras"
    os.replace(written, moved)
    encoded = [fx.encode(fx.random_array(40, 50, seed=i)) for i in range(2)]
    paths = [str(fx.write_file(tmp_path / f"photo{i}.png", data))
             for i, data in enumerate(encoded)]
    expected = np.asarray(fx.reference_probabilities(model, encoded, "torch"), np.float64)
    return model, str(moved), paths, encoded, expected


def test_predict_files_uses_the_file_contract(saved):
    _, path, paths, _, expected = saved
    results = predict.predict_files(path, paths, top=3, verbose=False)
    for (_, top), probabilities in zip(results, expected):
        order = np.argsort(-probabilities)
        assert [name for name, _ in top] == [NAMES[i] for i in order]
        np.testing.assert_allclose([p for _, p in top], probabilities[order], atol=1e-5)


def test_evaluation_predictor_matches_the_model(saved):
    _, path, _, encoded, expected = saved
    crops = np.stack([preprocessing.eval_preprocess(
        preprocessing.decode_image(tf.constant(data)), SIZE).numpy() for data in encoded])
    loaded, contract = loader.load_model(path)
    predictor = predictors.keras_predictor(loaded, normalization=contract.normalization)
    np.testing.assert_allclose(predictor(crops), expected, atol=1e-5)


def test_grad_cam_needs_tensorflow(saved):
    model = saved[0]
    from keras_googlenet.explain import gradcam

    images = np.zeros((1, SIZE, SIZE, 3), np.float32)
    if keras.backend.backend() == "tensorflow":
        result = gradcam.compute(model, images, normalization="torch", layer="inception_4e")
        assert np.asarray(result.maps).shape[0] == 1
    else:
        with pytest.raises(ValueError, match="Grad-CAM needs the TensorFlow backend, and Keras "
                                             f"runs on {keras.backend.backend()}"):
            gradcam.compute(model, images, normalization="torch")
