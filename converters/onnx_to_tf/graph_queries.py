"""Questions about an imported graph that techniques ask, answered once per model.

The model answers them (``model.classifier()``, ``model.bias_terms()``) and keeps the answer,
so a technique does not walk ``model.nodes`` itself and an attack that asks several times pays
once:

- :func:`find_classifier`: the last fully connected layer (Gemm or MatMul with a weight
  initializer) and how its weight is laid out; gradient inversion reads labels from its
  gradient.
- :func:`find_bias_terms`: the nodes that add a bias to an activation on the way to the
  logits (FullGrad's bias terms).
- :func:`find_conv_layers`: for every activation, the convolution whose kernels make its
  channels (filter pictures). The receptive field is :mod:`.receptive_field`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BiasLayer", "ConvLayer", "FCLayer", "NotAConv", "find_bias_terms", "find_classifier",
           "find_conv_layers"]

_BIAS_OPS = ("Conv", "ConvTranspose", "Gemm", "BatchNormalization", "Add", "Sub")
# ops that keep each channel's meaning (pointwise in space and in channels): walking back
# through them from a layer reaches the convolution whose kernels define its channels
_POINTWISE = {
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish",
    "Tanh", "Softplus", "Softsign", "Clip", "Identity", "Dropout", "BatchNormalization", "Abs",
    "Neg", "Exp", "Log", "Sqrt", "Erf", "Gelu", "Mish", "Cast", "Add", "Sub", "Mul", "Div",
    "Pow", "Max", "Min",
}


@dataclass(frozen=True)
class FCLayer:
    """The classifier's last fully connected layer.

    ``weight`` is the ONNX initializer name; ``out_axis`` is the axis of the weight that
    indexes classes (0 for PyTorch-style (out, in) Gemm weights with transB=1, 1 for
    Keras-style (in, out) MatMul weights); ``bias`` the bias initializer or None.
    """

    weight: str
    bias: str | None
    out_axis: int
    num_classes: int
    node: str

    def per_class(self, grad_w: np.ndarray) -> np.ndarray:
        """The weight gradient as (classes, features)."""
        g = np.asarray(grad_w)
        return g if self.out_axis == 0 else g.T


@dataclass(frozen=True)
class BiasLayer:
    """A node that adds a bias: its name and type, the tensor the bias is added to (the node's
    output), and where the bias comes from (``operand``: the initializer or constant; for
    BatchNormalization the node's index in ``model.bn_layers``); the bias added is
    ``sign * scale * operand`` (``sign`` -1 for ``x - b``, ``scale`` Gemm's ``beta``)."""

    name: str
    op_type: str
    tensor: str
    operand: str
    sign: float = 1.0
    scale: float = 1.0


def _consumers(graph) -> dict[str, list]:
    out: dict[str, list] = {}
    for n in graph.nodes:
        for i in n.inputs:
            out.setdefault(i, []).append(n)
    return out


def find_classifier(graph) -> FCLayer | None:
    """The last Gemm/MatMul with a 2-D weight initializer in ``graph`` (a TFModel), or None
    when the classifier is not fully connected (e.g. SqueezeNet's 1x1 convolution)."""
    consts = set(graph.onnx_variables)
    consumers = _consumers(graph)
    for node in reversed(graph.nodes):
        if node.op_type not in ("Gemm", "MatMul") or len(node.inputs) < 2:
            continue
        w = node.inputs[1]
        if w not in consts:
            continue
        shape = tuple(graph.onnx_variables[w].shape)
        if len(shape) != 2:
            continue
        if node.op_type == "Gemm":
            if node.attr("transA", 0):
                continue
            out_axis = 0 if node.attr("transB", 0) else 1
            bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] in consts else None
        else:
            out_axis = 1
            bias = None
            for nxt in consumers.get(node.outputs[0], []):
                if nxt.op_type == "Add":
                    other = [i for i in nxt.inputs if i != node.outputs[0]]
                    if other and other[0] in consts:
                        bias = other[0]
        return FCLayer(w, bias, out_axis, int(shape[out_axis]), node.name)
    return None


def _carries_the_input(graph, inputs) -> set[str]:
    """The tensors whose values depend on the input's values: not shape arithmetic (a Shape or
    Size node's output and what is computed from it, e.g. the split sizes of a ShuffleNet
    chunk, Gather(Shape) + 1), which has Adds of constants too but no bias."""
    live = {spec.name for spec in inputs}
    for node in graph.nodes:
        if node.op_type not in ("Shape", "Size") and any(i in live for i in node.inputs if i):
            live.update(o for o in node.outputs if o)
    return live


def find_bias_terms(graph, inputs, feeding: set[str]) -> tuple[BiasLayer, ...]:
    """The nodes of ``graph`` that add a bias to an activation computed from ``inputs`` and
    whose (first) output is in ``feeding`` (what the logits depend on), in graph order."""
    live = _carries_the_input(graph, inputs)
    consts = {o for n in graph.nodes if n.op_type == "Constant" for o in n.outputs}
    fixed = set(graph.onnx_variables) | consts
    bn_index = {b.name: k for k, b in enumerate(graph.bn_layers)}
    found = []
    for node in graph.nodes:
        if node.op_type not in _BIAS_OPS or not node.outputs or node.outputs[0] not in feeding:
            continue
        out, ins = node.outputs[0], node.inputs
        if node.op_type in ("Conv", "ConvTranspose", "Gemm"):
            if len(ins) > 2 and ins[2] and ins[2] in fixed:
                beta = float(node.attr("beta", 1.0)) if node.op_type == "Gemm" else 1.0
                found.append(BiasLayer(node.name, node.op_type, out, ins[2], scale=beta))
        elif node.op_type == "BatchNormalization":
            if node.name in bn_index:
                found.append(BiasLayer(node.name, node.op_type, out, str(bn_index[node.name])))
        elif len(ins) == 2:  # Add / Sub: exactly one constant operand
            const = [i for i in (0, 1) if ins[i] in fixed]
            if len(const) == 1 and ins[1 - const[0]] in live:
                k = const[0]
                sign = -1.0 if (node.op_type == "Sub" and k == 1) else 1.0
                found.append(BiasLayer(node.name, node.op_type, out, ins[k], sign))
    return tuple(found)


@dataclass(frozen=True)
class ConvLayer:
    """A Conv node whose kernels make a tensor's channels: the node, its kernel tensor, the
    tensor it produces, its groups, and whether the kernels are stored (an initializer, in
    ``model.onnx_variables``) rather than computed in the graph."""

    node: str
    weight: str
    output: str
    groups: int
    stored: bool


@dataclass(frozen=True)
class NotAConv:
    """Why a tensor's channels are not one convolution's: the node whose op stops the walk
    back (pooling, a sum of two branches, ...); ``op`` is ``"input"`` for the graph input."""

    op: str
    node: str


def find_conv_layers(graph) -> dict[str, ConvLayer | NotAConv]:
    """For every tensor computed from the input of ``graph`` (a TFModel), in graph order: the
    Conv whose kernels make its channels (its output, then through pointwise ops with one
    activation operand: ReLU, BatchNorm, a bias Add...), or the node that stops that."""
    out: dict[str, ConvLayer | NotAConv] = {
        s.name: NotAConv("input", s.name) for s in graph.inputs}
    stored = set(graph.onnx_variables)
    for node in graph.nodes:
        if node.op_type in ("Constant", "ConstantOfShape"):
            continue
        acts = [i for i in node.inputs if i in out]
        if not acts:
            continue  # shape or constant arithmetic
        if node.op_type == "Conv":
            w = node.inputs[1] if len(node.inputs) > 1 else ""
            found = ConvLayer(node.name, w, node.outputs[0], int(node.attr("group", 1)),
                              w in stored)
        elif node.op_type in _POINTWISE and len(acts) == 1:
            found = out[acts[0]]
        else:
            found = NotAConv(node.op_type, node.name)
        out.update({o: found for o in node.outputs if o})
    return out
