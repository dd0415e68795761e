"""channels_first and channels_last (issue 22): every variant, the
auxiliary heads and include_top=False build in either layout, LRN runs over
the channel axis of both, weights saved in one layout load into the other
and the predictions agree. This file runs in CI's backend matrix too."""
import keras
import numpy as np
import pytest

import keras_googlenet as kg
from keras_googlenet.models import layers as layers_lib


def _nchw_convolution_runs():
    # TensorFlow's CPU kernels lack NCHW convolutions on some machines (on
    # this project's Zen 4 ones they raise UnimplementedError).
    try:
        layer = keras.layers.Conv2D(1, 3, data_format="channels_first")
        keras.ops.convert_to_numpy(layer(np.zeros((1, 3, 8, 8), "float32")))
        return True
    except Exception:  # noqa: BLE001 - any failure means the kernel is missing
        return False


needs_nchw = pytest.mark.skipif(not _nchw_convolution_runs(),
                                reason="this backend's CPU kernels have no NCHW convolution")

SIZE = 65


@pytest.fixture
def channels_first():
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    yield
    keras.config.set_image_data_format(previous)


def _nchw(x):
    return np.transpose(x, (0, 3, 1, 2))


def _outputs(model, x):
    out = model.predict(x, verbose=0)
    return {k: np.asarray(v) for k, v in out.items()} if isinstance(out, dict) else np.asarray(out)


@pytest.mark.parametrize("kwargs", [
    dict(),                                                        # the paper (LRN)
    dict(aux_classifiers=True),                                    # aux heads: Flatten
    dict(batch_norm=True, kernel_5x5=3, pool4_size=2, aux_classifiers=True),  # torchvision's
    dict(include_top=False),                                       # 4D features
    dict(include_top=False, pooling="avg"),
])
@needs_nchw
def test_weights_of_one_layout_load_into_the_other_with_the_same_outputs(kwargs, tmp_path):
    keras.utils.set_random_seed(3)
    last = kg.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=6, **kwargs)
    x = np.random.RandomState(0).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    expected = _outputs(last, x)
    last.save_weights(tmp_path / "last.weights.h5")
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        first = kg.GoogLeNet(input_shape=(3, SIZE, SIZE), classes=6, **kwargs)
        first.load_weights(tmp_path / "last.weights.h5")
        actual = _outputs(first, _nchw(x))
        first.save_weights(tmp_path / "first.weights.h5")
    finally:
        keras.config.set_image_data_format(previous)
    if not kwargs.get("include_top", True) and kwargs.get("pooling") is None:
        actual = np.transpose(actual, (0, 2, 3, 1))
    if isinstance(expected, dict):
        assert set(actual) == set(expected)
        for key in expected:
            np.testing.assert_allclose(actual[key], expected[key], rtol=1e-4, atol=1e-5)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5)
    # And back: a channels_first file loads into a channels_last model.
    again = kg.GoogLeNet(input_shape=(SIZE, SIZE, 3), classes=6, **kwargs)
    again.load_weights(tmp_path / "first.weights.h5")
    for a, b in zip(again.get_weights(), last.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_lrn_normalises_over_the_channel_axis_of_either_layout():
    x = np.random.RandomState(1).uniform(0, 4, (2, 5, 6, 16)).astype("float32")
    last = keras.ops.convert_to_numpy(layers_lib.LocalResponseNormalization()(x))
    first = keras.ops.convert_to_numpy(
        layers_lib.LocalResponseNormalization(axis=1)(_nchw(x)))
    np.testing.assert_allclose(first, _nchw(last), rtol=1e-6)
    formula = keras.ops.convert_to_numpy(layers_lib.lrn_keras_ops(_nchw(x), axis=1))
    np.testing.assert_allclose(formula, _nchw(last), rtol=1e-5)
    with pytest.raises(ValueError, match="`axis` must be the channel axis.*Received: axis=2"):
        layers_lib.LocalResponseNormalization(axis=2)


@needs_nchw
def test_channels_first_defaults_and_checks(channels_first):
    assert kg.GoogLeNet().input_shape == (None, 3, 224, 224)
    assert kg.GoogLeNet(include_top=False).input_shape == (None, 3, None, None)
    with pytest.raises(ValueError, match=r"\(channels, height, width\).*Received: "
                                         r"input_shape=\(None, 64, 64\)"):
        kg.GoogLeNet(input_shape=(None, 64, 64))
    with pytest.raises(ValueError, match="at least 32. Received: input_shape=\\(64, 64, 3\\)"):
        kg.GoogLeNet(input_shape=(64, 64, 3))  # channels_last's shape: width 3
    with pytest.raises(ValueError, match="at least 65 with auxiliary classifiers"):
        kg.GoogLeNet(input_shape=(3, 64, 64), aux_classifiers=True)


# keras.applications' test conventions, in both layouts.
@pytest.mark.parametrize("layout", ["channels_last",
                                    pytest.param("channels_first", marks=needs_nchw)])
def test_keras_applications_conventions(layout):
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format(layout)
    try:
        def shape(channels, side=None):
            return (channels, side, side) if layout == "channels_first" else (side, side, channels)

        # Variable input channels (grayscale, RGBA), without the top.
        for channels in (1, 4):
            model = kg.GoogLeNet(include_top=False, input_shape=shape(channels), pooling="max")
            assert model.output_shape == (None, 1024)
        # A custom input tensor.
        inputs = keras.Input(shape(3, 96))
        model = kg.GoogLeNet(input_tensor=inputs, classes=4, classifier_activation=None)
        assert model.inputs[0] is inputs and model.output_shape == (None, 4)
        # classifier_activation and a serialization round trip.
        model = kg.GoogLeNet(input_shape=shape(3, 65), classes=3,
                             classifier_activation="sigmoid", aux_classifiers=True)
        clone = keras.Model.from_config(model.get_config())
        clone.set_weights(model.get_weights())
        x = np.random.RandomState(2).uniform(-1, 1, (1,) + shape(3, 65)).astype("float32")
        for key, value in _outputs(model, x).items():
            np.testing.assert_allclose(_outputs(clone, x)[key], value, atol=1e-6)
            assert np.all((value > 0) & (value < 1))
    finally:
        keras.config.set_image_data_format(previous)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow" or _nchw_convolution_runs(),
                    reason="only where TensorFlow has no NCHW convolution kernel")
def test_channels_first_without_nchw_kernels_is_refused_by_name(channels_first):
    # Not a trace from the first convolution at run time: a ValueError at build.
    with pytest.raises(ValueError, match=r"no channels_first \(NCHW\) convolution.*use "
                                         r"channels_last on TensorFlow.*Received: "):
        kg.GoogLeNet()
