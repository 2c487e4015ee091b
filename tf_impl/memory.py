"""Memory preflight: refuse, or split into chunks, work that would not fit in memory, before
anything big is allocated.

A technique's peak memory grows with its input: the activations of one forward pass through
the layers it needs, times what it keeps on top of them (the gradient tape, the gradients,
an optimizer's state, a second backward). :func:`activation_bytes` measures the first with a
probe at batch 1 (at the model's fixed input size, or 32x32 scaled by the pixel count); the
techniques multiply it by a factor calibrated on this machine (peak RSS growth measured with
psutil over batches / sizes, divided by the probed activations):

- :data:`OPTIMIZE` (4): feature inversion, deep dream, texture synthesis, style transfer (one
  image optimised through the layers it matches).
- :data:`GRADIENT_INVERSION` (40): the attack differentiates the weight gradient (a double
  backward); on ``lenet_dlg10`` at 32x32 the client's step and one iDLG step grow the peak by
  0.79 MiB per image compiled (batch 100 to 400) and 1.07 MiB eagerly (batch 50 to 250),
  where the probe gives 39 KiB of activations: ratios of 21 and 28; 40 leaves a margin.
  Scoring keeps each reconstruction's LPIPS features on top (measured 0.63 MiB per 32x32
  image; see ``tf_impl.gradient_inversion.preflight``).
- :data:`FORWARD` (2): forward passes only (occlusion's occluded copies, the deletion and
  insertion curves' stages).
- :data:`GRADIENT` (4): a forward and a backward pass (the path methods: Integrated
  Gradients, IDGI, Guided IG, Blur IG).

The memory available is psutil's available memory, capped by the cgroup's limit less its usage
when a limit is set (``/sys/fs/cgroup/memory.max`` or, cgroup v1,
``/sys/fs/cgroup/memory/memory.limit_in_bytes``). The environment variable
``TF_IMPL_MEMORY_LIMIT`` replaces that figure (``2G``, ``512M``, ``1.5GiB`` or a byte count;
K, M, G, T are powers of 1024), e.g. to keep a run well inside a shared machine, or in tests.
A technique plans for :data:`SHARE` of it.

Example:
    >>> parse_size("512M")
    536870912
    >>> format_bytes(3 * 2**30)
    '3 GiB'
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

ENV_LIMIT = "TF_IMPL_MEMORY_LIMIT"
SHARE = 0.8  # of the available memory a technique plans for

OPTIMIZE = 4.0
GRADIENT_INVERSION = 40.0
FORWARD = 2.0
GRADIENT = 4.0

_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_CGROUP = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
           ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes"))


class MemoryPreflightError(ValueError):
    """The work would not fit in memory; the message says how much fits."""


def parse_size(text) -> int:
    """Bytes of ``"2G"``, ``"512M"``, ``"1.5GiB"``, ``"64k"`` or ``"1073741824"``."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMGTB]?)(?:I?B)?\s*", str(text), re.IGNORECASE)
    if not m or float(m.group(1)) <= 0:
        raise MemoryPreflightError(
            f"{ENV_LIMIT}={text!r} is not a memory size: write e.g. 2G, 512M or a byte count")
    return int(float(m.group(1)) * _UNITS[m.group(2).upper()])


def format_bytes(n: float) -> str:
    """``n`` bytes as ``"31 GiB"``, ``"1.5 GiB"``, ``"640 MiB"``."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            v = n / size
            return f"{v:.0f} {unit}" if v >= 10 or v == int(v) else f"{v:.1f} {unit}"
    return f"{int(n)} bytes"


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def cgroup_available() -> int | None:
    """The cgroup's memory limit less its usage, or None when no limit is set."""
    for limit_file, usage_file in _CGROUP:
        limit = _read_int(limit_file)
        if limit is not None and limit < 2**60:  # v1 writes a huge number for "no limit"
            return max(0, limit - (_read_int(usage_file) or 0))
    return None


