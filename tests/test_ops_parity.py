"""Operator-level parity of the ONNX -> TF importer with onnxruntime.

ONNX's own node cases (tests/test_onnx_backend_cases.py) check each op once, mostly on
NCHW graph inputs. These tests go where the importer's bugs hide: attribute combinations
that exporters actually emit (asymmetric pads, stride 2 on odd sizes, ceil_mode windows that
start in the padding, SAME_LOWER, groups, output_padding...) and chains where layout tags
meet (an NHWC-tagged conv output read by Transpose, Reshape, Gemm, Concat, Slice, Pad,
Split, reductions, Resize, broadcasting element-wise ops, and the taps API).

Every graph is small and random (seeded numpy); onnxruntime is the reference. Tolerances:
rtol 1e-3 / atol 1e-5 for single ops (the field's operator-test tolerance), slightly looser
absolute tolerance for multi-op chains whose values grow through several convolutions.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from onnx_builders import OP_ATOL, OP_RTOL, assert_parity, make_model, run_ort

from converters.onnx_to_tf import OnnxImportError, load

CHAIN_RTOL, CHAIN_ATOL = 1e-3, 1e-4


class G:
    """A tiny ONNX graph builder: random inputs and weights from one seeded generator."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: dict[str, np.ndarray] = {}
        self.inits: dict[str, np.ndarray] = {}
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def rand(self, *shape, scale: float = 1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def input(self, *shape, name: str | None = None) -> str:
        name = name or self._name("x")
        self.inputs[name] = self.rand(*shape)
        return name

    def const(self, value, dtype=None, name: str | None = None) -> str:
        """An initializer (float ones become tf.Variables, int ones stay static)."""
        name = name or self._name("c")
        self.inits[name] = np.asarray(value, dtype=dtype)
        return name

    def ints(self, values) -> str:
        return self.const(values, np.int64)

    def floats(self, values) -> str:
        return self.const(values, np.float32)

    def weight(self, *shape, scale: float = 0.3) -> str:
        return self.const(self.rand(*shape, scale=scale))

    def op(self, op_type: str, inputs, n_out: int = 1, name: str | None = None, **attrs):
        outs = (
            [name or self._name(op_type.lower())]
            if n_out == 1
            else [self._name(op_type.lower()) for _ in range(n_out)]
        )
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(self, x: str, cin: int, cout: int, k: int = 3, bias: bool = True, name=None, **attrs):
        attrs.setdefault("pads", [k // 2] * 4)
        ins = [x, self.weight(cout, cin, k, k)] + ([self.weight(cout, scale=0.1)] if bias else [])
        return self.op("Conv", ins, name=name, **attrs)

    def bn(self, x: str, c: int) -> str:
        scale, bias = self.floats(1 + 0.1 * self.rand(c)), self.floats(0.1 * self.rand(c))
        mean = self.floats(0.1 * self.rand(c))
        var = self.floats(np.abs(self.rand(c)) + 0.5)
        return self.op("BatchNormalization", [x, scale, bias, mean, var], epsilon=1e-5)

    def model(self, outputs, opset: int = 17, output_types=None) -> onnx.ModelProto:
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        return make_model(
            self.nodes, self.inputs, outputs, self.inits, opset=opset, output_types=output_types
        )

    def check(
        self,
        outputs,
        opset: int = 17,
        compiled: bool = False,
        rtol=OP_RTOL,
        atol=OP_ATOL,
        output_types=None,
    ):
        model = self.model(outputs, opset, output_types)
        return assert_parity(model, self.inputs, rtol=rtol, atol=atol, compiled=compiled)


def single(op_type, x_shape, *, opset=17, inits=(), compiled=False, seed=0, **attrs):
    """One op on a graph input (plus float initializers given as shapes or arrays)."""
    g = G(seed)
    x = g.input(*x_shape)
    names = []
    for init in inits:
        if init is None:
            names.append("")
        elif isinstance(init, tuple):
            names.append(g.weight(*init))
        else:
            names.append(g.const(init))
    y = g.op(op_type, [x, *names], **attrs)
    return g.check(y, opset=opset, compiled=compiled)


# ---------------------------------------------------------------------------------------
# Conv
# ---------------------------------------------------------------------------------------

CONV_CASES = {
    # name: (x shape, w shape, attributes)
    "pads_asym": ((1, 3, 7, 8), (4, 3, 3, 3), dict(pads=[1, 0, 2, 1])),
    "pads_asym_rect_kernel": ((1, 3, 6, 6), (4, 3, 2, 3), dict(pads=[0, 2, 1, 0])),
    "stride2_even": ((1, 3, 8, 8), (4, 3, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1])),
    "stride2_odd": ((1, 3, 7, 9), (4, 3, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1])),
    "stride2_1x1_odd": ((1, 3, 7, 7), (4, 3, 1, 1), dict(strides=[2, 2])),
    "stride2_k7_pad3_stem": ((2, 3, 11, 10), (4, 3, 7, 7), dict(strides=[2, 2], pads=[3] * 4)),
    "stride_mixed": ((1, 3, 7, 8), (4, 3, 3, 3), dict(strides=[1, 2], pads=[1, 1, 1, 1])),
    "dilation2": ((1, 3, 9, 9), (4, 3, 3, 3), dict(dilations=[2, 2], pads=[2, 2, 2, 2])),
    "dilation_mixed": ((1, 3, 8, 9), (4, 3, 3, 3), dict(dilations=[2, 1], pads=[2, 1, 2, 1])),
    "stride2_dilation2_even": (
        (1, 3, 10, 10),
        (4, 3, 3, 3),
        dict(strides=[2, 2], dilations=[2, 2], pads=[2, 2, 2, 2]),
    ),
    "stride2_dilation2_odd": (
        (1, 3, 11, 9),
        (4, 3, 3, 3),
        dict(strides=[2, 2], dilations=[2, 2], pads=[1, 2, 2, 1]),
    ),
    "group2": ((1, 4, 6, 6), (6, 2, 3, 3), dict(group=2, pads=[1, 1, 1, 1])),
    "group2_stride2": ((2, 4, 7, 7), (4, 2, 3, 3), dict(group=2, strides=[2, 2], pads=[1] * 4)),
    "depthwise": ((1, 4, 7, 7), (4, 1, 3, 3), dict(group=4, pads=[1, 1, 1, 1])),
    "depthwise_stride2": ((1, 4, 8, 8), (4, 1, 3, 3), dict(group=4, strides=[2, 2], pads=[1] * 4)),
    "depthwise_dilation2": (
        (1, 4, 9, 9),
        (4, 1, 3, 3),
        dict(group=4, dilations=[2, 2], pads=[2] * 4),
    ),
    "depthwise_multiplier2": ((1, 3, 7, 7), (6, 1, 3, 3), dict(group=3, pads=[1, 1, 1, 1])),
    "no_pads_batch3": ((3, 2, 5, 6), (3, 2, 3, 3), dict()),
}


CONV1D_CASES = {
    "pads_asym": ((1, 3, 10), (4, 3, 3), dict(pads=[2, 0])),
    "stride2_odd": ((1, 3, 11), (4, 3, 3), dict(strides=[2], pads=[1, 1])),
    "dilation2": ((2, 3, 10), (4, 3, 3), dict(dilations=[2], pads=[2, 2])),
    "stride2_dilation2": ((1, 3, 12), (4, 3, 3), dict(strides=[2], dilations=[2], pads=[1, 2])),
    "group2": ((1, 4, 9), (6, 2, 3), dict(group=2, pads=[1, 1])),
    "depthwise": ((1, 4, 9), (4, 1, 5), dict(group=4, pads=[2, 2])),
    "same_upper_stride2": ((1, 3, 9), (4, 3, 4), dict(auto_pad="SAME_UPPER", strides=[2])),
    "same_lower_stride2": ((1, 3, 9), (4, 3, 4), dict(auto_pad="SAME_LOWER", strides=[2])),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case", list(CONV_CASES) + [f"1d_{k}" for k in CONV1D_CASES])
def test_conv(case, bias):
    """2-D cases, and the 1-D ones as ``1d_<name>``."""
    if case.startswith("1d_"):
        x_shape, w_shape, attrs = CONV1D_CASES[case[3:]]
    else:
        x_shape, w_shape, attrs = CONV_CASES[case]
    inits = [w_shape, (w_shape[0],)] if bias else [w_shape]
    single("Conv", x_shape, inits=inits, **attrs)


@pytest.mark.parametrize("kernel_attr", [True, False], ids=["kernel_shape", "no_kernel_shape"])
@pytest.mark.parametrize("rank", [1, 2])
def test_conv_kernel_shape_attribute(rank, kernel_attr):
    k = [3, 2][:rank] if rank == 2 else [3]
    attrs = dict(kernel_shape=k) if kernel_attr else {}
    x_shape = (1, 3, 7, 6)[: 2 + rank]
    single(
        "Conv",
        x_shape,
        inits=[(4, 3, *k), (4,)],
        strides=[2] * rank,
        pads=[1] * (2 * rank),
        **attrs,
    )


@pytest.mark.parametrize("size", [7, 8])
@pytest.mark.parametrize("kernel,stride", [(3, 2), (2, 2), (2, 1), (3, 1), (4, 2), (1, 2)])
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_auto_pad(auto_pad, kernel, stride, size):
    # (onnxruntime refuses auto_pad SAME together with dilations > 1, so no dilation here)
    single(
        "Conv",
        (1, 3, size, size + 1),
        inits=[(4, 3, kernel, kernel), (4,)],
        auto_pad=auto_pad,
        strides=[stride, stride],
    )


def test_conv_weight_shared_by_two_convs():
    """One kernel read by two convs (and nothing else) is stored once, HWIO."""
    g = G(1)
    x = g.input(1, 3, 6, 6)
    w = g.weight(3, 3, 3, 3)
    a = g.op("Conv", [x, w], pads=[1] * 4)
    b = g.op("Conv", [a, w], pads=[1] * 4, strides=[2, 2])
    g.check(b, rtol=CHAIN_RTOL, atol=CHAIN_ATOL)


def test_conv_weight_as_graph_input():
    """A kernel fed at run time (untagged, ONNX layout) instead of an initializer."""
    g = G(2)
    x = g.input(1, 3, 6, 6)
    w = g.input(4, 3, 3, 3)
    g.check(g.op("Conv", [x, w], pads=[1, 1, 1, 1], strides=[2, 2]))


# ---------------------------------------------------------------------------------------
# ConvTranspose
# ---------------------------------------------------------------------------------------

CONVT_CASES = {
    # name: (x shape, w shape (Cin, Cout/group, k...), attributes)
    "stride2": ((1, 4, 5, 5), (4, 3, 3, 3), dict(strides=[2, 2])),
    "stride2_pads": ((1, 4, 5, 6), (4, 3, 3, 3), dict(strides=[2, 2], pads=[1, 1, 1, 1])),
    "stride2_pads_asym": ((1, 4, 5, 5), (4, 3, 3, 3), dict(strides=[2, 2], pads=[0, 1, 2, 0])),
    "stride2_output_padding": (
        (1, 4, 5, 5),
        (4, 3, 3, 3),
        dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]),
    ),
    "output_padding_mixed": (
        (1, 4, 4, 5),
        (4, 3, 3, 3),
        dict(strides=[2, 3], pads=[1, 0, 1, 0], output_padding=[1, 2]),
    ),
    "k4_stride2_pad1_dcgan": ((2, 4, 4, 4), (4, 3, 4, 4), dict(strides=[2, 2], pads=[1] * 4)),
    "dilation2": ((1, 4, 5, 5), (4, 3, 3, 3), dict(dilations=[2, 2], pads=[1, 1, 1, 1])),
    "stride2_dilation2": ((1, 4, 4, 5), (4, 3, 3, 3), dict(strides=[2, 2], dilations=[2, 2])),
    "group2": ((1, 4, 5, 5), (4, 3, 3, 3), dict(group=2, strides=[2, 2], pads=[1] * 4)),
    "depthwise": ((1, 4, 5, 5), (4, 1, 3, 3), dict(group=4, strides=[2, 2])),
    "output_shape_even": ((1, 4, 5, 5), (4, 3, 3, 3), dict(strides=[2, 2], output_shape=[10, 10])),
    "output_shape_full": ((1, 4, 5, 5), (4, 3, 3, 3), dict(strides=[2, 2], output_shape=[11, 11])),
    "output_shape_odd_total": (
        (1, 4, 5, 5),
        (4, 3, 3, 3),
        dict(strides=[2, 2], output_shape=[9, 10]),
    ),
    "auto_pad_same_upper": (
        (1, 4, 5, 5),
        (4, 3, 3, 3),
        dict(strides=[2, 2], auto_pad="SAME_UPPER"),
    ),
    "auto_pad_same_upper_k4": (
        (1, 4, 5, 4),
        (4, 3, 4, 4),
        dict(strides=[2, 2], auto_pad="SAME_UPPER"),
    ),
    "auto_pad_same_lower_k4": (
        (1, 4, 5, 4),
        (4, 3, 4, 4),
        dict(strides=[2, 2], auto_pad="SAME_LOWER"),
    ),
}


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("case", list(CONVT_CASES))
def test_conv_transpose(case, bias):
    x_shape, w_shape, attrs = CONVT_CASES[case]
    cout = w_shape[1] * attrs.get("group", 1)
    inits = [w_shape, (cout,)] if bias else [w_shape]
    single("ConvTranspose", x_shape, inits=inits, **attrs)


