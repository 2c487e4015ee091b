"""The model contract: how an ONNX victim wants its input and what its output means.

Models come from Caffe, Keras, Paddle and PyTorch, and each wants its pixels differently:
channels first or last, RGB or BGR, in [0, 1] or 0..255, minus a mean, over a std. Some end in
a Softmax, some in an (N, C, 1, 1) map. A :class:`ModelContract` says all of it in one place::

    model input[c] = (scale * pixel[c'] - mean[c]) / std[c]

with ``c'`` the RGB channel that model channel ``c`` holds (``channel_order``), laid out as
``layout``; ``mean`` and ``std`` are in the model's units and channel order, as the model's
documentation gives them (Caffe: BGR means 103.939, 116.779, 123.68, std 1, scale 255).

Where it comes from, later sources overriding earlier ones, field by field:

1. defaults (NCHW, RGB, [0, 1], mean 0, std 1);
2. the file's metadata: our zoo's ``model_zoo.preprocessing``, a ``tfmi.contract`` entry,
   the Windows ML image keys ``Image.BitmapPixelFormat`` / ``Image.NominalPixelRange``;
3. the graph: the input layout (from its shape and its first Transpose), the input size, a
   final Softmax/LogSoftmax (whose input is the logits tensor) or an (N, C, 1, 1) output;
4. a sidecar file next to the model (``model.contract.json`` or ``.yaml``);
5. explicit overrides (the command line's ``--layout nhwc --bgr --scale 255 --mean ...``).

:class:`ContractModel` is the model seen through its contract. It takes the *working input*
every technique uses: NCHW, RGB, pixels normalised as ``(pixel - mean_px) / std_px`` with
``preprocessing = (mean_px, std_px)`` in pixel units ([0, 1], RGB order), and maps it to the
graph's own input inside the traced function (a channel flip, a layout tag, at most one
multiply). Called without taps it returns class *logits* (the input of a final Softmax,
spatial maps squeezed), so scores and gradients never go through a saturated softmax; taps
come back channels-first. For a model that divides by a std, ``std_px = std / scale`` and the
working input *is* the model's input. A model that only subtracts a mean at scale 255 (the
Caffe convention) would otherwise work in units of 1/255 of a pixel, where no step size or
prior weight of the papers means anything; its working input takes the ImageNet std
(0.229, 0.224, 0.225) instead, the space those defaults were tuned in (one multiply in the
graph maps it back), so a Caffe conversion of a network gives the same results as the network
itself.

>>> model = load("caffe_resnet.onnx", contract={"layout": "NHWC"})   # doctest: +SKIP
>>> victim = model.with_contract()                                   # doctest: +SKIP
>>> mean, std = victim.preprocessing                                 # doctest: +SKIP
>>> logits = victim((pixels - mean) / std)                           # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from .errors import ModelInputError, OnnxImportError
from .layout import Value

if TYPE_CHECKING:  # pragma: no cover
    from .model import TFModel

__all__ = [
    "ModelContract",
    "ContractError",
    "ContractModel",
    "contract_model",
    "read_sidecar",
    "sidecar_path",
    "parse_overrides",
    "resolve_contract",
    "CONTRACT_KEY",
    "OUTPUT_KINDS",
]

CONTRACT_KEY = "tfmi.contract"
SIDECAR_SUFFIXES = (".contract.json", ".contract.yaml", ".contract.yml")
LAYOUTS = ("NCHW", "NHWC")
ORDERS = ("RGB", "BGR")
OUTPUT_KINDS = ("logits", "probabilities", "log_probabilities", "spatial_logits", "features")
FIELDS = ("layout", "channel_order", "scale", "mean", "std", "input_size", "output", "logits",
          "class_names")
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


_LUMA = (0.299, 0.587, 0.114)
IMAGENET_STD = (0.229, 0.224, 0.225)  # RGB


class ContractError(OnnxImportError):
    """A contract that cannot hold for this model; the message names the field and the fix."""


def _floats(what: str, value, *, positive: bool = False) -> tuple[float, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace(";", ",").split(",") if v.strip()]
    if isinstance(value, (int, float)):
        value = [value]
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise ContractError(f"{what} must be numbers, e.g. 0.485,0.456,0.406; got {value!r}"
                            ) from None
    if not out or not all(math.isfinite(v) for v in out):
        raise ContractError(f"{what} must be finite numbers; got {value!r}")
    if positive and min(out) <= 0:
        raise ContractError(f"{what} must be > 0; got {list(out)}")
    return out


@dataclass(frozen=True)
class ModelContract:
    """How a model wants its input and what its output means (see the module docstring).

    Attributes:
        layout: ``"NCHW"`` or ``"NHWC"``: the graph input's axis order.
        channel_order: ``"RGB"`` or ``"BGR"``: which colour model channel 0 holds.
        scale: pixel scale, 1 (pixels in [0, 1]) or 255 (0..255).
        mean, std: per model channel, in the model's units and channel order.
        input_size: (H, W) when the model needs one size; None for any size.
        output: ``"logits"``, ``"probabilities"`` (behind a Softmax),
            ``"log_probabilities"``, ``"spatial_logits"`` ((N, C, 1, 1)) or ``"features"``
            (no class scores: a feature extractor).
        logits: the tensor holding the class logits (the input of a final Softmax), when it
            is not the output itself.
        class_names: one name per class, when known.
        sources: where each field came from (``default``, ``metadata``, ``graph``,
            ``sidecar``, ``override``).
    """

    layout: str = "NCHW"
    channel_order: str = "RGB"
    scale: float = 1.0
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    input_size: tuple[int, int] | None = None
    output: str = "logits"
    logits: str | None = None
    class_names: tuple[str, ...] | None = field(default=None, repr=False)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        layout = str(self.layout).upper()
        if layout not in LAYOUTS:
            raise ContractError(f"layout must be NCHW or NHWC; got {self.layout!r}")
        order = str(self.channel_order).upper()
        if order not in ORDERS:
            raise ContractError(f"channel_order must be RGB or BGR; got {self.channel_order!r}")
        (scale,) = _floats("scale", self.scale, positive=True)
        mean = _floats("mean", self.mean)
        std = _floats("std", self.std, positive=True)
        if len(mean) == len(std) == 1 and order == "BGR":
            mean, std = mean * 3, std * 3
        if len(mean) == 1:
            mean = mean * len(std)
        if len(std) == 1:
            std = std * len(mean)
        if len(mean) != len(std):
            raise ContractError(
                f"mean has {len(mean)} values and std {len(std)}: give one per input channel "
                "(e.g. --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225)")
        if order == "BGR" and len(mean) != 3:
            raise ContractError(f"channel_order BGR needs 3 channels; mean/std have {len(mean)} "
                                "values")
        if self.output not in OUTPUT_KINDS:
            raise ContractError(f"output must be one of {', '.join(OUTPUT_KINDS)}; got "
                                f"{self.output!r}")
        size = self.input_size
        if size is not None:
            if isinstance(size, (int, np.integer)) or (isinstance(size, str) and "," not in
                                                         size and "x" not in size.lower()):
                size = (int(size), int(size))
            elif isinstance(size, str):
                size = tuple(int(v) for v in size.lower().replace("x", ",").split(",") if v)
            size = tuple(int(v) for v in size)
            if len(size) != 2 or min(size) < 1:
                raise ContractError(f"input_size must be H,W (positive); got {self.input_size!r}")
        names = self.class_names
        if names is not None:
            names = tuple(str(n) for n in names)
        object.__setattr__(self, "layout", layout)
        object.__setattr__(self, "channel_order", order)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        object.__setattr__(self, "input_size", size)
        object.__setattr__(self, "class_names", names)
        object.__setattr__(self, "sources", dict(self.sources))

    # -- what the techniques use ------------------------------------------------------------
    @property
    def channels(self) -> int:
        return len(self.mean)

    @property
    def bgr(self) -> bool:
        return self.channel_order == "BGR"

    @property
    def is_classifier(self) -> bool:
        return self.output != "features"

    def _rgb(self, values: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(reversed(values)) if self.bgr else values

    @property
    def mean_only(self) -> bool:
        """The model subtracts a mean but divides by no std (Caffe's convention)."""
        return all(s == 1.0 for s in self.std) and self.scale != 1.0

    @property
    def grayscale(self) -> bool:
        """A one-channel model: the working input is still RGB, turned to luma in the graph."""
        return self.channels == 1

    def _working_std(self) -> tuple[float, ...]:
        """The working input's std in pixel units, model channel order."""
        if not self.mean_only:
            return tuple(s / self.scale for s in self.std)
        if self.channels == 3:
            return self._rgb(IMAGENET_STD)  # (RGB -> model order is its own inverse)
        return (sum(IMAGENET_STD) / 3,) * self.channels

    @property
    def preprocessing(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) of the working input in pixel units ([0, 1]) and RGB order."""
        mean = tuple(m / self.scale for m in self._rgb(self.mean))
        std = self._rgb(self._working_std())
        if self.grayscale:  # the same normalisation on each of R, G, B
            return mean * 3, std * 3
        return mean, std

    @property
    def gain(self) -> tuple[float, ...] | None:
        """Per-channel factor (model channel order) from the working input to the model's
        input: ``scale * working std / std``; None when it is 1."""
        if not self.mean_only:
            return None
        return tuple(self.scale * w / s for w, s in zip(self._working_std(), self.std))

    def with_(self, source: str = "override", **changes) -> ModelContract:
        """A copy with ``changes`` (None values ignored), their source recorded."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise ContractError(f"unknown contract field(s) {unknown}; the fields are "
                                f"{', '.join(FIELDS)}")
        sources = dict(self.sources)
        sources.update({k: source for k in changes})
        return replace(self, sources=sources, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what a sidecar file holds)."""
        out: dict[str, Any] = {
            "layout": self.layout, "channel_order": self.channel_order, "scale": self.scale,
            "mean": list(self.mean), "std": list(self.std),
            "input_size": list(self.input_size) if self.input_size else None,
            "output": self.output, "logits": self.logits,
        }
        if self.class_names is not None:
            out["class_names"] = list(self.class_names)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "override") -> ModelContract:
        """The contract a sidecar-style mapping describes (unknown fields refused)."""
        fields_ = _from_mapping(data, "contract")
        if "class_names" in fields_:
            fields_["class_names"] = _class_names(fields_["class_names"], None, "contract")
        return cls().with_(source, **fields_)

    def describe(self) -> str:
        """A few lines for people: each field, its value and where it came from."""
        src = self.sources

        def line(name: str, value: str) -> str:
            return f"  {name:<14}{value}  [{src.get(name, 'default')}]"

        mean, std = self.preprocessing
        names = self.class_names
        rows = [
            line("layout", self.layout),
            line("channel_order", self.channel_order),
            line("scale", f"{self.scale:g} (pixels in [0, {self.scale:g}])"),
            line("mean", ", ".join(f"{m:g}" for m in self.mean)),
            line("std", ", ".join(f"{s:g}" for s in self.std)),
            line("input_size", "any" if self.input_size is None else
                 f"{self.input_size[0]}x{self.input_size[1]}"),
            line("output", self.output),
            line("logits", self.logits or "(the output itself)"),
            line("class_names", "none" if names is None else
                 f"{len(names)}: {', '.join(names[:3])}{', ...' if len(names) > 3 else ''}"),
            f"  working input (pixel - ({', '.join(f'{m:.4g}' for m in mean)})) / "
            f"({', '.join(f'{s:.4g}' for s in std)}), RGB, NCHW",
        ]
        return "\n".join(rows)


# -- reading: metadata, sidecar, overrides ------------------------------------------------------
def _from_mapping(data: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Contract fields from a dict (sidecar, metadata, flags): names checked, aliases mapped."""
    if not isinstance(data, Mapping):
        raise ContractError(f"{where} must hold a mapping of contract fields "
                            f"({', '.join(FIELDS)}); got {type(data).__name__}")
    out: dict[str, Any] = {}
    for key, value in data.items():
        k = str(key).lower().replace("-", "_")
        if k == "bgr":
            k, value = "channel_order", ("BGR" if value else "RGB")
        elif k in ("size", "input_shape"):
            k = "input_size"
        elif k == "classes":
            k = "class_names"
        elif k == "logits_tensor":
            k = "logits"
        if k not in FIELDS:
            raise ContractError(f"{where}: unknown field {key!r}; the fields are "
                                f"{', '.join(FIELDS)}")
        if value is not None:
            out[k] = value
    if "output" in out and out["output"] == "spatial":
        out["output"] = "spatial_logits"
    return out


