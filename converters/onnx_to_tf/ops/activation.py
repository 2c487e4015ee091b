"""Activations. Relu honours ``ctx.relu_mode`` (guided backprop / deconvnet backward rules),
so every Relu node of an imported graph is covered, whatever layer type produced it."""

from __future__ import annotations

import tensorflow as tf

from ..layout import Value
from ..registry import handler


@tf.custom_gradient
def _guided_relu(x):
    y = tf.nn.relu(x)

    def grad(dy):  # Springenberg et al. 2015: pass only positive gradients through positive inputs
        return dy * tf.cast(x > 0, dy.dtype) * tf.cast(dy > 0, dy.dtype)

    return y, grad


@tf.custom_gradient
def _deconvnet_relu(x):
    y = tf.nn.relu(x)

    def grad(dy):  # Zeiler & Fergus 2014: ReLU applied to the backward signal only
        return tf.nn.relu(dy)

    return y, grad


_RELU = {"standard": tf.nn.relu, "guided": _guided_relu, "deconvnet": _deconvnet_relu}


@handler("Relu")
def relu(ctx, node, x):
    return ctx.unary(x, _RELU[ctx.relu_mode])


@handler("LeakyRelu")
def leaky_relu(ctx, node, x):
    alpha = float(node.attr("alpha", 0.01))
    return ctx.unary(x, lambda t: tf.nn.leaky_relu(t, alpha))


@handler("PRelu")
def prelu(ctx, node, x, slope):
    (xs, sl), perm = ctx.broadcast([x, slope])
    return Value(tf.where(xs >= 0, xs, xs * sl), perm)


@handler("Sigmoid")
def sigmoid(ctx, node, x):
    return ctx.unary(x, tf.sigmoid)


@handler("Tanh")
def tanh(ctx, node, x):
    return ctx.unary(x, tf.tanh)


@handler("Elu")
def elu(ctx, node, x):
    alpha = float(node.attr("alpha", 1.0))
    return ctx.unary(x, lambda t: tf.where(t > 0, t, alpha * (tf.exp(tf.minimum(t, 0.0)) - 1)))


@handler("Selu")
def selu(ctx, node, x):
    alpha = float(node.attr("alpha", 1.67326319217681884765625))
    gamma = float(node.attr("gamma", 1.05070102214813232421875))
    return ctx.unary(
        x, lambda t: gamma * tf.where(t > 0, t, alpha * (tf.exp(tf.minimum(t, 0.0)) - 1))
    )


@handler("Softplus")
def softplus(ctx, node, x):
    return ctx.unary(x, tf.nn.softplus)


@handler("HardSigmoid")
def hard_sigmoid(ctx, node, x):
    alpha, beta = float(node.attr("alpha", 0.2)), float(node.attr("beta", 0.5))
    return ctx.unary(x, lambda t: tf.clip_by_value(alpha * t + beta, 0.0, 1.0))


@handler("HardSwish")
def hard_swish(ctx, node, x):
    # x * relu6(x + 3) / 6: four element-wise kernels where the clip form takes five
    return ctx.unary(x, lambda t: t * tf.nn.relu6(t + 3.0) * (1.0 / 6.0))


@handler("Clip")
def clip(ctx, node, x, lo=None, hi=None):
    if node.since < 11:
        lo_v, hi_v = node.attr("min", None), node.attr("max", None)
    else:  # bounds may be constants or runtime scalars
        lo_v = None if lo is None else lo.tensor()
        hi_v = None if hi is None else hi.tensor()

    def fn(t):
        if lo_v is not None:
            t = tf.maximum(t, tf.cast(lo_v, t.dtype))
        if hi_v is not None:
            t = tf.minimum(t, tf.cast(hi_v, t.dtype))
        return t

    return ctx.unary(x, fn)


def _softmax_like(node, x: Value, fn) -> Value:
    data = x.tensor()
    axis = int(node.attr("axis", 1 if node.since < 13 else -1)) % x.rank
    if node.since >= 13:
        return Value(fn(data, axis=axis))
    # before opset 13: coerce to 2-D at ``axis``, normalise over the trailing block
    shape = tf.shape(data)
    flat = tf.reshape(data, [tf.reduce_prod(shape[:axis]), tf.reduce_prod(shape[axis:])])
    return Value(tf.reshape(fn(flat, axis=-1), shape))


@handler("Softmax")
def softmax(ctx, node, x):
    return _softmax_like(node, x, tf.nn.softmax)


@handler("LogSoftmax")
def log_softmax(ctx, node, x):
    return _softmax_like(node, x, tf.nn.log_softmax)
