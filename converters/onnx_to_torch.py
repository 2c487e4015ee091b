"""ONNX -> PyTorch through onnx2torch: the reference side of every cross-check.

onnx2torch looks converters up by exact ``since_version``, so keep the ONNX opset <= 17
(what ``model_zoo`` exports).

Example:
    >>> import torch, model_zoo
    >>> from converters.onnx_to_torch import load
    >>> net = load(model_zoo.load("resnet20_cifar"))
    >>> net(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 10])
"""

from __future__ import annotations

import os
from typing import Any

import onnx


def load(path: str | os.PathLike[str] | onnx.ModelProto) -> Any:
    """Convert an ONNX file (or ModelProto) to a ``torch.nn.Module`` in eval mode, float32.

    Example:
        >>> load("model.onnx")(torch.zeros(1, 3, 32, 32))   # doctest: +SKIP
    """
    from ._compat import guard_triton

    guard_triton()  # TensorFlow may have been imported since this package was
    from onnx2torch import convert

    model = path if isinstance(path, onnx.ModelProto) else onnx.load(os.fspath(path))
    try:
        module = convert(model)
    except NotImplementedError as err:
        opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
        raise NotImplementedError(
            f"onnx2torch cannot convert this model ({err}); opsets {opsets}. onnx2torch "
            "matches converters by exact op version: re-export at opset <= 17 (torch: "
            "dynamo=False, opset_version=17)") from err
    return module.float().eval()
