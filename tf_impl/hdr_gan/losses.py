"""HDR-GAN's objectives: the mu-law tonemapper and its L1 / PSNR, the hypersphere
(inverse stereographic projection) adversarial loss; their inputs are checked by
:mod:`.checks`."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from .. import metrics as m
from .checks import HDRGANError, check_hdr, check_moments, check_mu, check_same_shape

MU = 5000.0
GAMMA = 2.2


# -- tonemapping ------------------------------------------------------------------------------
def mu_law_tonemap(hdr, mu: float = MU) -> tf.Tensor:
    """T(H) = log(1 + mu H) / log(1 + mu) (Kalantari & Ramamoorthi 2017; HDR-GAN eq. for the
    loss). H is linear radiance >= 0, normally in [0, 1], which T maps onto [0, 1]."""
    mu = check_mu(mu)
    check_hdr(hdr)
    h = tf.convert_to_tensor(hdr, tf.float32)
    return tf.math.log1p(mu * h) / math.log1p(mu)


def inverse_mu_law(tonemapped, mu: float = MU) -> tf.Tensor:
    """H = ((1 + mu)^T - 1) / mu, the inverse of :func:`mu_law_tonemap`."""
    mu = check_mu(mu)
    t = tf.convert_to_tensor(tonemapped, tf.float32)
    return tf.math.expm1(t * math.log1p(mu)) / mu


def tonemapped_l1(pred_hdr, gt_hdr, mu: float = MU) -> tf.Tensor:
    """The reconstruction loss ||T(H_pred) - T(H_gt)||_1, averaged over all values."""
    check_same_shape(pred_hdr, gt_hdr, ("predicted HDR image", "ground-truth HDR image"))
    check_hdr(pred_hdr, "the predicted HDR image")
    check_hdr(gt_hdr, "the ground-truth HDR image")
    return tf.reduce_mean(tf.abs(mu_law_tonemap(pred_hdr, mu) - mu_law_tonemap(gt_hdr, mu)))


def tonemapped_psnr(pred_hdr, gt_hdr, mu: float = MU) -> np.ndarray:
    """PSNR-mu in dB per image: the PSNR of T(H_pred) against T(H_gt) (range [0, 1])."""
    check_same_shape(pred_hdr, gt_hdr, ("predicted HDR image", "ground-truth HDR image"))
    a, b = mu_law_tonemap(pred_hdr, mu), mu_law_tonemap(gt_hdr, mu)
    return np.asarray(m.psnr(a, b, clip=False))


# -- the hypersphere ---------------------------------------------------------------------------
def _as_vectors(u) -> tf.Tensor:
    """float32 (or a float64 tensor as it is) of rank >= 1."""
    if not (isinstance(u, (tf.Tensor, tf.Variable)) and u.dtype in (tf.float32, tf.float64)):
        u = tf.convert_to_tensor(u, tf.float32)
    if u.shape.rank is not None and u.shape.rank < 1:
        raise HDRGANError("give vectors: an array of shape (..., n), n >= 1; got a scalar")
    return u


def vector_norm(u) -> tf.Tensor:
    """||u|| over the last axis without overflow or underflow (scaled by max |u_i|); its
    gradient is u / ||u||, and 0 at u = 0."""
    u = _as_vectors(u)
    big = tf.stop_gradient(tf.reduce_max(tf.abs(u), axis=-1, keepdims=True))
    big = tf.where(big > 0, big, tf.ones_like(big))
    ss = tf.reduce_sum(tf.square(u / big), axis=-1)
    ss_safe = tf.where(ss > 0, ss, tf.ones_like(ss))
    return tf.where(ss > 0, big[..., 0] * tf.sqrt(ss_safe), tf.zeros_like(ss))


def inverse_stereographic_projection(u) -> tf.Tensor:
    """p(u) = (2u / (||u||^2 + 1), (||u||^2 - 1) / (||u||^2 + 1)) on the unit sphere S^n,
    for u of shape (..., n); returns (..., n + 1). u = 0 maps to the south pole, ||u|| -> inf
    to the north pole. Computed from t = min(||u||, 1 / ||u||) so nothing overflows."""
    u = _as_vectors(u)
    r = vector_norm(u)[..., None]
    small = r <= 1
    r_safe = tf.where(small, tf.ones_like(r), r)
    t = tf.where(small, r, 1 / r_safe)
    tau = t * t
    front = u * (2 * tf.where(small, tf.ones_like(tau), tau) / (1 + tau))
    last = (1 - tau) / (1 + tau)
    return tf.concat([front, tf.where(small, -last, last)], axis=-1)


def north_pole_distance(u) -> tf.Tensor:
    """Geodesic distance on S^n from p(u) to the north pole, in [0, pi]:
    arccos((||u||^2 - 1) / (||u||^2 + 1)) = 2 atan(1 / ||u||), computed as
    2 atan2(1, ||u||) (finite value and gradient for every u, u = 0 gives pi)."""
    u = _as_vectors(u)
    return 2 * tf.math.atan2(tf.ones((), u.dtype), vector_norm(u))


def discriminator_vectors(outputs, per_patch: bool = False) -> tf.Tensor:
    """The discriminator's output as points to project: NCHW (N, C, H, W) becomes (N, C*H*W)
    (one per image) or, with ``per_patch``, (N*H*W, C); (N, n) vectors pass through."""
    x = _as_vectors(outputs)
    rank = x.shape.rank
    if rank == 2:
        return x
    if rank != 4:
        raise HDRGANError(f"discriminator outputs must be NCHW (N, C, H, W) or vectors (N, n); "
                          f"got shape {tuple(x.shape)}")
    if per_patch:
        x = tf.transpose(x, [0, 2, 3, 1])
        return tf.reshape(x, [-1, tf.shape(x)[-1]])
    return tf.reshape(x, [tf.shape(x)[0], -1])


def sphere_moments(outputs, moments: int = 3, per_patch: bool = False) -> tf.Tensor:
    """(R,) tensor of E[d^r], r = 1..R, d the north-pole distance of each output vector."""
    moments = check_moments(moments)
    d = north_pole_distance(discriminator_vectors(outputs, per_patch))
    return tf.stack([tf.reduce_mean(d ** r) for r in range(1, moments + 1)])


def hypersphere_discriminator_loss(real_outputs, fake_outputs, moments: int = 3,
                                   per_patch: bool = False) -> tf.Tensor:
    """L_D = -sum_r E_real[d^r] + sum_r E_fake[d^r] (minimised by the discriminator)."""
    real = sphere_moments(real_outputs, moments, per_patch)
    fake = sphere_moments(fake_outputs, moments, per_patch)
    return tf.reduce_sum(fake) - tf.reduce_sum(real)


def hypersphere_generator_loss(fake_outputs, moments: int = 3,
                               per_patch: bool = False) -> tf.Tensor:
    """L_adv,G = -sum_r E_fake[d^r] (minimised by the generator)."""
    return -tf.reduce_sum(sphere_moments(fake_outputs, moments, per_patch))
