"""Saliency-seeded GrabCut (Simonyan et al. 2014, section 3.1): seeds from the map's
percentiles, ``cv2.grabCut`` with ``GC_INIT_WITH_MASK``, and its figure."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converters.onnx_to_tf import contract_model

from ... import images as imgs
from ..checks import VisualizationConfig, VisualizationError
from .drawing import draw_panels, hwc_uint8, image_panel, one_map
from .maps import SaliencyConfig, normalize_map, saliency

_UNKNOWN = ("probable_background", "probable_foreground")


@dataclass(frozen=True)
class GrabCutConfig(VisualizationConfig):
    """Saliency-seeded GrabCut (Simonyan et al. 2014, sec. 3.1).

    Attributes:
        fg_percentile: pixels with saliency above this percentile of the image's map seed the
            foreground (the paper: 95).
        bg_percentile: pixels below this percentile seed the background (the paper: 30).
        definite_foreground: mark the foreground seeds ``GC_FGD`` (hard constraints, like the
            background seeds) rather than ``GC_PR_FGD`` (GrabCut may relabel them).
        unknown: the initial label of the pixels between the two percentiles, which GrabCut
            relabels: ``"probable_background"`` (``GC_PR_BGD``: the foreground colour model
            starts from the seeds alone, as in the paper) or ``"probable_foreground"``.
        iterations: GrabCut's iterations (colour-model re-estimation and graph cut).
        seed: OpenCV's random seed (its k-means initialises the colour models).
    """

    fg_percentile: float = 95.0
    bg_percentile: float = 30.0
    definite_foreground: bool = True
    unknown: str = "probable_background"
    iterations: int = 5
    seed: int = 0

    def validate(self) -> None:
        if not 0.0 <= self.bg_percentile < self.fg_percentile <= 100.0:
            raise VisualizationError(
                f"need 0 <= bg_percentile < fg_percentile <= 100; got bg {self.bg_percentile}, "
                f"fg {self.fg_percentile} (the paper: 30 and 95)")
        if self.unknown not in _UNKNOWN:
            raise VisualizationError(f"unknown must be one of {_UNKNOWN}; got {self.unknown!r}")
        if int(self.iterations) != self.iterations or self.iterations < 1:
            raise VisualizationError(f"iterations must be an integer >= 1; got {self.iterations!r}")


# -- segmentation -------------------------------------------------------------------------------
def _cv2():
    import cv2

    return cv2


def grabcut_seeds(saliency_map, config: GrabCutConfig | None = None) -> np.ndarray:
    """GrabCut's initial labels (H, W) uint8 from one saliency map: ``GC_FGD`` (or
    ``GC_PR_FGD``) above the ``fg_percentile``, ``GC_BGD`` below the ``bg_percentile``, the rest
    ``GC_PR_BGD`` (or ``GC_PR_FGD``)."""
    cv2 = _cv2()
    config = config or GrabCutConfig()
    s = np.asarray(saliency_map, np.float64)
    if s.ndim != 2:
        raise VisualizationError(f"one saliency map (H, W) expected; got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise VisualizationError("the saliency map contains NaN or Inf values")
    hi = np.percentile(s, config.fg_percentile)
    lo = np.percentile(s, config.bg_percentile)
    fg, bg = s > hi, s < lo
    if config.fg_percentile >= 100:
        fg = s >= hi
    if not fg.any() or not bg.any():
        raise VisualizationError(
            f"the saliency map has too few distinct values to seed GrabCut (no pixel above its "
            f"{config.fg_percentile:g}th or below its {config.bg_percentile:g}th percentile): "
            "is it constant? Check the map, or lower fg_percentile / raise bg_percentile")
    unknown = cv2.GC_PR_BGD if config.unknown == "probable_background" else cv2.GC_PR_FGD
    seeds = np.full(s.shape, unknown, np.uint8)
    seeds[fg] = cv2.GC_FGD if config.definite_foreground else cv2.GC_PR_FGD
    seeds[bg] = cv2.GC_BGD
    return seeds


def grabcut_segmentation(pixels, saliency_maps, config: GrabCutConfig | None = None) -> np.ndarray:
    """Foreground masks (N, H, W) bool: GrabCut seeded by each image's saliency map
    (Simonyan et al. 2014, sec. 3.1).

    Args:
        pixels: the images (N, 3, H, W) (or one (3, H, W)), in [0, 1].
        saliency_maps: (N, H, W) (or one (H, W)), e.g. :func:`saliency`'s ``map``.
        config: :class:`GrabCutConfig` (percentiles 95 / 30, 5 iterations).
    """
    cv2 = _cv2()
    config = config or GrabCutConfig()
    px = imgs.as_pixels(pixels, name="pixels").pixels
    maps = np.asarray(saliency_maps, np.float32)
    maps = maps[None] if maps.ndim == 2 else maps
    if maps.ndim != 3 or maps.shape[0] != px.shape[0] or maps.shape[1:] != px.shape[2:]:
        raise VisualizationError(
            f"need one (H, W) saliency map per image: images {px.shape}, maps {maps.shape}")
    out = np.zeros(maps.shape, bool)
    for i in range(len(px)):
        seeds = grabcut_seeds(maps[i], config)
        img = np.ascontiguousarray((np.clip(px[i], 0, 1).transpose(1, 2, 0)[..., ::-1] * 255
                                    + 0.5).astype(np.uint8))  # BGR, as OpenCV expects
        bgd = np.zeros((1, 65), np.float64)
        fgd = np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(int(config.seed))
        mask = seeds.copy()
        try:
            cv2.grabCut(img, mask, None, bgd, fgd, int(config.iterations),
                        cv2.GC_INIT_WITH_MASK)
        except cv2.error as err:
            raise VisualizationError(
                f"GrabCut failed on image {i} ({str(err).strip().splitlines()[-1]}); the seeds "
                f"have {int((seeds == cv2.GC_FGD).sum() + (seeds == cv2.GC_PR_FGD).sum())} "
                f"foreground and {int((seeds == cv2.GC_BGD).sum())} background pixels") from err
        out[i] = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return out


def saliency_segmentation(model, image, target=None, config: GrabCutConfig | None = None, *,
                          saliency_config: SaliencyConfig | None = None, preprocessing=None):
    """(masks (N, H, W) bool, the :class:`Attribution` of :func:`saliency`) in one call."""
    model = contract_model(model)
    s = saliency(model, image, target, saliency_config, preprocessing=preprocessing)
    return grabcut_segmentation(s.pixels, s.map, config), s


def draw_segmentation(path, pixels, mask, saliency_map=None, config: GrabCutConfig | None = None,
                      *, title: str = "") -> None:
    """Image | saliency with the GrabCut seeds (red foreground, blue background) | the mask
    over the image (background dimmed)."""
    mask = one_map(mask).astype(bool)
    px = hwc_uint8(pixels).astype(np.float32) / 255
    panels = [("image", image_panel(pixels))]
    if saliency_map is not None:
        cv2 = _cv2()
        seeds = grabcut_seeds(one_map(saliency_map), config)
        m = normalize_map(one_map(saliency_map)[None])[0]
        seed_rgb = np.repeat(m[..., None], 3, axis=2)
        fg = (seeds == cv2.GC_FGD) | (seeds == cv2.GC_PR_FGD)
        seed_rgb[fg] = (1.0, 0.1, 0.1)
        seed_rgb[seeds == cv2.GC_BGD] = (0.2, 0.3, 1.0)
        panels.append(("saliency + seeds", lambda ax, fig: ax.imshow(seed_rgb)))
    shown = np.where(mask[..., None], px, 0.25 * px)
    panels.append((f"GrabCut mask ({mask.mean():.0%} foreground)",
                   lambda ax, fig: (ax.imshow(shown), ax.contour(mask, levels=[0.5],
                                                                 colors="yellow",
                                                                 linewidths=1))))
    draw_panels(path, panels, title)
