"""`googlenet train`: flags from `config.TrainConfig`, work in `train.run`."""
import json

from keras_googlenet.train import config as config_lib


def add_arguments(parser):
    config_lib.add_arguments(parser)


def run(args):
    # Validate every flag before importing TensorFlow or touching data.
    config = config_lib.from_args(args)
    from keras_googlenet.train import trainer as train

    results = train.run(config)
    summary = {k: v for k, v in results.items() if k != "history"}
    print(json.dumps(summary, indent=2, default=str))
    return 0