CONVT1D_CASES = {
    "stride2_pads_output_padding": (
        (1, 4, 6),
        (4, 2, 3),
        dict(strides=[2], pads=[1, 1], output_padding=[1]),
    ),
    "dilation2": ((1, 4, 6), (4, 2, 3), dict(dilations=[2], pads=[1, 0])),
    "group2": ((2, 4, 5), (4, 3, 3), dict(group=2, strides=[2])),
    "output_shape": ((1, 4, 5), (4, 2, 3), dict(strides=[2], output_shape=[10])),
    "auto_pad_same_upper": ((1, 4, 5), (4, 2, 4), dict(strides=[2], auto_pad="SAME_UPPER")),
}


@pytest.mark.parametrize("case", list(CONVT1D_CASES))
def test_conv_transpose_1d(case):
    x_shape, w_shape, attrs = CONVT1D_CASES[case]
    cout = w_shape[1] * attrs.get("group", 1)
    single("ConvTranspose", x_shape, inits=[w_shape, (cout,)], **attrs)


def test_conv_transpose_after_conv():
    """ConvTranspose reading an NHWC-tagged tensor (decoder after encoder)."""
    g = G(3)
    x = g.input(1, 3, 8, 8)
    h = g.op("Relu", [g.conv(x, 3, 4, strides=[2, 2])])
    y = g.op(
        "ConvTranspose",
        [h, g.weight(4, 3, 3, 3), g.weight(3)],
        strides=[2, 2],
        pads=[1, 1, 1, 1],
        output_padding=[1, 1],
    )
    g.check(g.op("Add", [y, x]), rtol=CHAIN_RTOL, atol=CHAIN_ATOL)


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


