"""Element-wise arithmetic with ONNX (numpy) broadcasting under layout tags.

When every input is a static value the result is computed with numpy at trace time, so the
shape arithmetic exporters emit (Shape -> Gather -> Mul -> Concat -> Reshape) stays static.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..graph import Context
from ..layout import Value
from ..registry import handler


def _int_div(a, b):
    return np.trunc(np.true_divide(a, b)).astype(np.result_type(a, b))


_BINARY = {
    "Add": (np.add, tf.add),
    "Sub": (np.subtract, tf.subtract),
    "Mul": (np.multiply, tf.multiply),
    "Div": (None, tf.divide),
    "Pow": (np.power, tf.pow),
    "Max": (np.maximum, tf.maximum),
    "Min": (np.minimum, tf.minimum),
    "Equal": (np.equal, tf.equal),
    "Less": (np.less, tf.less),
    "Greater": (np.greater, tf.greater),
}


def _div_np(a, b):
    if np.issubdtype(np.result_type(a, b), np.integer):
        return _int_div(a, b)
    return np.true_divide(a, b).astype(np.result_type(a, b))


def _apply(op: str, values: list[Value]) -> Value:
    np_fn, tf_fn = _BINARY[op]
    if all(v.is_const for v in values):
        np_fn = np_fn or _div_np
        out = values[0].logical()
        for v in values[1:]:
            out = np_fn(out, v.logical())
        return Value(np.asarray(out))
    dtype = tf.as_dtype(next(v.data.dtype for v in values if not v.is_const))
    datas, perm = Context.broadcast(values, dtype)  # also casts a Pow exponent to the base type
    out = datas[0]
    for d in datas[1:]:
        out = tf_fn(out, d)
    return Value(out, perm)


def _binary(op: str):
    def fn(ctx, node, a, b):
        if op == "Div" and not (a.is_const and b.is_const):
            dt = a.data.dtype if not a.is_const else b.data.dtype
            if tf.as_dtype(dt).is_integer:
                datas, perm = ctx.broadcast([a, b], tf.as_dtype(dt))
                return Value(tf.truncatediv(datas[0], datas[1]), perm)
        return _apply(op, [a, b])

    fn.__name__ = op.lower()
    return fn


def _variadic(op: str):
    def fn(ctx, node, *xs):
        return _apply(op, list(xs))

    fn.__name__ = op.lower()
    return fn


for _op in ("Add", "Sub", "Mul", "Div", "Pow", "Equal", "Less", "Greater"):
    handler(_op)(_binary(_op))
for _op in ("Max", "Min"):
    handler(_op)(_variadic(_op))


@handler("Sum")
def sum_(ctx, node, *xs):
    return _apply("Add", list(xs))


@handler("Mean")
def mean(ctx, node, *xs):
    total = _apply("Add", list(xs))
    return ctx.unary(total, lambda t: t / tf.cast(len(xs), t.dtype))


_UNARY = {
    "Neg": (np.negative, tf.negative),
    "Abs": (np.abs, tf.abs),
    "Sqrt": (np.sqrt, tf.sqrt),
    "Exp": (np.exp, tf.exp),
    "Log": (np.log, tf.math.log),
    "Reciprocal": (np.reciprocal, tf.math.reciprocal),
    "Floor": (np.floor, tf.floor),
    "Ceil": (np.ceil, tf.math.ceil),
    "Erf": (None, tf.math.erf),
    "Sin": (np.sin, tf.sin),
    "Cos": (np.cos, tf.cos),
    "Not": (np.logical_not, tf.logical_not),
}


def _unary(op: str):
    np_fn, tf_fn = _UNARY[op]

    def fn(ctx, node, x):
        if x.is_const and np_fn is not None:
            return Value(np.asarray(np_fn(x.logical())))
        return ctx.unary(x, tf_fn)

    fn.__name__ = op.lower()
    return fn


for _op in _UNARY:
    handler(_op)(_unary(_op))


@handler("Where")
def where(ctx, node, cond, a, b):
    if cond.is_const and a.is_const and b.is_const:
        return Value(np.where(cond.logical(), a.logical(), b.logical()))
    dtype = tf.as_dtype(next(v.data.dtype for v in (a, b, cond) if not v.is_const))
    if dtype == tf.bool:
        dtype = tf.as_dtype(a.data.dtype)
    (c, x, y), perm = ctx.broadcast([cond, a, b])
    return Value(tf.where(tf.cast(c, tf.bool), tf.cast(x, dtype), tf.cast(y, dtype)), perm)