def _class_names(value, base: Path | None, where: str) -> tuple[str, ...] | None:
    """A list, a known set (``imagenet``, ``cifar10``) or a file (one name per line, or a
    JSON list / Keras ``imagenet_class_index.json``)."""
    if value is None:
        return None
    if isinstance(value, str):
        key = value.lower()
        if key in ("imagenet", "cifar10"):
            from model_zoo.registry import CIFAR10_NAMES, imagenet_class_names

            return imagenet_class_names() if key == "imagenet" else CIFAR10_NAMES
        path = Path(value)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise ContractError(f"{where}: class_names {value!r} is neither a list, 'imagenet', "
                                f"'cifar10' nor a file ({path} does not exist)")
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            data = json.loads(text)
            if isinstance(data, dict):  # Keras: {"0": ["n01440764", "tench"], ...}
                return tuple(str(data[str(i)][-1] if isinstance(data[str(i)], list)
                                 else data[str(i)]) for i in range(len(data)))
            return tuple(str(v) for v in data)
        return tuple(line.strip() for line in text.splitlines() if line.strip())
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    raise ContractError(f"{where}: class_names must be a list, 'imagenet', 'cifar10' or a file")


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
    fields_ = _from_mapping(data or {}, str(path))
    if "class_names" in fields_:
        fields_["class_names"] = _class_names(fields_["class_names"], path.parent, str(path))
    return fields_


