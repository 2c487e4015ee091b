"""IDGI: Important Direction Gradient Integration, on top of IG, Guided IG and Blur IG.

Yang, Wang & Bilodeau, "Re-thinking the Integrated Gradients: a Better Explanation Method for
Model Interpretability" ("IDGI: A Framework to Eliminate Explanation Noise from Integrated
Gradients"), CVPR 2023, Algorithm 1. A path method samples points x_0 (its start) .. x_n (the
input) and the gradient g_j = dF/dx at each. Of the step from x_j to x_{j+1}, only the
component along g_j changes F to first order, so IDGI spends the *actual* change of the score
on the gradient direction alone:

    IDGI(x) = sum_{j=0}^{n-1} (g_j * g_j / ||g_j||^2) * (F(x_{j+1}) - F(x_j)).

Each step's weights g_j^2 / ||g_j||^2 sum to 1, so the attributions sum to
F(x_n) - F(x_0) exactly, for any number of steps (completeness by telescoping, not by
quadrature). The sums are accumulated in float64 from the float32 scores, so the gap is
rounding only (tested to 1e-5 of |F(x_n) - F(x_0)|).

Zero gradients. A step whose g_j is exactly zero has no direction to put its score change
F(x_{j+1}) - F(x_j) on (the reference code divides by zero). It is *skipped*: it adds nothing,
and the attributions then sum to F(x_n) - F(x_0) minus the skipped changes. That change is
not noise to be hidden -- the path did cross a region where F moved while the gradient at the
step's start was flat (a ReLU kink) -- and inventing a direction for it would be arbitrary, so
IDGI warns (``RuntimeWarning``) with the number of skipped steps and their total change, and
``return_delta=True`` reports it as the completeness gap (delta = -skipped change).
:func:`idgi_from_path` returns the skipped change per input explicitly.

The paths (``base=``):

- ``"ig"``: the straight line x' + (j/n)(x - x'), j = 0..n (n + 1 points, uniform);
- ``"guided_ig"``: Guided IG's vertices (:mod:`.guided_ig`; ``fraction``, ``max_dist``);
- ``"blur_ig"``: Blur IG's scale space, most blurred first (:mod:`.blur_ig`; ``max_sigma``,
  ``grad_step``, ``truncate``; no baseline).

The official implementation (github.com/yangruo1226/IDGI, ``idgi.py``) takes the gradient
list and the score list of a path in the same order and uses g_j with F(x_{j+1}) - F(x_j), as
here. :func:`path_points_and_gradients` evaluates one path and keeps everything (points,
scores, gradients, the base method's own attribution), so a benchmark can compute the base
method and IDGI from the same forward passes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from converters.onnx_to_tf import contract_model

from . import common
from .blur_ig import BlurAccumulator, BlurIGConfig, blur_walk, refuse_baseline
from .common import AttributionConfig, AttributionError, merged_config
from .guided_ig import GuidedAccumulator, GuidedIGConfig, guided_walk
from .integrated_gradients import (
    IntegratedGradientsConfig,
    PathChunk,
    prepare,
    straight_line_walk,
)

__all__ = ["BASES", "IDGIConfig", "PathSamples", "idgi", "idgi_from_path",
           "path_points_and_gradients"]

BASES = ("ig", "guided_ig", "blur_ig")
_OPTIONS = {"ig": (), "guided_ig": ("fraction", "max_dist"),
            "blur_ig": ("max_sigma", "grad_step", "truncate")}


def _base_name(base) -> str:
    name = str(base).replace("-", "_").lower()
    if name not in BASES:
        raise AttributionError(f"unknown base path {base!r}: use one of {', '.join(BASES)}")
    return name


@dataclass(frozen=True)
class IDGIConfig(AttributionConfig):
    """IDGI (Yang et al. 2023) on a base path method.

    Attributes:
        base: the path, one of :data:`BASES` (``"ig"``, ``"guided_ig"``, ``"blur_ig"``).
        steps: path steps n (n + 1 points); None takes the base method's default (IG 50,
            Guided IG 200, Blur IG 100), as the paper runs IDGI at its base's settings.
        batch_size: rows per forward pass (32).
    """

    base: str = "ig"
    steps: int | None = None
    batch_size: int = 32

    def validate(self) -> None:
        object.__setattr__(self, "base", _base_name(self.base))
        common.check_steps(self.resolved_steps, self.batch_size)

    @property
    def resolved_steps(self) -> int:
        if self.steps is not None:
            return self.steps
        return {"ig": IntegratedGradientsConfig, "guided_ig": GuidedIGConfig,
                "blur_ig": BlurIGConfig}[self.base]().steps


def idgi_from_path(scores, gradients) -> tuple[np.ndarray, np.ndarray]:
    """IDGI from one path's samples: ``scores`` (n + 1, N) at x_0..x_n and ``gradients``
    (n or n + 1, N, ...) at x_0..x_{n-1} (a gradient at x_n is ignored).

    Returns ``(attributions float64 (N, ...), skipped float64 (N,))``: ``skipped`` is the sum
    of the score changes of steps whose gradient is exactly zero (left out; see the module
    docstring), so sum(attributions) = scores[-1] - scores[0] - skipped.
    """
    s = np.asarray(scores, np.float64)
    g = np.asarray(gradients)
    if s.ndim != 2 or g.ndim < 2 or g.shape[1] != s.shape[1] or \
            g.shape[0] not in (s.shape[0] - 1, s.shape[0]):
        raise AttributionError(f"scores must be (n + 1, N) and gradients (n or n + 1, N, ...); "
                               f"got {s.shape} and {g.shape}")
    n, inputs = s.shape[0] - 1, s.shape[1]
    total = np.zeros((inputs, int(np.prod(g.shape[2:], dtype=np.int64))), np.float64)
    skipped = np.zeros(inputs, np.float64)
    for j in range(n):
        sq = np.square(g[j].reshape(inputs, -1).astype(np.float64))
        norm = sq.sum(1)
        change = s[j + 1] - s[j]
        ok = norm > 0
        total[ok] += sq[ok] * (change[ok] / norm[ok])[:, None]
        skipped[~ok] += change[~ok]
    return total.reshape((inputs,) + g.shape[2:]), skipped


class IDGIAccumulator:
    """IDGI's sum from a walk's chunks; the rows of each input must come in path order."""

    def __init__(self, x: np.ndarray):
        self.total = np.zeros(x.shape, np.float64)
        self.weights = np.zeros(x.shape, np.float64)  # g^2 / ||g||^2 at each input's last point
        self.usable = np.zeros(len(x), bool)
        self.last = np.full(len(x), np.nan)  # F at each input's last point
        self.first = np.full(len(x), np.nan)
        self.skipped = np.zeros(len(x), np.float64)
        self.skipped_steps = np.zeros(len(x), np.int64)

    def add(self, ch: PathChunk) -> None:
        for r in range(len(ch.k)):
            i, s = int(ch.i[r]), float(ch.scores[r])
            if int(ch.k[r]) == 0:
                self.first[i] = s
            elif self.usable[i]:
                self.total[i] += self.weights[i] * (s - self.last[i])
            else:
                self.skipped[i] += s - self.last[i]
                self.skipped_steps[i] += 1
            sq = np.square(ch.gradients[r].astype(np.float64))
            norm = sq.sum()
            self.usable[i] = norm > 0
            if norm > 0:
                self.weights[i] = sq / norm
            self.last[i] = s

    def result(self, return_delta: bool, base: str):
        if self.skipped_steps.any():
            warnings.warn(
                f"IDGI ({base} path): {int(self.skipped_steps.sum())} step(s) had an exactly "
                f"zero gradient at their start and were skipped; their score change "
                f"(per input: {np.round(self.skipped, 6).tolist()}) is not attributed, so the "
                "attributions sum to F(x) - F(start) minus it", RuntimeWarning, stacklevel=3)
        out = self.total.astype(np.float32)
        if not return_delta:
            return out
        return out, self.total.reshape(len(out), -1).sum(1) - (self.last - self.first)


class _StraightAccumulator:
    """IG on the uniform path, left Riemann: (x - x') * sum_{j < n} g_j / n (Captum's
    ``riemann_left`` with n steps)."""

    def __init__(self, x, b, steps):
        self.x, self.b, self.steps = x.astype(np.float64), b.astype(np.float64), steps
        self.total = np.zeros(x.shape, np.float64)
        self.ends = np.zeros((2, len(x)), np.float64)

    def add(self, ch: PathChunk) -> None:
        left = ch.k < self.steps
        np.add.at(self.total, ch.i[left], ch.gradients[left].astype(np.float64) / self.steps)
        for e, k in ((0, 0), (1, self.steps)):
            sel = ch.k == k
            self.ends[e, ch.i[sel]] = ch.scores[sel]

    def result(self, return_delta: bool):
        attr = (self.x - self.b) * self.total
        out = attr.astype(np.float32)
        if not return_delta:
            return out
        return out, attr.reshape(len(out), -1).sum(1) - (self.ends[1] - self.ends[0])


def _walk(model, inputs, target, baseline, cfg: IDGIConfig, options: dict):
    """(x, targets, base config, walk iterator, base accumulator) for ``cfg.base``."""
    model = contract_model(model)
    allowed = _OPTIONS[cfg.base]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise AttributionError(
            f"option(s) {unknown} do not apply to the {cfg.base} path; it takes "
            f"{', '.join(allowed) if allowed else 'no options beyond steps and batch_size'}")
    steps = cfg.resolved_steps
    if cfg.base == "ig":
        x, b, targets, size = prepare(model, inputs, target, baseline, cfg.batch_size,
                                      steps + 1)
        walk = straight_line_walk(model, x, b, targets, np.arange(steps + 1) / steps, size)
        return x, targets, {"steps": steps}, walk, _StraightAccumulator(x, b, steps)
    if cfg.base == "guided_ig":
        gcfg = GuidedIGConfig(steps=steps, batch_size=cfg.batch_size, **options)
        x, b, targets, size = prepare(model, inputs, target, baseline, cfg.batch_size, 1)
        return x, targets, gcfg.to_dict(), guided_walk(model, x, b, targets, gcfg, size), \
            GuidedAccumulator(x)
    refuse_baseline(baseline)
    bcfg = BlurIGConfig(steps=steps, batch_size=cfg.batch_size, **options)
    if np.ndim(inputs) < 3:
        raise AttributionError(
            f"Blur IG blurs images (N, C, H, W); got inputs of shape {np.shape(inputs)}")
    x, _, targets, size = prepare(model, inputs, target, None, cfg.batch_size, steps + 1,
                                  needs_baseline=False)
    return x, targets, bcfg.to_dict(), blur_walk(model, x, targets, bcfg, size), \
        BlurAccumulator(x, bcfg)


def idgi(model, inputs, target=None, baseline=None, steps: int | None = None,
         batch_size: int | None = None, *, base: str | None = None, return_delta: bool = False,
         config: IDGIConfig | None = None, **base_options):
    """IDGI attributions (Yang et al. 2023) on the ``base`` method's path.

    Args:
        model, inputs, target, baseline: as
            :func:`~.integrated_gradients.integrated_gradients` (Blur IG takes no baseline).
        steps: path steps n (n + 1 points); None: the base method's default.
        batch_size, base: override ``config`` (:class:`IDGIConfig`); ``base`` is ``"ig"``,
            ``"guided_ig"`` or ``"blur_ig"`` (hyphens accepted).
        return_delta: also return sum(attr) - (F(x_n) - F(x_0)) per input (float64, (N,)):
            zero to rounding unless zero-gradient steps were skipped.
        **base_options: the base path's settings: ``fraction``, ``max_dist`` (Guided IG);
            ``max_sigma``, ``grad_step``, ``truncate`` (Blur IG).

    Returns:
        attributions (float32, the inputs' shape), or ``(attributions, delta)``.
    """
    model = contract_model(model)
    cfg = merged_config(config, IDGIConfig, steps=steps, batch_size=batch_size, base=base)
    x, _, _, walk, _ = _walk(model, inputs, target, baseline, cfg, base_options)
    acc = IDGIAccumulator(x)
    for ch in walk:
        acc.add(ch)
    return acc.result(return_delta, cfg.base)


@dataclass
class PathSamples:
    """One path method's samples, from :func:`path_points_and_gradients`.

    Attributes:
        base: ``"ig"``, ``"guided_ig"`` or ``"blur_ig"``; ``config`` its settings.
        targets: (N,) the explained classes.
        scores: (n + 1, N) float64, F at x_0 (the path's start) .. x_n (the input).
        gradients: (n + 1, N, C, H, W) float32, dF/dx at every point.
        points: (n + 1, N, C, H, W) float32, the path (None unless ``keep_points``).
        base_attribution: (N, C, H, W) float32, the base method's attribution from these
            samples: IG by the left Riemann sum on the uniform path (= ``integrated_gradients(
            method="riemann_left", steps=n)``), Guided IG and Blur IG exactly as
            :func:`~.guided_ig.guided_ig` / :func:`~.blur_ig.blur_ig` at the same settings.
        base_delta: (N,) its completeness gap.
    """

    base: str
    config: dict
    targets: np.ndarray
    scores: np.ndarray
    gradients: np.ndarray
    points: np.ndarray | None
    base_attribution: np.ndarray
    base_delta: np.ndarray

    def idgi(self, return_delta: bool = False):
        """IDGI from these samples (float32), optionally with its completeness gap."""
        total, _ = idgi_from_path(self.scores, self.gradients)
        out = total.astype(np.float32)
        if not return_delta:
            return out
        return out, total.reshape(len(out), -1).sum(1) - (self.scores[-1] - self.scores[0])


def path_points_and_gradients(model, inputs, target=None, baseline=None,
                              steps: int | None = None, batch_size: int | None = None, *,
                              base: str = "ig", keep_points: bool = True,
                              **base_options) -> PathSamples:
    """Evaluate the ``base`` method's path once and keep its samples (see
    :class:`PathSamples`): the base attribution and IDGI then come from the same forward
    passes. Holds (n + 1) * N gradients (and points) in memory: 2 * 4 bytes * (n + 1) * N *
    C * H * W, e.g. 245 MB for one 224x224 image on a 200-step path."""
    model = contract_model(model)
    cfg = merged_config(None, IDGIConfig, steps=steps, batch_size=batch_size, base=base)
    x, targets, config, walk, base_acc = _walk(model, inputs, target, baseline, cfg,
                                               base_options)
    n = cfg.resolved_steps
    scores = np.zeros((n + 1, len(x)), np.float64)
    grads = np.zeros((n + 1,) + x.shape, np.float32)
    points = np.zeros((n + 1,) + x.shape, np.float32) if keep_points else None
    for ch in walk:
        base_acc.add(ch)
        scores[ch.k, ch.i] = ch.scores
        grads[ch.k, ch.i] = ch.gradients
        if keep_points:
            points[ch.k, ch.i] = ch.points
    attr, delta = base_acc.result(True)
    return PathSamples(cfg.base, {"base": cfg.base, **config}, targets, scores, grads, points,
                       attr, delta)

