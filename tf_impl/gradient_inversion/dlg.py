"""DLG and its variants: recover images (and labels) by matching the shared gradient.

- DLG (Zhu et al., "Deep Leakage from Gradients", NeurIPS 2019): dummy images and dummy soft
  labels start from N(0, 1) and are optimised jointly with L-BFGS (lr 1) for 300 iterations to
  minimise the squared L2 distance between the dummy gradient and the shared one.
- iDLG (Zhao et al. 2020): the same with the label restored analytically first
  (``labels="restore"``), so only the images are optimised.

Inverting Gradients (Geiping et al. 2020), the cosine-distance successor, is in
:mod:`.inverting_gradients`.

Example:
    >>> model = onnx_to_tf.load(model_zoo.load("lenet_dlg"))                 # doctest: +SKIP
    >>> x, y = model_zoo.data.cifar10("test", n=1, normalize=False)          # doctest: +SKIP
    >>> result = dlg(model, client_gradient(model, x, y))                     # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from .. import images as imgs
from ..config import TechniqueConfig
from ..optimize import Optimization, OptimizeConfig, pixel_box, seeded_noise
from ..priors import TotalVariation
from ..result import Result
from .matching import DISTANCES, GradientMatcher
from .preflight import check_batch_memory
from .victim import (
    GradientInversionError,
    SharedGradient,
    check_gradient,
    check_labels,
    fc_layer,
    image_shape_of,
)


@dataclass(frozen=True)
class DLGConfig(TechniqueConfig):
    """DLG's defaults (Zhu et al. 2019): L-BFGS lr 1, 300 iterations, squared L2, soft labels.

    Attributes:
        distance: ``"l2"`` (DLG) or ``"cosine"`` (Geiping et al. 2020).
        labels: ``"soft"`` (optimised jointly, DLG), ``"restore"`` (iDLG / column-wise
            minimum, then fixed) or ``"given"`` (pass ``labels=`` to :func:`dlg`).
        tv_weight: weight of the TV prior (mean TV^2 per pixel value; 0 in DLG).
        init_std: the dummy images' start, N(0, init_std^2) in the model's input space.
        clip_to_pixels: project onto the valid pixel box after each step (not in DLG).
        seed: seeds the dummy images and labels (shared with the PyTorch reference).
        optimize: the loop's settings: L-BFGS with PyTorch's defaults (max_iter 20).
    """

    distance: str = "l2"
    labels: str = "soft"
    tv_weight: float = 0.0
    init_std: float = 1.0
    clip_to_pixels: bool = False
    seed: int = 0
    optimize: OptimizeConfig = field(default_factory=lambda: OptimizeConfig(
        steps=300, optimizer="lbfgs", learning_rate=1.0))

    error = GradientInversionError

    def validate(self) -> None:
        if self.distance not in DISTANCES:
            raise self.error(f"distance must be one of {DISTANCES}; got {self.distance!r}")
        if self.labels not in ("soft", "restore", "given"):
            raise self.error(f"labels must be 'soft', 'restore' or 'given'; got {self.labels!r}")



def idlg_config() -> DLGConfig:
    """iDLG (Zhao et al. 2020): DLG with the label restored analytically."""
    return DLGConfig(labels="restore")


def _labels_for(model, shared, config, labels):
    model = contract_model(model)
    if config.labels == "given":
        if labels is None:
            raise GradientInversionError("labels='given' needs labels=[...] (one per image)")
        return check_labels(labels, shared.batch_size, fc_layer(model).num_classes)
    if config.labels == "restore":
        from . import labels as label_rules

        return np.asarray(label_rules.restore_labels(model, shared), np.int64)
    return None


def dlg(model, shared: SharedGradient, config: DLGConfig | None = None, *, labels=None,
        image_shape=None, preprocessing=None, callback=None) -> Result:
    """Recover the client's batch from its shared gradient with DLG (or a variant).

    Args:
        model: the victim (a :class:`converters.onnx_to_tf.TFModel` classifier).
        shared: the client's :class:`SharedGradient` (see :func:`client_gradient`).
        config: :class:`DLGConfig` (DLG's defaults when omitted; see also
            :func:`idlg_config`).
        labels: the labels, when ``config.labels == "given"``.
        image_shape: (C, H, W) of one image; the model's input shape by default.
        preprocessing: (mean, std); the zoo's record by default.
        callback: ``callback(step, loss, terms, optimization)``.

    Returns:
        a :class:`Result` with ``image`` (pixel space, unordered as recovered) and
        ``extra["labels"]`` (argmax of the soft labels, or the restored/given labels).
    """
    model = contract_model(model)
    config = config or DLGConfig()
    shared = check_gradient(model, shared)
    fc = fc_layer(model)
    shape = image_shape_of(model, image_shape)
    n = shared.batch_size
    check_batch_memory(model, n, shape)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    fixed = _labels_for(model, shared, config, labels)
    start = {"x": seeded_noise((n, *shape), config.seed, config.init_std)}
    if fixed is None:
        start["y"] = seeded_noise((n, fc.num_classes), config.seed + 1)
    matcher = GradientMatcher(model, shared, config.distance)
    tv = TotalVariation(2.0, normalize=True) if config.tv_weight else None
    fixed_t = None if fixed is None else tf.constant(fixed)

    def objective(v):
        y = v["y"] if fixed_t is None else fixed_t
        dist, _ = matcher(v["x"], y)
        terms = {"gradient": dist}
        if tv is not None:
            terms["tv"] = config.tv_weight * tv.value(v["x"])
        return terms

    box = {"x": pixel_box(mean, std, channels=shape[0])} if config.clip_to_pixels else None
    opt = Optimization(objective, start, config.optimize, box=box)
    run = opt.run(callback=callback)
    final = run.x
    rec = np.clip(imgs.denormalize(final["x"], mean, std), 0, 1)
    best = np.clip(imgs.denormalize(run.best["x"], mean, std), 0, 1)
    recovered = fixed if fixed is not None else np.argmax(final["y"], axis=1)
    return Result(
        technique="dlg",
        image=rec, best_image=best, history=run.history, config=config.to_dict(),
        seconds=run.seconds, steps=run.steps_done, stopped=run.stopped, message=run.message,
        snapshots=[(s, np.clip(imgs.denormalize(v["x"], mean, std), 0, 1))
                   for s, v in run.snapshots],
        extra={"labels": np.asarray(recovered).tolist(), "best_loss": run.best_loss},
    )
