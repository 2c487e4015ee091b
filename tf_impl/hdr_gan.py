"""HDR-GAN's objectives: mu-law tonemapped L1 and the hypersphere adversarial loss.

Niu, Wu, Liu, Guo & Lau, "HDR-GAN: HDR Image Reconstruction from Multi-Exposed LDR Images
with Large Motions", IEEE TIP 30 (2021). A generator merges K differently exposed LDR images
into one HDR image H; it is trained with

    L_G = || T(H_pred) - T(H_gt) ||_1  +  lambda_adv * L_adv,G

where T is the mu-law tonemapper of Kalantari & Ramamoorthi (2017), used by HDR-GAN for both
the loss and the discriminator's input,

    T(H) = log(1 + mu H) / log(1 + mu),   mu = 5000,   H >= 0 (linear radiance in [0, 1]),

and the adversarial term is the *hypersphere* loss HDR-GAN adopts from Park & Kwon, "Sphere
Generative Adversarial Network Based on Geometric Moment Matching", CVPR 2019 (SphereGAN).
The discriminator D (a PatchGAN, Isola et al. 2017: five 4x4 convolutions, strides 2, 2, 2,
1, 1, LeakyReLU 0.2) sees tonemapped images; its output u in R^n is mapped onto the unit
sphere S^n by the inverse stereographic projection

    p(u) = ( 2u / (||u||^2 + 1),  (||u||^2 - 1) / (||u||^2 + 1) )

and scored by the geodesic distance to the north pole N = (0, ..., 0, 1),

    d(u) = arccos(<p(u), N>) = arccos((||u||^2 - 1) / (||u||^2 + 1)) = 2 atan(1 / ||u||).

With the moments m_r = E[d^r], r = 1..R (SphereGAN eq. 7), D maximises
sum_r E_real[d^r] - E_fake[d^r] and the generator maximises sum_r E_fake[d^r]:

    L_D = -sum_r E_real[d^r] + sum_r E_fake[d^r],      L_adv,G = -sum_r E_fake[d^r].

(The signs follow SphereGAN's and HDR-GAN's released code: real samples are pushed away from
N, towards the south pole at u = 0; fake samples towards N, at ||u|| -> infinity.) The
discriminator output of one image is flattened into one vector u (``per_patch=False``, as the
HDR-GAN code does: ``stereo_graphic_project`` reshapes (b, h, w, 1) to (b, h*w)); with
``per_patch=True`` each patch's channel vector is its own point (on S^1 for one channel).

Numerics. The textbook forms fail at the ends: ``arccos`` has an infinite derivative at +-1,
reached when ||u|| -> 0 or infinity, and ||u||^2 overflows float32 beyond ||u|| ~ 1.8e19. Here
||u|| is computed scaled by max|u_i| (no overflow, gradient u/||u||, 0 at u = 0), the distance
as 2 atan2(1, ||u||) (derivative -2 / (1 + ||u||^2): bounded), and the projection from
t = min(||u||, 1/||u||), so that no intermediate exceeds 1 in magnitude beyond u itself.

What is the paper's (or its released code's, github.com/nonu116/HDR-GAN) and what is ours:
mu = 5000, gamma 2.2 between LDR and HDR, the discriminator on tonemapped images scaled to
[-1, 1], R = 3 moments without normalisation, lambda_adv = 1 (the code's ``g_alpha``), Adam
with learning rate 1e-4 are theirs. One difference: the code's reference point is e_1 =
(1, 0, ..., 0), SphereGAN's paper and code use the north pole; we use the north pole. HDR-GAN's
generator (a U-Net++ with reference-based residual merging blocks and deep HDR supervision)
is not reproduced: :class:`TinyMergeNet` (three 3x3 convolutions) stands in for the CPU check,
trained on synthetic exposures of the bundled photos (:func:`make_exposures`).

Example:
    >>> import numpy as np
    >>> from tf_impl.hdr_gan import mu_law_tonemap, north_pole_distance
    >>> float(mu_law_tonemap(np.ones(1, np.float32))[0])
    1.0
    >>> [round(float(d), 4) for d in north_pole_distance(np.array([[0.0], [1.0], [1e20]]))]
    [3.1416, 1.5708, 0.0]
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from . import metrics as m
from .optimize import OptimizeConfig, TechniqueConfig
from .optimizers import Adam
from .result import Result

MU = 5000.0
GAMMA = 2.2
TRAIN_PHOTOS = ("tubingen", "astronaut", "chelsea", "coffee", "golden_gate", "amber", "horses",
                "snake", "dd_tree", "shipwreck")
HELD_OUT = ("rocket", "cat_dog")
_D_WIDTHS = (64, 128, 256, 512)  # pix2pix's 70x70 PatchGAN, then one output channel
_D_STRIDES = (2, 2, 2, 1, 1)


class HDRGANError(ValueError):
    """A bad argument to the HDR-GAN functions; the message names the problem and the fix."""


# -- configuration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class HDRGANConfig(TechniqueConfig):
    """Settings of HDR-GAN's losses and of the small CPU training check.

    Paper / released code (Niu et al. 2021, github.com/nonu116/HDR-GAN): ``mu`` 5000,
    ``gamma`` 2.2, ``moments`` 3, ``per_patch`` False (one vector per image), ``lambda_adv`` 1
    would be the code's weight, Adam betas (0.9, 0.999) and learning rate 1e-4, batch 6 of
    large crops. Shrunk for a CPU run of a few hundred steps: ``lambda_adv`` 0.01 (with the
    tiny generator and ~300 steps a weight of 0.1 or more lets the adversarial gradient swamp
    the L1 term: PSNR-mu falls to 5-6 dB), learning rates 1e-3 (G; 2e-3 learns the L1 faster
    but made one seed in three diverge with the adversarial term) and 2e-4 (D),
    ``batch_size`` 4, ``crop`` 32, the
    discriminator's widths x ``d_width`` 0.25 (16-32-64-128-1), a 16-channel
    :class:`TinyMergeNet` instead of the paper's U-Net++.

    Attributes:
        mu: the mu-law compression (T(H) = log(1 + mu H) / log(1 + mu)).
        gamma: LDR = clip(t_k H, 0, 1)^(1/gamma); the generator's HDR inputs are LDR^gamma / t_k.
        exposures: exposure times t_k of the K synthetic LDR inputs (1 : 4 : 16, i.e. x1/4, x1
            and x4 around the reference exposure 4); the generator takes exactly K of them.
        quantize_bits: LDR images are rounded to this many bits (8, like a camera's JPEG);
            0 keeps them continuous.
        moments: R, the number of distance moments E[d^r], r = 1..R.
        per_patch: False: one point on the sphere per image (the flattened patch map);
            True: one point per patch (its channel vector).
        lambda_adv: weight of the adversarial term in the generator loss; 0 trains with the
            tonemapped L1 alone (no discriminator).
        d_learning_rate: the discriminator's Adam learning rate (the generator's is
            ``optimize.learning_rate``).
        d_steps: discriminator updates per generator update (alternating, D first).
        batch_size, crop: training batch of random crops (with flips) of the training photos.
        image_size: the photos are loaded at this size (shorter side, centre crop).
        eval_size: the held-out photos (:data:`HELD_OUT`) are evaluated whole at this size.
        generator_width: channels of :class:`TinyMergeNet`'s hidden layers.
        d_width: multiplier of the discriminator's widths 64-128-256-512.
        seed: weights' initialisation and the crops' order.
        optimize: steps, the generator's learning rate, Adam's betas/epsilon, progress bar.
    """

    mu: float = MU
    gamma: float = GAMMA
    exposures: tuple[float, ...] = (1.0, 4.0, 16.0)
    quantize_bits: int = 8
    moments: int = 3
    per_patch: bool = False
    lambda_adv: float = 0.01
    d_learning_rate: float = 2e-4
    d_steps: int = 1
    batch_size: int = 4
    crop: int = 32
    image_size: int = 96
    eval_size: int = 64
    generator_width: int = 16
    d_width: float = 0.25
    seed: int = 0
    train_photos: tuple[str, ...] = TRAIN_PHOTOS
    held_out: tuple[str, ...] = HELD_OUT
    optimize: OptimizeConfig = field(
        default_factory=lambda: OptimizeConfig(steps=300, learning_rate=1e-3)
    )

    def __post_init__(self):
        _check_mu(self.mu)
        if not (self.gamma > 0 and math.isfinite(self.gamma)):
            raise HDRGANError(f"gamma must be a positive number (2.2 is usual); got {self.gamma}")
        _check_times(self.exposures)
        _check_moments(self.moments)
        if not (0 <= self.quantize_bits <= 16):
            raise HDRGANError(f"quantize_bits must be in [0, 16] (0: no rounding); got "
                              f"{self.quantize_bits}")
        if not (self.lambda_adv >= 0 and math.isfinite(self.lambda_adv)):
            raise HDRGANError(f"lambda_adv must be >= 0 (0: L1 only); got {self.lambda_adv}")
        if not (self.d_learning_rate > 0 and math.isfinite(self.d_learning_rate)):
            raise HDRGANError(f"d_learning_rate must be > 0; got {self.d_learning_rate}")
        for name in ("d_steps", "batch_size", "generator_width"):
            if getattr(self, name) < 1:
                raise HDRGANError(f"{name} must be >= 1; got {getattr(self, name)}")
        if not self.d_width > 0:
            raise HDRGANError(f"d_width must be > 0 (1 is pix2pix's 64-128-256-512); got "
                              f"{self.d_width}")
        for name in ("crop", "eval_size"):
            if getattr(self, name) < 32:
                raise HDRGANError(f"{name} must be >= 32 (the PatchGAN needs at least 32x32 "
                                  f"pixels); got {getattr(self, name)}")
        if self.crop > self.image_size:
            raise HDRGANError(f"crop {self.crop} is larger than image_size {self.image_size}")
        if self.optimize.optimizer != "adam":
            raise HDRGANError("HDR-GAN trains with Adam: leave optimize.optimizer = 'adam'")
        if not self.train_photos or not self.held_out:
            raise HDRGANError("give at least one training photo and one held-out photo")
        if set(self.train_photos) & set(self.held_out):
            raise HDRGANError(f"photos both trained on and held out: "
                              f"{sorted(set(self.train_photos) & set(self.held_out))}")


# -- checks -----------------------------------------------------------------------------------
def _check_mu(mu) -> float:
    if not (isinstance(mu, (int, float, np.floating)) and mu > 0 and math.isfinite(mu)):
        raise HDRGANError(f"mu must be a positive number (HDR-GAN uses 5000); got {mu!r}")
    return float(mu)


def _check_moments(moments) -> int:
    if not isinstance(moments, (int, np.integer)) or isinstance(moments, bool) or moments < 1:
        raise HDRGANError(f"moments must be an integer >= 1 (HDR-GAN uses 3); got {moments!r}")
    return int(moments)


def _check_times(times) -> tuple[float, ...]:
    times = tuple(float(t) for t in times)
    if len(times) < 2:
        raise HDRGANError(f"give at least two exposure times; got {times}")
    if not all(t > 0 and math.isfinite(t) for t in times):
        raise HDRGANError(f"exposure times must be positive numbers; got {times}")
    return times


def _concrete(x) -> np.ndarray | None:
    """The value of ``x`` when it is known now (numpy or eager), else None (symbolic)."""
    if isinstance(x, (tf.Tensor, tf.Variable)):
        if not tf.executing_eagerly():
            return None
        try:
            return x.numpy()
        except (AttributeError, NotImplementedError, TypeError, ValueError):
            return None
    try:
        return np.asarray(x)
    except (TypeError, ValueError):
        return None


def _check_hdr(hdr, name: str = "HDR image"):
    """Negative or non-finite radiance is refused (when the value is known, i.e. eagerly)."""
    value = _concrete(hdr)
    if value is None:
        return
    if not np.issubdtype(value.dtype, np.number):
        raise HDRGANError(f"{name} must be numeric; got dtype {value.dtype}")
    if not np.all(np.isfinite(value)):
        raise HDRGANError(f"{name} holds NaN or Inf values; HDR radiance must be finite")
    if value.size and value.min() < 0:
        raise HDRGANError(
            f"{name} has negative values (min {float(value.min()):.4g}); the mu-law tonemapper "
            "needs linear radiance H >= 0: clip with np.maximum(hdr, 0) or fix the HDR "
            "conversion")


def _check_same_shape(a, b, names=("prediction", "target")):
    sa, sb = tuple(tf.convert_to_tensor(a).shape), tuple(tf.convert_to_tensor(b).shape)
    if sa != sb:
        raise HDRGANError(f"the {names[0]} has shape {sa} and the {names[1]} {sb}: they must "
                          "match")


# -- tonemapping ------------------------------------------------------------------------------
def mu_law_tonemap(hdr, mu: float = MU) -> tf.Tensor:
    """T(H) = log(1 + mu H) / log(1 + mu) (Kalantari & Ramamoorthi 2017; HDR-GAN eq. for the
    loss). H is linear radiance >= 0, normally in [0, 1], which T maps onto [0, 1]."""
    mu = _check_mu(mu)
    _check_hdr(hdr)
    h = tf.convert_to_tensor(hdr, tf.float32)
    return tf.math.log1p(mu * h) / math.log1p(mu)


def inverse_mu_law(tonemapped, mu: float = MU) -> tf.Tensor:
    """H = ((1 + mu)^T - 1) / mu, the inverse of :func:`mu_law_tonemap`."""
    mu = _check_mu(mu)
    t = tf.convert_to_tensor(tonemapped, tf.float32)
    return tf.math.expm1(t * math.log1p(mu)) / mu


def tonemapped_l1(pred_hdr, gt_hdr, mu: float = MU) -> tf.Tensor:
    """The reconstruction loss ||T(H_pred) - T(H_gt)||_1, averaged over all values."""
    _check_same_shape(pred_hdr, gt_hdr, ("predicted HDR image", "ground-truth HDR image"))
    _check_hdr(pred_hdr, "the predicted HDR image")
    _check_hdr(gt_hdr, "the ground-truth HDR image")
    return tf.reduce_mean(tf.abs(mu_law_tonemap(pred_hdr, mu) - mu_law_tonemap(gt_hdr, mu)))


def tonemapped_psnr(pred_hdr, gt_hdr, mu: float = MU) -> np.ndarray:
    """PSNR-mu in dB per image: the PSNR of T(H_pred) against T(H_gt) (range [0, 1])."""
    _check_same_shape(pred_hdr, gt_hdr, ("predicted HDR image", "ground-truth HDR image"))
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
    moments = _check_moments(moments)
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


# -- networks ---------------------------------------------------------------------------------
def _nchw(x, channels: int, what: str) -> tf.Tensor:
    x = tf.convert_to_tensor(x, tf.float32)
    if x.shape.rank != 4 or x.shape[1] != channels:
        raise HDRGANError(f"{what} must be an NCHW batch (N, {channels}, H, W); got shape "
                          f"{tuple(x.shape)}")
    return x


def _leaky(x, slope: float = 0.2):
    # max(x, 0.2 x) is LeakyReLU(0.2); written out because grappler's remapper logs an error
    # when it tries to fuse LeakyRelu's gradient with the bias add
    return tf.maximum(x, slope * x)


class PatchDiscriminator(tf.Module):
    """pix2pix's 70x70 PatchGAN (Isola et al. 2017), HDR-GAN's discriminator: five 4x4
    convolutions with strides 2, 2, 2, 1, 1 and zero padding 1, widths 64-128-256-512-1 (times
    ``width``), LeakyReLU 0.2 after the first four, no normalisation, no sigmoid. A 64x64
    input gives a 6x6 map of patch scores (each sees 70x70 pixels).

    Input and output are NCHW; weights are HWIO ``tf.Variable``s initialised N(0, 0.02) as
    in pix2pix (seeded).
    """

    def __init__(self, in_channels: int = 3, width: float = 1.0, *, seed: int = 0,
                 name: str = "patch_discriminator"):
        super().__init__(name=name)
        if not width > 0:
            raise HDRGANError(f"width must be > 0; got {width}")
        self.in_channels = int(in_channels)
        widths = [max(1, round(c * width)) for c in _D_WIDTHS] + [1]
        rng = np.random.default_rng(seed)
        self.kernels, self.biases = [], []
        cin = self.in_channels
        for i, cout in enumerate(widths):
            w = rng.normal(0.0, 0.02, (4, 4, cin, cout)).astype(np.float32)
            self.kernels.append(tf.Variable(w, name=f"conv{i + 1}_kernel"))
            self.biases.append(tf.Variable(np.zeros(cout, np.float32), name=f"conv{i + 1}_bias"))
            cin = cout
        self.widths = tuple(widths)

    def __call__(self, images) -> tf.Tensor:
        x = _nchw(images, self.in_channels, "the discriminator's input")
        if x.shape[2] is not None and (x.shape[2] < 32 or x.shape[3] < 32):
            raise HDRGANError(f"the PatchGAN needs inputs of at least 32x32 pixels; got "
                              f"{x.shape[2]}x{x.shape[3]}")
        h = tf.transpose(x, [0, 2, 3, 1])
        last = len(self.kernels) - 1
        for i, (w, b, s) in enumerate(zip(self.kernels, self.biases, _D_STRIDES)):
            h = tf.pad(h, [[0, 0], [1, 1], [1, 1], [0, 0]])
            h = tf.nn.bias_add(tf.nn.conv2d(h, w, s, "VALID"), b)
            if i < last:
                h = _leaky(h)
        return tf.transpose(h, [0, 3, 1, 2])

    def weights(self) -> dict[str, np.ndarray]:
        """``{"conv1_kernel": HWIO array, "conv1_bias": ..., ...}`` (for the PyTorch side)."""
        out = {}
        for i, (w, b) in enumerate(zip(self.kernels, self.biases)):
            out[f"conv{i + 1}_kernel"], out[f"conv{i + 1}_bias"] = w.numpy(), b.numpy()
        return out


class TinyMergeNet(tf.Module):
    """A stand-in for HDR-GAN's generator, small enough for a CPU: three 3x3 convolutions
    (reflection padding, LeakyReLU 0.2, ``width`` channels) from the K exposures' inputs
    (each LDR_k and T(LDR_k^gamma / t_k), 6 channels, as HDR-GAN feeds them) to the
    tonemapped HDR image T(H) through a sigmoid; H = :func:`inverse_mu_law` of it.
    """

    def __init__(self, exposures: int = 3, width: int = 16, *, seed: int = 0,
                 name: str = "tiny_merge_net"):
        super().__init__(name=name)
        if exposures < 1 or width < 1:
            raise HDRGANError(f"exposures and width must be >= 1; got {exposures}, {width}")
        self.exposures = int(exposures)
        rng = np.random.default_rng(seed)
        sizes = [6 * self.exposures, width, width, 3]
        self.kernels, self.biases = [], []
        for i, (cin, cout) in enumerate(zip(sizes[:-1], sizes[1:])):
            w = rng.normal(0.0, math.sqrt(2.0 / (9 * cin)), (3, 3, cin, cout)).astype(np.float32)
            self.kernels.append(tf.Variable(w, name=f"conv{i + 1}_kernel"))
            self.biases.append(tf.Variable(np.zeros(cout, np.float32), name=f"conv{i + 1}_bias"))

    def __call__(self, inputs) -> tf.Tensor:
        """``inputs`` from :func:`generator_inputs` (N, 6K, H, W) -> T(H_pred) (N, 3, H, W)."""
        x = _nchw(inputs, 6 * self.exposures, "the generator's input")
        h = tf.transpose(x, [0, 2, 3, 1])
        last = len(self.kernels) - 1
        for i, (w, b) in enumerate(zip(self.kernels, self.biases)):
            h = tf.pad(h, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
            h = tf.nn.bias_add(tf.nn.conv2d(h, w, 1, "VALID"), b)
            h = _leaky(h) if i < last else tf.sigmoid(h)
        return tf.transpose(h, [0, 3, 1, 2])


# -- synthetic data ---------------------------------------------------------------------------
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
    times = _check_times(times)
    _check_hdr(hdr)
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
    times = _check_times(times)
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


# -- training ---------------------------------------------------------------------------------
class HDRGANSteps:
    """One generator step and one discriminator step of HDR-GAN, compiled (``tf.function``).

    ``discriminator_step`` minimises L_D on tonemapped real and fake images (scaled to
    [-1, 1] as in the released code); ``generator_step`` minimises the tonemapped L1 plus
    ``lambda_adv`` * L_adv,G (only the L1 when there is no discriminator). Each computes the
    gradients, checks that the loss and the gradients are finite (else raises
    ``FloatingPointError`` and applies nothing), then applies Adam (PyTorch's arithmetic,
    :class:`tf_impl.optimizers.Adam`). Inputs: ``generator_inputs(...)`` and the HDR target.

    Example:
        >>> steps = HDRGANSteps(HDRGANConfig(), TinyMergeNet(), PatchDiscriminator(width=0.25))
        >>> steps.discriminator_step(x, hdr); steps.generator_step(x, hdr)  # doctest: +SKIP
    """

    def __init__(self, config: HDRGANConfig, generator: TinyMergeNet,
                 discriminator: PatchDiscriminator | None):
        self.config, self.gen, self.disc = config, generator, discriminator
        opt = config.optimize
        self.g_opt = Adam(opt.learning_rate, opt.betas[0], opt.betas[1], opt.epsilon)
        self.g_vars = list(generator.trainable_variables)
        self._g_grads = tf.function(self._generator_gradients, reduce_retracing=True)
        self._g_apply = tf.function(self._apply_g)
        if discriminator is not None:
            self.d_opt = Adam(config.d_learning_rate, opt.betas[0], opt.betas[1], opt.epsilon)
            self.d_vars = list(discriminator.trainable_variables)
            self._d_grads = tf.function(self._discriminator_gradients, reduce_retracing=True)
            self._d_apply = tf.function(self._apply_d)

    def _apply_g(self, grads):
        self.g_opt.apply_gradients(zip(grads, self.g_vars))

    def _apply_d(self, grads):
        self.d_opt.apply_gradients(zip(grads, self.d_vars))

    @staticmethod
    def _d_in(tonemapped):
        return 2 * tonemapped - 1  # the released code scales images to [-1, 1]

    def _generator_gradients(self, inputs, hdr):
        c = self.config
        target = mu_law_tonemap(hdr, c.mu)
        with tf.GradientTape() as tape:
            fake = self.gen(inputs)
            l1 = tf.reduce_mean(tf.abs(fake - target))
            terms = {"l1": l1}
            loss = l1
            if self.disc is not None:
                adv = hypersphere_generator_loss(self.disc(self._d_in(fake)), c.moments,
                                                 c.per_patch)
                terms["g_adv"] = adv
                loss = loss + c.lambda_adv * adv
            terms["loss"] = loss
        return terms, tape.gradient(loss, self.g_vars)

    def _discriminator_gradients(self, inputs, hdr):
        c = self.config
        fake = tf.stop_gradient(self.gen(inputs))
        real = mu_law_tonemap(hdr, c.mu)
        with tf.GradientTape() as tape:
            mr = sphere_moments(self.disc(self._d_in(real)), c.moments, c.per_patch)
            mf = sphere_moments(self.disc(self._d_in(fake)), c.moments, c.per_patch)
            loss = tf.reduce_sum(mf) - tf.reduce_sum(mr)
        return {"d_loss": loss, "d_real": mr[0], "d_fake": mf[0]}, tape.gradient(loss,
                                                                                 self.d_vars)

    def generator_step(self, inputs, hdr) -> dict[str, float]:
        """One Adam step of the generator; returns the terms before it (``l1``, ``g_adv``,
        ``loss``)."""
        return _checked_step(self._g_grads, self._g_apply, inputs, hdr, "generator")

    def discriminator_step(self, inputs, hdr) -> dict[str, float]:
        """One Adam step of the discriminator; returns ``d_loss`` and the first moments
        ``d_real``/``d_fake`` (mean north-pole distance) before it."""
        if self.disc is None:
            raise HDRGANError("no discriminator: lambda_adv is 0 (L1 only)")
        return _checked_step(self._d_grads, self._d_apply, inputs, hdr, "discriminator")


def _checked_step(grads_fn, apply_fn, inputs, hdr, who: str) -> dict[str, float]:
    """Compute the terms and gradients, refuse a non-finite step (nothing applied), apply."""
    terms, grads = grads_fn(tf.convert_to_tensor(inputs, tf.float32),
                            tf.convert_to_tensor(hdr, tf.float32))
    terms = _floats(terms)
    if not _finite(terms, grads):
        raise FloatingPointError(f"{who}: {terms}")
    apply_fn(grads)
    return terms


def _finite(terms: dict[str, float], grads) -> bool:
    return all(math.isfinite(v) for v in terms.values()) and all(
        bool(tf.reduce_all(tf.math.is_finite(g))) for g in grads if g is not None)


def evaluate(generator: TinyMergeNet, ldrs, hdr, config: HDRGANConfig) -> dict[str, float]:
    """Tonemapped PSNR (mean over images, dB) and tonemapped L1 of the generator's estimate."""
    pred = predict_hdr(generator, ldrs, config.exposures, config.gamma, config.mu)
    pred = np.maximum(pred, 0.0)
    psnrs = tonemapped_psnr(pred, hdr, config.mu)
    return {"psnr_mu": float(np.mean(psnrs)),
            "l1_mu": float(tonemapped_l1(pred, hdr, config.mu)),
            "psnr_mu_per_image": [float(p) for p in psnrs]}


