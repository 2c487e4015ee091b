"""Turning an ONNX graph into what ``TFModel`` runs: nodes with their handlers, weights as
variables (conv kernels stored as TF wants them), input specs and BatchNorm layers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx
import tensorflow as tf
from onnx import numpy_helper

from .errors import UnsupportedOpError
from .graph import Node, parse_attributes
from .layout import Value
from .mmap_weights import RawWeights
from .ops.conv import kernel_storage_perm
from .registry import lookup, supported_ops


@dataclass(frozen=True)
class BNLayer:
    """One BatchNormalization node: its input tensor and its statistics/affine variables."""

    name: str
    input: str
    output: str
    running_mean: tf.Variable
    running_var: tf.Variable
    scale: tf.Variable
    bias: tf.Variable
    epsilon: float


@dataclass(frozen=True)
class InputSpec:
    """One graph input: name, NCHW shape (None where symbolic) and dtype."""

    name: str
    shape: tuple[int | None, ...]
    dtype: tf.DType


# (op, input index) pairs that are static parameters (shapes, scales, pads), not weights: a
# float initializer read only there stays a numpy constant so it folds at trace time.
PARAMETER_INPUTS = {
    "Resize": {1, 2, 3},
    "Upsample": {1},
    "Pad": {1, 2, 3},
    "Reshape": {1},
    "Expand": {1},
    "Slice": {1, 2, 3, 4},
    "Tile": {1},
    "Unsqueeze": {1},
    "Squeeze": {1},
    "Split": {1},
    "ConstantOfShape": {0},
}


def is_parameter(consumers: list[tuple[str, int]]) -> bool:
    """Whether every reader takes the initializer as a static parameter."""
    return bool(consumers) and all(
        idx in PARAMETER_INPUTS.get(op, ()) or (op.startswith("Reduce") and idx == 1)
        for op, idx in consumers
    )


def storage_perm(rank: int, consumers: list[tuple[str, int]]) -> tuple[int, ...] | None:
    """Store conv kernels the way TF wants them (HWIO) when only convolutions read them."""
    if (
        rank >= 3
        and consumers
        and all(op in ("Conv", "ConvTranspose") and idx == 1 for op, idx in consumers)
    ):
        return kernel_storage_perm(rank)
    return None


CHUNK_BYTES = 32 * 2**20


def to_variable(arr: np.ndarray, dtype: tf.DType, name: str, chunk_bytes: int = CHUNK_BYTES):
    """A variable holding ``arr`` (cast to ``dtype``) without a transient full-size copy.

    ``tf.Variable(arr)`` stages the array in a temporary tensor and copies it again into the
    variable (two extra copies at the peak: 800 MB for VGG16's 392 MB fc6). Large weights are
    therefore written into a fresh variable slice by slice, in place
    (``ResourceStridedSliceAssign`` on the handle: no read of the variable, so no
    copy-on-write of its buffer).
    """
    np_dtype = dtype.as_numpy_dtype
    if arr.nbytes <= chunk_bytes or arr.ndim == 0:
        return tf.Variable(np.asarray(arr, dtype=np_dtype), name=name, trainable=True)
    var = tf.Variable(tf.zeros(arr.shape, dtype), name=name, trainable=True)
    rows = max(1, chunk_bytes // max(1, arr[0].nbytes))
    rest = list(arr.shape[1:])
    for i in range(0, arr.shape[0], rows):
        j = min(i + rows, arr.shape[0])
        tf.raw_ops.ResourceStridedSliceAssign(
            ref=var.handle,
            begin=[i] + [0] * len(rest),
            end=[j, *rest],
            strides=[1] * arr.ndim,
            value=np.asarray(arr[i:j], dtype=np_dtype),
        )
    return var


def variable_name(name: str) -> str:
    """A TF-safe variable name for an ONNX name."""
    return re.sub(r"[^A-Za-z0-9_.\-/]", "_", name).lstrip("/_.-") or "w"


def parse_nodes(graph: onnx.GraphProto, opset: int) -> list[Node]:
    """One ``Node`` per ONNX node with the handler for the model's opset; every op without a
    handler is named in one ``UnsupportedOpError``."""
    nodes, missing = [], []
    for k, p in enumerate(graph.node):
        found = lookup(p.op_type, p.domain, opset)
        name = p.name or f"{p.op_type}_{k}"
        if found is None:
            missing.append(f"{p.op_type} (node {name!r}, domain {p.domain or 'ai.onnx'!r})")
            continue
        h, since = found
        nodes.append(
            Node(
                p.op_type,
                name,
                list(p.input),
                list(p.output),
                parse_attributes(p),
                since,
                opset,
                h.fn,
            )
        )
    if missing:
        raise UnsupportedOpError(
            f"cannot import this model (opset {opset}): no handler for "
            + "; ".join(missing[:10])
            + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            + f". Supported ops: {', '.join(supported_ops())}."
        )
    return nodes


def load_initializers(graph: onnx.GraphProto, nodes: list[Node], raw: RawWeights | None,
                      dtype: tf.DType) -> tuple[dict, dict, dict]:
    """(constants, variables, storage perms) for the graph's initializers: float weights
    become variables (conv kernels stored HWIO), static parameters stay numpy constants."""
    consts: dict[str, Value] = {}
    variables: dict[str, tf.Variable] = {}
    perms: dict[str, tuple[int, ...] | None] = {}
    consumers: dict[str, list[tuple[str, int]]] = {}
    for n in nodes:
        for idx, name in enumerate(n.inputs):
            consumers.setdefault(name, []).append((n.op_type, idx))
    for k, init in enumerate(graph.initializer):
        arr = raw.array(k, init) if raw is not None else None
        if arr is None:
            arr = numpy_helper.to_array(init)
        uses = consumers.get(init.name, [])
        if np.issubdtype(arr.dtype, np.floating) and not is_parameter(uses):
            perm = storage_perm(arr.ndim, uses)
            if perm is not None:
                arr = np.ascontiguousarray(arr.transpose(perm))
            var = to_variable(arr, dtype, variable_name(init.name))
            variables[init.name] = var
            perms[init.name] = perm
            consts[init.name] = Value(var, perm)
        else:
            consts[init.name] = Value(np.array(arr))  # own the (small) data
        del arr
        if raw is not None:
            raw.release(k)
    return consts, variables, perms


def input_spec(vi: onnx.ValueInfoProto, float_dtype: tf.DType) -> InputSpec:
    """A graph input's name, shape (None for symbolic axes) and dtype (floats as
    ``float_dtype``)."""
    t = vi.type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)
    np_type = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type) if t.elem_type else np.float32
    dtype = tf.as_dtype(np_type)
    return InputSpec(vi.name, dims, float_dtype if dtype.is_floating else dtype)


def known_types(graph: onnx.GraphProto) -> dict[str, int]:
    """Element types of the graph's inputs and initializers."""
    types = {vi.name: vi.type.tensor_type.elem_type for vi in graph.input
             if vi.type.tensor_type.elem_type}
    types.update({t.name: t.data_type for t in graph.initializer})
    return types


def declared_shape(vi: onnx.ValueInfoProto) -> tuple[int | None, ...] | None:
    """The declared shape of a graph value (None where not declared)."""
    t = vi.type.tensor_type
    if not t.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim)


def bn_layers(nodes: list[Node], variables: Mapping[str, tf.Variable]) -> list[BNLayer]:
    """The BatchNormalization nodes whose statistics and affine parameters are variables."""
    return [
        BNLayer(
            name=n.name,
            input=n.inputs[0],
            output=n.outputs[0],
            scale=variables[n.inputs[1]],
            bias=variables[n.inputs[2]],
            running_mean=variables[n.inputs[3]],
            running_var=variables[n.inputs[4]],
            epsilon=float(n.attr("epsilon", 1e-5)),
        )
        for n in nodes
        if n.op_type == "BatchNormalization"
        and all(i in variables for i in n.inputs[1:5])
    ]
