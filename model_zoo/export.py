"""Export zoo models to ONNX ModelProtos with aliases and metadata attached.

torch models: ``torch.onnx.export(dynamo=False, opset_version=17,
training=TrainingMode.PRESERVE)`` from eval mode, so BatchNormalization stays its own node;
the batch axis is always dynamic (and H, W for the ``*_features`` models). Keras models go
through ``converters.tf_to_onnx``. Third-party-style models (backend ``"third_party"``) are
built by ``model_zoo.third_party`` (its ``CATALOGUE`` entry ``spec.third_party``) and keep
that file as it is (NHWC input, Softmax head, ...); besides the usual ``model_zoo.*``
metadata they carry the model contract of their graph input in ``tfmi.contract`` (with the
Softmax's input as ``logits``) and their build record in ``model_zoo.third_party``.

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

from .aliases import (
    build_aliases,
    check_aliases,
    keras_aliases,
    keras_application_layers,
    third_party_torch_friendly,
    torch_friendly,
)
from .errors import ModelZooError
from .registry import ModelSpec, get_spec
from .triton_guard import guard_triton

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
    extra: dict[str, str] = {}
    if spec.backend == "keras":
        proto, source, aliases = _export_keras(spec)
    elif spec.backend == "third_party":
        proto, source, aliases, extra = _export_third_party(spec, cache_dir)
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
        **extra,
    })
    proto.doc_string = f"model_zoo {name} ({'pretrained' if pretrained else 'random'} weights)"
    onnx.checker.check_model(proto)
    return proto, source, aliases


def structural_aliases(name: str) -> dict[str, str]:
    """Aliases of ``name`` from a weight-less export (``export_params=False``): cheap.

    Node names, and so aliases, do not depend on the weights. Keras models are exported
    for real (they are small), and so are the third-party-style ones (seconds; ``zoo.info``
    exports those into the cache instead, so that the build is not wasted).

    Example:
        >>> structural_aliases("lenet_dlg")["fc"]
        'output'
    """
    spec = get_spec(name)
    if spec.backend == "keras":
        return _export_keras(spec)[2]
    if spec.backend == "third_party":
        return _export_third_party(spec, None)[2]
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


def graph_opset(proto: onnx.ModelProto) -> int:
    """The default-domain (``ai.onnx``) opset of a model (tf2onnx also imports ai.onnx.ml).

    Example:
        >>> graph_opset(onnx.helper.make_model(onnx.GraphProto(),
        ...             opset_imports=[onnx.helper.make_opsetid("", 17)]))
        17
    """
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


# ops that pass a value through unchanged, between a final Softmax and the graph output
_PASSTHROUGH = ("Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast", "Dropout")


def softmax_input(graph: onnx.GraphProto) -> str | None:
    """The input of the Softmax that ends the graph (seen through Identity/Reshape/...
    nodes), i.e. the logits tensor of a model that outputs probabilities; None if there is
    no final Softmax.

    Example:
        >>> from onnx import helper
        >>> g = helper.make_graph([helper.make_node("Softmax", ["z"], ["p"])], "g", [],
        ...                       [helper.make_tensor_value_info("p", 1, [1, 2])])
        >>> softmax_input(g)
        'z'
    """
    producer = {o: n for n in graph.node for o in n.output if o}
    node = producer.get(graph.output[0].name)
    while node is not None and node.op_type in _PASSTHROUGH:
        node = producer.get(node.input[0])
    return node.input[0] if node is not None and node.op_type == "Softmax" else None


def check_truth(spec: ModelSpec, truth: Any) -> None:
    """Raise unless what the builder says it built (its ``Truth``) is what the registry
    declares: the file contract, the input size and the class count."""
    want = spec.file_contract
    if want is None:
        raise ModelZooError(f"{spec.name}: no file contract in the registry; this is a "
                            "model_zoo bug, please report it")
    expected = {**want.to_dict(tuple(spec.input_shape[2:])), "num_classes": spec.num_classes}
    got = {"layout": truth.layout, "channel_order": truth.channel_order,
           "scale": float(truth.scale), "mean": [float(v) for v in truth.mean],
           "std": [float(v) for v in truth.std], "output": truth.output,
           "input_size": [int(v) for v in truth.input_size], "num_classes": truth.num_classes}

    def same(a: Any, b: Any) -> bool:
        if isinstance(a, list):
            return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
        if isinstance(a, float):
            return abs(a - b) <= 1e-9 * max(1.0, abs(a))
        return bool(a == b)

    wrong = {k: (expected[k], got[k]) for k in expected if not same(expected[k], got[k])}
    if wrong:
        raise ModelZooError(f"{spec.name}: model_zoo.third_party built {spec.third_party} "
                            f"with {wrong} (registry, built); this is a model_zoo bug, please "
                            "report it")


def _export_third_party(spec: ModelSpec, cache_dir: str | os.PathLike[str] | None
                        ) -> tuple[onnx.ModelProto, str, dict[str, str], dict[str, str]]:
    """Build ``spec.third_party``; returns (proto, weights source, aliases, extra metadata)."""
    from . import third_party as tp

    cfg = tp.config(spec.third_party or "")
    overrides: dict[str, Any] = {}
    if cfg.builder == "caffe":
        overrides["cache_dir"] = cache_dir  # the base model comes from this cache
    else:
        guard_triton()
    proto, truth = tp.build(spec.third_party, **overrides)
    check_truth(spec, truth)
    graph = proto.graph
    logits = softmax_input(graph)
    if (logits is not None) != (truth.output == "probabilities"):
        raise ModelZooError(f"{spec.name}: the graph {'ends' if logits else 'does not end'} in "
                            f"a Softmax but its output is {truth.output}; this is a model_zoo "
                            "bug, please report it")
    if cfg.builder == "torchvision":
        aliases = build_aliases(graph, third_party_torch_friendly(cfg.kwargs["arch"]),
                                with_logits=True, logits=logits)
    elif cfg.builder == "keras":
        aliases = keras_aliases(graph, keras_application_layers(cfg.kwargs["arch"]), logits)
    else:  # caffe-style: the wrapper keeps the base's tensor names, so its aliases hold
        from .zoo import layer_aliases

        aliases = dict(layer_aliases(cfg.kwargs["base"], cache_dir))
        aliases["logits"] = logits or graph.output[0].name
        aliases = check_aliases(graph, aliases)
    contract = tp.truth_contract(truth, logits)
    contract["class_names"] = spec.class_set or None
    record = {"catalogue": spec.third_party, "format": tp.FORMAT, "builder": cfg.builder,
              "truth": truth.to_dict()}
    extra = {"tfmi.contract": json.dumps({k: v for k, v in contract.items() if v is not None}),
             "model_zoo.third_party": json.dumps(record, sort_keys=True)}
    return proto, spec.random_source, aliases, extra
