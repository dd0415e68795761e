"""keras_googlenet: GoogLeNet (Inception v1, Szegedy et al. 2015) for Keras 3."""
from setuptools import find_packages, setup

CONVERT = ["tf2onnx>=1.17", "onnx", "onnxruntime"]
SERVING = ["tensorflow-serving-api"]

setup(
    name="keras_googlenet",
    version="0.1.0",
    description=(
        "GoogLeNet (Inception v1) as in the paper, for Keras 3 / TensorFlow: "
        "model, tf.data pipelines, training, evaluation and serving export."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["keras_googlenet", "keras_googlenet.*"]),
    package_data={"keras_googlenet": ["models/resources/*.json", "recipes/*.json"]},
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
        "tensorflow-datasets",
        # The embedded default dataset: scikit-learn ships the UCI handwritten
        # digits inside its wheel, so the main job runs with no network.
        "scikit-learn",
        "pillow",
        "matplotlib",
        # TF 2.21 no longer pulls TensorBoard in; the TensorBoard callback needs it.
        "tensorboard",
    ],
    extras_require={
        # TFLite needs nothing extra (tf.lite); ONNX export and its check do.
        "convert": CONVERT,
        # The gRPC client example (examples/grpc_client.py).
        "serving": SERVING,
        # torchvision's googlenet side by side in benchmarks/benchmark.py.
        "bench": ["torch", "torchvision"],
        # pytest-xdist: pytest.ini runs the suite in one process per core
        # (at most 4); most tests wait on tracing and subprocesses, not on
        # both cores, so two processes on CI's 2 cores take 0.6x the time.
        "test": ["pytest", "pytest-xdist"] + CONVERT + SERVING,
    },
    entry_points={"console_scripts": ["googlenet=keras_googlenet.cli:main"]},
)
