"""The reference for ``tf_impl.attribution.fullgrad``: pytorch-grad-cam's ``FullGrad`` and a
plain transcription of the full-gradient decomposition, on the onnx2torch model.

- :func:`fullgrad_grad_cam` *is* pytorch-grad-cam 1.5.7 (``pytorch_grad_cam.FullGrad``). It
  collects the bias layers by module type: every ``nn.Conv2d`` with a bias and every
  ``nn.BatchNorm2d`` (effective bias ``beta - running_mean * gamma / sqrt(running_var +
  eps)``), in module-registration order; their output gradients are recorded by tensor hooks
  in the order the backward pass reaches them. It leaves out ``nn.Linear`` biases (they have
  no spatial extent) and biases added by any other module (onnx2torch turns an ONNX ``Add``
  of a constant, e.g. a tf2onnx-folded BatchNorm, into ``OnnxBinaryMathOperation``, which it
  does not see). Its post-processing: |term|, each channel of each term min-max normalised
  on its own (``(t - min) / (max - min + 1e-7)``) and resized with ``cv2.resize`` (bilinear,
  half-pixel centres), summed over channels and terms, and the sum rescaled to [0, 1] per
  image. ``tf_impl.attribution.fullgrad.FullGradConfig.pytorch_grad_cam()`` is that.
- :func:`fullgrad_terms_torch` transcribes the decomposition itself (Srinivas & Fleuret
  2019): forward hooks keep the outputs z_l of the ``Conv2d`` / ``BatchNorm2d`` / ``Linear``
  modules that carry a bias, ``torch.autograd.grad`` gives d score / d x and d score / d z_l,
  and each term is b_l * d score / d z_l. The completeness gap f(x) - sum of the terms is
  returned too.
- :func:`fullgrad_map_paper` transcribes the authors' post-processing
  (``idiap/fullgrad-saliency``, ``FullGrad._postProcess`` and ``saliency``): |term|, min-max
  per image over the whole term (eps 1e-6), ``F.interpolate(..., mode="bilinear",
  align_corners=True)``, summed over channels and terms, rank-4 terms only.

``x`` is the model's normalised input (NCHW float32). Nothing here imports TensorFlow.

Example:
    >>> import model_zoo
    >>> net = load_module(model_zoo.load("resnet20_cifar"))                  # doctest: +SKIP
    >>> x = np.zeros((1, 3, 32, 32), np.float32)                              # doctest: +SKIP
    >>> fullgrad_grad_cam(net, x, [3]).shape                                  # doctest: +SKIP
    (1, 32, 32)
"""

from __future__ import annotations

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import numpy as np
import torch

from .saliency import load_module, tensor_and_targets

__all__ = ["load_module", "fullgrad_grad_cam", "fullgrad_terms_torch", "fullgrad_map_paper",
           "bias_modules"]


def fullgrad_grad_cam(model, x, targets) -> np.ndarray:
    """pytorch-grad-cam's ``FullGrad`` map (N, H, W) in [0, 1] for ``targets`` (one per image)."""
    from pytorch_grad_cam import FullGrad
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    net = load_module(model)
    xt, t = tensor_and_targets(x, targets)
    cam = FullGrad(model=net, target_layers=[])
    try:
        return np.asarray(cam(input_tensor=xt, targets=[ClassifierOutputTarget(k) for k in t]))
    finally:
        cam.activations_and_grads.release()


def bias_modules(net: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """(name, module) of every ``Conv2d``/``Linear`` with a bias and every ``BatchNorm2d``."""
    return [(name, m) for name, m in net.named_modules()
            if (isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.bias is not None)
            or isinstance(m, torch.nn.BatchNorm2d)]


def _bias(m: torch.nn.Module) -> torch.Tensor:
    if isinstance(m, torch.nn.BatchNorm2d):
        return m.bias - m.running_mean * m.weight / torch.sqrt(m.running_var + m.eps)
    return m.bias


def fullgrad_terms_torch(model, x, targets, dtype=torch.float32) -> dict:
    """The decomposition in the order the forward pass runs the bias modules:
    ``{"input_term", "bias_terms": [array], "names": [module name], "scores", "gap"}``."""
    net = load_module(model).to(dtype).eval()
    xt, t = tensor_and_targets(x, targets)
    xt = xt.to(dtype).requires_grad_(True)
    mods = bias_modules(net)
    outputs: list[tuple[str, torch.nn.Module, torch.Tensor]] = []
    hooks = [m.register_forward_hook(
        lambda mod, _inp, out, _name=name: outputs.append((_name, mod, out)))
        for name, m in mods]
    try:
        out = net(xt)
    finally:
        for h in hooks:
            h.remove()
    scores = out[torch.arange(len(t)), torch.tensor(t)]
    grads = torch.autograd.grad(scores.sum(), [xt] + [o for _, _, o in outputs])
    input_term = (xt * grads[0]).detach()
    terms = []
    with torch.no_grad():
        for (_, mod, _o), g in zip(outputs, grads[1:]):
            b = _bias(mod)
            terms.append((g * b.reshape((1, -1) + (1,) * (g.dim() - 2))).detach())
        total = input_term.flatten(1).sum(1, dtype=torch.float64)
        for term in terms:
            total = total + term.flatten(1).sum(1, dtype=torch.float64)
    return {
        "input_term": input_term.numpy(),
        "bias_terms": [term.numpy() for term in terms],
        "names": [name for name, _, _ in outputs],
        "scores": scores.detach().numpy(),
        "gap": (scores.detach().to(torch.float64) - total).numpy(),
    }


def _post_process(t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    a = t.abs()
    a = a - a.flatten(1).min(1).values.reshape((-1,) + (1,) * (a.dim() - 1))
    return a / (a.flatten(1).max(1).values.reshape((-1,) + (1,) * (a.dim() - 1)) + eps)


def fullgrad_map_paper(input_term, bias_terms) -> np.ndarray:
    """The authors' map (N, H, W) from raw terms (numpy or torch), in float64."""
    x = torch.as_tensor(np.asarray(input_term), dtype=torch.float64)
    cam = _post_process(x).sum(1, keepdim=True)
    for term in bias_terms:
        term = torch.as_tensor(np.asarray(term), dtype=torch.float64)
        if term.dim() != x.dim():
            continue
        up = torch.nn.functional.interpolate(_post_process(term), size=tuple(x.shape[2:]),
                                             mode="bilinear", align_corners=True)
        cam = cam + up.sum(1, keepdim=True)
    return cam[:, 0].numpy()
