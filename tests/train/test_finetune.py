import os

import numpy as np
import pytest
import keras
import tensorflow as tf

import keras_googlenet as kg
from keras_googlenet import cli
from keras_googlenet.train import finetune


def _dataset(n=16, size=65, classes=3):
    rng = np.random.default_rng(0)
    x = rng.normal(scale=40, size=(n, size, size, 3)).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((x, np.arange(n) % classes)).batch(8)


def test_replace_classifier_freeze_then_unfreeze():
    keras.utils.set_random_seed(0)
    pretrained = kg.GoogLeNet(classes=10, input_shape=(65, 65, 3), batch_norm=True,
                              aux_classifiers=True)
    model = finetune.replace_classifier(kg.inference_model(pretrained), 3)
    assert model.output.shape[-1] == 3
    # The backbone is shared, not copied.
    assert model.get_layer("inception_5b_1x1") is pretrained.get_layer("inception_5b_1x1")
    backbone = model.get_layer("inception_4a_3x3")
    bn = model.get_layer("inception_4a_3x3_bn")
    ds = _dataset()
    before = [backbone.kernel.numpy(), bn.moving_mean.numpy()]
    head_before = model.get_layer("classifier").kernel.numpy()
    histories = finetune.finetune(model, ds, head_epochs=1, epochs=0, verbose=0)
    assert set(histories) == {"head"}
    np.testing.assert_array_equal(backbone.kernel.numpy(), before[0])
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before[1])
    assert not np.allclose(model.get_layer("classifier").kernel.numpy(), head_before)
    finetune.finetune(model, ds, head_epochs=0, epochs=1, verbose=0)
    assert not np.allclose(backbone.kernel.numpy(), before[0])
    # Batch-norm statistics stay the pretrained ones in both phases.
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before[1])


def test_replace_classifier_needs_pool5():
    backbone = kg.GoogLeNet(include_top=False, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="pool5_7x7_s1"):
        finetune.replace_classifier(backbone, 3)


@pytest.mark.slow
def test_finetune_command_on_embedded_data(tmp_path, capsys):
    pretrained = kg.GoogLeNet(classes=10, input_shape=(65, 65, 3), batch_norm=True)
    path = str(tmp_path / "pre.keras")
    pretrained.save(path)
    out = str(tmp_path / "ft")
    assert cli.main(["finetune", "--model", path, "--head-epochs", "1", "--epochs", "1",
                     "--steps-per-epoch", "2", "--batch-size", "8", "--output-dir", out,
                     "--verbose", "0"]) == 0
    tuned = keras.models.load_model(os.path.join(out, "model.keras"))
    assert tuned.output.shape[-1] == 10
    assert '"model_path"' in capsys.readouterr().out
    assert cli.main(["finetune", "--model", str(tmp_path / "missing.keras")]) == 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(head_learning_rate=float("inf")), "--head-learning-rate must be a finite number"),
    (dict(learning_rate=float("nan")), "--learning-rate must be a finite number"),
    (dict(learning_rate=-1.0), "--learning-rate must be positive"),
    (dict(probe_c=float("inf")), "--probe-c must be a finite number"),
    (dict(min_crop_area=float("nan")), "--min-crop-area must be a finite number"),
    (dict(holdout_fraction=1.0), "--holdout-fraction must be in [0, 1)"),
    (dict(batch_size=0), "--batch-size must be a positive integer"),
    (dict(steps_per_epoch=0), "--steps-per-epoch must be a positive integer"),
    (dict(examples_per_class=-1), "--examples-per-class must be a positive integer"),
    (dict(seed=-1), "--seed must be an integer in [0, 2**32 - 1]"),
])
def test_run_refuses_bad_numbers_before_loading(tmp_path, kwargs, message):
    """The library's `run` checks what the flags check (a caller of the
    Python API has no argparse): before the model is read (it is missing
    here), as the keras.applications messages say it."""
    with pytest.raises(ValueError) as error:
        finetune.run(str(tmp_path / "missing.keras"), output_dir=str(tmp_path / "o"), **kwargs)
    assert str(error.value).startswith(message), str(error.value)
    name = next(iter(kwargs))
    assert f"Received: {name}=" in str(error.value)
    assert not (tmp_path / "o").exists()


def test_finetune_stops_on_a_non_finite_loss():
    from keras_googlenet.train.callbacks import TrainingDiverged

    keras.utils.set_random_seed(0)
    pretrained = kg.GoogLeNet(classes=10, input_shape=(32, 32, 3), batch_norm=True)
    model = finetune.replace_classifier(kg.inference_model(pretrained), 3)
    with pytest.raises(TrainingDiverged, match=r"The training loss became (nan|inf|-inf) in "
                                               r"the full phase .*--learning-rate \(now 1e\+30\)"):
        finetune.finetune(model, _dataset(size=32).repeat(), head_epochs=0, epochs=3,
                          learning_rate=1e30, steps_per_epoch=2, verbose=0)


def test_linear_probe_on_non_finite_features_stops_and_saves_nothing(tmp_path):
    """A backbone whose pooled features are not finite (NaN weights) gives
    the linear probe nothing to fit: stopped as a diverged run, no model."""
    from keras_googlenet.train.callbacks import TrainingDiverged

    pretrained = kg.GoogLeNet(classes=10, input_shape=(32, 32, 3), batch_norm=True)
    layer = pretrained.get_layer("inception_5b_1x1")
    layer.set_weights([np.full_like(w, np.nan) for w in layer.get_weights()])
    path = str(tmp_path / "broken.keras")
    pretrained.save(path)
    out = tmp_path / "ft"
    with pytest.raises(TrainingDiverged, match="linear-probe phase"):
        finetune.run(path, output_dir=str(out), mode="linear-probe", classes="0,1",
                     examples_per_class=4, batch_size=8, export_dir=str(tmp_path / "e"),
                     verbose=0)
    assert not (out / "model.keras").exists() and not (out / "results.json").exists()
    assert not (tmp_path / "e").exists()
