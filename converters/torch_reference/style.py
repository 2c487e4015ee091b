"""The reference for ``tf_impl.visualization.style``: Gram-matrix texture synthesis and style
transfer (Gatys, Ecker & Bethge 2015, 2016) in plain PyTorch on the onnx2torch model.

The same equations as the TF side (see ``tf_impl/visualization/style.py`` for the scale):

    G_l(x) = F_l F_l^T / (C_l H_l W_l)
    S_l(x) = mean_ij (G_l(x) - G_l(style))^2,      P_l(x) = mean (F_l(x) - F_l(content))^2
    L(x)   = alpha * sum P_l + beta * sum_l w_l S_l + lambda_TV * TV^beta(x) (mean over pixels)

with ``torch.optim.Adam`` (or SGD / L-BFGS) on the image in the model's normalised input
space, clamped to the valid pixel box after each step, and the same loss-term names
(``style:<layer>``, ``content:<layer>``, ``tv``), so a TF run and this one can be compared
value for value, gradient for gradient and step for step. Nothing here imports TensorFlow:
the configuration is read by attribute (a ``StyleTransferConfig`` / ``TextureConfig`` or the
dict its ``to_dict()`` gives).

Example:
    >>> from model_zoo.data import image
    >>> ref = GatysTorch(model_zoo.load("vgg16_features"), image("starry_night", 64,
    ...     normalize=False), cfg, content_pixels=image("tubingen", 64, normalize=False),
    ...     start_pixels=start)                                              # doctest: +SKIP
    >>> loss, terms, grad = ref.loss_and_gradient(ref.x.detach())            # doctest: +SKIP
    >>> ref.step()                                                           # doctest: +SKIP
"""

from __future__ import annotations

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import os
from collections.abc import Mapping

import numpy as np
import onnx
import torch

from .feature_inversion import TorchTaps, total_variation
from .optim import as_config, learning_rate_at, make_optimizer
from .pixels import denormalize, normalize, pixel_box, preprocessing_of