def parse_overrides(overrides) -> dict[str, Any]:
    """Contract fields from a mapping, a :class:`ModelContract` or a sidecar path."""
    if overrides is None:
        return {}
    if isinstance(overrides, ModelContract):
        return {k: getattr(overrides, k) for k in FIELDS}
    if isinstance(overrides, (str, os.PathLike)):
        return read_sidecar(overrides)
    fields_ = _from_mapping(overrides, "contract")
    if "class_names" in fields_:
        fields_["class_names"] = _class_names(fields_["class_names"], None, "contract")
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
            out.update(_from_mapping(json.loads(meta[CONTRACT_KEY]), f"metadata {CONTRACT_KEY}"))
        except json.JSONDecodeError as err:
            raise ContractError(f"the file's metadata entry {CONTRACT_KEY!r} is not valid JSON "
                                f"({err.msg}); fix it or override with a sidecar") from None
        if "class_names" in out and isinstance(out["class_names"], str):
            out["class_names"] = _class_names(out["class_names"], None, "metadata")
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
    """The output's shape: as the file declares it, else from one probe forward."""
    declared = model.output_shapes[0] if model.output_shapes else None
    if declared is not None and all(d is not None for d in declared[1:]):
        return tuple(declared)
    spec = model.inputs[0]
    if not spec.dtype.is_floating or len(spec.shape) != 4:
        return None if declared is None else tuple(declared)
    layout = _graph_input_layout(model) or "NCHW"
    spatial = (2, 3) if layout == "NCHW" else (1, 2)
    dims = [1 if i == 0 else (64 if i in spatial else 3) if d is None else d
            for i, d in enumerate(spec.shape)]
    try:
        out = model(tf.zeros(dims, spec.dtype), layout="ONNX", compiled=False)
    except Exception:  # noqa: BLE001 - inference only: unknown then
        return None if declared is None else tuple(declared)
    out = out[0] if isinstance(out, tuple) else out
    return (None, *(int(d) for d in out.shape[1:]))


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
            shape = _fmt(model.inputs[0].shape) if model.inputs else "no input"
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
    given = {k: _floats(k, changes[k], positive=k == "std") for k in ("mean", "std")
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
            f"the model's input {model.inputs[0].name!r} has shape {_fmt(shape)}: the contract "
            "describes image models with a 4-D input (NCHW or NHWC)")
    axis = 1 if contract.layout == "NCHW" else 3
    c = shape[axis]
    graph_layout = _graph_input_layout(model)
    if graph_layout and graph_layout != contract.layout:
        other = 3 if contract.layout == "NCHW" else 1
        raise ContractError(
            f"the contract says layout {contract.layout} ({contract.sources.get('layout')}) but "
            f"the graph's input {_fmt(shape)} is {graph_layout} (channels on axis {other}): "
            f"drop the layout override or use --layout {graph_layout.lower()}")
    if c is not None and c != contract.channels:
        why = contract.sources.get("mean", "default")
        raise ContractError(
            f"the contract declares {contract.channels} channel(s) (mean/std from {why}) but "
            f"the graph's input {_fmt(shape)} has {c} on axis {axis} ({contract.layout}): give "
            f"{c} mean/std value(s), e.g. --mean {','.join(['0'] * c)} --std "
            f"{','.join(['1'] * c)}")
    if contract.input_size is not None:
        hw = shape[2:4] if contract.layout == "NCHW" else shape[1:3]
        for got, want in zip(contract.input_size, hw):
            if want is not None and got != want:
                raise ContractError(
                    f"the contract's input_size {contract.input_size} differs from the graph's "
                    f"fixed input {_fmt(shape)}: drop --input-size or use "
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


def _fmt(shape) -> str:
    return "(" + ", ".join("N" if (i == 0 and d is None) else ("?" if d is None else str(d))
                           for i, d in enumerate(shape)) + ")"


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


# -- the model seen through its contract --------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    name: str
    shape: tuple[int | None, ...]
    dtype: tf.DType


class ContractModel(tf.Module):
    """A :class:`~converters.onnx_to_tf.TFModel` behind its :class:`ModelContract`.

    Takes the working input (NCHW, RGB, normalised by :attr:`preprocessing`), returns logits
    (or, with taps, channels-first tensors); everything else (``nodes``, ``bn_layers``,
    ``onnx_variables``, ``resolve``...) is the graph's. See the module docstring.
    """

    def __init__(self, graph: TFModel, contract: ModelContract):
        super().__init__(name=graph.name)
        self.graph = graph
        self.contract = contract
        spec = graph.inputs[0]
        self._image = len(spec.shape) == 4
        if self._image:
            hw = spec.shape[2:4] if contract.layout == "NCHW" else spec.shape[1:3]
            hw = tuple(h if h is not None else (contract.input_size[i] if contract.input_size
                                                else None) for i, h in enumerate(hw))
            # a grayscale model takes its one channel, or RGB turned to luma: either
            shape = (spec.shape[0], None if contract.grayscale else contract.channels, *hw)
        else:  # not an image model: the input passes as it is
            shape = spec.shape
        self.inputs = (_Spec(spec.name, tuple(shape), spec.dtype),)
        self._functions: dict[tuple, Any] = {}
        self._num_classes: int | None = None

    # -- the graph's own attributes ---------------------------------------------------------
    @property
    def preprocessing(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) in pixel units, RGB: the working input is (pixels - mean) / std."""
        return self.contract.preprocessing

    @property
    def input_shape(self):
        return self.inputs[0].shape

    @property
    def dtype(self):
        return self.graph.dtype

    @property
    def metadata(self):
        return self.graph.metadata

    @property
    def nodes(self):
        return self.graph.nodes

    @property
    def bn_layers(self):
        return self.graph.bn_layers

    @property
    def onnx_variables(self):
        return self.graph.onnx_variables

    @property
    def layer_names(self):
        return self.graph.layer_names

    @property
    def aliases(self):
        return self.graph.aliases

    @property
    def output_names(self):
        return self.graph.output_names

    @property
    def opset(self):
        return self.graph.opset

    @property
    def jit_compile(self):
        return self.graph.jit_compile

    @property
    def class_names(self):
        return self.contract.class_names

    def resolve(self, name: str) -> str:
        return self.graph.resolve(name)

    def dependencies(self, taps):
        return self.graph.dependencies(taps)

    def to_onnx_layout(self, name, value):
        return self.graph.to_onnx_layout(name, value)

    def from_onnx_layout(self, name, value):
        return self.graph.from_onnx_layout(name, value)

    def onnx_weights(self):
        return self.graph.onnx_weights()

    def static_value(self, name: str):
        return self.graph.static_value(name)

    def with_contract(self, overrides=None) -> ContractModel:
        return self if overrides is None else self.graph.with_contract(overrides)

    def summary(self) -> str:
        return self.graph.summary() + "\ncontract:\n" + self.contract.describe()

    # -- running ----------------------------------------------------------------------------
    def _graph_feed(self, x) -> Value:
        """The working input as the graph's input Value: flip, gain, layout tag (no copy)."""
        c = self.contract
        if not self._image:
            return Value(x)
        if c.grayscale and x.shape[1] == 3:  # BT.601 luma; its weights sum to 1, so it
            x = tf.tensordot(x, tf.constant(_LUMA, x.dtype), [[1], [0]])[:, None]  # commutes
            # with the per-channel (x - m) / s of equal m, s
        if c.bgr:
            x = tf.reverse(x, axis=[1])
        if c.gain is not None:
            x = x * tf.constant(np.asarray(c.gain).reshape(1, -1, 1, 1), x.dtype)
        return Value(x, (0, 3, 1, 2) if c.layout == "NHWC" else None)

    @property
    def logits_name(self) -> str:
        """The tensor that holds the class scores: a final Softmax's input, else the output.
        Tap it with the other tensors a pass needs and read it with :meth:`as_logits`."""
        return self.contract.logits or self.graph.output_names[0]

    def as_logits(self, t: tf.Tensor) -> tf.Tensor:
        """The :attr:`logits_name` tensor as (N, classes) logits: spatial maps squeezed, and
        log-probabilities for a model declared to output probabilities with no logits tensor
        (equal to the logits up to a per-image constant, so softmax and argmax agree)."""
        if self.contract.is_classifier and t.shape.rank == 4:
            t = tf.reshape(t, [-1, int(np.prod(t.shape[1:]))])
        if self.contract.output == "probabilities" and not self.contract.logits:
            t = tf.math.log(tf.maximum(t, tf.constant(1e-30, t.dtype)))
        return t

    def _wanted(self, taps) -> tuple[str, ...]:
        if taps:
            return tuple(dict.fromkeys(self.graph.resolve(t) for t in taps))
        return (self.logits_name,)

    def _finish(self, values: dict, taps, wanted):
        if taps:
            return {t: values[self.graph.resolve(t)] for t in taps}
        return self.as_logits(values[wanted[0]])

    def _check(self, x) -> tf.Tensor:
        t = x if tf.is_tensor(x) else tf.convert_to_tensor(np.asarray(x))
        spec = self.inputs[0]
        if not t.dtype.is_floating:
            raise ModelInputError(
                f"the model takes float pixels normalised as model.preprocessing (NCHW, RGB); "
                f"got {t.dtype.name}. Convert uint8 pictures with "
                "tf_impl.images.as_pixels(...) and normalise")
        if t.dtype != spec.dtype:
            t = tf.cast(t, spec.dtype)
        shape = tuple(t.shape)
        if not self._image:
            return t
        if len(shape) != 4:
            hint = " Add a batch axis: x[None]." if len(shape) == 3 else ""
            raise ModelInputError(f"the model takes a 4-D NCHW batch {_fmt(spec.shape)}; got "
                                  f"shape {_fmt(shape)}.{hint}")
        if self.contract.grayscale and shape[1] not in (1, 3, None):
            raise ModelInputError(
                f"this grayscale model takes 1 channel, or 3 (RGB, turned to luma); got shape "
                f"{_fmt(shape)}")
        for axis, (got, want) in enumerate(zip(shape, spec.shape)):
            if axis and got is not None and want is not None and got != want:
                hint = ""
                if axis == 1 and shape[3] == want:
                    hint = (" It looks channels-last: techniques take NCHW RGB (the contract "
                            "maps it to the model's own layout); use np.transpose(x, (0, 3, 1, "
                            "2)).")
                raise ModelInputError(
                    f"the model takes NCHW input {_fmt(spec.shape)} (RGB, normalised as "
                    f"model.preprocessing); got {_fmt(shape)}: axis {axis} is {got}, expected "
                    f"{want}.{hint}")
        return t

    def __call__(self, x, *, taps: Sequence[str] | None = None, layout: str = "NCHW",
                 bn_mode: str = "eval", relu_mode: str = "standard", compiled: bool = True):
        """Logits for the working input ``x`` (NCHW, RGB, normalised), or ``{tap: tensor}``
        (channels-first for 4-D tensors; ``layout="NHWC"`` for channels-last)."""
        if isinstance(taps, str):
            taps = [taps]
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}; got {layout!r}")
        x = self._check(x)
        wanted = self._wanted(taps)
        key = (wanted, layout, bn_mode, relu_mode)
        if compiled:
            fn = self._functions.get(key)
            if fn is None:
                def fn(t, _key=key):
                    return self.graph._run({self.inputs[0].name: self._graph_feed(t)}, *_key)

                fn = tf.function(fn, jit_compile=self.graph.jit_compile, reduce_retracing=False)
                self._functions[key] = fn
            values = fn(x)
        else:
            values = self.graph._run({self.inputs[0].name: self._graph_feed(x)}, *key)
        return self._finish(values, taps, wanted)

    def logits(self, x, **kw) -> tf.Tensor:
        """Class logits (N, classes); refuses a model without a classifier output."""
        self.require_classifier("class logits")
        return self(x, **kw)

    def probabilities(self, x, **kw) -> tf.Tensor:
        """Class probabilities: the softmax of the logits (the model's own Softmax output for
        a model that ends in one, computed without a second softmax)."""
        return tf.nn.softmax(self.logits(x, **kw), axis=-1)

    def require_classifier(self, what: str = "a class score") -> None:
        if not self.contract.is_classifier:
            raise ContractError(
                f"{what}: this model has no classifier output (its output "
                f"{self.graph.output_names[0]!r} is a feature map, contract output "
                f"'features'); use a classifier, or, if this output is class scores, say so "
                "with --output logits (or 'output: logits' in the sidecar)")

    @property
    def num_classes(self) -> int:
        """The number of classes (the logits' last axis), from one probe forward."""
        if self._num_classes is None:
            self.require_classifier("the number of classes")
            dims = [1] + [d if d is not None else 64 for d in self.inputs[0].shape[1:]]
            self._num_classes = int(self(tf.zeros(dims, self.dtype)).shape[-1])
        return self._num_classes

    def freeze(self, input_shape: Sequence[int] | None = None, *, taps=None,
               layout: str = "NCHW"):
        """A forward-only snapshot (weights as constants) taking the working input; see
        :meth:`TFModel.freeze`."""
        shape = tuple(self.inputs[0].shape if input_shape is None else input_shape)
        if any(d is None for d in shape):
            raise ModelInputError(
                f"freeze() needs a full input shape; the model's is {_fmt(shape)}. Pass one, "
                f"e.g. model.freeze({tuple(1 if d is None else d for d in shape)})")
        if isinstance(taps, str):
            taps = [taps]
        wanted = self._wanted(taps)
        return self.graph._freeze(shape, wanted, layout, self._graph_feed,
                                  lambda values: self._finish(values, taps, wanted),
                                  check=self._check)


def contract_model(model, overrides=None):
    """``model`` seen through its contract: a :class:`ContractModel` as is, a ``TFModel``
    through the contract it was loaded with (the view is cached on the model), any other
    object unchanged (a callable taking the working input, e.g. a test double)."""
    if isinstance(model, ContractModel):
        return model if overrides is None else model.with_contract(overrides)
    view = getattr(model, "with_contract", None)
    return model if view is None else view(overrides)


