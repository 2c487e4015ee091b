"""Loss terms that compose: image priors and the feature-matching data term.

A term is a small value with a name; terms compose with ``+`` and scalar ``*`` into an
:class:`Objective`, which evaluates every term on an image batch (NCHW, the model's normalised
input space) and returns ``{name: weighted value}``, what :mod:`tf_impl.optimize` minimises
and records term by term. Terms that need a model's activations declare the layers; the
objective runs each model once per evaluation with all the layers its terms need.

Example (Mahendran & Vedaldi 2015, eq. 1, with TV^beta and an alpha-norm):
    >>> from tf_impl.priors import FeatureMatch, TotalVariation, AlphaNorm
    >>> objective = (FeatureMatch(model, {"conv3_1": target})           # doctest: +SKIP
    ...              + 1e-4 * TotalVariation(beta=2) + 1e-6 * AlphaNorm(6))

Terms:
    :class:`TotalVariation` -- ``tf.image.total_variation`` (anisotropic, beta=None) or
        TV^beta = sum ((dx)^2 + (dy)^2)^(beta/2) (Mahendran & Vedaldi 2015, eq. 5).
    :class:`MeanTotalVariation` -- mean of |dx| + |dy| over images, channels and pixels
        (breaching's TV, used by its gradient-inversion attacks).
    :class:`AlphaNorm` -- ||x||_alpha^alpha (Mahendran & Vedaldi 2015, eq. 4); ``L2`` is alpha 2.
    :class:`FeatureMatch` -- sum over layers of w_l ||phi_l(x) - phi_l0||^2 / ||phi_l0||^2
        (Mahendran & Vedaldi 2015, eq. 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model


class Term:
    """One named scalar loss. Subclasses implement :meth:`value`; models declare layers."""

    name: str = "term"
    model = None

    def layers(self) -> tuple[str, ...]:
        """Layers (taps) of ``self.model`` this term reads; none for pixel priors."""
        return ()

    def value(self, x: tf.Tensor, features: Mapping[str, tf.Tensor] | None) -> tf.Tensor:
        raise NotImplementedError

    # composition ------------------------------------------------------------------------
    def _parts(self) -> list[tuple[float, Term]]:
        return [(1.0, self)]

    def __add__(self, other: Term) -> Objective:
        if not isinstance(other, Term):
            return NotImplemented
        return Objective(self._parts() + other._parts())

    def __radd__(self, other):
        if other == 0:  # sum([...]) starts from 0
            return Objective(self._parts())
        return NotImplemented

    def __mul__(self, weight: float) -> Objective:
        if not isinstance(weight, Real) or isinstance(weight, bool):
            return NotImplemented
        return Objective([(float(weight) * w, t) for w, t in self._parts()])

    __rmul__ = __mul__

    def __call__(self, x) -> dict[str, tf.Tensor]:
        return Objective(self._parts())(x)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class Objective(Term):
    """A weighted sum of terms; calling it gives ``{name: weight * value}``."""

    def __init__(self, parts: Sequence[tuple[float, Term]]):
        self.parts = list(parts)
        names: dict[str, int] = {}
        self.names = []
        for _, term in self.parts:  # unique names: "tv", "tv#2", ...
            k = names.get(term.name, 0) + 1
            names[term.name] = k
            self.names.append(term.name if k == 1 else f"{term.name}#{k}")

    def _parts(self) -> list[tuple[float, Term]]:
        return list(self.parts)

    def __call__(self, x) -> dict[str, tf.Tensor]:
        features = evaluate_layers([t for _, t in self.parts], x)
        return {
            name: w * term.value(x, features.get(id(term.model)))
            for name, (w, term) in zip(self.names, self.parts)
        }

    def __repr__(self) -> str:
        return " + ".join(f"{w:g} * {t!r}" for w, t in self.parts)


def evaluate_layers(terms: Sequence[Term], x) -> dict[int, dict[str, tf.Tensor]]:
    """Run each model the terms read from once, with the union of their layers."""
    by_model: dict[int, tuple[object, dict[str, None]]] = {}
    for term in terms:
        if term.model is not None and term.layers():
            entry = by_model.setdefault(id(term.model), (term.model, {}))
            entry[1].update(dict.fromkeys(term.layers()))
    return {key: model(x, taps=list(layers)) for key, (model, layers) in by_model.items()}


def _nhwc(x: tf.Tensor) -> tf.Tensor:
    if x.shape.rank != 4:
        raise ValueError(f"image priors take an NCHW batch (4-D); got shape {tuple(x.shape)}")
    return tf.transpose(x, [0, 2, 3, 1])


class TotalVariation(Term):
    """Total variation of an NCHW batch, summed over the batch.

    Args:
        beta: ``None`` for ``tf.image.total_variation`` (sum of absolute neighbour
            differences); a number for TV^beta (Mahendran & Vedaldi 2015, eq. 5):
            sum over pixels and channels of ((x[i, j+1] - x[i, j])^2 + (x[i+1, j] - x[i, j])^2)
            ^ (beta / 2), on the (H-1) x (W-1) grid where both differences exist.
        normalize: divide by the number of pixel values (H * W * C), so the weight does not
            depend on the image size.
    """

    def __init__(self, beta: float | None = None, *, normalize: bool = False, name: str = "tv"):
        if beta is not None and not beta > 0:
            raise ValueError(f"beta must be > 0 (or None for tf.image.total_variation); got {beta}")
        self.beta, self.normalize, self.name = beta, normalize, name

    def value(self, x, features=None):
        x = tf.convert_to_tensor(x)
        xs = _nhwc(x)
        if self.beta is None:
            tv = tf.reduce_sum(tf.image.total_variation(xs))
        else:
            dx = xs[:, :-1, 1:, :] - xs[:, :-1, :-1, :]
            dy = xs[:, 1:, :-1, :] - xs[:, :-1, :-1, :]
            sq = dx * dx + dy * dy
            if self.beta == 2:
                tv = tf.reduce_sum(sq)
            else:  # the small floor keeps the gradient finite at flat regions when beta < 2
                tv = tf.reduce_sum(tf.pow(sq + 1e-12, self.beta / 2))
        if self.normalize:
            tv = tv / float(np.prod(x.shape[1:]))
        return tv


class MeanTotalVariation(Term):
    """Mean anisotropic TV: the mean over images, channels and pixels of
    ``|x[i, j+1] - x[i, j]| + |x[i+1, j] - x[i, j]|``, the last column and row differenced
    against zero (breaching's ``TotalVariation`` with inner and outer exponent 1, the prior
    of its ``invertinggradients`` and ``seethroughgradients`` attacks). Independent of the
    batch and image size."""

    def __init__(self, *, eps: float = 1e-8, name: str = "tv"):
        self.eps, self.name = eps, name

    def value(self, x, features=None):
        x = tf.convert_to_tensor(x)
        padded = tf.pad(x, [[0, 0], [0, 0], [0, 1], [0, 1]])
        dx = tf.abs(padded[:, :, :-1, 1:] - x) + self.eps
        dy = tf.abs(padded[:, :, 1:, :-1] - x) + self.eps
        return tf.reduce_mean(dx + dy)


class AlphaNorm(Term):
    """||x||_alpha^alpha = sum |x|^alpha over the batch (Mahendran & Vedaldi 2015, eq. 4)."""

    def __init__(self, alpha: float = 6.0, *, normalize: bool = False, name: str | None = None):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0; got {alpha}")
        self.alpha, self.normalize = alpha, normalize
        self.name = name or ("l2" if alpha == 2 else f"alpha{alpha:g}")

    def value(self, x, features=None):
        x = tf.convert_to_tensor(x)
        v = (
            tf.reduce_sum(tf.square(x))
            if self.alpha == 2
            else tf.reduce_sum(tf.pow(tf.abs(x), self.alpha))
        )
        if self.normalize:
            v = v / float(np.prod(x.shape[1:]))
        return v


def L2(*, normalize: bool = False, name: str = "l2") -> AlphaNorm:  # noqa: N802 (a term name)
    """The squared L2 norm of the image (alpha-norm with alpha 2)."""
    return AlphaNorm(2.0, normalize=normalize, name=name)


class FeatureMatch(Term):
    """The data term: normalised squared error between a layer's activations and a target.

    ``||phi(x) - phi0||^2 / ||phi0||^2`` (Mahendran & Vedaldi 2015, eq. 2), one term per layer
    so the history shows each; several layers give an :class:`Objective`. Use
    :func:`feature_match` for several layers with weights.

    Args:
        model: a :class:`converters.onnx_to_tf.TFModel` (anything taking ``taps=``).
        layer: the tap name or alias (``"conv3_1"``).
        target: the target activations (NCHW, as ``model(x, taps=[layer])`` returns them).
    """

    def __init__(self, model, layer: str, target, *, name: str | None = None):
        model = contract_model(model)
        self.model, self.layer = model, layer
        self.target = tf.constant(np.asarray(target), tf.float32)
        self._norm = float(tf.reduce_sum(tf.square(self.target)))
        if not self._norm > 0:
            raise ValueError(
                f"the target activations of {layer!r} are all zero: the normalised "
                "error is undefined there; pick another layer or image"
            )
        self.name = name or f"feature:{layer}"

    def layers(self):
        return (self.layer,)

    def value(self, x, features):
        phi = tf.cast(features[self.layer], tf.float32)
        if phi.shape != self.target.shape:
            raise ValueError(
                f"layer {self.layer!r} gives shape {tuple(phi.shape)} but the target "
                f"has {tuple(self.target.shape)}: the image size must match"
            )
        return tf.reduce_sum(tf.square(phi - self.target)) / self._norm


def feature_match(
    model, targets: Mapping[str, object], weights: Mapping[str, float] | None = None
) -> Objective:
    """``sum_l w_l * FeatureMatch(model, l, targets[l])`` (weights default to 1)."""
    model = contract_model(model)
    weights = dict(weights or {})
    unknown = set(weights) - set(targets)
    if unknown:
        raise ValueError(f"weights given for layers without a target: {sorted(unknown)}")
    return sum(
        (weights.get(layer, 1.0) * FeatureMatch(model, layer, t) for layer, t in targets.items()),
        Objective([]),
    )
