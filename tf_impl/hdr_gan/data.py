"""Synthetic HDR scenes from the bundled photos, their exposures, and random crops."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from .checks import HDRGANError, check_hdr, check_times
from .losses import GAMMA, MU, inverse_mu_law, mu_law_tonemap
from .networks import TinyMergeNet

TRAIN_PHOTOS = ("tubingen", "astronaut", "chelsea", "coffee", "golden_gate", "amber", "horses",
                "snake", "dd_tree", "shipwreck")
HELD_OUT = ("rocket", "cat_dog")

def synthetic_hdr(photos, gamma: float = GAMMA) -> np.ndarray:
    """Linear radiance in [0, 1] from display-referred photos: H = photo^gamma (NCHW)."""
    px = np.asarray(photos, np.float32)
    if px.ndim != 4 or px.shape[1] != 3:
        raise HDRGANError(f"photos must be an NCHW batch (N, 3, H, W); got shape {px.shape}")
    if px.min() < 0 or px.max() > 1:
        raise HDRGANError("photos must be pixels in [0, 1] (normalize=False)")
    return np.power(px, gamma).astype(np.float32)


def make_exposures(hdr, times: Sequence[float] = (1.0, 4.0, 16.0), gamma: float = GAMMA,
                   bits: int = 8) -> np.ndarray:
    """K LDR exposures of an HDR batch: LDR_k = round_bits(clip(t_k H, 0, 1)^(1/gamma)).

    Returns (N, K, 3, H, W) float32 in [0, 1]; no motion between the exposures.
    """
    times = check_times(times)
    check_hdr(hdr)
    h = np.asarray(hdr, np.float32)
    if h.ndim != 4 or h.shape[1] != 3:
        raise HDRGANError(f"the HDR batch must be NCHW (N, 3, H, W); got shape {h.shape}")
    ldr = np.stack([np.power(np.clip(t * h, 0, 1), 1 / gamma) for t in times], axis=1)
    if bits:
        levels = 2 ** bits - 1
        ldr = np.round(ldr * levels) / levels
    return ldr.astype(np.float32)


def generator_inputs(ldrs, times: Sequence[float], gamma: float = GAMMA,
                     mu: float = MU) -> tf.Tensor:
    """HDR-GAN's input: for each exposure k, LDR_k and T(LDR_k^gamma / t_k), concatenated along
    channels: (N, K, 3, H, W) -> (N, 6K, H, W)."""
    times = check_times(times)
    x = tf.convert_to_tensor(ldrs, tf.float32)
    if x.shape.rank != 5 or x.shape[2] != 3:
        raise HDRGANError(f"exposures must be shaped (N, K, 3, H, W); got {tuple(x.shape)}")
    if x.shape[1] != len(times):
        raise HDRGANError(f"got {x.shape[1]} exposures but {len(times)} exposure times "
                          f"{times}: give one LDR image per exposure time")
    parts = []
    for k, t in enumerate(times):
        ldr = x[:, k]
        parts += [ldr, mu_law_tonemap(tf.pow(tf.maximum(ldr, 0.0), gamma) / t, mu)]
    return tf.concat(parts, axis=1)


def predict_hdr(generator: TinyMergeNet, ldrs, times: Sequence[float], gamma: float = GAMMA,
                mu: float = MU) -> np.ndarray:
    """The generator's HDR estimate H_pred (N, 3, H, W) from (N, K, 3, H, W) exposures."""
    n = tf.convert_to_tensor(ldrs).shape[1]
    if n != generator.exposures:
        raise HDRGANError(f"this generator merges {generator.exposures} exposures; got {n}")
    return inverse_mu_law(generator(generator_inputs(ldrs, times, gamma, mu)), mu).numpy()


class CropSampler:
    """Random crops (with horizontal flips) of HDR images, seeded."""

    def __init__(self, hdr: np.ndarray, crop: int, seed: int = 0):
        if hdr.shape[2] < crop or hdr.shape[3] < crop:
            raise HDRGANError(f"images of {hdr.shape[2]}x{hdr.shape[3]} are smaller than the "
                              f"crop {crop}")
        self.hdr, self.crop = hdr, crop
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> np.ndarray:
        out = []
        for _ in range(n):
            i = int(self.rng.integers(len(self.hdr)))
            y = int(self.rng.integers(self.hdr.shape[2] - self.crop + 1))
            x = int(self.rng.integers(self.hdr.shape[3] - self.crop + 1))
            c = self.hdr[i, :, y:y + self.crop, x:x + self.crop]
            out.append(c[:, :, ::-1] if self.rng.random() < 0.5 else c)
        return np.ascontiguousarray(np.stack(out))


def load_photos(names: Sequence[str], size: int) -> np.ndarray:
    """The bundled photos ``names`` at ``size`` (NCHW, [0, 1])."""
    import model_zoo.data as data

    return np.concatenate([data.image(n, size=size, normalize=False) for n in names])
