"""Pixel-space pieces every PyTorch reference shares: the model's normalisation, the valid
pixel box, the Gaussian blur of ``tf_impl.feature_inversion.gaussian_blur``."""

from __future__ import annotations

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
from collections.abc import Mapping

import numpy as np
import torch

from model_zoo.data import denormalize_nchw, normalize_nchw

IDENTITY = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


normalize = normalize_nchw  # pixels in [0, 1] (N, C, H, W) -> (pixels - mean) / std
denormalize = denormalize_nchw  # the model's input -> x * std + mean


def pixel_box(mean, std, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The model-input bounds (lo, hi) of the [0, 1] pixel box, shaped (1, C, 1, 1)."""
    mean = np.asarray(mean, np.float32).reshape(-1)
    std = np.asarray(std, np.float32).reshape(-1)
    if mean.size == 1:
        mean, std = np.repeat(mean, channels), np.repeat(std, channels)
    lo = ((0.0 - mean) / std).reshape(1, -1, 1, 1).astype(np.float32)
    hi = ((1.0 - mean) / std).reshape(1, -1, 1, 1).astype(np.float32)
    return lo, hi


def gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """``tf_impl.feature_inversion.gaussian_blur``: separable, reflect padding."""
    if sigma <= 0:
        return np.asarray(pixels, np.float32)
    r = max(1, int(3 * sigma + 0.5))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = torch.from_numpy((k / k.sum()).astype(np.float32))
    x = torch.from_numpy(np.asarray(pixels, np.float32))
    c = x.shape[1]
    x = torch.nn.functional.pad(x, (r, r, r, r), mode="reflect")
    x = torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return x.numpy()


def preprocessing_of(metadata: Mapping[str, str]):
    """(mean, std) of a zoo model named in the ONNX metadata; identity for any other file."""
    name = metadata.get("model_zoo.name")
    if name:
        import model_zoo

        p = model_zoo.info(name).preprocessing
        return tuple(p.mean), tuple(p.std)
    return IDENTITY
