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
    with pytest.raises(ValueError, match="Unknown recipe.*Received: --config='paper'"):
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
