"""Reductions. Axes are remapped through the layout tag, so a channels-last tensor is reduced
in place (e.g. global average pooling written as ReduceMean over H, W)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..layout import Value
from ..registry import handler

# op -> (numpy fn, tf fn, version from which ``axes`` is an input instead of an attribute)
_REDUCE = {
    "ReduceMean": (np.mean, tf.reduce_mean, 18),
    "ReduceSum": (np.sum, tf.reduce_sum, 13),
    "ReduceMax": (np.max, tf.reduce_max, 18),
    "ReduceMin": (np.min, tf.reduce_min, 18),
    "ReduceProd": (np.prod, tf.reduce_prod, 18),
    "ReduceL2": (None, lambda t, axis, keepdims: tf.sqrt(tf.reduce_sum(t * t, axis, keepdims)), 18),
    "ReduceSumSquare": (None, lambda t, axis, keepdims: tf.reduce_sum(t * t, axis, keepdims), 18),
}


def _reduce(op: str):
    np_fn, tf_fn, axes_input_since = _REDUCE[op]

    def fn(ctx, node, x, axes_in=None):
        keepdims = bool(node.attr("keepdims", 1))
        if node.since >= axes_input_since:
            axes = ctx.ints(axes_in, node, "axes")
        else:
            axes = node.attr("axes")
        if not axes:
            if node.attr("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.rank))
        axes = sorted({int(a) % x.rank for a in axes})
        if x.is_const and np_fn is not None:
            return Value(np.asarray(np_fn(x.logical(), axis=tuple(axes), keepdims=keepdims)))
        perm = x.perm_or_identity
        actual_axes = [perm.index(a) for a in axes]
        data = tf.convert_to_tensor(x.data)
        reduce_fn = tf_fn
        if data.dtype == tf.bool and op in ("ReduceMax", "ReduceMin"):
            reduce_fn = tf.reduce_any if op == "ReduceMax" else tf.reduce_all
        y = reduce_fn(data, axis=actual_axes, keepdims=keepdims)
        if keepdims:
            return Value(y, x.perm)
        kept = [p for i, p in enumerate(perm) if i not in actual_axes]
        renum = {a: i for i, a in enumerate(sorted(kept))}
        return Value(y, tuple(renum[p] for p in kept))

    fn.__name__ = op.lower()
    return fn


for _op in _REDUCE:
    handler(_op)(_reduce(_op))
