"""Gemm and MatMul: transposes, alpha/beta, every C broadcast, weights as initializers or
runtime inputs, against onnxruntime.

Every graph is small and random (seeded numpy; builders in ``tests/onnx_builders.py``);
onnxruntime is the reference, at rtol 1e-3 / atol 1e-5 for single ops (the field's
operator-test tolerance) and a looser absolute tolerance for multi-op chains.
"""

from __future__ import annotations

import pytest
from onnx_builders import G

# ---------------------------------------------------------------------------------------
# Gemm and MatMul
# ---------------------------------------------------------------------------------------

GEMM_C = {"none": None, "N": (5,), "1xN": (1, 5), "MxN": (3, 5), "Mx1": (3, 1), "scalar": ()}


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.5, 2.0)], ids=["a1b1", "a05b2"])
@pytest.mark.parametrize("c_shape", list(GEMM_C))
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("trans_a", [0, 1])
def test_gemm(trans_a, trans_b, c_shape, alpha, beta):
    m, k, n = 3, 4, 5
    g = G(15)
    a = g.input(*((k, m) if trans_a else (m, k)))
    b = g.weight(*((n, k) if trans_b else (k, n)))
    ins = [a, b]
    if GEMM_C[c_shape] is not None:
        ins.append(g.const(g.rand(*GEMM_C[c_shape])))
    g.check(g.op("Gemm", ins, transA=trans_a, transB=trans_b, alpha=alpha, beta=beta))


def test_gemm_both_inputs_runtime():
    g = G(16)
    a, b = g.input(3, 4), g.input(5, 4)
    g.check(g.op("Gemm", [a, b, g.weight(5)], transB=1, alpha=0.25))


MATMUL_SHAPES = {
    "2d": ((3, 4), (4, 5)),
    "batched_3d_x_2d": ((2, 3, 4), (4, 5)),
    "batched_3d_x_3d": ((2, 3, 4), (2, 4, 5)),
    "broadcast_4d_x_3d": ((2, 1, 3, 4), (3, 4, 5)),
    "1d_x_2d": ((4,), (4, 5)),
    "2d_x_1d": ((3, 4), (4,)),
    "1d_x_1d": ((4,), (4,)),
    "1d_x_3d": ((4,), (2, 4, 5)),
    "3d_x_1d": ((2, 3, 4), (4,)),
}


@pytest.mark.parametrize("weight", [True, False], ids=["initializer", "input"])
@pytest.mark.parametrize("case", list(MATMUL_SHAPES))
def test_matmul(case, weight):
    a_shape, b_shape = MATMUL_SHAPES[case]
    g = G(17)
    a = g.input(*a_shape)
    b = g.weight(*b_shape) if weight else g.input(*b_shape)
    g.check(g.op("MatMul", [a, b]))