__all__ = ["GatysTorch", "content_loss", "gram_matrix", "style_loss", "total_variation"]


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, C), divided by C * H * W (``perceptual.gram_matrix``)."""
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def style_loss(features: Mapping[str, torch.Tensor], target_grams: Mapping[str, torch.Tensor],
               weights: Mapping[str, float] | None = None) -> torch.Tensor:
    """sum_l w_l mean((G_l(x) - G_l(style))^2) (``perceptual.style_loss``)."""
    total = 0.0
    for name, target in target_grams.items():
        w = 1.0 if weights is None else float(weights.get(name, 1.0))
        total = total + w * (gram_matrix(features[name]) - target).square().mean()
    return total


def content_loss(features: Mapping[str, torch.Tensor],
                 targets: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """sum_l mean((F_l(x) - F_l(content))^2) (``perceptual.content_loss``)."""
    total = 0.0
    for name, target in targets.items():
        total = total + (features[name] - target).square().mean()
    return total


def _style_weights(config, layers) -> dict[str, float]:
    ws = getattr(config, "style_layer_weights", getattr(config, "layer_weights", None))
    ws = ws or (1.0 / len(layers),) * len(layers)
    return dict(zip(layers, (float(w) for w in ws)))


class GatysTorch:
    """One texture synthesis (``content_pixels=None``) or style transfer in PyTorch.

    Args:
        onnx_path: the ONNX file (or ModelProto) the TF model was imported from.
        style_pixels: the style / texture source, NCHW float in [0, 1].
        config: a ``StyleTransferConfig`` or ``TextureConfig`` (or its ``to_dict()``); style
            layers come from ``style_layers`` (or ``layers`` for textures).
        content_pixels: the content photograph (style transfer) or ``None`` (texture).
        start_pixels: the start in pixel space (the TF side's start, for step parity).
        preprocessing: (mean, std); default the zoo's record.
        dtype: ``torch.float64`` runs everything in double precision.
        memory_format: e.g. ``torch.channels_last`` for the module and the image (speed).

    Attributes:
        x: the image being optimised (normalised space, ``requires_grad``).
        grams, contents: the targets, computed once.
        history: ``{"loss": [...], "<term>": [...], "lr": [...]}`` (values before each step).
    """

    def __init__(self, onnx_path: str | os.PathLike[str] | onnx.ModelProto,
                 style_pixels: np.ndarray, config, *, content_pixels: np.ndarray | None = None,
                 start_pixels: np.ndarray | None = None, preprocessing=None,
                 dtype: torch.dtype = torch.float32, memory_format=None):
        self.config = cfg = as_config(config)
        self.style_layers = list(getattr(cfg, "style_layers", None) or cfg.layers)
        self.content_layers = list(getattr(cfg, "content_layers", ())) if (
            content_pixels is not None) else []
        self.weights = _style_weights(cfg, self.style_layers)
        self.taps = TorchTaps(onnx_path, list(dict.fromkeys(self.content_layers
                                                            + self.style_layers)))
        if self.taps.module is not None:
            self.taps.module.to(dtype)
            for p in self.taps.module.parameters():  # constants, as on the TF side
                p.requires_grad_(False)
            if memory_format is not None:
                self.taps.module.to(memory_format=memory_format)
        self.dtype, self.memory_format = dtype, memory_format
        self.mean, self.std = preprocessing or preprocessing_of(self.taps.metadata)
        with torch.no_grad():
            s = self.taps(self._tensor(style_pixels))
            self.grams = {k: gram_matrix(s[k]).detach() for k in self.style_layers}
            self.contents = {}
            if content_pixels is not None:
                c = self.taps(self._tensor(content_pixels))
                self.contents = {k: c[k].detach().clone() for k in self.content_layers}
        if start_pixels is None:
            start_pixels = content_pixels if content_pixels is not None else style_pixels
        self.x = self._tensor(start_pixels).requires_grad_(True)
        lo, hi = pixel_box(self.mean, self.std, self.x.shape[1])
        self.lo, self.hi = (torch.from_numpy(b).to(dtype) for b in (lo, hi))
        self.optimizer = make_optimizer([self.x], cfg.optimize)
        self.history: dict[str, list[float]] = {}
        self.steps_done = 0

    def _tensor(self, pixels) -> torch.Tensor:
        t = torch.from_numpy(normalize(pixels, self.mean, self.std)).to(self.dtype)
        if self.memory_format is not None:
            t = t.contiguous(memory_format=self.memory_format)
        return t

    # -- the objective ---------------------------------------------------------------------
    def objective(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted terms (one forward with every tap), named as on the TF side."""
        cfg = self.config
        feats = self.taps(x)
        terms = {
            f"style:{k}": cfg.style_weight * self.weights[k] * style_loss(
                {k: feats[k]}, {k: g}) for k, g in self.grams.items()
        }
        for k, t in self.contents.items():
            terms[f"content:{k}"] = cfg.content_weight * content_loss({k: feats[k]}, {k: t})
        if cfg.tv_weight:
            terms["tv"] = cfg.tv_weight * total_variation(x, cfg.tv_beta, True)
        return terms

    def loss_and_gradient(self, x) -> tuple[float, dict[str, float], np.ndarray]:
        """The total loss, its terms and d loss / d x at ``x`` (normalised space)."""
        x = torch.as_tensor(np.asarray(x)).to(self.dtype).requires_grad_(True)
        terms = self.objective(x)
        loss = sum(terms.values())
        (grad,) = torch.autograd.grad(loss, [x])
        return (float(loss.detach()), {k: float(v.detach()) for k, v in terms.items()},
                grad.numpy())

    # -- the loop --------------------------------------------------------------------------
    def step(self) -> float:
        """One optimizer step (forward with all taps, losses, input gradient, update, clamp
        to the box), as ``tf_impl.optimize.Optimization.step``; returns the loss before it."""
        opt_cfg = self.config.optimize
        lr = learning_rate_at(opt_cfg, self.steps_done)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        first: dict[str, object] = {}

        def closure():
            self.optimizer.zero_grad(set_to_none=False)
            terms = self.objective(self.x)
            loss = sum(terms.values())
            loss.backward()
            first.setdefault("terms", terms)
            first.setdefault("loss", loss)
            return loss

        if isinstance(self.optimizer, torch.optim.LBFGS):
            self.optimizer.step(closure)
        else:
            closure()
            self.optimizer.step()
        with torch.no_grad():
            self.x.copy_(torch.clamp(self.x, self.lo, self.hi))
        loss = float(first["loss"].detach())
        self.history.setdefault("loss", []).append(loss)
        for k, v in first["terms"].items():
            self.history.setdefault(k, []).append(float(v.detach()))
        self.history.setdefault("lr", []).append(lr)
        self.steps_done += 1
        return loss

    def run(self, steps: int | None = None) -> dict:
        """``steps`` steps (default ``config.optimize.steps``); the image and the history."""
        for _ in range(self.config.optimize.steps if steps is None else steps):
            self.step()
        return {"image": self.image(), "x": self.x.detach().numpy().copy(),
                "history": {k: list(v) for k, v in self.history.items()},
                "steps": self.steps_done}

    def image(self) -> np.ndarray:
        """The current iterate in pixel space (clipped to [0, 1])."""
        x = self.x.detach().contiguous().numpy()
        return np.clip(denormalize(x, self.mean, self.std), 0, 1)
