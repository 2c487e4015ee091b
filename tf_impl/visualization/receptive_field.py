"""The receptive field of a layer's units, read from the ONNX graph, and measured.

:func:`receptive_field` asks the model (``model.receptive_field``, computed by
``converters/onnx_to_tf/receptive_field.py``), which follows every path from the input to the
layer: Conv, MaxPool and AveragePool change the field by their kernel, stride, pads and
dilations; pointwise ops, BatchNorm and ReLU keep it; Add/Concat of branches (ResNets) take the
union of the branches' fields, i.e. the largest one; Pad and spatial Slice shift and stride it;
global pooling makes it the whole image. :func:`gradient_support` measures the field
empirically (where the gradient of one unit with respect to the input is non-zero); the tests
check that the two agree. The field is the bounding box of every input pixel a unit's windows
can reach: exact for units whose field lies inside the image (and at the borders of the zoo's
CNNs), an upper bound at the border of graphs where an intermediate layer's padding hides
border pixels from a unit or a dilated kernel skips them. Used by :mod:`.patches` to crop each
top activation to its field.
"""

from __future__ import annotations

import numpy as np

from converters.onnx_to_tf import contract_model
from converters.onnx_to_tf.errors import GraphQueryError
from converters.onnx_to_tf.receptive_field import ReceptiveField, tap_shapes

from .. import images as imgs
from . import checks
from .checks import VisualizationError

__all__ = ["ReceptiveField", "gradient_support", "receptive_field", "tap_shapes"]


def receptive_field(model, layer: str, input_hw: tuple[int, int] | None = None
                    ) -> ReceptiveField:
    """The receptive field of ``layer``'s units, from the ONNX graph: the model's answer
    (the rules of Araujo, Norris & Sim, Distill 2019; see
    ``converters/onnx_to_tf/receptive_field.py``), an error naming the op that stops it.

    Args:
        layer: a 4-D layer (alias or tensor name).
        input_hw: the input size; needed only where the graph's geometry depends on it
            (``auto_pad=SAME``, global pooling, negative Slice starts). Defaults to the model's
            fixed size, else 224.
    """
    model = contract_model(model)
    checks.check_layer(model, layer)  # names the valid layers otherwise
    try:
        return model.receptive_field(layer, input_hw)
    except GraphQueryError as err:
        raise VisualizationError(str(err)) from None


def gradient_support(model, layer: str, position: tuple[int, int], images, *,
                     channel: int | None = None, seed: int = 0, preprocessing=None
                     ) -> np.ndarray:
    """Where the gradient of unit ``position`` (y, x) of ``layer`` with respect to the input is
    non-zero, over a batch of images (union over the batch and the colour channels):
    the empirical receptive field, (H, W) bool.

    ``channel=None`` differentiates a fixed random combination of all channels (so no path is
    missed because one channel happens to be dead); union over several images (e.g. noise)
    keeps dead ReLUs from hiding parts of the field.
    """
    model = contract_model(model)
    import tensorflow as tf

    name = checks.check_layer(model, layer)
    pixels = imgs.as_pixels(images).pixels
    checks.check_image_size(model, pixels)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    x = tf.constant(imgs.normalize(pixels, mean, std))
    with tf.GradientTape() as tape:
        tape.watch(x)
        a = model(x, taps=[name], compiled=False)[name]
        if a.shape.rank != 4:
            raise VisualizationError(f"layer {layer!r} is not a feature map: {tuple(a.shape)}")
        y, xx = position
        if not (0 <= y < a.shape[2] and 0 <= xx < a.shape[3]):
            raise VisualizationError(
                f"position {position} is outside layer {layer!r}'s {a.shape[2]}x{a.shape[3]} map")
        unit = a[:, :, y, xx]
        if channel is None:
            weights = np.random.default_rng(seed).standard_normal(unit.shape[1])
            score = tf.reduce_sum(unit * tf.constant(weights, unit.dtype))
        else:
            score = tf.reduce_sum(unit[:, checks.check_channel(layer, channel, unit.shape[1])])
    g = tape.gradient(score, x).numpy()
    return np.any(g != 0, axis=(0, 1))
