"""The example a script user reads first runs, and what it saves loads with
plain Keras in a fresh process after being moved, scoring what it scored."""
import json
import os

import helpers as fx

# Reads both moved files with plain Keras and scores them on the same
# validation batches as the example.
_LOAD_AND_SCORE = """
import json, sys, keras, keras_googlenet
from keras_googlenet.data import pipeline, sources
val = sources.embedded_source("validation")
def batches(relabel=None):
    ds = pipeline.build_dataset(val, training=False, image_size=65, batch_size=32)
    return ds.map(lambda x, y: (x, relabel(y))) if relabel else ds
classifier = keras.models.load_model(sys.argv[1])
head = keras.models.load_model(sys.argv[2])
top1 = classifier.evaluate(batches(), return_dict=True, verbose=0)["top1"]
accuracy = head.evaluate(batches(lambda y: y % 2), return_dict=True, verbose=0)["accuracy"]
print("RESULT " + json.dumps({"type": type(classifier).__name__, "top1": top1,
                              "accuracy": accuracy, "names": classifier.contract.class_names}))
"""


def test_train_with_fit_example_runs_and_its_models_load_with_plain_keras(tmp_path):
    out = tmp_path / "run"
    process = fx.run_under("tensorflow", [
        "examples/train_with_fit.py", "--output-dir", str(out), "--epochs", "1",
        "--finetune-epochs", "1", "--steps-per-epoch", "2", "--image-size", "65"], timeout=900)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    moved = tmp_path / "moved"
    moved.mkdir()
    for name in ("classifier.keras", "finetuned.keras"):
        os.replace(out / name, moved / name)
    loaded = fx.result_of(fx.run_under("tensorflow", [
        "-c", _LOAD_AND_SCORE, str(moved / "classifier.keras"), str(moved / "finetuned.keras")]))
    assert loaded["type"] == "GoogLeNetClassifier"
    assert loaded["names"] == [str(i) for i in range(10)]
    assert abs(loaded["top1"] - results["classifier_val_top1"]) < 1e-6
    assert abs(loaded["accuracy"] - results["finetuned_val_accuracy"]) < 1e-6
