"""The imported model answers graph questions once: ``conv_kernels()`` (which convolution
makes each tensor's channels) and ``receptive_field(tap)`` (the field of a layer's units),
beside ``classifier()`` and ``bias_terms()`` (tested with gradient inversion and FullGrad)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx_builders import make_model

from converters import onnx_to_tf
from converters.onnx_to_tf.errors import GraphQueryError
from converters.onnx_to_tf.graph_queries import ConvLayer, NotAConv


def _conv_pool_model():
    """x -> Conv(3x3, pad 1) -> Relu -> MaxPool(2, stride 2) -> Conv(3x3, stride 2, no pad)."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2],
                         name="pool1"),
        helper.make_node("Conv", ["p1", "w2"], ["c2"], strides=[2, 2], name="conv2"),
    ]
    inits = {"w1": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
             "w2": rng.standard_normal((5, 4, 3, 3)).astype(np.float32)}
    return make_model(nodes, {"x": np.zeros((1, 3, 16, 16), np.float32)}, ["c2"], inits)


def test_conv_kernels_follow_pointwise_ops_and_stop_at_pooling():
    model = onnx_to_tf.load(_conv_pool_model())
    found = model.conv_kernels()
    assert found["c1"] == found["r1"] == ConvLayer("conv1", "w1", "c1", 1, True)
    assert found["p1"] == NotAConv("MaxPool", "pool1")
    assert found["c2"].node == "conv2" and found["x"] == NotAConv("input", "x")
    assert model.conv_kernels() is found  # answered once, then kept


def test_receptive_field_by_the_rules_and_kept():
    model = onnx_to_tf.load(_conv_pool_model())
    # conv1 3x3 pad 1: size 3, start -1; pool 2/2: size 4, jump 2; conv2 3x3/2: size 8, jump 4
    rf = model.receptive_field("c2")
    assert (rf.size, rf.jump, rf.start) == ((8, 8), (4, 4), (-1, -1))
    assert model.receptive_field("c2") is rf
    assert model.with_contract().receptive_field("c2", (16, 16)) is rf


def test_the_model_answers_like_the_zoo_technique(resnet20):
    from tf_impl.visualization.receptive_field import receptive_field as technique

    assert technique(resnet20, "layer1") == resnet20.receptive_field("layer1")
    convs = [c for c in resnet20.conv_kernels().values() if isinstance(c, ConvLayer)]
    assert convs and all(c.stored for c in convs)


def test_an_op_without_a_rule_is_named():
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
             helper.make_node("Flatten", ["c"], ["f"], name="flat")]
    proto = make_model(nodes, {"x": np.zeros((1, 3, 8, 8), np.float32)}, ["f"],
                       {"w": np.ones((4, 3, 1, 1), np.float32)})
    model = onnx_to_tf.load(proto)
    with pytest.raises(GraphQueryError, match="Flatten.*'flat'"):
        model.receptive_field("f")
    assert model.conv_kernels()["f"] == NotAConv("Flatten", "flat")