def train_hdr_gan(config: HDRGANConfig | None = None, *, generator: TinyMergeNet | None = None,
                  discriminator: PatchDiscriminator | None = None,
                  callback: Callable | None = None) -> Result:
    """Train a small generator to merge K synthetic exposures into HDR, with HDR-GAN's losses.

    Training data: random ``crop`` crops (flipped at random) of :func:`synthetic_hdr` of the
    photos ``config.train_photos``; each batch's exposures come from :func:`make_exposures`.
    Each iteration takes ``d_steps`` discriminator steps on L_D and one generator step on
    ``tonemapped L1 + lambda_adv * L_adv,G`` (no discriminator when ``lambda_adv`` is 0).
    Before and after, the tonemapped PSNR is measured on the held-out photos, whole.

    Args:
        config: :class:`HDRGANConfig` (defaults when omitted).
        generator, discriminator: networks to train further, in place (fresh seeded ones when
            omitted); pass them to keep the trained weights.
        callback: ``callback(step, terms, generator)`` after every step; return True to stop.

    Returns:
        a :class:`tf_impl.result.Result`: ``image`` the tonemapped estimate T(H_pred) of the
        held-out photos, ``original`` their T(H_gt), ``metrics`` ``psnr_mu_before``,
        ``psnr_mu_after``, ``l1_mu_before``, ``l1_mu_after``, ``history`` per step (``l1``,
        ``g_adv``, ``d_loss``, ``d_real``/``d_fake`` the first moments), ``extra`` the
        exposures (N, K, 3, H, W) shown to the generator and the photos' names. On Ctrl-C or a
        non-finite loss (not applied) it holds what was trained, with ``stopped`` saying why.
    """
    config = config or HDRGANConfig()
    k = len(config.exposures)
    gen = generator or TinyMergeNet(k, config.generator_width, seed=config.seed)
    if gen.exposures != k:
        raise HDRGANError(f"the generator merges {gen.exposures} exposures, the config has "
                          f"{k} exposure times {config.exposures}")
    adversarial = config.lambda_adv > 0
    disc = None
    if adversarial:
        disc = discriminator or PatchDiscriminator(3, config.d_width, seed=config.seed + 1)
    elif discriminator is not None:
        raise HDRGANError("lambda_adv is 0 (L1 only): no discriminator is trained; drop it or "
                          "set lambda_adv > 0")

    train_hdr = synthetic_hdr(load_photos(config.train_photos, config.image_size), config.gamma)
    eval_hdr = synthetic_hdr(load_photos(config.held_out, config.eval_size), config.gamma)
    eval_ldr = make_exposures(eval_hdr, config.exposures, config.gamma, config.quantize_bits)
    sampler = CropSampler(train_hdr, config.crop, config.seed)
    before = evaluate(gen, eval_ldr, eval_hdr, config)
    steps = HDRGANSteps(config, gen, disc)
    history: dict[str, list[float]] = {}
    total = config.optimize.steps
    stopped, message, done = None, "", 0
    from tqdm.auto import tqdm

    def batch():
        hdr = sampler.batch(config.batch_size)
        ldr = make_exposures(hdr, config.exposures, config.gamma, config.quantize_bits)
        return generator_inputs(ldr, config.exposures, config.gamma, config.mu), hdr

    bar = tqdm(total=total, desc="hdr-gan" if adversarial else "hdr-l1",
               disable=not config.optimize.progress, file=sys.stderr, leave=False)
    t0 = time.perf_counter()
    try:
        for step in range(1, total + 1):
            terms: dict[str, float] = {}
            if adversarial:
                for _ in range(config.d_steps):
                    terms.update(steps.discriminator_step(*batch()))
            terms.update(steps.generator_step(*batch()))
            done = step
            for key, v in terms.items():
                history.setdefault(key, []).append(v)
            bar.update(1)
            bar.set_postfix(l1=f"{terms['l1']:.4f}", refresh=False)
            if callback is not None and callback(step, terms, gen):
                stopped, message = "callback", f"stopped by the callback at step {step}"
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
        message = f"interrupted after {done} of {total} steps; the weights trained so far are kept"
    except FloatingPointError as err:
        stopped = "non-finite"
        message = (f"stopped at step {done + 1}: a loss or gradient became NaN/Inf ({err}); "
                   "the update was not applied. Lower the learning rates")
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    after = evaluate(gen, eval_ldr, eval_hdr, config)
    pred = np.maximum(predict_hdr(gen, eval_ldr, config.exposures, config.gamma, config.mu), 0)
    image = np.clip(mu_law_tonemap(pred, config.mu).numpy(), 0, 1)
    return Result(
        technique="hdr_gan",
        image=image,
        best_image=image,
        original=mu_law_tonemap(eval_hdr, config.mu).numpy(),
        history=history,
        config=config.to_dict(),
        metrics={"psnr_mu_before": before["psnr_mu"], "psnr_mu_after": after["psnr_mu"],
                 "l1_mu_before": before["l1_mu"], "l1_mu_after": after["l1_mu"]},
        seconds=seconds,
        steps=done,
        stopped=stopped,
        message=message or f"{done} steps in {seconds:.1f} s",
        extra={"exposures": eval_ldr, "held_out": list(config.held_out),
               "adversarial": adversarial,
               "psnr_mu_per_image": {"before": before["psnr_mu_per_image"],
                                     "after": after["psnr_mu_per_image"]}},
    )


