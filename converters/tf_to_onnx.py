"""Keras 3 / TensorFlow -> ONNX through ``tf2onnx.convert.from_function``.

``tf2onnx.convert.from_keras`` breaks on Keras 3 models (KeyError on keras tensors), so the
model is wrapped in a ``tf.function`` calling ``model(x, training=False)`` and that function
is converted. TensorFlow's graph optimiser folds BatchNormalization into the neighbouring
ops: running statistics do not survive into the ONNX file.

Example:
    >>> import keras
    >>> from converters.tf_to_onnx import keras_to_onnx
    >>> m = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3)])
    >>> keras_to_onnx(m, (None, 8, 8, 3), "/tmp/m.onnx").graph.input[0].name  # doctest: +SKIP
    'input'
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import onnx


def keras_to_onnx(model: Any, input_shape: Sequence[int | None], path: str | os.PathLike[str],
                  opset: int = 17, inputs_as_nchw: bool = True) -> onnx.ModelProto:
    """Export a Keras model that takes one NHWC image tensor to ONNX at ``path``.

    ``input_shape`` is the Keras (NHWC) shape, batch first, ``None`` for dynamic axes. With
    ``inputs_as_nchw`` the ONNX input is NCHW (tf2onnx inserts the transpose). The graph
    input is named ``input`` and the output ``output``. Returns the saved ModelProto.

    Example:
        >>> keras_to_onnx(model, (None, 32, 32, 3), "cnn.onnx")  # doctest: +SKIP
    """
    import tensorflow as tf

    if len(input_shape) != 4:
        raise ValueError(f"input_shape must be the NHWC shape (N, H, W, C), got {input_shape}")

    def forward(x: Any) -> Any:
        return model(x, training=False)

    spec = tf.TensorSpec(tuple(input_shape), tf.float32, name="input")
    return function_to_onnx(forward, [spec], path, opset=opset,
                            inputs_as_nchw=["input"] if inputs_as_nchw else None)


def function_to_onnx(fn: Callable[..., Any], input_signature: Sequence[Any],
                     path: str | os.PathLike[str], opset: int = 17,
                     inputs_as_nchw: Sequence[str] | None = None) -> onnx.ModelProto:
    """Convert a (tf.function-able) function with the given ``tf.TensorSpec`` list to ONNX.

    Inputs keep the TensorSpec names (a ``:0`` suffix is dropped); with one output it is
    renamed ``output``. Returns the ModelProto, also saved at ``path``.

    Example:
        >>> import tensorflow as tf
        >>> sig = [tf.TensorSpec((None, 4), tf.float32, name="x")]
        >>> function_to_onnx(lambda x: 2.0 * x, sig, "/tmp/f.onnx").graph.output[0].name
        'output'
    """
    import tensorflow as tf
    import tf2onnx

    func = fn if isinstance(fn, tf.types.experimental.GenericFunction) else tf.function(fn)
    model_proto, _ = tf2onnx.convert.from_function(
        func, input_signature=list(input_signature), opset=opset,
        inputs_as_nchw=list(inputs_as_nchw) if inputs_as_nchw else None)
    renames = _stable_internal_names(model_proto)
    renames.update({i.name: i.name.split(":")[0] for i in model_proto.graph.input})
    if len(model_proto.graph.output) == 1:
        renames[model_proto.graph.output[0].name] = "output"
    rename_tensors(model_proto, renames)
    onnx.checker.check_model(model_proto)
    onnx.save(model_proto, os.fspath(path))
    return model_proto


_INSERTED = re.compile(r"^(.*)__(\d+)(:\d+)?$")


def _stable_internal_names(model: onnx.ModelProto) -> dict[str, str]:
    """tf2onnx numbers the tensors it inserts from a process-wide counter (``Squeeze__32``),
    so a second export in one process names them differently. Renumber them in graph order
    so the same model always gets the same names (and the same layer aliases)."""
    renames: dict[str, str] = {}
    for node in model.graph.node:
        for out in node.output:
            m = _INSERTED.match(out)
            if m and out not in renames:
                renames[out] = f"{m.group(1)}__n{len(renames)}{m.group(3) or ''}"
    return renames


def rename_tensors(model: onnx.ModelProto, renames: dict[str, str]) -> None:
    """Rename tensors everywhere in the main graph (inputs, outputs, node edges, value_info).

    Example:
        >>> from onnx import helper, TensorProto
        >>> g = helper.make_graph([helper.make_node("Relu", ["a"], ["b"])], "g",
        ...     [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1])],
        ...     [helper.make_tensor_value_info("b", TensorProto.FLOAT, [1])])
        >>> m = helper.make_model(g); rename_tensors(m, {"b": "y"}); m.graph.output[0].name
        'y'
    """
    renames = {k: v for k, v in renames.items() if k != v}
    if not renames:
        return
    graph = model.graph
    taken = ({t.name for t in graph.initializer} | {o for n in graph.node for o in n.output}
             | {i.name for i in graph.input})
    clash = [v for v in renames.values() if v in taken and v not in renames]
    if clash:
        raise ValueError(f"cannot rename to {clash}: those tensor names are already used")
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        vi.name = renames.get(vi.name, vi.name)
    for node in graph.node:
        for i, name in enumerate(node.input):
            node.input[i] = renames.get(name, name)
        for i, name in enumerate(node.output):
            node.output[i] = renames.get(name, name)
