"""The model against the paper's Table 1 and the keras.applications API."""
import numpy as np
import pytest
import keras

import keras_googlenet as kg
from keras_googlenet.models.flops import multiply_adds

# Table 1 of the paper, transcribed independently of architecture.py:
# name -> (output H, W, C, params in K as printed, ops in M as printed).
TABLE_1 = {
    "inception_3a": (28, 28, 256, 159, 128),
    "inception_3b": (28, 28, 480, 380, 304),
    "inception_4a": (14, 14, 512, 364, 73),
    "inception_4b": (14, 14, 512, 437, 88),
    "inception_4c": (14, 14, 512, 463, 100),
    "inception_4d": (14, 14, 528, 580, 119),
    "inception_4e": (14, 14, 832, 840, 170),
    "inception_5a": (7, 7, 832, 1072, 54),
    "inception_5b": (7, 7, 1024, 1388, 71),
}
PARAMS_ERRATA = {"inception_4c": 497.5, "inception_5a": 1018.0}
STEM = {
    "conv1_7x7_s2_relu": (112, 112, 64),
    "pool1_3x3_s2": (56, 56, 64),
    "conv2_3x3_relu": (56, 56, 192),
    "pool2_3x3_s2": (28, 28, 192),
    "pool3_3x3_s2": (14, 14, 480),
    "pool4_3x3_s2": (7, 7, 832),
}


@pytest.fixture(scope="module")
def paper_model():
    return kg.GoogLeNet()


def test_parameter_count_is_exact(paper_model):
    assert paper_model.count_params() == 6_998_552


def test_stage_output_shapes_match_table_1(paper_model):
    for name, (h, w, c, *_) in TABLE_1.items():
        assert tuple(paper_model.get_layer(name).output.shape[1:]) == (h, w, c), name
    for name, shape in STEM.items():
        assert tuple(paper_model.get_layer(name).output.shape[1:]) == shape, name
    assert tuple(paper_model.get_layer("pool5_7x7_s1").output.shape) == (None, 1024)
    assert tuple(paper_model.output.shape) == (None, 1000)


def test_block_params_and_ops_match_table_1(paper_model):
    _, ops = multiply_adds(paper_model, per_layer=True)
    for name, (*_, params_k, ops_m) in TABLE_1.items():
        layers = [l for l in paper_model.layers if l.name.startswith(name + "_")]
        # The paper counts weights without biases, in units of 1024.
        weights = sum(int(np.prod(l.kernel.shape)) for l in layers if hasattr(l, "kernel"))
        if name in PARAMS_ERRATA:
            # Table 1's params for 4c and 5a do not follow from its own channel
            # counts (463K vs 497.5K, 1072K vs 1018K); output sizes, the total
            # and the other rows do, so the channel counts are taken as right.
            assert weights / 1024 == PARAMS_ERRATA[name], name
        else:
            assert weights / 1024 == pytest.approx(params_k, rel=0.02), name
        block_ops = sum(v for k, v in ops.items() if k.startswith(name + "_"))
        if name == "inception_5a":
            # 5a's ops are 5% off too (54M printed): both of 5a's figures
            # disagree with its channel counts by the same factor.
            assert block_ops / 1e6 == pytest.approx(51.08, abs=0.01)
        else:
            assert block_ops / 1e6 == pytest.approx(ops_m, rel=0.02, abs=0.6), name


def test_multiply_adds_at_224(paper_model):
    # The paper rounds to "1.5 billion"; counting every conv and fc gives 1.58G.
    assert multiply_adds(paper_model) / 1e9 == pytest.approx(1.58, abs=0.01)


def test_third_branch_is_a_real_5x5(paper_model):
    assert tuple(paper_model.get_layer("inception_3a_5x5").kernel.shape) == (5, 5, 16, 32)
    assert tuple(paper_model.get_layer("inception_5b_5x5").kernel.shape) == (5, 5, 48, 128)
    slim = kg.GoogLeNet(batch_norm=True, kernel_5x5=3, input_shape=(64, 64, 3), classes=10)
    assert tuple(slim.get_layer("inception_3a_5x5").kernel.shape) == (3, 3, 16, 32)


def test_paper_model_has_lrn_relu_and_no_batch_norm(paper_model):
    names = [l.name for l in paper_model.layers]
    assert "pool1_norm1" in names and "conv2_norm2" in names
    assert names.index("pool1_norm1") == names.index("pool1_3x3_s2") + 1
    assert names.index("conv2_norm2") == names.index("conv2_3x3_relu") + 1
    convs = [l for l in paper_model.layers if isinstance(l, keras.layers.Conv2D)]
    assert len(convs) == 57  # 3 in the stem + 9 blocks x 6
    for conv in convs:
        assert conv.use_bias
        assert paper_model.get_layer(conv.name + "_relu")
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in paper_model.layers)
    assert paper_model.get_layer("pool5_dropout").rate == 0.4
    assert paper_model.get_layer("classifier").activation.__name__ == "linear"
    assert paper_model.get_layer("predictions").activation.__name__ == "softmax"


