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
