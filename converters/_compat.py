"""Process-level workarounds for running TensorFlow and PyTorch side by side."""

from __future__ import annotations

import sys


def guard_triton() -> None:
    """Keep ``triton`` from loading once TensorFlow is in the process.

    The CUDA build of torch ships triton, whose compiler library clashes with TensorFlow's:
    importing triton after TensorFlow crashes the interpreter (segmentation fault), and
    torchvision imports it indirectly. CPU PyTorch never needs triton, and torch treats a
    missing triton as "no triton", so we make the import fail cleanly instead.
    """
    if "tensorflow" in sys.modules and "triton" not in sys.modules:
        sys.modules["triton"] = None  # type: ignore[assignment]
