"""What a user would have to know about a third-party file (``Truth``), the means and
stds of the origins, ONNX graph helpers the builders share, and which files onnx2torch takes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from ..registry import IMAGENET_MEAN, IMAGENET_STD, FileContract

# Bump when a builder's output changes: files saved by an older format are rebuilt.
FORMAT = 2  # 2: the zoo records the working normalisation of a mean-only model

ORIGINS = ("keras", "torchvision", "torchvision-legacy", "caffe-style")
OUTPUTS = ("logits", "probabilities", "spatial_logits")


@dataclass(frozen=True)
class Truth:
    """What a user must know to feed a file and read its output.

    The graph input, in ``layout``, is ``(scale * pixel - mean) / std`` per channel, the
    channels in ``channel_order`` and ``pixel`` in [0, 1]; ``mean``/``std`` are in the model's
    channel order and units. ``output``: ``"logits"``, ``"probabilities"`` (the graph ends in
    Softmax; see ``notes`` for a 4-D one) or ``"spatial_logits"`` ((N, C, 1, 1) logits).

    Example:
        >>> t = Truth("keras", "NHWC", "RGB", 255.0, (127.5,) * 3, (127.5,) * 3, (224, 224),
        ...           "probabilities", 1000, True)
        >>> Truth.from_dict(t.to_dict()) == t
        True
    """

    origin: str
    layout: str
    channel_order: str
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int]
    output: str
    num_classes: int
    onnx2torch_ok: bool
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Truth:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["mean"] = tuple(float(v) for v in d["mean"])
        d["std"] = tuple(float(v) for v in d["std"])
        d["input_size"] = tuple(int(v) for v in d["input_size"])
        return cls(**d)

    def input_shape(self, batch: int = 1) -> tuple[int, ...]:
        """The graph input's shape for ``batch`` images (in ``layout``)."""
        h, w = self.input_size
        return (batch, h, w, 3) if self.layout == "NHWC" else (batch, 3, h, w)

    def model_input(self, pixels: np.ndarray) -> np.ndarray:
        """The file's input for RGB pixels in [0, 1], NCHW (float32).

        Example:
            >>> t = Truth("caffe-style", "NHWC", "BGR", 255.0, (1.0, 2.0, 3.0), (1.0,) * 3,
            ...           (1, 1), "probabilities", 10, True)
            >>> t.model_input(np.ones((1, 3, 1, 1), np.float32)).ravel().tolist()
            [254.0, 253.0, 252.0]
        """
        return FileContract(self.layout, self.channel_order, self.scale, tuple(self.mean),
                            tuple(self.std), self.output).model_input(pixels)


def truth_contract(truth: Truth, logits: str | None = None) -> dict[str, Any]:
    """The model-contract fields (``converters.onnx_to_tf.contract``) a Truth stands for, as
    the JSON a file's ``tfmi.contract`` metadata entry holds: layout, channel_order, scale,
    mean, std, input_size, output, and ``logits`` (the tensor holding the class logits, e.g.
    a final Softmax's input) when given.

    Example:
        >>> t = Truth("keras", "NHWC", "RGB", 255.0, (127.5,) * 3, (127.5,) * 3, (224, 224),
        ...           "probabilities", 1000, True)
        >>> truth_contract(t, "logits:0")["scale"], truth_contract(t)["output"]
        (255.0, 'probabilities')
    """
    out: dict[str, Any] = {
        "layout": truth.layout, "channel_order": truth.channel_order,
        "scale": float(truth.scale), "mean": [float(v) for v in truth.mean],
        "std": [float(v) for v in truth.std], "input_size": [int(v) for v in truth.input_size],
        "output": truth.output,
    }
    if logits is not None:
        out["logits"] = logits
    return out


TORCH_MEAN = tuple(float(v) for v in IMAGENET_MEAN)
TORCH_STD = tuple(float(v) for v in IMAGENET_STD)
# keras.applications.imagenet_utils.preprocess_input: "caffe" mode (BGR, 0..255, mean in BGR)
KERAS_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# 255 * torchvision's ImageNet mean, in BGR order: what a Caffe-converted file's user subtracts
CAFFE_MEAN_BGR = tuple(round(255.0 * m, 6) for m in IMAGENET_MEAN[::-1])


# --------------------------------------------------------------------------- helpers
def height_width(input_size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) from one size or a pair."""
    if isinstance(input_size, (int, np.integer)):
        return int(input_size), int(input_size)
    h, w = input_size
    return int(h), int(w)


def data_input(proto: onnx.ModelProto) -> onnx.ValueInfoProto:
    """The graph input that is not an initializer (legacy files list weights as inputs too).

    Example:
        >>> data_input(proto).name          # doctest: +SKIP
        'input.1'
    """
    inits = {t.name for t in proto.graph.initializer}
    real = [i for i in proto.graph.input if i.name not in inits]
    if len(real) != 1:
        raise ValueError(f"expected one data input, found {[i.name for i in real]}")
    return real[0]


def param_count(proto: onnx.ModelProto) -> int:
    """Number of float initializer elements."""
    return int(sum(np.prod(t.dims, dtype=np.int64) for t in proto.graph.initializer
                   if t.data_type in (TensorProto.FLOAT, TensorProto.DOUBLE,
                                      TensorProto.FLOAT16)))


def set_batch_dim(value: onnx.ValueInfoProto, name: str = "batch") -> None:
    """Make the first axis of ``value`` symbolic (``name``)."""
    dim = value.type.tensor_type.shape.dim[0]
    dim.Clear()
    dim.dim_param = name


def sync_initializer_inputs(graph: onnx.GraphProto, data_names: Sequence[str]) -> None:
    """Inputs: the data inputs, then every initializer (old-exporter style), nothing else."""
    data = [i for i in graph.input if i.name in data_names]
    kept = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
            for t in graph.initializer]
    del graph.input[:]
    graph.input.extend(data + kept)


def drop_unused_initializers(graph: onnx.GraphProto) -> None:
    """Remove initializers no node reads."""
    used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def unique_name(graph: onnx.GraphProto, base: str) -> str:
    """``base``, or ``base_N`` when the graph already uses that name."""
    taken = ({t.name for t in graph.initializer} | {i.name for i in graph.input}
             | {o for n in graph.node for o in n.output} | {n.name for n in graph.node})
    name, k = base, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


# --------------------------------------------------------------------------- onnx2torch
# Measured with onnx2torch 1.5.15 (see the docstring table); checked by the tests.
# onnx2torch matches converters by exact op version and has none for Dropout-7 (its Dropout
# converters start at opset 10); the legacy files convert once that node is bypassed.
_ONNX2TORCH_FAILS: dict[tuple[str, str], str] = {
    ("torchvision-legacy", "*"): "onnx2torch 1.5.15 fails: NotImplementedError: Converter is "
    "not implemented (OperationDescription(domain='', operation_type='Dropout', version=7)); "
    "at opset 9 everything else in the file converts",
}


def onnx2torch_failure(origin: str, arch: str) -> str | None:
    """Why onnx2torch fails on files of this origin and architecture, or None."""
    return _ONNX2TORCH_FAILS.get((origin, arch), _ONNX2TORCH_FAILS.get((origin, "*")))


def expected_onnx2torch(origin: str, arch: str) -> bool:
    """Whether onnx2torch should convert such a file."""
    return onnx2torch_failure(origin, arch) is None
