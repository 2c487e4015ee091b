"""Integrated Gradients, and the path machinery the other path methods share.

Sundararajan, Taly & Yan, "Axiomatic Attribution for Deep Networks", ICML 2017, eq. 1:

    IG_i(x) = (x_i - x'_i) * integral_0^1 dF(x' + a (x - x')) / dx_i da

for an input ``x``, a baseline ``x'`` and the target class's score ``F`` (the logit). The
integral is a quadrature over ``steps`` points a_k with weights w_k,

    IG(x) ~= (x - x') * sum_k w_k grad F(x' + a_k (x - x')),

and the attributions satisfy *completeness*, sum_i IG_i = F(x) - F(x') (eq. 2), up to the
quadrature error, which ``return_delta=True`` reports as Captum does:
``delta = sum(attr) - (F(x) - F(x'))`` per input.

The quadrature rules are Captum's (``captum.attr._utils.approximation_methods``), with its
names, points and weights exactly, so that ``method=`` means the same thing in both:

- ``"riemann_left"``: a_k = k / n, k = 0..n-1; w_k = 1/n;
- ``"riemann_right"``: a_k = k / n, k = 1..n; w_k = 1/n;
- ``"riemann_middle"``: a_k = (k + 1/2) / n, k = 0..n-1; w_k = 1/n;
- ``"riemann_trapezoid"``: a_k = k / (n - 1), k = 0..n-1 (both ends); w_k = 1/n, halved at the
  two ends. Note Captum's weights sum to (n - 1)/n, not 1 (a true trapezoid rule on these
  points weighs 1/(n - 1)), so this rule scales IG by (n - 1)/n and its completeness gap
  shrinks only as 1/n; it is kept as Captum has it so that the two agree. Needs n >= 2.
- ``"gausslegendre"`` (Captum's default): the n-point Gauss-Legendre rule moved to [0, 1],
  a_k = (1 + t_k)/2, w_k = v_k/2 (``numpy.polynomial.legendre.leggauss``).

Batching: the path points of all inputs are laid out point-major (row r is path point
r // N of input r % N, as Captum's ``internal_batch_size`` does) and evaluated ``batch_size``
rows per forward pass; every pass has the same size (the last one padded) so that one traced
TensorFlow function serves them all. Memory stays at one pass plus one float64 accumulator per
input. Sums are accumulated in float64; the attributions are returned as float32.

Everything here runs in the model's normalised input space: ``inputs`` and ``baseline`` are
what the model takes (``tf_impl.images.normalize(pixels, mean, std)``); ``baseline=None`` is
zeros there (the dataset mean colour), as in Captum. :func:`pixel_baseline` gives a black (or
any grey) baseline.

The PyTorch reference is Captum's ``IntegratedGradients`` on the onnx2torch copy of the same
ONNX file (``converters/torch_reference/attribution.py``);
``tests/attribution/test_attribution_paths.py`` checks every rule agrees to 1e-4.

Example:
    >>> import model_zoo
    >>> from converters import onnx_to_tf
    >>> from tf_impl import images
    >>> model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))            # doctest: +SKIP
    >>> pixels, _ = model_zoo.data.cifar10("test", n=2, normalize=False)       # doctest: +SKIP
    >>> x = images.normalize(pixels, *images.preprocessing_of(model))        # doctest: +SKIP
    >>> attr, delta = integrated_gradients(model, x, steps=32, return_delta=True)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from converters.onnx_to_tf import contract_model

from . import common
from .common import AttributionConfig, AttributionError, merged_config

__all__ = [
    "QUADRATURES",
    "IntegratedGradientsConfig",
    "PathChunk",
    "integrated_gradients",
    "quadrature",
    "pixel_baseline",
    "column",
    "score_gradients",
    "output_scores",
    "prepare",
    "walk_rows",
    "straight_line_walk",
    "attribution_map",
    "draw_attribution",
    "draw_attributions",
]

QUADRATURES = ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid",
               "gausslegendre")


@dataclass(frozen=True)
class IntegratedGradientsConfig(AttributionConfig):
    """Integrated Gradients (Sundararajan et al. 2017, eq. 1 and 3).

    Attributes:
        steps: quadrature points n (Captum's ``n_steps``; default 50 as Captum; the paper finds
            20 to 300 enough to bring the completeness gap within 5%).
        method: the quadrature rule, one of :data:`QUADRATURES` (Captum's names and
            conventions; default ``"gausslegendre"``, Captum's default).
        batch_size: path points (rows) per forward pass (Captum's ``internal_batch_size``).
            The result does not depend on it (to float32 rounding).
    """

    steps: int = 50
    method: str = "gausslegendre"
    batch_size: int = 32

    def validate(self) -> None:
        check_rule(self.method, self.steps)
        common.check_steps(self.steps, self.batch_size)


def check_rule(method: str, steps) -> None:
    """An unknown quadrature name lists the valid ones; the trapezoid needs two points."""
    if method not in QUADRATURES:
        raise AttributionError(f"unknown quadrature {method!r}: use one of "
                               f"{', '.join(QUADRATURES)} (Captum's names)")
    common.check_steps(steps, 1)
    if method == "riemann_trapezoid" and steps < 2:
        raise AttributionError("riemann_trapezoid needs steps >= 2 (its points include both "
                               f"ends of the path); got {steps}")


def quadrature(method: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """(points a_k in [0, 1], weights w_k), float64, as Captum defines ``method`` (Captum also
    refuses one step for the Riemann rules; here only ``riemann_trapezoid`` needs two)."""
    check_rule(method, steps)
    n = int(steps)
    if method == "gausslegendre":
        t, v = np.polynomial.legendre.leggauss(n)
        return 0.5 * (1 + t), 0.5 * v
    w = np.full(n, 1.0 / n)
    if method == "riemann_trapezoid":
        w[0] /= 2
        w[-1] /= 2
        return np.linspace(0.0, 1.0, n), w
    if method == "riemann_left":
        return np.linspace(0.0, 1.0 - 1.0 / n, n), w
    if method == "riemann_middle":
        return np.linspace(0.5 / n, 1.0 - 0.5 / n, n), w
    return np.linspace(1.0 / n, 1.0, n), w  # riemann_right


def pixel_baseline(model, inputs, value: float = 0.0, *, preprocessing=None) -> np.ndarray:
    """A uniform grey baseline of ``inputs``' shape in the model's input space: ``value`` is
    the pixel value in [0, 1] (0: black, 1: white), normalised with the model's mean and std
    (or ``preprocessing=(mean, std)``)."""
    model = contract_model(model)
    from .. import images as imgs

    x = np.asarray(inputs, np.float32)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    grey = imgs.normalize(np.full((1, x.shape[1], 1, 1), float(value), np.float32), mean, std)
    return np.broadcast_to(grey, x.shape).astype(np.float32)


# -- the shared path evaluation -----------------------------------------------------------------
def _chunk_size(rows: int, batch_size: int) -> int:
    return max(1, min(int(batch_size), int(rows)))


def score_gradients(model, points: np.ndarray, targets: np.ndarray, size: int):
    """(scores float64, gradients float32) at ``points`` through :func:`common.gradients`, in
    passes of exactly ``size`` rows (the last one padded by repeating its last row, the
    padding dropped), so that every pass reuses one traced function."""
    model = contract_model(model)
    n = len(points)
    pad = (-n) % size
    if pad:
        points = np.concatenate([points, np.repeat(points[-1:], pad, axis=0)])
        targets = np.concatenate([targets, np.repeat(targets[-1:], pad)])
    scores, grads = common.gradients(model, points, targets, size)
    scores, grads = scores[:n].astype(np.float64), grads[:n]
    if not (np.all(np.isfinite(scores)) and np.all(np.isfinite(grads))):
        raise AttributionError(
            "the model's target score or its gradient is NaN or infinite at a point of the "
            "path: check the inputs and baseline are in the model's normalised input range")
    return scores, grads


def _forward(model):
    """The model called eagerly when it can be (a ``TFModel`` takes ``compiled=False``): one
    forward pass to find the predicted classes should not trace a new TensorFlow function."""
    model = contract_model(model)
    try:
        takes = "compiled" in inspect.signature(model.__call__).parameters
    except (TypeError, ValueError):
        takes = False
    return (lambda x: model(x, compiled=False)) if takes else model


def output_scores(model, x: np.ndarray, size: int) -> np.ndarray:
    """The model's output for ``x`` (N, classes), ``size`` rows at a time (eagerly where
    possible); refuses outputs that are not (batch, classes) scores."""
    model = common.require_classifier(model)
    fwd = _forward(model)
    return np.concatenate([np.asarray(common.logits(fwd, x[i:i + size]))
                           for i in range(0, len(x), size)])


def prepare(model, inputs, target, baseline, batch_size: int, points: int, *,
            needs_baseline: bool = True):
    """Checked ``(x, baseline, targets, size)``: float32 inputs, the baseline at their shape
    (None when ``needs_baseline`` is False), one target class per input, and the rows per
    forward pass (``batch_size``, or fewer when a walk of ``points`` points per input has
    fewer rows in all, or when that many would not fit in memory: ``tf_impl.memory``)."""
    model = contract_model(model)
    x = common.check_inputs(model, inputs)
    if x.shape[0] == 0:
        raise AttributionError("inputs hold no images (batch of 0)")
    if not np.all(np.isfinite(x)):
        raise AttributionError("inputs contain NaN or infinite values")
    b = None
    if needs_baseline:
        b = common.check_baseline(baseline, x)
        if not np.all(np.isfinite(b)):
            raise AttributionError("baseline contains NaN or infinite values")
    from .. import memory

    size = common.fit_batch(model, x.shape, _chunk_size(points * len(x), batch_size),
                            factor=memory.GRADIENT, what="the path's gradients")
    targets = common.resolve_targets(model, x, target, out=output_scores(model, x, size))
    return x, b, targets, size


@dataclass
class PathChunk:
    """Rows of a path walk: path point ``k[r]`` of input ``i[r]`` is ``points[r]``, where the
    target score is ``scores[r]`` (float64) and its input gradient ``gradients[r]``."""

    k: np.ndarray
    i: np.ndarray
    points: np.ndarray
    scores: np.ndarray
    gradients: np.ndarray


def walk_rows(model, make_points: Callable[[np.ndarray, np.ndarray], np.ndarray], n_points: int,
              targets: np.ndarray, size: int) -> Iterator[PathChunk]:
    """Evaluate path points 0..n_points-1 of every input, point-major (row r is point r // N of
    input r % N), ``size`` rows per forward pass. ``make_points(k, i)`` builds the rows."""
    model = contract_model(model)
    n = len(targets)
    total = n_points * n
    for r0 in range(0, total, size):
        r = np.arange(r0, min(r0 + size, total))
        k, i = r // n, r % n
        pts = np.ascontiguousarray(make_points(k, i), dtype=np.float32)
        s, g = score_gradients(model, pts, targets[i], size)
        yield PathChunk(k, i, pts, s, g)


def column(v: np.ndarray, ndim: int) -> np.ndarray:
    """``v`` (rows,) shaped to broadcast against (rows, ...) arrays of rank ``ndim``."""
    return np.asarray(v).reshape((-1,) + (1,) * (ndim - 1))


def straight_line_walk(model, x, b, targets, alphas, size) -> Iterator[PathChunk]:
    """The straight path x' + a (x - x') at ``alphas`` (float64 arithmetic, float32 points)."""
    model = contract_model(model)
    x64, d64 = x.astype(np.float64), x.astype(np.float64) - b.astype(np.float64)
    b64, a = b.astype(np.float64), np.asarray(alphas, np.float64)

    def make(k, i):
        return b64[i] + column(a[k], x64.ndim) * d64[i]

    return walk_rows(model, make, len(a), targets, size)


# -- Integrated Gradients ---------------------------------------------------------------------
def integrated_gradients(model, inputs, target=None, baseline=None, steps: int | None = None,
                         batch_size: int | None = None, *, method: str | None = None,
                         return_delta: bool = False,
                         config: IntegratedGradientsConfig | None = None):
    """Integrated Gradients of the target score (Sundararajan et al. 2017, eq. 1 and 3).

    Args:
        model: a classifier returning (batch, classes) scores (a ``TFModel``).
        inputs: the model's normalised input, (N, C, H, W) float.
        target: class to explain: None (each input's prediction), one int, or one per input.
        baseline: x' in the model's input space: None (zeros), a scalar, one input (C, H, W)
            or an array of the inputs' shape.
        steps, batch_size, method: override ``config`` (:class:`IntegratedGradientsConfig`).
        return_delta: also return the completeness gap per input (float64, shape (N,)):
            sum(attributions) - (F(x) - F(x')), as Captum's ``return_convergence_delta``.

    Returns:
        attributions (float32, the inputs' shape), or ``(attributions, delta)``.
    """
    model = contract_model(model)
    cfg = merged_config(config, IntegratedGradientsConfig, steps=steps, batch_size=batch_size,
                    method=method)
    alphas, weights = quadrature(cfg.method, cfg.steps)
    # both ends appended with weight 0: F(x') and F(x) for the delta come from the same passes
    alphas = np.concatenate([alphas, [0.0, 1.0]])
    weights = np.concatenate([weights, [0.0, 0.0]])
    x, b, targets, size = prepare(model, inputs, target, baseline, cfg.batch_size, len(alphas))
    total = np.zeros(x.shape, np.float64)
    ends = np.zeros((2, len(x)), np.float64)
    last = len(alphas) - 2
    for ch in straight_line_walk(model, x, b, targets, alphas, size):
        np.add.at(total, ch.i, column(weights[ch.k], x.ndim) * ch.gradients)
        for e in (0, 1):
            sel = ch.k == last + e
            ends[e, ch.i[sel]] = ch.scores[sel]
    attr = (x.astype(np.float64) - b.astype(np.float64)) * total
    out = attr.astype(np.float32)
    if not return_delta:
        return out
    delta = attr.reshape(len(x), -1).sum(1) - (ends[1] - ends[0])
    return out, delta


# -- pictures ---------------------------------------------------------------------------------
_MODES = ("abs", "positive", "signed")


def attribution_map(attribution, mode: str = "abs") -> np.ndarray:
    """(N, H, W) from (N, C, H, W) attributions: ``"abs"`` sums |attr| over channels,
    ``"positive"`` is the positive part of the channel sum, ``"signed"`` the channel sum."""
    if mode not in _MODES:
        raise AttributionError(f"mode must be one of {_MODES}; got {mode!r}")
    a = np.asarray(attribution, np.float64)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise AttributionError(f"attributions must be (N, C, H, W) or (C, H, W); got {a.shape}")
    if mode == "abs":
        return np.abs(a).sum(1).astype(np.float32)
    s = a.sum(1)
    return (np.clip(s, 0, None) if mode == "positive" else s).astype(np.float32)


def _scaled(m: np.ndarray, mode: str, clip_percentile: float) -> tuple[np.ndarray, float]:
    """The map over its ``clip_percentile`` percentile of |m| (IG pictures are dominated by a
    few pixels otherwise), clipped to [0, 1] ([-1, 1] for signed maps)."""
    top = float(np.percentile(np.abs(m), clip_percentile)) or float(np.abs(m).max()) or 1.0
    lo = -1.0 if mode == "signed" else 0.0
    return np.clip(m / top, lo, 1.0), top


def draw_attributions(path, pixels, attributions: dict, *, title: str = "", mode: str = "abs",
                      clip_percentile: float = 99.5) -> None:
    """The image, then one heat map per named attribution ({caption: (C, H, W) or
    (1, C, H, W)}), then each map's overlay on the image: side by side, matplotlib."""
    from ..report import headless_pyplot, to_uint8

    img = to_uint8(np.asarray(pixels, np.float32)[:1] if np.ndim(pixels) == 4 else pixels)
    maps = {k: _scaled(attribution_map(v, mode)[0], mode, clip_percentile)[0]
            for k, v in attributions.items()}
    cmap = "RdBu_r" if mode == "signed" else "hot"
    lo = -1 if mode == "signed" else 0
    plt = headless_pyplot()
    ncols = 1 + len(maps)
    fig, axes = plt.subplots(2 if maps else 1, ncols, figsize=(2.8 * ncols, 5.8 if maps else 3.2),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    axes[0, 0].imshow(img, interpolation="nearest")
    axes[0, 0].set_title("image", fontsize=9)
    for j, (name, m) in enumerate(maps.items(), start=1):
        axes[0, j].imshow(m, cmap=cmap, vmin=lo, vmax=1, interpolation="nearest")
        axes[0, j].set_title(f"{name}\n({mode}, clipped at p{clip_percentile:g})", fontsize=8)
        axes[1, j].imshow(img, interpolation="nearest")
        axes[1, j].imshow(np.abs(m), cmap="jet", alpha=0.45, vmin=0, vmax=1,
                          interpolation="nearest")
        axes[1, j].set_title("overlay", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def draw_attribution(path, pixels, attribution, *, title: str = "", mode: str = "abs",
                     name: str = "attribution", clip_percentile: float = 99.5) -> None:
    """Image | heat map of one attribution (see :func:`attribution_map`) | overlay."""
    draw_attributions(path, pixels, {name: attribution}, title=title, mode=mode,
                      clip_percentile=clip_percentile)
