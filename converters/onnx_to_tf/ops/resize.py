"""Resize and Upsample (nearest and linear) with every ONNX coordinate-transformation mode.

Source coordinates are computed with numpy at trace time and applied with ``tf.gather``
(nearest) or gather + lerp (linear) along each spatial axis of the channels-last tensor, so
the result follows the spec exactly (no reliance on ``tf.image.resize``'s conventions) and
stays differentiable.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from ..errors import OnnxImportError
from ..layout import Value, channels_last
from ..registry import handler


def _source_coords(mode: str, out_size: int, in_size: int, scale: float) -> np.ndarray:
    """Source coordinate of each output pixel. As in the spec, the resized length in the
    formulas is ``in_size * scale`` (not the rounded output size) when scales are given."""
    xr = np.arange(out_size, dtype=np.float64)
    length = in_size * scale
    if mode == "half_pixel":
        return (xr + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (xr + 0.5) / scale - 0.5 if length > 1 else np.zeros_like(xr)
    if mode == "align_corners":
        return xr * (in_size - 1) / (length - 1) if length > 1 else np.zeros_like(xr)
    if mode == "asymmetric":
        return xr / scale
    if mode == "tf_half_pixel_for_nn":
        return (xr + 0.5) / scale
    raise OnnxImportError(f"coordinate_transformation_mode {mode!r} is not supported")


def _nearest(coords: np.ndarray, rule: str) -> np.ndarray:
    if rule == "round_prefer_floor":
        idx = np.ceil(coords - 0.5)
    elif rule == "round_prefer_ceil":
        idx = np.floor(coords + 0.5)
    elif rule == "floor":
        idx = np.floor(coords)
    elif rule == "ceil":
        idx = np.ceil(coords)
    else:
        raise OnnxImportError(f"nearest_mode {rule!r} is not supported")
    return idx.astype(np.int64)


def _resize(node, x: Value, scales, sizes, coord_mode: str, mode: str, nearest_rule: str) -> Value:
    dims = x.logical_shape
    if any(d is None for d in dims[1:]):
        raise OnnxImportError(f"{node.describe()}: needs static channel and spatial sizes")
    r = x.rank
    if sizes is not None and len(sizes):
        out = [int(s) for s in sizes]
        scales = [1.0 if i is None else o / i for o, i in zip(out, dims, strict=True)]
    else:
        scales = [float(s) for s in scales]
        out = [None if d is None else int(math.floor(d * s)) for d, s in zip(dims, scales)]
    if scales[0] != 1.0 or scales[1] != 1.0:
        raise OnnxImportError(f"{node.describe()}: only spatial axes may be resized")
    cl = channels_last(r)
    t = tf.convert_to_tensor(x.as_perm(cl))
    for axis in range(2, r):
        in_size, out_size, scale = dims[axis], out[axis], scales[axis]
        if in_size == out_size and coord_mode != "tf_half_pixel_for_nn":
            continue
        tf_axis = axis - 1  # channels-last position of logical spatial axis
        coords = _source_coords(coord_mode, out_size, in_size, scale)
        if mode == "nearest":
            idx = np.clip(_nearest(coords, nearest_rule), 0, in_size - 1)
            t = tf.gather(t, idx, axis=tf_axis)
        elif mode == "linear":
            c = np.clip(coords, 0, in_size - 1)
            i0 = np.floor(c).astype(np.int64)
            i1 = np.minimum(i0 + 1, in_size - 1)
            w = c - i0  # float64, rounded once to the tensor's type below
            shape = [1] * r
            shape[tf_axis] = out_size
            w_t = tf.constant(w.reshape(shape), dtype=t.dtype)
            a, b = tf.gather(t, i0, axis=tf_axis), tf.gather(t, i1, axis=tf_axis)
            t = a + (b - a) * w_t
        else:
            raise OnnxImportError(f"{node.describe()}: mode {mode!r} is not supported")
    return Value(t, cl)


@handler("Upsample", since=7)
def upsample(ctx, node, x, scales=None):
    sc = node.attr("scales") if node.since < 9 else ctx.static(scales, node, "scales")
    mode = node.attr("mode", "nearest")
    mode = "linear" if mode in ("linear", "bilinear") else mode
    return _resize(node, x, list(np.asarray(sc).reshape(-1)), None, "asymmetric", mode, "floor")


@handler("Resize", since=10)
def resize(ctx, node, x, roi_or_scales=None, scales=None, sizes=None):
    mode = node.attr("mode", "nearest")
    if node.since < 11:
        sc, sz = ctx.static(roi_or_scales, node, "scales"), None
        coord_mode, rule = "asymmetric", "round_prefer_floor"
        if mode == "nearest":
            rule = "floor"
    else:
        sc = ctx.static(scales, node, "scales")
        sz = ctx.static(sizes, node, "sizes")
        coord_mode = node.attr("coordinate_transformation_mode", "half_pixel")
        rule = node.attr("nearest_mode", "round_prefer_floor")
        # keep_aspect_ratio_policy (opset 18) changes the output size computed from ``sizes``;
        # ignoring it would silently give a differently sized result.
        if (
            node.attr("axes") is not None
            or node.attr("antialias", 0)
            or node.attr("keep_aspect_ratio_policy", "stretch") != "stretch"
        ):
            raise OnnxImportError(
                f"{node.describe()}: axes/antialias/keep_aspect_ratio_policy are not supported"
            )
    if coord_mode == "tf_crop_and_resize":
        raise OnnxImportError(f"{node.describe()}: tf_crop_and_resize is not supported")
    if mode == "cubic":
        raise OnnxImportError(f"{node.describe()}: cubic Resize is not supported")
    scales_list = None if sc is None or sc.size == 0 else list(sc.reshape(-1))
    sizes_list = None if sz is None or sz.size == 0 else list(sz.reshape(-1))
    return _resize(node, x, scales_list, sizes_list, coord_mode, mode, rule)
