"""The command line: one pattern, help that helps, quiet start-up, one-line errors."""
import argparse
import os
import subprocess
import sys

import pytest

from keras_googlenet import cli
from keras_googlenet.cli import flags

COMMANDS = sorted(cli.COMMANDS)
# One bad flag per command, and what its message must say.
BAD_FLAGS = {
    "train": (["--schedule", "linear"], "invalid choice: 'linear'"),
    "finetune": (["--model", "m.keras", "--batch-size", "0"], "must be a positive integer"),
    "export": (["--model", "m.keras", "--base-dir", "x", "--normalization", "bgr"],
               "invalid choice: 'bgr'"),
    "predict": (["a.jpg", "--model", "m", "--top", "-1"], "must be a positive integer"),
    "evaluate": (["--model", "m.keras", "--crops", "7"], "invalid choice: 7"),
    "augment": (["a.jpg", "-n", "x"], "argument -n: must be a positive integer. Received: 'x'"),
    "explain": (["a.jpg", "--model", "m.keras", "--top", "0"], "must be a positive integer"),
    "weights": (["convert"], "the following arguments are required: source, out"),
}


def _python(code, **env):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_every_command_has_a_bad_flag_case():
    assert sorted(BAD_FLAGS) == COMMANDS


def test_help_imports_no_tensorflow_and_answers_fast():
    code = ("import sys, time; t = time.time()\n"
            "from keras_googlenet import cli\n"
            "for name in cli.COMMANDS:\n"
            "    try:\n"
            "        cli.build_parser([name]).parse_args([name, '--help'])\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print(round(time.time() - t, 3), sorted(m for m in sys.modules if m in "
            "('tensorflow', 'keras', 'jax', 'torch')))")
    result = _python(code)
    assert result.returncode == 0, result.stderr
    seconds, loaded = result.stdout.strip().splitlines()[-1].split(" ", 1)
    assert loaded == "[]"
    assert float(seconds) < 5  # typically 0.2 s; generous for a loaded CI machine


def _actions(parser):
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {name: p for name, p in sub.choices.items()}


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_says_what_it_does_and_its_default(command):
    parser = _actions(cli.build_parser([command]))[command]
    if command == "weights":
        parser = _actions(parser)["convert"]
    formatter = flags.HelpFormatter(prog="googlenet")
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        text = formatter._get_help_string(action) % {"default": action.default}
        assert len(action.help) > 12, (command, action.dest)
        if action.option_strings and action.nargs != 0 and not action.required:
            assert "default" in text.lower(), (command, action.dest, text)


def test_train_help_gives_both_recipes_defaults_and_the_choices(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capsys.readouterr().out
    assert "224 (paper_imagenet), 80 (embedded_digits)" in " ".join(out.split())
    assert "{auto,float32,mixed_float16,mixed_bfloat16}" in out
    assert "{paper,cosine,constant}" in out
    assert "default: None" not in out


@pytest.mark.parametrize("command", COMMANDS)
def test_one_bad_flag_per_command(command, capsys):
    argv, message = BAD_FLAGS[command]
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, *argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and f"googlenet {command}" in err


# What each command needs besides the flag under test, so that only that
# flag can fail the parse.
REQUIRED_ARGS = {
    ("finetune",): ["--model", "m.keras"],
    ("export",): ["--model", "m.keras", "--base-dir", "x"],
    ("predict",): ["a.jpg", "--model", "m"],
    ("evaluate",): ["--model", "m.keras"],
    ("augment",): ["a.jpg"],
    ("explain",): ["a.jpg", "--model", "m.keras"],
    ("weights", "convert"): ["source.onnx", "out.keras"],
}


def _numeric_flags():
    """(command path, action) of every flag whose type is not str, in the
    parsers `cli.build_parser()` builds (sub-commands of sub-commands too).
    train is left out: its flags go through TrainConfig.validate
    (tests/train/test_config.py)."""
    found = []

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*path, name))
            elif action.type not in (None, str):
                assert action.option_strings, (path, action.dest)  # no numeric positionals
                found.append((path, action))

    for name, sub in _actions(cli.build_parser()).items():
        if name != "train":
            walk(sub, (name,))
    return found


NUMERIC_FLAGS = _numeric_flags()


