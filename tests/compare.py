"""The one way the parity tests compare two arrays (imported as ``from compare import
rel_error``; pytest puts ``tests/`` on the path, as for ``onnx_builders``)."""

from __future__ import annotations

import numpy as np


def rel_error(got, want) -> float:
    """``max |got - want| / max |want|`` in float64: the error relative to the reference's
    scale, so entries of ``want`` near zero do not blow it up. 0 when both are all zero."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    diff, scale = float(np.max(np.abs(got - want))), float(np.max(np.abs(want)))
    if scale > 0:
        return diff / scale
    return 0.0 if diff == 0 else float("inf")
