"""The model contract: how an ONNX victim wants its input and what its output means.

Models come from Caffe, Keras, Paddle and PyTorch, and each wants its pixels differently:
channels first or last, RGB or BGR, in [0, 1] or 0..255, minus a mean, over a std. Some end in
a Softmax, some in an (N, C, 1, 1) map. A :class:`ModelContract` says all of it in one place::

    model input[c] = (scale * pixel[c'] - mean[c]) / std[c]

with ``c'`` the RGB channel that model channel ``c`` holds (``channel_order``), laid out as
``layout``; ``mean`` and ``std`` are in the model's units and channel order, as the model's
documentation gives them (Caffe: BGR means 103.939, 116.779, 123.68, std 1, scale 255).

Where it comes from (:mod:`.contract_sources`), later sources overriding earlier ones, field
by field:

1. defaults (NCHW, RGB, [0, 1], mean 0, std 1);
2. the graph: the input layout (from its shape and its first Transpose), the input size, a
   final Softmax/LogSoftmax (whose input is the logits tensor) or an (N, C, 1, 1) output;
3. the file's metadata: our zoo's ``model_zoo.preprocessing``, a ``tfmi.contract`` entry,
   the Windows ML image keys ``Image.BitmapPixelFormat`` / ``Image.NominalPixelRange``;
4. a sidecar file next to the model (``model.contract.json`` or ``.yaml``);
5. explicit overrides (the command line's ``--layout nhwc --bgr --scale 255 --mean ...``).

:class:`~.contract_model.ContractModel` is the model seen through its contract. It takes the
*working input* every technique uses: NCHW, RGB, pixels normalised as ``(pixel - mean_px) /
std_px`` with ``preprocessing = (mean_px, std_px)`` in pixel units ([0, 1], RGB order), and
maps it to the graph's own input inside the traced function (a channel flip, a layout tag,
at most one multiply). Called without taps it returns class *logits* (the input of a final
Softmax, spatial maps squeezed), so scores and gradients never go through a saturated
softmax; taps come back channels-first. For a model that divides by a std, ``std_px = std /
scale`` and the working input *is* the model's input. A model that only subtracts a mean at
scale 255 (the Caffe convention) would otherwise work in units of 1/255 of a pixel, where no
step size or prior weight of the papers means anything; its working input takes the ImageNet
std (0.229, 0.224, 0.225) instead, the space those defaults were tuned in (one multiply in
the graph maps it back), so a Caffe conversion of a network gives the same results as the
network itself.

>>> model = load("caffe_resnet.onnx", contract={"layout": "NHWC"})   # doctest: +SKIP
>>> victim = model.with_contract()                                   # doctest: +SKIP
>>> mean, std = victim.preprocessing                                 # doctest: +SKIP
>>> logits = victim((pixels - mean) / std)                           # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import OnnxImportError

if TYPE_CHECKING:  # pragma: no cover
    pass

__all__ = [
    "ModelContract",
    "ContractError",
    "CONTRACT_KEY",
    "FIELDS",
    "LAYOUTS",
    "OUTPUT_KINDS",
]

CONTRACT_KEY = "tfmi.contract"
LAYOUTS = ("NCHW", "NHWC")
ORDERS = ("RGB", "BGR")
OUTPUT_KINDS = ("logits", "probabilities", "log_probabilities", "spatial_logits", "features")
FIELDS = ("layout", "channel_order", "scale", "mean", "std", "input_size", "output", "logits",
          "class_names")
IMAGENET_STD = (0.229, 0.224, 0.225)  # RGB


class ContractError(OnnxImportError):
    """A contract that cannot hold for this model; the message names the field and the fix."""


def parse_floats(what: str, value, *, positive: bool = False) -> tuple[float, ...]:
    """One float or a list (a comma-separated string too), checked; ``what`` names the field."""
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
        (scale,) = parse_floats("scale", self.scale, positive=True)
        mean = parse_floats("mean", self.mean)
        std = parse_floats("std", self.std, positive=True)
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
        fields_ = from_mapping(data, "contract")
        if "class_names" in fields_:
            fields_["class_names"] = read_class_names(fields_["class_names"], None, "contract")
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


# -- the fields, as files and flags spell them ----------------------------------------------
def from_mapping(data: Mapping[str, Any], where: str) -> dict[str, Any]:
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


def read_class_names(value, base: Path | None, where: str) -> tuple[str, ...] | None:
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


def dims(shape) -> str:
    """A shape for messages: ``(N, 3, 224, 224)``, ``?`` for unknown sizes."""
    return "(" + ", ".join("N" if (i == 0 and d is None) else ("?" if d is None else str(d))
                           for i, d in enumerate(shape)) + ")"
