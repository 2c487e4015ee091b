"""The receptive field of a layer's units, read from the graph (``model.receptive_field``).

Along each spatial axis, from the input (size 1, jump 1, start 0) to the layer, a window of
kernel ``k``, dilation ``d``, stride ``s`` and begin padding ``p`` maps (size, jump, start) to
(size + (d (k - 1)) jump, jump s, start - p jump) (Araujo, Norris & Sim, "Computing Receptive
Fields of Convolutional Neural Networks", Distill 2019). Conv, MaxPool and AveragePool change
the field by their kernel, stride, pads and dilations; pointwise ops, BatchNorm and ReLU keep
it; Add/Concat of branches (ResNets) take the union of the branches' fields, i.e. the largest
one; Pad and spatial Slice shift and stride it; global pooling makes it the whole image. The
field is the bounding box of every input pixel a unit's windows can reach: exact for units
whose field lies inside the image (and at the borders of the zoo's CNNs), an upper bound at
the border of graphs where an intermediate layer's padding hides border pixels from a unit or
a dilated kernel skips them.

The model asks: :func:`find_receptive_field` takes the contract view (NCHW input) of an
imported model; ``tf_impl.visualization.receptive_field`` measures the field empirically.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .errors import GraphQueryError

__all__ = ["ReceptiveField", "find_receptive_field", "tap_shapes"]

# ops that keep the receptive field: pointwise in space (channels may mix, as in LRN)
_KEEP = {
    "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Sigmoid", "HardSigmoid", "HardSwish",
    "Tanh", "Softplus", "Softsign", "Clip", "Identity", "Dropout", "BatchNormalization", "Abs",
    "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Erf", "Gelu", "Mish", "Cast", "LRN", "Floor",
    "Ceil", "Round", "Sign", "Not",
}
# ops that combine their (broadcast) inputs pointwise: the union of the inputs' fields
_UNION = {"Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Where", "Equal",
          "Greater", "Less", "And", "Or"}
_POOL = {"Conv", "MaxPool", "AveragePool", "LpPool"}
_WHOLE = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool", "InstanceNormalization"}
_NOT_SPATIAL = {"Shape", "Size"}


@dataclass(frozen=True)
class _Axis:
    """The field of unit 0 along one axis: input pixels [start, start + size), stepping by
    ``jump`` input pixels per unit; ``whole`` when every unit sees the whole input."""

    size: int = 1
    jump: int = 1
    start: int = 0
    whole: bool = False


@dataclass(frozen=True)
class _Blocked:
    """A tensor whose field cannot be followed (the op and node that stopped it)."""

    op: str
    node: str


@dataclass(frozen=True)
class ReceptiveField:
    """The input region each unit of a layer sees (per axis: height, width).

    Attributes:
        size: (rh, rw) the field's extent in input pixels (the image size along an axis where
            the field is the whole image, after global pooling).
        jump: (jh, jw) input pixels between neighbouring units (the product of the strides).
        start: (sh, sw) the input coordinate of the first pixel of unit (0, 0)'s field;
            negative when the field reaches into the zero padding.
        whole: (bool, bool) whether every unit sees the whole image along that axis.
        layer: the layer's ONNX tensor name.
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[int, int]
    whole: tuple[bool, bool] = (False, False)
    layer: str = ""

    def box(self, y: int, x: int, image_hw: tuple[int, int] | None = None
            ) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1), half-open, of unit (y, x)'s field; clipped to the image when
        ``image_hw`` is given."""
        y0 = 0 if self.whole[0] else self.start[0] + y * self.jump[0]
        x0 = 0 if self.whole[1] else self.start[1] + x * self.jump[1]
        y1, x1 = y0 + self.size[0], x0 + self.size[1]
        if image_hw is not None:
            h, w = image_hw
            y0, y1, x0, x1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
        return int(y0), int(y1), int(x0), int(x1)

    def to_dict(self) -> dict:
        return {"size": list(self.size), "jump": list(self.jump), "start": list(self.start),
                "whole": list(self.whole), "layer": self.layer}


def _union(a: _Axis, b: _Axis) -> _Axis:
    if a.whole or b.whole:
        return _Axis(1, a.jump if a.whole else b.jump, 0, True)
    if a.jump != b.jump:
        raise ValueError(f"branches with different strides ({a.jump} and {b.jump})")
    start = min(a.start, b.start)
    return _Axis(max(a.start + a.size, b.start + b.size) - start, a.jump, start)


def _static(model, producers: dict, name: str):
    """The value of a constant tensor (a Constant node's output or an integer initializer)."""
    node = producers.get(name)
    if node is not None and node.op_type == "Constant":
        return np.asarray(node.attr("value"))
    return model.static_value(name)


def _window(node, ax: _Axis, axis: int, in_size: int | None, model) -> _Axis:
    """A Conv/pool window along spatial ``axis`` (0: height, 1: width)."""
    if node.op_type == "Conv" and not node.attr("kernel_shape"):
        w = model.to_onnx_layout(node.inputs[1], model.onnx_variables[node.inputs[1]])
        kernel = list(w.shape[2:])
    else:
        kernel = list(node.attr("kernel_shape"))
    n = len(kernel)
    if n != 2:
        raise ValueError(f"{n}-D {node.op_type} (only 2-D is supported)")
    k = int(kernel[axis])
    s = int((node.attr("strides") or [1] * n)[axis])
    d = int((node.attr("dilations") or [1] * n)[axis])
    eff = (k - 1) * d + 1
    auto = node.attr("auto_pad", "NOTSET")
    if isinstance(auto, bytes):
        auto = auto.decode()
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        if in_size is None:
            raise ValueError("auto_pad SAME needs the input size")
        out = -(-in_size // s)
        total = max(0, (out - 1) * s + eff - in_size)
        pb = total // 2 if auto == "SAME_UPPER" else total - total // 2
    elif auto == "VALID":
        pb = 0
    else:
        pads = node.attr("pads") or [0] * (2 * n)
        pb = int(pads[axis])
    if ax.whole:
        return replace(ax, jump=ax.jump * s)
    return _Axis(ax.size + (eff - 1) * ax.jump, ax.jump * s, ax.start - pb * ax.jump)


def _spatial_args(values, axes, rank: int = 4) -> dict[int, int]:
    """{spatial axis index 0/1: value} from per-axis ONNX arguments."""
    out = {}
    for v, a in zip(values, axes):
        a = int(a) % rank
        if a >= 2:
            out[a - 2] = int(v)
    return out


def _apply(node, ins: list, model, producers, shape_of) -> tuple[_Axis, _Axis]:
    op = node.op_type
    if op in _KEEP:
        return ins[0]
    if op in _UNION or op == "Concat":
        if op == "Concat" and int(node.attr("axis")) % 4 >= 2:
            raise ValueError("Concat along a spatial axis")
        h, w = ins[0]
        for other in ins[1:]:
            h, w = _union(h, other[0]), _union(w, other[1])
        return h, w
    if op == "Transpose":  # between channels-last and channels-first (H stays before W)
        if tuple(node.attr("perm") or ()) in ((0, 3, 1, 2), (0, 2, 3, 1), (0, 1, 2, 3)):
            return ins[0]
        raise ValueError(f"Transpose {tuple(node.attr('perm') or ())} that moves the spatial "
                         "axes")
    if op in ("Softmax", "LogSoftmax"):
        if int(node.attr("axis", -1 if node.since >= 13 else 1)) % 4 != 1 or node.since < 13:
            raise ValueError(f"{op} over more than the channel axis")
        return ins[0]
    if op in _WHOLE:
        return tuple(_Axis(1, a.jump, 0, True) for a in ins[0])
    if op in _POOL:
        size = shape_of(node.inputs[0]) if node.attr("auto_pad") not in (None, "NOTSET") else None
        return tuple(
            _window(node, ins[0][i], i, None if size is None else size[2 + i], model)
            for i in range(2)
        )
    if op == "Pad":
        if node.since < 11:
            pads, axes = node.attr("pads"), range(4)
        else:
            pads = _static(model, producers, node.inputs[1])
            if pads is None:
                raise ValueError("Pad with computed pads")
            axes = (_static(model, producers, node.inputs[3])
                    if len(node.inputs) > 3 and node.inputs[3] else range(4))
        pads = [int(p) for p in np.asarray(pads).reshape(-1)]
        axes = list(axes)
        begin = _spatial_args(pads[: len(axes)], axes)
        return tuple(
            a if a.whole else replace(a, start=a.start - begin.get(i, 0) * a.jump)
            for i, a in enumerate(ins[0])
        )
    if op == "Slice":
        if node.since < 10:
            starts, axes, steps = node.attr("starts"), node.attr("axes"), None
        else:
            get = [_static(model, producers, n) if n else None
                   for n in (node.inputs[1:] + [""] * 4)[:4]]
            if get[0] is None:
                raise ValueError("Slice with computed starts")
            starts, axes, steps = get[0], get[2], get[3]
        starts = [int(v) for v in np.asarray(starts).reshape(-1)]
        axes = list(range(len(starts))) if axes is None else list(np.asarray(axes).reshape(-1))
        steps = [1] * len(starts) if steps is None else list(np.asarray(steps).reshape(-1))
        st, sp = _spatial_args(starts, axes), _spatial_args(steps, axes)
        out = []
        for i, a in enumerate(ins[0]):
            start, step = st.get(i, 0), sp.get(i, 1)
            if step < 1:
                raise ValueError("Slice with a negative step (a flip)")
            if start < 0:
                start = max(start + shape_of(node.inputs[0])[2 + i], 0)
            out.append(a if a.whole else _Axis(a.size, a.jump * step, a.start + start * a.jump))
        return tuple(out)
    raise ValueError(f"no receptive-field rule for {op}")


def tap_shapes(model, names, input_hw):
    """NCHW shapes of ``names`` for one zero image of ``input_hw``."""
    c = model.inputs[0].shape[1] or 3
    outs = model(np.zeros((1, c, *input_hw), np.float32), taps=list(names), compiled=False)
    return {k: tuple(np.asarray(v).shape) for k, v in outs.items()}


def find_receptive_field(model, layer: str, hw: tuple[int, int]) -> ReceptiveField:
    """The receptive field of ``layer``'s units (see the module docstring) in the contract view
    ``model`` (NCHW input), for an input of ``hw`` (used only where the geometry depends on it:
    ``auto_pad=SAME``, global pooling, negative Slice starts). Raises ``GraphQueryError``
    naming the op that stops the walk."""
    target = model.resolve(layer)
    hw = tuple(hw)
    producers = {o: n for n in model.nodes for o in n.outputs if o}
    wanted = set(model.dependencies([target]))
    shapes: dict = {}

    def shape_of(name):
        if name not in shapes:
            shapes.update(tap_shapes(model, [name], hw))
        return shapes[name]

    fields: dict = {i.name: (_Axis(), _Axis()) for i in model.inputs}
    for node in model.nodes:
        if not any(o in wanted for o in node.outputs) or node.op_type in _NOT_SPATIAL:
            continue
        ins = [fields[i] for i in node.inputs if i in fields]
        if not ins:
            continue  # a constant sub-graph
        blocked = next((f for f in ins if isinstance(f, _Blocked)), None)
        if blocked is None:
            try:
                out = _apply(node, ins, model, producers, shape_of)
            except ValueError as err:
                out = _Blocked(f"{node.op_type} ({err})", node.name)
        else:
            out = blocked
        for o in node.outputs:
            if o:
                fields[o] = out
    found = fields.get(target)
    if isinstance(found, _Blocked):
        raise GraphQueryError(
            f"cannot compute the receptive field of {layer!r}: the path to it goes through "
            f"{found.op} at node {found.node!r}; pick a layer before it"
        )
    if found is None:
        raise GraphQueryError(f"layer {layer!r} does not depend on the model's input")
    h, w = found
    size = tuple(hw[i] if a.whole else a.size for i, a in enumerate((h, w)))
    return ReceptiveField(size=size, jump=(h.jump, w.jump), start=(h.start, w.start),
                          whole=(h.whole, w.whole), layer=target)
