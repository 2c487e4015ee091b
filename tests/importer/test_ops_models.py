"""Whole small graphs: a small classifier at every supported opset (11..18), the taps API
against onnxruntime's extra outputs, and the ops refused by design with a clear error.

Every graph is small and random (seeded numpy; builders in ``tests/onnx_builders.py``);
onnxruntime is the reference, at rtol 1e-3 / atol 1e-5 for single ops (the field's
operator-test tolerance) and a looser absolute tolerance for multi-op chains.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto
from onnx_builders import CHAIN_ATOL, CHAIN_RTOL, G, assert_parity, run_ort

from converters.onnx_to_tf import OnnxImportError, load

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


def test_small_classifier_with_xla():
    """The same graph under ``jit_compile=True`` (XLA) still gives onnxruntime's output."""
    model, feeds = small_classifier(17)
    want = run_ort(model, feeds)
    got = load(model, jit_compile=True)(feeds["input"], compiled=True)
    for w, o in zip(want, got, strict=True):
        np.testing.assert_allclose(np.asarray(o), w, rtol=CHAIN_RTOL, atol=CHAIN_ATOL)
