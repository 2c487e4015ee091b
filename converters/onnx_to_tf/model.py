"""TFModel: an ONNX graph imported as a differentiable ``tf.Module``.

>>> model = load("resnet20.onnx")                   # doctest: +SKIP
>>> logits = model(x)                               # x: NCHW float32, as in ONNX
>>> feats = model(x, taps=["layer2", "conv1"])      # dict of NCHW tensors
>>> with tf.GradientTape() as tape:                 # gradients w.r.t. weights
...     loss = tf.reduce_sum(model(x))
>>> grads = tape.gradient(loss, model.trainable_variables)
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
import tensorflow as tf

from . import ops  # noqa: F401  (registers the handlers)
from .building import (
    BNLayer,
    bn_layers,
    declared_shape,
    input_spec,
    known_types,
    load_initializers,
    parse_nodes,
    variable_name,
)
from .contract import ModelContract, dims
from .contract_model import ContractModel
from .contract_sources import resolve_contract, tensor_layouts
from .errors import ModelInputError, UnknownTapError
from .feeding import (
    BN_MODES,
    LAYOUTS,
    RELU_MODES,
    FrozenForward,
    check_choice,
    check_input,
    feed_inputs,
)
from .fold import fold_batchnorm, simplify
from .graph import Context, Node, execute
from .graph_queries import (
    BiasLayer,
    ConvLayer,
    FCLayer,
    NotAConv,
    find_classifier,
    find_conv_layers,
)
from .layout import Value, channels_last, identity, inverse
from .mmap_weights import RawWeights
from .reader import check_structure, default_opset
from .receptive_field import ReceptiveField

__all__ = ["TFModel", "BNLayer"]

ALIAS_KEY = "model_zoo.layer_aliases"


class TFModel(tf.Module):
    """An imported ONNX model. See the module docstring for an example.

    Attributes:
        inputs: the graph inputs (name, logical NCHW shape, dtype).
        output_names: the graph outputs.
        layer_names: every tensor that can be tapped, in graph order.
        aliases: friendly names (``conv3_1``, ``layer2``...) -> tensor names.
        bn_layers: the BatchNormalization nodes with their variables.
        onnx_variables: ONNX initializer name -> ``tf.Variable`` (float initializers).
    """

    # the cached contract view holds this model: keep it out of the variable walk
    _TF_MODULE_IGNORED_PROPERTIES = tf.Module._TF_MODULE_IGNORED_PROPERTIES | {"_contract_view"}

    def __init__(
        self,
        proto: onnx.ModelProto,
        *,
        aliases: Mapping[str, str] | None = None,
        raw: RawWeights | None = None,
        jit_compile: bool = False,
        dtype: str | tf.DType = "float32",
        name: str | None = None,
    ):
        self.dtype = tf.as_dtype(dtype)
        if not self.dtype.is_floating:
            raise ValueError(f"dtype must be a floating type such as 'float32'; got {dtype!r}")
        meta = {p.key: p.value for p in proto.metadata_props}
        super().__init__(
            name=variable_name(
                name or meta.get("model_zoo.name") or proto.graph.name or "onnx_model"
            )
        )
        self.opset = default_opset(proto)
        check_structure(proto)
        graph = proto.graph
        self.metadata = meta
        self.jit_compile = jit_compile
        self._nodes = parse_nodes(graph, self.opset)
        self._nodes, self._same = simplify(self._nodes, known_types(graph),
                                           keep={o.name for o in graph.output})
        self._consts, self.onnx_variables, self._perms = load_initializers(
            graph, self._nodes, raw, self.dtype)
        init_names = {t.name for t in graph.initializer}
        self.inputs = tuple(
            input_spec(i, self.dtype) for i in graph.input if i.name not in init_names
        )
        self.output_names = tuple(o.name for o in graph.output)
        self.output_shapes = tuple(declared_shape(o) for o in graph.output)
        self.layer_names = [i.name for i in self.inputs] + [
            o for n in self._nodes for o in n.outputs if o
        ]
        named = {i.name for i in self.inputs} | {o for n in self._nodes for o in n.outputs}
        # "output" names the graph output, unless a tensor of the graph is called that
        self.aliases = {} if "output" in named else {"output": self.output_names[0]}
        if ALIAS_KEY in meta:
            self.aliases.update(json.loads(meta[ALIAS_KEY]))
        self.aliases.update(aliases or {})
        self.bn_layers = bn_layers(self._nodes, self.onnx_variables)
        self._producer = {o: k for k, n in enumerate(self._nodes) for o in n.outputs if o}
        self._plans: dict[tuple[str, ...], list[Node]] = {}
        self._answers: dict[str, Any] = {}  # graph questions answered (graph_queries.py)
        self._functions: dict[tuple, tf.types.experimental.GenericFunction] = {}
        self._contract: ModelContract | None = None
        self._contract_view: ContractModel | None = None
        self._layouts: dict[str, str] | None = None

    # -- import ---------------------------------------------------------------------------
    # -- names ----------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """ONNX tensor name for an alias or raw name, or an error listing the valid names."""
        if name in self._producer or name in {i.name for i in self.inputs}:
            return name  # a tensor's own name wins over an alias spelled the same
        if name in self._same:  # the output of a no-op removed at import
            return self._same[name]
        if name in self.aliases:
            return self.resolve(self.aliases[name]) if self.aliases[name] in self._same \
                else self.aliases[name]
        close = difflib.get_close_matches(name, list(self.aliases) + self.layer_names, n=5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise UnknownTapError(
            f"no tensor or alias named {name!r} in this model.{hint} Aliases: "
            f"{', '.join(sorted(self.aliases))}. All {len(self.layer_names)} tensor names are in "
            "model.layer_names."
        )

    # -- weights in ONNX layout -----------------------------------------------------------
    def to_onnx_layout(self, name: str, value) -> tf.Tensor:
        """Turn a variable (or its gradient) named ``name`` back into the ONNX layout."""
        perm = self._perms.get(name)
        return tf.convert_to_tensor(value) if perm is None else tf.transpose(value, inverse(perm))

    def from_onnx_layout(self, name: str, value) -> tf.Tensor:
        """The inverse of :meth:`to_onnx_layout`: an ONNX-layout array in the variable's layout."""
        perm = self._perms.get(name)
        return tf.convert_to_tensor(value) if perm is None else tf.transpose(value, perm)

    def static_value(self, name: str) -> np.ndarray | None:
        """The value of a tensor fixed at import (an integer initializer, a shape constant)
        or of a weight variable; None for tensors computed from the input."""
        const = self._consts.get(name)
        if const is None:
            return None
        if const.is_const:
            return np.asarray(const.data)
        return np.asarray(self.to_onnx_layout(name, const.data).numpy())

    def onnx_weights(self) -> dict[str, np.ndarray]:
        """All float initializers as numpy arrays in ONNX layout."""
        return {k: self.to_onnx_layout(k, v).numpy() for k, v in self.onnx_variables.items()}

    # -- running --------------------------------------------------------------------------
    def _plan(self, wanted: tuple[str, ...]) -> list[Node]:
        plan = self._plans.get(wanted)
        if plan is None:
            needed: set[int] = set()
            stack = [self._producer[w] for w in wanted if w in self._producer]
            while stack:
                k = stack.pop()
                if k in needed:
                    continue
                needed.add(k)
                stack.extend(
                    self._producer[i] for i in self._nodes[k].inputs if i in self._producer
                )
            plan = [self._nodes[k] for k in sorted(needed)]
            self._plans[wanted] = plan
        return plan

    def _run(
        self, feeds, wanted: tuple[str, ...], layout: str, bn_mode: str, relu_mode: str,
        consts=None, plan=None,
    ):
        ctx = Context(bn_mode=bn_mode, relu_mode=relu_mode, float_dtype=self.dtype)
        env = dict(self._consts if consts is None else consts)
        env.update({k: v if isinstance(v, Value) else Value(v) for k, v in feeds.items()})
        values = execute(plan or self._plan(wanted), env, wanted, ctx,
                         present=lambda name, v: self._laid_out(name, v, layout))
        return {name: tf.constant(v.data) if v.is_const else tf.convert_to_tensor(v.data)
                for name, v in values.items()}

    def _laid_out(self, name: str, v: Value, layout: str) -> Value:
        """``v`` stored in ``layout``: ONNX order, or channels first/last for image tensors (a
        tensor the graph holds channels-last, e.g. a Keras model's input, is known as such)."""
        if v.is_const:
            return v
        if layout == "ONNX" or v.rank < 3 or (layout == "NCHW" and v.rank != 4):
            perm = identity(v.rank)
        else:
            last = self.tensor_layouts.get(name) == "NHWC" and v.rank == 4
            if layout == "NHWC":
                perm = identity(v.rank) if last else channels_last(v.rank)
            else:
                perm = (0, 3, 1, 2) if last else identity(v.rank)
        return Value(v.as_perm(perm), perm)

    @property
    def tensor_layouts(self) -> dict[str, str]:
        """Tensor name -> ``"NCHW"`` or ``"NHWC"`` for the 4-D tensors whose channel axis the
        graph makes known (its input by the contract, convolutions, Transposes between)."""
        if self._layouts is None:
            self._layouts = tensor_layouts(self, self.contract.layout)
        return self._layouts

    # -- the contract ---------------------------------------------------------------------
    @property
    def contract(self) -> ModelContract:
        """How this model wants its input and what its output means (see ``contract.py``):
        read from the metadata and the graph, a sidecar and ``load(..., contract=...)``."""
        if self._contract is None:
            self._contract = resolve_contract(self)
        return self._contract

    def set_contract(self, contract: ModelContract) -> None:
        self._contract, self._contract_view, self._layouts = contract, None, None

    def with_contract(self, overrides=None) -> ContractModel:
        """This model behind its contract (cached), or behind ``overrides`` applied on top
        (a new view): takes NCHW RGB input normalised by ``.preprocessing``, returns logits."""
        if overrides is None:
            if self._contract_view is None:
                self._contract_view = ContractModel(self, self.contract)
            return self._contract_view
        from .contract_sources import check_contract, parse_overrides

        contract = self.contract.with_("override", **parse_overrides(overrides))
        check_contract(self, contract)
        return ContractModel(self, contract)

    def __call__(
        self,
        x=None,
        *,
        taps: Sequence[str] | None = None,
        layout: str = "ONNX",
        bn_mode: str = "eval",
        relu_mode: str = "standard",
        compiled: bool = True,
        **named_inputs,
    ):
        """Run the model.

        Args:
            x: the input, NCHW float32 (numpy or tensor); a dict for multi-input models.
            taps: tensor names or aliases to return instead of the output, as a dict.
            layout: ``"ONNX"`` (the default: every tensor in the graph's own order, as
                onnxruntime gives it), ``"NCHW"`` (image tensors channels-first, also those
                a Keras graph holds channels-last) or ``"NHWC"`` (channels-last).
            bn_mode: ``"eval"`` (running statistics) or ``"train"`` (batch statistics).
            relu_mode: backward rule of every Relu: ``"standard"``, ``"guided"``
                (guided backprop) or ``"deconvnet"``.
            compiled: run the graph inside a cached ``tf.function`` (default) or eagerly.

        Returns:
            the output tensor (a tuple for several outputs), or ``{tap: tensor}``.
        """
        check_choice("layout", layout, LAYOUTS)
        check_choice("bn_mode", bn_mode, BN_MODES)
        check_choice("relu_mode", relu_mode, RELU_MODES)
        if isinstance(taps, str):
            taps = [taps]
        feeds = feed_inputs(self.inputs, x, named_inputs)
        wanted = tuple(self.resolve(t) for t in taps) if taps else tuple(self.output_names)
        wanted = tuple(dict.fromkeys(wanted))
        key = (wanted, layout, bn_mode, relu_mode)
        if compiled:
            fn = self._functions.get(key)
            if fn is None:

                def fn(feeds, _key=key):
                    return self._run(feeds, *_key)

                fn = tf.function(fn, jit_compile=self.jit_compile, reduce_retracing=False)
                self._functions[key] = fn
            values = fn(feeds)
        else:
            values = self._run(feeds, *key)
        if taps:
            return {t: values[self.resolve(t)] for t in taps}
        outs = tuple(values[n] for n in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def dependencies(self, taps: Sequence[str]) -> list[str]:
        """The tensors computed to produce ``taps`` (node outputs, in execution order)."""
        if isinstance(taps, str):
            taps = [taps]
        wanted = tuple(dict.fromkeys(self.resolve(t) for t in taps))
        return [o for n in self._plan(wanted) for o in n.outputs if o]

    def freeze(
        self,
        input_shape: Sequence[int] | None = None,
        *,
        taps: Sequence[str] | None = None,
        layout: str = "ONNX",
    ) -> FrozenForward:
        """A forward-only snapshot of the model for fast inference.

        The weights are copied into the graph as constants, which lets TensorFlow's graph
        optimiser fold BatchNorm into the convolutions and the CPU kernels keep their weights
        pre-packed between calls: on CPU at batch 1 this is 1.3-1.4x faster than ``model(x)``
        and within 1.2x of onnxruntime on resnet18 and vgg16 (see
        ``benchmarks/results/foundation.md``). Later changes to the variables are *not*
        seen, and nothing can be differentiated with respect to the weights; use ``model(x)``
        for attacks and explanations, ``freeze`` for evaluation.

        Args:
            input_shape: the full NCHW input shape; defaults to the model's when it is fully
                known (e.g. ``(1, 3, 224, 224)``). Single-input models only.
            taps, layout: as in ``__call__``.
        """
        check_choice("layout", layout, LAYOUTS)
        if len(self.inputs) != 1:
            raise ModelInputError("freeze() supports single-input models; call the model instead")
        spec = self.inputs[0]
        shape = tuple(spec.shape if input_shape is None else input_shape)
        if any(d is None for d in shape):
            raise ModelInputError(
                f"freeze() needs a full input shape; the model's is {dims(spec.shape)}. "
                f"Pass one, e.g. model.freeze({tuple(1 if d is None else d for d in shape)})"
            )
        if isinstance(taps, str):
            taps = [taps]
        wanted = tuple(dict.fromkeys(self.resolve(t) for t in taps)) if taps else self.output_names

        def finish(values):
            if taps:
                return {tap: values[self.resolve(tap)] for tap in taps}
            outs = tuple(values[n] for n in wanted)
            return outs[0] if len(outs) == 1 else outs

        return self._freeze(shape, wanted, layout, lambda x: x, finish,
                            check=lambda x: check_input(spec, x))

    def _freeze(self, shape, wanted, layout, feed, finish, *, check) -> FrozenForward:
        """The frozen forward behind :meth:`freeze` (and the contract view's): ``feed`` maps
        the caller's input to the graph input, ``finish`` the values to the result."""
        spec = self.inputs[0]
        check(tf.zeros(shape, spec.dtype))  # same shape rules (rank, channels) as a call
        arrays = {name: v.numpy() for name, v in self.onnx_variables.items()}
        plan, folded = fold_batchnorm(self._plan(wanted), arrays, self._perms, set(wanted))

        def forward(x):
            consts = dict(self._consts)
            for name, arr in arrays.items():  # tf.constant in a graph: a Const node
                consts[name] = Value(tf.constant(arr), self._perms[name])
            consts.update({name: Value(arr) for name, arr in folded.items()})
            return self._run({spec.name: feed(x)}, wanted, layout, "eval", "standard", consts,
                             plan)

        concrete = tf.function(forward).get_concrete_function(tf.TensorSpec(shape, spec.dtype))
        arrays.clear()  # the graph holds the constants now
        folded.clear()
        return FrozenForward(concrete, shape, check, finish)

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The graph's nodes in execution order (op type, name, inputs, outputs, attributes)."""
        return tuple(self._nodes)

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        return self.inputs[0].shape

    def classifier(self) -> FCLayer | None:
        """The last fully connected layer (weight, bias, layout, classes), or None when the
        classifier is not fully connected. Found once, then kept."""
        if "classifier" not in self._answers:
            self._answers["classifier"] = find_classifier(self)
        return self._answers["classifier"]

    def bias_terms(self) -> tuple[BiasLayer, ...]:
        """The nodes that add a bias on the way to the logits (see ``ContractModel``)."""
        return self.with_contract().bias_terms()

    def receptive_field(self, tap: str, input_hw=None) -> ReceptiveField:
        """The receptive field of ``tap``'s units (see ``ContractModel.receptive_field``)."""
        return self.with_contract().receptive_field(tap, input_hw)

    def conv_kernels(self) -> dict[str, ConvLayer | NotAConv]:
        """For every activation tensor, the convolution whose kernels make its channels (the
        Conv's output and the pointwise ops after it), or the node that stops the walk back
        to one (``graph_queries.find_conv_layers``). Found once, then kept."""
        if "conv_kernels" not in self._answers:
            self._answers["conv_kernels"] = find_conv_layers(self)
        return self._answers["conv_kernels"]

    def summary(self) -> str:
        """A short text description: inputs, outputs, op counts, parameter count."""
        counts: dict[str, int] = {}
        for n in self._nodes:
            counts[n.op_type] = counts.get(n.op_type, 0) + 1
        params = sum(int(np.prod(v.shape)) for v in self.onnx_variables.values())
        op_counts = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))
        return (
            f"TFModel {self.name}: opset {self.opset}, inputs "
            f"{[(i.name, dims(i.shape)) for i in self.inputs]}, outputs {self.output_names}, "
            f"{len(self._nodes)} nodes ({op_counts}), "
            f"{params:,} parameters, {len(self.bn_layers)} BatchNorm layers"
        )
