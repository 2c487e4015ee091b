"""Activations on an NHWC-tagged conv output (so layout tags must propagate): the pointwise
activations, Softmax/LogSoftmax, Clip, PRelu, against onnxruntime.

Every graph is small and random (seeded numpy; builders in ``tests/onnx_builders.py``);
onnxruntime is the reference, at rtol 1e-3 / atol 1e-5 for single ops (the field's
operator-test tolerance) and a looser absolute tolerance for multi-op chains.
"""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper
from onnx_builders import G, single

# ---------------------------------------------------------------------------------------
# Activations (on an NHWC-tagged conv output, so tags must propagate)
# ---------------------------------------------------------------------------------------

ACTIVATIONS = {
    "Relu": {},
    "LeakyRelu": dict(alpha=0.2),
    "Sigmoid": {},
    "Tanh": {},
    "Elu": dict(alpha=0.7),
    "Selu": {},
    "Softplus": {},
    "HardSigmoid": dict(alpha=0.3, beta=0.4),
    "HardSwish": {},
}


@pytest.mark.parametrize("op", list(ACTIVATIONS))
def test_activation_after_conv(op):
    g = G(9)
    c = g.conv(g.input(2, 3, 5, 6), 3, 4)
    g.check(g.op(op, [c], **ACTIVATIONS[op]))


SOFTMAX_CASES = {
    # name: (opset, attrs). Before opset 13 the input is coerced to 2-D at ``axis``.
    "opset11_axis1": (11, dict(axis=1)),
    "opset11_default_axis": (11, {}),
    "opset11_axis2": (11, dict(axis=2)),
    "opset11_axis_minus1": (11, dict(axis=-1)),
    "opset13_axis_minus1": (13, dict(axis=-1)),
    "opset13_axis1": (13, dict(axis=1)),
    "opset13_default_axis": (13, {}),
    "opset13_axis2": (13, dict(axis=2)),
}


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("case", list(SOFTMAX_CASES))
def test_softmax_after_conv(case, op):
    opset, attrs = SOFTMAX_CASES[case]
    g = G(10)
    c = g.conv(g.input(2, 3, 4, 5), 3, 4)
    g.check(g.op(op, [c], **attrs), opset=opset)


@pytest.mark.parametrize("opset", [11, 13])
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_2d(op, opset):
    single(op, (3, 7), opset=opset, axis=1)


CLIP_CASES = {
    # name: (opset, attrs, (min, max) as inputs; None = omitted)
    "opset6_min_max": (6, dict(min=-0.5, max=0.7), None),
    "opset6_only_min": (6, dict(min=0.0), None),
    "opset6_only_max": (6, dict(max=0.2), None),
    "opset6_none": (6, {}, None),
    "opset11_min_max": (11, {}, (-0.5, 0.7)),
    "opset11_only_min": (11, {}, (0.0, None)),
    "opset11_only_max": (11, {}, (None, 0.2)),
    "opset11_none": (11, {}, (None, None)),
    "opset13_relu6": (13, {}, (0.0, 6.0)),
    "opset13_only_max": (13, {}, (None, -0.1)),
}


@pytest.mark.parametrize("case", list(CLIP_CASES))
def test_clip_after_conv(case):
    opset, attrs, bounds = CLIP_CASES[case]
    opset = max(opset, 7)  # the importer reads opset >= 7; Clip-6 is still in effect there
    g = G(11)
    c = g.conv(g.input(1, 3, 5, 5), 3, 4)
    ins = [c]
    if bounds is not None:
        lo, hi = bounds
        ins += ["" if lo is None else g.floats(lo), "" if hi is None else g.floats(hi)]
        while ins[-1] == "":
            ins.pop()
    g.check(g.op("Clip", ins, **attrs), opset=opset)


def test_clip_bounds_from_constant_nodes():
    g = G(12)
    c = g.conv(g.input(1, 3, 5, 5), 3, 4)
    lo = g.op("Constant", [], value=helper.make_tensor("lo", TensorProto.FLOAT, [], [-0.3]))
    hi = g.op("Constant", [], value=helper.make_tensor("hi", TensorProto.FLOAT, [], [0.3]))
    g.check(g.op("Clip", [c, lo, hi]))


@pytest.mark.parametrize("slope_shape", [(4, 1, 1), (1, 4, 1, 1), (1,), (1, 1, 1)])
def test_prelu_after_conv(slope_shape):
    g = G(13)
    c = g.conv(g.input(2, 3, 5, 6), 3, 4)
    g.check(g.op("PRelu", [c, g.const(g.rand(*slope_shape))]))


def test_prelu_2d():
    g = G(14)
    x = g.input(3, 5)
    g.check(g.op("PRelu", [x, g.const(g.rand(5))]))
