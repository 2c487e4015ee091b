"""The reference for ``tf_impl.hdr_gan``: HDR-GAN's losses in plain PyTorch.

Niu, Wu, Liu, Guo & Lau, "HDR-GAN: HDR Image Reconstruction from Multi-Exposed LDR Images
with Large Motions", IEEE TIP 2021, with the hypersphere loss of Park & Kwon, "Sphere
Generative Adversarial Network Based on Geometric Moment Matching", CVPR 2019:

    T(H) = log(1 + mu H) / log(1 + mu)                                     (mu-law, mu = 5000)
    p(u) = (2u / (||u||^2 + 1), (||u||^2 - 1) / (||u||^2 + 1))             (onto S^n)
    d(u) = arccos(<p(u), N>) = 2 atan(1 / ||u||),  N = (0, ..., 0, 1)      (to the north pole)
    L_D = -sum_r E_real[d^r] + sum_r E_fake[d^r],   L_G = -sum_r E_fake[d^r]

These are the textbook formulas, written as the equations read (no rescaling tricks), so that
the TF side's overflow-safe forms can be checked against them: in float64 they are accurate
for ||u|| up to ~1e150, far beyond float32's range. Two forms of the distance are given: the
``arccos`` of the projection's last coordinate (the definition; its derivative is infinite at
||u|| = 0 and ||u|| -> inf) and ``2 atan2(1, ||u||)`` (the same function with a bounded
derivative). ``patch_discriminator`` is the PatchGAN of ``tf_impl.hdr_gan.PatchDiscriminator``
with ``torch.nn.functional.conv2d``, run on weights exported from the TF module.

Example:
    >>> import torch
    >>> float(north_pole_distance(torch.tensor([[1.0, 0.0]], dtype=torch.float64))[0])
    1.5707963267948966
"""

from __future__ import annotations

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "mu_law_tonemap",
    "inverse_mu_law",
    "tonemapped_l1",
    "inverse_stereographic_projection",
    "north_pole_distance",
    "north_pole_distance_arccos",
    "discriminator_vectors",
    "sphere_moments",
    "hypersphere_discriminator_loss",
    "hypersphere_generator_loss",
    "patch_discriminator",
    "torch_weights",
]

MU = 5000.0
STRIDES = (2, 2, 2, 1, 1)


def mu_law_tonemap(hdr: torch.Tensor, mu: float = MU) -> torch.Tensor:
    """T(H) = log(1 + mu H) / log(1 + mu)."""
    return torch.log(1 + mu * hdr) / math.log(1 + mu)


def inverse_mu_law(t: torch.Tensor, mu: float = MU) -> torch.Tensor:
    """H = ((1 + mu)^T - 1) / mu."""
    return (torch.pow(torch.tensor(1 + mu, dtype=t.dtype), t) - 1) / mu


def tonemapped_l1(pred: torch.Tensor, gt: torch.Tensor, mu: float = MU) -> torch.Tensor:
    """mean |T(pred) - T(gt)|."""
    return (mu_law_tonemap(pred, mu) - mu_law_tonemap(gt, mu)).abs().mean()


def inverse_stereographic_projection(u: torch.Tensor) -> torch.Tensor:
    """(..., n) -> (..., n + 1): (2u / (s + 1), (s - 1) / (s + 1)), s = ||u||^2."""
    s = (u * u).sum(dim=-1, keepdim=True)
    return torch.cat([2 * u / (s + 1), (s - 1) / (s + 1)], dim=-1)


def north_pole_distance_arccos(u: torch.Tensor) -> torch.Tensor:
    """arccos(<p(u), N>): the definition (unbounded derivative at the poles)."""
    return torch.arccos(inverse_stereographic_projection(u)[..., -1])


def north_pole_distance(u: torch.Tensor) -> torch.Tensor:
    """2 atan2(1, ||u||), equal to :func:`north_pole_distance_arccos`."""
    r = torch.sqrt((u * u).sum(dim=-1))
    return 2 * torch.atan2(torch.ones_like(r), r)


def discriminator_vectors(outputs: torch.Tensor, per_patch: bool = False) -> torch.Tensor:
    """NCHW -> (N, C*H*W) per image, or (N*H*W, C) per patch; (N, n) passes through."""
    if outputs.dim() == 2:
        return outputs
    if per_patch:
        return outputs.permute(0, 2, 3, 1).reshape(-1, outputs.shape[1])
    return outputs.reshape(outputs.shape[0], -1)


def sphere_moments(outputs: torch.Tensor, moments: int = 3,
                   per_patch: bool = False) -> torch.Tensor:
    """(R,) of E[d^r], r = 1..R."""
    d = north_pole_distance(discriminator_vectors(outputs, per_patch))
    return torch.stack([(d ** r).mean() for r in range(1, moments + 1)])


def hypersphere_discriminator_loss(real: torch.Tensor, fake: torch.Tensor, moments: int = 3,
                                   per_patch: bool = False) -> torch.Tensor:
    """-sum_r E_real[d^r] + sum_r E_fake[d^r]."""
    return (sphere_moments(fake, moments, per_patch).sum()
            - sphere_moments(real, moments, per_patch).sum())


def hypersphere_generator_loss(fake: torch.Tensor, moments: int = 3,
                               per_patch: bool = False) -> torch.Tensor:
    """-sum_r E_fake[d^r]."""
    return -sphere_moments(fake, moments, per_patch).sum()


def _tensor(value, dtype) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.from_numpy(
        np.asarray(value)).to(dtype)


def torch_weights(weights: Mapping[str, np.ndarray], dtype=torch.float32,
                  requires_grad: bool = False) -> dict[str, torch.Tensor]:
    """``PatchDiscriminator.weights()`` (HWIO) as contiguous OIHW tensors, PyTorch's layout."""
    out = {}
    for k, v in weights.items():
        v = np.asarray(v)
        if v.ndim == 4:
            v = np.ascontiguousarray(np.transpose(v, (3, 2, 0, 1)))
        out[k] = torch.tensor(v, dtype=dtype, requires_grad=requires_grad)
    return out


def patch_discriminator(x: torch.Tensor, weights: Mapping[str, Any],
                        layout: str = "HWIO") -> torch.Tensor:
    """The PatchGAN on NCHW ``x`` with ``PatchDiscriminator.weights()`` (HWIO kernels, numpy
    arrays or tensors; or ``layout="OIHW"`` with :func:`torch_weights`): five 4x4
    convolutions, strides 2, 2, 2, 1, 1, zero padding 1, LeakyReLU 0.2 between."""
    h = x
    for i, stride in enumerate(STRIDES):
        w = _tensor(weights[f"conv{i + 1}_kernel"], x.dtype)
        w = w if layout == "OIHW" else w.permute(3, 2, 0, 1)
        b = _tensor(weights[f"conv{i + 1}_bias"], x.dtype)
        h = F.conv2d(h, w, b, stride=stride, padding=1)
        if i < len(STRIDES) - 1:
            h = F.leaky_relu(h, 0.2)
    return h
