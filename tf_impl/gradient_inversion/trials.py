"""Restarts, checkpoints and time budgets shared by the optimisation-based attacks.

Inverting Gradients and GradInversion run several *trials* (restarts from different random
starts) and keep the one whose reconstruction matches the shared gradient best (Geiping et
al. 2020; breaching's ``restarts.scoring``). A long run writes a checkpoint per trial
(``<stem>-trial<k>.npz``) and can be resumed from it; the checkpoint records what the run is
about (:func:`run_meta`: the model's weights, the shared gradient, the labels, the batch and
the technique's settings), so a file from another model, batch or configuration is refused.
Ctrl-C during a trial ends that trial with what it reached and starts no further trial.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from converters.onnx_to_tf import contract_model

from .. import images as imgs
from ..optimize import CheckpointError, Optimization, OptimizeConfig, OptimizeResult
from ..result import Result

# settings that do not change what a run computes: a resumed run may change them
_FREE = ("progress", "compile", "max_seconds", "checkpoint_every", "snapshot_every")


def attack_inputs(model, shared, labels, image_shape, preprocessing, *, copies: int = 1):
    """What an optimisation attack starts from: the checked model and shared gradient, the
    labels (given, or restored from the FC gradient: column-wise minimum, or the
    duplicate-aware rule when the batch is larger than the number of classes), the image
    shape (C, H, W) and the preprocessing (mean, std). First refuses a batch (of ``copies``
    optimised together) that would not fit in memory (:mod:`.preflight`)."""
    from . import labels as label_rules
    from .preflight import check_batch_memory
    from .victim import check_gradient, check_labels, fc_layer, image_shape_of

    model = contract_model(model)
    shared = check_gradient(model, shared)
    check_batch_memory(model, shared.batch_size, image_shape_of(model, image_shape),
                       copies=copies)
    if labels is None:
        y = np.asarray(label_rules.restore_labels(model, shared), np.int64)
    else:
        y = check_labels(labels, shared.batch_size, fc_layer(model).num_classes)
    shape = image_shape_of(model, image_shape)
    return model, shared, y, shape, preprocessing or imgs.preprocessing_of(model)


def _digest(arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a, np.float32))
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _fingerprint(arrays) -> list[list[float]]:
    """Per array: its L2 norm and the sum of its magnitudes (float64, 7 digits). The same
    gradient computed with other thread counts or on another device differs in round-off
    only, which :meth:`Optimization.restore` tolerates; another gradient does not match."""
    out = []
    for a in arrays:
        a = np.asarray(a, np.float64)
        out.append([float(f"{np.sqrt(np.sum(a * a)):.7g}"), float(f"{np.sum(np.abs(a)):.7g}")])
    return out


def run_meta(technique: str, model, shared, labels, config, image_shape) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed: the technique, the model's weights, the
    shared gradient, the labels, the image shape and the settings (bar the ones in
    ``_FREE``, and ``restarts``: each trial's file stands on its own, so a run asked for more
    restarts resumes the trials already finished and runs only the new ones)."""
    model = contract_model(model)
    weights = [v.numpy() for _, v in sorted(model.onnx_variables.items())]
    settings = config.to_dict()
    settings.pop("restarts", None)
    for key in _FREE:
        settings.get("optimize", {}).pop(key, None)
    return {"technique": technique, "model": _digest(weights),
            "shared_gradient": _fingerprint(shared.grads[k] for k in sorted(shared.grads)),
            "batch": int(shared.batch_size), "bn_mode": shared.bn_mode,
            "labels": np.asarray(labels).tolist(), "image_shape": list(image_shape),
            "settings": settings}


def trial_path(checkpoint, trial: int) -> Path | None:
    """The checkpoint file of ``trial`` for the checkpoint name ``checkpoint``."""
    if checkpoint is None:
        return None
    p = Path(checkpoint)
    stem = p.name[:-4] if p.name.endswith(".npz") else p.name
    return p.with_name(f"{stem}-trial{trial}.npz")


class TrialCheckpoints:
    """Where the trials of one attack write their checkpoints and whether they resume.

    ``checkpoint``: a file name (``None``: no checkpoints); ``meta``: :func:`run_meta` of the
    attack, which every file records and a resumed run must match.
    """

    def __init__(self, checkpoint, resume: bool, meta: dict[str, Any]):
        if resume and checkpoint is None:
            raise CheckpointError("resume=True needs checkpoint= (the file name the run wrote)")
        self.checkpoint, self.resume, self.meta = checkpoint, resume, meta

    def run(self, opt: Optimization, trial: int, callback=None) -> OptimizeResult:
        """Run ``opt`` as trial ``trial``: restored from its file first when resuming (trial 0
        must have one; a later trial without one had not started), checkpointed as it goes."""
        path = trial_path(self.checkpoint, trial)
        meta = {**self.meta, "trial": trial}
        if self.resume and (trial == 0 or path.is_file()):
            opt.restore(path, meta)
        return opt.run(callback=callback, checkpoint=path, meta=meta)


def best_of_trials(run_trial: Callable[[int, OptimizeConfig], Result], restarts: int,
                   optimize: OptimizeConfig) -> Result:
    """Run ``run_trial(k, optimize_k)`` for k = 0 .. restarts - 1 and return the trial with
    the lowest ``extra["gradient_distance"]``, with every trial's distance in
    ``extra["trials"]``. ``optimize.max_seconds`` is the time budget of all trials together:
    ``optimize_k`` is ``optimize`` with ``max_seconds`` set to what remains of it when trial k
    starts (``None``: no budget).

    A trial stopped by Ctrl-C or the time budget ends the sequence (no further trial starts);
    the best of the trials run so far is returned with that trial's ``stopped`` and
    ``message``.
    """
    results: list[Result] = []
    budget = optimize.max_seconds
    t0 = time.perf_counter()
    for k in range(restarts):
        left = None if budget is None else budget - (time.perf_counter() - t0)
        if left is not None and left <= 0 and results:
            results[-1].stopped = "time budget"
            results[-1].message = f"the time budget ({budget:.0f} s) ran out before trial {k + 1}"
            break
        r = run_trial(k, optimize if left is None
                      else dataclasses.replace(optimize, max_seconds=left))
        results.append(r)
        if restarts > 1:
            print(f"trial {k + 1}/{restarts}: gradient distance "
                  f"{r.extra['gradient_distance']:.4g}", file=sys.stderr)
        if r.stopped in ("interrupted", "time budget"):
            break
    distances = [r.extra["gradient_distance"] for r in results]
    k_best = int(np.nanargmin(distances)) if np.isfinite(distances).any() else 0
    best, last = results[k_best], results[-1]
    best.extra["trials"] = distances
    best.extra["best_trial"] = k_best
    if last.stopped and last is not best:
        best.stopped = last.stopped
        best.message = f"{last.message} (trial {len(results)} of {restarts})"
    best.seconds = float(sum(r.seconds for r in results))
    return best
