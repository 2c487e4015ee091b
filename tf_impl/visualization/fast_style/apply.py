"""Using a trained network: stylising a picture with one style or a blend, drawing the
styles side by side."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from ... import images as imgs
from .network import MIN_SIDE, FastStyleError, FastStyleNet, style_weights


def _content_pixels(content, size: int | None) -> np.ndarray:
    if isinstance(content, (str, os.PathLike)):
        picture = imgs.load_image(content, size or 256)
    else:
        picture = imgs.as_pixels(content, name="content image")
    imgs.warn_notes(picture)
    return picture.pixels


def apply(model: FastStyleNet, content, style=0, *, size: int | None = None) -> np.ndarray:
    """Stylise ``content`` with one style of ``model`` or a blend of its styles.

    Args:
        model: a :class:`FastStyleNet` (e.g. :func:`load`).
        content: pixels in [0, 1] (NCHW/CHW/HWC, float or uint8), a file path or a bundled
            name (resized to ``size``, default 256).
        style: an index in [0, S), a style name, or S blend weights (>= 0, summing to 1).

    Returns:
        NCHW float32 pixels in [0, 1], the size of the content. Sides that are not multiples
        of 4 are reflection-padded for the network and cropped back.
    """
    w = style_weights(model, style)
    px = _content_pixels(content, size)
    n, _, h, wd = px.shape
    if min(h, wd) < MIN_SIDE:
        raise FastStyleError(f"the content image is {h}x{wd}; fast style transfer needs at "
                             f"least {MIN_SIDE}x{MIN_SIDE} pixels")
    ph, pw = -h % 4, -wd % 4
    if ph or pw:
        px = np.pad(px, [(0, 0), (0, 0), (0, ph), (0, pw)], mode="reflect")
    out = _forward(model, tf.constant(px), tf.constant(w))
    return np.clip(out.numpy()[:, :, :h, :wd], 0.0, 1.0).astype(np.float32)


def _forward(model: FastStyleNet, px, w):
    fn = getattr(model, "_compiled_forward", None)
    if fn is None:
        fn = tf.function(lambda p, v: model(p, v), reduce_retracing=True)
        model._compiled_forward = fn
    return fn(px, w)


def draw_styles(path, model: FastStyleNet, content, *, blend=None, size: int = 256) -> None:
    """Draw content | each style | a blend (equal weights unless ``blend`` is given)."""
    from ...report import image_grid_figure

    px = _content_pixels(content, size)[:1]
    blend = style_weights(model, blend if blend is not None else
                          np.full(model.num_styles, 1.0 / model.num_styles))
    panels = [("content", px)]
    panels += [(f"{i}: {name}", apply(model, px, i)) for i, name in enumerate(model.styles)]
    label = " + ".join(f"{b:.2f} {n}" for b, n in zip(blend, model.styles) if b > 0)
    panels.append((f"blend\n{label}", apply(model, px, blend)))
    image_grid_figure(path, panels, ncols=len(panels),
                      title="fast style transfer (Johnson et al. 2016, conditional instance norm "
                      "of Dumoulin et al. 2017)")
