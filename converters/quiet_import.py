"""Importing TensorFlow without its C++ start-up lines on stderr.

TensorFlow 2.21 writes "All log messages before absl::InitializeLog() ..." and "oneDNN custom
operations are on ..." to file descriptor 2 while it is imported, whatever
``TF_CPP_MIN_LOG_LEVEL`` says; in front of a command's one-line ``error: ...`` they read like
part of the problem. :func:`import_tensorflow` imports it with descriptor 2 pointed at
``/dev/null`` (Python's own errors still surface: an ``ImportError`` is raised, and printed,
after the descriptor is back). ``TF_IMPL_VERBOSE_IMPORT=1`` keeps the lines.
"""

from __future__ import annotations

import os
import sys

__all__ = ["import_tensorflow"]


def import_tensorflow():
    """``tensorflow``, imported quietly the first time (see the module docstring)."""
    if "tensorflow" in sys.modules or os.environ.get("TF_IMPL_VERBOSE_IMPORT") == "1":
        import tensorflow

        return tensorflow
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    try:
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:  # no descriptor 2 to redirect (an embedded interpreter): import as is
        import tensorflow

        return tensorflow
    os.dup2(null, 2)
    try:
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
    return tensorflow
