"""MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool: channels-last, explicit geometry.

MaxPool pads with -inf; AveragePool divides by the number of counted pixels in each window
(``count_include_pad``), computed statically; ``ceil_mode`` adds end padding but drops a
window that would start entirely in the padding, as PyTorch and onnxruntime do.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from ..errors import OnnxImportError
from ..layout import Value, channels_last
from ..registry import handler
from .geometry import conv_params, spatial_pads


def _geometry(node, x: Value):
    n = x.rank - 2
    if n not in (1, 2):
        raise OnnxImportError(f"{node.describe()}: only 1-D and 2-D pooling are supported")
    kernel = [int(k) for k in node.attr("kernel_shape")]
    strides, dilations = conv_params(node, n)
    sizes = x.logical_shape[2:]
    if any(s is None for s in sizes):
        raise OnnxImportError(f"{node.describe()}: pooling needs static spatial sizes")
    pads = spatial_pads(node, sizes, kernel, strides, dilations)
    ceil_mode = bool(node.attr("ceil_mode", 0))
    outs, extras = [], []
    for size, k, s, d, (pb, pe) in zip(sizes, kernel, strides, dilations, pads, strict=True):
        eff = (k - 1) * d + 1
        span = size + pb + pe - eff
        out = (math.ceil(span / s) if ceil_mode else span // s) + 1
        if ceil_mode and (out - 1) * s >= size + pb:
            out -= 1  # the last window would start in the end padding
        extras.append(max(0, (out - 1) * s + eff - (size + pb + pe)))
        outs.append(out)
    return n, kernel, strides, dilations, pads, extras, outs


def _nhwc_2d(x: Value, n: int):
    xs = tf.convert_to_tensor(x.as_perm(channels_last(x.rank)))
    return tf.expand_dims(xs, 1) if n == 1 else xs


def _from_2d(y, n: int, rank: int) -> Value:
    return Value(tf.squeeze(y, 1) if n == 1 else y, channels_last(rank))


def _lift(values, n, fill):
    return [fill, *values] if n == 1 else list(values)


@handler("MaxPool")
def max_pool(ctx, node, x):
    if len(node.outputs) > 1 and node.outputs[1]:
        raise OnnxImportError(f"{node.describe()}: the Indices output of MaxPool is not supported")
    n, kernel, strides, dilations, pads, extras, _ = _geometry(node, x)
    xs = _nhwc_2d(x, n)
    kernel, strides, dilations = (_lift(v, n, 1) for v in (kernel, strides, dilations))
    pads = _lift(pads, n, (0, 0))
    extras = _lift(extras, n, 0)
    paddings = [[0, 0], *[[pb, pe + e] for (pb, pe), e in zip(pads, extras)], [0, 0]]
    if any(any(p) for p in paddings):
        lowest = float("-inf") if xs.dtype.is_floating else xs.dtype.min
        xs = tf.pad(xs, paddings, constant_values=tf.cast(lowest, xs.dtype))
    if dilations == [1, 1]:
        y = tf.nn.max_pool2d(xs, kernel, strides, "VALID")
    else:
        patches = tf.image.extract_patches(
            xs, [1, *kernel, 1], [1, *strides, 1], [1, *dilations, 1], "VALID"
        )
        shape = tf.shape(patches)
        channels = xs.shape[-1]
        patches = tf.reshape(
            patches, [shape[0], shape[1], shape[2], kernel[0] * kernel[1], channels]
        )
        y = tf.reduce_max(patches, axis=3)
    return _from_2d(y, n, x.rank)


def _counts(size: int, k: int, s: int, pb: int, pe: int, extra: int, include_pad: bool, out: int):
    """Number of counted positions in each window along one axis."""
    counted = np.zeros(size + pb + pe + extra)
    lo, hi = (0, size + pb + pe) if include_pad else (pb, pb + size)
    counted[lo:hi] = 1
    return np.array([counted[o * s : o * s + k].sum() for o in range(out)])


@handler("AveragePool")
def average_pool(ctx, node, x):
    n, kernel, strides, dilations, pads, extras, outs = _geometry(node, x)
    if any(d != 1 for d in dilations):
        raise OnnxImportError(f"{node.describe()}: dilated AveragePool is not supported")
    include_pad = bool(node.attr("count_include_pad", 0))
    xs = _nhwc_2d(x, n)
    sizes = x.logical_shape[2:]
    divisor = np.ones([1])
    exact = True
    for size, k, s, (pb, pe), e, o in zip(sizes, kernel, strides, pads, extras, outs, strict=True):
        c = _counts(size, k, s, pb, pe, e, include_pad, o)
        exact = exact and bool(np.all(c == k))
        divisor = np.multiply.outer(divisor, c)
    divisor = divisor.reshape(outs)
    kernel2, strides2 = _lift(kernel, n, 1), _lift(strides, n, 1)
    paddings = [
        [0, 0],
        *[[pb, pe + e] for (pb, pe), e in zip(_lift(pads, n, (0, 0)), _lift(extras, n, 0))],
        [0, 0],
    ]
    if any(any(p) for p in paddings):
        xs = tf.pad(xs, paddings)
    y = tf.nn.avg_pool2d(xs, kernel2, strides2, "VALID")
    if not exact:  # windows at the border count fewer pixels: rescale mean -> sum -> mean
        area = float(np.prod(kernel))
        scale = (area / divisor).reshape(_lift(outs, n, 1))  # float64: cast once, below
        y = y * tf.constant(scale[None, :, :, None], dtype=y.dtype)
    return _from_2d(y, n, x.rank)


@handler("GlobalAveragePool")
def global_average_pool(ctx, node, x):
    cl = channels_last(x.rank)
    xs = tf.convert_to_tensor(x.as_perm(cl))
    return Value(tf.reduce_mean(xs, axis=list(range(1, x.rank - 1)), keepdims=True), cl)


@handler("GlobalMaxPool")
def global_max_pool(ctx, node, x):
    cl = channels_last(x.rank)
    xs = tf.convert_to_tensor(x.as_perm(cl))
    return Value(tf.reduce_max(xs, axis=list(range(1, x.rank - 1)), keepdims=True), cl)
