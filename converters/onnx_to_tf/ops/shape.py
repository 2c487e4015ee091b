"""Shape and data-movement ops: Flatten, Reshape, Concat, Pad, Slice, Transpose, Gather,
(Un)Squeeze, Shape, Constant, Cast, Identity, Dropout, Expand, Tile, Split, ConstantOfShape.

Static values (numpy) are folded at trace time. ``Transpose`` is a layout-tag change; Concat,
Slice, Pad and Split work on the stored layout with remapped axes; Flatten, Reshape, Gather,
(Un)Squeeze, Expand and Tile see the logical (ONNX) order.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..errors import OnnxImportError
from ..layout import Value, identity, inverse, is_identity
from ..registry import handler

_INT_MAX = 2**62


@handler("Identity")
def identity_(ctx, node, x):
    return x


@handler("Dropout")
def dropout(ctx, node, x, *_):
    if len(node.outputs) > 1 and node.outputs[1]:
        mask = tf.ones_like(tf.convert_to_tensor(x.data), dtype=tf.bool)
        return x, Value(mask, x.perm)
    return x


@handler("Constant")
def constant(ctx, node):
    for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
        if key in node.attrs:
            val = np.asarray(node.attrs[key])
            if key.startswith("value_float"):
                val = val.astype(np.float32)
            elif key.startswith("value_int"):
                val = val.astype(np.int64)
            return Value(val)
    raise OnnxImportError(f"{node.describe()}: only dense numeric Constant values are supported")


@handler("Shape")
def shape_(ctx, node, x):
    dims = x.logical_shape
    start, end = node.attr("start", 0), node.attr("end", None)
    if all(d is not None for d in dims):
        return Value(np.asarray(dims, dtype=np.int64)[start:end])
    actual = tf.shape(tf.convert_to_tensor(x.data), out_type=tf.int64)
    logical = tf.gather(actual, list(inverse(x.perm_or_identity)))
    return Value(logical[start:end])


@handler("Cast")
def cast(ctx, node, x):
    """In a model loaded in another precision than float32 (``dtype="float64"``), a cast to
    any float type yields the model's float type: the graph's ``Cast(to=FLOAT)`` means "to
    the graph's float type", and a float32 tensor would then meet float64 ones."""
    from onnx import helper

    np_type = np.dtype(helper.tensor_dtype_to_np_dtype(int(node.attr("to"))))
    if np_type.kind == "f":
        np_type = np.dtype(ctx.float_type(np_type).as_numpy_dtype)
    if x.is_const:
        return Value(x.logical().astype(np_type))
    return Value(tf.cast(x.data, tf.as_dtype(np_type)), x.perm)


