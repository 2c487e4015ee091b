"""Conv and ConvTranspose: attribute combinations exporters emit (asymmetric pads, stride 2 on odd
sizes, SAME_LOWER, groups, dilations, output_padding), against onnxruntime.

Every graph is small and random (seeded numpy; builders in ``tests/onnx_builders.py``);
onnxruntime is the reference, at rtol 1e-3 / atol 1e-5 for single ops (the field's
operator-test tolerance) and a looser absolute tolerance for multi-op chains.
"""

from __future__ import annotations

import pytest
from onnx_builders import CHAIN_ATOL, CHAIN_RTOL, G, single

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
