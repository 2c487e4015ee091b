"""Insertion and deletion: how fast the class probability falls (rises) as the pixels an
attribution ranks highest are removed from (put back into) the image.

Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box Models",
BMVC 2018, section 4.1 ("causal metrics"), as their code ``eclique/RISE`` (``evaluation.py``,
``CausalMetric``) computes them:

- pixels are ranked by the attribution (one score per pixel: the sum over channels of an
  (N, C, H, W) attribution, or a given (N, H, W) map), highest first, ties broken by pixel
  index;
- **deletion** starts from the image and, step by step, replaces the next ``p`` pixels (all
  channels) with a baseline: zeros in the model's (normalised) input space by default, i.e.
  the dataset's mean colour, as RISE's ``torch.zeros_like``; a lower area under the curve is
  better;
- **insertion** starts from a blurred copy of the image (RISE's ``gkern(11, 5)``: an 11 x 11
  kernel cut from scipy's ``gaussian_filter`` of sigma 5 applied to a delta, convolved with
  zero padding, in input space) and puts the next ``p`` original pixels back at each step; a
  higher area is better;
- at each of the ``S + 1`` stages (0, p, 2p, ..., all pixels) the model's softmax probability
  of the target class (the prediction on the original image unless given) is recorded, and
  the AUC is the trapezoid rule over the fraction of pixels changed, in [0, 1] (RISE's
  ``auc``, which assumes evenly spaced stages; here the last step may be partial and the true
  fractions are used).

RISE changes 224 pixels per step at 224 x 224 (0.45 % of the image, 224 steps); the default
here changes 8 / 224 = 3.6 % (the "224 * 8 pixels" step used by later evaluations, e.g. of
Guided IG and IDGI), 28 steps at any resolution, which is 8x cheaper. Measured on 32
resnet20_cifar test images (saliency, FullGrad, IG): the mean AUC moves by at most 0.012 and
a single image's by at most 0.05 between the two step sizes, against a spread (standard
deviation) of 0.16-0.29 between images. All the stages of all images go through the model
``batch_size`` at a time, at most ``max_rows`` stage images built at once (both fewer when that
many would not fit in memory: :mod:`tf_impl.memory`).

Example:
    >>> model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))          # doctest: +SKIP
    >>> x, _ = model_zoo.data.cifar10("test", n=8)                          # doctest: +SKIP
    >>> attr = integrated_gradients(model, x)                               # doctest: +SKIP
    >>> res = insertion_deletion(model, x, attr)                            # doctest: +SKIP
    >>> res["insertion"].auc.mean(), res["deletion"].auc.mean()             # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from ..config import plain
from .common import (
    AttributionConfig,
    AttributionError,
    check_baseline,
    check_inputs,
    fit_batch,
    logits,
    resolve_targets,
)

__all__ = [
    "CausalMetricConfig",
    "CausalCurves",
    "pixel_scores",
    "pixel_order",
    "rise_kernel",
    "blur",
    "deletion",
    "insertion",
    "insertion_deletion",
    "trapezoid_auc",
    "METHODS",
    "method_name",
    "attribute",
    "draw_curves",
]

_MODES = ("insertion", "deletion")
_RANKINGS = ("sum", "abs")


@dataclass(frozen=True)
class CausalMetricConfig(AttributionConfig):
    """Settings of insertion / deletion (Petsiuk et al. 2018, sec. 4.1; ``eclique/RISE``).

    Attributes:
        step_fraction: the fraction of the image's pixels changed per step, in (0, 1]: the
            step is ``max(1, round(step_fraction * H * W))`` pixels. Default 8 / 224 (RISE's
            code uses 1 / 224).
        steps: the number of steps instead (``ceil(H * W / steps)`` pixels each); ``None``:
            from ``step_fraction``.
        blur_size, blur_sigma: the insertion substrate's Gaussian kernel (RISE:
            ``gkern(klen=11, nsig=5)``); ``blur_sigma=0`` starts insertion from zeros.
        ranking: ``"sum"``: a pixel's score is its attribution summed over channels (signed:
            evidence for the class first, against it last); ``"abs"``: the sum of the
            absolute values (magnitude, whatever the sign).
    """

    step_fraction: float = 8 / 224
    steps: int | None = None
    blur_size: int = 11
    blur_sigma: float = 5.0
    ranking: str = "sum"

    def validate(self) -> None:
        if self.ranking not in _RANKINGS:
            raise AttributionError(f"ranking must be one of {_RANKINGS}; got "
                                   f"{self.ranking!r}")
        if not (isinstance(self.step_fraction, (int, float)) and 0 < self.step_fraction <= 1):
            raise AttributionError(
                f"step_fraction must be in (0, 1] (the fraction of pixels changed per step); "
                f"got {plain(self.step_fraction)!r}")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(
                self.steps, (int, np.integer)) or self.steps < 1):
            raise AttributionError(f"steps must be a positive integer or None; got "
                                   f"{plain(self.steps)!r}")
        if isinstance(self.blur_size, bool) or not isinstance(
                self.blur_size, (int, np.integer)) or self.blur_size < 1 or self.blur_size % 2 == 0:
            raise AttributionError(f"blur_size must be an odd positive integer; got "
                                   f"{plain(self.blur_size)!r}")
        if not self.blur_sigma >= 0:
            raise AttributionError(f"blur_sigma must be >= 0; got {plain(self.blur_sigma)!r}")

    def pixels_per_step(self, pixels: int) -> int:
        if self.steps is not None:
            return max(1, math.ceil(pixels / self.steps))
        return max(1, int(round(self.step_fraction * pixels)))


@dataclass
class CausalCurves:
    """One causal metric's curves.

    Attributes:
        mode: ``"insertion"`` or ``"deletion"``.
        fractions: the fraction of pixels changed at each stage (S + 1,), from 0 to 1.
        probabilities: the target class's softmax probability at each stage (N, S + 1).
        targets: the class followed (N,).
        pixels_per_step: pixels changed per step.
    """

    mode: str
    fractions: np.ndarray
    probabilities: np.ndarray
    targets: np.ndarray
    pixels_per_step: int
    config: dict = field(default_factory=dict)

    @property
    def auc(self) -> np.ndarray:
        """Area under each image's curve (N,), trapezoid rule over ``fractions``."""
        return trapezoid_auc(self.probabilities, self.fractions)


