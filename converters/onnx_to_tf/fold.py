"""Graph rewrites that change no number the caller sees, only what runs.

:func:`simplify` (at import): no-op nodes leave the graph. A Cast to the type its input
already has, an Identity, an inference-mode Dropout and a Transpose pair that cancels (a
perm, then its inverse) are bypassed; converted Caffe files carry hundreds of them. Their
output names stay tappable: they resolve to the tensor they copied.

:func:`fold_batchnorm` (for ``freeze``, whose weights are constants): an eval-mode
BatchNormalization that only follows a convolution is folded into that convolution's
weights and bias, ``w' = w * s``, ``b' = (b - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)`` per output channel. TF's graph optimiser fuses a convolution
with a following FusedBatchNorm only in some patterns (not after a depthwise convolution,
not before HardSwish without oneDNN); folded, every such pair is one convolution with a bias.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx

from .graph import Node
from .layout import inverse

__all__ = ["simplify", "fold_batchnorm"]

_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
                onnx.TensorProto.BFLOAT16}
# ops whose output has the element type of their first input
_SAME_TYPE = {
    "Conv", "ConvTranspose", "BatchNormalization", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu",
    "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Softplus", "Clip", "Add", "Sub", "Mul",
    "Div", "Max", "Min", "Sum", "Mean", "MaxPool", "AveragePool", "GlobalAveragePool",
    "GlobalMaxPool", "Flatten", "Reshape", "Transpose", "Concat", "Gemm", "MatMul", "Softmax",
    "LogSoftmax", "Pad", "Slice", "Squeeze", "Unsqueeze", "Identity", "Dropout", "LRN",
    "InstanceNormalization", "Resize", "Upsample", "ReduceMean", "ReduceSum", "ReduceMax",
    "Split", "Neg", "Abs", "Sqrt", "Exp", "Log", "Erf", "Gather", "Expand", "Tile",
}


def _elem_types(nodes: list[Node], known: dict[str, int]) -> dict[str, int]:
    """ONNX element type of each tensor, where it follows from the graph (None elsewhere)."""
    types = dict(known)
    for n in nodes:
        if n.op_type == "Cast":
            t = int(n.attr("to"))
        elif n.op_type in _SAME_TYPE:
            t = next((types[i] for i in n.inputs if i in types), None)
        elif n.op_type == "Constant":
            value = n.attr("value")
            t = onnx.helper.np_dtype_to_tensor_dtype(np.asarray(value).dtype) \
                if value is not None else None
        else:
            t = None
        if t is not None:
            for o in n.outputs:
                if o:
                    types[o] = t
    return types


def simplify(nodes: list[Node], known_types: dict[str, int], keep: set[str]
             ) -> tuple[list[Node], dict[str, str]]:
    """(the nodes without no-ops, {removed tensor: the tensor it equals}).

    ``known_types`` gives the element types of graph inputs and initializers; tensors in
    ``keep`` (the graph outputs) are never removed.
    """
    types = _elem_types(nodes, known_types)
    same: dict[str, str] = {}  # removed output -> its source

    def source(name: str) -> str:
        while name in same:
            name = same[name]
        return name

    removed: set[int] = set()
    for k, n in enumerate(nodes):
        out = n.outputs[0] if n.outputs else ""
        if not out or out in keep or any(o for o in n.outputs[1:]):
            continue
        src = n.inputs[0] if n.inputs else ""
        if n.op_type in ("Identity", "Dropout") and src:
            if n.op_type == "Dropout" and len(n.inputs) > 2 and n.inputs[2]:
                continue  # a training_mode input: not provably inference
            same[out] = src
        elif n.op_type == "Cast" and src and types.get(src) == int(n.attr("to")) \
                and types.get(src) in _FLOAT_TYPES:
            same[out] = src
        elif n.op_type == "Transpose" and src:
            prev = next((p for p in nodes[:k] if src in p.outputs), None)
            perm = tuple(int(p) for p in (n.attr("perm") or ()))
            if prev is None or prev.op_type != "Transpose" or not perm:
                continue
            pperm = tuple(int(p) for p in (prev.attr("perm") or ()))
            if pperm and len(pperm) == len(perm) and inverse(pperm) == perm:
                same[out] = prev.inputs[0]
        else:
            continue
        removed.add(k)
    if not removed:
        return nodes, {}
    kept = []
    for k, n in enumerate(nodes):
        if k in removed:
            continue
        if any(i in same for i in n.inputs):
            n = replace(n, inputs=[source(i) if i else i for i in n.inputs])
        kept.append(n)
    # the first Transpose of a cancelled pair stays (its output may be tapped; a Transpose
    # is a layout tag, it moves no data) and is pruned from any run that does not need it
    return kept, {k: source(k) for k in same}


def fold_batchnorm(plan: list[Node], weights: dict[str, np.ndarray], perms: dict,
                   keep: set[str]) -> tuple[list[Node], dict[str, np.ndarray]]:
    """(plan with Conv -> BatchNormalization pairs folded, {new constant: ONNX-layout array}).

    ``weights`` holds the variables' values in their stored layout (``perms`` maps a name to
    its storage permutation); a pair is folded when the BN reads constant statistics, the
    Conv's weights are constants and the Conv's output is read by nothing else and not in
    ``keep`` (tapped).
    """
    readers: dict[str, int] = {}
    for n in plan:
        for i in n.inputs:
            readers[i] = readers.get(i, 0) + 1
    producer = {o: n for n in plan for o in n.outputs if o}

    def onnx_array(name):
        arr = weights[name]
        perm = perms.get(name)
        return arr if perm is None else np.transpose(arr, inverse(perm))

    folded: dict[int, Node] = {}  # by id(): ONNX node names need not be unique
    dropped: set[int] = set()
    extra: dict[str, np.ndarray] = {}
    for bn in plan:
        if bn.op_type != "BatchNormalization" or len(bn.inputs) < 5:
            continue
        conv = producer.get(bn.inputs[0])
        if (conv is None or conv.op_type != "Conv" or readers.get(bn.inputs[0]) != 1
                or bn.inputs[0] in keep or any(o for o in bn.outputs[1:])
                or not all(i in weights for i in bn.inputs[1:5])
                or conv.inputs[1] not in weights
                or (len(conv.inputs) > 2 and conv.inputs[2] and conv.inputs[2] not in weights)):
            continue
        gamma, beta, mean, var = (onnx_array(i).astype(np.float64) for i in bn.inputs[1:5])
        s = gamma / np.sqrt(var + float(bn.attr("epsilon", 1e-5)))
        w = onnx_array(conv.inputs[1])
        b = onnx_array(conv.inputs[2]) if len(conv.inputs) > 2 and conv.inputs[2] else 0.0
        wf = (w.astype(np.float64) * s.reshape(-1, *([1] * (w.ndim - 1)))).astype(w.dtype)
        bf = ((b - mean) * s + beta).astype(w.dtype)
        wname = f"{bn.outputs[0]}/folded_weight"  # tensor names are unique
        bname = f"{bn.outputs[0]}/folded_bias"
        extra[wname], extra[bname] = wf, bf
        folded[id(bn)] = replace(conv, name=f"{conv.name}+{bn.name}",
                                 inputs=[conv.inputs[0], wname, bname], outputs=[bn.outputs[0]])
        dropped.add(id(conv))
    if not folded:
        return plan, {}
    return [folded.get(id(n), n) for n in plan if id(n) not in dropped], extra
