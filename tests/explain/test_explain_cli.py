"""`googlenet explain`: flags, help text, and a run on a small saved model."""
import argparse
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_googlenet.cli import explain as explain_cli


def parser():
    result = argparse.ArgumentParser(prog="googlenet explain")
    explain_cli.add_arguments(result)
    return result


def test_help_states_defaults_and_choices():
    text = parser().format_help()
    for needed in ("IMAGE", "--model", "--layer", "default: inception_5b", "--top",
                   "default: 3", "--output-dir", "default: explain", "--normalization",
                   "{auto,caffe,torch,tf,none}"):
        assert needed in " ".join(text.split()), needed
    for action in parser()._actions:
        if action.dest != "help":
            assert action.help, action.dest


@pytest.mark.parametrize("argv", [["a.png", "--model", "m.keras", "--top", "0"],
                                  ["a.png", "--model", "m.keras", "--normalization", "bgr"],
                                  ["a.png"]])
def test_bad_flags_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as error:
        parser().parse_args(argv)
    assert error.value.code == 2
    assert "error" in capsys.readouterr().err


def test_import_pulls_no_tensorflow():
    code = ("import sys, keras_googlenet.cli.explain; "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.stdout.split() == ["False", "False"]


def test_run_writes_one_overlay_per_image_and_class(tmp_path, capsys):
    from PIL import Image

    from keras_googlenet.models import GoogLeNet
    from keras_googlenet.models import contract as contract_lib

    model = GoogLeNet(input_shape=(64, 64, 3), classes=4, batch_norm=True,
                      aux_classifiers=False)
    names = ["zero", "one", "two", "three"]
    path = str(tmp_path / "model.keras")
    contract_lib.save_model(model, path, contract_lib.Contract(
        normalization="tf", image_size=64, class_names=names))
    rng = np.random.RandomState(0)
    images = []
    for i in range(2):
        image_path = tmp_path / f"img{i}.png"
        Image.fromarray(rng.randint(0, 256, (80, 100, 3)).astype(np.uint8)).save(image_path)
        images.append(str(image_path))
    out = tmp_path / "out"
    args = parser().parse_args([*images, "--model", path, "--top", "2", "--output-dir",
                                str(out)])
    assert explain_cli.run(args) == 0
    written = sorted(os.listdir(out))
    assert len(written) == 4 and all(name.endswith(".png") for name in written)
    assert {name.split("_top")[0] for name in written} == {"img0", "img1"}
    assert all(name.split("_top")[1][2:-4] in names for name in written)
    assert "wrote 4 Grad-CAM overlay(s)" in capsys.readouterr().out
    with Image.open(out / written[0]) as picture:
        assert picture.format == "PNG" and picture.size == (800, 460)
