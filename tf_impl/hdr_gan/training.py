"""Training the merge network against the hypersphere discriminator."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from ..loop import run_steps
from ..result import Result
from ..torch_optimizers import Adam
from .config import HDRGANConfig
from .data import (
    CropSampler,
    generator_inputs,
    load_photos,
    make_exposures,
    predict_hdr,
    synthetic_hdr,
)
from .losses import (
    HDRGANError,
    hypersphere_generator_loss,
    mu_law_tonemap,
    sphere_moments,
    tonemapped_l1,
    tonemapped_psnr,
)
from .networks import PatchDiscriminator, TinyMergeNet


class HDRGANSteps:
    """One generator step and one discriminator step of HDR-GAN, compiled (``tf.function``).

    ``discriminator_step`` minimises L_D on tonemapped real and fake images (scaled to
    [-1, 1] as in the released code); ``generator_step`` minimises the tonemapped L1 plus
    ``lambda_adv`` * L_adv,G (only the L1 when there is no discriminator). Each computes the
    gradients, checks that the loss and the gradients are finite (else raises
    ``FloatingPointError`` and applies nothing), then applies Adam (PyTorch's arithmetic,
    :class:`tf_impl.torch_optimizers.Adam`). Inputs: ``generator_inputs(...)`` and the HDR target.

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


def held_out_scores(generator: TinyMergeNet, ldrs, hdr, config: HDRGANConfig) -> dict[str, float]:
    """Tonemapped PSNR (mean over images, dB) and tonemapped L1 of the generator's estimate."""
    pred = predict_hdr(generator, ldrs, config.exposures, config.gamma, config.mu)
    pred = np.maximum(pred, 0.0)
    psnrs = tonemapped_psnr(pred, hdr, config.mu)
    return {"psnr_mu": float(np.mean(psnrs)),
            "l1_mu": float(tonemapped_l1(pred, hdr, config.mu)),
            "psnr_mu_per_image": [float(p) for p in psnrs]}


def _networks(config: HDRGANConfig, generator, discriminator):
    """(generator, discriminator or None): the given ones checked, else fresh seeded ones."""
    k = len(config.exposures)
    gen = generator or TinyMergeNet(k, config.generator_width, seed=config.seed)
    if gen.exposures != k:
        raise HDRGANError(f"the generator merges {gen.exposures} exposures, the config has "
                          f"{k} exposure times {config.exposures}")
    if config.lambda_adv > 0:
        return gen, discriminator or PatchDiscriminator(3, config.d_width, seed=config.seed + 1)
    if discriminator is not None:
        raise HDRGANError("lambda_adv is 0 (L1 only): no discriminator is trained; drop it or "
                          "set lambda_adv > 0")
    return gen, None


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
    gen, disc = _networks(config, generator, discriminator)
    adversarial = disc is not None
    train_hdr = synthetic_hdr(load_photos(config.train_photos, config.image_size), config.gamma)
    eval_hdr = synthetic_hdr(load_photos(config.held_out, config.eval_size), config.gamma)
    eval_ldr = make_exposures(eval_hdr, config.exposures, config.gamma, config.quantize_bits)
    sampler = CropSampler(train_hdr, config.crop, config.seed)
    before = held_out_scores(gen, eval_ldr, eval_hdr, config)
    steps = HDRGANSteps(config, gen, disc)
    history: dict[str, list[float]] = {}
    total = config.optimize.steps

    def batch():
        hdr = sampler.batch(config.batch_size)
        ldr = make_exposures(hdr, config.exposures, config.gamma, config.quantize_bits)
        return generator_inputs(ldr, config.exposures, config.gamma, config.mu), hdr

    def one(step: int) -> dict[str, float]:
        terms: dict[str, float] = {}
        try:
            if adversarial:
                for _ in range(config.d_steps):
                    terms.update(steps.discriminator_step(*batch()))
            terms.update(steps.generator_step(*batch()))
        except FloatingPointError as err:
            raise FloatingPointError(
                f"stopped at step {step}: a loss or gradient became NaN/Inf ({err}); the "
                "update was not applied. Lower the learning rates") from err
        for key, v in terms.items():
            history.setdefault(key, []).append(v)
        return terms

    out = run_steps(one, total, desc="hdr-gan" if adversarial else "hdr-l1",
                    progress=config.optimize.progress, postfix=lambda t: f"l1={t['l1']:.4f}",
                    callback=None if callback is None else (lambda k, t: callback(k, t, gen)),
                    kept="the weights trained so far are kept")
    return _result(config, gen, eval_ldr, eval_hdr, before, history, out, adversarial)


def _result(config: HDRGANConfig, gen, eval_ldr, eval_hdr, before, history, out,
            adversarial: bool) -> Result:
    """The run's record: the held-out photos merged by the trained generator, scores before
    and after, the history."""
    done, stopped, message, seconds = out.steps_done, out.stopped, out.message, out.seconds
    after = held_out_scores(gen, eval_ldr, eval_hdr, config)
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
