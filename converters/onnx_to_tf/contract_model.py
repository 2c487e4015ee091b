"""The model seen through its contract: :class:`ContractModel`.

It takes the working input every technique uses (NCHW, RGB, normalised by
:attr:`ContractModel.preprocessing`) and maps it to the graph's own input inside the traced
function; without taps it returns class logits. See :mod:`.contract`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import tensorflow as tf

from .contract import LAYOUTS, ContractError, ModelContract, dims
from .errors import ModelInputError
from .graph_queries import BiasLayer, ConvLayer, FCLayer, NotAConv, find_bias_terms
from .layout import Value
from .receptive_field import ReceptiveField, find_receptive_field

if TYPE_CHECKING:  # pragma: no cover
    from .model import TFModel

__all__ = ["ContractModel", "contract_model"]

_LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class _Spec:
    name: str
    shape: tuple[int | None, ...]
    dtype: tf.DType


def _from_graph(name: str) -> property:
    """A read-only attribute passed through from the imported graph model."""
    return property(lambda self: getattr(self.graph, name), doc=f"The graph model's ``{name}``.")


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
        self._bias_terms: tuple[BiasLayer, ...] | None = None
        self._fields: dict[tuple, ReceptiveField] = {}

    # -- the graph's own attributes ---------------------------------------------------------
    @property
    def preprocessing(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """(mean, std) in pixel units, RGB: the working input is (pixels - mean) / std."""
        return self.contract.preprocessing

    @property
    def input_shape(self):
        return self.inputs[0].shape

    dtype = _from_graph("dtype")
    metadata = _from_graph("metadata")
    nodes = _from_graph("nodes")
    bn_layers = _from_graph("bn_layers")
    onnx_variables = _from_graph("onnx_variables")
    layer_names = _from_graph("layer_names")
    aliases = _from_graph("aliases")
    output_names = _from_graph("output_names")
    opset = _from_graph("opset")
    jit_compile = _from_graph("jit_compile")

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

    def classifier(self) -> FCLayer | None:
        return self.graph.classifier()

    def bias_terms(self) -> tuple[BiasLayer, ...]:
        """The nodes that add a bias to an activation on the way to the logits, in graph
        order (FullGrad's bias terms). Found once, then kept."""
        if self._bias_terms is None:
            feeding = set(self.dependencies([self.logits_name]))
            self._bias_terms = find_bias_terms(self.graph, self.inputs, feeding)
        return self._bias_terms

    def receptive_field(self, tap: str, input_hw: tuple[int, int] | None = None
                        ) -> ReceptiveField:
        """The receptive field of ``tap``'s units, from the graph (see ``receptive_field.py``),
        for an input of ``input_hw`` (default: the model's fixed size, else 224x224). Found
        once per (layer, size), then kept."""
        fixed = self.inputs[0].shape[2:4]
        hw = tuple(input_hw or (fixed if len(fixed) == 2 and None not in fixed else (224, 224)))
        key = (self.resolve(tap), hw)
        if key not in self._fields:
            self._fields[key] = find_receptive_field(self, tap, hw)
        return self._fields[key]

    def conv_kernels(self) -> dict[str, ConvLayer | NotAConv]:
        return self.graph.conv_kernels()

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
            raise ModelInputError(f"the model takes a 4-D NCHW batch {dims(spec.shape)}; got "
                                  f"shape {dims(shape)}.{hint}")
        if self.contract.grayscale and shape[1] not in (1, 3, None):
            raise ModelInputError(
                f"this grayscale model takes 1 channel, or 3 (RGB, turned to luma); got shape "
                f"{dims(shape)}")
        for axis, (got, want) in enumerate(zip(shape, spec.shape)):
            if axis and got is not None and want is not None and got != want:
                hint = ""
                if axis == 1 and shape[3] == want:
                    hint = (" It looks channels-last: techniques take NCHW RGB (the contract "
                            "maps it to the model's own layout); use np.transpose(x, (0, 3, 1, "
                            "2)).")
                raise ModelInputError(
                    f"the model takes NCHW input {dims(spec.shape)} (RGB, normalised as "
                    f"model.preprocessing); got {dims(shape)}: axis {axis} is {got}, expected "
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
                f"freeze() needs a full input shape; the model's is {dims(shape)}. Pass one, "
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
