"""The Gram (style) and feature (content) loss terms on one layer each, composable with
:mod:`tf_impl.priors`."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from ...priors import Objective, Term, TotalVariation
from ..checks import (
    VisualizationError,
)
from ..perceptual import content_loss, style_loss


# -- loss terms ---------------------------------------------------------------------------------
class LayerTerm(Term):
    """A term on one layer's features against a fixed target: subclasses name the comparison
    (``loss``) and what a target from another model or image size looks like (``check``)."""

    prefix = "layer"

    def __init__(self, model, layer: str, target, *, name: str | None = None):
        model = contract_model(model)
        self.model, self.layer = model, layer
        self.target = tf.constant(np.asarray(target), tf.float32)
        self.name = name or f"{self.prefix}:{layer}"

    def layers(self):
        return (self.layer,)

    def value(self, x, features):
        f = tf.cast(features[self.layer], tf.float32)
        self.check(f)
        return self.loss({self.layer: f}, {self.layer: self.target})


class GramTerm(LayerTerm):
    """S_l(x) = mean_ij (G_l(x) - G_l(style))^2 for one layer (:func:`perceptual.style_loss`);
    the target is the style image's Gram matrix.

    Composes with the terms of :mod:`tf_impl.priors` (``beta * GramTerm(...) + ...``); an
    :class:`~tf_impl.priors.Objective` runs the model once per evaluation with every layer its
    terms read.
    """

    prefix = "style"
    loss = staticmethod(style_loss)

    def check(self, f) -> None:
        if f.shape[1] != self.target.shape[-1]:
            raise VisualizationError(
                f"layer {self.layer!r} has {f.shape[1]} channels but its target Gram matrix "
                f"is {tuple(self.target.shape)}: the target came from another model")


class ContentTerm(LayerTerm):
    """P_l(x) = mean (F_l(x) - F_l(content))^2 for one layer (:func:`perceptual.content_loss`)."""

    prefix = "content"
    loss = staticmethod(content_loss)

    def check(self, f) -> None:
        if f.shape != self.target.shape:
            raise VisualizationError(
                f"layer {self.layer!r} gives shape {tuple(f.shape)} but the content target "
                f"has {tuple(self.target.shape)}: the image must have the content's size")


def build_objective(
    model,
    grams: Mapping[str, np.ndarray],
    style_weights: Mapping[str, float],
    style_weight: float,
    *,
    contents: Mapping[str, np.ndarray] | None = None,
    content_weight: float = 1.0,
    tv_weight: float = 0.0,
    tv_beta: float | None = 2.0,
) -> Objective:
    """``alpha * sum P_l + beta * sum_l w_l S_l + lambda_TV * TV`` as one
    :class:`~tf_impl.priors.Objective` (one forward with all the layers per evaluation); the
    history records each layer's weighted term (``style:<layer>``, ``content:<layer>``,
    ``tv``)."""
    model = contract_model(model)
    parts = [(style_weight * style_weights[k], GramTerm(model, k, g)) for k, g in grams.items()]
    for k, t in (contents or {}).items():
        parts.append((content_weight, ContentTerm(model, k, t)))
    if tv_weight:
        parts.append((tv_weight, TotalVariation(tv_beta, normalize=True)))
    return Objective(parts)
