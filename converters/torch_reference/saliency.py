"""The reference for ``tf_impl.visualization.saliency``: Captum on the onnx2torch model.

Captum 0.9 (``captum.attr``) is the field's PyTorch implementation of the three attributions,
so the reference *is* Captum, run on the onnx2torch copy of the same ONNX file, with the
post-processing ``tf_impl`` applies:

- saliency: ``Saliency(net).attribute(x, target, abs=True)`` (|d logit / d x|), then the max
  over colour channels (Simonyan et al. 2014);
- guided backprop: ``GuidedBackprop(net).attribute(x, target)`` (signed);
- occlusion: ``Occlusion(forward).attribute(x, sliding_window_shapes=(C, h, w),
  strides=(C, sh, sw), baselines=..., target=..., perturbations_per_eval=batch_size)``; the
  window spans every channel, so the attribution is the same in each channel.

``x`` is the model's normalised input (NCHW float32). Captum's ``GuidedBackprop`` overrides the
backward pass of ``torch.nn.ReLU`` *modules* only (a functional ``relu`` is missed silently).
onnx2torch turns each ONNX Relu node into its own ``nn.ReLU`` module, so Captum covers the
graph; :func:`relu_coverage` counts both sides and :func:`guided_backprop_explicit` computes
the same rule without Captum (every ``nn.ReLU`` replaced by a module with the guided backward
written out) to confirm that Captum's hooks fire. Nothing here imports TensorFlow.

Example:
    >>> import model_zoo
    >>> net = load_module(model_zoo.load("resnet20_cifar"))                  # doctest: +SKIP
    >>> x = np.zeros((1, 3, 32, 32), np.float32)                              # doctest: +SKIP
    >>> saliency_torch(net, x, [3])["map"].shape                              # doctest: +SKIP
    (1, 32, 32)
"""

from __future__ import annotations

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import copy
import os
from collections.abc import Sequence

import numpy as np
import onnx
import torch

__all__ = [
    "load_module",
    "saliency_torch",
    "guided_backprop_torch",
    "guided_backprop_explicit",
    "occlusion_torch",
    "relu_coverage",
    "GuidedReLU",
]


def load_module(model) -> torch.nn.Module:
    """The onnx2torch module of an ONNX path / ModelProto (a module is returned as it is)."""
    if isinstance(model, torch.nn.Module):
        return model
    from converters.onnx_to_torch import load

    return load(model)


def tensor_and_targets(x, targets) -> tuple[torch.Tensor, list[int]]:
    xt = torch.from_numpy(np.ascontiguousarray(np.asarray(x, np.float32)))
    t = [int(v) for v in np.asarray(targets).reshape(-1)]
    if len(t) != xt.shape[0]:
        raise ValueError(f"one target per image: {xt.shape[0]} images, {len(t)} targets")
    return xt, t


def saliency_torch(model, x, targets) -> dict:
    """Captum ``Saliency(abs=True)``: ``{"attribution": |grad| (N, C, H, W), "map": max over
    channels (N, H, W)}``."""
    from captum.attr import Saliency

    net = load_module(model)
    xt, t = tensor_and_targets(x, targets)
    attr = Saliency(net).attribute(xt.requires_grad_(True), target=t, abs=True)
    a = attr.detach().numpy()
    return {"attribution": a, "map": a.max(axis=1)}


def guided_backprop_torch(model, x, targets) -> np.ndarray:
    """Captum ``GuidedBackprop``: the signed guided gradient (N, C, H, W)."""
    from captum.attr import GuidedBackprop

    net = load_module(model)
    xt, t = tensor_and_targets(x, targets)
    return GuidedBackprop(net).attribute(xt.requires_grad_(True), target=t).detach().numpy()


class _GuidedReLUFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return dy * (x > 0).to(dy.dtype) * (dy > 0).to(dy.dtype)


class GuidedReLU(torch.nn.Module):
    """ReLU whose backward passes only positive gradients through positive inputs
    (Springenberg et al. 2015), written out rather than hooked."""

    def forward(self, x):
        return _GuidedReLUFunction.apply(x)


def _replace_relus(module: torch.nn.Module) -> int:
    n = 0
    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.ReLU):
            setattr(module, name, GuidedReLU())
            n += 1
        else:
            n += _replace_relus(child)
    return n


def guided_backprop_explicit(model, x, targets) -> dict:
    """Guided backprop without Captum: a copy of the module with every ``nn.ReLU`` replaced by
    :class:`GuidedReLU`. ``{"attribution": (N, C, H, W), "replaced": number of ReLUs}``."""
    net = copy.deepcopy(load_module(model))
    replaced = _replace_relus(net)
    if isinstance(net, torch.fx.GraphModule):
        net.recompile()
    xt, t = tensor_and_targets(x, targets)
    xt.requires_grad_(True)
    out = net(xt)
    out[torch.arange(len(t)), torch.tensor(t)].sum().backward()
    return {"attribution": xt.grad.detach().numpy(), "replaced": replaced}


def relu_coverage(onnx_model, module=None) -> dict:
    """How many Relu nodes the ONNX graph has and how many ``nn.ReLU`` modules onnx2torch made
    (Captum's GuidedBackprop hooks the latter); any other activation op types are listed."""
    proto = onnx_model if isinstance(onnx_model, onnx.ModelProto) else onnx.load(
        os.fspath(onnx_model))
    net = load_module(module if module is not None else proto)
    relu_modules = sum(isinstance(m, torch.nn.ReLU) for m in net.modules())
    nodes = [n.op_type for n in proto.graph.node]
    return {"onnx_relu_nodes": nodes.count("Relu"), "torch_relu_modules": relu_modules,
            "functional_relus": sum("relu" in str(n.target).lower() for n in getattr(
                getattr(net, "graph", None), "nodes", []) if n.op == "call_function")}


def occlusion_torch(
    model,
    x,
    targets,
    window: int | Sequence[int],
    stride: int | Sequence[int],
    baseline=0.0,
    *,
    batch_size: int = 1,
    score: str = "logit",
) -> np.ndarray:
    """Captum ``Occlusion`` over windows that span every channel; returns (N, C, H, W).

    Args:
        window, stride: int or (h, w).
        baseline: the fill value in the model's input space: a scalar, or one value per
            channel (expanded to the image's shape for Captum).
        batch_size: Captum's ``perturbations_per_eval``.
        score: ``"logit"`` or ``"probability"`` (softmax of the logits).
    """
    from captum.attr import Occlusion

    net = load_module(model)
    xt, t = tensor_and_targets(x, targets)
    n, c, h, w = xt.shape
    wh, ww = (window, window) if np.ndim(window) == 0 else tuple(window)
    sh, sw = (stride, stride) if np.ndim(stride) == 0 else tuple(stride)
    b = np.asarray(baseline, np.float32)
    if b.ndim == 0:
        base = float(b)
    else:
        base = torch.from_numpy(np.ascontiguousarray(
            np.broadcast_to(b.reshape(1, -1, 1, 1), (1, c, h, w))))

    def forward(inp):
        out = net(inp)
        return torch.softmax(out, dim=-1) if score == "probability" else out

    with torch.no_grad():
        attr = Occlusion(forward).attribute(
            xt, sliding_window_shapes=(c, int(wh), int(ww)), strides=(c, int(sh), int(sw)),
            baselines=base, target=t, perturbations_per_eval=int(batch_size))
    return attr.numpy()
