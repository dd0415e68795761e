"""KerasHub presets of our models: to_preset writes a folder that KerasHub's
from_preset loads in a fresh process (after the folder moved), with the
writer's predictions; KerasHub's save_to_preset round-trips it; the core
reader loads it without KerasHub; the image converter is preprocess_input."""
import json
import os
import shutil
import textwrap

import numpy as np
import pytest

import helpers as fx

keras_hub = pytest.importorskip("keras_hub")

SIZE, CLASSES, NAMES = 65, 3, ["cat", "dog", "fox"]


def _images(seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A GoogLeNetClassifier (with aux heads, torch normalisation) as a
    preset moved after writing, and its reference outputs."""
    import keras

    from keras_googlenet import hub, preprocess_input
    from keras_googlenet.models.classifier import GoogLeNetClassifier

    keras.utils.set_random_seed(1)
    model = GoogLeNetClassifier(classes=CLASSES, input_shape=(SIZE, SIZE, 3),
                                normalization="torch", class_names=NAMES)
    root = tmp_path_factory.mktemp("hub")
    hub.to_preset(model, root / "written")
    shutil.move(root / "written", root / "moved")
    raw = _images()
    x = np.asarray(preprocess_input(raw.copy(), mode="torch"))
    np.savez(root / "ref.npz", raw=raw, x=x, probabilities=np.asarray(model(x)),
             features=np.asarray(model.backbone(x)))
    return root


def test_files_and_contract(written):
    folder = written / "moved"
    assert {"config.json", "task.json", "task.weights.h5", "model.weights.h5", "metadata.json",
            "preprocessor.json", "image_converter.json"} <= set(os.listdir(folder))
    ours = json.loads((folder / "metadata.json").read_text())["keras_googlenet"]
    assert ours["class_names"] == NAMES and ours["normalization"] == "torch"
    converter = json.loads((folder / "image_converter.json").read_text())["config"]
    assert converter["normalization"] == "torch" and converter["image_size"] == [SIZE, SIZE]


FROM_PRESET = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras_googlenet.hub  # registers our classes with Keras
    import keras_hub
    folder, ref = sys.argv[1], np.load(sys.argv[2])
    task = keras_hub.models.ImageClassifier.from_preset(folder)
    backbone = keras_hub.models.Backbone.from_preset(folder)
    out = {"task": type(task).__name__, "backbone": type(backbone).__name__,
           "head": task.get_layer("classifier").units}
    out["on_preprocessed"] = float(np.abs(task(ref["x"]) - ref["probabilities"]).max())
    out["on_raw"] = float(np.abs(task.predict(ref["raw"], verbose=0) - ref["probabilities"]).max())
    out["features"] = float(np.abs(backbone(ref["x"]) - ref["features"]).max())
    task.save_to_preset(sys.argv[3])  # KerasHub's own writer, then read again
    again = keras_hub.models.ImageClassifier.from_preset(sys.argv[3])
    out["round_trip"] = float(np.abs(again.predict(ref["raw"], verbose=0)
                                     - ref["probabilities"]).max())
    print("RESULT " + json.dumps(out))
""")


def test_keras_hub_loads_the_moved_preset_in_a_fresh_process(written):
    result = fx.result_of(fx.run_under("tensorflow", [
        "-c", FROM_PRESET, str(written / "moved"), str(written / "ref.npz"),
        str(written / "resaved")], timeout=300))
    assert result["task"] == "GoogLeNetImageClassifier"
    assert result["backbone"] == "GoogLeNetBackbone" and result["head"] == CLASSES
    for key in ("on_preprocessed", "on_raw", "features", "round_trip"):
        assert result[key] < 1e-5, (key, result)


CORE_READER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import keras_googlenet
    ref = np.load(sys.argv[2])
    model, contract = keras_googlenet.load_model(sys.argv[1])
    print("RESULT " + json.dumps({
        "keras_hub": "keras_hub" in sys.modules,
        "difference": float(np.abs(model(ref["x"]) - ref["probabilities"]).max()),
        "class_names": list(contract.class_names), "normalization": contract.normalization,
        "image_size": contract.image_size}))
""")


@pytest.mark.parametrize("folder", ["moved", "resaved"])
def test_core_reader_loads_it_without_keras_hub(written, folder):
    if not (written / folder).exists():
        pytest.skip("needs the fresh-process test's re-saved preset")
    result = fx.result_of(fx.run_under("tensorflow", [
        "-c", CORE_READER, str(written / folder), str(written / "ref.npz")], timeout=300))
    assert result["keras_hub"] is False
    assert result["difference"] < 1e-5
    assert result["class_names"] == NAMES and result["normalization"] == "torch"
    assert result["image_size"] == SIZE


@pytest.mark.parametrize("mode", ["caffe", "torch", "tf", None])
def test_image_converter_is_preprocess_input(mode):
    from keras_googlenet import preprocess_input
    from keras_googlenet.hub import GoogLeNetImageConverter

    raw = _images(seed=2)
    converter = GoogLeNetImageConverter(normalization=mode)
    expected = raw if mode is None else np.asarray(preprocess_input(raw.copy(), mode=mode))
    np.testing.assert_allclose(np.asarray(converter(raw)), expected, atol=1e-5, rtol=0)
    # The same in a tf.data pipeline, and after a config round trip.
    import tensorflow as tf

    again = GoogLeNetImageConverter.from_config(converter.get_config())
    batch = next(iter(tf.data.Dataset.from_tensor_slices(raw).batch(2).map(again)))
    np.testing.assert_allclose(batch.numpy(), expected, atol=1e-5, rtol=0)


def test_keras_hub_loads_the_core_writers_preset(tmp_path):
    import keras

    from keras_googlenet import GoogLeNet
    from keras_googlenet.models import hub_format

    model = GoogLeNet(classes=CLASSES, input_shape=(SIZE, SIZE, 3))
    hub_format.write_preset(model, tmp_path)
    keras.backend.clear_session(free_memory=False)
    task = keras_hub.models.ImageClassifier.from_preset(str(tmp_path))
    x = _images(seed=3) - 128
    np.testing.assert_allclose(np.asarray(task(x)), np.asarray(model(x)), atol=1e-5, rtol=0)


def test_backbone_preset(tmp_path):
    """A model without the top: a backbone preset, with its preprocessor."""
    import keras

    from keras_googlenet import GoogLeNet, hub
    from keras_googlenet.models import hub_format

    model = GoogLeNet(include_top=False, input_shape=(SIZE, SIZE, 3))
    hub.to_preset(model, tmp_path)
    assert not (tmp_path / "task.json").exists() and (tmp_path / "preprocessor.json").exists()
    keras.backend.clear_session(free_memory=False)
    backbone = keras_hub.models.Backbone.from_preset(str(tmp_path))
    converter = keras_hub.layers.ImageConverter.from_preset(str(tmp_path))
    assert type(converter).__name__ == "GoogLeNetImageConverter"
    read, contract = hub_format.read_preset(tmp_path)
    assert contract.normalization == "caffe" and contract.image_size == SIZE
    x = _images(seed=4) - 128
    np.testing.assert_allclose(np.asarray(backbone(x)), np.asarray(model(x)), atol=1e-5, rtol=0)
    np.testing.assert_allclose(np.asarray(read(x)), np.asarray(model(x)), atol=1e-5, rtol=0)
