"""BatchNormalization, InstanceNormalization, LRN (channels-last inside)."""

from __future__ import annotations

import tensorflow as tf

from ..errors import OnnxImportError
from ..layout import Value, channels_last
from ..registry import handler


def _channels_last(x: Value):
    cl = channels_last(x.rank)
    return tf.convert_to_tensor(x.as_perm(cl)), cl


@handler("BatchNormalization")
def batch_normalization(ctx, node, x, scale, bias, mean, var):
    """y = scale * (x - mean) / sqrt(var + eps) + bias, per channel.

    ``ctx.bn_mode == "train"`` normalises with the batch mean and *biased* variance (as
    PyTorch does in training mode) instead of the running statistics; running statistics
    are never updated (the import is functional).
    """
    if node.since < 9 and node.attr("spatial", 1) != 1:
        raise OnnxImportError(f"{node.describe()}: spatial=0 BatchNormalization is not supported")
    if node.attr("training_mode", 0) and any(node.outputs[1:]):
        raise OnnxImportError(f"{node.describe()}: training-mode outputs are not supported")
    xs, cl = _channels_last(x)
    eps = float(node.attr("epsilon", 1e-5))
    gamma, beta = scale.tensor(xs.dtype), bias.tensor(xs.dtype)
    if ctx.bn_mode == "train":
        m, v = tf.nn.moments(xs, axes=list(range(x.rank - 1)))
    else:
        m, v = mean.tensor(xs.dtype), var.tensor(xs.dtype)
        if x.rank == 4 and xs.dtype in (tf.float32, tf.float16, tf.bfloat16):
            # One fused kernel (FusedBatchNormV3, inference form), which TF's graph optimiser
            # can also fuse into the preceding convolution; it has first- and second-order
            # gradients. float64 has no fused kernel and takes the composite path below.
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                xs, gamma, beta, mean=m, variance=v, epsilon=eps, is_training=False
            )
            return Value(y, cl)
    y = tf.nn.batch_normalization(xs, m, v, beta, gamma, eps)
    return Value(y, cl)


@handler("InstanceNormalization")
def instance_normalization(ctx, node, x, scale, bias):
    xs, cl = _channels_last(x)
    eps = float(node.attr("epsilon", 1e-5))
    m, v = tf.nn.moments(xs, axes=list(range(1, x.rank - 1)), keepdims=True)
    y = (xs - m) * tf.math.rsqrt(v + eps) * scale.tensor(xs.dtype) + bias.tensor(xs.dtype)
    return Value(y, cl)


@handler("LRN")
def lrn(ctx, node, x):
    """y = x / (bias + alpha / size * sum of x^2 over a window of ``size`` channels)^beta.

    The window spans channels c - floor((size - 1) / 2) .. c + ceil((size - 1) / 2). An odd
    size in float32 runs TF's LRN kernel; float64 (which has no LRN or LRNGrad kernel) and
    even sizes (an asymmetric window) take the composite form: the squares padded with zeros
    along the channels, summed over ``size`` shifted slices.
    """
    size = int(node.attr("size"))
    if size < 1:
        raise OnnxImportError(f"{node.describe()}: LRN size must be >= 1; got {size}")
    if x.rank != 4:
        raise OnnxImportError(f"{node.describe()}: LRN needs a 4-D input")
    xs, cl = _channels_last(x)
    bias = float(node.attr("bias", 1.0))
    alpha = float(node.attr("alpha", 1e-4))
    beta = float(node.attr("beta", 0.75))
    if size % 2 == 1 and xs.dtype in (tf.float32, tf.float16, tf.bfloat16):
        y = tf.nn.local_response_normalization(
            xs, depth_radius=(size - 1) // 2, bias=bias, alpha=alpha / size, beta=beta
        )
        return Value(y, cl)
    return Value(_lrn_composite(xs, size, bias, alpha, beta), cl)


def _lrn_composite(xs, size: int, bias: float, alpha: float, beta: float):
    """LRN on a channels-last tensor with basic ops (any float type, any size)."""
    before = (size - 1) // 2
    after = size - 1 - before
    channels = xs.shape[-1]
    if channels is None:
        raise OnnxImportError("LRN needs a static channel count")
    sq = tf.pad(tf.square(xs), [[0, 0], [0, 0], [0, 0], [before, after]])
    total = sq[..., 0:channels]
    for k in range(1, size):
        total = total + sq[..., k : k + channels]
    dtype = xs.dtype
    scale = tf.constant(bias, dtype) + tf.constant(alpha / size, dtype) * total
    return xs * tf.pow(scale, tf.constant(-beta, dtype))
