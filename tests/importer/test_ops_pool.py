"""Pooling: max/average/global pools, ceil_mode windows that start in the padding, auto_pad,
dilation, 1-D, against onnxruntime.

Every graph is small and random (seeded numpy; builders in ``tests/onnx_builders.py``);
onnxruntime is the reference, at rtol 1e-3 / atol 1e-5 for single ops (the field's
operator-test tolerance) and a looser absolute tolerance for multi-op chains.
"""

from __future__ import annotations

import pytest
from onnx_builders import G, single

# ---------------------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------------------

POOL_GEOMETRIES = {
    # name: (kernel, stride, pads). With ceil_mode=1 several put a last window entirely in the
    # end padding, which must be dropped: k2s2p1 on sizes 5 and 7 (on 5, a 4th window would
    # start at padded index 6 = size + pad_begin), k3s3p1 on 5 and 8, k3s2_pads_asym's H on 6.
    "k2s2p0": (2, 2, [0, 0, 0, 0]),
    "k2s2p1": (2, 2, [1, 1, 1, 1]),
    "k3s2p0": (3, 2, [0, 0, 0, 0]),
    "k3s2p1_resnet_stem": (3, 2, [1, 1, 1, 1]),
    "k3s3p1": (3, 3, [1, 1, 1, 1]),
    "k3s2_pads_asym": (3, 2, [0, 1, 2, 1]),
    "k3s1p1": (3, 1, [1, 1, 1, 1]),
}
POOL_KINDS = {
    "max": ("MaxPool", {}),
    "avg_exclude_pad": ("AveragePool", dict(count_include_pad=0)),
    "avg_include_pad": ("AveragePool", dict(count_include_pad=1)),
}


@pytest.mark.parametrize("size", [5, 6, 7])
@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("geometry", list(POOL_GEOMETRIES))
@pytest.mark.parametrize("kind", list(POOL_KINDS))
def test_pool(kind, geometry, ceil_mode, size):
    op, extra = POOL_KINDS[kind]
    k, s, pads = POOL_GEOMETRIES[geometry]
    single(
        op,
        (2, 3, size, size + 1),
        kernel_shape=[k, k],
        strides=[s, s],
        pads=pads,
        ceil_mode=ceil_mode,
        **extra,
    )


@pytest.mark.parametrize("size", [6, 7])
@pytest.mark.parametrize("kernel,stride", [(3, 2), (2, 2), (2, 1), (3, 1)])
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("kind", list(POOL_KINDS))
def test_pool_auto_pad(kind, auto_pad, kernel, stride, size):
    op, extra = POOL_KINDS[kind]
    single(
        op,
        (1, 3, size, size + 1),
        kernel_shape=[kernel, kernel],
        strides=[stride, stride],
        auto_pad=auto_pad,
        **extra,
    )


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("ceil_mode", [0, 1])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("pads", [[0, 0, 0, 0], [2, 1, 2, 1]], ids=["p0", "p2"])
def test_max_pool_dilated(pads, stride, ceil_mode, size):
    single(
        "MaxPool",
        (1, 3, size, size + 1),
        kernel_shape=[3, 2],
        strides=[stride, stride],
        dilations=[2, 2],
        pads=pads,
        ceil_mode=ceil_mode,
    )


POOL1D_CASES = {
    "max_k3s2p1": ("MaxPool", dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    "max_ceil": ("MaxPool", dict(kernel_shape=[2], strides=[2], pads=[1, 1], ceil_mode=1)),
    "max_dilated": ("MaxPool", dict(kernel_shape=[3], strides=[2], dilations=[2], pads=[1, 1])),
    "max_same_lower": ("MaxPool", dict(kernel_shape=[2], strides=[2], auto_pad="SAME_LOWER")),
    "avg_exclude_pad": ("AveragePool", dict(kernel_shape=[3], strides=[2], pads=[1, 1])),
    "avg_include_pad": (
        "AveragePool",
        dict(kernel_shape=[3], strides=[2], pads=[1, 1], count_include_pad=1),
    ),
    "avg_ceil": ("AveragePool", dict(kernel_shape=[2], strides=[2], pads=[1, 1], ceil_mode=1)),
    "avg_same_upper": ("AveragePool", dict(kernel_shape=[4], strides=[2], auto_pad="SAME_UPPER")),
}


@pytest.mark.parametrize("size", [9, 10])
@pytest.mark.parametrize("case", list(POOL1D_CASES))
def test_pool_1d(case, size):
    op, attrs = POOL1D_CASES[case]
    single(op, (2, 3, size), **attrs)


@pytest.mark.parametrize("shape", [(2, 3, 5, 6), (2, 3, 7)], ids=["2d", "1d"])
@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool(op, shape):
    single(op, shape)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool_after_conv_then_flatten(op):
    g = G(4)
    y = g.op(op, [g.conv(g.input(2, 3, 6, 5), 3, 4)])
    g.check(g.op("Gemm", [g.op("Flatten", [y]), g.weight(5, 4), g.weight(5)], transB=1))