# ---------------------------------------------------------------------------------------
# Layout chains: where tags meet
# ---------------------------------------------------------------------------------------

COMPILED = pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])


@COMPILED
def test_chain_tf2onnx_transposes_cancel(compiled):
    """Keras via tf2onnx: Conv -> Transpose(NHWC) -> Relu -> Transpose(NCHW) -> Conv."""
    g = G(30)
    c = g.conv(g.input(1, 3, 6, 6), 3, 4)
    t = g.op("Transpose", [c], perm=[0, 2, 3, 1])
    r = g.op("Relu", [t])
    back = g.op("Transpose", [r], perm=[0, 3, 1, 2])
    g.check(g.conv(back, 4, 5, strides=[2, 2]), compiled=compiled, rtol=CHAIN_RTOL, atol=CHAIN_ATOL)


@COMPILED
def test_chain_tf2onnx_nhwc_graph_input_and_output(compiled):
    """An NHWC graph input transposed to NCHW, a conv stack, NHWC output, as tf2onnx emits."""
    g = G(31)
    x = g.input(2, 6, 7, 3)
    t = g.op("Transpose", [x], perm=[0, 3, 1, 2])
    c = g.op("Relu", [g.conv(t, 3, 4, strides=[2, 2], auto_pad="SAME_UPPER", pads=None)])
    out = g.op("Transpose", [c], perm=[0, 2, 3, 1])
    bias = g.floats(g.rand(4))  # (C,) broadcasts on the last axis of the NHWC view
    g.check(g.op("Add", [out, bias]), compiled=compiled, rtol=CHAIN_RTOL, atol=CHAIN_ATOL)


@COMPILED
def test_chain_transpose_reshape_gemm_flattens_in_nhwc_order(compiled):
    """Conv -> Transpose(0,2,3,1) -> Reshape(N, -1) -> Gemm: the flatten is in H, W, C order."""
    g = G(32)
    c = g.op("Relu", [g.conv(g.input(2, 3, 4, 5), 3, 3)])
    t = g.op("Transpose", [c], perm=[0, 2, 3, 1])
    f = g.op("Reshape", [t, g.ints([2, -1])])
    g.check(
        g.op("Gemm", [f, g.weight(7, 4 * 5 * 3), g.weight(7)], transB=1),
        compiled=compiled,
        rtol=CHAIN_RTOL,
        atol=CHAIN_ATOL,
    )


@COMPILED
def test_chain_conv_flatten_gemm(compiled):
    g = G(33)
    c = g.op("Relu", [g.conv(g.input(2, 3, 4, 5), 3, 3)])
    f = g.op("Flatten", [c])
    g.check(
        g.op("Gemm", [f, g.weight(60, 7), g.weight(1, 7)]),
        compiled=compiled,
        rtol=CHAIN_RTOL,
        atol=CHAIN_ATOL,
    )


@pytest.mark.parametrize("axis", [0, 2, 3, -1])
def test_chain_conv_flatten_other_axes(axis):
    g = G(34)
    c = g.conv(g.input(2, 3, 4, 5), 3, 3)
    g.check(g.op("Flatten", [c], axis=axis))


@COMPILED
def test_chain_conv_reshape_matmul(compiled):
    g = G(35)
    c = g.conv(g.input(2, 3, 4, 5), 3, 3)
    f = g.op("Reshape", [c, g.ints([0, -1])])
    g.check(
        g.op("Add", [g.op("MatMul", [f, g.weight(60, 7)]), g.weight(7)]),
        compiled=compiled,
        rtol=CHAIN_RTOL,
        atol=CHAIN_ATOL,
    )


@pytest.mark.parametrize(
    "shape",
    [[0, 3, -1], [2, 3, 4, 5], [-1, 5], [2, 12, 5]],
    ids=["0_3_-1", "same", "-1_5", "split_C_H"],
)
def test_chain_conv_reshape_shapes(shape):
    g = G(36)
    c = g.conv(g.input(2, 3, 4, 5), 3, 3)
    g.check(g.op("Reshape", [c, g.ints(shape)]))


@COMPILED
def test_chain_concat_conv_conv_and_untagged(compiled):
    g = G(37)
    x = g.input(2, 3, 5, 6)
    a, b = g.conv(x, 3, 4), g.conv(x, 3, 2, k=1)
    cat1 = g.op("Concat", [a, b], axis=1)
    cat2 = g.op("Concat", [g.input(2, 3, 5, 6), cat1], axis=1)  # untagged first
    cat3 = g.op("Concat", [cat1, x], axis=1)  # tagged first
    g.check([g.conv(cat2, 9, 4), cat3], compiled=compiled, rtol=CHAIN_RTOL, atol=CHAIN_ATOL)


@pytest.mark.parametrize("axis", [2, 3, -1, 0])
def test_chain_concat_spatial_axes(axis):
    g = G(38)
    x = g.input(2, 3, 4, 4)
    a, b = g.conv(x, 3, 4), g.conv(x, 3, 4, k=1)
    g.check(g.op("Concat", [a, b, g.floats(g.rand(2, 4, 4, 4))], axis=axis))


def test_chain_concat_transposed_views():
    """Concat of an NHWC view (Transpose) of a conv output with an NHWC graph input."""
    g = G(39)
    c = g.conv(g.input(1, 3, 4, 5), 3, 4)
    t = g.op("Transpose", [c], perm=[0, 2, 3, 1])
    g.check(g.op("Concat", [t, g.input(1, 4, 5, 2)], axis=3))