def test_conv1_pads_symmetrically_like_caffe():
    # A single bright pixel at (3, 3) is seen by the first 7x7/2 window only
    # when the padding is 3 on each side (TF "same" pads 2 before at 224).
    model = kg.GoogLeNet(include_top=False)
    conv = model.get_layer("conv1_7x7_s2")
    probe = keras.Model(model.inputs, conv.output)
    kernel = np.zeros(conv.kernel.shape, np.float32)
    kernel[6, 6, 0, 0] = 1.0  # bottom-right tap of the window
    conv.kernel.assign(kernel)
    conv.bias.assign(np.zeros(conv.bias.shape, np.float32))
    image = np.zeros((1, 224, 224, 3), np.float32)
    image[0, 3, 3, 0] = 1.0
    out = probe.predict(image, verbose=0)[0, :, :, 0]
    # Window (i, j) covers padded rows 2i..2i+6, i.e. input rows 2i-3..2i+3.
    assert out[0, 0] == 1.0 and out.sum() == 1.0


def test_training_model_has_three_named_outputs():
    model = kg.GoogLeNet(aux_classifiers=True, classes=10, input_shape=(96, 96, 3))
    assert set(model.output) == {"predictions", "aux1", "aux2"}
    assert model.get_layer("aux1_ave_pool").input is model.get_layer("inception_4a").output
    assert model.get_layer("aux2_ave_pool").input is model.get_layer("inception_4d").output
    assert model.get_layer("aux1_conv").filters == 128
    assert model.get_layer("aux1_fc").units == 1024
    assert model.get_layer("aux2_dropout").rate == 0.7
    out = model(np.zeros((2, 96, 96, 3), np.float32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "predictions": (2, 10), "aux1": (2, 10), "aux2": (2, 10)}


def test_aux_heads_at_224_pool_to_4x4():
    model = kg.GoogLeNet(aux_classifiers=True)
    assert tuple(model.get_layer("aux1_ave_pool").output.shape[1:]) == (4, 4, 512)
    assert tuple(model.get_layer("aux2_ave_pool").output.shape[1:]) == (4, 4, 528)


def test_inference_model_shares_weights_and_disables_dropout():
    model = kg.GoogLeNet(aux_classifiers=True, classes=5, input_shape=(65, 65, 3))
    infer = kg.inference_model(model)
    assert not isinstance(infer.output, dict)
    assert len(infer.outputs) == 1
    assert infer.count_params() < model.count_params()
    x = np.random.default_rng(0).uniform(-1, 1, (3, 65, 65, 3)).astype(np.float32)
    before = infer.predict(x, verbose=0)
    np.testing.assert_allclose(before, model.predict(x, verbose=0)["predictions"], atol=1e-6)
    np.testing.assert_allclose(before.sum(axis=1), 1.0, atol=1e-5)
    # Dropout is off at inference: two calls agree; in training mode they don't.
    # (allclose: on JAX, predict is jitted and a direct call is not.)
    np.testing.assert_allclose(before, keras.ops.convert_to_numpy(infer(x, training=False)),
                               atol=1e-6)
    assert not np.allclose(keras.ops.convert_to_numpy(infer(x, training=True)),
                           keras.ops.convert_to_numpy(infer(x, training=True)))
    # Same weights: change one in the training model, the inference model sees it.
    bias = model.get_layer("classifier").bias
    bias.assign(bias.numpy() + np.arange(5, dtype=np.float32))
    assert not np.allclose(infer.predict(x, verbose=0), before)
    assert kg.inference_model(infer) is infer


def test_batch_norm_variant_builds_and_trains_one_step():
    model = kg.GoogLeNet(batch_norm=True, classes=4, input_shape=(64, 64, 3))
    names = {l.name for l in model.layers}
    assert "pool1_norm1" not in names and "conv1_7x7_s2_bn" in names
    assert not model.get_layer("inception_3a_5x5").use_bias
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(1).normal(size=(8, 64, 64, 3)).astype(np.float32)
    y = np.arange(8) % 4
    before = model.get_layer("inception_3a_5x5").kernel.numpy()
    mean_before = model.get_layer("conv1_7x7_s2_bn").moving_mean.numpy()
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert not np.allclose(before, model.get_layer("inception_3a_5x5").kernel.numpy())
    assert not np.allclose(mean_before, model.get_layer("conv1_7x7_s2_bn").moving_mean.numpy())


@pytest.mark.parametrize("pooling, shape", [(None, (None, 2, 2, 1024)),
                                            ("avg", (None, 1024)), ("max", (None, 1024))])
def test_include_top_false_pooling_modes(pooling, shape):
    model = kg.GoogLeNet(include_top=False, pooling=pooling, input_shape=(64, 64, 3))
    assert tuple(model.output.shape) == shape
    assert "classifier" not in {l.name for l in model.layers}


def test_include_top_false_accepts_any_size():
    model = kg.GoogLeNet(include_top=False, pooling="avg")
    assert tuple(model.input.shape) == (None, None, None, 3)
    for size in (32, 77, 160):
        assert model(np.zeros((1, size, size, 3), np.float32)).shape == (1, 1024)


def test_custom_classes_and_logits():
    model = kg.GoogLeNet(classes=7, classifier_activation=None, input_shape=(32, 32, 3))
    out = model.predict(np.ones((2, 32, 32, 3), np.float32), verbose=0)
    assert out.shape == (2, 7)
    assert not np.allclose(out.sum(axis=1), 1.0)


def test_input_tensor():
    inputs = keras.Input((80, 80, 3))
    model = kg.GoogLeNet(input_tensor=inputs, classes=3, aux_classifiers=True)
    assert model.inputs[0] is inputs
    assert tuple(model.output["aux1"].shape) == (None, 3)


@pytest.mark.parametrize("aux, minimum", [(False, 32), (True, 65)])
def test_minimum_input_size(aux, minimum):
    model = kg.GoogLeNet(input_shape=(minimum, minimum, 3), classes=2, aux_classifiers=aux)
    out = model.predict(np.zeros((1, minimum, minimum, 3), np.float32), verbose=0)
    first = out["predictions"] if aux else out
    assert first.shape == (1, 2)
    with pytest.raises(ValueError, match=f"at least {minimum}.*input_shape=\\({minimum - 1}"):
        kg.GoogLeNet(input_shape=(minimum - 1, minimum, 3), aux_classifiers=aux)


@pytest.mark.parametrize("kwargs, message", [
    (dict(weights="imagenet", classes=10), "needs `classes=1000`. Received: classes=10"),
    (dict(pool4_size=4), "pool4_size=4"),
    (dict(weights="/no/such/file.weights.h5"), "weights='/no/such/file.weights.h5'"),
    (dict(weights=3), "weights=3"),
    (dict(pooling="mean", include_top=False), "pooling='mean'"),
    (dict(classes=0), "classes=0"),
    (dict(classes="10"), "classes='10'"),
    (dict(dropout_rate=1.5), "dropout_rate=1.5"),
    (dict(aux_dropout_rate=-0.1), "aux_dropout_rate=-0.1"),
    (dict(kernel_5x5=7), "kernel_5x5=7"),
    (dict(include_top=False, aux_classifiers=True), "aux_classifiers=True"),
    (dict(aux_classifiers="yes"), "aux_classifiers='yes'"),
    (dict(input_shape=(224, 224)), "input_shape=\\(224, 224\\)"),
    (dict(input_shape=(None, None, 3), aux_classifiers=True), "must be known"),
])
def test_invalid_arguments_name_what_was_received(kwargs, message):
    with pytest.raises(ValueError, match=message):
        kg.GoogLeNet(**kwargs)


def test_weights_file_round_trip(tmp_path):
    model = kg.GoogLeNet(classes=3, input_shape=(48, 48, 3))
    path = str(tmp_path / "g.weights.h5")
    model.save_weights(path)
    again = kg.GoogLeNet(classes=3, input_shape=(48, 48, 3), weights=path)
    x = np.random.default_rng(2).normal(size=(2, 48, 48, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), again.predict(x, verbose=0))


@pytest.mark.parametrize("batch_norm", [False, True])
def test_keras_file_round_trip(tmp_path, batch_norm):
    model = kg.GoogLeNet(classes=4, input_shape=(65, 65, 3), aux_classifiers=True,
                         batch_norm=batch_norm)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(3).normal(size=(2, 65, 65, 3)).astype(np.float32)
    expected, actual = model.predict(x, verbose=0), loaded.predict(x, verbose=0)
    assert set(actual) == {"predictions", "aux1", "aux2"}
    for key in expected:
        np.testing.assert_array_equal(expected[key], actual[key])
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(clone.predict(x, verbose=0)["aux2"], expected["aux2"])


def test_feature_model_endpoints():
    backbone = kg.GoogLeNet(include_top=False, input_shape=(128, 128, 3))
    features = kg.feature_model(backbone)
    out = features(np.zeros((1, 128, 128, 3), np.float32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "inception_3b": (1, 16, 16, 480),
        "inception_4e": (1, 8, 8, 832),
        "inception_5b": (1, 4, 4, 1024),
    }
    assert kg.feature_model(backbone, "conv2_3x3").output["conv2_3x3"].shape[-1] == 192
    with pytest.raises(ValueError, match="Unknown stage 'inception_6a'"):
        kg.feature_model(backbone, ["inception_6a"])


def test_mixed_bfloat16_keeps_float32_outputs_and_lrn():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = kg.GoogLeNet(aux_classifiers=True, classes=3, input_shape=(65, 65, 3))
    out = model(np.ones((1, 65, 65, 3), np.float32), training=False)
    assert all(keras.backend.standardize_dtype(v.dtype) == "float32" for v in out.values())
    assert model.get_layer("pool1_norm1").compute_dtype == "bfloat16"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["predictions"]).sum(), 1.0, atol=1e-5)
