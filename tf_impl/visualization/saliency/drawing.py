"""Colour maps and the figures of the saliency, guided-backprop and occlusion maps."""

from __future__ import annotations

import numpy as np

from ..checks import VisualizationError
from .maps import gradient_image, magnitude_map, normalize_map


# -- pictures -----------------------------------------------------------------------------------
def colorize(m, cmap: str = "inferno", *, symmetric: bool = False) -> np.ndarray:
    """A map (H, W) as RGB pixels (3, H, W) through a matplotlib colour map; ``symmetric``
    centres zero (for signed maps such as occlusion), else the map is stretched to [0, 1]."""
    from matplotlib import colormaps

    m = np.asarray(m, np.float32)
    m = m[0] if m.ndim == 3 else m
    if symmetric:
        a = float(np.abs(m).max())
        v = 0.5 + 0.5 * m / a if a > 0 else np.full_like(m, 0.5)
    else:
        v = normalize_map(m[None])[0]
    rgb = colormaps[cmap](v)[..., :3]
    return rgb.transpose(2, 0, 1).astype(np.float32)


def hwc_uint8(pixels) -> np.ndarray:
    """Pixels in [0, 1] as an (H, W, C) uint8 picture."""
    from ...report import to_uint8

    return to_uint8(pixels)


def one_map(a) -> np.ndarray:
    """One (H, W) map from an array with leading size-1 axes; anything else is refused."""
    a = np.asarray(a, np.float32)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise VisualizationError(f"one map (H, W) expected; got shape {a.shape}")
    return a


def draw_panels(path, panels, title: str = "", size: float = 3.0) -> None:
    """Draw [(caption, drawer(ax))] side by side."""
    from ...report import headless_pyplot

    plt = headless_pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size + 0.5),
                             squeeze=False)
    for ax, (caption, draw) in zip(axes[0], panels):
        draw(ax, fig)
        ax.set_title(caption, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def image_panel(pixels):
    """A panel drawer that shows the picture."""
    return lambda ax, fig: ax.imshow(hwc_uint8(pixels), interpolation="nearest")


def draw_saliency(path, pixels, saliency_map, *, title: str = "") -> None:
    """Image | saliency heat map | the heat map over the image."""
    m = normalize_map(one_map(saliency_map)[None])[0]

    def heat(ax, fig):
        im = ax.imshow(m, cmap="hot", vmin=0, vmax=1, interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)

    def overlay(ax, fig):
        ax.imshow(hwc_uint8(pixels), interpolation="nearest")
        ax.imshow(m, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="nearest")

    draw_panels(path, [("image", image_panel(pixels)), ("saliency max_c |dS/dI|", heat),
                   ("overlay", overlay)], title)


def draw_guided_backprop(path, pixels, gradient, *, title: str = "") -> None:
    """Image | guided-backprop gradient as RGB | its channel-max magnitude."""
    g = np.asarray(gradient, np.float32)
    g = g[None] if g.ndim == 3 else g[:1]
    rgb = gradient_image(g)
    mag = normalize_map(magnitude_map(g))[0]
    draw_panels(path, [("image", image_panel(pixels)),
                   ("guided backprop", lambda ax, fig: ax.imshow(hwc_uint8(rgb))),
                   ("magnitude max_c |g|",
                    lambda ax, fig: ax.imshow(mag, cmap="gray", vmin=0, vmax=1))], title)


def draw_occlusion(path, pixels, occlusion_map, *, title: str = "") -> None:
    """Image | occlusion map (score drop, zero centred: red hurts the class when occluded) |
    the positive part over the image."""
    m = one_map(occlusion_map)
    a = float(np.abs(m).max()) or 1.0

    def heat(ax, fig):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-a, vmax=a, interpolation="nearest")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)

    def overlay(ax, fig):
        ax.imshow(hwc_uint8(pixels), interpolation="nearest")
        ax.imshow(np.clip(m, 0, None) / a, cmap="jet", alpha=0.45, vmin=0, vmax=1,
                  interpolation="nearest")

    draw_panels(path, [("image", image_panel(pixels)), ("score drop when occluded", heat),
                   ("overlay (drops > 0)", overlay)], title)