@handler("ConstantOfShape")
def constant_of_shape(ctx, node, shape):
    value = node.attr("value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    dims = ctx.ints(shape, node, "shape")
    return Value(np.full(dims, fill[0], dtype=fill.dtype))


def _dynamic_dims(x: Value) -> list:
    """Logical dims, static where known, else scalar tensors."""
    dims = x.logical_shape
    if all(d is not None for d in dims):
        return dims
    actual = tf.shape(tf.convert_to_tensor(x.data))
    perm = x.perm_or_identity
    return [d if d is not None else actual[perm.index(i)] for i, d in enumerate(dims)]


@handler("Flatten")
def flatten(ctx, node, x):
    axis = int(node.attr("axis", 1)) % max(x.rank, 1) if x.rank else 0
    if x.is_const:
        return Value(x.logical().reshape(int(np.prod(x.data.shape[:axis])), -1))
    dims = x.logical_shape
    inner = dims[axis:]
    data = x.logical()
    if all(d is not None for d in inner):
        return Value(tf.reshape(data, [-1, int(np.prod(inner, dtype=np.int64))]))
    outer = dims[:axis]
    if all(d is not None for d in outer):
        return Value(tf.reshape(data, [int(np.prod(outer, dtype=np.int64)), -1]))
    shape = tf.shape(data)
    return Value(tf.reshape(data, [tf.reduce_prod(shape[:axis]), tf.reduce_prod(shape[axis:])]))


def _reshape_runtime(node, x: Value, shape: Value, allowzero: bool) -> Value:
    """Reshape to a shape known only at run time.

    Exporters compute the target from a dynamic dimension (torch's ``x.view(x.size(0), -1)``
    becomes Shape -> Gather -> Unsqueeze -> Concat -> Reshape); traced with an unknown batch
    it is a tensor, and a 0 in it ("copy this dim") is resolved at run time too.
    """
    data = x.logical()
    target = tf.cast(shape.tensor(), tf.int64)
    if not allowzero:
        n = target.shape[0]
        if n is None:
            raise OnnxImportError(f"{node.describe()}: the rank of the target shape must be static")
        src = tf.shape(data, out_type=tf.int64)
        src = src[:n] if n <= x.rank else tf.concat([src, tf.zeros([n - x.rank], tf.int64)], 0)
        target = tf.where(tf.equal(target, 0), src, target)
    return Value(tf.reshape(data, target))


@handler("Reshape")
def reshape(ctx, node, x, shape=None):
    if node.since >= 5 and not shape.is_const and tf.get_static_value(shape.tensor()) is None:
        return _reshape_runtime(node, x, shape, bool(node.attr("allowzero", 0)))
    target = (
        [int(s) for s in node.attr("shape")] if node.since < 5 else ctx.ints(shape, node, "shape")
    )
    allowzero = bool(node.attr("allowzero", 0))
    if x.is_const:
        dims = list(x.data.shape)
        new = [dims[i] if (s == 0 and not allowzero) else s for i, s in enumerate(target)]
        return Value(x.logical().reshape(new))
    dims = _dynamic_dims(x)
    new = [dims[i] if (s == 0 and not allowzero) else s for i, s in enumerate(target)]
    return Value(
        tf.reshape(x.logical(), tf.stack(new) if any(tf.is_tensor(d) for d in new) else new)
    )


@handler("Transpose")
def transpose(ctx, node, x):
    q = tuple(int(p) for p in (node.attr("perm") or reversed(range(x.rank))))
    if x.is_const:
        return Value(np.transpose(x.logical(), q))
    # No data moves: the stored tensor stays, only its tag changes (see layout.py).
    inv_q = inverse(q)
    new = tuple(inv_q[p] for p in x.perm_or_identity)
    return Value(x.data, None if is_identity(new) else new)


@handler("Concat")
def concat(ctx, node, *xs):
    xs = [v for v in xs if v is not None]
    axis = int(node.attr("axis")) % xs[0].rank
    if all(v.is_const for v in xs):
        return Value(np.concatenate([v.logical() for v in xs], axis=axis))
    target = next((v.perm for v in xs if not is_identity(v.perm)), None) or identity(xs[0].rank)
    dtype = tf.as_dtype(next(v.data.dtype for v in xs if not v.is_const))
    parts = [tf.cast(tf.convert_to_tensor(v.as_perm(target)), dtype) for v in xs]
    out = tf.concat(parts, axis=target.index(axis))
    return Value(out, None if is_identity(target) else target)


def _slice_bounds(dim, start, end, step):
    """ONNX Slice clamping rules turned into a Python slice (dim may be None)."""
    if dim is None:
        return slice(start, None if abs(end) >= _INT_MAX // 2 else end, step)
    if start < 0:
        start += dim
    if end < 0 and end > -_INT_MAX // 2:
        end += dim
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        return slice(start, end, step)
    start = min(max(start, -1), dim - 1)
    end = min(max(end, -1), dim - 1)
    return slice(start, None if end < 0 else end, step)


@handler("Slice")
def slice_(ctx, node, x, starts=None, ends=None, axes=None, steps=None):
    if node.since < 10:
        st, en, ax, sp = node.attr("starts"), node.attr("ends"), node.attr("axes"), None
    else:
        st, en = ctx.ints(starts, node, "starts"), ctx.ints(ends, node, "ends")
        ax, sp = ctx.ints(axes, node, "axes"), ctx.ints(steps, node, "steps")
    ax = [int(a) % x.rank for a in (ax or range(len(st)))]
    sp = sp or [1] * len(st)
    logical = [slice(None)] * x.rank
    dims = x.logical_shape
    for a, s, e, p in zip(ax, st, en, sp, strict=True):
        if p == 0:
            raise OnnxImportError(f"{node.describe()}: a slice step of 0 is invalid")
        logical[a] = _slice_bounds(dims[a], int(s), int(e), int(p))
    if x.is_const:
        return Value(x.logical()[tuple(logical)])
    perm = x.perm_or_identity
    actual = tuple(logical[p] for p in perm)
    return Value(tf.convert_to_tensor(x.data)[actual], x.perm)


def _edge_pad(t, paddings):
    """'edge' padding by repeating border elements (gather keeps it differentiable)."""
    for axis, (pb, pe) in enumerate(paddings):
        if pb or pe:
            n = t.shape[axis]
            idx = np.clip(np.arange(-pb, n + pe), 0, n - 1)
            t = tf.gather(t, idx, axis=axis)
    return t


@handler("Pad")
def pad(ctx, node, x, pads=None, value=None, axes=None):
    mode = node.attr("mode", "constant")
    if mode not in ("constant", "reflect", "edge"):
        raise OnnxImportError(f"{node.describe()}: Pad mode {mode!r} is not supported")
    if node.since < 11:
        p = [int(v) for v in node.attr("pads")]
        fill = float(node.attr("value", 0.0))
    else:
        p = ctx.ints(pads, node, "pads")
        fill_arr = ctx.static(value, node, "constant_value")
        fill = 0.0 if fill_arr is None or fill_arr.size == 0 else fill_arr.reshape(-1)[0].item()
    r = x.rank
    ax = ctx.ints(axes, node, "axes") if axes is not None else list(range(r))
    ax = [a % r for a in ax]
    k = len(ax)
    per_axis = {a: (p[i], p[i + k]) for i, a in enumerate(ax)}
    logical = [per_axis.get(a, (0, 0)) for a in range(r)]
    if x.is_const:
        kwargs = {"constant_values": fill} if mode == "constant" else {}
        return Value(np.pad(x.logical(), logical, mode=mode, **kwargs))
    perm = x.perm_or_identity
    paddings = [logical[q] for q in perm]
    t = tf.convert_to_tensor(x.data)
    # negative pads crop
    if any(b < 0 or e < 0 for b, e in paddings):
        t = t[tuple(slice(max(-b, 0), None if e >= 0 else e) for b, e in paddings)]
        paddings = [(max(b, 0), max(e, 0)) for b, e in paddings]
    if mode == "constant":
        t = tf.pad(t, paddings, constant_values=tf.cast(fill, t.dtype))
    elif mode == "reflect":
        t = tf.pad(t, paddings, mode="REFLECT")
    else:
        t = _edge_pad(t, paddings)
    return Value(t, x.perm)


def _axes(ctx, node, axes_in, attr_before: int):
    if node.since < attr_before:
        return node.attr("axes")
    return ctx.ints(axes_in, node, "axes")


@handler("Unsqueeze")
def unsqueeze(ctx, node, x, axes=None):
    ax = _axes(ctx, node, axes, 13)
    out_rank = x.rank + len(ax)
    ax = sorted(int(a) % out_rank for a in ax)
    data = x.logical()
    for a in ax:
        data = np.expand_dims(data, a) if isinstance(data, np.ndarray) else tf.expand_dims(data, a)
    return Value(data)


@handler("Squeeze")
def squeeze(ctx, node, x, axes=None):
    ax = _axes(ctx, node, axes, 13)
    if ax is not None:
        ax = [int(a) % x.rank for a in ax]
    data = x.logical()
    if isinstance(data, np.ndarray):
        return Value(np.squeeze(data, axis=None if ax is None else tuple(ax)))
    return Value(tf.squeeze(data, axis=ax))


@handler("Gather")
def gather(ctx, node, x, indices):
    axis = int(node.attr("axis", 0)) % x.rank
    idx = ctx.static(indices, node, "indices") if indices.is_const else None
    dims = x.logical_shape
    if idx is not None and dims[axis] is not None:
        idx = np.where(idx < 0, idx + dims[axis], idx)
    if x.is_const and idx is not None:
        return Value(np.take(x.logical(), idx, axis=axis))
    if idx is None:
        idx = indices.tensor()
        idx = tf.where(idx < 0, idx + tf.cast(tf.shape(x.logical())[axis], idx.dtype), idx)
    return Value(tf.gather(x.tensor(), idx, axis=axis))


@handler("Expand")
def expand(ctx, node, x, shape):
    dims = ctx.ints(shape, node, "shape")
    if x.is_const:
        target = np.broadcast_shapes(x.data.shape, tuple(dims))
        return Value(np.broadcast_to(x.logical(), target).copy())
    cur = _dynamic_dims(x)
    rank = max(len(cur), len(dims))
    cur = [1] * (rank - len(cur)) + list(cur)
    dims = [1] * (rank - len(dims)) + list(dims)
    target = [d if (not tf.is_tensor(c) and c == 1) else c for c, d in zip(cur, dims, strict=True)]
    if any(tf.is_tensor(t) for t in target):
        target = tf.stack([tf.cast(t, tf.int32) for t in target])
    return Value(tf.broadcast_to(x.logical(), target))


@handler("Tile")
def tile(ctx, node, x, repeats):
    reps = ctx.ints(repeats, node, "repeats")
    if x.is_const:
        return Value(np.tile(x.logical(), reps))
    perm = x.perm_or_identity
    return Value(tf.tile(tf.convert_to_tensor(x.data), [reps[p] for p in perm]), x.perm)


@handler("Split")
def split(ctx, node, x, split_in=None):
    axis = int(node.attr("axis", 0)) % x.rank
    sizes = node.attr("split") if node.since < 13 else ctx.ints(split_in, node, "split")
    n_out = len(node.outputs)
    if not sizes:
        dim = x.logical_shape[axis]
        if dim is None:
            raise OnnxImportError(f"{node.describe()}: needs a static size on axis {axis}")
        chunk = -(-dim // n_out)
        sizes = [min(chunk, dim - i * chunk) for i in range(n_out)]
    if x.is_const:
        return tuple(Value(a) for a in np.split(x.logical(), np.cumsum(sizes)[:-1], axis=axis))
    parts = tf.split(tf.convert_to_tensor(x.data), sizes, axis=x.actual_axis(axis))
    return tuple(Value(p, x.perm) for p in parts)
