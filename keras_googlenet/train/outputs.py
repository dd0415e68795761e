"""What a finished run writes: curves.png, model.keras with its contract,
the validation metrics, the TF Serving export and results.json.
`googlenet train` and `googlenet finetune` both end with `finalize`."""
import json
import logging
import os

import keras
import numpy as np

from keras_googlenet import backends, files
from keras_googlenet.models import contract as contract_lib
from keras_googlenet.models import hub_format

log = logging.getLogger(__name__)


def finalize(model, output_dir, contract, results, val_data=None, export_dir="", step=None,
             pictures=None, preset_dir=""):
    """Writes a trained inference model's files and returns `results` with
    what was written (model_path, val, preset_path, export_path, export_step).

    Args:
        model: the single-output inference model.
        contract: its `models.contract.Contract`, saved inside model.keras
            and the export.
        results: the run's results so far; `history` is not written to
            results.json (history.csv has it).
        val_data: a labelled dataset the saved model is scored on.
        export_dir: TF Serving base directory; "" exports nothing.
        preset_dir: a KerasHub preset folder to write too; "" writes none.
        step: the optimizer step of the weights: a re-run of a finished job
            at the same step does not publish them again as a new version.
        pictures: `pictures(probabilities, labels)`, called with the
            validation predictions.
    """
    csv_path = os.path.join(output_dir, "history.csv")
    if os.path.exists(csv_path):
        plot_history(csv_path, os.path.join(output_dir, "curves.png"))
    model_path = contract_lib.save_model(model, os.path.join(output_dir, "model.keras"),
                                         contract)
    results["model_path"] = model_path
    if val_data is not None:
        results["val"], probabilities, labels = infer_metrics(model, val_data)
        if pictures is not None:
            pictures(probabilities, labels)
    if preset_dir:
        results["preset_path"] = hub_format.write_preset(model, preset_dir, contract)
    if export_dir:
        results["export_path"] = _export(model, model_path, export_dir, contract, step,
                                         output_dir)
        if step is not None:
            results["export_step"] = step
    files.write_json(os.path.join(output_dir, "results.json"),
                     {k: v for k, v in results.items() if k != "history"})
    return results


def _export(model, model_path, export_dir, contract, step, output_dir):
    previous = _previous_export(output_dir, step, export_dir) if step is not None else None
    if previous:
        print(f"Already exported at step {step}: {previous}")
        return previous
    if keras.backend.backend() == "tensorflow":
        from keras_googlenet.serving.export import export_saved_model

        return export_saved_model(
            model, export_dir, class_names=contract.class_names, image_size=contract.image_size,
            normalization=contract.normalization, crop_fraction=contract.crop_fraction)
    # A SavedModel is a TensorFlow graph: model.keras, with its contract, is
    # exported by a child process on TensorFlow.
    log.info("Exporting %s from a process on the TensorFlow backend (this run trained on "
             "%s).", model_path, keras.backend.backend())
    return backends.call_under_tensorflow("keras_googlenet.serving.export", "export_model_file",
                                          model_path, export_dir)


def _previous_export(output_dir, step, export_dir):
    """The export a finished run of this job already wrote at optimizer step
    `step` into `export_dir` (from its results.json), or None: a re-run
    asked for another destination exports there."""
    try:
        with open(os.path.join(output_dir, "results.json"), encoding="utf-8") as f:
            previous = json.load(f)
    except (OSError, ValueError):
        return None
    path = previous.get("export_path")
    if (previous.get("export_step") == step and path and os.path.isdir(path)
            and os.path.isdir(export_dir)
            and os.path.samefile(os.path.dirname(os.path.abspath(path)), export_dir)):
        return path
    return None


def infer_metrics(model, dataset):
    """Top-1 and top-5 accuracy of a single-output model over a labelled
    dataset (the evaluation's metrics, on the 1-crop pipeline), and the
    probabilities and labels they were computed from."""
    from keras_googlenet.inference.metrics import classification_metrics
    from keras_googlenet.inference.predictors import predict_dataset

    probabilities, labels = predict_dataset(model, dataset)
    metrics = classification_metrics(probabilities, labels)
    return ({"top1": metrics["top1_accuracy"], "top5": metrics["top5_accuracy"],
             "examples": metrics["num_examples"]}, probabilities, labels)


def plot_history(csv_path, png_path):
    """Writes a PNG of loss and top-1 accuracy, train and validation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = np.genfromtxt(csv_path, delimiter=",", names=True, dtype=float)
    rows = np.atleast_1d(rows)
    epochs = rows["epoch"] + 1
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "top1")):
        for prefix, style in (("", "-"), ("val_", "--")):
            # Keras prefixes a multi-output model's metrics with the head name.
            for name in (prefix + metric, f"{prefix}predictions_{metric}"):
                if name in rows.dtype.names:
                    ax.plot(epochs, rows[name], style, marker="o",
                            label=("validation " if prefix else "train ") + metric)
                    break
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
