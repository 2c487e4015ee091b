"""The reference for class visualization, DeepDream and the adversarial attacks, in PyTorch.

Plain transcriptions, on the onnx2torch copy of the same ONNX file, of one step of each
gradient-ascent method in ``tf_impl.visualization``, written the way the sources write them
(and not the way ``tf_impl`` does, so that the tests check the equivalences too):

- class model visualization (Simonyan et al. 2014, CS231n's ``create_class_visualization``):
  roll the image by the jitter, ascend ``S_c(I) - lambda ||I||^2`` along ``g / ||g||_2``, roll
  back, clamp to the pixel box, blur (``tf_impl`` rolls inside the objective instead);
- DeepDream (Mordvintsev et al. 2015, ``make_step`` of ``deepdream.ipynb``): roll, forward to
  the layer, backward from ``mean(a^2)``, ``x += step / mean|g| * g``, roll back, clip;
- FGSM (Goodfellow et al. 2015) and one step of the iterative attack / PGD (Kurakin et al. 2017;
  Madry et al. 2018) with the textbook projection ``clamp(min(max(x', x - eps), x + eps), 0, 1)``
  in float32; and the whole iterative attack, for the benchmark's side-by-side flip rate.

Pixels are NCHW float32 in [0, 1] (class visualization works on the normalised image, as
CS231n does); the model's normalisation is read from the ONNX file's zoo metadata. Nothing
here imports TensorFlow.

Example:
    >>> import model_zoo
    >>> net = TorchClassifier(model_zoo.load("resnet20_cifar"))          # doctest: +SKIP
    >>> x, y = model_zoo.data.cifar10("test", n=4, normalize=False)       # doctest: +SKIP
    >>> adv, grad = fgsm(net, x, y, 8 / 255)                               # doctest: +SKIP
"""

from __future__ import annotations

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import os
from collections.abc import Sequence

import numpy as np
import onnx
import torch
import torch.nn.functional as F  # noqa: N812

from .feature_inversion import TorchTaps
from .pixels import gaussian_blur, pixel_box, preprocessing_of

__all__ = [
    "TorchClassifier",
    "class_viz_gradient",
    "class_viz_step",
    "deepdream_step",
    "fgsm",
    "pgd_step",
    "pgd",
]