SLICE_CASES = {
    # name: (starts, ends, axes, steps) for a (2, 6, 7, 8) conv output
    "channels": ([1], [4], [1], None),
    "channels_negative": ([-3], [-1], [1], None),
    "h_step2": ([0], [7], [2], [2]),
    "option_a_shortcut": ([0, 0], [2**62, 2**62], [2, 3], [2, 2]),  # x[:, :, ::2, ::2]
    "w_reverse": ([-1], [-(2**62)], [3], [-1]),
    "mixed": ([0, 1, 2], [3, 6, 100], [1, 2, 3], [1, 2, 3]),
    "axes_negative": ([1], [-1], [-1], None),
    "no_axes": ([0, 2], [1, 5], None, None),
}


@pytest.mark.parametrize("case", list(SLICE_CASES))
def test_chain_conv_slice(case):
    starts, ends, axes, steps = SLICE_CASES[case]
    g = G(40)
    c = g.conv(g.input(2, 3, 7, 8), 3, 6)
    ins = [c, g.ints(starts), g.ints(ends)]
    if axes is not None or steps is not None:
        ins.append(g.ints(axes) if axes is not None else "")
    if steps is not None:
        ins.append(g.ints(steps))
    g.check(g.op("Slice", ins))


def test_chain_conv_slice_opset9_attributes():
    g = G(41)
    c = g.conv(g.input(2, 3, 7, 8), 3, 6)
    g.check(g.op("Slice", [c], starts=[1, 2], ends=[5, -1], axes=[1, 3]), opset=9)


@COMPILED
def test_chain_resnet_option_a_shortcut(compiled):
    """CIFAR ResNet option A: x[:, :, ::2, ::2] padded with zero channels, added to a
    stride-2 conv branch."""
    g = G(42)
    x = g.op("Relu", [g.conv(g.input(2, 3, 8, 8), 3, 4)])
    main = g.op("Relu", [g.bn(g.conv(x, 4, 8, strides=[2, 2]), 8)])
    s = g.op("Slice", [x, g.ints([0, 0]), g.ints([2**62, 2**62]), g.ints([2, 3]), g.ints([2, 2])])
    s = g.op("Pad", [s, g.ints([0, 2, 0, 0, 0, 2, 0, 0])], mode="constant")
    g.check(
        g.op("Relu", [g.op("Add", [main, s])]), compiled=compiled, rtol=CHAIN_RTOL, atol=CHAIN_ATOL
    )


PAD_CASES = {
    # name: (opset, mode, pads (begin..., end...), constant value or None, axes (opset 18) or None,
    #        channels after padding); the conv output padded is (2, 4, 5, 6)
    "opset11_channels_constant": (11, "constant", [0, 2, 0, 0, 0, 1, 0, 0], 0.5, None, 7),
    "opset13_channels_default_value": (13, "constant", [0, 1, 0, 0, 0, 3, 0, 0], None, None, 8),
    "opset2_channels_constant": (10, "constant", [0, 2, 0, 0, 0, 1, 0, 0], -1.5, None, 7),
    "opset2_hw_constant": (10, "constant", [0, 0, 1, 2, 0, 0, 2, 0], 0.0, None, 4),
    "opset11_hw_reflect": (11, "reflect", [0, 0, 1, 2, 0, 0, 2, 1], None, None, 4),
    "opset11_hw_edge": (11, "edge", [0, 0, 2, 0, 0, 0, 1, 3], None, None, 4),
    "opset2_hw_reflect": (10, "reflect", [0, 0, 2, 1, 0, 0, 1, 2], None, None, 4),
    "opset2_hw_edge": (10, "edge", [0, 0, 1, 1, 0, 0, 0, 2], None, None, 4),
    "opset13_negative_crop": (13, "constant", [0, -1, 1, -2, 0, 0, -1, 1], 2.0, None, 3),
    "opset18_axes_channels_w": (18, "constant", [1, 2, 3, 0], 1.0, [1, 3], 8),
    "opset18_axes_reflect_hw": (18, "reflect", [1, 2, 2, 1], None, [-2, -1], 4),
}


@pytest.mark.parametrize("case", list(PAD_CASES))
def test_chain_conv_pad(case):
    opset, mode, pads, value, axes, channels = PAD_CASES[case]
    g = G(43)
    c = g.conv(g.input(2, 3, 5, 6), 3, 4)
    if opset < 11:
        attrs = dict(mode=mode, pads=pads)
        if value is not None:
            attrs["value"] = value
        y = g.op("Pad", [c], **attrs)
    else:
        ins = [c, g.ints(pads), g.floats(value) if value is not None else ""]
        if axes is not None:
            ins.append(g.ints(axes))
        while ins[-1] == "":
            ins.pop()
        y = g.op("Pad", ins, mode=mode)
    # a conv after the pad reads the padded tensor through its layout tag
    g.check([y, g.conv(y, channels, 3)], opset=opset, rtol=CHAIN_RTOL, atol=CHAIN_ATOL)


@pytest.mark.parametrize("keepdims", [0, 1])
@pytest.mark.parametrize("opset", [13, 18])
def test_chain_conv_reduce_mean_gemm(opset, keepdims):
    g = G(44)
    c = g.op("Relu", [g.conv(g.input(2, 3, 5, 6), 3, 4)])
    if opset >= 18:
        r = g.op("ReduceMean", [c, g.ints([2, 3])], keepdims=keepdims)
    else:
        r = g.op("ReduceMean", [c], axes=[2, 3], keepdims=keepdims)
    if keepdims:
        r = g.op("Flatten", [r])
    g.check(g.op("Gemm", [r, g.weight(5, 4), g.weight(5)], transB=1), opset=opset)


def _reduced_shape(shape, axes, keepdims):
    axes = range(len(shape)) if axes is None else [a % len(shape) for a in axes]
    if keepdims:
        return [1 if i in axes else d for i, d in enumerate(shape)]
    return [d for i, d in enumerate(shape) if i not in axes]


REDUCE_CASES = {
    # name: (op, axes, keepdims) on a (2, 4, 5, 6) conv output
    "mean_channels": ("ReduceMean", [1], 0),
    "mean_channels_keep": ("ReduceMean", [1], 1),
    "sum_h": ("ReduceSum", [2], 0),
    "max_w_neg": ("ReduceMax", [-1], 0),
    "min_c_w": ("ReduceMin", [1, 3], 0),
    "l2_hw": ("ReduceL2", [2, 3], 1),
    "sumsq_all": ("ReduceSumSquare", None, 0),
    "mean_all_keep": ("ReduceMean", None, 1),
    "prod_n_h": ("ReduceProd", [0, 2], 0),
}


