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

Modules: :mod:`.losses` (the mu-law tonemapper, the hypersphere loss, input checks), :mod:`.config`
(:class:`HDRGANConfig`), :mod:`.networks` (the PatchGAN discriminator, the tiny merge network),
:mod:`.data` (synthetic HDR scenes and exposures), :mod:`.training` (the GAN loop),
:mod:`.drawing` (the figure).
"""

from .config import HDRGANConfig
from .data import (
    HELD_OUT,
    TRAIN_PHOTOS,
    CropSampler,
    generator_inputs,
    load_photos,
    make_exposures,
    predict_hdr,
    synthetic_hdr,
)
from .drawing import draw_hdr_gan
from .losses import (
    GAMMA,
    MU,
    HDRGANError,
    discriminator_vectors,
    hypersphere_discriminator_loss,
    hypersphere_generator_loss,
    inverse_mu_law,
    inverse_stereographic_projection,
    mu_law_tonemap,
    north_pole_distance,
    sphere_moments,
    tonemapped_l1,
    tonemapped_psnr,
    vector_norm,
)
from .networks import PatchDiscriminator, TinyMergeNet
from .training import HDRGANSteps, held_out_scores, train_hdr_gan

__all__ = [
    "CropSampler",
    "GAMMA",
    "HDRGANConfig",
    "HDRGANError",
    "HDRGANSteps",
    "HELD_OUT",
    "MU",
    "PatchDiscriminator",
    "TRAIN_PHOTOS",
    "TinyMergeNet",
    "discriminator_vectors",
    "draw_hdr_gan",
    "held_out_scores",
    "generator_inputs",
    "hypersphere_discriminator_loss",
    "hypersphere_generator_loss",
    "inverse_mu_law",
    "inverse_stereographic_projection",
    "load_photos",
    "make_exposures",
    "mu_law_tonemap",
    "north_pole_distance",
    "predict_hdr",
    "sphere_moments",
    "synthetic_hdr",
    "tonemapped_l1",
    "tonemapped_psnr",
    "train_hdr_gan",
    "vector_norm",
]
