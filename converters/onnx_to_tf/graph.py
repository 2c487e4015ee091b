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
    """Per-call options and helpers shared by the op handlers.

    ``float_dtype`` is the model's float type (``load(..., dtype=...)``). The importer runs
    every float tensor of the graph in it: the weights and the input are stored in it, and in
    a model loaded in another precision than float32 (``dtype="float64"``), a ``Cast`` to any
    float type yields it and every float constant or tensor a node reads is brought to it
    (:meth:`conform`), so a float32 ``Constant``, ``Clip`` bound or ``Cast(to=FLOAT)`` never
    meets a float64 tensor.
    """

    bn_mode: str = "eval"  # "eval": running statistics; "train": batch statistics
    relu_mode: str = "standard"  # "standard" | "guided" | "deconvnet"
    float_dtype: tf.DType = tf.float32

    def __post_init__(self):
        self.float_dtype = tf.as_dtype(self.float_dtype)

    # -- the model's float type ----------------------------------------------------------
    @property
    def widened(self) -> bool:
        """The model runs in another float type than float32 (e.g. float64 for checks)."""
        return self.float_dtype != tf.float32

    def float_type(self, dtype) -> tf.DType:
        """The type a value of ``dtype`` takes in this model: a float type becomes the
        model's float type when the model is not float32 (other types are kept)."""
        dtype = tf.as_dtype(dtype)
        return self.float_dtype if self.widened and dtype.is_floating else dtype

    def conform(self, v: Value | None) -> Value | None:
        """``v`` with its float data in the model's float type (unchanged for a float32
        model, for non-float data, and for data already in that type)."""
        if v is None or not self.widened:
            return v
        data = v.data
        if isinstance(data, np.ndarray):
            if data.dtype.kind == "f" and data.dtype != self.float_dtype.as_numpy_dtype:
                return Value(data.astype(self.float_dtype.as_numpy_dtype), v.perm)
            return v
        if data.dtype.is_floating and data.dtype != self.float_dtype:
            return Value(tf.cast(data, self.float_dtype), v.perm)
        return v

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
    nodes: Sequence[Node], env: dict[str, Value], wanted: Sequence[str], ctx: Context,
    present: Callable[[str, Value], Value] | None = None,
) -> dict[str, Value]:
    """Run ``nodes`` (already pruned and ordered) on ``env`` and return the ``wanted`` values.

    ``present(name, value)`` gives a wanted tensor the layout it is returned in. It is applied
    where the tensor is made, and the rest of the graph reads the tensor back from the returned
    one (in its own layout: the transposes cancel in a compiled graph), so a gradient with
    respect to a returned tensor (FullGrad's d score / d z) is the real one whatever layout was
    asked for."""
    env = dict(env)
    targets = set(wanted) if present is not None else set()
    shown: dict[str, Value] = {}

    def settle(name: str, val: Value) -> Value:
        shown[name] = present(name, val)
        if shown[name] is val or val.is_const:
            return val
        return Value(shown[name].as_perm(val.perm_or_identity), val.perm)

    for name in targets & env.keys():
        env[name] = settle(name, env[name])
    for node in nodes:
        for name in node.inputs:
            if name:  # (a float64 model: float32 constants and casts become float64, once)
                env[name] = ctx.conform(env[name])
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
                env[name] = settle(name, val) if name in targets else val
    return {name: shown.get(name, env[name]) for name in wanted}
