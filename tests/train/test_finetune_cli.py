"""`googlenet finetune`: its flags, their errors, and the issue's two-class
example (circles against squares, 80 + 24 images) with the defaults."""
import json
import os
import subprocess
import sys

import pytest

from keras_googlenet import cli

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _googlenet(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", "keras_googlenet", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def _main(argv):
    """`cli.main`'s exit status, whether it returns it or argparse exits."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


def test_help_names_every_flag_with_its_default():
    result = _googlenet("finetune", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for flag in ("--output-dir", "--data", "--image-size", "--batch-size", "--seed",
                 "--precision", "--mode", "--classes", "--examples-per-class", "--export-dir",
                 "--head-epochs", "--epochs", "--learning-rate", "--head-learning-rate"):
        assert flag in text
    assert "default: full" in text and "default: runs/finetune" in text
    parser = cli.build_parser(["finetune"])
    for action in parser._subparsers._group_actions[0].choices["finetune"]._actions:
        if action.option_strings and action.dest != "help":
            assert action.help and ("default" in action.help or action.help == "==SUPPRESS=="
                                    or action.required), action.dest


def test_the_flags_are_the_config_fields_and_say_their_defaults():
    """One definition: every FinetuneConfig field is a flag whose help shows
    the field's default, and the library's `run` takes the same names."""
    import dataclasses
    import inspect

    from keras_googlenet.train import finetune
    from keras_googlenet.train.finetune_config import FinetuneConfig

    parser = cli.build_parser(["finetune"])._subparsers._group_actions[0].choices["finetune"]
    actions = {a.dest: a for a in parser._actions if a.option_strings and a.dest != "help"}
    config_fields = dataclasses.fields(FinetuneConfig)
    assert set(actions) == {f.name for f in config_fields}
    for field in config_fields:
        default = field.metadata["default"]
        if default not in (None, "", False):
            assert f"default: {default}" in " ".join(actions[field.name].help.split()), field.name
    assert list(inspect.signature(finetune.run).parameters) == ["model", "options"]
    with pytest.raises(TypeError, match="learning_rat"):
        finetune.run("m.keras", learning_rat=0.1)
    with pytest.raises(ValueError, match="--mode must be one of"):
        finetune.run("m.keras", mode="probe")


@pytest.mark.parametrize("args, message", [
    (["--output", "x"], "unrecognized arguments: --output"),
    (["--mode", "probe"], "invalid choice: 'probe'"),
    (["--classes", "5,x"], "--classes must be comma-separated"),
    (["--examples-per-class", "0"], "must be a positive integer"),
    (["--head-epochs", "-1"], "argument --head-epochs: must be an integer >= 0"),
    (["--batch-size", "0"], "must be a positive integer"),
    (["--precision", "fp8"], "invalid choice: 'fp8'"),
    (["--holdout-fraction", "1"], "argument --holdout-fraction: must be in [0, 1)"),
    (["--head-learning-rate", "inf"],
     "argument --head-learning-rate: must be a finite number. Received: 'inf'"),
])
def test_flag_errors_are_one_line(tmp_path, capsys, args, message):
    model = tmp_path / "m.keras"
    model.write_bytes(b"")
    assert _main(["finetune", "--model", str(model), *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def _finetune_numeric_flags():
    """Every finetune flag whose type is not str: a new one is covered at once."""
    parser = cli.build_parser(["finetune"])._subparsers._group_actions[0].choices["finetune"]
    return [a.option_strings[0] for a in parser._actions
            if a.option_strings and a.type not in (None, str)]


FINETUNE_NUMERIC_FLAGS = _finetune_numeric_flags()


def test_the_numeric_flags_are_all_found():
    assert {"--head-learning-rate", "--learning-rate", "--holdout-fraction", "--min-crop-area",
            "--probe-c", "--batch-size", "--head-epochs", "--epochs", "--steps-per-epoch",
            "--examples-per-class", "--image-size", "--seed", "--verbose"} <= set(
                FINETUNE_NUMERIC_FLAGS)


@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
@pytest.mark.parametrize("flag", FINETUNE_NUMERIC_FLAGS)
def test_numeric_flags_refuse_inf_nan_and_minus_one(tmp_path, capsys, flag, value):
    """Refused while parsing, before any model is read: the model file does
    not even exist (else the error would be "No such model file")."""
    assert _main(["finetune", "--model", str(tmp_path / "missing.keras"), flag, value]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert errors[0].startswith(f"googlenet finetune: error: argument {flag}: "), errors[0]
    assert repr(value) in errors[0] or f"invalid choice: {value}" in errors[0], errors[0]
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_a_diverging_finetune_stops_with_one_line_and_saves_nothing(tmp_path, capsys):
    """A huge but finite learning rate blows the unfrozen backbone up to
    NaN in its first steps: the run stops there with one line (exit 2), and
    neither model.keras, results.json nor a SavedModel is written."""
    import keras_googlenet as kg

    # An untrained model is enough to diverge (no need to train one).
    model = kg.GoogLeNet(classes=10, input_shape=(32, 32, 3), batch_norm=True)
    path = str(tmp_path / "digits.keras")
    model.save(path)
    out, export = tmp_path / "ft", tmp_path / "export"
    assert _main(["finetune", "--model", path, "--mode", "full", "--learning-rate", "1e30",
                  "--epochs", "2", "--steps-per-epoch", "3", "--batch-size", "8",
                  "--classes", "0,1", "--examples-per-class", "4", "--output-dir", str(out),
                  "--export-dir", str(export), "--verbose", "0"]) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.strip()]
    assert len(errors) == 1, err
    assert errors[0].startswith("googlenet finetune: error: The training loss became "), err
    assert "--learning-rate (now 1e+30)" in errors[0] and "full phase" in errors[0], errors[0]
    assert "Nothing was saved or exported" in errors[0]
    for name in ("model.keras", "results.json"):
        assert not (out / name).exists(), name
    assert not export.exists()


def test_errors_found_after_loading(tmp_path, capsys):
    import keras_googlenet as kg

    model = kg.GoogLeNet(classes=10, input_shape=(32, 32, 3), batch_norm=True)
    path = str(tmp_path / "digits.keras")
    model.save(path)
    for args, message in (
            (["--classes", "5,10"], "--classes: [10] out of range"),
            (["--classes", "5,6", "--examples-per-class", "500"],
             "--examples-per-class 500: class 5"),
            (["--mode", "full", "--epochs", "0"], "--mode full needs --epochs > 0"),
            (["--classes", "3"], "a classifier needs at least 2 classes")):
        assert _main(["finetune", "--model", path, "--output-dir", str(tmp_path / "o"),
                         "--verbose", "0", *args]) == 2
        assert message in capsys.readouterr().err
    assert _main(["finetune", "--model", str(tmp_path / "missing.keras")]) == 2


@pytest.mark.slow
def test_two_class_example_ends_no_worse_than_its_linear_probe_in_every_seed(
        tmp_path, capsys, digits_model):
    """The issue's example: a digits model (pretrained briefly here on
    digits 0-4, at 32x32 without auxiliary heads to keep the test short)
    fine-tuned on 40 + 20 circles and squares per class with every default,
    against `--mode linear-probe` run on its own, in 3 seeds."""
    from keras_googlenet.inference import loader
    from keras_googlenet.serving.export import read_export_info

    from shapes import write_shapes

    shapes = write_shapes(tmp_path / "shapes", train_per_class=40, val_per_class=20)

    def finetune(seed, name, *args):
        out = tmp_path / name
        assert cli.main(["finetune", "--model", digits_model, "--data", f"folder:{shapes}",
                         "--output-dir", str(out), "--seed", str(seed), "--verbose", "0",
                         *args]) == 0
        with open(out / "results.json", encoding="utf-8") as f:
            return out, json.load(f)

    for seed in (1, 2, 3):
        extra = ["--export-dir", str(tmp_path / "export")] if seed == 1 else []
        _, results = finetune(seed, f"defaults_{seed}", *extra)
        _, probe = finetune(seed, f"probe_{seed}", "--mode", "linear-probe")
        capsys.readouterr()
        with capsys.disabled():
            print(f"seed {seed}: defaults {results['val']['top1']:.3f} ({results['kept']['model']}; "
                  f"fine-tuned {results['kept']['finetuned_val_top1']:.3f}), "
                  f"linear probe {probe['val']['top1']:.3f}")
        assert results["val"]["examples"] == 40
        assert results["val"]["top1"] >= probe["val"]["top1"]
        # What was kept is what was saved, and it is said.
        assert results["kept"]["probe_val_top1"] == pytest.approx(probe["val"]["top1"])
        assert results["val"]["top1"] == pytest.approx(
            max(results["kept"]["probe_val_top1"], results["kept"]["finetuned_val_top1"]))
        if seed == 1:
            exported = read_export_info(results["export_path"])
    assert exported.contract.class_names == ("circle", "square")
    for name in ("history.csv", "curves.png", "config.json", "model.keras"):
        assert (tmp_path / "defaults_1" / name).exists(), name
    model, contract = loader.load_model(str(tmp_path / "defaults_1" / "model.keras"))
    assert contract.class_names == ("circle", "square")
    assert contract.image_size == 32 and contract.normalization == "caffe"
    assert model.output.shape[-1] == 2
