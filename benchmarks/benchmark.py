"""GoogLeNet speed benchmark, optionally beside torchvision (prints JSON).

Training throughput (aux heads, full loss) at batch 16 and 32 from memory
and end to end from JPEG files, inference at batch 32 and latency at batch 1
(Keras model, SavedModel, TFLite), FLOPs and the fraction of this CPU's
float32/bfloat16 matmul peak, peak RSS of batch-32 training. Variants are
interleaved round by round, so compare ratios within one run.

    python benchmarks/benchmark.py                  # full run
    python benchmarks/benchmark.py --quick          # smoke run
    python benchmarks/benchmark.py --no-torch       # Keras only
    python benchmarks/benchmark.py --mode profile   # per-op profile of a training step
    python benchmarks/benchmark.py --mode peak      # matmul peaks only

torchvision runs when `torch` and `torchvision` are importable, or in the
Python given by `--torch-python`. Needs `keras_googlenet` installed (any
install, editable or not) or importable.

Definitions (docs/performance.md has the figures):
- training throughput: images per second of `model.fit` steps with the
  auxiliary heads and the full loss (1.0 main + 0.3 + 0.3 aux), SGD with
  momentum, weight decay and Polyak averaging (`objective.compile_model`),
  from a batch held in memory, or end to end from JPEG files through
  `data.build_dataset(training=True)`. input overhead = 1 - memory/jpeg step
  time ratio (the share of an end-to-end step spent waiting for input).
- FLOPs: 2 x `flops.multiply_adds` (convolutions and dense layers, as the
  paper counts; torchvision's from `FlopCounterMode`); a training step is
  counted as 3x the forward FLOPs (forward, input gradients, weight
  gradients).
- matmul peak: GFLOP/s of a square `tf.linalg.matmul` in float32 and bfloat16
  measured in the same run, with the same threads.
"""
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import benchmarking as bk  # noqa: E402  (benchmarks/benchmarking.py, beside this file)
import harness  # noqa: E402

r = harness.rounded


def _ips(batch_size, times):
    return r(batch_size / harness.median(times), 2) if times else None


