"""Class subsets and few-shot splits (`sources.subset`), and their flags."""
import numpy as np
import pytest

from keras_googlenet.data import sources
from keras_googlenet.train import config as config_lib


def _labels(source):
    return [int(label) for _, label in source.dataset().as_numpy_iterator()]


def test_classes_are_renumbered_in_the_given_order_with_names_kept():
    train = sources.get_source("embedded", "train")
    part = sources.subset(train, "7,5")
    assert part.num_classes == 2
    assert part.class_names == ["7", "5"]
    labels = _labels(part)
    assert set(labels) == {0, 1}
    assert part.num_examples == len(labels) == int(np.sum(np.isin(train.labels, [5, 7])))
    # Label 0 is the old 7: the images are the same ones.
    images = {tuple(img.ravel()[:64]) for img, l in part.dataset().as_numpy_iterator() if l == 0}
    sevens = {tuple(img.ravel()[:64]) for img, l in train.dataset().as_numpy_iterator() if l == 7}
    assert images == sevens


def test_examples_per_class_draws_the_same_images_for_the_same_seed():
    train = sources.get_source("embedded", "train")
    a = sources.subset(train, [5, 6, 7, 8, 9], 5, seed=3)
    b = sources.subset(train, "5,6,7,8,9", 5, seed=3)
    c = sources.subset(train, "5,6,7,8,9", 5, seed=4)
    assert a.num_examples == 25
    assert np.bincount(_labels(a)).tolist() == [5] * 5
    first = [img.tobytes() for img, _ in a.dataset().as_numpy_iterator()]
    assert first == [img.tobytes() for img, _ in b.dataset().as_numpy_iterator()]
    assert first != [img.tobytes() for img, _ in c.dataset().as_numpy_iterator()]
    # Without class names the kind that must filter the stream agrees.
    bare = sources.Source(name="bare", make_dataset=train.make_dataset, num_classes=10)
    filtered = sources.subset(bare, "5,6,7,8,9", 5, seed=3)
    assert filtered.class_names == ["5", "6", "7", "8", "9"]
    assert first == [img.tobytes() for img, _ in filtered.dataset().as_numpy_iterator()]
    assert _labels(filtered) == _labels(a)
    # Sharding splits the subset, not the parent.
    shards = [a.dataset(2, i) for i in range(2)]
    assert sum(1 for s in shards for _ in s) == 25


def test_subset_of_a_folder_reads_only_the_chosen_files(tmp_path):
    from PIL import Image

    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        for i in range(4):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(tmp_path / name / f"{i}.png")
    (tmp_path / "a" / "9.png").write_bytes(b"not read")  # skipped by the scan
    folder = sources.get_source(str(tmp_path))
    part = sources.subset(folder, "2,0", 2, seed=0)
    assert part.class_names == ["c", "a"]
    assert sorted(_labels(part)) == [0, 0, 1, 1]


def test_nothing_asked_is_the_source_itself():
    train = sources.get_source("embedded", "train")
    assert sources.subset(train) is train


@pytest.mark.parametrize("kwargs, message", [
    (dict(classes="3,10"), r"--classes: \[10\] out of range"),
    (dict(classes="3,x"), "--classes must be comma-separated"),
    (dict(classes="3,3"), "--classes lists a class twice"),
    (dict(classes="-1"), "--classes must be class indices >= 0"),
    (dict(examples_per_class=0), "--examples-per-class must be a positive integer"),
    (dict(classes="5", examples_per_class=200), r"--examples-per-class 200: class 5 \('5'\)"),
])
def test_subset_errors_name_the_flag(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sources.subset(sources.get_source("embedded", "train"), **kwargs)


def test_train_config_fields_validate_and_read_recipe_lists():
    config = config_lib.build({"classes": "5,6", "examples_per_class": 3})
    assert (config.classes, config.examples_per_class) == ("5,6", 3)
    assert config_lib.coerce("classes", [5, 6]) == "5,6"
    with pytest.raises(ValueError, match="--examples-per-class must be a positive integer"):
        config_lib.build({"examples_per_class": 0})
    with pytest.raises(ValueError, match="--classes must be comma-separated"):
        config_lib.build({"classes": "five"})
