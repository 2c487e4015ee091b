"""Conv and ConvTranspose (1-D and 2-D), channels-last inside, explicit padding.

Grouped convolutions take the paths that TF can differentiate on the CPU (its grouped
``Conv2D`` kernel has no gradient there, in any precision): a depthwise convolution (one input
channel per group) runs ``DepthwiseConv2dNative`` in float32, about 40x faster than the
grouped ``Conv2D`` kernel; any other group count is split into per-group ``Conv2D``s and
concatenated. In float64 (``load(..., dtype="float64")``, used to check gradients exactly) a
depthwise convolution is a sum over kernel taps of shifted input slices times the per-channel
tap weights, written with basic ops that have float64 kernels and gradients of every order.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from ..errors import OnnxImportError
from ..layout import Value, channels_last
from ..registry import handler
from .geometry import conv_params, spatial_pads


def kernel_storage_perm(rank: int) -> tuple[int, ...]:
    """How conv kernels are stored as variables: ONNX (O, I, k...) -> TF (k..., I, O)."""
    return (*range(2, rank), 1, 0)


def _as(data, dtype):
    """A kernel (variable, tensor or numpy constant) as a tensor of the input's dtype."""
    if isinstance(data, np.ndarray):
        return tf.constant(data, dtype=dtype)
    return data if data.dtype == dtype else tf.cast(data, dtype)


def _check_rank(node, x: Value) -> int:
    if x.rank not in (3, 4):
        raise OnnxImportError(
            f"{node.describe()}: {x.rank - 2}-D convolution is not supported (1-D and 2-D are)"
        )
    return x.rank - 2


def _to_2d(xs, wk, n, pads, strides, dilations):
    """Express a 1-D convolution as a 2-D one with a unit height."""
    if n == 2:
        return xs, wk, pads, strides, dilations
    return (
        tf.expand_dims(xs, 1),
        tf.expand_dims(wk, 0),
        [(0, 0), *pads],
        [1, *strides],
        [1, *dilations],
    )


def _onednn() -> bool:
    """Whether TF runs its oneDNN CPU kernels (on by default on CPUs with AVX-512 and up, off
    on others, e.g. AVX2-only AMD; ``TF_ENABLE_ONEDNN_OPTS`` forces it)."""
    global _ONEDNN
    if _ONEDNN is None:
        try:
            from tensorflow.python.util import _pywrap_util_port

            _ONEDNN = bool(_pywrap_util_port.IsMklEnabled())
        except (ImportError, AttributeError):  # pragma: no cover - a TF without the probe
            _ONEDNN = True
    return _ONEDNN


_ONEDNN: bool | None = None


def _tf_padding(xs, pads, kernel, strides, dilations):
    """Express ONNX's explicit pads in the fastest form TF's CPU convolution accepts.

    No padding -> 'VALID'; pads equal to what TF's 'SAME' would choose for this input, stride
    and dilation -> 'SAME' (same numbers, checked per axis; never a guess). Other pads: the
    kernels' own explicit padding on TF's Eigen CPU kernels (measured here: a stride-2 3x3
    depthwise convolution 0.51 ms against 0.73 ms with a separate Pad); with oneDNN, whose
    explicit-padding Conv2D is about 2x slower than 'VALID', a Pad then 'VALID'.
    """
    if not any(b or e for b, e in pads):
        return xs, "VALID"
    same = True
    for axis, ((b, e), k, s, d) in enumerate(zip(pads, kernel, strides, dilations)):
        size = xs.shape[1 + axis]
        if size is None:
            same = False
            break
        out = -(-size // s)
        total = max((out - 1) * s + (int(k) - 1) * d + 1 - size, 0)
        same = same and (b, e) == (total // 2, total - total // 2)
    if same:
        return xs, "SAME"
    if not _onednn() and xs.dtype != tf.float64:  # float64 depthwise takes the composite path
        return xs, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]]
    return tf.pad(xs, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]]), "VALID"