@pytest.mark.parametrize("opset", [11, 18])
@pytest.mark.parametrize("case", list(REDUCE_CASES))
def test_chain_conv_reduce(case, opset):
    op, axes, keepdims = REDUCE_CASES[case]
    g = G(45)
    c = g.conv(g.input(2, 3, 5, 6), 3, 4, pads=[1, 1, 1, 1])
    if op == "ReduceProd":
        c = g.op("Sigmoid", [c])
    axes_as_input = opset >= 18 or (op == "ReduceSum" and opset >= 13)
    if axes is None:
        r = g.op(op, [c], keepdims=keepdims)
    elif axes_as_input:
        r = g.op(op, [c, g.ints(axes)], keepdims=keepdims)
    else:
        r = g.op(op, [c], axes=axes, keepdims=keepdims)
    # an Add with a constant broadcast on the last logical axis checks the result's tag
    last = _reduced_shape((2, 4, 5, 6), axes, keepdims)[-1:]
    g.check(g.op("Add", [r, g.floats(g.rand(*last))]), opset=opset)


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_chain_conv_split_add(opset):
    g = G(46)
    c = g.conv(g.input(2, 3, 5, 6), 3, 6)
    if opset >= 18:
        a, b = g.op("Split", [c], n_out=2, axis=1, num_outputs=2)
    elif opset >= 13:
        a, b = g.op("Split", [c, g.ints([3, 3])], n_out=2, axis=1)
    else:
        a, b = g.op("Split", [c], n_out=2, axis=1, split=[3, 3])
    g.check(g.op("Add", [a, g.op("Relu", [b])]), opset=opset)


@pytest.mark.parametrize("axis", [1, 2, 3])
def test_chain_conv_split_unequal(axis):
    g = G(47)
    c = g.conv(g.input(2, 3, 6, 7), 3, 6)
    sizes = {1: [1, 2, 3], 2: [2, 4], 3: [3, 1, 3]}[axis]
    outs = g.op("Split", [c, g.ints(sizes)], n_out=len(sizes), axis=axis)
    g.check(outs)


@COMPILED
@pytest.mark.parametrize("dynamic_batch", [False, True], ids=["static", "dynamic_batch"])
def test_chain_torch_dynamic_flatten(dynamic_batch, compiled):
    """torch.flatten(x, 1) as older exporters write it:
    Shape -> Gather(0) -> Unsqueeze -> Concat([n, -1]) -> Reshape, then Gemm."""
    g = G(48)
    x = g.input(2, 3, 4, 5)
    c = g.op("Relu", [g.conv(x, 3, 3)])
    shape = g.op("Shape", [c])
    n = g.op("Gather", [shape, g.ints(0)], axis=0)
    n = g.op("Unsqueeze", [n, g.ints([0])])
    target = g.op("Concat", [n, g.ints([-1])], axis=0)
    f = g.op("Reshape", [c, target])
    y = g.op("Gemm", [f, g.weight(6, 60), g.weight(6)], transB=1)
    model = g.model(y)
    if dynamic_batch:
        model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    assert_parity(model, g.inputs, rtol=CHAIN_RTOL, atol=CHAIN_ATOL, compiled=compiled)
    if dynamic_batch:  # traced with an unknown batch, the Reshape target is a runtime tensor
        import tensorflow as tf

        tf_model = load(model)
        fn = tf.function(
            lambda t: tf_model(t, compiled=compiled),
            input_signature=[tf.TensorSpec([None, 3, 4, 5], tf.float32)],
        )
        xb = g.rand(3, 3, 4, 5)
        np.testing.assert_allclose(
            fn(xb).numpy(), run_ort(model, {x: xb})[0], rtol=CHAIN_RTOL, atol=CHAIN_ATOL
        )


def test_chain_shape_of_tagged_tensor_is_logical():
    g = G(49)
    c = g.conv(g.input(2, 3, 4, 5), 3, 6, strides=[1, 2])
    s = g.op("Shape", [c])
    t = g.op("Shape", [g.op("Transpose", [c], perm=[0, 2, 3, 1])], start=1)
    g.check([s, t], output_types={s: TensorProto.INT64, t: TensorProto.INT64})


@pytest.mark.parametrize("opset", [11, 13])
def test_chain_global_pool_squeeze_gemm(opset):
    g = G(50)
    p = g.op("GlobalAveragePool", [g.op("Relu", [g.conv(g.input(2, 3, 5, 5), 3, 4)])])
    if opset >= 13:
        s = g.op("Squeeze", [p, g.ints([2, 3])])
    else:
        s = g.op("Squeeze", [p], axes=[2, 3])
    g.check(g.op("Gemm", [s, g.weight(5, 4), g.weight(5)], transB=1), opset=opset)


def test_chain_gather_channels_and_unsqueeze():
    g = G(51)
    c = g.conv(g.input(2, 3, 4, 5), 3, 6)
    a = g.op("Gather", [c, g.ints([4, 0, 2])], axis=1)
    b = g.op("Gather", [c, g.ints(1)], axis=2)
    u = g.op("Unsqueeze", [b, g.ints([1])])
    g.check([a, u])


def test_chain_tile_expand_after_conv():
    g = G(52)
    c = g.conv(g.input(1, 3, 3, 4), 3, 2)
    t = g.op("Tile", [c, g.ints([2, 1, 1, 2])])
    p = g.op("GlobalAveragePool", [c])
    e = g.op("Expand", [p, g.ints([1, 2, 3, 4])])
    g.check([t, g.op("Add", [e, c])])


def test_chain_transpose_to_nonstandard_then_conv():
    """A Transpose that swaps H and W leaves a non-standard tag; the next conv must cope."""
    g = G(53)
    c = g.conv(g.input(1, 3, 4, 6), 3, 4)
    t = g.op("Transpose", [c], perm=[0, 1, 3, 2])
    y = g.conv(t, 4, 3, strides=[2, 1])
    g.check([y, g.op("Flatten", [t])], rtol=CHAIN_RTOL, atol=CHAIN_ATOL)


@pytest.mark.parametrize("opset", [11, 13])
def test_chain_nhwc_softmax_over_channels(opset):
    """Segmentation head in Keras style: NHWC view, softmax over the last (channel) axis."""
    g = G(54)
    c = g.conv(g.input(1, 3, 4, 5), 3, 6)
    t = g.op("Transpose", [c], perm=[0, 2, 3, 1])
    g.check(g.op("Softmax", [t], axis=3), opset=opset)


# -- Resize / Upsample after a conv ------------------------------------------------------

