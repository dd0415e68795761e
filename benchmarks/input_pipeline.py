"""Throughput of the training input pipeline on JPEG files (prints JSON).

Writes synthetic 500x375 photo-like JPEGs (ImageNet's typical size) to a
temporary image folder, then times `data.build_dataset(training=True)`:
read, fused decode-and-crop, resize, flip, colour distortions, normalise.

    python benchmarks/input_pipeline.py [--quick]
"""
import os
import tempfile
import time

import tensorflow as tf

import harness  # benchmarks/harness.py, beside this file
from benchmarking import write_jpegs  # benchmarks/benchmarking.py, beside this file
from keras_googlenet.data import pipeline as data
from keras_googlenet.data import sources


def measure(root, image_size, batch_size, warmup_batches, timed_batches):
    source = sources.folder_source(root)
    ds = data.build_dataset(source, training=True, image_size=image_size,
                            batch_size=batch_size, seed=0, repeat=True, cache=True)
    iterator = iter(ds)
    for _ in range(warmup_batches):  # Fills the cache and AUTOTUNE settles.
        next(iterator)
    start = time.perf_counter()
    for _ in range(timed_batches):
        next(iterator)
    elapsed = time.perf_counter() - start
    return timed_batches * batch_size / elapsed


def main(argv=None):
    parser = harness.parser(__doc__)
    harness.add_flags(parser, quick=(None, "fewer files and batches (64 files instead of 256)"),
                      image_size=(224, "crop size"), batch_size=32)
    args = parser.parse_args(argv)
    num_files = 64 if args.quick else 256
    warmup, timed = (4, 8) if args.quick else (12, 40)
    with tempfile.TemporaryDirectory() as root:
        write_jpegs(root, num_files)
        images_per_s = measure(root, args.image_size, args.batch_size, warmup, timed)
    cores = os.cpu_count()
    threads = tf.config.threading.get_intra_op_parallelism_threads() or cores
    result = {
        "benchmark": "train_input_pipeline_jpeg",
        "quick": args.quick,
        "files": num_files,
        "source_size": [375, 500],
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "timed_images": timed * args.batch_size,
        "images_per_s": round(images_per_s, 1),
        "cpu_count": cores,
        "tf_threads": threads,
        "images_per_s_per_core": round(images_per_s / cores, 1),
        "tensorflow": tf.__version__,
    }
    return harness.emit(result)


if __name__ == "__main__":
    main()