@handler("Conv")
def conv(ctx, node, x, w, b=None):
    n = _check_rank(node, x)
    cl = channels_last(x.rank)
    xs = tf.convert_to_tensor(x.as_perm(cl))
    in_per_group = w.logical_shape[1]
    kernel = [int(k) for k in (node.attr("kernel_shape") or w.logical_shape[2:])]
    strides, dilations = conv_params(node, n)
    group = int(node.attr("group", 1))
    channels = x.logical_shape[1]
    if channels is not None and channels != in_per_group * group:
        raise OnnxImportError(
            f"{node.describe()}: input has {channels} channels but the kernel expects "
            f"{in_per_group} x group {group}"
        )
    pads = spatial_pads(node, x.logical_shape[2:], kernel, strides, dilations)
    wk = _as(w.as_perm(kernel_storage_perm(w.rank)), xs.dtype)
    xs, wk, pads, strides, dilations = _to_2d(xs, wk, n, pads, strides, dilations)
    if group == 1 and any(d > 1 for d in dilations):
        y = _dilated(xs, wk, pads, strides, dilations)
    elif group == 1:
        xs, padding = _tf_padding(xs, pads, wk.shape[:2], strides, dilations)
        y = tf.nn.conv2d(xs, wk, [1, *strides, 1], padding, dilations=[1, *dilations, 1])
    elif in_per_group == 1:
        y = _depthwise(xs, wk, group, pads, strides, dilations)
    else:
        y = _grouped(xs, wk, group, pads, strides, dilations)
    if b is not None:
        y = tf.nn.bias_add(y, b.tensor(y.dtype))
    if n == 1:
        y = tf.squeeze(y, 1)
    return Value(y, cl)


def _dilated(xs, wk, pads, strides, dilations):
    """A dilated convolution as TF's space-to-batch form (SpaceToBatchND, an undilated
    Conv2D, BatchToSpaceND), then the stride as a subsampling: without oneDNN, TF's CPU
    ``Conv2DBackpropInput`` refuses dilation rates above 1, so ``conv2d(dilations=...)`` could
    not be differentiated there."""
    xs = tf.pad(xs, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]])
    y = tf.nn.convolution(xs, wk, padding="VALID", dilations=list(dilations))
    if any(s > 1 for s in strides):
        y = y[:, :: strides[0], :: strides[1]]
    return y


# dtypes whose DepthwiseConv2dNative forward and gradients we rely on; others (float64) take
# the composite path
_NATIVE_DEPTHWISE = (tf.float32, tf.float16, tf.bfloat16)


def _depthwise(xs, wk, group, pads, strides, dilations):
    """Depthwise convolution, channels-last: ``xs`` (N, H, W, C = group), ``wk``
    (kh, kw, 1, C * m) (output channel ``c * m + j`` reads input channel ``c``, as ONNX
    orders a group)."""
    kh, kw, _, c_out = wk.shape
    c_in = group
    if c_out % c_in:
        raise OnnxImportError(
            f"depthwise convolution: {c_out} output channels for {c_in} input channels"
        )
    mult = c_out // c_in
    # the CPU kernel takes equal strides and no dilation
    if xs.dtype in _NATIVE_DEPTHWISE and list(dilations) == [1, 1] and strides[0] == strides[1]:
        xs, padding = _tf_padding(xs, pads, (kh, kw), strides, dilations)
        return tf.nn.depthwise_conv2d(
            xs, tf.reshape(wk, [kh, kw, c_in, mult]), [1, *strides, 1], padding
        )
    return _depthwise_composite(xs, wk, mult, pads, strides, dilations)


def _depthwise_composite(xs, wk, mult, pads, strides, dilations):
    """sum over taps (i, j) of x[:, i*dh + sh*p, j*dw + sw*q, c] * w[i, j, c]: strided slices,
    products and sums only (kernels and gradients of any order in every float type)."""
    kh, kw = int(wk.shape[0]), int(wk.shape[1])
    (sh, sw), (dh, dw) = strides, dilations
    if any(b or e for b, e in pads):
        xs = tf.pad(xs, [[0, 0], list(pads[0]), list(pads[1]), [0, 0]])
    if mult > 1:
        xs = tf.repeat(xs, mult, axis=-1)  # channel c * m + j holds input channel c
    size = tf.shape(xs)
    h, w = xs.shape[1], xs.shape[2]
    h = size[1] if h is None else h
    w = size[2] if w is None else w
    out_h = (h - (kh - 1) * dh - 1) // sh + 1
    out_w = (w - (kw - 1) * dw - 1) // sw + 1
    y = None
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dh, j * dw
            part = xs[:, r0 : r0 + (out_h - 1) * sh + 1 : sh, c0 : c0 + (out_w - 1) * sw + 1 : sw]
            term = part * wk[i, j, 0]
            y = term if y is None else y + term
    return y


