"""Element-wise ops broadcasting against NHWC-tagged tensors (constants, Constant nodes, graph
inputs, other convs), against onnxruntime.

Every graph is small and random (seeded numpy; builders in ``tests/onnx_builders.py``);
onnxruntime is the reference, at rtol 1e-3 / atol 1e-5 for single ops (the field's
operator-test tolerance) and a looser absolute tolerance for multi-op chains.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_builders import CHAIN_ATOL, CHAIN_RTOL, G

# ---------------------------------------------------------------------------------------
# Element-wise broadcasting against NHWC-tagged tensors
# ---------------------------------------------------------------------------------------

BROADCAST_OTHERS = {
    # the other operand's shape, for a conv output of logical shape (2, 4, 5, 6)
    "C11": (4, 1, 1),
    "1C11": (1, 4, 1, 1),
    "W": (6,),
    "HW": (5, 6),
    "H1": (5, 1),
    "11HW": (1, 1, 5, 6),
    "N111": (2, 1, 1, 1),
    "scalar": (),
    "full": (2, 4, 5, 6),
}


@pytest.mark.parametrize("const_first", [False, True], ids=["conv_op_const", "const_op_conv"])
@pytest.mark.parametrize("other", list(BROADCAST_OTHERS))
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div"])
def test_broadcast_conv_with_constant(op, other, const_first):
    g = G(18)
    c = g.conv(g.input(2, 3, 5, 6), 3, 4)
    k = g.rand(*BROADCAST_OTHERS[other])
    if op == "Div":
        k = np.sign(k) * (np.abs(k) + 0.5)
        if const_first:  # keep the conv output away from zero in the denominator
            c = g.op("Add", [g.op("Abs", [c]), g.floats(0.5)])
    k = g.const(k.astype(np.float32))
    g.check(g.op(op, [k, c] if const_first else [c, k]))


def test_broadcast_conv_with_constant_node():
    """A Constant node (a static numpy value inside the importer) instead of an initializer."""
    g = G(19)
    c = g.conv(g.input(2, 3, 5, 6), 3, 4)
    k = g.op(
        "Constant",
        [],
        value=helper.make_tensor("k", TensorProto.FLOAT, [4, 1, 1], g.rand(4).tolist()),
    )
    g.check(g.op("Sub", [k, c]))


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Max", "Min"])
def test_conv_with_conv(op):
    g = G(20)
    x = g.input(2, 3, 5, 6)
    g.check(g.op(op, [g.conv(x, 3, 4), g.conv(x, 3, 4, k=1)]))


@pytest.mark.parametrize("order", ["tagged_first", "untagged_first"])
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul"])
def test_conv_with_nchw_graph_input(op, order):
    g = G(21)
    c = g.conv(g.input(2, 3, 5, 6), 3, 4)
    u = g.input(2, 4, 5, 6)
    g.check(g.op(op, [c, u] if order == "tagged_first" else [u, c]))


def test_conv_with_broadcast_graph_input():
    """An untagged rank-3 (C, 1, 1) runtime input broadcast against an NHWC tensor."""
    g = G(22)
    c = g.conv(g.input(2, 3, 5, 6), 3, 4)
    g.check(g.op("Mul", [g.input(4, 1, 1), c]))


def test_variadic_sum_mean_max_mixed_layouts():
    g = G(23)
    x = g.input(2, 3, 5, 6)
    c1, c2 = g.conv(x, 3, 4), g.conv(x, 3, 4, k=1)
    u, k = g.input(2, 4, 5, 6), g.weight(4, 1, 1)
    outs = [g.op(op, [c1, u, c2, k]) for op in ("Sum", "Mean", "Max", "Min")]
    g.check(outs)


def test_squeeze_excitation_broadcast():
    """SE block: a (N, C, 1, 1) gate, itself NHWC-tagged, scales the (N, C, H, W) features."""
    g = G(24)
    c = g.op("Relu", [g.conv(g.input(2, 3, 6, 6), 3, 8)])
    s = g.op("GlobalAveragePool", [c])
    s = g.op("Relu", [g.conv(s, 8, 2, k=1)])
    s = g.op("Sigmoid", [g.conv(s, 2, 8, k=1)])
    g.check(g.op("Mul", [c, s]), rtol=CHAIN_RTOL, atol=CHAIN_ATOL)


def test_silu_and_where_after_conv():
    g = G(25)
    c = g.conv(g.input(1, 3, 5, 6), 3, 4)
    silu = g.op("Mul", [c, g.op("Sigmoid", [c])])
    cond = g.op("Greater", [c, g.floats(np.zeros((4, 1, 1)))])
    g.check([silu, g.op("Where", [cond, c, g.floats(np.full((6,), -1.0))])])