def run_benchmark(quick=False, image_size=224, batch_sizes=(16, 32), precisions=None,
                  torch=None, rounds=None, steps=None, warmup=None, intra=None, inter=None,
                  jit=False, jpeg=True, export=True, memory=True, classes=1000,
                  jpeg_cache=True, torch_channels_last=False, torch_python=None, log=None):
    """Runs the measurements and returns a JSON-ready dict (see module doc).

    Args:
        quick: a smoke run: 2 steps, 1 round, few files.
        precisions: Keras precisions to compare; default float32 and, on CPUs
            with AVX512_BF16/AMX, mixed_bfloat16.
        torch: also run torchvision (None: when importable).
        rounds: interleaved rounds (each variant runs once per round).
        jit: also measure the float32 training model with `jit_compile=True`.
        jpeg: the end-to-end measurement from JPEG files.
        export: SavedModel and TFLite inference.
        memory: peak RSS of a batch-32 training run (child processes).
        torch_python: the Python torchvision runs in; default: this one.
    """
    import keras
    import tensorflow as tf

    from keras_googlenet import hardware

    log = log or harness.stderr_log
    harness.configure_threads(intra, inter)
    threads = intra or os.cpu_count()
    if precisions is None:
        precisions = ["float32"] + (["mixed_bfloat16"] if hardware.has_bf16_hardware() else [])
    if torch is None:
        torch = bk.torch_available(torch_python)
    rounds = rounds or (1 if quick else 2)
    steps = steps or (2 if quick else 5)
    warmup = 1 if quick and warmup is None else (warmup if warmup is not None else 2)
    infer_repeats = 2 if quick else 8
    latency_repeats = 3 if quick else 20
    infer_batch = 4 if quick else 32
    keras.utils.set_random_seed(0)

    result = {
        "benchmark": "googlenet_speed",
        "quick": quick,
        "image_size": image_size,
        "classes": classes,
        "cpu": harness.cpu_info(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf_threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                       "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)"),
        "method": (f"median of per-step wall times; {rounds} interleaved round(s) of "
                   f"{warmup} warm-up + {steps} timed steps per variant"),
    }
    peak_sizes = (256, 512) if quick else (1024, 2048, 4096)

    variants = {f"keras_{p}": bk.build_keras(image_size, p, classes) for p in precisions}
    if jit:
        variants["keras_float32_jit"] = bk.build_keras(image_size, "float32", classes,
                                                       jit_compile=True)
    torch_nets = {}
    if torch:
        log("starting the torchvision worker process")
        worker = bk.TorchWorker(image_size, classes, threads=threads,
                                channels_last=torch_channels_last, python=torch_python)
        torch_nets["torchvision_float32"] = worker
        result["torch"] = worker.info["torch"]
        result["torchvision"] = worker.info["torchvision"]
        result["torch_threads"] = worker.info["threads"]
        result["torch_process"] = "separate (torch and TensorFlow thread pools in one process fight)"
    flops = bk.forward_flops(next(iter(variants.values())))
    tflops = torch_nets["torchvision_float32"].info["forward_flops"] if torch_nets else None
    result["flops"] = {"keras_forward_gflops_per_image": r(flops / 1e9, 3),
                       "keras_train_gflops_per_image": r(3 * flops / 1e9, 3)}
    if tflops:
        result["flops"]["torchvision_forward_gflops_per_image"] = r(tflops / 1e9, 3)

    # The tasks of one round, in order: (key, log label or None, fn -> samples).
    tasks = [("peak", "matmul peaks", lambda: [harness.matmul_peaks(peak_sizes)])]
    for b in batch_sizes:
        for name, model in variants.items():
            ds = bk.memory_dataset(model, b, image_size, classes)
            tasks.append((("train", name, b, "memory"), f"train {name} batch {b} (memory)",
                          lambda m=model, ds=ds: bk.keras_fit_step_times(m, ds, steps, warmup)))
        for name, net in torch_nets.items():
            tasks.append((("train", name, b, "memory"), f"train {name} batch {b}",
                          lambda net=net, b=b: net.train_times(b, warmup, steps)))

    workdir = tempfile.mkdtemp(prefix="googlenet-bench-")
    jpeg_names = []
    if jpeg:
        folder = os.path.join(workdir, "jpegs")
        num_files = 32 if quick else 256
        log(f"writing {num_files} JPEGs")
        bk.write_jpegs(folder, num_files, num_classes=min(classes, 4))
        b = max(batch_sizes)
        for p in precisions:
            name = f"keras_{p}"
            jpeg_names.append(name)
            ds = bk.jpeg_dataset(variants[name], folder, b, image_size, cache=jpeg_cache)
            tasks.append((("train", name, b, "jpeg"), f"train {name} batch {b} (JPEG)",
                          lambda m=variants[name], ds=ds: bk.keras_fit_step_times(
                              m, ds, steps, warmup)))

    predictors = {name: bk.keras_predictor(model) for name, model in variants.items()
                  if not name.endswith("_jit")}
    latency_predictors = dict(predictors)
    x_infer = np.random.RandomState(1).normal(0, 50, (infer_batch, image_size, image_size, 3)
                                              ).astype("float32")
    x_one = x_infer[:1]
    if export and "keras_float32" in variants:
        log("exporting SavedModel and TFLite")
        saved, tflite = bk.export_artifacts(variants["keras_float32"], workdir, image_size)
        crop = int(np.ceil(image_size / 0.875))
        sm = bk.saved_model_predictor(saved, crop)
        u8_batch = np.random.RandomState(2).randint(0, 256, (infer_batch, crop, crop, 3)
                                                    ).astype("uint8")
        predictors["savedmodel_float32"] = lambda x, sm=sm, u=u8_batch: sm(u[:len(x)])
        latency_predictors["savedmodel_float32"] = predictors["savedmodel_float32"]
        predictors["tflite_float32"] = bk.tflite_predictor(tflite, infer_batch, threads)
        latency_predictors["tflite_float32"] = bk.tflite_predictor(tflite, 1, threads)
    for name, fn in predictors.items():
        tasks.append((("infer", name), f"inference {name}", lambda fn=fn: harness.timed_calls(
            lambda: fn(x_infer), 1, infer_repeats)))
    for name, net in torch_nets.items():
        tasks.append((("infer", name), f"inference {name}",
                      lambda net=net: net.predict_times(infer_batch, 1, infer_repeats)))
    for name, fn in latency_predictors.items():
        tasks.append((("latency", name), None, lambda fn=fn: harness.timed_calls(
            lambda: fn(x_one), 2, latency_repeats)))
    for name, net in torch_nets.items():
        tasks.append((("latency", name), None,
                      lambda net=net: net.predict_times(1, 2, latency_repeats)))

    samples = harness.interleaved(tasks, rounds, log)
    _summarise(result, samples, batch_sizes, infer_batch, jpeg_names, flops, tflops)

    if memory:
        log("peak memory (child processes)")
        mem_batch = 4 if quick else 32
        mem_steps = 1 if quick else 3
        result["peak_rss_mib"] = {"batch_size": mem_batch}
        for precision in precisions:
            result["peak_rss_mib"][f"keras_{precision}"] = bk.peak_rss_mib(
                "keras", precision, mem_batch, image_size, classes, mem_steps, intra)
        if torch_nets:
            result["peak_rss_mib"]["torchvision_float32"] = bk.peak_rss_mib(
                "torch", "float32", mem_batch, image_size, classes, mem_steps, threads,
                python=torch_python)
    for net in torch_nets.values():
        net.close()
    result["cpu"]["loadavg_1m_at_end"] = r(os.getloadavg()[0], 2)
    shutil.rmtree(workdir, ignore_errors=True)
    return result


