"""The HDR-GAN experiment's settings (one frozen dataclass)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config import TechniqueConfig
from ..optimize import OptimizeConfig
from .checks import HDRGANError, check_moments, check_mu, check_times
from .data import HELD_OUT, TRAIN_PHOTOS
from .losses import GAMMA, MU


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

    error = HDRGANError

    def validate(self) -> None:
        check_mu(self.mu)
        if not (self.gamma > 0 and math.isfinite(self.gamma)):
            raise HDRGANError(f"gamma must be a positive number (2.2 is usual); got {self.gamma}")
        check_times(self.exposures)
        check_moments(self.moments)
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
