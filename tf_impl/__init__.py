"""The techniques, in TensorFlow only: they drive ``tf.GradientTape`` against models imported
from ONNX with :func:`converters.onnx_to_tf.load`.

This package never imports torch, so a TensorFlow user can use it without PyTorch installed
(``tests/test_layout_rules.py`` checks that). Feature inversion, gradient inversion,
visualization and attribution arrive here one module per technique.
"""
