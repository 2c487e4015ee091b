"""``Optimization``: the one loop that every image optimisation runs (steps, box
projection, history, snapshots, checkpoints, Ctrl-C), and ``optimize`` its one-call form."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from ..loop import run_steps
from ..torch_optimizers import LBFGS, make_optimizer
from .outcome import CheckpointError, NonFiniteLossError, OptimizeResult
from .settings import Objective, OptimizeConfig, learning_rate_at


def _structure(x0) -> tuple[dict[str, Any], bool]:
    if isinstance(x0, Mapping):
        return dict(x0), True
    return {"x": x0}, False


class Optimization:
    """One optimisation in progress: variables, optimizer, compiled step, history.

    Args:
        objective: ``objective(x) -> {term: scalar}``; the total loss is the sum of the terms.
            ``x`` has the structure of ``x0``: a tensor, or a dict of tensors (e.g. an image
            and soft labels, optimised jointly).
        x0: the start (numpy or tensor; or a dict of them).
        config: :class:`OptimizeConfig`.
        box: ``(lo, hi)`` to project onto after each step (broadcastable to ``x``), or a dict
            ``{name: (lo, hi)}`` for dict starts. ``None``: no projection.
        optimizer: an optimizer object to use instead of ``config.optimizer`` (anything with
            ``apply_gradients(grads_and_vars)``, e.g. a Keras optimizer).
        post_step: ``post_step(step, optimization)`` after each applied update (1-based step),
            before checkpoints and callbacks see the iterate: where a technique changes the
            iterate itself (GradInversion's Langevin noise).

    Example (edit the gradients between the two steps):
        >>> import tensorflow as tf
        >>> opt = Optimization(lambda x: {"l2": tf.reduce_sum(x**2)}, tf.ones([2]),
        ...                    OptimizeConfig(progress=False, learning_rate=0.1))
        >>> loss, terms, grads = opt.compute_gradients()
        >>> opt.apply_gradients([g * 0.5 for g in grads])
    """

    def __init__(
        self, objective: Objective, x0, config: OptimizeConfig, *, box=None, optimizer=None,
        post_step: Callable[[int, Optimization], None] | None = None,
    ):
        if not callable(objective):
            raise TypeError("objective must be a callable returning {name: scalar loss}")
        start, self._is_dict = _structure(x0)
        self.config = config
        self.objective = objective
        self.variables: dict[str, tf.Variable] = {}
        for name, value in start.items():
            t = tf.convert_to_tensor(value)
            if not t.dtype.is_floating:
                raise TypeError(f"the start {name!r} must be floating point; got {t.dtype.name}")
            self.variables[name] = tf.Variable(t, name=name, trainable=True)
        self._box = self._parse_box(box)
        self.post_step = post_step
        if optimizer is None:
            kwargs: dict[str, Any] = {}
            if config.optimizer == "adam":
                kwargs = {
                    "beta_1": config.betas[0],
                    "beta_2": config.betas[1],
                    "epsilon": config.epsilon,
                }
            elif config.optimizer == "sgd":
                kwargs = {"momentum": config.momentum}
            else:
                kwargs = {"max_iter": config.lbfgs_max_iter, "history_size": config.lbfgs_history}
            optimizer = make_optimizer(config.optimizer, config.learning_rate, **kwargs)
        self.optimizer = optimizer
        self._lbfgs = isinstance(optimizer, LBFGS)
        self._var_list = list(self.variables.values())
        self._grad_fn = self._compute
        self._step_fn = self._step
        if config.compile:
            self._grad_fn = tf.function(self._compute)
            self._step_fn = tf.function(self._step)
        self.history: dict[str, list[float]] = {}
        # other state a technique keeps between steps (e.g. GradInversion's consensus):
        # saved in checkpoints and restored with the iterate
        self.extra_state: dict[str, tf.Variable] = {}
        self.snapshots: list[tuple[int, Any]] = []
        self.steps_done = 0
        self.best_loss = math.inf
        self.best_step = -1
        self._best = self.value()
        self._last_finite = self.value()

    # -- set-up ---------------------------------------------------------------------------
    def _parse_box(self, box):
        if box is None:
            return {}
        if not self._is_dict:
            box = {"x": box}
        out = {}
        for name, bounds in box.items():
            if name not in self.variables:
                raise ValueError(
                    f"box given for {name!r}, which is not optimised "
                    f"(variables: {sorted(self.variables)})"
                )
            if bounds is None:
                continue
            lo, hi = bounds
            var = self.variables[name]
            out[name] = (
                tf.constant(np.asarray(lo), var.dtype),
                tf.constant(np.asarray(hi), var.dtype),
            )
            if np.any(np.asarray(lo) > np.asarray(hi)):
                raise ValueError(f"box for {name!r} has lo > hi")
        return out

    def _arg(self):
        return dict(self.variables) if self._is_dict else self.variables["x"]

    # -- the two steps --------------------------------------------------------------------
    def _compute(self):
        with tf.GradientTape() as tape:
            terms = self.objective(self._arg())
            if not isinstance(terms, Mapping) or not terms:
                raise TypeError("the objective must return a non-empty dict {name: scalar}")
            loss = tf.add_n([tf.reduce_sum(v) for v in terms.values()])
        grads = tape.gradient(loss, self._var_list)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, self._var_list)]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        finite = tf.logical_and(finite, tf.math.is_finite(loss))
        return loss, dict(terms), grads, finite

    def _apply(self, grads):
        if self.config.signed_gradients:
            grads = [tf.sign(g) for g in grads]
        self.optimizer.apply_gradients(zip(grads, self._var_list))
        for name, (lo, hi) in self._box.items():
            var = self.variables[name]
            var.assign(tf.clip_by_value(var, lo, hi))

    def _step(self, apply):
        """Gradients, then the update when ``apply`` and everything is finite. Scoring the
        final iterate reuses this function (``apply=False``), so it is traced only once."""
        loss, terms, grads, finite = self._compute()
        if self.config.compile:
            tf.cond(tf.logical_and(finite, apply), lambda: self._apply_and_true(grads),
                    lambda: tf.constant(False))
        elif bool(finite) and bool(apply):
            self._apply(grads)
        return loss, terms, finite

    def _apply_and_true(self, grads):
        self._apply(grads)
        return tf.constant(True)

    def compute_gradients(self):
        """Loss, named terms and gradients (one per variable) at the current iterate."""
        loss, terms, grads, _ = self._grad_fn()
        return loss, terms, grads

    def apply_gradients(self, grads) -> None:
        """Apply (possibly edited) gradients with the optimizer, then project onto the box."""
        if self._lbfgs:
            raise TypeError(
                "L-BFGS evaluates the objective itself: use step(), not apply_gradients()"
            )
        if len(grads) != len(self._var_list):
            raise ValueError(
                f"expected {len(self._var_list)} gradients (one per variable "
                f"{list(self.variables)}); got {len(grads)}"
            )
        self._apply([tf.convert_to_tensor(g) for g in grads])

    def step(self) -> tuple[float, dict[str, float]]:
        """One optimizer step; returns the loss and terms *before* the update.

        Raises NonFiniteLossError (and leaves the variables untouched) when the loss or a
        gradient is NaN/Inf.
        """
        before = self.value()
        lr = learning_rate_at(self.config, self.steps_done)
        self.optimizer.learning_rate.assign(lr)
        if self._lbfgs:
            last: dict[str, Any] = {}

            def closure():
                loss, terms, grads, finite = self._grad_fn()
                if not bool(finite):
                    raise NonFiniteLossError(_nan_message(terms))
                last.setdefault("terms", terms)
                return loss, grads

            try:
                loss = self.optimizer.minimize_step(closure, self._var_list)
            except NonFiniteLossError:
                self.set_value(before)
                raise
            terms = last["terms"]
            finite = True
            for name, (lo, hi) in self._box.items():
                var = self.variables[name]
                var.assign(tf.clip_by_value(var, lo, hi))
        else:
            loss, terms, finite = self._step_fn(tf.constant(True))
        loss_f = float(loss)
        terms_f = {k: float(tf.reduce_sum(v)) for k, v in terms.items()}
        if not bool(finite):
            raise NonFiniteLossError(_nan_message(terms_f, loss_f))
        self._record(loss_f, terms_f, lr, before)
        self.steps_done += 1
        if self.post_step is not None:
            self.post_step(self.steps_done, self)
        every = self.config.snapshot_every
        if every and self.steps_done % every == 0:
            self.snapshots.append((self.steps_done, self.value()))
        return loss_f, terms_f

    def _record(self, loss, terms, lr, before):
        self.history.setdefault("loss", []).append(loss)
        for k, v in terms.items():
            self.history.setdefault(k, []).append(v)
        self.history.setdefault("lr", []).append(lr)
        self._last_finite = self.value()
        if loss < self.best_loss:  # the iterate the loss was measured at
            self.best_loss, self.best_step, self._best = loss, self.steps_done, before

    # -- values ---------------------------------------------------------------------------
    def value(self):
        """The current iterate as numpy (same structure as the start)."""
        vals = {k: v.numpy() for k, v in self.variables.items()}
        return vals if self._is_dict else vals["x"]

    def set_value(self, value) -> None:
        vals = value if self._is_dict else {"x": value}
        for k, v in vals.items():
            self.variables[k].assign(v)

    # -- checkpoints ----------------------------------------------------------------------
    def save(self, path, meta: Mapping[str, Any] | None = None) -> None:
        """Write the run's state (iterate, best iterate, optimizer moments, history, step
        count) and ``meta`` to ``path`` (an .npz, replaced atomically)."""
        if self._lbfgs or not hasattr(self.optimizer, "get_state"):
            raise CheckpointError("only the toolkit's Adam and SGD runs can be checkpointed "
                                  "(L-BFGS's curvature history and other optimizers' state "
                                  "are not saved)")
        arrays: dict[str, Any] = {"meta": np.asarray(json.dumps(_plain(meta or {}),
                                                                sort_keys=True))}
        best = self._best if self._is_dict else {"x": self._best}
        for name, var in self.variables.items():
            arrays[f"x/{name}"] = var.numpy()
            arrays[f"best/{name}"] = np.asarray(best[name])
        state = self.optimizer.get_state(self._var_list)
        arrays.update({f"opt/{k}": v for k, v in state.items()})
        arrays.update({f"history/{k}": np.asarray(v) for k, v in self.history.items()})
        arrays.update({f"extra/{k}": v.numpy() for k, v in self.extra_state.items()})
        arrays["counters"] = np.asarray([self.steps_done, self.best_step], np.int64)
        arrays["best_loss"] = np.asarray(self.best_loss, np.float64)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    def restore(self, path, meta: Mapping[str, Any] | None = None) -> int:
        """Continue from a checkpoint written by :meth:`save`; returns its step count.

        Raises :class:`CheckpointError` when the file is missing or unreadable, or was written
        for another problem: its ``meta`` differs from ``meta`` or its shapes from the
        variables'.
        """
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"no checkpoint at {path}; run once with the checkpoint "
                                  "option to write one, or drop --resume")
        try:
            data = dict(np.load(path, allow_pickle=False))
            saved = json.loads(str(data["meta"]))
        except (OSError, ValueError, KeyError) as err:
            raise CheckpointError(f"{path} is not a checkpoint written by this toolkit "
                                  f"({err})") from None
        want = _plain(meta or {})
        wrong = [k for k in sorted(set(saved) | set(want)) if not _same(saved.get(k), want.get(k))]
        if wrong:
            diffs = "; ".join(f"{k}: file {_short(saved.get(k))}, this run "
                              f"{_short(want.get(k))}" for k in wrong)
            raise CheckpointError(f"{path} was written for another run ({diffs}); resume it "
                                  "with the same model, batch and settings, or start afresh "
                                  "without it")
        for name, var in self.variables.items():
            got = data.get(f"x/{name}")
            if got is None or tuple(got.shape) != tuple(var.shape):
                raise CheckpointError(
                    f"{path} holds {name!r} of shape "
                    f"{None if got is None else tuple(got.shape)}, this run "
                    f"{tuple(var.shape)}; it was written for another batch or image size")
        if self._lbfgs:
            raise CheckpointError("L-BFGS runs cannot be resumed; use Adam or SGD")
        for name, var in self.variables.items():
            var.assign(data[f"x/{name}"])
        for name, var in self.extra_state.items():
            if f"extra/{name}" in data:
                var.assign(data[f"extra/{name}"])
        best = {name: data[f"best/{name}"] for name in self.variables}
        self._best = best if self._is_dict else best["x"]
        self.optimizer.set_state(self._var_list, {k[4:]: v for k, v in data.items()
                                                  if k.startswith("opt/")})
        self.history = {k[8:]: [float(v) for v in data[k]] for k in data
                        if k.startswith("history/")}
        self.steps_done, self.best_step = (int(v) for v in data["counters"])
        self.best_loss = float(data["best_loss"])
        self._last_finite = self.value()
        return self.steps_done

    # -- the loop -------------------------------------------------------------------------
    def run(self, steps: int | None = None, callback=None, *, checkpoint=None,
            meta: Mapping[str, Any] | None = None) -> OptimizeResult:
        """Step until ``steps`` (default ``config.steps``) steps are done in all (a restored
        run continues from where it stopped) and return an :class:`OptimizeResult`.

        ``callback(step, loss, terms, optimization)`` runs after each step; returning True
        stops the run. Ctrl-C, NaN/Inf and the ``max_seconds`` budget stop the run too and
        keep what it reached. ``checkpoint``: a path written every ``checkpoint_every`` steps
        and when the run stops, with ``meta`` (what the run is about) for
        :meth:`restore` to check.
        """
        steps = self.config.steps if steps is None else steps

        last: dict[str, Any] = {}

        def one(_k):
            last["loss"], last["terms"] = self.step()
            return last["terms"]

        save = None if checkpoint is None else (lambda _k: self.save(checkpoint, meta))
        each = None if callback is None else (
            lambda k, terms: callback(k, last["loss"], terms, self))
        out = run_steps(one, steps, start=self.steps_done, progress=self.config.progress,
                        postfix=lambda _t: _postfix(last["loss"], last["terms"]),
                        callback=each, max_seconds=self.config.max_seconds,
                        every=self.config.checkpoint_every, on_every=save,
                        kept="keeping the best iterate", log="optimize")
        stopped, message, seconds = out.stopped, out.message, out.seconds
        if self.steps_done and self.history:
            # the final iterate has not been scored yet; score it without stepping
            final_loss = self._score_current()
            if final_loss is not None and final_loss < self.best_loss:
                self.best_loss, self.best_step, self._best = (
                    final_loss,
                    self.steps_done,
                    self.value(),
                )
        if checkpoint is not None and self.steps_done:
            self.save(checkpoint, meta)
        return OptimizeResult(
            x=self._last_finite if stopped == "non-finite" else self.value(),
            best=self._best,
            best_loss=self.best_loss,
            best_step=self.best_step,
            history={k: list(v) for k, v in self.history.items()},
            snapshots=list(self.snapshots),
            steps_done=self.steps_done,
            stopped=stopped,
            message=message,
            seconds=seconds,
        )

    def _score_current(self) -> float | None:
        try:
            if self._lbfgs:
                loss, _, _, finite = self._grad_fn()
            else:
                loss, _, finite = self._step_fn(tf.constant(False))
        except KeyboardInterrupt:
            return None
        return float(loss) if bool(finite) else None


def _same(a, b) -> bool:
    """Two checkpoint meta values agree: equal, with floats to a relative 1e-5 (what the same
    computation differs by across thread counts and devices)."""
    if isinstance(a, float) or isinstance(b, float):
        return (all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (a, b))
                and math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-30))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(u, v) for u, v in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _short(value, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _plain(meta: Mapping[str, Any]) -> dict[str, Any]:
    """``meta`` as JSON values (tuples become lists), so a saved copy compares equal."""
    return json.loads(json.dumps(dict(meta), default=str))


def _nan_message(terms, loss=None) -> str:
    bad = [k for k, v in terms.items() if not np.all(np.isfinite(np.asarray(v)))]
    what = f"terms {bad}" if bad else "a gradient"
    return (
        f"the loss became NaN/Inf ({what}); stopped before applying that update and kept "
        "the last finite iterate and the best one. Lower the learning rate or the weight of "
        "the offending term."
    )


def _postfix(loss: float, terms: dict[str, float]) -> str:
    parts = [f"loss={loss:.4g}"]
    if len(terms) > 1:
        parts += [f"{k}={v:.3g}" for k, v in list(terms.items())[:4]]
    return " ".join(parts)


def optimize(
    objective: Objective,
    x0,
    config: OptimizeConfig | None = None,
    *,
    box=None,
    optimizer=None,
    callback=None,
) -> OptimizeResult:
    """Minimise ``objective`` from ``x0``: the one-call form of :class:`Optimization`."""
    opt = Optimization(objective, x0, config or OptimizeConfig(), box=box, optimizer=optimizer)
    return opt.run(callback=callback)
