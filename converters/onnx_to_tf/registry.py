"""The op-handler registry: one small function per ONNX op type.

Handlers register with :func:`handler`::

    @handler("Relu")
    def relu(ctx, node, x):
        return ctx.unary(x, tf.nn.relu)

A handler receives the :class:`~converters.onnx_to_tf.graph.Context`, the
:class:`~converters.onnx_to_tf.graph.Node` (attributes, resolved ``since`` version) and the
node's inputs as :class:`~converters.onnx_to_tf.layout.Value` objects (``None`` for omitted
optional inputs). It returns one ``Value`` or a tuple of them (one per node output).

Versions are resolved the way the ONNX runtime does: the node's domain opset gives the
operator's schema ``since_version`` (``onnx.defs.get_schema(op, max_inclusive_version=opset)``),
and the handler branches on ``node.since`` where the op's signature changed (e.g. ``Slice``
took attributes before version 10 and inputs after). ``since`` in :func:`handler` is the oldest
version the handler understands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import onnx

__all__ = ["Handler", "handler", "lookup", "supported_ops", "schema_version"]


@dataclass(frozen=True)
class Handler:
    op_type: str
    since: int
    fn: Callable


_REGISTRY: dict[str, Handler] = {}


def handler(op_type: str, since: int = 1) -> Callable[[Callable], Callable]:
    """Register ``fn`` as the TensorFlow implementation of ONNX ``op_type`` (default domain)."""

    def register(fn: Callable) -> Callable:
        if op_type in _REGISTRY:
            raise ValueError(f"a handler for ONNX op {op_type!r} is already registered")
        _REGISTRY[op_type] = Handler(op_type, since, fn)
        return fn

    return register


def schema_version(op_type: str, opset: int, domain: str = "") -> int | None:
    """The ``since_version`` of ``op_type``'s schema in effect at ``opset`` (None if unknown)."""
    try:
        return onnx.defs.get_schema(
            op_type, max_inclusive_version=opset, domain=domain
        ).since_version
    except onnx.defs.SchemaError:
        return None


def lookup(op_type: str, domain: str, opset: int) -> tuple[Handler, int] | None:
    """The handler for a node and the resolved schema version, or None if unsupported."""
    if domain not in ("", "ai.onnx"):
        return None
    h = _REGISTRY.get(op_type)
    if h is None:
        return None
    since = schema_version(op_type, opset)
    if since is None or since < h.since:
        return None
    return h, since


def supported_ops() -> list[str]:
    """Sorted list of the ONNX op types the importer handles."""
    from . import ops  # noqa: F401  (registers the handlers)

    return sorted(_REGISTRY)