def _summarise(result, samples, batch_sizes, infer_batch, jpeg_names, flops, tflops):
    """Images/s, latencies, efficiency against the matmul peaks and ratios
    to torchvision, from the interleaved samples, into `result`."""
    train = {}
    for key, times in samples.items():
        if key[0] == "train":
            _, name, b, src = key
            train.setdefault(name, {})[f"batch{b}_{src}_images_per_s"] = _ips(b, times)
    b = max(batch_sizes)
    for name in jpeg_names:
        mem = train[name][f"batch{b}_memory_images_per_s"]
        e2e = train[name][f"batch{b}_jpeg_images_per_s"]
        train[name][f"batch{b}_jpeg_input_overhead"] = r(1 - e2e / mem, 3)
    result["train"] = train
    inference = result["inference"] = {}
    for key, times in samples.items():
        if key[0] == "infer":
            inference[key[1]] = {f"batch{infer_batch}_images_per_s": _ips(infer_batch, times)}
    for key, times in samples.items():
        if key[0] == "latency":
            inference.setdefault(key[1], {})["batch1_latency_ms"] = r(
                1000 * harness.median(times), 1)
    if "savedmodel_float32" in inference:
        inference["savedmodel_float32"]["note"] = (
            "serving_image signature on uint8 images: includes crop/resize/normalise")

    # The peak is the best matmul call of any size and round (what the
    # hardware reaches); the model's figures are medians, so the fractions
    # are conservative.
    peak_rounds = samples["peak"]
    peaks = {dt: max(p[dt] for p in peak_rounds) for dt in ("float32", "bfloat16")}
    eff = {"matmul_peak_gflops": peaks,
           "matmul_peak_gflops_by_round": peak_rounds,
           "train_flops_note": "a training step counted as 3x the forward FLOPs"}
    for name, figures in train.items():
        ips = figures.get(f"batch{b}_memory_images_per_s")
        if not ips:
            continue
        gflops = ips * 3 * (tflops if name.startswith("torch") else flops) / 1e9
        peak = peaks["bfloat16" if "bfloat16" in name else "float32"]
        eff[f"{name}_train_batch{b}"] = {
            "gflops": r(gflops, 1), "fraction_of_peak": r(gflops / peak, 3),
            "fraction_of_float32_peak": r(gflops / peaks["float32"], 3)}
    for name, figures in inference.items():
        ips = figures.get(f"batch{infer_batch}_images_per_s")
        if not ips:
            continue
        gflops = ips * (tflops if name.startswith("torch") else flops) / 1e9
        peak = peaks["bfloat16" if "bfloat16" in name else "float32"]
        eff[f"{name}_inference_batch{infer_batch}"] = {"gflops": r(gflops, 1),
                                                        "fraction_of_peak": r(gflops / peak, 3)}
    result["efficiency"] = eff

    base = "torchvision_float32"
    if base not in train:
        return
    ratios = {}
    for name in list(train) + [n for n in inference if n not in train]:
        if name.startswith("torch"):
            continue
        entry = {}
        for bb in batch_sizes:
            k = f"batch{bb}_memory_images_per_s"
            if name in train and train[name].get(k) and train[base].get(k):
                entry[f"train_batch{bb}"] = r(train[name][k] / train[base][k], 2)
        ki = f"batch{infer_batch}_images_per_s"
        if name in inference and inference[name].get(ki):
            entry[f"inference_batch{infer_batch}"] = r(inference[name][ki] / inference[base][ki], 2)
            entry["latency_batch1"] = r(inference[name]["batch1_latency_ms"]
                                        / inference[base]["batch1_latency_ms"], 2)
        ratios[name] = entry
    result["ratios_vs_torchvision_float32"] = ratios


