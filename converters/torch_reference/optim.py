"""The optimisation pieces every PyTorch reference shares: configs read as plain data, the
optimizer and the learning-rate schedule of ``tf_impl.optimize``."""

from __future__ import annotations

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import math
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import torch


def as_config(config) -> Any:
    """A technique config, or the dict its ``to_dict()`` gives, read by attribute."""
    if isinstance(config, Mapping):
        cfg = SimpleNamespace(**config)
        if isinstance(cfg.optimize, Mapping):
            cfg.optimize = SimpleNamespace(**cfg.optimize)
        return cfg
    return config


def make_optimizer(params, opt) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimizer an ``OptimizeConfig`` names."""
    if opt.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=opt.learning_rate, betas=tuple(opt.betas), eps=opt.epsilon
        )
    if opt.optimizer == "sgd":
        return torch.optim.SGD(params, lr=opt.learning_rate, momentum=opt.momentum)
    if opt.optimizer == "lbfgs":
        return torch.optim.LBFGS(
            params,
            lr=opt.learning_rate,
            max_iter=opt.lbfgs_max_iter,
            history_size=opt.lbfgs_history,
        )
    raise ValueError(f"unknown optimizer {opt.optimizer!r}")


def learning_rate_at(config, step: int) -> float:
    """``tf_impl.optimize.learning_rate_at`` transcribed: the learning rate of 0-based ``step``
    (linear warm-up, then step decay at the milestones, cosine decay, or constant)."""
    lr, n, warm = config.learning_rate, max(config.steps, 1), config.warmup
    if warm and step < warm:
        return lr * (step + 1) / warm
    decay = {
        "step": lambda: config.gamma ** sum(step >= int(m * n) for m in config.milestones),
        "cosine": lambda: 0.5 * (1 + math.cos(math.pi * (step - warm) / max(n - warm, 1))),
    }
    return lr * decay.get(config.schedule, lambda: 1.0)()
