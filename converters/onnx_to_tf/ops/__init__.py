"""ONNX op handlers, one function per op, grouped by family.

Importing this package registers every handler with
:mod:`converters.onnx_to_tf.registry`.
"""

from . import activation, conv, elementwise, linear, norm, pool, reduce, resize, shape  # noqa: F401
