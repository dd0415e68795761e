"""The training configuration: named recipes as data, flags over recipes."""
import dataclasses
import json

import pytest

from keras_googlenet.train import config as config_lib


def test_named_recipes_are_complete_and_differ_where_documented():
    paper = config_lib.recipe_values("paper_imagenet")
    digits = config_lib.recipe_values("embedded_digits")
    assert set(paper) == set(digits)
    assert (paper["image_size"], paper["schedule"], paper["batch_norm"], paper["flip"]) == (
        224, "paper", False, True)
    assert (digits["image_size"], digits["schedule"], digits["batch_norm"], digits["flip"]) == (
        80, "cosine", True, False)
    # The paper's numbers, where the paper gives them.
    assert paper["min_crop_area"] == 0.08 and paper["ema_momentum"] == 0.9999


def test_default_recipe_depends_on_whether_data_is_given():
    assert config_lib.TrainConfig().resolved().recipe == "embedded_digits"
    assert config_lib.TrainConfig().resolved().data == "embedded"
    config = config_lib.TrainConfig(data="folder:/x").resolved()
    assert (config.recipe, config.image_size, config.data) == ("paper_imagenet", 224, "folder:/x")
    config = config_lib.TrainConfig(data="folder:/x", recipe="embedded_digits").resolved()
    assert (config.recipe, config.image_size) == ("embedded_digits", 80)


def test_flags_win_over_the_recipe():
    config = config_lib.build({"epochs": 3, "flip": True})
    assert (config.epochs, config.flip, config.image_size) == (3, True, 80)


def test_user_file_with_a_base(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"base": "paper_imagenet", "description": "x", "epochs": 2,
                                "learning-rate": 0.5}))
    config = config_lib.build({}, recipe=str(path))
    assert (config.epochs, config.learning_rate, config.image_size) == (2, 0.5, 224)
    assert config.recipe == str(path)
    loop = tmp_path / "loop.json"
    loop.write_text(json.dumps({"base": str(loop)}))
    with pytest.raises(ValueError, match="its own base"):
        config_lib.build({}, recipe=str(loop))


def test_bad_recipes_and_values_are_named(tmp_path):
    with pytest.raises(ValueError, match="Unknown recipe.*Received: --recipe='paper'"):
        config_lib.build({}, recipe="paper")
    with pytest.raises(ValueError, match="Config file not found"):
        config_lib.build({}, recipe=str(tmp_path / "none.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        config_lib.build({}, recipe=str(bad))
    with pytest.raises(ValueError, match="--schedule must be one of"):
        config_lib.build({"schedule": "linear"})
    with pytest.raises(ValueError, match="flip must be true or false"):
        config_lib.coerce("flip", "maybe")
    assert config_lib.coerce("flip", "yes") is True
    with pytest.raises(ValueError, match="epochs must be of type int"):
        config_lib.coerce("epochs", 2.5)


def test_every_field_has_help_and_choices_are_checked():
    for field in dataclasses.fields(config_lib.TrainConfig):
        assert len(field.metadata.get("help", "")) > 10, field.name
        choices = config_lib.field_choices(field)
        if choices:
            with pytest.raises(ValueError, match=f"--{field.name.replace('_', '-')} must be"):
                config_lib.build({field.name: "no-such-choice" if isinstance(choices[0], str)
                                  else 99})


# A value for every field that no recipe or default has, so that a field the
# file cannot set shows up as its default.
_NOT_DEFAULT = {
    "data": "folder:/mine", "data_dir": "/tfds", "train_split": "training",
    "val_split": "", "num_classes": None, "label_offset": None, "classes": "1,2",
    "examples_per_class": 4, "holdout_fraction": 0.25, "holdout_seed": 3, "image_size": 96,
    "batch_size": 8, "epochs": 2, "steps_per_epoch": 5, "learning_rate": 0.5,
    "schedule": "constant", "warmup_epochs": 2.0, "decay_rate": 0.5, "decay_epochs": 2.0,
    "momentum": 0.5, "weight_decay": 0.001, "ema_momentum": 0.5, "label_smoothing": 0.1,
    "aux_classifiers": False, "aux_weight": 0.5, "batch_norm": True, "dropout_rate": 0.1,
    "aux_dropout_rate": 0.2, "kernel_5x5": 3, "pool4_size": 2, "min_crop_area": 0.5, "flip": False,
    "photometric": False, "normalization": "torch", "cache": False, "precision": "float32",
    "jit_compile": True, "backend": "tensorflow", "strategy": "one_device", "seed": 7,
    "deterministic": True, "init_weights": "w.weights.h5", "output_dir": "mine",
    "save_freq": 9, "export_dir": "", "preset_dir": "p", "verbose": 2,
}


def test_a_recipe_file_sets_every_field(tmp_path):
    assert set(_NOT_DEFAULT) | {"recipe"} == {f.name for f in dataclasses.fields(
        config_lib.TrainConfig)}
    given = {k: v for k, v in _NOT_DEFAULT.items() if v is not None}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(given))
    config = config_lib.build({}, recipe=str(path))
    assert {k: getattr(config, k) for k in given} == given
    # Flags (even one equal to a default) win over the file; the file over
    # the recipe under it and the defaults.
    config = config_lib.build({"seed": 1, "momentum": 0.9, "aux_classifiers": True,
                               "image_size": 120}, recipe=str(path))
    assert (config.seed, config.momentum, config.aux_classifiers, config.image_size,
            config.output_dir) == (1, 0.9, True, 120, "mine")
    # The issue's file, through `googlenet train --recipe r.json`'s parser.
    path.write_text(json.dumps({"output_dir": "mine", "export_dir": "", "seed": 7,
                                "momentum": 0.5, "aux_classifiers": False}))
    from keras_googlenet import cli
    from keras_googlenet.cli import train as train_cli

    args = cli.build_parser(["train"]).parse_args(["train", "--recipe", str(path)])
    config = train_cli.config_from_args(args)
    assert (config.output_dir, config.export_dir, config.seed, config.momentum,
            config.aux_classifiers) == ("mine", "", 7, 0.5, False)
    args = cli.build_parser(["train"]).parse_args(["train", "--recipe", str(path), "--seed", "1"])
    assert train_cli.config_from_args(args).seed == 1


@pytest.mark.parametrize("key, value, message", [
    ("sed", 7, "Unknown configuration key 'sed'"),
    ("seed", "seven", "seed must be of type int. Received: seed='seven'"),
    ("seed", 7.5, "seed must be an integer. Received: seed=7.5"),
    ("epochs", True, "epochs must be an integer. Received: epochs=True"),
    ("momentum", [0.5], r"momentum must be a number. Received: momentum=\[0.5\]"),
    ("aux_classifiers", 1, "aux_classifiers must be true or false. Received: aux_classifiers=1"),
    ("output_dir", 3, "output_dir must be a string. Received: output_dir=3"),
])
def test_a_recipe_file_with_an_unknown_key_or_a_wrong_type_is_refused(tmp_path, key, value,
                                                                     message):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({key: value}))
    with pytest.raises(ValueError, match=f"Config file '{path}': {message}"):
        config_lib.build({}, recipe=str(path))
