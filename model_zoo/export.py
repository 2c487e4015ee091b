"""Export zoo models to ONNX ModelProtos with aliases and metadata attached.

torch models: ``torch.onnx.export(dynamo=False, opset_version=17,
training=TrainingMode.PRESERVE)`` from eval mode, so BatchNormalization stays its own node;
the batch axis is always dynamic (and H, W for the ``*_features`` models). Keras models go
through ``converters.tf_to_onnx``.

Example:
    >>> from model_zoo.export import export_model
    >>> proto, source, aliases = export_model("lenet_dlg", pretrained=False)
    >>> aliases["conv1"]
    '/conv1/Conv_output_0'
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import onnx
from onnx import numpy_helper

from ._compat import guard_triton
from .aliases import build_aliases, keras_aliases, torch_friendly
from .registry import ModelSpec, get_spec

OPSET = 17
# Bump when the exported graph or its metadata changes: cached files of an older format are
# re-exported on the next load().
EXPORT_FORMAT = 2  # 2: tf2onnx-inserted tensor names renumbered stably
_SAMPLE_HW = 224


def export_model(name: str, pretrained: bool, cache_dir: str | os.PathLike[str] | None = None
                 ) -> tuple[onnx.ModelProto, str, dict[str, str]]:
    """Export ``name``; returns ``(model proto with metadata, weights source, aliases)``.

    Example:
        >>> export_model("resnet20_cifar", True)[2]["res2"]
        '/layer1/layer1.2/Relu_1_output_0'
    """
    spec = get_spec(name)
    if spec.backend == "keras":
        proto, source, aliases = _export_keras(spec)
    else:
        guard_triton()  # torchvision after TensorFlow would segfault on triton
        from .weights import build_torch_model

        model, source = build_torch_model(name, pretrained, cache_dir)
        proto = torch_to_onnx(model, spec)
        materialize_shared_initializers(proto)
        aliases = build_aliases(proto.graph, torch_friendly(name, model),
                                with_logits=spec.num_classes is not None)
    set_metadata(proto, {
        "model_zoo.name": name,
        "model_zoo.pretrained": json.dumps(bool(pretrained)),
        "model_zoo.weights_source": source,
        "model_zoo.layer_aliases": json.dumps(aliases, sort_keys=True),
        "model_zoo.preprocessing": json.dumps(spec.preprocessing.to_dict()),
        "model_zoo.export_format": str(EXPORT_FORMAT),
    })
    proto.doc_string = f"model_zoo {name} ({'pretrained' if pretrained else 'random'} weights)"
    onnx.checker.check_model(proto)
    return proto, source, aliases


def structural_aliases(name: str) -> dict[str, str]:
    """Aliases of ``name`` from a weight-less export (``export_params=False``): cheap.

    Node names, and so aliases, do not depend on the weights. Keras models are exported
    for real (they are small).

    Example:
        >>> structural_aliases("lenet_dlg")["fc"]
        'output'
    """
    spec = get_spec(name)
    if spec.backend == "keras":
        return _export_keras(spec)[2]
    guard_triton()
    from .weights import build_torch_model

    model, _ = build_torch_model(name, False)
    proto = torch_to_onnx(model, spec, export_params=False)
    return build_aliases(proto.graph, torch_friendly(name, model),
                         with_logits=spec.num_classes is not None)


def torch_to_onnx(model: Any, spec: ModelSpec, *, export_params: bool = True
                  ) -> onnx.ModelProto:
    """Run the TorchScript-based exporter (opset 17, BN preserved) into memory."""
    guard_triton()
    import torch

    shape = [1] + [d if d is not None else _SAMPLE_HW for d in spec.input_shape[1:]]
    in_axes = {0: "batch"}
    out_axes = {0: "batch"}
    if None in spec.input_shape[2:]:
        in_axes.update({2: "height", 3: "width"})
        out_axes.update({2: "out_height", 3: "out_width"})
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(), (torch.zeros(shape),), buf, dynamo=False, opset_version=OPSET,
            training=torch.onnx.TrainingMode.PRESERVE, input_names=["input"],
            output_names=["output"], dynamic_axes={"input": in_axes, "output": out_axes},
            export_params=export_params)
    return onnx.load_from_string(buf.getvalue())


def materialize_shared_initializers(proto: onnx.ModelProto) -> int:
    """Undo torch's de-duplication of equal initializers; returns how many were restored.

    In eval mode the exporter merges parameters with equal values (e.g. the all-ones
    BatchNorm weights of a freshly initialised network) into one initializer plus
    ``Identity`` nodes. An importer would then tie those weights together. Each such
    Identity becomes an initializer of its own, named after the parameter.
    """
    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    outputs = {o.name for o in graph.output}
    keep, restored = [], 0
    for node in graph.node:
        if (node.op_type == "Identity" and len(node.input) == 1 and node.input[0] in inits
                and node.output[0] not in outputs and node.output[0] not in inits):
            copy = numpy_helper.from_array(numpy_helper.to_array(inits[node.input[0]]),
                                           name=node.output[0])
            graph.initializer.append(copy)
            inits[copy.name] = copy
            restored += 1
        else:
            keep.append(node)
    if restored:
        del graph.node[:]
        graph.node.extend(keep)
    return restored


def set_metadata(proto: onnx.ModelProto, entries: dict[str, str]) -> None:
    """Set ``metadata_props`` keys (replacing existing ones of the same key)."""
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    for key, value in kept + list(entries.items()):
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value


def read_metadata(proto: onnx.ModelProto) -> dict[str, str]:
    """``metadata_props`` as a dict.

    Example:
        >>> p = onnx.ModelProto(); set_metadata(p, {"a": "1"}); read_metadata(p)
        {'a': '1'}
    """
    return {p.key: p.value for p in proto.metadata_props}


def _export_keras(spec: ModelSpec) -> tuple[onnx.ModelProto, str, dict[str, str]]:
    from converters.tf_to_onnx import keras_to_onnx

    from .keras_models import KERAS_CNN_LAYERS, build_keras_cnn

    model = build_keras_cnn()
    with tempfile.TemporaryDirectory(prefix="model_zoo-keras-") as tmp:
        proto = keras_to_onnx(model, (None, 32, 32, 3), Path(tmp) / "keras_cnn.onnx",
                              opset=OPSET, inputs_as_nchw=True)
    for value in (proto.graph.input[0], proto.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    return proto, spec.random_source, keras_aliases(proto.graph, KERAS_CNN_LAYERS)
