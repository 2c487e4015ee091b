"""Reading an ONNX file into a :class:`~converters.onnx_to_tf.model.TFModel` and settling its
contract (metadata and graph, then a sidecar, then the caller's fields)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import onnx
import tensorflow as tf

from .contract_sources import resolve_contract
from .model import TFModel
from .reader import read_model

__all__ = ["load"]


def load(
    source: str | os.PathLike | onnx.ModelProto | bytes,
    *,
    aliases: Mapping[str, str] | None = None,
    jit_compile: bool = False,
    dtype: str | tf.DType = "float32",
    name: str | None = None,
    contract=None,
) -> TFModel:
    """Import an ONNX model (path, bytes or ``ModelProto``) as a :class:`TFModel`.

    Float initializers become ``tf.Variable``s named after them (``model.onnx_variables``);
    layer aliases stored by ``model_zoo`` in the file's metadata are picked up, and
    ``aliases`` adds more. ``dtype="float64"`` runs the whole graph in double precision
    (useful to compare gradients exactly across frameworks, away from float32 ReLU kinks).

    ``model.contract`` says how the model wants its input (layout, channel order, scale,
    mean/std) and where its logits are: read from the file's metadata and the graph, then a
    sidecar next to the file (``<stem>.contract.json`` or ``.yaml``), then ``contract`` (a
    dict of fields, a :class:`~converters.onnx_to_tf.contract.ModelContract` or a sidecar
    path). A contract that contradicts the graph raises ``ContractError``.
    ``model.with_contract()`` is the model the techniques use.

    >>> model = load(model_zoo.load("resnet20_cifar"))          # doctest: +SKIP
    >>> model(x, taps=["layer2"])["layer2"].shape               # doctest: +SKIP
    TensorShape([1, 32, 16, 16])
    """
    proto, raw = read_model(source)
    try:
        model = TFModel(
            proto, aliases=aliases, raw=raw, jit_compile=jit_compile, dtype=dtype, name=name
        )
    finally:
        if raw is not None:
            raw.close()
    path = source if isinstance(source, (str, os.PathLike)) else None
    model.set_contract(resolve_contract(model, path=path, overrides=contract))
    return model
