"""Occlusion (Zeiler & Fergus 2014, section 4.2) in the one call shape, defined as Captum's
``Occlusion``.

A window filled with a baseline value slides over the image; each pixel gets the mean, over
the windows that cover it, of score(original) - score(occluded). Windows start at 0 and step by
``stride`` until the image is covered (the last window along an axis may be cut off at the
border: ceil((H - window) / stride) + 1 positions), and the occluded inputs are batched
``batch_size`` windows per forward pass (one compiled step per chunk, so ``batch_size=1`` costs
little more per window than large batches), fewer when that many would not fit in memory
(:mod:`tf_impl.memory`).

:func:`occlusion` takes the model's normalised NCHW input like every method of
:mod:`tf_impl.attribution` and returns attributions of the inputs' shape (the map repeated over
the channels, which the window covers together, as Captum's ``Occlusion`` with a window over
all channels); :func:`tf_impl.visualization.saliency.occlusion` wraps it for pixels, a
pixel-space baseline, maps and figures.
"""

from __future__ import annotations

import weakref

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from ..config import plain
from ..loop import progress_bar
from . import common
from .common import AttributionError

__all__ = ["occlusion", "occlusion_map", "window_starts"]

SCORES = ("logit", "probability")


def _pair(name: str, value) -> tuple[int, int]:
    v = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(v) != 2 or not all(isinstance(a, (int, np.integer)) and a >= 1 for a in v):
        raise AttributionError(f"{name} must be a positive int or a pair of them (h, w); got "
                               f"{plain(value)!r}")
    return int(v[0]), int(v[1])


def _fill(baseline, channels: int) -> np.ndarray:
    """The window's fill in the model's input space: None (0, the dataset mean colour after
    normalisation), a scalar, or one value per channel."""
    b = np.zeros(1, np.float32) if baseline is None else np.asarray(baseline, np.float32)
    if b.size not in (1, channels) or not np.all(np.isfinite(b)):
        raise AttributionError(
            f"baseline must be a finite scalar or one value per channel ({channels}) in the "
            f"model's input space; got shape {b.shape}")
    return b.reshape(-1)


def occlusion(model, inputs, target=None, baseline=None, *, window=8, stride=4,
              score: str = "logit", batch_size: int = 64, progress: bool = False,
              return_delta: bool = False) -> np.ndarray:
    """Occlusion attributions (N, C, H, W) of the normalised ``inputs``.

    Args:
        target: None for each input's predicted class, one int for all, or one per input.
        baseline: the fill value in the model's input space (None: 0); a scalar or one per
            channel.
        window, stride: (h, w) in pixels, or one int for a square; 1 <= stride <= window so
            that every pixel is covered. The defaults suit 32x32 inputs.
        score: ``"logit"`` (Captum on the raw model) or ``"probability"`` (the softmax, as
            Zeiler & Fergus plot).
        batch_size: occluded inputs per forward pass (Captum's ``perturbations_per_eval``).
        return_delta: refused: occlusion differences do not sum to the score change.
    """
    if return_delta:
        raise AttributionError("occlusion has no completeness gap (its window differences do "
                               "not sum to the score change); leave return_delta=False")
    model = contract_model(model)
    x = common.check_inputs(model, inputs)
    common.require_classifier(model)
    wh, ww = _pair("window", window)
    sh, sw = _pair("stride", stride)
    if sh > wh or sw > ww:
        raise AttributionError(f"stride {plain(stride)!r} is larger than the window "
                               f"{plain(window)!r}: some pixels would never be occluded")
    if score not in SCORES:
        raise AttributionError(f"score must be one of {SCORES}; got {score!r}")
    _, batch_size = common.check_steps(1, batch_size)
    targets = common.resolve_targets(model, x, target)
    m = occlusion_map(model, x, targets, (wh, ww), (sh, sw), _fill(baseline, x.shape[1]),
                      score=score, batch_size=batch_size, progress=progress)
    return np.repeat(m[:, None], x.shape[1], axis=1)


