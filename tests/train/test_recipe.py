"""The paper's loss, schedule and Polyak averaging."""
import numpy as np
import pytest
import keras

import keras_googlenet as kg
from keras_googlenet.models import objective, schedules
from keras_googlenet.models.losses import SparseCrossentropy


def _xent(probs, labels):
    return float(np.mean(-np.log(probs[np.arange(len(labels)), labels])))


def test_total_loss_is_main_plus_0_3_of_each_aux_head():
    model = kg.GoogLeNet(aux_classifiers=True, classes=4, input_shape=(65, 65, 3))
    objective.compile_model(model, objective.make_optimizer(0.01))
    rng = np.random.default_rng(0)
    x = rng.normal(scale=50, size=(6, 65, 65, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 0, 1])
    probs = model.predict(x, verbose=0)
    expected = (_xent(probs["predictions"], y) + 0.3 * _xent(probs["aux1"], y)
                + 0.3 * _xent(probs["aux2"], y))
    result = model.evaluate(x, {k: y for k in probs}, batch_size=6, return_dict=True, verbose=0)
    assert result["loss"] == pytest.approx(expected, rel=1e-5)
    assert result["aux1_loss"] == pytest.approx(_xent(probs["aux1"], y), rel=1e-5)
    # The three heads really differ, so the weights are what is tested.
    assert len({round(result[k], 4) for k in ("predictions_loss", "aux1_loss", "aux2_loss")}) == 3


def test_single_output_model_has_only_the_main_loss_and_top5():
    model = kg.GoogLeNet(classes=10, input_shape=(32, 32, 3))
    loss, weights = objective.losses_and_weights(model)
    assert weights is None and isinstance(loss, SparseCrossentropy)
    names = [m.name for m in objective.accuracy_metrics(model)]
    assert names == ["top1", "top5"]


def test_label_smoothing_matches_keras_categorical_crossentropy():
    y = np.array([2, 0])
    p = np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]], np.float32)
    ours = SparseCrossentropy(3, label_smoothing=0.1)(y, p)
    keras_ref = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(3)[y], p)
    np.testing.assert_allclose(float(ours), float(keras_ref), rtol=1e-6)
    assert float(ours) != pytest.approx(float(SparseCrossentropy(3)(y, p)))


def test_paper_schedule_is_0_96_every_8_epochs_staircase():
    schedule = schedules.learning_rate_schedule(0.01, steps_per_epoch=100, epochs=60)
    values = {step: float(schedule(step)) for step in (0, 799, 800, 1599, 1600, 4000)}
    assert values[0] == pytest.approx(0.01)
    assert values[799] == pytest.approx(0.01)
    assert values[800] == pytest.approx(0.0096)
    assert values[1599] == pytest.approx(0.0096)
    assert values[1600] == pytest.approx(0.01 * 0.96 ** 2)
    assert values[4000] == pytest.approx(0.01 * 0.96 ** 5)


def test_warmup_then_cosine():
    schedule = schedules.learning_rate_schedule(0.1, steps_per_epoch=10, epochs=11,
                                             schedule="cosine", warmup_epochs=1)
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(5)) == pytest.approx(0.05)
    assert float(schedule(10)) == pytest.approx(0.1)
    assert float(schedule(60)) == pytest.approx(0.05, abs=1e-6)  # half-way through cosine
    assert float(schedule(110)) == pytest.approx(0.0, abs=1e-7)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert float(restored(5)) == pytest.approx(0.05)


@pytest.mark.parametrize("kwargs, message", [
    (dict(schedule="step"), "schedule='step'"),
    (dict(warmup_epochs=-1), "warmup_epochs=-1"),
    (dict(learning_rate=0), "learning_rate=0"),
])
def test_schedule_errors(kwargs, message):
    args = dict(learning_rate=0.1, steps_per_epoch=10, epochs=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        schedules.learning_rate_schedule(**args)


class _Capture(keras.callbacks.Callback):
    """Records the classifier bias during validation and at the last batch."""

    def on_train_batch_end(self, batch, logs=None):
        self.raw = self.model.get_layer("classifier").bias.numpy().copy()

    def on_test_begin(self, logs=None):
        self.seen_in_validation = self.model.get_layer("classifier").bias.numpy().copy()


@pytest.mark.slow
def test_ema_weights_are_validated_and_left_in_the_model():
    keras.utils.set_random_seed(0)
    model = kg.GoogLeNet(classes=3, input_shape=(32, 32, 3), batch_norm=True)
    optimizer = objective.make_optimizer(0.1, ema_momentum=0.9)
    objective.compile_model(model, optimizer)
    x = np.random.default_rng(1).normal(size=(32, 32, 32, 3)).astype(np.float32)
    y = np.arange(32) % 3
    capture = _Capture()
    model.fit(x, y, batch_size=8, epochs=1, validation_data=(x[:8], y[:8]), verbose=0,
              callbacks=[keras.callbacks.SwapEMAWeights(), capture])
    bias = model.get_layer("classifier").bias
    averages = {v.path: a for v, a in zip(optimizer._trainable_variables,
                                          optimizer._model_variables_moving_average)}
    ema = averages[bias.path].numpy()
    assert not np.allclose(ema, capture.raw)           # averaging did something
    np.testing.assert_allclose(capture.seen_in_validation, ema)   # validation used it
    np.testing.assert_allclose(bias.numpy(), ema)       # and the model keeps it