def trapezoid_auc(probabilities, fractions) -> np.ndarray:
    """Trapezoid rule along the last axis."""
    p = np.asarray(probabilities, np.float64)
    f = np.asarray(fractions, np.float64)
    return ((p[..., 1:] + p[..., :-1]) * 0.5 * np.diff(f)).sum(axis=-1)


# -- ranking -------------------------------------------------------------------------------------
def pixel_scores(attributions, x: np.ndarray, ranking: str = "sum") -> np.ndarray:
    """One score per pixel (N, H, W): an attribution of the inputs' shape summed over
    channels (``ranking="abs"``: its absolute values summed), or a map (N, H, W) as it is
    (``"abs"``: its absolute value)."""
    if ranking not in _RANKINGS:
        raise AttributionError(f"ranking must be one of {_RANKINGS}; got {ranking!r}")
    a = np.asarray(attributions)
    n, _, h, w = x.shape
    if a.shape == x.shape:
        a = a.astype(np.float64)
        a = (np.abs(a) if ranking == "abs" else a).sum(axis=1)
    elif a.shape != (n, h, w):
        raise AttributionError(
            f"attributions have shape {a.shape}; give one per input, either of the inputs' "
            f"shape {x.shape} (summed over channels) or a map (N, H, W) = {(n, h, w)}")
    if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
        raise AttributionError("attributions must be finite numbers (found NaN or inf)")
    a = a.astype(np.float64)
    return np.abs(a) if ranking == "abs" else a


