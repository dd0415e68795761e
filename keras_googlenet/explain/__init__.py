"""Class-activation maps (Grad-CAM) of GoogLeNet's Inception blocks.

    maps = keras_googlenet.explain.grad_cam(model, images)        # (N, H, W) in [0, 1]
    keras_googlenet.explain.explain_images("model.keras", ["cat.jpg"], top=3)

Importing this package imports neither TensorFlow nor Matplotlib.
"""
from keras_googlenet.explain.gradcam import DEFAULT_LAYER, GradCam, compute, grad_cam, scorer
from keras_googlenet.explain.images import explain_images, overlay

__all__ = ["DEFAULT_LAYER", "GradCam", "compute", "explain_images", "grad_cam", "overlay",
           "scorer"]
