"""The transfer protocol in miniature: a backbone pretrained here on digits
0-4 and fine-tuned on 5-9 (K = 10 per class) beats the same network trained
from scratch on 5-9 with the same steps (32x32 inputs, no auxiliary heads,
fixed seeds; chance is 20%)."""
import json
import os

import pytest

from keras_googlenet.train import config as config_lib
from keras_googlenet.train import finetune, trainer

SMALL = dict(image_size=32, aux_classifiers=False, min_crop_area=0.5, ema_momentum=0,
             export_dir="", verbose=0)


@pytest.mark.slow
def test_pretrained_backbone_beats_scratch_with_the_same_steps(tmp_path, digits_model):
    budget = dict(classes="5,6,7,8,9", examples_per_class=10, seed=1)
    scratch = trainer.run(config_lib.build(dict(
        SMALL, **budget, epochs=2, steps_per_epoch=10, output_dir=str(tmp_path / "scratch"))))
    tuned = finetune.run(digits_model, output_dir=str(tmp_path / "full"),
                         mode="full", epochs=2, steps_per_epoch=10, min_crop_area=0.5,
                         verbose=0, **budget)
    print("scratch", scratch["val"], "fine-tuned", tuned["val"])
    assert tuned["val"]["examples"] == scratch["val"]["examples"] == 180
    assert tuned["val"]["top1"] >= scratch["val"]["top1"] + 0.2
    # The same logs as `googlenet train`.
    for name in ("history.csv", "curves.png", "config.json", "results.json", "model.keras"):
        assert os.path.exists(tmp_path / "full" / name), name
    with open(tmp_path / "full" / "config.json", encoding="utf-8") as f:
        assert json.load(f)["class_names"] == ["5", "6", "7", "8", "9"]