def pixel_order(scores: np.ndarray) -> np.ndarray:
    """Flat pixel indices (N, H*W), highest score first; ties in index order."""
    flat = scores.reshape(len(scores), -1)
    return np.argsort(-flat, axis=1, kind="stable")


# -- substrates ----------------------------------------------------------------------------------
def rise_kernel(size: int = 11, sigma: float = 5.0) -> np.ndarray:
    """RISE's ``gkern(size, sigma)``: ``scipy.ndimage.gaussian_filter`` (truncate 4, mode
    ``"reflect"``) of a centred delta in a ``size`` x ``size`` array; (size, size)."""
    if sigma <= 0:
        k1 = np.zeros(size)
        k1[size // 2] = 1.0
        return np.outer(k1, k1)
    radius = int(4.0 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    period = 2 * size  # half-sample symmetric reflection: ... c b a | a b c ... c | c b a ...

    def reflect(i):
        i = np.mod(i, period)
        return np.where(i < size, i, period - 1 - i)

    centre = size // 2
    k1 = np.zeros(size)
    for out in range(size):
        src = reflect(out + np.arange(-radius, radius + 1))
        k1[out] = taps[src == centre].sum()
    return np.outer(k1, k1)


def blur(x: np.ndarray, size: int = 11, sigma: float = 5.0) -> np.ndarray:
    """RISE's insertion substrate: each channel convolved with :func:`rise_kernel`, zero
    padding, in the space ``x`` is in (NCHW)."""
    k = rise_kernel(size, sigma).astype(np.float32)
    c = x.shape[1]
    xt = tf.transpose(tf.constant(x, tf.float32), [0, 2, 3, 1])
    r = size // 2
    xt = tf.pad(xt, [[0, 0], [r, r], [r, r], [0, 0]])
    kern = tf.tile(tf.constant(k)[:, :, None, None], [1, 1, c, 1])
    out = tf.nn.depthwise_conv2d(xt, kern, [1, 1, 1, 1], "VALID")
    return tf.transpose(out, [0, 3, 1, 2]).numpy()


# -- the metric ----------------------------------------------------------------------------------
def _probabilities(model, rows: np.ndarray, targets: np.ndarray, batch_size: int) -> np.ndarray:
    """Softmax probability of ``targets`` for every row; the last batch is padded to
    ``batch_size`` so that the model sees a single input shape (no retracing)."""
    model = contract_model(model)
    out = np.empty(len(rows))
    for i in range(0, len(rows), batch_size):
        chunk = rows[i:i + batch_size]
        k = len(chunk)
        if k < batch_size and len(rows) > batch_size:
            chunk = np.concatenate([chunk, np.zeros((batch_size - k,) + chunk.shape[1:],
                                                    chunk.dtype)])
        z = logits(model, chunk)
        p = tf.nn.softmax(tf.cast(z, tf.float64), axis=1).numpy()[:k]
        out[i:i + k] = p[np.arange(k), targets[i:i + k]]
    return out


def _curves(model, x, order, start, finish, targets, per_step, batch_size, max_rows):
    from .. import memory

    model = contract_model(model)
    n, c, h, w = x.shape
    # half the budget for the stage images (each built from a start, a finish and a mask:
    # about 4 copies), half for the forward passes
    max_rows = memory.chunk_rows(4 * 4 * c * h * w, max_rows, share=0.5,
                                 what=f"a deletion/insertion stage at {h}x{w}")
    batch_size = fit_batch(model, x.shape, batch_size, factor=memory.FORWARD, share=0.5,
                           what="deletion/insertion")
    hw = h * w
    steps = math.ceil(hw / per_step)
    changed = np.minimum(np.arange(steps + 1) * per_step, hw)
    rank = np.empty_like(order)
    rows = np.arange(n)[:, None]
    rank[rows, order] = np.arange(hw)[None, :]
    probs = np.empty((n, steps + 1))
    per_chunk = max(1, max_rows // (steps + 1))
    for i in range(0, n, per_chunk):
        sl = slice(i, i + per_chunk)
        # stage k of image j: pixels of rank < changed[k] come from `finish`
        mask = rank[sl, None, :] < changed[None, :, None]            # (n', S+1, HW)
        mask = mask.reshape(-1, 1, h, w)
        s = np.repeat(start[sl], steps + 1, axis=0)
        f = np.repeat(finish[sl], steps + 1, axis=0)
        stack = np.where(mask, f, s).astype(np.float32)
        t = np.repeat(targets[sl], steps + 1)
        probs[sl] = _probabilities(model, stack, t, batch_size).reshape(-1, steps + 1)
    return changed / hw, probs


def _prepare(model, inputs, attributions, target, config, batch_size):
    model = contract_model(model)
    x = check_inputs(model, inputs)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
            or batch_size < 1:
        raise AttributionError(f"batch_size must be a positive integer; got {plain(batch_size)!r}")
    config = config or CausalMetricConfig()
    if not isinstance(config, CausalMetricConfig):
        raise AttributionError(f"config must be a CausalMetricConfig; got {type(config).__name__}")
    order = pixel_order(pixel_scores(attributions, x, config.ranking))
    targets = resolve_targets(model, x, target, out=logits(model, x))
    return x, order, targets, config


def deletion(model, inputs, attributions, target=None, baseline=None, *,
             config: CausalMetricConfig | None = None, batch_size: int = 64,
             max_rows: int = 4096) -> CausalCurves:
    """The deletion curve (Petsiuk et al. 2018): the most important pixels first are set to
    ``baseline``.

    Args:
        model: a classifier returning logits.
        inputs: the model's normalised input (N, C, H, W).
        attributions: the ranking, of the inputs' shape (summed over channels) or (N, H, W).
        target: ``None`` (the prediction on ``inputs``), an int, or one per input.
        baseline: what deleted pixels become, in input space: None (zeros: the dataset mean
            colour), a scalar, one input (C, H, W) or the inputs' shape.
        config: :class:`CausalMetricConfig`.
        batch_size: images per forward pass (stages of one or several images).
        max_rows: the most stage images built in memory at once.

    Returns:
        :class:`CausalCurves` (``.auc``: lower is better).
    """
    model = contract_model(model)
    x, order, targets, config = _prepare(model, inputs, attributions, target, config,
                                         batch_size)
    base = check_baseline(baseline, x)
    per_step = config.pixels_per_step(x.shape[2] * x.shape[3])
    fr, probs = _curves(model, x, order, x, base, targets, per_step, batch_size, max_rows)
    return CausalCurves("deletion", fr, probs, targets, per_step, config.to_dict())


def insertion(model, inputs, attributions, target=None, substrate=None, *,
              config: CausalMetricConfig | None = None, batch_size: int = 64,
              max_rows: int = 4096) -> CausalCurves:
    """The insertion curve (Petsiuk et al. 2018): starting from ``substrate`` (a blurred copy
    of the inputs by default), the most important pixels first get their original values.

    Args: as :func:`deletion`; ``substrate``: None (RISE's blur of ``config``; with
        ``blur_sigma=0``, zeros), a scalar, one input or the inputs' shape.

    Returns:
        :class:`CausalCurves` (``.auc``: higher is better).
    """
    model = contract_model(model)
    x, order, targets, config = _prepare(model, inputs, attributions, target, config,
                                         batch_size)
    if substrate is None:
        start = blur(x, config.blur_size, config.blur_sigma) if config.blur_sigma > 0 \
            else np.zeros_like(x)
    else:
        start = check_baseline(substrate, x)
    per_step = config.pixels_per_step(x.shape[2] * x.shape[3])
    fr, probs = _curves(model, x, order, start, x, targets, per_step, batch_size, max_rows)
    return CausalCurves("insertion", fr, probs, targets, per_step, config.to_dict())


def insertion_deletion(model, inputs, attributions, target=None, baseline=None, *,
                       config: CausalMetricConfig | None = None, batch_size: int = 64,
                       max_rows: int = 4096) -> dict[str, CausalCurves]:
    """Both curves: ``{"insertion": ..., "deletion": ...}`` (``baseline`` is deletion's)."""
    model = contract_model(model)
    x = check_inputs(model, inputs)
    targets = resolve_targets(model, x, target, out=logits(model, x))
    kw = dict(config=config, batch_size=batch_size, max_rows=max_rows)
    return {"insertion": insertion(model, x, attributions, targets, **kw),
            "deletion": deletion(model, x, attributions, targets, baseline, **kw)}


# -- the methods, by name -------------------------------------------------------------------------
METHODS = ("ig", "idgi_ig", "guided_ig", "idgi_guided_ig", "blur_ig", "idgi_blur_ig", "saliency",
           "fullgrad")
METHOD_TITLES = {"ig": "IG", "idgi_ig": "IDGI (IG)", "guided_ig": "Guided IG",
                 "idgi_guided_ig": "IDGI (Guided IG)", "blur_ig": "Blur IG",
                 "idgi_blur_ig": "IDGI (Blur IG)", "saliency": "saliency", "fullgrad": "FullGrad"}


def method_name(name: str) -> str:
    """A method's canonical name (hyphens and case tolerated), or an error listing them."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in METHODS:
        raise AttributionError(f"unknown attribution method {name!r}: use one of "
                               f"{', '.join(METHODS)}")
    return key


def attribute(method: str, model, inputs, target=None, *, steps: int | None = None,
              batch_size: int = 32) -> np.ndarray:
    """The ranking input of :func:`insertion` / :func:`deletion` for a method of
    :data:`METHODS`, each at its defaults (``steps`` overrides the path methods' steps):
    attributions of the inputs' shape for the path methods, maps (N, H, W) for ``saliency``
    (max over channels of |d score / d x|, Simonyan et al. 2014) and ``fullgrad``."""
    model = contract_model(model)
    key = method_name(method)
    if key == "saliency":
        from .gradients import channel_max, saliency

        return channel_max(saliency(model, inputs, target, batch_size=batch_size))
    if key == "fullgrad":
        from .fullgrad import fullgrad

        return fullgrad(model, inputs, target, batch_size=batch_size)
    if key.startswith("idgi_"):
        from .idgi import idgi

        return idgi(model, inputs, target, steps=steps, batch_size=batch_size, base=key[5:])
    if key == "ig":
        from .integrated_gradients import integrated_gradients as fn
    elif key == "guided_ig":
        from .guided_ig import guided_ig as fn
    else:
        from .blur_ig import blur_ig as fn
    return fn(model, inputs, target, steps=steps, batch_size=batch_size)


# -- picture -------------------------------------------------------------------------------------
def draw_curves(path, curves: dict, *, title: str = "", mode_titles: bool = True) -> None:
    """Mean insertion and deletion curves of several methods.

    ``curves``: ``{method: {"insertion": CausalCurves, "deletion": CausalCurves}}`` (either
    key may be missing). One panel per mode; each method's mean curve over the images, with
    its mean AUC in the legend.
    """
    from ..report import headless_pyplot

    plt = headless_pyplot()
    modes = [m for m in _MODES if any(m in c for c in curves.values())]
    fig, axes = plt.subplots(1, max(1, len(modes)), figsize=(5.2 * max(1, len(modes)), 4),
                             squeeze=False)
    for ax, mode in zip(axes[0], modes):
        for method, both in curves.items():
            cur = both.get(mode)
            if cur is None:
                continue
            mean = cur.probabilities.mean(axis=0)
            ax.plot(cur.fractions, mean, label=f"{method} ({cur.auc.mean():.3f})")
        better = "higher" if mode == "insertion" else "lower"
        if mode_titles:
            ax.set_title(f"{mode} (AUC, {better} is better)", fontsize=10)
        ax.set_xlabel("fraction of pixels " + ("inserted" if mode == "insertion" else "deleted"))
        ax.set_ylabel("probability of the target class")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
