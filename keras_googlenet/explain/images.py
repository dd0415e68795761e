"""Grad-CAM overlays of image files: `googlenet explain`.

    explain_images("model.keras", ["cat.jpg"], top=3, output_dir="explain")

writes `explain/cat_top1_<label>.png`, ... : for each image and each of its
top-k classes, the centre crop the model sees beside the Grad-CAM of that
class laid over it, titled with the label and the probability. The model's
own preprocessing contract (normalisation, input size, crop, class names)
is read from the `.keras` file by `inference.loader.load_model`.
"""
import os
import re

import numpy as np

from keras_googlenet.explain.gradcam import DEFAULT_LAYER, compute, scorer as make_scorer

DPI = 100


def overlay(image_uint8, cam, title, path, alpha=0.45):
    """Writes `image_uint8` and the map `cam` (same H, W, in [0, 1]) laid
    over it side by side, with `title` on top; returns `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image = np.clip(np.asarray(image_uint8), 0, 255).astype(np.uint8)
    cam = np.asarray(cam, dtype=np.float32)
    if image.shape[:2] != cam.shape:
        raise ValueError(f"The map {cam.shape} and the image {image.shape[:2]} differ in size.")
    fig = Figure(figsize=(8.0, 4.6), dpi=DPI)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    interpolation = "nearest" if max(image.shape[:2]) < 96 else "antialiased"
    left.imshow(image, interpolation=interpolation)
    left.set_title("input (model's crop)", fontsize=11)
    right.imshow(image, interpolation=interpolation)
    shown = right.imshow(cam, cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0,
                         interpolation="bilinear")
    right.set_title("Grad-CAM", fontsize=11)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(shown, ax=right, fraction=0.046, pad=0.04)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def _file_part(text, width=40):
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_")[:width] or "class"


def explain_images(model, image_paths, top=3, layer=DEFAULT_LAYER,
                   output_dir="explain", normalization="auto", image_size=None,
                   class_names=None, crop_fraction=None, verbose=True):
    """Writes one Grad-CAM overlay PNG per image per top-k class.

    Args:
        model: a `.keras` file (its contract is read by
            `inference.loader.load_model`: `googlenet train` models and the
            converted published weights carry one) or a `keras.Model`.
        image_paths: image files (JPEG, PNG, GIF, BMP).
        top: classes explained per image (capped at the number of classes).
        layer: the block explained ("inception_5b"; "inception_4e" is finer).
        output_dir: where the PNGs go (created).
        normalization: "auto" (the model's own contract; "caffe" for a
            `keras.Model`), a `preprocess_input` mode, or None / "none".
        image_size, crop_fraction, class_names: None (the model's own) or an
            override.
        verbose: print one line per PNG.

    Returns:
        A list of dicts, one per PNG: `image`, `rank`, `class_index`,
        `class_name`, `probability`, `path`.
    """
    from keras_googlenet.data import preprocessing
    from keras_googlenet.models import contract as contract_lib

    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"`top` must be a positive int. Received: top={top!r}")
    paths = [os.fspath(p) for p in ([image_paths] if isinstance(image_paths, (str, os.PathLike))
                                    else image_paths)]
    if not paths:
        raise ValueError("No image files given.")
    if isinstance(model, (str, os.PathLike)):
        from keras_googlenet.inference import loader

        model, contract = loader.load_model(model, normalization=normalization,
                                            image_size=image_size, crop_fraction=crop_fraction,
                                            class_names=class_names)
    else:
        from keras_googlenet.inference import loader

        mode = contract_lib.DEFAULT_NORMALIZATION if normalization == "auto" else normalization
        contract = contract_lib.Contract(
            normalization=None if mode in (None, "none") else mode,
            image_size=image_size, crop_fraction=crop_fraction or
            contract_lib.DEFAULT_CROP_FRACTION)
        classes = loader.model_classes(model)
        contract = contract.replace(class_names=contract_lib.resolve_class_names(
            class_names, classes))
    scorer = make_scorer(model, layer)
    fixed = tuple(scorer.model.input_shape[1:3])
    size = contract.image_size or (fixed[0] if None not in fixed else 224)
    crops = preprocessing.eval_crops(paths, size, contract.crop_fraction).numpy()
    first = compute(scorer, crops, None, layer, contract.normalization)
    names = list(contract.class_names)
    k = min(top, first.probabilities.shape[1])
    ranked = np.argsort(-first.probabilities, axis=1, kind="stable")[:, :k]
    results, used = [], set()
    for rank in range(k):
        maps = first if rank == 0 else compute(scorer, crops, ranked[:, rank], layer,
                                                       contract.normalization)
        for i, path in enumerate(paths):
            index = int(ranked[i, rank])
            probability = float(first.probabilities[i, index])
            stem = _file_part(os.path.splitext(os.path.basename(path))[0])
            if (stem, rank) in used:  # same file name in two folders
                stem = f"{stem}_{i}"
            used.add((stem, rank))
            out = os.path.join(output_dir, f"{stem}_top{rank + 1}_{_file_part(names[index])}.png")
            title = (f"{os.path.basename(path)}: top-{rank + 1} \"{names[index]}\" "
                     f"p = {probability:.1%} ({layer})")
            overlay(crops[i], maps.maps[i], title, out)
            results.append({"image": path, "rank": rank + 1, "class_index": index,
                            "class_name": names[index], "probability": probability,
                            "path": out})
            if verbose:
                print(f"{out}  ({names[index]}, {probability:.1%})")
    return results
