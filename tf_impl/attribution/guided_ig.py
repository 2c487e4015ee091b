"""Guided Integrated Gradients: an adaptive path that moves the least important features first.

Kapishnikov, Venugopalan, Avci, Wedin, Terry & Birdal, "Guided Integrated Gradients: an
Adaptive Path Method for Removing Noise", CVPR 2021, sec. 3 and Algorithm 1. Instead of the
straight line from the baseline x' to the input x, the path is built step by step from the
gradient: at step s (of ``steps``) it has to bring the L1 distance to the input down to
(1 - s/steps) of the total, and it does so by moving the features whose |gradient| is
smallest -- the ``fraction`` of all features with the lowest |dF/dx_i| -- towards the input,
repeatedly if that is not enough. The attribution is the path integral along this polyline,
taken with the gradient at the start of each step:

    GIG(x) = sum_s (x^(s+1) - x^(s)) * grad F(x^(s)),   x^(0) = x', x^(steps) = x.

``max_dist`` bounds the deviation from the straight line: at step s every feature's progress
(x^(s)_i - x'_i) / (x_i - x'_i) must stay within [s/steps - max_dist, s/steps + max_dist]
(features that fall behind jump to the lower edge; features at the upper edge are not
selected). ``max_dist=0`` is IG on the straight line (left Riemann sum), ``1`` the unbounded
path. The defaults (steps 200, fraction 0.25, max_dist 0.02) are those of the paper's
reference implementation (PAIR-code ``saliency``, ``saliency/core/guided_ig.py``), whose
selection rule this follows: the threshold is the ``fraction`` quantile ("lower") of |grad|
over all features, the ones at the upper edge counting as +inf, and every feature with
|grad| <= threshold moves. The path is computed per input in float64.

The steps are sequential (each needs the gradient at the last vertex), so ``batch_size``
bounds the rows of one pass over the N inputs' current vertices; there are steps + 1 passes
(the last, at x itself, gives F(x) and the gradient there for :mod:`.idgi`).

Completeness. ``return_delta=True`` gives sum(attr) - (F(x) - F(x')) per input. On a smooth
network the gap is a Riemann error that shrinks with ``steps`` (lenet_dlg10, sigmoids, two
CIFAR-10 images: 0.3% of F(x) - F(x') at 64 steps). On ReLU networks it does *not* shrink:
resnet20_cifar, black baseline, F(x) - F(x') = 19 and 32, gaps 5.8 and 50 at 200 steps and
5.8 and 42 at 800 (keras_cnn alike). The selection keeps the path sliding along ReLU kink
surfaces -- the features moved are those whose gradient is small at the step's start, which
is the side of a kink where they do little -- so the path crosses kinks about once per step
and each crossing leaves an error of the order of the step. The path itself is sound: its
segments integrated finely recover F's change
(``tests/attribution/test_attribution_paths.py``), and the reference implementation computes
the same sum. IDGI on this path (:mod:`.idgi`) is complete by construction.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from converters.onnx_to_tf import contract_model

from ..config import plain
from . import common
from .common import AttributionConfig, AttributionError, merged_config
from .integrated_gradients import PathChunk, prepare, score_gradients

__all__ = ["GuidedIGConfig", "guided_ig", "guided_step", "guided_walk"]


@dataclass(frozen=True)
class GuidedIGConfig(AttributionConfig):
    """Guided IG (Kapishnikov et al. 2021) with its reference implementation's defaults.

    Attributes:
        steps: path steps (200).
        fraction: the share of features (0, 1] moved in one selection round (0.25).
        max_dist: how far [0, 1] a feature's progress may stray from the straight line's
            s/steps (0.02; 0 gives IG's straight line, 1 an unbounded path).
        batch_size: rows per forward pass over the inputs' current vertices (32).
    """

    steps: int = 200
    fraction: float = 0.25
    max_dist: float = 0.02
    batch_size: int = 32

    def validate(self) -> None:
        common.check_steps(self.steps, self.batch_size)
        if not common.is_real(self.fraction) or not 0.0 < self.fraction <= 1.0:
            raise AttributionError(f"fraction must be in (0, 1] (the share of features moved per "
                                   f"round; the paper: 0.25); got {plain(self.fraction)!r}")
        if not common.is_real(self.max_dist) or not 0.0 <= self.max_dist <= 1.0:
            raise AttributionError(f"max_dist must be in [0, 1] (0: IG's straight line, 1: "
                                   f"unbounded; the paper: 0.02); got {plain(self.max_dist)!r}")


def guided_step(x, grad, x_input, x_baseline, step: int, steps: int, fraction: float,
                max_dist: float) -> np.ndarray:
    """The vertex after step ``step`` (1..steps) of one input's Guided IG path (flat float64
    arrays): the L1 distance to ``x_input`` shrinks to (1 - step/steps) of the total by moving
    the features with the smallest |grad| (``grad`` taken at ``x``)."""
    x = np.array(x, np.float64)
    if step >= steps:
        return np.array(x_input, np.float64)  # the last step ends at the input
    diff = x_input - x_baseline
    alpha = step / steps
    lo, hi = max(alpha - max_dist, 0.0), min(alpha + max_dist, 1.0)
    x_lo, x_hi = x_baseline + lo * diff, x_baseline + hi * diff
    target = np.abs(diff).sum() * (1.0 - alpha)
    moving = diff != 0
    safe = np.where(moving, diff, 1.0)
    absg = np.abs(grad)
    while True:
        progress = np.where(moving, (x - x_baseline) / safe, hi)
        behind = progress < lo
        x[behind] = x_lo[behind]  # too far behind the straight line: to the window's edge
        l1 = np.abs(x - x_input).sum()
        if l1 <= target or math.isclose(l1, target, rel_tol=1e-9, abs_tol=1e-9):
            return x
        free = x != x_hi
        if not free.any():
            return x  # nothing can move further (cannot happen: the window's edge is ahead)
        key = np.where(free, absg, np.inf)
        chosen = free & (key <= np.quantile(key, fraction, method="lower"))
        room = np.abs(x_hi - x)[chosen].sum()
        gamma = (l1 - target) / room
        if gamma >= 1.0:
            x[chosen] = x_hi[chosen]  # not enough: move them all the way, select again
        else:
            x[chosen] += gamma * (x_hi[chosen] - x[chosen])
            return x


def guided_walk(model, x: np.ndarray, b: np.ndarray, targets: np.ndarray, cfg: GuidedIGConfig,
                size: int) -> Iterator[PathChunk]:
    """The Guided IG vertices x^(0) = b, ..., x^(steps) = x of every input, one chunk per
    vertex (all inputs), with the target scores and gradients there."""
    model = contract_model(model)
    n = len(x)
    flat_x = x.reshape(n, -1).astype(np.float64)
    flat_b = b.reshape(n, -1).astype(np.float64)
    cur = flat_b.copy()
    idx = np.arange(n)
    for s in range(cfg.steps + 1):
        pts = cur.reshape(x.shape).astype(np.float32)
        scores, grads = score_gradients(model, pts, targets, size)
        yield PathChunk(np.full(n, s), idx, pts, scores, grads)
        if s == cfg.steps:
            return
        g = grads.reshape(n, -1).astype(np.float64)
        cur = np.stack([guided_step(cur[i], g[i], flat_x[i], flat_b[i], s + 1, cfg.steps,
                                    cfg.fraction, cfg.max_dist) for i in range(n)])


class GuidedAccumulator:
    """Guided IG's sum sum_s (x^(s+1) - x^(s)) grad F(x^(s)) from the walk's chunks (in
    order)."""

    def __init__(self, x: np.ndarray):
        self.total = np.zeros(x.shape, np.float64)
        self.prev_points = None
        self.prev_grads = None
        self.ends = np.zeros((2, len(x)), np.float64)

    def add(self, ch: PathChunk) -> None:
        pts = ch.points.astype(np.float64)
        if self.prev_points is None:
            self.ends[0] = ch.scores
        else:
            self.total += (pts - self.prev_points) * self.prev_grads
        self.prev_points, self.prev_grads = pts, ch.gradients.astype(np.float64)
        self.ends[1] = ch.scores

    def result(self, return_delta: bool):
        out = self.total.astype(np.float32)
        if not return_delta:
            return out
        return out, self.total.reshape(len(out), -1).sum(1) - (self.ends[1] - self.ends[0])


def guided_ig(model, inputs, target=None, baseline=None, steps: int | None = None,
              batch_size: int | None = None, *, fraction: float | None = None,
              max_dist: float | None = None, return_delta: bool = False,
              config: GuidedIGConfig | None = None):
    """Guided IG attributions (Kapishnikov et al. 2021) of the target score.

    Args:
        model, inputs, target, baseline: as
            :func:`~.integrated_gradients.integrated_gradients` (baseline None: zeros).
        steps, batch_size, fraction, max_dist: override ``config`` (:class:`GuidedIGConfig`).
        return_delta: also return sum(attr) - (F(x) - F(x')) per input (float64, (N,)).

    Returns:
        attributions (float32, the inputs' shape), or ``(attributions, delta)``.
    """
    model = contract_model(model)
    cfg = merged_config(config, GuidedIGConfig, steps=steps, batch_size=batch_size,
                    fraction=fraction, max_dist=max_dist)
    x, b, targets, size = prepare(model, inputs, target, baseline, cfg.batch_size, 1)
    acc = GuidedAccumulator(x)
    for ch in guided_walk(model, x, b, targets, cfg, size):
        acc.add(ch)
    return acc.result(return_delta)
