"""ONNX -> TensorFlow importer: differentiable ``tf.Module``s from ONNX files.

>>> from converters.onnx_to_tf import load
>>> model = load("model.onnx")              # doctest: +SKIP
>>> logits = model(x_nchw)                  # doctest: +SKIP
"""

from ..quiet_import import import_tensorflow

import_tensorflow()  # the first import of TensorFlow, without its C++ start-up lines

from .contract import ContractError, ModelContract  # noqa: E402
from .contract_model import ContractModel, contract_model  # noqa: E402
from .errors import ModelInputError, OnnxImportError, UnknownTapError, UnsupportedOpError  # noqa: E402
from .graph_queries import BiasLayer, FCLayer  # noqa: E402
from .loader import load  # noqa: E402
from .model import BNLayer, TFModel  # noqa: E402
from .protocol import Victim  # noqa: E402
from .registry import supported_ops  # noqa: E402

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