def _floats(terms) -> dict[str, float]:
    return {k: float(v) for k, v in terms.items()}


# -- pictures ---------------------------------------------------------------------------------
def draw_hdr_gan(path, results: dict[str, Result] | Result, *, title: str = "") -> None:
    """One row per held-out photo: the K exposures | each run's tonemapped estimate (with its
    PSNR-mu) | the tonemapped ground truth."""
    from .report import _pyplot, to_uint8

    if isinstance(results, Result):
        results = {"prediction": results}
    first = next(iter(results.values()))
    ldr, gt = first.extra["exposures"], first.original
    n, k = ldr.shape[:2]
    cols = k + len(results) + 1
    plt = _pyplot()
    fig, axes = plt.subplots(n, cols, figsize=(1.9 * cols, 2.2 * n + 0.5), squeeze=False)
    times = first.config.get("exposures", [None] * k)
    for i in range(n):
        panels = [(f"LDR t={t:g}" if t else f"LDR {j + 1}", ldr[i, j]) for j, t in
                  enumerate(times)]
        for name, r in results.items():
            per = r.extra.get("psnr_mu_per_image", {}).get("after")
            cap = f"{name}\n{per[i]:.1f} dB" if per else name
            panels.append((cap, r.image[i]))
        panels.append(("ground truth", gt[i]))
        for ax, (cap, px) in zip(axes[i], panels):
            ax.imshow(to_uint8(px))
            ax.set_title(cap, fontsize=7)
            ax.axis("off")
    fig.suptitle(title or "HDR merge, mu-law tonemapped (mu = 5000)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
