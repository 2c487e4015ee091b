"""Pictures of attributions beside their image: the FullGrad heat map and its overlay."""

from __future__ import annotations

import numpy as np


def draw_fullgrad(path, pixels, saliency_map, *, title: str = "") -> None:
    """Image | FullGrad heat map | the heat map over the image (pixels in [0, 1], CHW/NCHW)."""
    from ..report import headless_pyplot, to_uint8

    m = np.asarray(saliency_map, np.float64)
    while m.ndim > 2:
        m = m[0]
    m = m - m.min()
    m = m / m.max() if m.max() > 0 else m
    img = to_uint8(pixels)
    plt = headless_pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(9, 3.5))
    axes[0].imshow(img, interpolation="nearest")
    axes[0].set_title("image", fontsize=9)
    im = axes[1].imshow(m, cmap="hot", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.03)
    axes[1].set_title("FullGrad", fontsize=9)
    axes[2].imshow(img, interpolation="nearest")
    axes[2].imshow(m, cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="nearest")
    axes[2].set_title("overlay", fontsize=9)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
