"""Gemm and MatMul (logical layout; transposes folded into the matmul call)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..layout import Value
from ..registry import handler


@handler("Gemm")
def gemm(ctx, node, a, b, c=None):
    """Y = alpha * A' B' + beta * C with A' = A^T if transA, B' = B^T if transB."""
    alpha, beta = float(node.attr("alpha", 1.0)), float(node.attr("beta", 1.0))
    ta, tb = bool(node.attr("transA", 0)), bool(node.attr("transB", 0))
    at = a.tensor()
    y = tf.linalg.matmul(at, b.tensor(at.dtype), transpose_a=ta, transpose_b=tb)
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        ct = c.tensor(y.dtype)
        if ct.shape.rank == 2 and ct.shape[0] == 1:  # (1, N) bias: keep it 1-D for TF's fusions
            ct = tf.reshape(ct, [-1])
        y = y + (ct if beta == 1.0 else beta * ct)
    return Value(y)


@handler("MatMul")
def matmul(ctx, node, a, b):
    """numpy.matmul semantics: batch dims broadcast; 1-D operands are promoted and squeezed."""
    if a.is_const and b.is_const:
        return Value(np.matmul(a.logical(), b.logical()))
    at = a.tensor()
    bt = b.tensor(at.dtype)
    squeeze = []
    if at.shape.rank == 1:
        at = at[None, :]
        squeeze.append(-2)
    if bt.shape.rank == 1:
        bt = bt[:, None]
        squeeze.append(-1)
    y = tf.linalg.matmul(at, bt)
    if squeeze:
        y = tf.squeeze(y, squeeze)
    return Value(y)
