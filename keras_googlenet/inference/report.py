"""The tables of an evaluation: Markdown and CSV.

`format_markdown` is the table of models x crops (one row per ensemble and
crop set, like the paper's Table 3), `format_per_model_markdown` the table
of each model alone; `write_markdown` and `write_csv` write them (atomically,
see `keras_googlenet.files`).
"""
import csv as csv_lib
import io

from keras_googlenet import files
from keras_googlenet.inference.metrics import DEFAULT_TOP_K


def write_markdown(path, markdown):
    """Writes a table of `format_markdown` (or any text) to `path`, newline-terminated."""
    files.atomic_write(path, markdown + "\n")


def _table_columns(top_k):
    columns = [("Models", "models"), ("Crops", "crops"), ("Cost", "cost")]
    for k in top_k:
        columns.append((f"Top-{k} acc", f"top{k}_accuracy"))
        columns.append((f"Top-{k} error", f"top{k}_error"))
        columns.append((f"Top-{k} error vs base", f"top{k}_error_vs_base"))
    columns.append(("Time (s)", "seconds"))
    return columns


def _fmt(key, value, row):
    if value is None:
        return ""
    if key.endswith("_vs_base"):
        return "base" if row.get("is_base") else f"{100 * value:+.2f}%"
    if key.endswith(("_accuracy", "_error")):
        return f"{100 * value:.2f}%"
    if key == "seconds":
        return f"{value:.1f}"
    return str(value)


def format_markdown(results, top_k=DEFAULT_TOP_K):
    """A Markdown table of models x crops (one row per ensemble and crop set)."""
    columns = _table_columns(top_k)
    lines = ["| " + " | ".join(title for title, _ in columns) + " |",
             "|" + "|".join("---:" for _ in columns) + "|"]
    for row in results:
        lines.append("| " + " | ".join(_fmt(key, row.get(key), row) for _, key in columns) + " |")
    return "\n".join(lines)


def format_per_model_markdown(per_model, top_k=DEFAULT_TOP_K):
    """A Markdown table of each model alone (one row per model and crop set),
    with its top-1 agreement with the first model: puts an int8 file beside
    its float32 original."""
    lines = ["| Model | Crops | " + " | ".join(f"Top-{k} acc" for k in top_k)
             + " | Top-1 agrees with first | Time (s) |",
             "|---|" + "---:|" * (len(top_k) + 3)]
    for row in per_model:
        cells = [str(row["model"]), str(row["crops"])]
        cells += [f"{100 * row[f'top{k}_accuracy']:.2f}%" for k in top_k]
        cells += [f"{100 * row['top1_agreement_with_first']:.2f}%", f"{row['seconds']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(path, results, top_k=DEFAULT_TOP_K):
    """The table as CSV: raw fractions and seconds, plus the model names."""
    keys = [key for _, key in _table_columns(top_k)] + ["mirror", "num_examples", "model_names"]
    text = io.StringIO(newline="")
    writer = csv_lib.writer(text)
    writer.writerow(keys)
    for row in results:
        values = []
        for key in keys:
            value = row.get(key)
            if key == "model_names":
                value = ";".join(value)
            values.append("" if value is None else value)
        writer.writerow(values)
    files.atomic_write(path, text.getvalue())