def available_memory() -> int:
    """Bytes a technique may use: ``TF_IMPL_MEMORY_LIMIT`` when set, else psutil's available
    memory capped by the cgroup's remaining limit."""
    env = os.environ.get(ENV_LIMIT)
    if env:
        return parse_size(env)
    import psutil

    free = int(psutil.virtual_memory().available)
    group = cgroup_available()
    return free if group is None else min(free, group)


def budget(available: int | None = None) -> float:
    """The bytes a technique plans for: :data:`SHARE` of ``available`` (measured when None)."""
    return SHARE * (available_memory() if available is None else available)


def activation_bytes(model, shape, layers=None) -> float:
    """Bytes of one forward pass's tensors up to ``layers`` (the logits when None) for an
    input of ``shape`` (N, C, H, W), from a probe at batch 1: the model's fixed input size, or
    32x32 scaled by the pixel count when it takes any size."""
    from converters.onnx_to_tf import contract_model

    model = contract_model(model)
    n, c, h, w = shape
    fixed = tuple(model.input_shape[2:])
    ph, pw = fixed if len(fixed) == 2 and None not in fixed else (32, 32)
    names = model.dependencies(list(layers) if layers else [model.logits_name])
    outs = model(np.zeros((1, c, ph, pw), np.float32), taps=names, compiled=False)
    probe = sum(int(np.prod(v.shape)) * v.dtype.size for v in outs.values())
    return probe / (ph * pw) * h * w * n


def check_memory(model, shape, layers, *, factor: float = OPTIMIZE,
                 available: int | None = None, items: str | None = None) -> float:
    """Refuse an input whose activations up to ``layers`` (times ``factor``) would not fit.

    Returns the estimate in bytes. The refusal names the largest square image size that fits
    (at the same batch), or, with ``items`` (what the batch holds, e.g. "classes"), the
    largest batch.
    """
    n, c, h, w = shape
    need = factor * activation_bytes(model, shape, layers)
    free = available_memory() if available is None else available
    if need <= SHARE * free:
        return need
    side = int(math.sqrt(SHARE * free / need * h * w))
    largest = int(SHARE * free // (need / n))
    if items and n > 1 and largest >= 1:
        fix = f"give at most {largest} {items} at once"
    else:
        fix = (f"use a smaller image (--size {side} or less)" if side >= 8 else
               "free memory or use a shallower layer")
    upto = ", ".join(map(str, layers)) if layers else "the logits"
    raise MemoryPreflightError(
        f"an input of {n}x{c}x{h}x{w} needs about {format_bytes(need)} for the activations up "
        f"to {upto} but {format_bytes(free)} is available: {fix}")


def check_batch(per_item: float, batch: int, *, what: str, fixed: float = 0.0,
                available: int | None = None) -> float:
    """Refuse a batch of ``batch`` items of ``per_item`` bytes each (plus ``fixed``) that
    would not fit; the refusal names the largest batch that fits. Returns the estimate."""
    need = fixed + per_item * batch
    free = available_memory() if available is None else available
    if need <= SHARE * free:
        return need
    largest = int((SHARE * free - fixed) // per_item) if per_item > 0 else 0
    fix = (f"use --batch {largest} or less" if largest >= 1 else
           "even a batch of one does not fit: free memory or use a smaller model")
    raise MemoryPreflightError(
        f"--batch {batch} needs about {format_bytes(need)} ({what}) but "
        f"{format_bytes(free)} is available: {fix}")


def chunk_rows(per_row: float, requested: int, *, what: str, available: int | None = None,
               share: float = 1.0) -> int:
    """Rows per pass: ``requested``, or fewer so that ``per_row`` bytes each fit in ``share``
    of the budget. Refuses when not even one row fits."""
    room = share * budget(available)
    rows = int(room // per_row) if per_row > 0 else int(requested)
    if rows < 1:
        raise MemoryPreflightError(
            f"one input needs about {format_bytes(per_row)} ({what}) but only "
            f"{format_bytes(room)} of memory is free for it: free memory or use a smaller "
            "input")
    return max(1, min(int(requested), rows))