RESIZE_CASES = {
    # name: (mode, coordinate_transformation_mode, nearest_mode, scales or None, sizes or None)
    "nearest_asymmetric_floor_x2": ("nearest", "asymmetric", "floor", [1, 1, 2, 2], None),
    "nearest_asymmetric_floor_x1.5": ("nearest", "asymmetric", "floor", [1, 1, 1.5, 2.5], None),
    "nearest_half_pixel_round_prefer_floor_x2": (
        "nearest",
        "half_pixel",
        "round_prefer_floor",
        [1, 1, 2, 2],
        None,
    ),
    "nearest_half_pixel_round_prefer_floor_x1.5": (
        "nearest",
        "half_pixel",
        "round_prefer_floor",
        [1, 1, 1.5, 3],
        None,
    ),
    "nearest_half_pixel_round_prefer_ceil_sizes": (
        "nearest",
        "half_pixel",
        "round_prefer_ceil",
        None,
        [2, 4, 9, 13],
    ),
    "nearest_asymmetric_floor_sizes": ("nearest", "asymmetric", "floor", None, [2, 4, 10, 7]),
    "nearest_asymmetric_ceil_downscale": ("nearest", "asymmetric", "ceil", [1, 1, 0.5, 0.5], None),
    "nearest_tf_half_pixel_for_nn": (
        "nearest",
        "tf_half_pixel_for_nn",
        "floor",
        [1, 1, 2, 1.5],
        None,
    ),
    "nearest_align_corners_sizes": (
        "nearest",
        "align_corners",
        "round_prefer_floor",
        None,
        [2, 4, 8, 9],
    ),
    "linear_half_pixel_x2": ("linear", "half_pixel", None, [1, 1, 2, 2], None),
    "linear_half_pixel_downscale": ("linear", "half_pixel", None, [1, 1, 0.6, 0.5], None),
    "linear_half_pixel_sizes": ("linear", "half_pixel", None, None, [2, 4, 7, 11]),
    "linear_align_corners_x2": ("linear", "align_corners", None, [1, 1, 2, 2], None),
    "linear_align_corners_sizes": ("linear", "align_corners", None, None, [2, 4, 9, 13]),
    "linear_pytorch_half_pixel_x2": ("linear", "pytorch_half_pixel", None, [1, 1, 2, 2], None),
    "linear_pytorch_half_pixel_sizes": ("linear", "pytorch_half_pixel", None, None, [2, 4, 1, 9]),
    "linear_asymmetric_x1.5": ("linear", "asymmetric", None, [1, 1, 1.5, 2], None),
}


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("case", list(RESIZE_CASES))
def test_chain_conv_resize(case, opset):
    mode, coord, nearest, scales, sizes = RESIZE_CASES[case]
    g = G(55)
    c = g.conv(g.input(2, 3, 5, 6), 3, 4)
    attrs = dict(mode=mode, coordinate_transformation_mode=coord)
    if nearest:
        attrs["nearest_mode"] = nearest
    roi = g.floats([]) if opset == 11 else ""
    ins = [c, roi, g.floats(scales) if scales is not None else ""]
    if sizes is not None:
        ins.append(g.ints(sizes))
    if opset == 11 and scales is None:
        ins[2] = g.floats([])  # opset 11 requires a scales input, empty when sizes are given
    y = g.op("Resize", ins, **attrs)
    g.check(g.op("Relu", [y]), opset=opset)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_chain_conv_resize_opset10(mode):
    g = G(56)
    c = g.conv(g.input(1, 3, 4, 5), 3, 4)
    g.check(g.op("Resize", [c, g.floats([1, 1, 2, 3])], mode=mode), opset=10)


@pytest.mark.parametrize("scales", [[1, 1, 2, 2], [1, 1, 3, 2]], ids=["x2", "x3x2"])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
@pytest.mark.parametrize("opset", [7, 9])
def test_chain_conv_upsample(opset, mode, scales):
    g = G(57)
    c = g.conv(g.input(1, 3, 4, 5), 3, 4)
    if opset >= 9:
        y = g.op("Upsample", [c, g.floats(scales)], mode=mode)
    else:
        y = g.op("Upsample", [c], mode=mode, scales=[float(s) for s in scales])
    g.check(y, opset=opset)


def test_chain_fpn_upsample_add():
    """FPN top-down step: nearest x2 of a coarse map added to a lateral 1x1 conv."""
    g = G(58)
    x = g.input(1, 3, 8, 8)
    fine = g.conv(x, 3, 4, k=1)
    coarse = g.conv(x, 3, 4, strides=[2, 2])
    up = g.op(
        "Resize",
        [coarse, "", g.floats([1, 1, 2, 2])],
        mode="nearest",
        coordinate_transformation_mode="asymmetric",
        nearest_mode="floor",
    )
    g.check(g.op("Add", [fine, up]), rtol=CHAIN_RTOL, atol=CHAIN_ATOL)


# ---------------------------------------------------------------------------------------
# A small classifier at every supported opset 11..18
# ---------------------------------------------------------------------------------------


def small_classifier(opset: int) -> tuple[onnx.ModelProto, dict]:
    """conv-bn-relu6-pad-maxpool-conv-split-reduce-squeeze-flatten-gemm-softmax, with each op in
    the form its opset requires (Pad/Clip/Split/Squeeze/ReduceMean inputs vs attributes)."""
    g = G(60)
    x = g.input(2, 3, 9, 9, name="input")
    h = g.bn(g.conv(x, 3, 8, strides=[2, 2], bias=False), 8)
    h = g.op("Clip", [h, g.floats(0.0), g.floats(6.0)])
    h = g.op("Pad", [h, g.ints([0, 0, 1, 1, 0, 0, 1, 1])], mode="constant")
    h = g.op("MaxPool", [h], kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1)
    h = g.op("Relu", [g.conv(h, 8, 6)])
    if opset >= 18:
        a, b = g.op("Split", [h], n_out=2, axis=1, num_outputs=2)
    elif opset >= 13:
        a, b = g.op("Split", [h, g.ints([3, 3])], n_out=2, axis=1)
    else:
        a, b = g.op("Split", [h], n_out=2, axis=1, split=[3, 3])
    h = g.op("Concat", [b, g.op("Mul", [a, g.floats(0.5)])], axis=1)
    if opset >= 18:
        r = g.op("ReduceMean", [h, g.ints([3])], keepdims=1)
    else:
        r = g.op("ReduceMean", [h], axes=[3], keepdims=1)
    if opset >= 13:
        s = g.op("Squeeze", [r, g.ints([3])])
    else:
        s = g.op("Squeeze", [r], axes=[3])
    f = g.op("Flatten", [s])
    # 9x9 -conv s2-> 5x5 -pad-> 7x7 -maxpool ceil-> 3x3; mean over W, squeeze: (2, 6, 3) -> 18
    logits = g.op("Gemm", [f, g.weight(5, 18), g.weight(5)], transB=1)
    y = g.op("Softmax", [logits], axis=1, name="probs")
    return g.model([logits, y], opset=opset), g.inputs


@pytest.mark.parametrize("opset", list(range(11, 19)))
def test_small_classifier_every_opset(opset):
    model, feeds = small_classifier(opset)
    for compiled in (False, True):
        assert_parity(model, feeds, rtol=CHAIN_RTOL, atol=CHAIN_ATOL, compiled=compiled)


# ---------------------------------------------------------------------------------------
# taps=
# ---------------------------------------------------------------------------------------


