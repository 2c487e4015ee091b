"""Geometry shared by convolution and pooling handlers (explicit padding, never TF 'SAME')."""

from __future__ import annotations

import math

from ..errors import OnnxImportError
from ..graph import Node


def spatial_pads(
    node: Node,
    in_sizes: list[int | None],
    kernel: list[int],
    strides: list[int],
    dilations: list[int],
) -> list[tuple[int, int]]:
    """(begin, end) padding per spatial axis from ``pads`` or ``auto_pad`` as the spec says.

    ``SAME_UPPER`` puts the odd extra pixel at the end, ``SAME_LOWER`` at the beginning;
    the total is computed from the effective (dilated) kernel, so stride-2 'SAME' pads the
    way ONNX means it rather than the way TF's 'SAME' happens to.
    """
    n = len(kernel)
    auto_pad = node.attr("auto_pad", "NOTSET")
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pads = []
        for size, k, s, d in zip(in_sizes, kernel, strides, dilations, strict=True):
            if size is None:
                raise OnnxImportError(f"{node.describe()}: auto_pad needs static spatial sizes")
            out = math.ceil(size / s)
            total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
            small, big = total // 2, total - total // 2
            pads.append((small, big) if auto_pad == "SAME_UPPER" else (big, small))
        return pads
    if auto_pad == "VALID":
        return [(0, 0)] * n
    if auto_pad not in ("NOTSET", ""):
        raise OnnxImportError(f"{node.describe()}: unknown auto_pad {auto_pad!r}")
    pads = list(node.attr("pads") or [0] * (2 * n))
    if len(pads) != 2 * n:
        raise OnnxImportError(f"{node.describe()}: pads {pads} should have {2 * n} entries")
    return [(int(pads[i]), int(pads[i + n])) for i in range(n)]


def conv_params(node: Node, n: int) -> tuple[list[int], list[int]]:
    strides = [int(s) for s in (node.attr("strides") or [1] * n)]
    dilations = [int(d) for d in (node.attr("dilations") or [1] * n)]
    return strides, dilations