# -- the engine ----------------------------------------------------------------------------------
def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start positions along one axis: 0, stride, ... until the axis is covered (Captum's rule:
    ceil((size - window) / stride) + 1 positions, the last window possibly cut off)."""
    if window > size:
        raise AttributionError(
            f"the occlusion window ({window} pixels) is larger than the image ({size} pixels): "
            f"use a window of 1 to {size}")
    n = int(np.ceil((size - window) / stride)) + 1
    return [k * stride for k in range(n)]


def _occlude(x, base, y0, x0, wh, ww):
    """(B, C, H, W) copies of x (1, C, H, W) with window b filled by ``base``; and the masks."""
    h, w = tf.shape(x)[2], tf.shape(x)[3]
    ys = tf.range(h)[None, :, None]
    xs = tf.range(w)[None, None, :]
    y0, x0 = y0[:, None, None], x0[:, None, None]
    m = (ys >= y0) & (ys < y0 + wh) & (xs >= x0) & (xs < x0 + ww)  # (B, H, W)
    occluded = tf.where(m[:, None], base, x)
    return occluded, tf.cast(m, x.dtype)


def _score(logits, target, kind: str):
    if kind == "probability":
        logits = tf.nn.softmax(logits, axis=-1)
    return tf.gather(logits, target, axis=1)


_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _occlusion_step(model, kind: str):
    """One compiled step per (model, score kind): occlude a chunk of windows, run the model,
    add each window's score drop to the running sums. One call per chunk keeps the
    per-forward overhead as low for ``batch_size=1`` as for large batches."""
    model = contract_model(model)
    steps = _STEPS.setdefault(model, {})
    if kind not in steps:

        @tf.function(reduce_retracing=True)
        def step(x, base, y0, x0, wh, ww, target, ref, used, total, count):
            occluded, masks = _occlude(x, base, y0, x0, wh, ww)
            drop = ref - _score(common.logits(model, occluded), target, kind)
            drop, masks = drop[:used], masks[:used]  # padding windows are left out
            return total + tf.tensordot(drop, masks, 1), count + tf.reduce_sum(masks, 0)

        steps[kind] = step
    return steps[kind]


def occlusion_map(model, x, targets, window: tuple[int, int], stride: tuple[int, int],
                  baseline, *, score: str = "logit", batch_size: int = 64,
                  progress: bool = False) -> np.ndarray:
    """The occlusion map (N, H, W) of a normalised batch ``x``, for ``targets``.

    ``baseline`` is the fill value in the model's input space: a scalar or one value per
    channel. Each pixel gets the mean over the windows covering it of
    score(x) - score(x with the window filled); ``batch_size`` windows per forward pass.
    """
    model = contract_model(model)
    x = np.asarray(x, np.float32)
    n, c, h, w = x.shape
    (wh, ww), (sh, sw) = window, stride
    if wh > h or ww > w:
        raise AttributionError(
            f"the occlusion window {wh}x{ww} is larger than the image {h}x{w}: use a window of "
            f"at most {h}x{w}")
    starts = np.array([(y, xx) for y in window_starts(h, wh, sh)
                       for xx in window_starts(w, ww, sw)], np.int32)
    base = np.broadcast_to(np.asarray(baseline, np.float32).reshape(1, -1, 1, 1), (1, c, 1, 1))
    base = tf.constant(np.ascontiguousarray(base))
    from .. import memory

    batch_size = common.fit_batch(model, x.shape, int(batch_size), factor=memory.FORWARD,
                                  what="occlusion")
    chunks = -(-len(starts) // int(batch_size))
    bs = -(-len(starts) // chunks)  # <= batch_size, chunks as even as possible
    pad = -len(starts) % bs  # copies of the last window: every chunk has one shape, one trace
    padded = np.concatenate([starts, np.repeat(starts[-1:], pad, 0)])
    step = _occlusion_step(model, score)
    wh_t, ww_t = tf.constant(wh), tf.constant(ww)
    bar = progress_bar(n * len(starts), desc="occlusion", unit="window", enabled=progress)
    out = np.zeros((n, h, w), np.float32)
    try:
        for i in range(n):
            xi = tf.constant(x[i:i + 1])
            t = tf.constant(int(targets[i]))
            ref = _score(common.logits(model, xi), t, score)
            total = tf.zeros((h, w), tf.float32)
            count = tf.zeros((h, w), tf.float32)
            for k in range(0, len(starts), bs):
                chunk = padded[k:k + bs]
                used = min(bs, len(starts) - k)
                total, count = step(xi, base, tf.constant(chunk[:, 0]), tf.constant(chunk[:, 1]),
                                    wh_t, ww_t, t, ref, tf.constant(used), total, count)
                if bar is not None:
                    bar.update(used)
            out[i] = (total / count).numpy()
    finally:
        if bar is not None:
            bar.close()
    return out
