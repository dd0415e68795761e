"""Tests of keras_googlenet.inference.predict (SavedModel, TF Serving dir, .keras)."""

import numpy as np
import pytest

from keras_googlenet.serving import export
from keras_googlenet.inference import predict, predictors
import helpers as fx


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A model, its .keras file, a base dir with versions 1 and 2, images."""
    root = tmp_path_factory.mktemp("predict")
    model = fx.small_model()
    model.save(root / "model.keras")
    base = root / "serving"
    export.export_saved_model(fx.small_model(seed=1), base)  # version 1: other weights
    export.export_saved_model(model, base)
    paths = []
    for i, data in enumerate([fx.jpeg(seed=30), fx.encode(fx.random_array(90, 40, seed=31), "PNG")]):
        paths.append(str(root / f"image{i}"))
        with open(paths[-1], "wb") as f:
            f.write(data)
    return model, root, base, paths


def _scores(results):
    return np.array([[score for _, score in predictions] for _, predictions in results])


def test_all_sources_agree(setup, capsys):
    model, root, base, paths = setup
    from_base = predict.predict_files(str(base), paths)
    assert "image0" in capsys.readouterr().out
    from_version = predict.predict_files(str(base / "2"), paths, verbose=False)
    from_keras_file = predict.predict_files(str(root / "model.keras"), paths, verbose=False)
    from_model = predict.predict_files(model, paths, verbose=False)
    expected = fx.reference_probabilities(model, [open(p, "rb").read() for p in paths])
    top = np.sort(expected, axis=1)[:, ::-1]
    for results in (from_base, from_version, from_keras_file, from_model):
        assert [path for path, _ in results] == paths
        np.testing.assert_allclose(_scores(results), top, atol=1e-5)
        assert [name for name, _ in results[0][1]] == [str(i) for i in np.argsort(-expected[0], kind="stable")]
    assert predictors.resolve_saved_model_dir(base).endswith("2")  # the highest version


def test_top_and_errors(setup, tmp_path):
    model, _, base, paths = setup
    assert len(predict.predict_files(model, paths[:1], top=2, verbose=False)[0][1]) == 2
    assert len(predict.predict_files(str(base), paths[:1], top=50, verbose=False)[0][1]) == fx.CLASSES
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff not really")
    with pytest.raises(ValueError, match="bad.jpg: .*truncated JPEG"):
        predict.predict_files(str(base), [paths[0], str(bad)], verbose=False)
    with pytest.raises(ValueError, match="bad.jpg: could not decode"):
        predict.predict_files(model, [str(bad)], verbose=False)
    with pytest.raises(ValueError, match="crops to 64x64"):
        predict.predict_files(str(base), paths, image_size=128, verbose=False)
    with pytest.raises(ValueError, match="neither a SavedModel"):
        predict.predict_files(str(tmp_path), paths, verbose=False)
    with pytest.raises(ValueError, match="`top` must be a positive int"):
        predict.predict_files(model, paths, top=0)


def test_cli(setup, capsys):
    _, _, base, paths = setup
    from keras_googlenet import cli

    assert cli.main(["predict", *paths, "--model", str(base), "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert paths[1] in out and "  3. " in out
