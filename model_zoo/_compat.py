"""Process-level guard for using PyTorch after TensorFlow in one interpreter.

The CUDA build of torch ships ``triton``, whose compiler library clashes with TensorFlow's:
importing torchvision (which imports triton) after TensorFlow crashes the interpreter with a
segmentation fault. CPU work never needs triton and torch treats a missing triton as "no
triton", so when TensorFlow is already loaded we make ``import triton`` fail cleanly. (The
same guard as ``converters/_compat.py``; kept here so model_zoo does not depend on it.)

Example:
    >>> guard_triton()   # call before importing torch / torchvision
"""

from __future__ import annotations

import sys


def guard_triton() -> None:
    """Block ``import triton`` if TensorFlow is already imported and triton is not."""
    if "tensorflow" in sys.modules and "triton" not in sys.modules:
        sys.modules["triton"] = None  # type: ignore[assignment]
