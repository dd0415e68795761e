"""Pictures of a classifier's results: where it fails, at a glance.

    confusion_matrix(probabilities, labels, class_names, "confusion_matrix.png")
    per_class_accuracy(probabilities, labels, class_names, "per_class_accuracy.png")
    mistakes(images, probabilities, labels, class_names, "mistakes.png")
    crops_vs_error(evaluate(...)["results"], "crops_vs_error.png")

All are PNGs at 100 dpi drawn with Matplotlib's Agg canvas (no display, no
global pyplot state). Matplotlib is imported inside the functions, so
importing this module costs nothing.
"""
import math
import os

import numpy as np

DPI = 100
MAX_CONFUSION_CLASSES = 30  # more would make unreadable tick labels
MAX_BAR_CLASSES = 40
_FONT = {"font.size": 11, "axes.titlesize": 13, "axes.labelsize": 12,
         "xtick.labelsize": 10, "ytick.labelsize": 10}

EVALUATION_PICTURES = ("confusion_matrix.png", "per_class_accuracy.png", "mistakes.png",
                       "crops_vs_error.png")
VALIDATION_PICTURES = ("confusion_matrix.png", "mistakes.png")


def _figure(width, height):
    """A Matplotlib figure on an Agg canvas (independent of pyplot's backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _rc():
    import matplotlib

    return matplotlib.rc_context(_FONT)


def _check(probabilities, labels, class_names):
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise ValueError(f"Expected (N, classes) probabilities and N labels. Received "
                         f"{probabilities.shape} and {labels.shape}.")
    classes = probabilities.shape[1]
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"Labels must be in [0, {classes}). "
                         f"Received {labels.min()}..{labels.max()}.")
    names = [str(i) for i in range(classes)] if class_names is None else [str(n) for n in
                                                                          class_names]
    if len(names) != classes:
        raise ValueError(f"{len(names)} class names for {classes} classes.")
    return probabilities, labels, names


def _short(name, width=22):
    return name if len(name) <= width else name[:width - 1] + "\u2026"


def confusion_counts(predictions, labels, classes):
    """`(classes, classes)` counts: row = true class, column = predicted."""
    from sklearn import metrics  # imported here, as matplotlib is

    return metrics.confusion_matrix(np.asarray(labels, np.int64),
                                    np.asarray(predictions, np.int64), labels=np.arange(classes))


def most_confused(counts, k=MAX_CONFUSION_CLASSES):
    """Indices (sorted) of the `k` classes involved in the most mistakes, as
    the true or the predicted class."""
    errors = counts - np.diag(np.diag(counts))
    involvement = errors.sum(axis=0) + errors.sum(axis=1)
    order = np.argsort(-involvement, kind="stable")[:k]
    return np.sort(order)


def confusion_matrix(probabilities, labels, class_names, path,
                     max_classes=MAX_CONFUSION_CLASSES):
    """Writes the row-normalised confusion matrix (true class per row).

    With more than `max_classes` classes only the `max_classes` classes
    involved in the most mistakes are shown (rows still normalised over all
    predictions of the class), and the title says so.

    Returns:
        `path`.
    """
    probabilities, labels, names = _check(probabilities, labels, class_names)
    classes = probabilities.shape[1]
    counts = confusion_counts(np.argmax(probabilities, axis=1), labels, classes)
    totals = counts.sum(axis=1, keepdims=True)
    matrix = np.divide(counts, totals, out=np.zeros(counts.shape, np.float64),
                       where=totals > 0)
    accuracy = float(np.trace(counts) / max(len(labels), 1))
    title = f"Confusion matrix, rows normalised ({len(labels)} images, top-1 {accuracy:.1%})"
    shown = np.arange(classes)
    if classes > max_classes:
        shown = most_confused(counts, max_classes)
        matrix = matrix[np.ix_(shown, shown)]
        title = (f"Confusion matrix, rows normalised: the {max_classes} most confused of "
                 f"{classes} classes\n({len(labels)} images, top-1 {accuracy:.1%})")
    n = len(shown)
    side = min(max(5.5, 0.38 * n + 3.0), 16.0)
    with _rc():
        fig = _figure(side + 1.2, side)
        ax = fig.add_subplot(1, 1, 1)
        image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        tick_names = [_short(names[i]) for i in shown]
        ax.set_xticks(range(n), tick_names, rotation=90 if n > 10 or max(
            len(t) for t in tick_names) > 3 else 0)
        ax.set_yticks(range(n), tick_names)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title)
        if n <= 15:
            for i in range(n):
                for j in range(n):
                    if matrix[i, j] >= 0.005:
                        ax.text(j, i, f"{matrix[i, j]:.2f}".lstrip("0") if matrix[i, j] < 1
                                else "1", ha="center", va="center", fontsize=9,
                                color="white" if matrix[i, j] > 0.5 else "black")
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
        fig.tight_layout()
        return _save(fig, path)


def per_class_accuracy(probabilities, labels, class_names, path, max_classes=MAX_BAR_CLASSES):
    """Writes top-1 accuracy per class as bars sorted from worst to best.

    Classes without examples are left out; with more than `max_classes`
    classes the `max_classes` worst are shown and the title says so.

    Returns:
        `path`.
    """
    probabilities, labels, names = _check(probabilities, labels, class_names)
    classes = probabilities.shape[1]
    correct = np.argmax(probabilities, axis=1) == labels
    support = np.bincount(labels, minlength=classes)
    hits = np.bincount(labels, weights=correct.astype(np.float64), minlength=classes)
    present = np.flatnonzero(support)
    accuracy = hits[present] / support[present]
    order = present[np.argsort(accuracy, kind="stable")]
    mean = float(correct.mean()) if len(correct) else 0.0
    title = f"Top-1 accuracy per class ({len(labels)} images, overall {mean:.1%} dashed)"
    if len(order) > max_classes:
        title = (f"Top-1 accuracy per class: the {max_classes} worst of {len(order)} classes\n"
                 f"({len(labels)} images, overall {mean:.1%} dashed)")
        order = order[:max_classes]
    values = hits[order] / support[order]
    n = len(order)
    with _rc():
        fig = _figure(8.0, min(max(3.0, 0.32 * n + 1.6), 16.0))
        ax = fig.add_subplot(1, 1, 1)
        colors = ["#d62728" if v < 0.5 else "#ff7f0e" if v < 0.9 else "#2ca02c" for v in values]
        ax.barh(range(n), values, color=colors)
        ax.set_yticks(range(n), [_short(names[i]) for i in order])
        ax.invert_yaxis()  # worst at the top
        ax.set_xlim(0, 1.12)
        ax.set_xlabel("top-1 accuracy")
        ax.axvline(mean, color="gray", linestyle="--", linewidth=1)  # overall accuracy
        for y, (value, index) in enumerate(zip(values, order)):
            ax.text(min(value, 1.0) + 0.01, y, f"{value:.0%} of {support[index]}",
                    va="center", fontsize=9)
        ax.set_title(title)
        ax.grid(True, axis="x", alpha=0.3)
        fig.tight_layout()
        return _save(fig, path)


def mistake_indices(probabilities, labels, count=16):
    """Indices of the `count` most confident wrong predictions, most
    confident first."""
    probabilities = np.asarray(probabilities)
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.argmax(probabilities, axis=1)
    wrong = np.flatnonzero(predicted != labels)
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:count]


def _images_at(images, indices):
    """`images[indices]`; `images` may be an array/list or a function of
    the index list (to fetch only the few images shown)."""
    if callable(images):
        chosen = images(list(indices))
    else:
        chosen = [images[i] for i in indices]
    return [np.clip(np.asarray(im), 0, 255).astype(np.uint8) for im in chosen]


def mistakes(images_uint8, probabilities, labels, class_names, path, count=16):
    """Writes a grid of the most confident wrong predictions.

    Args:
        images_uint8: `(N, H, W, 3)` uint8 images aligned with `labels`, or
            a function `f(indices) -> images` returning only those asked for.
        probabilities: `(N, classes)`.
        labels: `(N,)` true classes.
        class_names: one name per class (None: "0".."C-1").
        path: the PNG to write.
        count: at most this many mistakes.

    Each tile is titled with the true label, the predicted one and its
    probability. Without mistakes the PNG says so.

    Returns:
        `path`.
    """
    probabilities, labels, names = _check(probabilities, labels, class_names)
    chosen = mistake_indices(probabilities, labels, count)
    total_wrong = int((np.argmax(probabilities, axis=1) != labels).sum())
    with _rc():
        if len(chosen) == 0:
            fig = _figure(6.0, 2.5)
            fig.text(0.5, 0.5, f"No mistakes: all {len(labels)} images are classified "
                               "correctly.", ha="center", va="center", fontsize=13)
            return _save(fig, path)
        tiles = _images_at(images_uint8, chosen)
        columns = min(4, len(chosen))
        rows = math.ceil(len(chosen) / columns)
        fig = _figure(3.0 * columns, 3.7 * rows + 0.6)
        predicted = np.argmax(probabilities, axis=1)
        for k, (index, tile) in enumerate(zip(chosen, tiles)):
            ax = fig.add_subplot(rows, columns, k + 1)
            small = max(tile.shape[:2]) < 96
            ax.imshow(tile.squeeze() if tile.shape[-1] == 1 else tile,
                      cmap="gray" if tile.ndim == 2 or tile.shape[-1] == 1 else None,
                      interpolation="nearest" if small else "antialiased")
            ax.set_xticks([])
            ax.set_yticks([])
            p = probabilities[index, predicted[index]]
            ax.set_title(f"true: {_short(names[labels[index]], 18)}\n"
                         f"pred: {_short(names[predicted[index]], 18)} ({p:.0%})",
                         fontsize=11, color="#b00000")
        fig.suptitle(f"The {len(chosen)} most confident of {total_wrong} mistakes "
                     f"({len(labels)} images)", fontsize=13)
        # Room for the suptitle, and for each row's two-line titles.
        fig.tight_layout(rect=(0, 0, 1, 0.96), h_pad=2.0)
        return _save(fig, path)


def crops_vs_error(rows, path):
    """Writes top-1 error against crops per image, one line per ensemble
    size (the paper's Table 3 as a picture).

    Args:
        rows: the `results` rows of `evaluation.evaluate` (keys `models`,
            `crops`, `top1_error`).
        path: the PNG to write.

    Returns:
        `path`.
    """
    if not rows:
        raise ValueError("No result rows to plot.")
    by_models = {}
    for row in rows:
        by_models.setdefault(int(row["models"]), {})[int(row["crops"])] = float(row["top1_error"])
    crop_counts = sorted({c for points in by_models.values() for c in points})
    with _rc():
        fig = _figure(7.0, 4.8)
        ax = fig.add_subplot(1, 1, 1)
        for models in sorted(by_models):
            points = sorted(by_models[models].items())
            ax.plot([c for c, _ in points], [100 * e for _, e in points], marker="o",
                    linewidth=2, label=f"{models} model{'s' if models > 1 else ''}")
            for c, e in points:
                ax.annotate(f"{100 * e:.2f}%", (c, 100 * e), textcoords="offset points",
                            xytext=(4, 5), fontsize=9)
        if len(crop_counts) > 1 and crop_counts[-1] / crop_counts[0] >= 10:
            ax.set_xscale("log")
        ax.set_xticks(crop_counts, [str(c) for c in crop_counts])
        ax.minorticks_off()
        ax.set_xlabel("crops per image")
        ax.set_ylabel("top-1 error (%)")
        ax.set_title("Top-1 error vs crops per image, per ensemble size")
        ax.grid(True, alpha=0.3)
        ax.legend(title="ensemble")
        ax.margins(x=0.12, y=0.15)
        fig.tight_layout()
        return _save(fig, path)


def write_evaluation_pictures(output_dir, rows, images, probabilities, labels, class_names,
                              count=16):
    """Writes the four evaluation pictures into `output_dir`.

    Args:
        output_dir: created if needed.
        rows: `evaluate(...)["results"]` (for crops_vs_error.png).
        images: uint8 images aligned with `labels`, or a function of a list
            of indices returning those images (see `mistakes`).
        probabilities, labels, class_names: of the full ensemble at one crop
            set (the confusion matrix, per-class bars and mistakes).
        count: mistakes shown.

    Returns:
        {file name: path}.
    """
    paths = {name: os.path.join(output_dir, name) for name in EVALUATION_PICTURES}
    confusion_matrix(probabilities, labels, class_names, paths["confusion_matrix.png"])
    per_class_accuracy(probabilities, labels, class_names, paths["per_class_accuracy.png"])
    mistakes(images, probabilities, labels, class_names, paths["mistakes.png"], count=count)
    crops_vs_error(rows, paths["crops_vs_error.png"])
    return paths


def write_validation_pictures(output_dir, images, probabilities, labels, class_names,
                              tensorboard_logdir=None, step=0, count=16):
    """Writes confusion_matrix.png and mistakes.png of a validation pass.

    Args:
        output_dir: created if needed (the trainer's: beside curves.png).
        images: uint8 validation images aligned with `labels` (or a function
            of indices, see `mistakes`).
        probabilities: `(N, classes)` of the final validation pass.
        labels: `(N,)`.
        class_names: one name per class, or None.
        tensorboard_logdir: if given, both PNGs are also logged there as
            images (`tf.summary.image`, tags "confusion_matrix" and "mistakes").
        step: the TensorBoard step (e.g. the last epoch).
        count: mistakes shown.

    Returns:
        {file name: path}.
    """
    paths = {name: os.path.join(output_dir, name) for name in VALIDATION_PICTURES}
    confusion_matrix(probabilities, labels, class_names, paths["confusion_matrix.png"])
    mistakes(images, probabilities, labels, class_names, paths["mistakes.png"], count=count)
    if tensorboard_logdir:
        log_pictures(tensorboard_logdir, paths, step)
    return paths


def log_pictures(logdir, paths, step=0):
    """Logs PNG files to TensorBoard as images, tagged by file stem."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(logdir)
    with writer.as_default():
        for name, path in paths.items():
            with open(path, "rb") as f:
                image = tf.io.decode_png(f.read(), channels=4)
            tf.summary.image(os.path.splitext(os.path.basename(name))[0], image[None], step=step)
    writer.flush()
    writer.close()
