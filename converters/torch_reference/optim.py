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


class _NonFinite(FloatingPointError):
    pass


def run_loop(x: torch.Tensor, objective, opt, *, box=None, pixels=None) -> dict:
    """``tf_impl.optimize.Optimization.run`` in PyTorch: ``opt.steps`` steps of the optimizer
    ``opt`` names on the leaf ``x`` (in place), the scheduled learning rate, signed gradients
    when asked, a stop (keeping the last finite iterate) at a non-finite loss or gradient, and
    the projection onto ``box`` = (lo, hi) after each step.

    Returns ``{"history": {"loss", each term, "lr": [...]}, "snapshots": [(step, pixels(x))]
    every ``opt.snapshot_every`` steps, "steps": steps done, "stopped": None or
    "non-finite"}``; the history holds the values *before* each step's update.
    """
    optimizer = make_optimizer([x], opt)
    history: dict[str, list[float]] = {}
    snapshots: list[tuple[int, Any]] = []
    every = getattr(opt, "snapshot_every", 0)
    stopped, steps_done = None, 0

    def evaluate():
        optimizer.zero_grad()
        terms = objective(x)
        loss = sum(terms.values())
        loss.backward()
        if opt.signed_gradients:
            x.grad.sign_()
        if not (bool(torch.isfinite(loss)) and bool(torch.isfinite(x.grad).all())):
            raise _NonFinite
        return loss, terms

    first: dict[str, Any] = {}  # L-BFGS: the loss and terms of a step's first evaluation

    def closure():
        loss, terms = evaluate()
        first.setdefault("terms", terms)
        first.setdefault("loss", loss)
        return loss

    for step in range(opt.steps):
        lr = learning_rate_at(opt, step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        before = x.detach().clone()
        try:
            if isinstance(optimizer, torch.optim.LBFGS):
                first.clear()
                optimizer.step(closure)
                loss, terms = first["loss"], first["terms"]
            else:
                loss, terms = evaluate()
                optimizer.step()
        except _NonFinite:
            with torch.no_grad():
                x.copy_(before)
            stopped = "non-finite"
            break
        if box is not None:
            with torch.no_grad():
                x.copy_(torch.clamp(x, *box))
        for name, value in {"loss": loss, **terms}.items():
            history.setdefault(name, []).append(float(value.detach()))
        history.setdefault("lr", []).append(lr)
        steps_done += 1
        if every and pixels is not None and steps_done % every == 0:
            snapshots.append((steps_done, pixels(x.detach().numpy())))
    return {"history": history, "snapshots": snapshots, "steps": steps_done, "stopped": stopped}