class TorchClassifier:
    """An ONNX classifier through onnx2torch, with its preprocessing (from the zoo metadata).

    ``net(x_normalised)`` gives logits; ``net.logits_of_pixels(p)`` normalises first.
    """

    def __init__(self, model: str | os.PathLike[str] | onnx.ModelProto, preprocessing=None):
        from converters.onnx_to_torch import load

        proto = model if isinstance(model, onnx.ModelProto) else onnx.load(os.fspath(model))
        self.metadata = {p.key: p.value for p in proto.metadata_props}
        mean, std = preprocessing or preprocessing_of(self.metadata)
        self.mean = torch.tensor(np.asarray(mean, np.float32).reshape(1, -1, 1, 1))
        self.std = torch.tensor(np.asarray(std, np.float32).reshape(1, -1, 1, 1))
        self.module = load(proto)
        for p in self.module.parameters():
            p.requires_grad_(False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def logits_of_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.module((pixels - self.mean) / self.std)

    def box(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The valid pixel box [0, 1] in normalised space, per channel."""
        lo, hi = pixel_box(self.mean.numpy().ravel(), self.std.numpy().ravel(), 3)
        return torch.from_numpy(lo), torch.from_numpy(hi)


def _per_image(g: torch.Tensor, kind: str) -> torch.Tensor:
    dims = tuple(range(1, g.dim()))
    if kind == "l2":
        d = g.square().sum(dim=dims, keepdim=True).sqrt()
    else:
        d = g.abs().mean(dim=dims, keepdim=True)
    return g / d.clamp_min(1e-30)


# -- class model visualization ------------------------------------------------------------------
def class_viz_gradient(
    net: TorchClassifier,
    x: np.ndarray,
    targets: Sequence[int],
    l2_reg: float,
    *,
    tv_weight: float = 0.0,
    shift: tuple[int, int] = (0, 0),
) -> tuple[dict[str, float], np.ndarray]:
    """Terms and gradient of the MINIMISED objective ``-S_c(I) + lambda ||I||^2 (+ TV)`` w.r.t.
    the normalised image ``x``, the score read at ``roll(x, shift)``.

    The shift is applied CS231n's way: the gradient is taken at the rolled image and rolled
    back. TV (mean of TV^2, ``tf_impl.priors.TotalVariation(2, normalize=True)``) is on ``x``.
    """
    from .feature_inversion import total_variation

    dy, dx = (int(s) for s in shift)
    xt = torch.from_numpy(np.asarray(x, np.float32))
    rolled = torch.roll(xt, shifts=(dy, dx), dims=(2, 3)).requires_grad_(True)
    logits = net(rolled)
    score = logits[torch.arange(len(targets)), torch.as_tensor(list(targets))].sum()
    l2 = l2_reg * rolled.square().sum()
    (-score + l2).backward()
    grad = torch.roll(rolled.grad, shifts=(-dy, -dx), dims=(2, 3))
    terms = {"score": -float(score.detach()), "l2": float(l2.detach())}
    if tv_weight:
        xv = xt.clone().requires_grad_(True)
        tv = tv_weight * total_variation(xv, 2.0, True)
        tv.backward()
        grad = grad + xv.grad
        terms["tv"] = float(tv.detach())
    return terms, grad.numpy()


def class_viz_step(
    net: TorchClassifier,
    x: np.ndarray,
    targets: Sequence[int],
    *,
    l2_reg: float,
    learning_rate: float,
    shift: tuple[int, int] = (0, 0),
    tv_weight: float = 0.0,
    blur_sigma: float = 0.0,
) -> np.ndarray:
    """One CS231n step on the normalised image: ``x += lr * g / ||g||`` with ``g`` the ascent
    gradient (per image), clamp to the pixel box, then blur (``blur_sigma`` > 0)."""
    _, g = class_viz_gradient(net, x, targets, l2_reg, tv_weight=tv_weight, shift=shift)
    xt = torch.from_numpy(np.asarray(x, np.float32))
    xt = xt + learning_rate * _per_image(-torch.from_numpy(g), "l2")
    lo, hi = net.box()
    xt = torch.clamp(xt, lo, hi)
    out = xt.numpy()
    return gaussian_blur(out, blur_sigma) if blur_sigma > 0 else out


# -- DeepDream ------------------------------------------------------------------------------------
def deepdream_step(
    taps: TorchTaps,
    pixels: np.ndarray,
    layers: Sequence[str],
    *,
    step_size: float,
    shift: tuple[int, int] = (0, 0),
    objective: str = "mean_square",
    clip: bool = True,
    preprocessing=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mordvintsev's ``make_step`` in pixel space: returns (new pixels, the normalised ascent
    direction ``g / mean|g|`` at the unshifted position)."""
    mean, std = preprocessing or preprocessing_of(taps.metadata)
    m = torch.tensor(np.asarray(mean, np.float32).reshape(1, -1, 1, 1))
    s = torch.tensor(np.asarray(std, np.float32).reshape(1, -1, 1, 1))
    dy, dx = (int(v) for v in shift)
    p = torch.from_numpy(np.asarray(pixels, np.float32))
    src = torch.roll(p, shifts=(dy, dx), dims=(2, 3)).requires_grad_(True)
    feats = taps((src - m) / s)
    total = 0.0
    for layer in layers:
        a = feats[layer]
        value = a.square().mean() if objective == "mean_square" else a.square().sum().sqrt()
        total = total + value
    total.backward()
    g = _per_image(src.grad, "mean_abs")
    src = src.detach() + step_size * g
    out = torch.roll(src, shifts=(-dy, -dx), dims=(2, 3))
    if clip:
        out = out.clamp(0.0, 1.0)
    return out.numpy(), torch.roll(g, shifts=(-dy, -dx), dims=(2, 3)).numpy()


# -- adversarial examples -------------------------------------------------------------------------
def attack_gradient(
    net: TorchClassifier,
    pixels: np.ndarray,
    labels,
    *,
    target=None,
    targeted_loss: str = "log_prob",
) -> np.ndarray:
    """The gradient (pixel space) of the quantity the attack ASCENDS: CE(f(x), y) untargeted;
    log p_t (= -CE(f(x), t)) or the logit S_t targeted; summed over the batch."""
    p = torch.from_numpy(np.asarray(pixels, np.float32)).requires_grad_(True)
    logits = net.logits_of_pixels(p)
    # the cross-entropy in float64 (as tf_impl): float32 cancels 1 - p_y for confident images
    if target is None:
        value = F.cross_entropy(logits.double(), torch.as_tensor(np.asarray(labels)),
                                reduction="sum")
    else:
        t = torch.as_tensor(np.broadcast_to(np.asarray(target), (len(p),)).copy())
        if targeted_loss == "log_prob":
            value = -F.cross_entropy(logits.double(), t, reduction="sum")
        else:
            value = logits[torch.arange(len(p)), t].sum()
    value.backward()
    return p.grad.numpy()


def fgsm(net: TorchClassifier, pixels, labels, eps: float, *, target=None,
         targeted_loss: str = "log_prob") -> tuple[np.ndarray, np.ndarray]:
    """Goodfellow et al. 2015: ``clamp(x + eps * sign(grad), 0, 1)``; returns (adv, grad)."""
    g = attack_gradient(net, pixels, labels, target=target, targeted_loss=targeted_loss)
    x = torch.from_numpy(np.asarray(pixels, np.float32))
    adv = torch.clamp(x + eps * torch.sign(torch.from_numpy(g)), 0.0, 1.0)
    return adv.numpy(), g


def pgd_step(net: TorchClassifier, adv, pixels, labels, *, eps: float, step_size: float,
             target=None, targeted_loss: str = "log_prob") -> np.ndarray:
    """One iterative step: ``x' = adv + alpha * sign(grad)``, then the textbook projection
    ``clamp(min(max(x', x - eps), x + eps), 0, 1)``."""
    g = attack_gradient(net, adv, labels, target=target, targeted_loss=targeted_loss)
    a = torch.from_numpy(np.asarray(adv, np.float32)) + step_size * torch.sign(torch.from_numpy(g))
    x = torch.from_numpy(np.asarray(pixels, np.float32))
    a = torch.min(torch.max(a, x - eps), x + eps).clamp(0.0, 1.0)
    return a.numpy()


def pgd(net: TorchClassifier, pixels, labels, *, eps: float = 8 / 255,
        step_size: float = 2 / 255, steps: int = 10, random_start: bool = False, seed: int = 0,
        target=None, targeted_loss: str = "log_prob") -> np.ndarray:
    """The whole iterative attack (BIM; PGD with ``random_start``: uniform noise in the
    eps-ball from numpy's PCG64 with ``seed``, as ``tf_impl`` draws it)."""
    x = np.asarray(pixels, np.float32)
    adv = x
    if random_start:
        noise = np.random.default_rng(seed).uniform(-eps, eps, x.shape).astype(np.float32)
        xt = torch.from_numpy(x)
        adv = torch.min(torch.max(xt + torch.from_numpy(noise), xt - eps), xt + eps)
        adv = adv.clamp(0.0, 1.0).numpy()
    for _ in range(steps):
        adv = pgd_step(net, adv, x, labels, eps=eps, step_size=step_size, target=target,
                       targeted_loss=targeted_loss)
    return adv
