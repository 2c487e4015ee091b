"""Blur IG: integrated gradients along a path of ever less blurred images.

Xu, Venugopalan, Sundararajan, "Attribution in Scale and Space", CVPR 2020, eq. 2-4. The
path is the Gaussian scale space of the input, z(s) = G_s * x for the blur s going from
``max_sigma`` (a maximally blurred image: no baseline to choose) down to 0 (the input), and

    BlurIG_i(x) = integral_{s = max_sigma}^{0} dF(z(s)) / dz_i  *  dz_i(s) / ds  ds
                = - integral_0^{max_sigma} dF/dz_i (z(s)) dz_i/ds ds,

so completeness reads sum_i BlurIG_i = F(x) - F(G_{max_sigma} * x).

Discretisation, as in the paper's reference implementation (PAIR-code ``saliency``,
``saliency/core/blur_ig.py``): sigma_m = m * max_sigma / steps, m = 0..steps; the integrand is
taken at sigma_0..sigma_{steps-1} (the input end of each interval) with dz/ds by a forward
difference, (G_{s+h} * x - G_s * x) / h, h = ``grad_step`` (0.01), and

    BlurIG(x) ~= - sum_{m < steps} (sigma_{m+1} - sigma_m) grad F(G_{sigma_m} x) (G_{sigma_m+h} x
                                                                              - G_{sigma_m} x) / h.

The blur is the library's ``scipy.ndimage.gaussian_filter(mode="constant")`` per channel: a
Gaussian of ``truncate * sigma`` radius (``int(4 sigma + 0.5)`` taps each side), normalised to
sum 1, zero padding; :func:`gaussian_blur` computes it as two small matrix products. It is
applied to the model's *normalised* input, so the zero padding is the dataset mean colour and
a large blur tends to the mean-colour image.

Path order for :mod:`.idgi`: point j = 0..steps is G_{sigma_{steps-j}} x, from the most
blurred image (j = 0) to the input (j = steps); gradients and scores are evaluated at all
steps + 1 points, ``batch_size`` per forward pass.

Completeness holds only up to the quadrature error (a left Riemann sum along sigma with a
finite-difference derivative): ``return_delta=True`` gives
sum(attr) - (F(x) - F(G_{max_sigma} x)) per input.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from converters.onnx_to_tf import contract_model

from ..config import plain
from . import common
from .common import AttributionConfig, AttributionError, merged_config
from .integrated_gradients import (
    PathChunk,
    prepare,
    walk_rows,
)

__all__ = ["BlurIGConfig", "blur_ig", "blur_walk", "gaussian_blur", "blur_sigmas",
           "blur_derivative"]


@dataclass(frozen=True)
class BlurIGConfig(AttributionConfig):
    """Blur IG (Xu et al. 2020) with the defaults of the paper's reference implementation
    (PAIR-code saliency ``BlurIG.GetMask``).

    Attributes:
        steps: intervals of the blur path (100).
        max_sigma: the largest blur, in pixels (50).
        grad_step: h of the forward difference dz/ds ~= (G_{s+h} x - G_s x) / h (0.01).
        truncate: the Gaussian is cut at ``truncate`` standard deviations (4, scipy's).
        batch_size: path points per forward pass (32).
    """

    steps: int = 100
    max_sigma: float = 50.0
    grad_step: float = 0.01
    truncate: float = 4.0
    batch_size: int = 32

    def validate(self) -> None:
        common.check_steps(self.steps, self.batch_size)
        for name in ("max_sigma", "grad_step", "truncate"):
            v = getattr(self, name)
            if not common.is_real(v) or not np.isfinite(v) or v <= 0:
                raise AttributionError(f"{name} must be a positive number; got {plain(v)!r}")


@lru_cache(maxsize=64)
def _blur_matrix(n: int, sigma: float, truncate: float) -> np.ndarray:
    """(n, n) matrix M with (M v) = 1-D Gaussian blur of v with zero padding."""
    if sigma <= 0:
        return np.eye(n)
    r = int(truncate * float(sigma) + 0.5)
    taps = np.arange(-r, r + 1)
    w = np.exp(-0.5 * (taps / float(sigma)) ** 2)
    w /= w.sum()
    d = np.arange(n)[None, :] - np.arange(n)[:, None]
    return np.where(np.abs(d) <= r, w[np.clip(d + r, 0, 2 * r)], 0.0)


def gaussian_blur(images, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Gaussian blur of (..., H, W) images over the last two axes, float64: the same as
    ``scipy.ndimage.gaussian_filter(images, sigma=(0, ..., sigma, sigma), mode="constant",
    truncate=truncate)`` (sigma 0 returns the images)."""
    a = np.asarray(images, np.float64)
    h, w = a.shape[-2:]
    mh = _blur_matrix(h, float(sigma), float(truncate))
    mw = _blur_matrix(w, float(sigma), float(truncate))
    return np.einsum("ij,...jk,lk->...il", mh, a, mw, optimize=True)


def blur_sigmas(steps: int, max_sigma: float) -> np.ndarray:
    """sigma_m = m * max_sigma / steps, m = 0..steps (the reference's linear spacing)."""
    return np.arange(int(steps) + 1, dtype=np.float64) * float(max_sigma) / int(steps)


def blur_derivative(x, sigma: float, grad_step: float, truncate: float = 4.0) -> np.ndarray:
    """dz/ds at ``sigma`` by the forward difference (G_{s+h} x - G_s x) / h, float64."""
    return (gaussian_blur(x, sigma + grad_step, truncate) - gaussian_blur(x, sigma, truncate)) \
        / grad_step


def blur_walk(model, x: np.ndarray, targets: np.ndarray, cfg: BlurIGConfig,
              size: int) -> Iterator[PathChunk]:
    """Path points j = 0..steps: G_{sigma_{steps - j}} x (most blurred first, input last)."""
    model = contract_model(model)
    sig = blur_sigmas(cfg.steps, cfg.max_sigma)
    x64 = x.astype(np.float64)

    def make(k, i):
        return np.stack([gaussian_blur(x64[ii], sig[cfg.steps - kk], cfg.truncate)
                         for kk, ii in zip(k, i)])

    return walk_rows(model, make, cfg.steps + 1, targets, size)


class BlurAccumulator:
    """Blur IG's sum from a blur walk's chunks (any order)."""

    def __init__(self, x: np.ndarray, cfg: BlurIGConfig):
        self.x, self.cfg = x.astype(np.float64), cfg
        self.sig = blur_sigmas(cfg.steps, cfg.max_sigma)
        self.total = np.zeros(x.shape, np.float64)
        self.ends = np.zeros((2, len(x)), np.float64)  # F at the path's start, F(x)

    def add(self, ch: PathChunk) -> None:
        steps = self.cfg.steps
        for r in range(len(ch.k)):
            k, i = int(ch.k[r]), int(ch.i[r])
            if k == 0:
                self.ends[0, i] = ch.scores[r]
            if k == steps:
                self.ends[1, i] = ch.scores[r]
            if k >= 1:  # the integrand at sigma_m, m = steps - k = 0..steps-1
                m = steps - k
                dz = blur_derivative(self.x[i], self.sig[m], self.cfg.grad_step,
                                     self.cfg.truncate)
                self.total[i] -= (self.sig[m + 1] - self.sig[m]) * ch.gradients[r] * dz

    def result(self, return_delta: bool):
        out = self.total.astype(np.float32)
        if not return_delta:
            return out
        return out, self.total.reshape(len(out), -1).sum(1) - (self.ends[1] - self.ends[0])


def refuse_baseline(baseline) -> None:
    """Blur IG's path has no baseline: refuse one that was given."""
    if baseline is not None:
        raise AttributionError(
            "Blur IG has no baseline: its path starts at the input blurred with max_sigma. "
            "Leave baseline=None (set max_sigma to change the start)")


def blur_ig(model, inputs, target=None, baseline=None, steps: int | None = None,
            batch_size: int | None = None, *, max_sigma: float | None = None,
            grad_step: float | None = None, return_delta: bool = False,
            config: BlurIGConfig | None = None):
    """Blur IG attributions (Xu et al. 2020) of the target score.

    Args:
        model, inputs, target: as :func:`~.integrated_gradients.integrated_gradients`.
        baseline: must be None (the path starts at the maximally blurred input).
        steps, batch_size, max_sigma, grad_step: override ``config`` (:class:`BlurIGConfig`).
        return_delta: also return sum(attr) - (F(x) - F(G_{max_sigma} x)) per input.

    Returns:
        attributions (float32, the inputs' shape), or ``(attributions, delta)``.
    """
    model = contract_model(model)
    refuse_baseline(baseline)
    cfg = merged_config(config, BlurIGConfig, steps=steps, batch_size=batch_size,
                    max_sigma=max_sigma, grad_step=grad_step)
    if np.ndim(inputs) < 3:
        raise AttributionError(
            f"Blur IG blurs images (N, C, H, W); got inputs of shape {np.shape(inputs)}")
    x, _, targets, size = prepare(model, inputs, target, None, cfg.batch_size, cfg.steps + 1,
                                  needs_baseline=False)
    acc = BlurAccumulator(x, cfg)
    for ch in blur_walk(model, x, targets, cfg, size):
        acc.add(ch)
    return acc.result(return_delta)

