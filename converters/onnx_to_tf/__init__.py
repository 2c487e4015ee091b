"""ONNX -> TensorFlow importer: differentiable ``tf.Module``s from ONNX files.

>>> from converters.onnx_to_tf import load
>>> model = load("model.onnx")              # doctest: +SKIP
>>> logits = model(x_nchw)                  # doctest: +SKIP
"""

from .contract import ContractError, ModelContract
from .contract_model import ContractModel, contract_model
from .errors import ModelInputError, OnnxImportError, UnknownTapError, UnsupportedOpError
from .graph_queries import BiasLayer, FCLayer
from .loader import load
from .model import BNLayer, TFModel
from .protocol import Victim
from .registry import supported_ops

__all__ = [
    "load",
    "ModelContract",
    "ContractModel",
    "ContractError",
    "contract_model",
    "TFModel",
    "BNLayer",
    "FCLayer",
    "BiasLayer",
    "Victim",
    "supported_ops",
    "OnnxImportError",
    "UnsupportedOpError",
    "ModelInputError",
    "UnknownTapError",
]
