"""GoogLeNetClassifier: compile() is the recipe, fit takes plain integer
labels and adds the 0.3-weighted auxiliary losses, predict gives one array,
and the saved file loads with plain Keras in a fresh process."""
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import helpers as fx
from keras_googlenet.models import architecture, contract
from keras_googlenet.models.classifier import GoogLeNetClassifier
from keras_googlenet.models.googlenet import OUTPUT_NAME
from keras_googlenet.models.losses import SparseCrossentropy

SIZE, CLASSES = 65, 3  # the smallest input the auxiliary heads take


def _data(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (n, SIZE, SIZE, 3)).astype("float32"),
            rng.integers(0, CLASSES, n))


def _classifier(**kwargs):
    keras.utils.set_random_seed(0)
    return GoogLeNetClassifier(classes=CLASSES, input_shape=(SIZE, SIZE, 3), **kwargs)


def test_the_loss_is_the_main_head_plus_0_3_of_each_auxiliary_head():
    # No dropout: the training forward pass is then deterministic.
    model = _classifier(dropout_rate=0.0, aux_dropout_rate=0.0)
    model.compile()
    x, y = _data()
    outputs = model(x, training=True)
    assert set(outputs) == {OUTPUT_NAME, *architecture.AUX_HEADS}
    total = float(model.compute_loss(x, y, outputs))
    crossentropy = SparseCrossentropy(CLASSES)
    expected = sum(architecture.AUX_LOSS_WEIGHT * float(crossentropy(y, outputs[h]))
                   for h in architecture.AUX_HEADS) + float(crossentropy(y, outputs[OUTPUT_NAME]))
    assert total == pytest.approx(expected, rel=1e-5)
    # Evaluation scores the main head alone, as the paper does at test time.
    assert float(model.compute_loss(x, y, model(x))) == pytest.approx(
        float(crossentropy(y, outputs[OUTPUT_NAME])), rel=1e-5)


def test_compile_without_arguments_is_the_paper_recipe_with_its_schedule():
    model = _classifier()
    model.compile()
    x, y = _data(n=8)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert {"loss", "top1"} <= set(history.history)
    assert np.isfinite(history.history["loss"][0])
    optimizer = model.optimizer
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert optimizer.momentum == 0.9 and optimizer.use_ema and optimizer.weight_decay == 2e-4
    assert optimizer.ema_momentum == 0.9999
    # x0.96 every 8 epochs of the fitted data's 2 steps (staircase).
    schedule = optimizer._learning_rate
    assert float(schedule(15)) == pytest.approx(0.01)
    assert float(schedule(16)) == pytest.approx(0.01 * 0.96)
    assert int(optimizer.iterations.numpy()) == 2


def test_a_named_recipe_or_values_set_the_optimizer():
    model = _classifier()
    model.compile(recipe="embedded_digits", steps_per_epoch=10, epochs=12)
    assert model.optimizer.ema_momentum == 0.99 and model.optimizer.weight_decay == 5e-5
    model.compile(recipe={"learning_rate": 0.1, "schedule": "constant", "ema_momentum": 0},
                  steps_per_epoch=10, epochs=1)
    assert not model.optimizer.use_ema and float(model.optimizer.learning_rate) == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"Unknown recipe keys \['lr'\]"):
        model.compile(recipe={"lr": 0.1})
    with pytest.raises(ValueError, match="Unknown recipe"):
        model.compile(recipe="imagenet")


def test_predict_is_one_probability_array_and_fit_takes_a_dataset():
    import tensorflow as tf

    model = _classifier()
    model.compile()
    x, y = _data(n=8)
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(4), epochs=1, verbose=0)
    probabilities = model.predict(x, verbose=0)
    assert probabilities.shape == (8, CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    evaluated = model.evaluate(x, y, verbose=0, return_dict=True)
    assert {"loss", "top1"} <= set(evaluated)


def test_saved_file_loads_with_plain_keras_in_a_fresh_process_with_its_contract(tmp_path):
    model = _classifier(class_names=["circle", "square", "star"], normalization="torch")
    model.compile()
    x, y = _data(n=4)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    moved = tmp_path / "elsewhere" / "classifier.keras"
    moved.parent.mkdir()
    os.replace(path, moved)
    expected = model.predict(x, verbose=0)
    np.save(tmp_path / "x.npy", x)
    script = ("import sys, numpy as np, keras, keras_googlenet\n"
              "m = keras.models.load_model(sys.argv[1])\n"
              "print('RESULT', type(m).__name__, m.contract.class_names, m.contract.normalization)\n"
              "x = np.load(sys.argv[2])\n"
              "np.save(sys.argv[3], m.predict(x, verbose=0))\n"
              # Compiled as saved: it evaluates, and fit goes on from its step.
              "m.evaluate(x, np.zeros(len(x)), verbose=0)\n"
              "m.fit(x, np.zeros(len(x)), batch_size=4, epochs=1, verbose=0)\n"
              "print('STEP', int(m.optimizer.iterations), type(m.optimizer).__name__, "
              "m.optimizer.use_ema)\n")
    process = subprocess.run(
        [sys.executable, "-c", script, str(moved), str(tmp_path / "x.npy"),
         str(tmp_path / "p.npy")], cwd=str(tmp_path), capture_output=True, text=True,
        env=dict(os.environ, PYTHONPATH=fx.ROOT, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert "RESULT GoogLeNetClassifier ('circle', 'square', 'star') torch" in process.stdout
    assert "STEP 2 SGD True" in process.stdout  # the recipe's optimizer, its step restored
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), expected, atol=1e-5)
    # The package's own readers see the same contract.
    stored = contract.read_contract(str(moved))
    assert stored.class_names == ("circle", "square", "star") and stored.image_size == SIZE


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"one name per class \(3\)"):
        _classifier(class_names=["a", "b"])
    with pytest.raises(ValueError, match="at least 65"):
        GoogLeNetClassifier(classes=3, input_shape=(32, 32, 3))


def test_backbone_is_the_network_up_to_inception_5b_sharing_its_weights():
    model = _classifier()
    backbone = model.backbone
    assert backbone.output_shape == (None, 3, 3, 1024)  # 65 pixels: 1/32 is 3
    assert backbone.get_layer("inception_5b_1x1").kernel is model.network.get_layer(
        "inception_5b_1x1").kernel
    x, _ = _data(n=2)
    pooled = keras.ops.convert_to_numpy(keras.ops.mean(backbone(x), axis=(1, 2)))
    features = keras.Model(model.network.input, model.network.get_layer("pool5_7x7_s1").output)
    np.testing.assert_allclose(pooled, keras.ops.convert_to_numpy(features(x)), rtol=1e-5,
                               atol=1e-6)
