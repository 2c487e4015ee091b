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
    from .triton_guard import guard_triton

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
            "dynamo=False, opset_version=17)"
        ) from err
    return module.float().eval()


def initializer_parameters(module: Any, model: str | os.PathLike[str] | onnx.ModelProto) -> dict:
    """Map ONNX initializer names to the onnx2torch module's parameters that hold them.

    onnx2torch names submodules after the ONNX nodes (``/layer1/layer1.0/conv1/Conv`` becomes
    ``layer1/layer1/0/conv1/Conv``); within a node's submodule each parameter is matched to
    the node's initializer input with the same values. Used to compare weight gradients by
    ONNX name across frameworks.
    """
    import numpy as np
    from onnx import numpy_helper

    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(os.fspath(model))
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    out: dict = {}
    for node in proto.graph.node:
        names = [i for i in node.input if i in inits and inits[i].dtype.kind == "f"]
        if not names:
            continue
        try:
            sub = module.get_submodule(node.name.lstrip("/").replace(".", "/"))
        except AttributeError:
            continue
        for _, param in sub.named_parameters(recurse=False):
            value = param.detach().cpu().numpy()
            for name in names:
                arr = inits[name]
                if name not in out and arr.shape == value.shape and np.array_equal(arr, value):
                    out[name] = param
                    break
    return out
