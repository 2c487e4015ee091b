"""Graph representation and execution for the importer.

:class:`Node` is a parsed ONNX node with its handler resolved for the model's opset;
:class:`Context` carries the per-call options (BatchNorm mode, ReLU backward rule) and the
shared helpers handlers use to stay small (static values, broadcasting under layout tags).
:func:`execute` runs a pruned, topologically ordered node list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
import tensorflow as tf
from onnx import helper, numpy_helper

from .errors import ModelInputError, OnnxImportError
from .layout import Value, identity, is_identity

__all__ = ["Node", "Context", "execute", "parse_attributes"]


def parse_attributes(proto: onnx.NodeProto) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for a in proto.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        elif isinstance(v, onnx.TensorProto):
            v = numpy_helper.to_array(v)
        elif isinstance(v, list) and v and isinstance(v[0], bytes):
            v = [s.decode("utf-8") for s in v]
        attrs[a.name] = v
    return attrs


@dataclass
class Node:
    """One ONNX node, parsed, with its handler resolved."""

    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any]
    since: int
    opset: int
    fn: Callable = field(repr=False)

    def attr(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    def describe(self) -> str:
        return f"{self.op_type} node {self.name!r} (opset {self.opset}, schema v{self.since})"


@dataclass
class Context:
    """Per-call options and helpers shared by the op handlers."""

    bn_mode: str = "eval"  # "eval": running statistics; "train": batch statistics
    relu_mode: str = "standard"  # "standard" | "guided" | "deconvnet"

    # -- static values -------------------------------------------------------------------
    @staticmethod
    def static(v: Value | None, node: Node, what: str) -> np.ndarray | None:
        """The value of ``v`` known at trace time (None if ``v`` is None), or a clear error."""
        if v is None:
            return None
        if v.is_const:
            return v.logical()
        got = tf.get_static_value(v.tensor())
        if got is None:
            raise OnnxImportError(
                f"{node.describe()}: input '{what}' must be known when the graph is traced "
                "(it depends on a runtime value); data-dependent shapes are not supported"
            )
        return np.asarray(got)

    @staticmethod
    def ints(v: Value | None, node: Node, what: str) -> list[int] | None:
        arr = Context.static(v, node, what)
        return None if arr is None else [int(i) for i in np.asarray(arr).reshape(-1)]

    # -- layout-aware helpers ------------------------------------------------------------
    @staticmethod
    def unary(x: Value, fn: Callable) -> Value:
        data = x.data
        if isinstance(data, np.ndarray):
            data = tf.constant(data)
        return Value(fn(data), x.perm)

    @staticmethod
    def broadcast(values: Sequence[Value], dtype=None) -> tuple[list[tf.Tensor], tuple | None]:
        """Bring ``values`` to one common stored layout for an ONNX-broadcasting op.

        The layout is that of the highest-rank input carrying a non-identity tag (so an NHWC
        activation stays NHWC); lower-rank inputs are broadcast to that rank first, following
        ONNX (numpy) broadcasting, then stored the same way.
        """
        rank = max(v.rank for v in values)
        perm = None
        for v in values:
            if v.rank == rank and not is_identity(v.perm):
                perm = v.perm
                break
        target = perm if perm is not None else identity(rank)
        out = []
        for v in values:
            data = v.logical() if v.rank < rank else v.as_perm(target)
            if v.rank < rank:
                new_shape = [1] * (rank - v.rank) + list(v.logical_shape)
                if isinstance(data, np.ndarray):
                    data = data.reshape(new_shape)
                    data = np.transpose(data, target) if perm is not None else data
                else:
                    data = tf.reshape(data, [-1 if d is None else d for d in new_shape])
                    data = tf.transpose(data, target) if perm is not None else data
            if isinstance(data, np.ndarray):
                data = tf.constant(data, dtype=dtype)
            elif dtype is not None and data.dtype != dtype:
                data = tf.cast(data, dtype)
            out.append(data)
        return out, perm


def execute(
    nodes: Sequence[Node], env: dict[str, Value], wanted: Sequence[str], ctx: Context
) -> dict[str, Value]:
    """Run ``nodes`` (already pruned and ordered) on ``env`` and return the ``wanted`` values."""
    env = dict(env)
    for node in nodes:
        args = [env[name] if name else None for name in node.inputs]
        try:
            result = node.fn(ctx, node, *args)
        except (OnnxImportError, ModelInputError):
            raise
        except (ValueError, TypeError, tf.errors.InvalidArgumentError) as err:
            shapes = [None if a is None else a.logical_shape for a in args]
            raise OnnxImportError(
                f"{node.describe()} failed on inputs of (logical) shapes {shapes}: {err}"
            ) from err
        if isinstance(result, Value):
            result = (result,)
        for name, val in zip(node.outputs, result, strict=False):
            if name:
                env[name] = val
    return {name: env[name] for name in wanted}