def _grouped(xs, wk, group, pads, strides, dilations):
    """A grouped convolution as one ``Conv2D`` per group, concatenated (TF's grouped Conv2D
    kernel has no CPU gradient)."""
    c_out = wk.shape[-1]
    if c_out % group:
        raise OnnxImportError(f"grouped convolution: {c_out} output channels for {group} groups")
    xs, padding = _tf_padding(xs, pads, wk.shape[:2], strides, dilations)
    ys = [
        tf.nn.conv2d(a, k, [1, *strides, 1], padding, dilations=[1, *dilations, 1])
        for a, k in zip(tf.split(xs, group, axis=-1), tf.split(wk, group, axis=-1), strict=True)
    ]
    return tf.concat(ys, axis=-1)


def _dilate_kernel(wk, dilations):
    """Insert (d - 1) zeros between kernel taps: (kh, kw, o, i) -> dilated kernel."""
    (dh, dw) = dilations
    if dh == 1 and dw == 1:
        return wk
    kh, kw, o, i = wk.shape
    w6 = tf.reshape(wk, [kh, 1, kw, 1, o, i])
    w6 = tf.pad(w6, [[0, 0], [0, dh - 1], [0, 0], [0, dw - 1], [0, 0], [0, 0]])
    w4 = tf.reshape(w6, [kh * dh, kw * dw, o, i])
    return w4[: (kh - 1) * dh + 1, : (kw - 1) * dw + 1]


@handler("ConvTranspose")
def conv_transpose(ctx, node, x, w, b=None):
    n = _check_rank(node, x)
    cl = channels_last(x.rank)
    xs = x.as_perm(cl)
    kernel = [int(k) for k in (node.attr("kernel_shape") or w.logical_shape[2:])]
    strides, dilations = conv_params(node, n)
    group = int(node.attr("group", 1))
    out_pad = [int(p) for p in (node.attr("output_padding") or [0] * n)]
    in_sizes = x.logical_shape[2:]
    if any(s is None for s in in_sizes):
        raise OnnxImportError(f"{node.describe()}: needs static spatial input sizes")
    full = [
        (i - 1) * s + (k - 1) * d + 1 for i, s, k, d in zip(in_sizes, strides, kernel, dilations)
    ]
    auto_pad = node.attr("auto_pad", "NOTSET")
    output_shape = node.attr("output_shape")
    if output_shape or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = (
            list(output_shape)[-n:] if output_shape else [i * s for i, s in zip(in_sizes, strides)]
        )
        pads = []
        for f, op, t in zip(full, out_pad, target, strict=True):
            total = f + op - t
            half = total // 2
            pads.append((half, total - half) if auto_pad == "SAME_UPPER" else (total - half, half))
    elif auto_pad == "VALID":
        pads = [(0, 0)] * n
    else:
        p = [int(v) for v in (node.attr("pads") or [0] * (2 * n))]
        pads = [(p[i], p[i + n]) for i in range(n)]
    xs = tf.convert_to_tensor(xs)
    wk = _as(w.as_perm(kernel_storage_perm(w.rank)), xs.dtype)  # (k..., Cout/g, Cin)
    xs, wk, pads, strides, dilations = _to_2d(xs, wk, n, pads, strides, dilations)
    full2 = [1, *full] if n == 1 else full
    out_pad2 = [0, *out_pad] if n == 1 else out_pad
    wk = _dilate_kernel(wk, dilations)
    batch = tf.shape(xs)[0]
    xg = tf.split(xs, group, axis=-1) if group > 1 else [xs]
    wg = tf.split(wk, group, axis=-1) if group > 1 else [wk]
    ys = [
        tf.nn.conv2d_transpose(
            a, k, [batch, full2[0], full2[1], k.shape[2]], [1, *strides, 1], "VALID"
        )
        for a, k in zip(xg, wg, strict=True)
    ]
    y = tf.concat(ys, axis=-1) if group > 1 else ys[0]
    if any(out_pad2):
        y = tf.pad(y, [[0, 0], [0, out_pad2[0]], [0, out_pad2[1]], [0, 0]])
    if any(p < 0 for pair in pads for p in pair):  # output_shape larger than the full output
        y = tf.pad(y, [[0, 0], *[[max(0, -b), max(0, -e)] for b, e in pads], [0, 0]])
        out_pad2 = [op + max(0, -b) + max(0, -e) for op, (b, e) in zip(out_pad2, pads)]
        pads = [(max(0, b), max(0, e)) for b, e in pads]
    sizes = [f + op for f, op in zip(full2, out_pad2)]
    y = y[:, pads[0][0] : sizes[0] - pads[0][1], pads[1][0] : sizes[1] - pads[1][1], :]
    if b is not None:
        y = tf.nn.bias_add(y, b.tensor(y.dtype))
    if n == 1:
        y = tf.squeeze(y, 1)
    return Value(y, cl)