def _tap_model():
    g = G(61)
    x = g.input(2, 3, 6, 6, name="input")
    c = g.conv(x, 3, 4, name="conv1")
    r = g.op("Relu", [g.bn(c, 4)], name="relu1")
    p = g.op("MaxPool", [r], kernel_shape=[2, 2], strides=[2, 2], name="pool1")
    g.op("Transpose", [p], perm=[0, 2, 3, 1], name="nhwc_view")
    f = g.op("Flatten", [p], name="flat")
    logits = g.op("Gemm", [f, g.weight(3, 36), g.weight(3)], transB=1, name="logits")
    return g, logits, ["conv1", "relu1", "pool1", "nhwc_view", "flat"]


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_taps_match_onnxruntime_extra_outputs(compiled):
    g, logits, taps = _tap_model()
    ref = dict(zip([logits, *taps], run_ort(g.model([logits, *taps]), g.inputs)))
    model = load(g.model(logits))
    got = model(g.inputs["input"], taps=taps, compiled=compiled)
    assert set(got) == set(taps)
    for name in taps:
        assert tuple(got[name].shape) == ref[name].shape, name
        np.testing.assert_allclose(
            np.asarray(got[name]), ref[name], rtol=CHAIN_RTOL, atol=CHAIN_ATOL, err_msg=name
        )
    np.testing.assert_allclose(
        np.asarray(model(g.inputs["input"], compiled=compiled)),
        ref[logits],
        rtol=CHAIN_RTOL,
        atol=CHAIN_ATOL,
    )

    # layout= names where the channels go. "nhwc_view" is a Transpose (0, 2, 3, 1) of a
    # channels-first tensor: the graph already holds it channels-last, so NHWC returns it as
    # the graph has it and NCHW moves its channels back to axis 1.
    nhwc = model(g.inputs["input"], taps=taps, layout="NHWC", compiled=compiled)
    nchw = model(g.inputs["input"], taps=taps, layout="NCHW", compiled=compiled)
    for name in taps:
        want_last = want_first = ref[name]
        if name == "nhwc_view":
            want_first = np.moveaxis(want_last, -1, 1)
        elif want_last.ndim >= 3:
            want_last = np.moveaxis(want_first, 1, -1)
        for got, want in ((nhwc[name], want_last), (nchw[name], want_first)):
            np.testing.assert_allclose(
                np.asarray(got), want, rtol=CHAIN_RTOL, atol=CHAIN_ATOL, err_msg=name
            )


# ---------------------------------------------------------------------------------------
# Refused by design, with a clear error
# ---------------------------------------------------------------------------------------


def _refused(model, feeds):
    with pytest.raises(OnnxImportError, match="support"):
        load(model)(feeds if len(feeds) > 1 else next(iter(feeds.values())), compiled=False)


def test_refuses_conv3d():
    g = G(70)
    y = g.op("Conv", [g.input(1, 2, 4, 4, 4), g.weight(3, 2, 3, 3, 3)])
    _refused(g.model(y), g.inputs)


def test_refuses_conv_transpose_3d():
    g = G(71)
    y = g.op("ConvTranspose", [g.input(1, 2, 3, 3, 3), g.weight(2, 3, 2, 2, 2)])
    _refused(g.model(y), g.inputs)


def test_refuses_max_pool_3d():
    g = G(72)
    y = g.op("MaxPool", [g.input(1, 2, 4, 4, 4)], kernel_shape=[2, 2, 2])
    _refused(g.model(y), g.inputs)


def test_refuses_cubic_resize():
    g = G(73)
    y = g.op("Resize", [g.input(1, 2, 4, 4), "", g.floats([1, 1, 2, 2])], mode="cubic")
    _refused(g.model(y), g.inputs)


@pytest.mark.parametrize("policy", ["not_larger", "not_smaller"])
def test_refuses_resize_keep_aspect_ratio_policy(policy):
    g = G(76)
    y = g.op(
        "Resize",
        [g.input(1, 2, 4, 6), "", "", g.ints([1, 2, 7, 15])],
        mode="nearest",
        keep_aspect_ratio_policy=policy,
    )
    _refused(g.model(y, opset=18), g.inputs)


def test_refuses_max_pool_indices():
    g = G(74)
    y, idx = g.op("MaxPool", [g.input(1, 2, 4, 4)], n_out=2, kernel_shape=[2, 2])
    _refused(g.model([y, idx], output_types={idx: TensorProto.INT64}), g.inputs)


def test_refuses_unknown_op_at_load():
    g = G(75)
    y = g.op("Det", [g.input(3, 3)])
    with pytest.raises(OnnxImportError, match="Det.*[Ss]upported ops"):
        load(g.model(y))


# ---------------------------------------------------------------------------------------
# Extra corners found while writing the above
# ---------------------------------------------------------------------------------------


def test_resize_keep_aspect_ratio_policy_stretch_opset18():
    g = G(80)
    c = g.conv(g.input(1, 3, 4, 6), 3, 2)
    y = g.op(
        "Resize",
        [c, "", "", g.ints([1, 2, 7, 15])],
        mode="nearest",
        keep_aspect_ratio_policy="stretch",
    )
    g.check(y, opset=18)


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_1d_after_conv1d(mode):
    g = G(81)
    c = g.op("Conv", [g.input(2, 3, 7), g.weight(4, 3, 3)], pads=[1, 1])
    g.check(g.op("Resize", [c, "", g.floats([1, 1, 2.5])], mode=mode))


def test_split_num_outputs_uneven_opset18():
    g = G(82)
    c = g.conv(g.input(1, 3, 4, 5), 3, 7)
    g.check(g.op("Split", [c], n_out=3, axis=1, num_outputs=3), opset=18)


def test_broadcast_4d_conv_with_3d_tagged_reduction():
    """A rank-3 tensor that is itself tagged (a conv output reduced over N) broadcast against
    the rank-4 conv output."""
    g = G(83)
    c = g.conv(g.input(2, 3, 4, 5), 3, 4)
    m = g.op("ReduceMean", [c], axes=[0], keepdims=0)
    g.check([g.op("Sub", [c, m]), g.op("Sub", [m, c])], opset=13)


def test_dynamic_batch_inside_user_tf_function():
    """Traced once with an unknown batch (tf.function with a None batch signature), then run
    at two batch sizes: every op of the chain must work without a static batch."""
    import tensorflow as tf

    g = G(84)
    x = g.input(2, 3, 8, 8)
    c = g.op("Relu", [g.bn(g.conv(x, 3, 4, strides=[2, 2]), 4)])
    c = g.op("Add", [c, g.weight(4, 1, 1)])
    p = g.op("MaxPool", [c], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 0, 0], ceil_mode=1)
    u = g.op("Resize", [p, "", g.floats([1, 1, 2, 2])], mode="nearest")
    a, b = g.op("Split", [g.op("Concat", [u, c], axis=1), g.ints([3, 5])], n_out=2, axis=1)
    s = g.op("GlobalAveragePool", [b])
    n = g.op("Unsqueeze", [g.op("Gather", [g.op("Shape", [a]), g.ints(0)], axis=0), g.ints([0])])
    f1 = g.op("Reshape", [a, g.op("Concat", [n, g.ints([-1])], axis=0)])
    f2 = g.op("Flatten", [s])
    f3 = g.op("Reshape", [g.op("Transpose", [a], perm=[0, 2, 3, 1]), g.ints([0, -1])])
    y = g.op(
        "Concat",
        [
            g.op("MatMul", [f1, g.weight(48, 3)]),
            g.op("Gemm", [f2, g.weight(5, 3)]),
            g.op("MatMul", [f3, g.weight(48, 3)]),
        ],
        axis=1,
    )
    model = g.model(y, opset=13)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    tf_model = load(model)
    fn = tf.function(
        lambda t: tf_model(t, compiled=False),
        input_signature=[tf.TensorSpec([None, 3, 8, 8], tf.float32)],
    )
    for batch in (1, 3):
        xb = g.rand(batch, 3, 8, 8)
        (want,) = run_ort(model, {x: xb})
        np.testing.assert_allclose(fn(xb).numpy(), want, rtol=CHAIN_RTOL, atol=CHAIN_ATOL)


