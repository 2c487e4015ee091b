"""GradInversion (Yin et al., "See through Gradients", CVPR 2021).

For a batch of N images with labels restored from the FC gradient, G seeds of N images each
are optimised together to minimise (eq. 3-6 of the paper)

    L_grad(x_g) + a_TV R_TV(x_g) + a_l2 ||x_g||^2 + a_BN R_BN(x_g) + a_group ||x_g - E||_2

where L_grad is the distance between the dummy gradient and the shared one, R_BN matches the
batch mean and biased variance at every BatchNorm input to the running statistics, and the
consensus E is the mean of the seeds' images registered onto their pixel mean (refreshed
every ``group_every`` steps and held constant in between: no gradient flows through it).
After each Adam step the Langevin update adds ``lr(t) * alpha_n * N(0, I)`` to the pixels.
The learning rate follows a cosine decay with a linear warm-up.

Paper defaults (ImageNet, ResNet-50): Adam lr 0.1, cosine decay, 50 warm-up iterations,
a_TV 1e-4, a_l2 1e-6, a_BN 0.1, a_group 0.01, alpha_n 0.2, 8 seeds, 20k iterations with
registration refreshed every 100. The paper does not say how its terms are normalised;
:meth:`GradInversionConfig.paper` takes breaching's reading (``seethroughgradients``: the
squared gradient distance x 0.5e-4, mean TV and mean squares, the first BN layer's term x 10)
with the paper's weights, seeds, group term and budget. The defaults (:meth:`~.quick`) keep
the weights on summed terms and shorten the run (600 steps, 4 seeds) for a CPU. Restarts
(``restarts``) repeat the whole run from other starts and keep the best by gradient distance.

Example:
    >>> model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))          # doctest: +SKIP
    >>> x, y = model_zoo.data.cifar10("test", n=4)                            # doctest: +SKIP
    >>> result = grad_inversion(model, client_gradient(model, x, y))          # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from .. import images as imgs
from ..config import TechniqueConfig
from ..optimize import Optimization, OptimizeConfig, learning_rate_at, pixel_box, seeded_noise
from ..priors import AlphaNorm, MeanTotalVariation, TotalVariation
from ..result import Result
from .matching import DISTANCES, GradientMatcher, bn_inputs, bn_prior, safe_norm
from .registration import consensus
from .trials import TrialCheckpoints, attack_inputs, best_of_trials, run_meta
from .victim import GradientInversionError, SharedGradient

PAPER_STEPS = 20_000


@dataclass(frozen=True)
class GradInversionConfig(TechniqueConfig):
    """GradInversion's weights (Yin et al. 2021) with a CPU-sized run.

    Attributes:
        distance: gradient distance, ``"l2"`` (squared) or ``"cosine"``.
        gradient_weight: the gradient distance's weight.
        tv_weight, l2_weight, bn_weight, group_weight: a_TV, a_l2, a_BN, a_group.
        priors: ``"sum"``: a_TV on the summed anisotropic TV (``tf.image.total_variation``)
            and a_l2 on the summed squares; ``"mean"``: a_TV on the mean TV
            (:class:`tf_impl.priors.MeanTotalVariation`) and a_l2 on half the mean square
            (breaching's normalisation).
        bn_first_weight: extra factor on the first BatchNorm layer's statistics term.
        restarts: whole runs from other starts; the best by gradient distance is kept.
        seeds: G, the number of seeds optimised together.
        registration: ``"ecc"`` (affine ECC registration onto the seeds' mean) or ``"none"``
            (plain mean of the seeds).
        group_start, group_every: first step of the group term and its refresh period.
        langevin: alpha_n of the Langevin update (0 turns it off).
        init_std: seeds start from N(0, init_std^2) in the model's input space.
        clip_to_pixels: project onto the valid pixel box after each step.
        seed: seeds the starts and the Langevin noise (shared with the PyTorch reference).
        optimize: Adam lr 0.1, cosine decay with 50 warm-up steps.
    """

    distance: str = "l2"
    gradient_weight: float = 1.0
    tv_weight: float = 1e-4
    l2_weight: float = 1e-6
    bn_weight: float = 0.1
    group_weight: float = 0.01
    priors: str = "sum"
    bn_first_weight: float = 1.0
    restarts: int = 1
    seeds: int = 4
    registration: str = "ecc"
    group_start: int = 100
    group_every: int = 100
    langevin: float = 0.2
    init_std: float = 1.0
    clip_to_pixels: bool = True
    seed: int = 0
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(
        steps=600, optimizer="adam", learning_rate=0.1, schedule="cosine", warmup=50))

    error = GradientInversionError

    def validate(self) -> None:
        if self.distance not in DISTANCES:
            raise self.error(f"distance must be one of {DISTANCES}; got {self.distance!r}")
        if self.registration not in ("ecc", "none"):
            raise self.error(f"registration must be 'ecc' or 'none'; got {self.registration!r}")
        if self.seeds < 1:
            raise self.error(f"seeds must be >= 1; got {self.seeds}")
        if self.group_every < 1:
            raise self.error("group_every must be >= 1")
        if self.priors not in ("sum", "mean"):
            raise self.error(f"priors must be 'sum' or 'mean'; got {self.priors!r}")
        if self.restarts < 1:
            raise self.error(f"restarts must be >= 1; got {self.restarts}")

    # paper(): the paper's weights, 8 seeds and 20,000 iterations (cosine decay, 50 warm-up),
    # normalised as breaching's ``seethroughgradients``.
    # quick(): the defaults, 600 steps, 4 seeds, the weights on summed terms.
    PAPER = {"gradient_weight": 0.5e-4, "priors": "mean", "bn_first_weight": 10.0, "seeds": 8,
             "steps": PAPER_STEPS}



def langevin_noise(config: GradInversionConfig, shape, step: int) -> np.ndarray:
    """The Langevin noise N(0, I) added after ``step`` (0-based), reproducible per step."""
    return seeded_noise(shape, config.seed * 100_003 + 7919 + step)


class GradInversionObjective:
    """Sum over seeds of the GradInversion terms; the consensus is a held constant."""

    def __init__(self, model, shared, labels, config, n, shape):
        model = contract_model(model)
        self.config, self.n, self.g = config, n, config.seeds
        taps = bn_inputs(model) if config.bn_weight else []
        self.model = model
        self.matcher = GradientMatcher(model, shared, config.distance, taps=taps)
        self.labels = tf.constant(labels)
        self.tv = TotalVariation() if config.priors == "sum" else MeanTotalVariation()
        self.l2 = AlphaNorm(2.0)
        self.l2_scale = 1.0 if config.priors == "sum" else 0.5 / float(np.prod(shape) * n)
        self.consensus = tf.Variable(tf.zeros((n, *shape)), trainable=False, name="consensus")
        self.group_on = tf.Variable(0.0, trainable=False, name="group_on")

    def __call__(self, x):
        c = self.config
        parts: dict[str, list] = {"gradient": [], "tv": [], "l2": [], "bn": [], "group": []}
        for g in range(self.g):
            xg = x[g * self.n : (g + 1) * self.n]
            dist, tapped = self.matcher(xg, self.labels)
            parts["gradient"].append(c.gradient_weight * dist)
            if c.tv_weight:
                parts["tv"].append(c.tv_weight * self.tv.value(xg))
            if c.l2_weight:
                parts["l2"].append(c.l2_weight * self.l2_scale * self.l2.value(xg))
            if c.bn_weight:
                parts["bn"].append(c.bn_weight * bn_prior(self.model, tapped,
                                                          c.bn_first_weight))
            if c.group_weight and self.g > 1:
                diff = tf.reshape(xg - self.consensus, [-1])
                parts["group"].append(self.group_on * c.group_weight * safe_norm(diff))
        return {k: tf.add_n(v) for k, v in parts.items() if v}


def grad_inversion(model, shared: SharedGradient, config: GradInversionConfig | None = None, *,
                   labels=None, image_shape=None, preprocessing=None, callback=None,
                   checkpoint=None, resume: bool = False) -> Result:
    """Recover the client's batch with GradInversion.

    Args:
        model: the victim classifier (with BatchNorm layers for the BN prior).
        shared: the client's :class:`SharedGradient`.
        config: :class:`GradInversionConfig` (:meth:`~GradInversionConfig.quick`).
        labels: the batch's labels if known; by default restored from the FC gradient
            (column-wise minimum, or the duplicate-aware rule when the batch is larger than
            the number of classes).
        image_shape: (C, H, W); the model's input shape by default.
        preprocessing: (mean, std); the zoo's record by default.
        callback: ``callback(step, loss, terms, optimization)``.
        checkpoint: a file name; each restart writes ``<stem>-trial<k>.npz`` every
            ``optimize.checkpoint_every`` steps and when it stops.
        resume: continue from those files (refused when written for another model, batch,
            gradient or settings).

    Returns:
        a :class:`Result`: ``image`` is the seed with the lowest final gradient distance
        (pixel space, in recovered order), ``extra["seeds"]`` every seed's images,
        ``extra["consensus"]`` the last consensus, ``extra["labels"]`` the labels used,
        ``extra["gradient_distance"]`` the kept seed's and ``extra["trials"]`` every
        restart's.
    """
    config = config or GradInversionConfig()
    model, shared, y, shape, (mean, std) = attack_inputs(model, shared, labels, image_shape,
                                                         preprocessing, copies=config.seeds)
    n = shared.batch_size
    if config.bn_weight and not model.bn_layers:
        warnings.warn("this model has no BatchNormalization layers (Keras and Caffe exports "
                      "fold them into the convolutions): GradInversion runs without the BN "
                      "prior (bn_weight=0)", stacklevel=2)
        config = dataclasses.replace(config, bn_weight=0.0)
    checkpoints = TrialCheckpoints(checkpoint, resume,
                                   run_meta("gradinversion", model, shared, y, config, shape))
    objective = GradInversionObjective(model, shared, y, config, n, shape)

    def trial(k: int, opt_cfg: OptimizeConfig) -> Result:
        return _one_run(objective, config, k, opt_cfg, n, shape, (mean, std), callback,
                        checkpoints)

    return best_of_trials(trial, config.restarts, config.optimize)


def _one_run(objective, config, trial, opt_cfg, n, shape, preprocessing, callback,
             checkpoints) -> Result:
    """One restart: the G seeds optimised together from the starts of ``trial``."""
    mean, std = preprocessing
    g = config.seeds
    objective.group_on.assign(0.0)
    start = seeded_noise((g * n, *shape), config.seed + 1_000 * trial, config.init_std)
    box = pixel_box(mean, std, channels=shape[0]) if config.clip_to_pixels else None
    lo, hi = (tf.constant(b) for b in box) if box is not None else (None, None)
    info = {"registered": []}

    def langevin(step: int, o) -> None:
        lr = learning_rate_at(opt_cfg, step - 1)
        noise = langevin_noise(config, (g * n, *shape), step - 1 + 1_000_003 * trial)
        x = o.variables["x"]
        x.assign_add(lr * config.langevin * noise)
        if lo is not None:
            x.assign(tf.clip_by_value(x, lo, hi))

    opt = Optimization(objective, start, opt_cfg, box=box,
                       post_step=langevin if config.langevin else None)

    def refresh(step: int) -> None:
        px = imgs.denormalize(opt.value(), mean, std).reshape(g, n, *shape)
        fused, ok = consensus(np.clip(px, 0, 1), register=config.registration == "ecc")
        objective.consensus.assign(imgs.normalize(fused, mean, std))
        objective.group_on.assign(1.0)
        info["registered"].append((step, ok))

    def after_step(step, loss, terms, o):
        if config.group_weight and g > 1 and step >= config.group_start and (
                (step - config.group_start) % config.group_every == 0):
            refresh(step)
        return callback(step, loss, terms, o) if callback is not None else False

    opt.extra_state = {"consensus": objective.consensus, "group_on": objective.group_on}
    run = checkpoints.run(opt, trial, after_step)
    seeds_px = np.clip(imgs.denormalize(run.x, mean, std), 0, 1).reshape(g, n, *shape)
    per_seed = []
    for k in range(g):
        grads, _ = objective.matcher.gradients(tf.constant(run.x[k * n:(k + 1) * n]),
                                               objective.labels)
        per_seed.append(float(objective.matcher.distance_of(grads)))
    best = int(np.argmin(per_seed))
    fused = (consensus(seeds_px, register=config.registration == "ecc")[0] if g > 1
             else seeds_px[0])
    return Result(
        technique="gradinversion",
        image=seeds_px[best],
        best_image=np.clip(imgs.denormalize(run.best, mean, std), 0, 1).reshape(g, n, *shape)[
            best],
        history=run.history,
        config=config.to_dict(),
        seconds=run.seconds,
        steps=run.steps_done,
        stopped=run.stopped,
        message=run.message,
        extra={"labels": objective.labels.numpy().tolist(), "seeds": seeds_px,
               "consensus": fused, "seed_gradient_distance": per_seed, "best_seed": best,
               "gradient_distance": per_seed[best],
               "registration_converged": info["registered"]},
    )
