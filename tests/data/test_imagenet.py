import numpy as np
import pytest

import keras_googlenet as kg
from keras_googlenet.models.imagenet import class_names


def test_decode_predictions_on_one_hot_rows():
    preds = np.zeros((2, 1000), np.float32)
    preds[0, 1] = 1.0
    preds[1, 999] = 0.7
    preds[1, 0] = 0.2
    decoded = kg.decode_predictions(preds, top=2)
    assert decoded[0][0] == ("n01443537", "goldfish", 1.0)
    assert decoded[1][0][:2] == ("n15075141", "toilet tissue")
    assert decoded[1][1][:2] == ("n01440764", "tench")
    assert len(decoded[1]) == 2
    assert len(class_names()) == 1000 and len(set(class_names())) >= 998


def test_decode_predictions_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"preds.shape=\(3, 10\)"):
        kg.decode_predictions(np.zeros((3, 10)))


def test_preprocess_input_caffe_convention():
    x = np.array([[[[255.0, 0.0, 10.0]]]], np.float32)  # one RGB pixel
    out = kg.preprocess_input(x.copy())
    # RGB -> BGR, minus the ImageNet means (B 103.939, G 116.779, R 123.68).
    np.testing.assert_allclose(out[0, 0, 0], [10 - 103.939, 0 - 116.779, 255 - 123.68], rtol=1e-6)
    np.testing.assert_allclose(kg.preprocess_input(x.copy(), mode="tf")[0, 0, 0],
                               [1.0, -1.0, 10 / 127.5 - 1], rtol=1e-6)
    with pytest.raises(ValueError, match="mode='bgr'"):
        kg.preprocess_input(x, mode="bgr")
