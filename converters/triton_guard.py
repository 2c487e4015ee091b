"""Process-level workarounds for running TensorFlow and PyTorch side by side.

``guard_triton`` keeps torch's ``triton`` from loading (it crashes beside TensorFlow); the
one implementation lives in :mod:`model_zoo.triton_guard`.
"""

from __future__ import annotations

from model_zoo.triton_guard import guard_triton

__all__ = ["guard_triton"]