def main(argv=None):
    parser = harness.parser(__doc__)
    parser.add_argument("--mode", choices=("all", "profile", "peak"), default="all",
                        help="all: every measurement; profile: where a training step's time "
                             "goes; peak: matmul peaks only; default: all")
    harness.add_flags(
        parser, quick=None, image_size=224,
        batch_sizes=([16, 32], "training/inference batches (profile: the last)"),
        classes=(1000, "classes of the model"))
    parser.add_argument("--precisions", nargs="+",
                        choices=("float32", "mixed_bfloat16"), default=None,
                        help="default: float32, plus mixed_bfloat16 on CPUs with AVX512_BF16/AMX")
    torch_group = parser.add_mutually_exclusive_group()
    torch_group.add_argument("--torch", dest="torch", action="store_true", default=None,
                             help="run torchvision too (default: when importable)")
    torch_group.add_argument("--no-torch", dest="torch", action="store_false",
                             help="Keras only")
    harness.add_flags(parser, torch_python=(None, None, "this Python"))
    parser.add_argument("--torch-channels-last", action="store_true",
                        help="torchvision in channels_last memory format; default: NCHW")
    harness.add_flags(parser, rounds=(None, "interleaved rounds", "2 (1 with --quick)"),
                      steps=(None, None, "5 (2 with --quick)"),
                      warmup=(None, None, "2 (1 with --quick)"))
    parser.add_argument("--intra-op-threads", type=int, default=None,
                        help="TensorFlow intra-op threads; default: one per core")
    parser.add_argument("--inter-op-threads", type=int, default=None,
                        help="TensorFlow inter-op threads; default: one per core")
    parser.add_argument("--jit", action="store_true", help="also float32 with jit_compile=True")
    parser.add_argument("--no-jpeg", dest="jpeg", action="store_false",
                        help="skip the end-to-end training from JPEG files")
    parser.add_argument("--no-jpeg-cache", dest="jpeg_cache", action="store_false",
                        help="read and decode the files every step (no tf.data cache)")
    parser.add_argument("--no-export", dest="export", action="store_false",
                        help="skip SavedModel and TFLite inference")
    parser.add_argument("--no-memory", dest="memory", action="store_false",
                        help="skip peak RSS of batch-32 training (child processes)")
    parser.add_argument("--precision", default="float32", choices=("float32", "mixed_bfloat16"),
                        help="--mode profile: the precision; default: float32")
    harness.add_flags(parser, output=(None, None, "stdout only"))
    args = parser.parse_args(argv)

    if args.mode == "peak":
        harness.configure_threads(args.intra_op_threads, args.inter_op_threads)
        result = {"cpu": harness.cpu_info(),
                  "matmul_peak_gflops": harness.matmul_peaks(
                      (256, 512) if args.quick else (1024, 2048, 4096))}
    elif args.mode == "profile":
        harness.configure_threads(args.intra_op_threads, args.inter_op_threads)
        batch = args.batch_sizes[-1]
        model = bk.build_keras(args.image_size, args.precision, args.classes)
        dataset = bk.memory_dataset(model, batch, args.image_size, args.classes)
        result = {"cpu": harness.cpu_info(), "precision": args.precision,
                  "batch_size": batch, "image_size": args.image_size,
                  "profile": bk.profile_train_step(model, dataset, steps=1 if args.quick else 2)}
    else:
        result = run_benchmark(
            quick=args.quick, image_size=args.image_size, batch_sizes=tuple(args.batch_sizes),
            precisions=args.precisions, torch=args.torch, rounds=args.rounds, steps=args.steps,
            warmup=args.warmup, intra=args.intra_op_threads, inter=args.inter_op_threads,
            jit=args.jit, jpeg=args.jpeg, export=args.export, memory=args.memory,
            classes=args.classes, jpeg_cache=args.jpeg_cache,
            torch_channels_last=args.torch_channels_last, torch_python=args.torch_python)
    return harness.emit(result, args.output)


if __name__ == "__main__":
    main()
