"""What a technique in ``tf_impl`` may ask of a model: the :class:`Victim` protocol.

:class:`~converters.onnx_to_tf.ContractModel` (what ``contract_model(load(path))`` returns)
satisfies it; so may a test double. A technique that needs something not listed here asks
for it to be added here (and answered by the importer), rather than walking ``model.nodes``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .graph_queries import BiasLayer, ConvLayer, FCLayer, NotAConv
from .receptive_field import ReceptiveField

__all__ = ["Victim"]


@runtime_checkable
class Victim(Protocol):
    """The model as the techniques see it.

    Running it:
        ``model(x)`` takes the working input (NCHW, RGB, normalised by ``preprocessing``) and
        returns logits; ``model(x, taps=[...])`` returns ``{tensor name: value}`` for the
        tapped tensors (channels first), ``bn_mode="train"`` runs BatchNorm on batch
        statistics. ``as_logits`` reads the ``logits_name`` tap as logits.
    Describing its input and output:
        ``inputs`` (name, shape, dtype of the working input), ``input_shape``,
        ``preprocessing`` ((mean, std) per channel, pixel units in [0, 1]), ``class_names``.
    Its weights, in ONNX layout on request:
        ``onnx_variables`` (initializer name -> ``tf.Variable``), ``bn_layers``,
        ``to_onnx_layout`` / ``from_onnx_layout``.
    Its graph, answered once by the importer:
        ``resolve`` (a layer alias -> tensor name), ``dependencies`` (the tensors a set of taps
        needs), ``classifier()`` (the last fully connected layer, or None), ``bias_terms()``
        (the nodes that add a bias on the way to the logits), ``conv_kernels()`` (the
        convolution whose kernels make each tensor's channels), ``receptive_field(tap)`` (the
        input region each unit of a layer sees).
    """

    inputs: Sequence[Any]

    def __call__(self, x, *, taps: Sequence[str] | None = None, **kw) -> Any: ...

    def as_logits(self, t) -> Any: ...

    @property
    def logits_name(self) -> str: ...

    @property
    def input_shape(self) -> tuple[int | None, ...]: ...

    @property
    def preprocessing(self) -> tuple[tuple[float, ...], tuple[float, ...]]: ...

    @property
    def class_names(self) -> Sequence[str] | None: ...

    @property
    def onnx_variables(self) -> Mapping[str, Any]: ...

    @property
    def bn_layers(self) -> Sequence[Any]: ...

    def to_onnx_layout(self, name: str, value) -> Any: ...

    def from_onnx_layout(self, name: str, value) -> Any: ...

    def resolve(self, name: str) -> str: ...

    def dependencies(self, taps: Sequence[str]) -> list[str]: ...

    def classifier(self) -> FCLayer | None: ...

    def bias_terms(self) -> tuple[BiasLayer, ...]: ...

    def conv_kernels(self) -> Mapping[str, ConvLayer | NotAConv]: ...

    def receptive_field(self, tap: str, input_hw: tuple[int, int] | None = None
                        ) -> ReceptiveField: ...
