"""Counting the multiply-adds of a model from its layers.

The paper counts convolutions and fully connected layers ("about 1.5 billion
multiply-adds"); pooling, LRN and ReLU are not counted, and neither are they
here.
"""
import math

from keras import layers


def layer_multiply_adds(layer):
    """Multiply-adds of one Conv2D or Dense layer for one example (0 otherwise)."""
    if isinstance(layer, layers.Conv2D):
        out_h, out_w, out_c = layer.output.shape[1:]
        if out_h is None or out_w is None:
            raise ValueError(
                "Counting multiply-adds needs a fixed input size. Received a "
                f"model whose layer {layer.name!r} has output shape {layer.output.shape}"
            )
        in_c = layer.input.shape[-1]
        return out_h * out_w * out_c * in_c * math.prod(layer.kernel_size)
    if isinstance(layer, layers.Dense):
        return layer.input.shape[-1] * layer.units
    return 0


def multiply_adds(model, per_layer=False):
    """Total multiply-adds of `model` for one example.

    Args:
        model: a built Keras model with a fixed input size.
        per_layer: also return {layer name: multiply-adds}.

    Returns:
        The total, or `(total, per_layer_dict)`.
    """
    counts = {layer.name: layer_multiply_adds(layer) for layer in model.layers}
    counts = {k: v for k, v in counts.items() if v}
    total = sum(counts.values())
    return (total, counts) if per_layer else total
