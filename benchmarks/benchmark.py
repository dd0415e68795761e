"""GoogLeNet speed benchmark, optionally beside torchvision (prints JSON).

Training throughput (aux heads, full loss) at batch 16 and 32 from memory
and end to end from JPEG files, inference at batch 32 and latency at batch 1
(Keras model, SavedModel, TFLite), FLOPs and the fraction of this CPU's
float32/bfloat16 matmul peak, peak RSS of batch-32 training. Variants are
interleaved round by round, so compare ratios within one run.

    python benchmarks/benchmark.py                  # full run (~6 min on a quiet 2-core machine)
    python benchmarks/benchmark.py --quick          # smoke run
    python benchmarks/benchmark.py --no-torch       # Keras only
    python benchmarks/benchmark.py --mode profile   # per-op profile of a training step
    python benchmarks/benchmark.py --mode peak      # matmul peaks only

torchvision runs when `torch` and `torchvision` are importable. Needs
`keras_googlenet` installed (any install, editable or not) or importable.
"""
import argparse
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import benchmarking  # noqa: E402  (benchmarks/benchmarking.py, beside this file)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("all", "profile", "peak"), default="all",
                        help="all: every measurement; profile: where a training step's time "
                             "goes; peak: matmul peaks only; default: all")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny and short")
    parser.add_argument("--image-size", type=int, default=224,
                        help="square input size; default: 224")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32],
                        help="training/inference batches (profile: the last); default: 16 32")
    parser.add_argument("--classes", type=int, default=1000, help="default: 1000")
    parser.add_argument("--precisions", nargs="+",
                        choices=("float32", "mixed_bfloat16"), default=None,
                        help="default: float32, plus mixed_bfloat16 on CPUs with AVX512_BF16/AMX")
    torch_group = parser.add_mutually_exclusive_group()
    torch_group.add_argument("--torch", dest="torch", action="store_true", default=None,
                             help="run torchvision too (default: when importable)")
    torch_group.add_argument("--no-torch", dest="torch", action="store_false",
                             help="Keras only")
    parser.add_argument("--torch-channels-last", action="store_true",
                        help="torchvision in channels_last memory format; default: NCHW")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds; default: 2 (1 with --quick)")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per round; default: 5 (2 with --quick)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps first; default: 2 (1 with --quick)")
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
    parser.add_argument("--output", help="also write the JSON here; default: stdout only")
    args = parser.parse_args(argv)

    if args.mode == "peak":
        benchmarking.configure_threads(args.intra_op_threads, args.inter_op_threads)
        result = {"cpu": benchmarking.cpu_info(),
                  "matmul_peak_gflops": benchmarking.matmul_peaks(
                      (256, 512) if args.quick else (1024, 2048, 4096))}
    elif args.mode == "profile":
        benchmarking.configure_threads(args.intra_op_threads, args.inter_op_threads)
        batch = args.batch_sizes[-1]
        model = benchmarking.build_keras(args.image_size, args.precision, args.classes)
        dataset = benchmarking.memory_dataset(model, batch, args.image_size, args.classes)
        result = {"cpu": benchmarking.cpu_info(), "precision": args.precision,
                  "batch_size": batch, "image_size": args.image_size,
                  "profile": benchmarking.profile_train_step(model, dataset,
                                                             steps=1 if args.quick else 2)}
    else:
        result = benchmarking.run_benchmark(
            quick=args.quick, image_size=args.image_size, batch_sizes=tuple(args.batch_sizes),
            precisions=args.precisions, torch=args.torch, rounds=args.rounds, steps=args.steps,
            warmup=args.warmup, intra=args.intra_op_threads, inter=args.inter_op_threads,
            jit=args.jit, jpeg=args.jpeg, export=args.export, memory=args.memory,
            classes=args.classes, jpeg_cache=args.jpeg_cache,
            torch_channels_last=args.torch_channels_last)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    return result


if __name__ == "__main__":
    main()
