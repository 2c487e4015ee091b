"""Normalisation: BatchNormalization, InstanceNormalization, LRN, against onnxruntime.

Every graph is small and random (seeded numpy; builders in ``tests/onnx_builders.py``);
onnxruntime is the reference, at rtol 1e-3 / atol 1e-5 for single ops (the field's
operator-test tolerance) and a looser absolute tolerance for multi-op chains.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx_builders import G

# ---------------------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [9, 14, 17])
@pytest.mark.parametrize("shape", [(2, 4, 5, 6), (3, 4), (2, 4, 7)], ids=["4d", "2d", "3d"])
def test_batch_norm(shape, opset):
    g = G(5)
    x = g.input(*shape)
    g.check(g.bn(x, shape[1]), opset=opset)


def test_batch_norm_epsilon_after_conv():
    g = G(6)
    c = g.conv(g.input(2, 3, 6, 6), 3, 4)
    scale, bias = g.floats(g.rand(4)), g.floats(g.rand(4))
    mean, var = g.floats(g.rand(4)), g.floats(np.abs(g.rand(4)) * 0.01 + 0.001)
    g.check(g.op("BatchNormalization", [c, scale, bias, mean, var], epsilon=1e-3))


@pytest.mark.parametrize("shape", [(2, 4, 5, 6), (2, 4, 7)], ids=["4d", "3d"])
def test_instance_norm(shape):
    g = G(7)
    x = g.input(*shape)
    if len(shape) == 4:
        x = g.conv(x, 4, 4)
    c = shape[1]
    g.check(
        g.op(
            "InstanceNormalization", [x, g.floats(1 + g.rand(c)), g.floats(g.rand(c))], epsilon=1e-4
        )
    )


@pytest.mark.parametrize(
    "attrs",
    [dict(size=3), dict(size=5, alpha=1e-2, beta=0.5, bias=2.0), dict(size=1, alpha=0.5)],
    ids=["size3", "size5_attrs", "size1"],
)
def test_lrn_after_conv(attrs):
    g = G(8)
    c = g.conv(g.input(1, 3, 5, 5), 3, 6)
    g.check(g.op("LRN", [c], **attrs))
