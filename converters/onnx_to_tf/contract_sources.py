"""Where a model contract comes from: the graph, the file's metadata, a sidecar, overrides.

:func:`resolve_contract` applies them in that order, field by field, after the defaults, and
:func:`check_contract` refuses a result that contradicts the graph (see :mod:`.contract`).
:func:`tensor_layouts` says which image tensors the graph holds channels-last.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tensorflow as tf

from .contract import (
    CONTRACT_KEY,
    FIELDS,
    ContractError,
    ModelContract,
    dims,
    from_mapping,
    parse_floats,
    read_class_names,
)

if TYPE_CHECKING:  # pragma: no cover
    from .model import TFModel

__all__ = [
    "resolve_contract",
    "check_contract",
    "infer_from_graph",
    "find_logits",
    "tensor_layouts",
    "read_sidecar",
    "sidecar_path",
    "parse_overrides",
]

SIDECAR_SUFFIXES = (".contract.json", ".contract.yaml", ".contract.yml")
# ops that pass a tensor through unchanged in value (walked back from the output)
_PASSTHROUGH = {"Identity", "Dropout", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Cast"}
_CHANNELS_FIRST_OPS = {
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
    "BatchNormalization", "InstanceNormalization", "LRN", "LpPool", "GlobalLpPool",
    "DepthToSpace", "SpaceToDepth", "MaxUnpool",
}
_ELEMENTWISE = {
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh",
    "Softplus", "Clip", "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Neg",
    "Abs", "Sqrt", "Exp", "Log", "Reciprocal", "Erf", "Cast", "Identity", "Dropout", "Mish",
    "Gelu", "Softsign", "ThresholdedRelu", "Celu", "Floor", "Ceil", "Where", "Pad",
}


def sidecar_path(model_path: str | os.PathLike) -> Path | None:
    """The sidecar next to ``model_path`` (``<stem>.contract.json|yaml|yml``), if there is one."""
    p = Path(model_path)
    for suffix in SIDECAR_SUFFIXES:
        cand = p.with_name(p.stem + suffix)
        if cand.is_file():
            return cand
    return None


def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """Contract fields from a JSON or YAML file; one clear error if it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ContractError(f"cannot read the contract file {path}: {err}") from None
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:  # pragma: no cover - pinned in requirements.txt
            raise ContractError(f"{path} is YAML but PyYAML is not installed: pip install "
                                "pyyaml, or write the contract as JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ContractError(f"{path} is not valid YAML ({str(err).splitlines()[0]}); fix "
                                "the file or write it as JSON") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ContractError(f"{path} is not valid JSON ({err.msg} at line {err.lineno}); "
                                "fix the file") from None
    fields_ = from_mapping(data or {}, str(path))
    if "class_names" in fields_:
        fields_["class_names"] = read_class_names(fields_["class_names"], path.parent, str(path))
    return fields_


def parse_overrides(overrides) -> dict[str, Any]:
    """Contract fields from a mapping, a :class:`ModelContract` or a sidecar path."""
    if overrides is None:
        return {}
    if isinstance(overrides, ModelContract):
        return {k: getattr(overrides, k) for k in FIELDS}
    if isinstance(overrides, (str, os.PathLike)):
        return read_sidecar(overrides)
    fields_ = from_mapping(overrides, "contract")
    if "class_names" in fields_:
        fields_["class_names"] = read_class_names(fields_["class_names"], None, "contract")
    return fields_


