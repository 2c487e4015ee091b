"""The loop's settings (``OptimizeConfig``: optimiser, schedule, stops, snapshots), the
learning-rate schedule, the valid pixel box and seeded noise."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from ..config import TechniqueConfig

Objective = Callable[[Any], Mapping[str, tf.Tensor]]

_SCHEDULES = ("constant", "step", "cosine")


@dataclass(frozen=True)
class OptimizeConfig(TechniqueConfig):
    """Settings of the shared loop; each technique's config carries one of these.

    Attributes:
        steps: number of optimizer steps (for L-BFGS: outer steps of ``max_iter`` iterations).
        optimizer: ``"adam"``, ``"sgd"`` or ``"lbfgs"`` (PyTorch's update rules, see
            :mod:`tf_impl.torch_optimizers`).
        learning_rate: base learning rate.
        betas, epsilon: Adam's moment decays and epsilon (PyTorch's defaults).
        momentum: SGD momentum.
        lbfgs_max_iter, lbfgs_history: L-BFGS iterations per step and history size.
        schedule: ``"constant"``, ``"step"`` (x ``gamma`` at each fraction in ``milestones``,
            as Geiping et al. 2020) or ``"cosine"`` (to 0, after ``warmup`` linear steps, as
            GradInversion).
        milestones, gamma: the step schedule.
        warmup: linear warm-up steps (cosine and step schedules).
        signed_gradients: step along ``sign(gradient)`` (Geiping et al. 2020).
        snapshot_every: keep a copy of the iterate every N steps (0: never).
        compile: run the step inside ``tf.function``.
        progress: show a progress bar (tqdm, on stderr) with the current loss.
        max_seconds: wall-clock budget of the loop; when spent the run stops early and keeps
            the best iterate (``stopped == "time budget"``). ``None``: no budget.
        checkpoint_every: with ``run(checkpoint=path)``, write the checkpoint every N steps.
    """

    steps: int = 200
    optimizer: str = "adam"
    learning_rate: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    epsilon: float = 1e-8
    momentum: float = 0.0
    lbfgs_max_iter: int = 20
    lbfgs_history: int = 100
    schedule: str = "constant"
    milestones: tuple[float, ...] = (3 / 8, 5 / 8, 7 / 8)
    gamma: float = 0.1
    warmup: int = 0
    signed_gradients: bool = False
    snapshot_every: int = 0
    compile: bool = True
    progress: bool = True
    max_seconds: float | None = None
    checkpoint_every: int = 500

    def validate(self) -> None:
        if self.steps < 0:
            raise self.error(f"steps must be >= 0; got {self.steps}")
        if self.optimizer not in ("adam", "sgd", "lbfgs"):
            raise self.error(f"optimizer must be 'adam', 'sgd' or 'lbfgs'; got {self.optimizer!r}")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise self.error(f"learning_rate must be a positive number; got {self.learning_rate}")
        if self.schedule not in _SCHEDULES:
            raise self.error(f"schedule must be one of {_SCHEDULES}; got {self.schedule!r}")
        if self.snapshot_every < 0:
            raise self.error("snapshot_every must be >= 0 (0 turns snapshots off)")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise self.error(f"max_seconds must be > 0 (or None for no budget); got "
                             f"{self.max_seconds}")
        if self.checkpoint_every < 1:
            raise self.error(f"checkpoint_every must be >= 1; got {self.checkpoint_every}")


def learning_rate_at(config: OptimizeConfig, step: int) -> float:
    """The scheduled learning rate for 0-based ``step``."""
    lr, n = config.learning_rate, max(config.steps, 1)
    if config.warmup and step < config.warmup:
        return lr * (step + 1) / config.warmup
    if config.schedule == "step":
        return lr * config.gamma ** sum(step >= int(m * n) for m in config.milestones)
    if config.schedule == "cosine":
        span = max(n - config.warmup, 1)
        return lr * 0.5 * (1 + math.cos(math.pi * (step - config.warmup) / span))
    return lr


def seeded_noise(shape, seed: int = 0, scale: float = 1.0, dtype=np.float32) -> np.ndarray:
    """Gaussian noise from numpy's PCG64 with ``seed``: the same start for TF and PyTorch."""
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def pixel_box(mean, std, value_range=(0.0, 1.0), channels: int | None = None):
    """Per-channel bounds (lo, hi), shaped (1, C, 1, 1), of valid pixels in normalised space.

    An image normalised as ``(pixel - mean) / std`` stays a valid image when each channel lies
    in ``[(lo - mean) / std, (hi - mean) / std]``.
    """
    mean = np.asarray(mean, np.float32).reshape(-1)
    std = np.asarray(std, np.float32).reshape(-1)
    if channels is not None and mean.size == 1:
        mean, std = np.repeat(mean, channels), np.repeat(std, channels)
    lo = ((value_range[0] - mean) / std).reshape(1, -1, 1, 1)
    hi = ((value_range[1] - mean) / std).reshape(1, -1, 1, 1)
    return lo.astype(np.float32), hi.astype(np.float32)
