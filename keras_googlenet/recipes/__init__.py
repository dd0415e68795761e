"""Named training recipes, as data: `googlenet train --recipe NAME`, and the
optimizer of `GoogLeNetClassifier.compile()`. Nothing here imports Keras."""
import importlib.resources
import json

NAMES = ("paper_imagenet", "embedded_digits")


def recipe_path(name):
    """The JSON file of a named recipe."""
    if name not in NAMES:
        raise ValueError(f"Unknown recipe. Expected one of {NAMES}. Received: recipe={name!r}")
    return str(importlib.resources.files(__name__).joinpath(f"{name}.json"))


def recipe_values(name):
    """The flag values a named recipe sets (its description left out)."""
    with open(recipe_path(name), encoding="utf-8") as f:
        values = json.load(f)
    values.pop("description", None)
    return values
