"""Image registration for GradInversion's group consistency.

Each seed's reconstruction may come out shifted, scaled or rotated relative to the others;
GradInversion registers every seed's image onto the seeds' pixel mean before averaging them
into the consensus (Yin et al. 2021, sec. 3.3; they use RANSAC-flow). Here: OpenCV's ECC
algorithm (Evangelidis & Psarakis 2008) fitting an affine warp, which is robust at the
32x32 CIFAR size; where ECC does not converge the image is used unwarped.
"""

from __future__ import annotations

import numpy as np


def _gray(img: np.ndarray) -> np.ndarray:
    return np.asarray(img, np.float32).mean(axis=0)


def register_affine(moving: np.ndarray, reference: np.ndarray, *, iterations: int = 50,
                    eps: float = 1e-4) -> tuple[np.ndarray, bool]:
    """Warp ``moving`` (C, H, W) onto ``reference`` with an ECC affine fit.

    Returns the warped image and whether ECC converged (if not, ``moving`` unchanged).
    """
    import cv2

    warp = np.eye(2, 3, dtype=np.float32)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, eps)
    try:
        _, warp = cv2.findTransformECC(_gray(reference), _gray(moving), warp,
                                       cv2.MOTION_AFFINE, criteria, None, 3)
    except cv2.error:
        return np.asarray(moving, np.float32), False
    h, w = moving.shape[1:]
    out = np.stack([
        cv2.warpAffine(np.ascontiguousarray(c, np.float32), warp, (w, h),
                       flags=cv2.INTER_LINEAR + cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_REFLECT)
        for c in moving
    ])
    return out, True


def consensus(seeds: np.ndarray, *, register: bool = True) -> tuple[np.ndarray, float]:
    """The group consensus of ``seeds`` (G, N, C, H, W) in pixel space.

    Every seed's image is registered onto the seeds' pixel mean (when ``register``), and the
    registered images are averaged. Returns the consensus (N, C, H, W) and the fraction of
    registrations that converged.
    """
    seeds = np.asarray(seeds, np.float32)
    mean = seeds.mean(axis=0)
    if not register or seeds.shape[0] == 1:
        return mean, 1.0
    out = np.zeros_like(mean)
    ok = 0
    for g in range(seeds.shape[0]):
        for i in range(seeds.shape[1]):
            warped, converged = register_affine(seeds[g, i], mean[i])
            out[i] += warped
            ok += converged
    return out / seeds.shape[0], ok / (seeds.shape[0] * seeds.shape[1])
