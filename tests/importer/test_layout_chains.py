"""Operator-level parity of the ONNX -> TF importer with onnxruntime.

ONNX's own node cases (tests/importer/test_onnx_backend_cases.py) check each op once, mostly on
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
import pytest
from onnx import TensorProto
from onnx_builders import CHAIN_ATOL, CHAIN_RTOL, COMPILED, G, assert_parity, run_ort

from converters.onnx_to_tf import load

# ---------------------------------------------------------------------------------------
# Layout chains: where tags meet
# ---------------------------------------------------------------------------------------



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
