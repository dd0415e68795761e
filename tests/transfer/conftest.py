import pytest


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory):
    """A small digits model (classes 0-4, 32x32, no auxiliary heads) trained
    once for the tests of this folder: 320 steps, enough for the batch-norm
    moving statistics (momentum 0.99) to forget their initial values, which
    frozen-batch-norm fine-tuning relies on."""
    from keras_googlenet.train import config as config_lib
    from keras_googlenet.train import trainer

    results = trainer.run(config_lib.build(dict(
        classes="0,1,2,3,4", image_size=32, aux_classifiers=False, min_crop_area=0.5,
        ema_momentum=0, epochs=8, steps_per_epoch=40, export_dir="", verbose=0,
        output_dir=str(tmp_path_factory.mktemp("digits_0_4")))))
    print("pretrained on digits 0-4:", results["val"])
    return results["model_path"]