def test_numeric_flags_are_found_and_each_command_has_its_required_args():
    flags_found = {(path, action.option_strings[0]) for path, action in NUMERIC_FLAGS}
    for case in ((("finetune",), "--head-learning-rate"), (("evaluate",), "--crop-fraction"),
                 (("augment",), "--min-crop-area"), (("export",), "--calibration-images")):
        assert case in flags_found
    assert {path for path, _ in NUMERIC_FLAGS} <= set(REQUIRED_ARGS)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("path, action", NUMERIC_FLAGS,
                         ids=[f"{' '.join(p)} {a.option_strings[0]}" for p, a in NUMERIC_FLAGS])
def test_numeric_flags_refuse_non_finite_values(path, action, value, capsys):
    """Every numeric flag of every command refuses NaN and infinities while
    parsing, naming the flag: inf passes `x > 0` and nan fails every
    comparison, so only an explicit check catches them."""
    flag = action.option_strings[0]
    with pytest.raises(SystemExit) as exit_info:
        # FLAG=VALUE: argparse takes a lone "-inf" for an option.
        cli.build_parser([path[0]]).parse_args([*path, *REQUIRED_ARGS[path], f"{flag}={value}"])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1, errors
    assert f"argument {'/'.join(action.option_strings)}: must be " in errors[0], errors[0]
    assert f"Received: {value!r}" in errors[0], errors[0]


@pytest.mark.parametrize("function, good, bad", [
    (flags.positive_int, {"3": 3}, ["0", "-1", "1.5", "nan", "x"]),
    (flags.non_negative_int, {"0": 0, "2": 2}, ["-1", "inf", "x"]),
    (flags.integer, {"-2": -2, "0": 0}, ["nan", "1.0", "x"]),
    (flags.seed, {"0": 0, str(2 ** 32 - 1): 2 ** 32 - 1}, ["-1", str(2 ** 32), "nan"]),
    (flags.finite_float, {"-1.5": -1.5, "0": 0.0}, ["nan", "inf", "-inf", "x"]),
    (flags.positive_float, {"1e-3": 1e-3, "1e30": 1e30}, ["0", "-1", "nan", "inf", "1e400"]),
    (flags.non_negative_float, {"0": 0.0, "2.5": 2.5}, ["-1e-9", "nan", "inf"]),
    (flags.fraction, {"1": 1.0, "0.25": 0.25}, ["0", "1.01", "-1", "nan", "inf"]),
    (flags.proper_fraction, {"0": 0.0, "0.1": 0.1}, ["1", "-0.1", "nan", "inf"]),
])
def test_flag_types_accept_and_refuse(function, good, bad):
    for text, value in good.items():
        assert function(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=r"^must be .*\. Received: "):
            function(text)
    assert flags.positive_float.__doc__ and "finite" in flags.positive_float.__doc__


def test_unknown_recipe_is_one_line(capsys):
    assert cli.main(["train", "--recipe", "paper_imagnet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["googlenet train: error: Unknown recipe. Expected one of ('paper_imagenet', "
                   "'embedded_digits') or a path to a JSON file. Received: "
                   "--recipe='paper_imagnet'"]


def test_scripts_and_module_go_through_the_same_entry_point():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for script in sorted(os.listdir(os.path.join(root, "training"))):
        if not script.endswith(".py"):
            continue
        text = open(os.path.join(root, "training", script)).read()
        assert "from keras_googlenet.cli import main" in text, script
        assert "argparse" not in text, script
    result = subprocess.run([sys.executable, "-m", "keras_googlenet", "predict", "--help"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "googlenet predict" in result.stdout


def test_startup_is_quiet_without_a_gpu_unless_verbose(tmp_path):
    if any(os.path.exists(p) for p in ("/dev/nvidia0", "/dev/nvidiactl")):
        pytest.skip("a GPU machine shows TensorFlow's start-up log")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    missing = str(tmp_path / "missing.keras")
    quiet = subprocess.run([sys.executable, "-m", "keras_googlenet", "export", "--model",
                            missing, "--base-dir", str(tmp_path / "s")],
                           capture_output=True, text=True, timeout=300, env=env)
    assert quiet.returncode == 2
    assert quiet.stderr.strip().splitlines() == [
        f"googlenet export: error: No model file at {missing}"]
    loud = subprocess.run([sys.executable, "-m", "keras_googlenet", "--verbose", "export",
                           "--model", missing, "--base-dir", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert "Traceback" in loud.stderr and len(loud.stderr.splitlines()) > 3