def _from_metadata(meta: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    prep = meta.get("model_zoo.preprocessing")
    if prep:
        p = json.loads(prep)
        lo, hi = p.get("value_range", [0.0, 1.0])
        out.update(mean=p["mean"], std=p["std"], scale=float(hi - lo) or 1.0)
    name = meta.get("model_zoo.name")
    if name:
        try:
            from model_zoo.registry import class_names_for, get_spec

            names = class_names_for(get_spec(name))
            if names is not None:
                out["class_names"] = names
        except Exception:  # noqa: BLE001 - a renamed zoo entry: no names, nothing worse
            pass
    fmt = meta.get("Image.BitmapPixelFormat", "").lower()
    if fmt.startswith("bgr"):
        out["channel_order"] = "BGR"
    elif fmt.startswith("rgb"):
        out["channel_order"] = "RGB"
    rng = meta.get("Image.NominalPixelRange", "")
    n = 1 if fmt.startswith("gray") else 3
    if rng == "NominalRange_0_255":
        out.update(scale=255.0, mean=[0.0] * n, std=[1.0] * n)
    elif rng == "Normalized_0_1":
        out.update(scale=1.0, mean=[0.0] * n, std=[1.0] * n)
    elif rng == "Normalized_1_1":
        out.update(scale=1.0, mean=[0.5] * n, std=[0.5] * n)
    if CONTRACT_KEY in meta:
        try:
            out.update(from_mapping(json.loads(meta[CONTRACT_KEY]), f"metadata {CONTRACT_KEY}"))
        except json.JSONDecodeError as err:
            raise ContractError(f"the file's metadata entry {CONTRACT_KEY!r} is not valid JSON "
                                f"({err.msg}); fix it or override with a sidecar") from None
        if "class_names" in out and isinstance(out["class_names"], str):
            out["class_names"] = read_class_names(out["class_names"], None, "metadata")
    return out


# -- inference from the graph -------------------------------------------------------------------
def _graph_input_layout(model: TFModel) -> str | None:
    shape = model.inputs[0].shape
    if len(shape) != 4:
        return None
    first = [n for n in model.nodes if model.inputs[0].name in n.inputs]
    for n in first:
        if n.op_type == "Transpose" and tuple(n.attr("perm") or ()) == (0, 3, 1, 2):
            return "NHWC"
        if n.op_type in _CHANNELS_FIRST_OPS:
            return "NCHW"
    c_first, c_last = shape[1], shape[3]
    if c_first in (1, 3) and c_last not in (1, 3):
        return "NCHW"
    if c_last in (1, 3) and c_first not in (1, 3):
        return "NHWC"
    return None


def find_logits(model: TFModel) -> tuple[str, str | None, int | None]:
    """(output kind, logits tensor, class count) read from the graph.

    A final Softmax/LogSoftmax (seen through Identity/Reshape/Flatten/Squeeze/Dropout/Cast)
    names the logits; an output of shape (N, C, 1, 1) is spatial logits; (N, C) logits;
    any other shape a feature map.
    """
    producer = {o: n for n in model.nodes for o in n.outputs if o}
    node = producer.get(model.output_names[0])
    while node is not None and node.op_type in _PASSTHROUGH:
        node = producer.get(node.inputs[0])
    shape = _output_shape(model)
    classes = None
    if shape is not None and len(shape) >= 2:
        rest = [d for d in shape[1:] if d != 1]
        classes = rest[0] if len(rest) == 1 and rest[0] is not None else None
    if node is not None and node.op_type in ("Softmax", "LogSoftmax"):
        kind = "probabilities" if node.op_type == "Softmax" else "log_probabilities"
        return kind, node.inputs[0], classes
    if shape is not None and len(shape) == 4 and (shape[2:] == (1, 1) or shape[1:3] == (1, 1)):
        return "spatial_logits", None, classes
    if shape is None or len(shape) == 2:
        return "logits", None, classes
    return "features", None, None


def _output_shape(model: TFModel) -> tuple | None:
    """The output's shape: as the file declares it, else from probe forwards. A model that
    takes any input size is probed at two sizes (96 and 128): an axis that changes between
    them is spatial (None), so a feature map whose probe happens to be 1x1 is not mistaken for
    (N, C, 1, 1) logits."""
    declared = model.output_shapes[0] if model.output_shapes else None
    if declared is not None and all(d is not None for d in declared[1:]):
        return tuple(declared)
    spec = model.inputs[0]
    if not spec.dtype.is_floating or len(spec.shape) != 4:
        return None if declared is None else tuple(declared)
    layout = _graph_input_layout(model) or "NCHW"
    spatial = (2, 3) if layout == "NCHW" else (1, 2)
    shapes = []
    for size in ((96, 128) if any(spec.shape[i] is None for i in spatial) else (None,)):
        dims = [1 if i == 0 else (size if i in spatial else 3) if d is None else d
                for i, d in enumerate(spec.shape)]
        try:
            out = model(tf.zeros(dims, spec.dtype), layout="ONNX", compiled=False)
        except Exception:  # noqa: BLE001 - inference only: unknown then
            return None if declared is None else tuple(declared)
        out = out[0] if isinstance(out, tuple) else out
        shapes.append(tuple(int(d) for d in out.shape[1:]))
    if len({len(s) for s in shapes}) != 1:
        return None
    return (None, *(d if all(s[k] == d for s in shapes) else None
                    for k, d in enumerate(shapes[0])))


def infer_from_graph(model: TFModel) -> tuple[dict[str, Any], int | None]:
    """What the graph itself says (input layout and size, output kind, logits tensor), and
    the class count when the output shows it."""
    out: dict[str, Any] = {}
    layout = _graph_input_layout(model)
    shape = model.inputs[0].shape
    if layout:
        out["layout"] = layout
        hw = shape[2:4] if layout == "NCHW" else shape[1:3]
        if all(d is not None for d in hw):
            out["input_size"] = tuple(int(d) for d in hw)
        c = shape[1] if layout == "NCHW" else shape[3]
        if c is not None and c != 3:  # not RGB: grayscale, or extra channels (depth, masks)
            out.update(mean=(0.0,) * c, std=(1.0,) * c)
    kind, logits, classes = find_logits(model)
    out["output"] = kind
    if logits:
        out["logits"] = logits
    return out, classes


def resolve_contract(model: TFModel, *, path: str | os.PathLike | None = None,
                     overrides=None) -> ModelContract:
    """Defaults < the graph < the file's metadata < the sidecar next to ``path`` <
    ``overrides``, field by field; then checked against the graph (:func:`check_contract`).

    A 1000-class classifier with no class names from any source gets the ImageNet names,
    marked as assumed.
    """
    contract = ModelContract(sources={k: "default" for k in FIELDS})
    if not model.inputs or len(model.inputs[0].shape) != 4:  # not an image model
        if overrides is not None:
            shape = dims(model.inputs[0].shape) if model.inputs else "no input"
            raise ContractError(
                f"the model's input has shape {shape}: a contract describes image models with "
                "a 4-D input (NCHW or NHWC); drop the contract options for this model")
        return contract
    graph, classes = infer_from_graph(model)
    contract = _apply(contract, graph, "graph")
    contract = _apply(contract, _from_metadata(model.metadata), "metadata")
    side = sidecar_path(path) if path is not None else None
    if side is not None:
        contract = _apply(contract, read_sidecar(side), f"sidecar {side.name}")
    if overrides is not None:
        contract = _apply(contract, parse_overrides(overrides), "override")
    shape = model.inputs[0].shape
    c = shape[1] if contract.layout == "NCHW" else shape[3]
    untold = {contract.sources.get(k) for k in ("mean", "std")} == {"default"}
    if untold and c is not None and c != contract.channels:  # nobody said: fit the graph
        contract = contract.with_("graph", mean=(0.0,) * c, std=(1.0,) * c)
    if contract.class_names is None and contract.is_classifier and classes == 1000:
        from model_zoo.registry import imagenet_class_names

        contract = contract.with_("assumed (1000 classes)", class_names=imagenet_class_names())
    check_contract(model, contract)
    return contract


def _apply(contract: ModelContract, fields_: Mapping[str, Any], source: str) -> ModelContract:
    if not fields_:
        return contract
    changes = dict(fields_)
    if "output" in changes and changes["output"] not in ("probabilities", "log_probabilities"):
        changes.setdefault("logits", None)
        if changes.get("logits") is None and contract.logits is not None:
            sources = dict(contract.sources)
            sources["logits"] = source
            contract = replace(contract, logits=None, sources=sources)
    # one mean/std value broadcasts to the channel count (the other field's, else the one
    # already known)
    given = {k: parse_floats(k, changes[k], positive=k == "std") for k in ("mean", "std")
             if k in changes}
    if given:
        longest = max(len(v) for v in given.values())
        n = longest if longest > 1 or source == "graph" else contract.channels
        for key, vals in given.items():
            changes[key] = vals * n if len(vals) == 1 else vals
    return contract.with_(source, **changes)


def check_contract(model: TFModel, contract: ModelContract) -> None:
    """Refuse a contract that contradicts the graph, with the field and the fix."""
    shape = model.inputs[0].shape
    if len(shape) != 4:
        raise ContractError(
            f"the model's input {model.inputs[0].name!r} has shape {dims(shape)}: the contract "
            "describes image models with a 4-D input (NCHW or NHWC)")
    axis = 1 if contract.layout == "NCHW" else 3
    c = shape[axis]
    graph_layout = _graph_input_layout(model)
    if graph_layout and graph_layout != contract.layout:
        other = 3 if contract.layout == "NCHW" else 1
        raise ContractError(
            f"the contract says layout {contract.layout} ({contract.sources.get('layout')}) but "
            f"the graph's input {dims(shape)} is {graph_layout} (channels on axis {other}): "
            f"drop the layout override or use --layout {graph_layout.lower()}")
    if c is not None and c != contract.channels:
        why = contract.sources.get("mean", "default")
        raise ContractError(
            f"the contract declares {contract.channels} channel(s) (mean/std from {why}) but "
            f"the graph's input {dims(shape)} has {c} on axis {axis} ({contract.layout}): give "
            f"{c} mean/std value(s), e.g. --mean {','.join(['0'] * c)} --std "
            f"{','.join(['1'] * c)}")
    if contract.input_size is not None:
        hw = shape[2:4] if contract.layout == "NCHW" else shape[1:3]
        for got, want in zip(contract.input_size, hw):
            if want is not None and got != want:
                raise ContractError(
                    f"the contract's input_size {contract.input_size} differs from the graph's "
                    f"fixed input {dims(shape)}: drop --input-size or use "
                    f"{hw[0]},{hw[1]}")
    if contract.logits is not None and not _is_tensor(model, contract.logits):
        raise ContractError(
            f"the contract's logits tensor {contract.logits!r} is not in the graph; list the "
            "tensors with `python -m tf_impl layers MODEL` and pick the Softmax's input")


def _is_tensor(model: TFModel, name: str) -> bool:
    try:
        return model.resolve(name) in set(model.layer_names)
    except KeyError:
        return False


def tensor_layouts(model: TFModel, input_layout: str) -> dict[str, str]:
    """Tensor name -> ``"NCHW"``/``"NHWC"`` where the graph makes the channel axis known.

    The input has the contract's layout; convolution, pooling and normalisation outputs are
    channels-first (ONNX semantics); a Transpose (0, 3, 1, 2) or (0, 2, 3, 1) switches;
    element-wise ops, Concat, Slice and Split keep their input's. Others are unknown (and
    read as channels-first, as ONNX image tensors are).
    """
    known: dict[str, str] = {}
    if len(model.inputs[0].shape) == 4:
        known[model.inputs[0].name] = input_layout
    keep = _ELEMENTWISE | {"Concat", "Slice", "Split", "Softmax", "LogSoftmax"}
    for n in model.nodes:
        if n.op_type in _CHANNELS_FIRST_OPS:
            kind = "NCHW"
        elif n.op_type == "Transpose":
            src, perm = known.get(n.inputs[0]), tuple(n.attr("perm") or ())
            kind = {("NHWC", (0, 3, 1, 2)): "NCHW", ("NCHW", (0, 2, 3, 1)): "NHWC",
                    ("NHWC", (0, 1, 2, 3)): "NHWC", ("NCHW", (0, 1, 2, 3)): "NCHW"
                    }.get((src, perm))
        elif n.op_type in keep:
            kind = next((known[i] for i in n.inputs if i in known), None)
        else:
            kind = None
        if kind:
            for o in n.outputs:
                if o:
                    known[o] = kind
    return known
