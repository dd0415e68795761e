"""Does GoogLeNet transfer? A measured few-shot experiment on the embedded digits.

1. Pretrain on digits 0-4 with the main job's recipe (`googlenet train
   --classes 0,1,2,3,4`: embedded_digits, 12 epochs).
2. Target task: digits 5-9 with K = 5, 20 and all (~145) training images
   per class, scored on the validation split's 5-9 (180 images).
3. Methods, each under one step budget (--epochs x --steps-per-epoch
   batches of 32):
   - scratch: the same recipe from random weights (`googlenet train
     --classes 5,6,7,8,9 --examples-per-class K`), Polyak averaging off (a
     0.99 average over a few dozen steps still holds much of the random
     initialisation);
   - linear-probe: logistic regression on the frozen pooled features (no
     steps: one forward pass over the K images);
   - head: a new classifier on the frozen backbone, the whole budget;
   - full: the head from the linear probe, then everything for the whole budget.
4. Seeds 1, 2, 3 (the seed also draws the K images); mean and spread.

    python benchmarks/transfer.py --output-dir runs/transfer \\
        --markdown docs/transfer_table.md --plot docs/transfer.png
"""
import json
import os
import sys
import time

import numpy as np

import harness  # benchmarks/harness.py, beside this file

METHODS = ("scratch", "linear-probe", "head", "full")
SOURCE_CLASSES = "0,1,2,3,4"
TARGET_CLASSES = "5,6,7,8,9"


def pretrain(output_dir, verbose):
    from keras_googlenet.train import config as config_lib
    from keras_googlenet.train import trainer

    path = os.path.join(output_dir, "model.keras")
    if os.path.exists(path):
        print(f"pretrained model exists: {path}")
        return path, None
    config = config_lib.build({"classes": SOURCE_CLASSES, "output_dir": output_dir,
                               "export_dir": "", "verbose": verbose})
    results = trainer.run(config)
    return results["model_path"], results.get("val", {}).get("top1")


def one_run(method, k, seed, pretrained, output_dir, epochs, steps, verbose):
    import keras

    from keras_googlenet.train import config as config_lib
    from keras_googlenet.train import finetune, trainer

    keras.backend.clear_session()
    common = dict(classes=TARGET_CLASSES, examples_per_class=k, seed=seed,
                  output_dir=output_dir, verbose=verbose)
    if method == "scratch":
        config = config_lib.build(dict(common, export_dir="", epochs=epochs,
                                       steps_per_epoch=steps, ema_momentum=0))
        return trainer.run(config)["val"]["top1"]
    if method == "linear-probe":
        return finetune.run(pretrained, mode="linear-probe", **common)["val"]["top1"]
    if method == "head":
        return finetune.run(pretrained, mode="head", head_epochs=epochs, steps_per_epoch=steps,
                            **common)["val"]["top1"]
    return finetune.run(pretrained, mode="full", epochs=epochs,
                        steps_per_epoch=steps, **common)["val"]["top1"]


def table(results, ks):
    head = "| method | " + " | ".join(f"K = {k}" for k in ks) + " |"
    lines = [head, "|" + "---|" * (len(ks) + 1)]
    for method in METHODS:
        cells = []
        for k in ks:
            values = 100 * np.array(results[method][str(k)])
            cells.append(f"{values.mean():.1f} ± {values.std(ddof=1) if len(values) > 1 else 0:.1f} "
                         f"({values.min():.1f}–{values.max():.1f})")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results, ks, path, budget):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(len(ks))
    for i, method in enumerate(METHODS):
        values = np.array([100 * np.array(results[method][str(k)]) for k in ks])
        ax.errorbar(x + (i - 1.5) * 0.04, values.mean(1), yerr=values.std(1, ddof=1),
                    marker="o", capsize=3, label=method)
    ax.set_xticks(x, [f"{k}" for k in ks])
    ax.set_xlabel("training images per class (K)")
    ax.set_ylabel("top-1 on validation digits 5-9 (%)")
    ax.set_title(f"Transfer from digits 0-4 ({budget}; mean ± sd of 3 seeds)", fontsize=9)
    ax.set_ylim(0, 100)
    ax.axhline(20, color="grey", lw=0.8, ls=":")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = harness.parser(__doc__, full=True)
    parser.add_argument("--output-dir", default="runs/transfer",
                        help="runs, results.json and table.md; default: runs/transfer")
    parser.add_argument("--ks", default="5,20,all",
                        help="training images per class, 'all' for every one; default: 5,20,all")
    parser.add_argument("--seeds", default="1,2,3", help="default: 1,2,3")
    parser.add_argument("--epochs", type=int, default=3,
                        help="epochs of the step budget; default: 3")
    parser.add_argument("--steps-per-epoch", type=int, default=20,
                        help="batches of 32 per epoch of the step budget; default: 20")
    parser.add_argument("--methods", default=",".join(METHODS), help="default: all four")
    parser.add_argument("--markdown", default=None,
                        help="also write the table here; default: only OUTPUT_DIR/table.md")
    parser.add_argument("--plot", default=None,
                        help="PNG of accuracy against K; default: none")
    parser.add_argument("--verbose", type=int, default=0, choices=(0, 1, 2),
                        help="Keras fit verbosity; default: 0")
    args = parser.parse_args(argv)
    from keras_googlenet import files
    ks = [None if k == "all" else int(k) for k in args.ks.split(",")]
    labels = ["all" if k is None else k for k in ks]
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    started = time.time()
    os.makedirs(args.output_dir, exist_ok=True)
    results_path = os.path.join(args.output_dir, "results.json")
    results = {"runs": []}
    if os.path.exists(results_path):  # resume: keep finished runs
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
    t = time.time()
    pretrained, pre_top1 = pretrain(os.path.join(args.output_dir, "pretrain"), args.verbose)
    if pre_top1 is not None:
        results["pretrain"] = {"val_top1_digits_0_4": pre_top1, "seconds": time.time() - t}
        print(f"pretrained on digits 0-4: val top-1 {pre_top1:.3f} in {time.time() - t:.0f} s")
    done = {(r["method"], str(r["k"]), r["seed"]) for r in results["runs"]}
    for k, label in zip(ks, labels):
        for seed in seeds:
            for method in methods:
                if (method, str(label), seed) in done:
                    continue
                t = time.time()
                run_dir = os.path.join(args.output_dir, f"{method}-k{label}-seed{seed}")
                top1 = one_run(method, k, seed, pretrained, run_dir, args.epochs,
                               args.steps_per_epoch, args.verbose)
                results["runs"].append({"method": method, "k": label, "seed": seed,
                                        "top1": top1, "seconds": time.time() - t})
                print(f"{method:>12} K={label!s:>3} seed={seed}: top-1 {top1:.3f} "
                      f"({time.time() - t:.0f} s)", flush=True)
                files.atomic_write(results_path, json.dumps(results, indent=2))  # resumable
    grouped = {m: {str(l): [r["top1"] for r in results["runs"]
                            if r["method"] == m and str(r["k"]) == str(l)] for l in labels}
               for m in METHODS}
    results["budget"] = f"{args.epochs} x {args.steps_per_epoch} steps of 32"
    results["wall_seconds_this_invocation"] = time.time() - started
    files.atomic_write(results_path, json.dumps(results, indent=2))
    if all(grouped[m][str(l)] for m in METHODS for l in labels):
        text = table(grouped, labels)
        print(text)
        for path in filter(None, (os.path.join(args.output_dir, "table.md"), args.markdown)):
            files.atomic_write(path, text + "\n")
        if args.plot:
            plot(grouped, labels, args.plot, results["budget"])
    print(f"wall time: {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
