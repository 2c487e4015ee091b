"""Process-level guard for running PyTorch beside TensorFlow in one interpreter.

The CUDA build of torch ships ``triton``, whose native library clashes with libraries that
TensorFlow (and some scientific packages) load first: importing triton afterwards, as
torchvision does indirectly, crashes the interpreter with a segmentation fault. Our PyTorch
side (exports, references) never needs triton, and torch treats a missing triton as "no
triton", so the import is made to fail cleanly instead. ``converters`` uses this same guard.
Set ``TFMI_ALLOW_TRITON=1`` to opt out (e.g. for ``torch.compile`` on a GPU).

Example:
    >>> guard_triton()   # call before importing torch / torchvision
"""

from __future__ import annotations

import os
import sys


def guard_triton() -> None:
    """Block ``import triton`` unless it is already loaded or TFMI_ALLOW_TRITON=1."""
    if os.environ.get("TFMI_ALLOW_TRITON") != "1" and "triton" not in sys.modules:
        sys.modules["triton"] = None  # type: ignore[assignment]