@COMPILED
def test_chain_shufflenet_channel_shuffle(compiled):
    """Reshape (N, g, C/g, H, W) -> Transpose(0, 2, 1, 3, 4) -> Reshape (N, C, H, W) -> Conv."""
    g = G(85)
    c = g.conv(g.input(2, 3, 4, 5), 3, 6)
    r = g.op("Reshape", [c, g.ints([2, 2, 3, 4, 5])])
    t = g.op("Transpose", [r], perm=[0, 2, 1, 3, 4])
    s = g.op("Reshape", [t, g.ints([2, 6, 4, 5])])
    g.check(g.conv(s, 6, 4, k=1), compiled=compiled, rtol=CHAIN_RTOL, atol=CHAIN_ATOL)


@COMPILED
def test_chain_convnext_layernorm_in_nhwc_view(compiled):
    """ConvNeXt as exported: depthwise conv, NHWC view, LayerNorm written out over the last
    axis, pointwise Linear (MatMul), GELU via Erf, back to NCHW, residual Add."""
    g = G(86)
    x = g.input(2, 4, 5, 6)
    d = g.op("Conv", [x, g.weight(4, 1, 3, 3), g.weight(4)], group=4, pads=[1] * 4)
    t = g.op("Transpose", [d], perm=[0, 2, 3, 1])
    mu = g.op("ReduceMean", [t], axes=[-1], keepdims=1)
    xc = g.op("Sub", [t, mu])
    var = g.op("ReduceMean", [g.op("Pow", [xc, g.floats(2.0)])], axes=[-1], keepdims=1)
    ln = g.op("Div", [xc, g.op("Sqrt", [g.op("Add", [var, g.floats(1e-6)])])])
    ln = g.op("Add", [g.op("Mul", [ln, g.weight(4)]), g.weight(4)])
    h = g.op("Add", [g.op("MatMul", [ln, g.weight(4, 8)]), g.weight(8)])
    erf = g.op("Erf", [g.op("Div", [h, g.floats(np.sqrt(2.0))])])
    gelu = g.op("Mul", [g.op("Mul", [h, g.op("Add", [erf, g.floats(1.0)])]), g.floats(0.5)])
    h = g.op("Add", [g.op("MatMul", [gelu, g.weight(8, 4)]), g.weight(4)])
    back = g.op("Transpose", [h], perm=[0, 3, 1, 2])
    g.check(g.op("Add", [x, back]), compiled=compiled, rtol=CHAIN_RTOL, atol=CHAIN_ATOL)


def test_chain_comparisons_on_conv_output():
    g = G(87)
    c = g.conv(g.input(1, 3, 4, 5), 3, 4)
    k = g.weight(4, 1, 1)
    outs = [g.op(op, [c, k]) for op in ("Greater", "Less", "Equal")]
    outs.append(g.op("Not", [outs[0]]))
    outs.append(g.op("Cast", [outs[1]], to=TensorProto.FLOAT))
    g.check(outs, output_types={o: TensorProto.BOOL for o in outs[:4]})


def test_chain_pow_and_unary_on_conv_output():
    g = G(88)
    c = g.conv(g.input(1, 3, 4, 5), 3, 4)
    a = g.op("Add", [g.op("Abs", [c]), g.floats(0.1)])
    outs = [
        g.op("Pow", [c, g.floats(2.0)]),
        g.op("Pow", [a, g.floats(g.rand(4, 1, 1))]),
        g.op("Sqrt", [a]),
        g.op("Log", [a]),
        g.op("Reciprocal", [a]),
        g.op("Exp", [c]),
        g.op("Neg", [c]),
        g.op("Floor", [c]),
        g.op("Ceil", [c]),
        g.op("Sin", [c]),
        g.op("Cos", [c]),
    ]
    g.check(outs)


@pytest.mark.parametrize("opset", [11, 13, 18])
def test_chain_squeeze_without_axes_and_reduce_empty_axes(opset):
    g = G(89)
    c = g.conv(g.input(2, 3, 4, 5), 3, 4)
    p = g.op("GlobalMaxPool", [c])
    outs = [g.op("Squeeze", [p])]
    if opset >= 18:
        outs.append(g.op("ReduceMean", [c, g.ints([])], keepdims=0, noop_with_empty_axes=1))
    if opset >= 13:
        outs.append(g.op("ReduceSum", [c], keepdims=0))
    g.check(outs, opset=opset)


def test_chain_gather_negative_indices_on_channels():
    g = G(90)
    c = g.conv(g.input(2, 3, 4, 5), 3, 6)
    g.check(
        [g.op("Gather", [c, g.ints([-1, 0])], axis=1), g.op("Gather", [c, g.ints(-2)], axis=-1)]
    )


@COMPILED
def test_chain_conv1d_stack(compiled):
    """1-D: conv -> BN -> Relu -> MaxPool -> Pad(reflect) -> Slice -> Concat -> Flatten -> Gemm."""
    g = G(91)
    c = g.op("Conv", [g.input(2, 3, 12), g.weight(4, 3, 3), g.weight(4)], pads=[1, 1])
    h = g.op("Relu", [g.bn(c, 4)])
    h = g.op("MaxPool", [h], kernel_shape=[2], strides=[2])
    p = g.op("Pad", [h, g.ints([0, 0, 2, 0, 0, 1])], mode="reflect")
    s = g.op("Slice", [p, g.ints([1]), g.ints([3]), g.ints([1])])
    cat = g.op("Concat", [p, g.op("Mul", [s, g.weight(2, 1)])], axis=1)
    norm = g.op("InstanceNormalization", [cat, g.floats(np.ones(6)), g.floats(np.zeros(6))])
    f = g.op("Flatten", [norm])
    g.check(
        g.op("Gemm", [f, g.weight(6 * 9, 3), g.weight(3)]),
        compiled=compiled,
        rtol=CHAIN_RTOL,
        atol=CHAIN_ATOL,
    )


def test_small_classifier_with_xla():
    """The same graph under ``jit_compile=True`` (XLA) still gives onnxruntime's output."""
    model, feeds = small_classifier(17)
    want = run_ort(model, feeds)
    got = load(model, jit_compile=True)(feeds["input"], compiled=True)
    for w, o in zip(want, got, strict=True):
        np.testing.assert_allclose(np.asarray(o), w, rtol=CHAIN_RTOL, atol=CHAIN_ATOL)
