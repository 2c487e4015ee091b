"""Errors raised by the importer: each says what is wrong and what to do about it."""

from __future__ import annotations


class OnnxImportError(ValueError):
    """The ONNX file cannot be imported (malformed, unsafe, or not supported)."""


class UnsupportedOpError(OnnxImportError):
    """The graph contains ops the importer has no handler for."""


class ModelInputError(ValueError):
    """The input given to an imported model does not fit what the ONNX graph declares."""


class UnknownTapError(KeyError, ValueError):
    """A requested tap names no tensor of the graph and no alias."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""


class GraphQueryError(ValueError):
    """A question about the graph that it cannot answer (a receptive field through an op with
    no rule, kernels of a layer no convolution makes); the message names the node."""
