"""Victim models for model inversion and CNN visualization, delivered as ONNX files.

Models are defined in PyTorch (or Keras), exported once into a cache folder with
``torch.onnx.export(dynamo=False, opset_version=17, training=PRESERVE)`` so BatchNorm stays
a node of its own, and described by ``info``. ``model_zoo.data`` holds the bundled CIFAR-10
subset and photos. Importing this package imports neither torch nor TensorFlow.

Example:
    >>> import model_zoo
    >>> "resnet20_cifar" in model_zoo.available()
    True
    >>> path = model_zoo.load("resnet20_cifar")        # exported on first use, then cached
    >>> model_zoo.info("resnet20_cifar").layer_aliases["res2"]
    '/layer1/layer1.2/Relu_1_output_0'
"""

from __future__ import annotations

from . import data
from .errors import ModelZooError
from .registry import ModelInfo, Preprocessing, available
from .zoo import info, load

__all__ = ["ModelInfo", "ModelZooError", "Preprocessing", "available", "data", "info", "load"]
