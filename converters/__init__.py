"""Converters between ONNX, TensorFlow and PyTorch, and the cross-check harness.

- ``converters.onnx_to_tf``: our ONNX -> TensorFlow importer (differentiable ``tf.Module``).
- ``converters.onnx_to_torch``: ONNX -> PyTorch via onnx2torch (the reference side).
- ``converters.tf_to_onnx``: Keras / ``tf.function`` -> ONNX via tf2onnx.
- ``converters.crosscheck``: TF vs onnxruntime vs PyTorch on one model.
"""

from .triton_guard import guard_triton

guard_triton()
