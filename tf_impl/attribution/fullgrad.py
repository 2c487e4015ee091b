"""FullGrad: the input gradient and every layer's bias gradient, summed into one saliency map.

Srinivas & Fleuret, "Full-Gradient Representation for Neural Network Visualization", NeurIPS
2019. For a network made of linear maps with biases and ReLU-like (piecewise-linear,
positively homogeneous) non-linearities, the output is exactly

    f(x) = <grad_x f, x> + sum_l <grad_{z_l} f, b_l>

where z_l is the output of layer l and b_l its bias broadcast over that output (the
*full-gradient representation*, which satisfies completeness). The biases found here:

- ``Conv`` / ``ConvTranspose`` bias (input 3) and ``Gemm``'s ``beta * C``;
- ``BatchNormalization`` in eval mode, as the affine map ``y = gamma / sigma * x + b`` with the
  effective bias ``b = beta - running_mean * gamma / sqrt(running_var + eps)``;
- ``Add`` / ``Sub`` with a constant operand (an ONNX initializer or ``Constant`` node), as
  exporters such as tf2onnx write Dense biases and folded BatchNorms (``Sub(x, c)`` has the
  bias ``-c``).

A non-linearity with an implicit bias (Sigmoid, Tanh, GELU, a Softmax inside the graph, ...)
breaks the identity; :attr:`FullGradDecomposition.gap` says by how
much (``score - sum of all terms``). ReLU networks with max-pooling, average-pooling, zero
padding and residual additions are exact (``resnet20_cifar``, ``keras_cnn``: the gap is
below 1e-6 of the logit).

The saliency map (FullGrad proper) is

    S(x) = psi(|x * grad_x f|) + sum_{l spatial} sum_c psi(|b_l * grad_{z_l} f|_c)

with psi the post-processing of the authors' code (``idiap/fullgrad-saliency``,
``FullGrad._postProcess`` and ``saliency``): absolute value, min-max normalisation of each
term per image (over channels and positions, ``(t - min) / (max + 1e-6)`` after subtracting
the minimum), bilinear resize to the input size (``align_corners=True``), sum over channels
and terms. Only the terms with spatial extent (rank 4: Conv, BN, Add on feature maps) enter
the map; the classifier's ``Gemm`` bias enters only the decomposition, as in the authors'
code. pytorch-grad-cam's ``FullGrad`` differs in three places (each channel normalised on its
own with eps 1e-7, OpenCV's half-pixel bilinear resize, and a final min-max rescale of the
sum); :meth:`FullGradConfig.pytorch_grad_cam` reproduces it
(``tests/attribution/test_attribution_fullgrad.py`` checks the two agree to 1e-4 on the
onnx2torch copy of the same model).

How the bias gradients are taken: the model is run once per batch under a
``tf.GradientTape`` with every bias layer's output tapped (``model(x, taps=[...],
layout="NHWC", compiled=False)`` inside one ``tf.function``); a returned tap is the tensor the
rest of the forward pass reads (the importer lays it out where it is made, also a tensor held in
ONNX order such as a channel shuffle's output), so ``tape.gradient(score, taps)`` gives
d score / d z_l directly.

FullGrad has no baseline and no path: unlike the path methods of this package it takes
neither ``baseline`` nor ``steps``. ``batch_size`` images go through the model per forward
pass.

Example:
    >>> import model_zoo
    >>> from converters import onnx_to_tf
    >>> model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))         # doctest: +SKIP
    >>> x, _ = model_zoo.data.cifar10("test", n=4)                         # doctest: +SKIP
    >>> saliency, gap = fullgrad(model, x, return_delta=True)                # doctest: +SKIP
    >>> saliency.shape, float(abs(gap).max()) < 1e-4                       # doctest: +SKIP
    ((4, 32, 32), True)
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import BiasLayer, contract_model

from .common import (
    AttributionConfig,
    AttributionError,
    check_inputs,
    check_steps,
    logits,
    resolve_targets,
)
from .drawing import draw_fullgrad  # noqa: F401  (part of this module's API)

__all__ = [
    "FullGradConfig",
    "BiasLayer",
    "FullGradDecomposition",
    "bias_layers",
    "fullgrad",
    "fullgrad_decompose",
    "fullgrad_map",
    "resize_matrix",
    "draw_fullgrad",
]

_NORMALIZE = ("term", "channel")


@dataclass(frozen=True)
class FullGradConfig(AttributionConfig):
    """Post-processing of the FullGrad map; the defaults are the authors' code
    (``idiap/fullgrad-saliency``, ``saliency/fullgrad.py``).

    Attributes:
        normalize: ``"term"``: min-max normalise each term per image over all its channels and
            positions (the authors' ``_postProcess``); ``"channel"``: each channel of each term
            on its own (pytorch-grad-cam's ``scale_accross_batch_and_channels``).
        align_corners: bilinear resize of the layer maps to the input size with
            ``align_corners=True`` (the authors' ``F.interpolate``) or half-pixel centres
            (OpenCV's ``cv2.resize``, used by pytorch-grad-cam; also ``tf.image.resize``).
        eps: added to the maximum in the normalisation ``(t - min) / (max - min + eps)``: 1e-6
            in the authors' code, 1e-7 in pytorch-grad-cam.
        rescale: min-max rescale the summed map to [0, 1] per image (pytorch-grad-cam does;
            the authors' code returns the raw sum).
    """

    normalize: str = "term"
    align_corners: bool = True
    eps: float = 1e-6
    rescale: bool = False

    def validate(self) -> None:
        if self.normalize not in _NORMALIZE:
            raise AttributionError(f"normalize must be one of {_NORMALIZE}; got "
                                   f"{self.normalize!r}")
        if not self.eps >= 0:
            raise AttributionError(f"eps must be >= 0; got {self.eps}")

    @classmethod
    def pytorch_grad_cam(cls) -> FullGradConfig:
        """pytorch-grad-cam 1.5.7's ``FullGrad`` post-processing (per-channel normalisation,
        eps 1e-7, half-pixel bilinear resize, final rescale to [0, 1])."""
        return cls(normalize="channel", align_corners=False, eps=1e-7, rescale=True)


@dataclass
class FullGradDecomposition:
    """The full-gradient decomposition of the target scores (Srinivas & Fleuret 2019).

    Attributes:
        input_term: x * d score / d x, the inputs' shape (N, C, H, W).
        bias_terms: ``{layer name: b_l * d score / d z_l}``, each the layer output's logical
            (ONNX) shape with the batch first, in graph order.
        layers: the :class:`BiasLayer` of each bias term.
        scores: the target logits f(x) (N,).
        targets: the explained classes (N,).
    """

    input_term: np.ndarray
    bias_terms: dict[str, np.ndarray]
    layers: list[BiasLayer]
    scores: np.ndarray
    targets: np.ndarray

    @property
    def bias_sums(self) -> np.ndarray:
        """(N, layers): the sum of each bias term per image."""
        n = len(self.scores)
        if not self.bias_terms:
            return np.zeros((n, 0))
        return np.stack([t.reshape(n, -1).sum(axis=1, dtype=np.float64)
                         for t in self.bias_terms.values()], axis=1)

    @property
    def total(self) -> np.ndarray:
        """sum(input term) + sum of the bias terms, per image (N,)."""
        n = len(self.scores)
        return (self.input_term.reshape(n, -1).sum(axis=1, dtype=np.float64)
                + self.bias_sums.sum(axis=1))

    @property
    def gap(self) -> np.ndarray:
        """The completeness gap f(x) - total per image: ~0 (float rounding) for networks made
        of biased linear layers and ReLU-like units; larger where a non-linearity has an
        implicit bias (sigmoid, tanh, ...) that the decomposition leaves out."""
        return self.scores.astype(np.float64) - self.total


# -- the bias layers of an imported model ---------------------------------------------------------
def bias_layers(model) -> list[BiasLayer]:
    """The nodes of ``model`` that add a bias to an activation and feed its (first) output, in
    graph order (the model finds them once: ``model.bias_terms()``)."""
    return list(contract_model(model).bias_terms())


def _bias_values(model, layers: list[BiasLayer], tapped: dict
                 ) -> list[tuple[np.ndarray, bool]]:
    """Each layer's bias in logical (ONNX) layout and whether it is one value per channel
    (Conv, BatchNormalization) rather than an array broadcast as ONNX does (Gemm, Add)."""
    model = contract_model(model)
    values = []
    for layer in layers:
        if layer.op_type == "BatchNormalization":
            bn = model.bn_layers[int(layer.operand)]
            gamma, beta, mean, var = (np.asarray(v.numpy(), np.float64) for v in (
                bn.scale, bn.bias, bn.running_mean, bn.running_var))
            b = beta - mean * gamma / np.sqrt(var + bn.epsilon)
        elif layer.operand in model.onnx_variables:
            var = model.onnx_variables[layer.operand]
            b = np.asarray(model.to_onnx_layout(layer.operand, var).numpy(), np.float64)
        else:
            b = np.asarray(tapped[layer.operand], np.float64)
        b = b * layer.scale  # Gemm's beta; 1 elsewhere
        values.append((b, layer.op_type in ("Conv", "ConvTranspose", "BatchNormalization")))
    return values


def _broadcast_bias(b: np.ndarray, per_channel: bool, rank: int) -> np.ndarray:
    """A per-channel bias (C,) as (1, C, 1, ...) for an output of ``rank``; others as given
    (ONNX multidirectional broadcasting is numpy's)."""
    if per_channel:
        return b.reshape((1, -1) + (1,) * (rank - 2))
    return b


# -- the forward/backward pass ---------------------------------------------------------------------
_PASSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _gradient_pass(model, layers: list[BiasLayer], const_taps: list[str]):
    """(step, tapped outputs): ``step`` is a tf.function (x, targets) -> (targets, scores,
    d score/dx, [d score/dz_l per tapped output], [constant operands]); a negative target is
    replaced by the predicted class. Cached per model and set of taps."""
    model = contract_model(model)
    key = (tuple(layer.tensor for layer in layers), tuple(const_taps))
    cache = _PASSES.setdefault(model, {})
    fn = cache.get(key)
    if fn is not None:
        return fn
    output = model.logits_name  # the class scores (a final Softmax's input)
    outs = list(dict.fromkeys(layer.tensor for layer in layers))
    taps = list(dict.fromkeys(outs + const_taps + [output]))

    @tf.function(reduce_retracing=True)
    def step(x, targets):
        with tf.GradientTape() as tape:
            tape.watch(x)
            values = model(x, taps=taps, layout="NHWC", compiled=False)
            out = model.as_logits(values[output])
            # a negative target stands for the predicted class
            targets = tf.where(targets < 0, tf.argmax(out, axis=1, output_type=targets.dtype),
                               targets)
            score = tf.gather(out, targets, axis=1, batch_dims=1)
        grads = tape.gradient(score, [x] + [values[t] for t in outs])
        # None: the tap is not on the score's path (an empty sentinel; reported by the caller)
        grads = [tf.zeros([0]) if g is None else g for g in grads]
        return targets, score, grads[0], grads[1:], [values[c] for c in const_taps]

    cache[key] = (step, outs)
    return cache[key]


def _to_logical(g: np.ndarray) -> np.ndarray:
    """A channels-last tap (as requested with layout="NHWC") back to the ONNX order."""
    if g.ndim < 3:
        return g
    return np.moveaxis(g, -1, 1)


def fullgrad_decompose(model, inputs, target=None, *, batch_size: int = 16
                       ) -> FullGradDecomposition:
    """The full-gradient decomposition (Srinivas & Fleuret 2019) of the target scores.

    Args:
        model: a classifier (:class:`converters.onnx_to_tf.TFModel` returning logits), run in
            eval mode (BatchNorm with its running statistics).
        inputs: the model's normalised input, float (N, C, H, W).
        target: the class to explain: ``None`` for each input's predicted class, one int for
            all, or one per input.
        batch_size: inputs per forward pass (a positive integer).

    Returns:
        a :class:`FullGradDecomposition`; ``.gap`` is the completeness check.
    """
    model = contract_model(model)
    x, targets, batch_size = _prepare(model, inputs, target, batch_size)
    return _decompose(model, x, targets, batch_size)


def _prepare(model, inputs, target, batch_size):
    """Checked inputs, targets (-1: the predicted class, resolved in the gradient pass) and
    batch size. The output is probed on one input, eagerly: tracing the model's compiled
    forward only to learn the number of classes would cost more than the probe."""
    model = contract_model(model)
    x = check_inputs(model, inputs)
    _, batch_size = check_steps(1, batch_size)
    if len(x) == 0:
        raise AttributionError("inputs hold no images (N = 0)")
    out = model(x[:1], compiled=False)
    out = out[0] if isinstance(out, tuple) else out
    if out.shape.rank != 2:
        logits(model, x[:1])  # raises the shared "not (batch, classes)" message
    if target is None:
        return x, np.full(len(x), -1, np.int64), batch_size
    fake = np.zeros((len(x), int(out.shape[1])), np.float32)
    return x, resolve_targets(model, x, target, out=fake), batch_size


def _decompose(model, x: np.ndarray, targets: np.ndarray, batch_size: int
               ) -> FullGradDecomposition:
    model = contract_model(model)
    layers = bias_layers(model)
    # biases held by Constant nodes (not initializers) are read by tapping them
    const_taps = list(dict.fromkeys(
        la.operand for la in layers
        if la.operand not in model.onnx_variables and la.op_type != "BatchNormalization"))
    step, outs = _gradient_pass(model, layers, const_taps)
    scores, resolved, input_terms, per_layer = [], [], [], [[] for _ in layers]
    biases = None
    for i in range(0, len(x), batch_size):
        xb = tf.convert_to_tensor(x[i:i + batch_size])
        t, s, gx, gz, cv = step(xb, tf.convert_to_tensor(targets[i:i + batch_size]))
        if biases is None:
            tapped = dict(zip(const_taps, (c.numpy() for c in cv)))
            biases = _bias_values(model, layers, tapped)
        grads = dict(zip(outs, gz))
        for k, layer in enumerate(layers):
            g = grads[layer.tensor].numpy()
            if g.size == 0:
                raise AttributionError(
                    f"FullGrad could not differentiate the score with respect to the output "
                    f"{layer.tensor!r} of {layer.op_type} node {layer.name!r}: the tensor is "
                    "not on the path to the class score. This model is not supported by "
                    "fullgrad.")
            g = _to_logical(g).astype(np.float64)
            b, per_channel = biases[k]
            term = g * layer.sign * _broadcast_bias(b, per_channel, g.ndim)
            per_layer[k].append(term.astype(np.float32))
        scores.append(s.numpy())
        resolved.append(t.numpy())
        input_terms.append(x[i:i + batch_size] * gx.numpy())
    terms = {layer.name: np.concatenate(t) for layer, t in zip(layers, per_layer)}
    return FullGradDecomposition(
        input_term=np.concatenate(input_terms).astype(np.float32), bias_terms=terms,
        layers=layers, scores=np.concatenate(scores),
        targets=np.concatenate(resolved).astype(np.int64))


# -- post-processing -------------------------------------------------------------------------------
def resize_matrix(n_in: int, n_out: int, align_corners: bool) -> np.ndarray:
    """(n_out, n_in) weights of 1-D bilinear (linear) interpolation: ``align_corners=True`` maps
    the end samples onto each other (PyTorch's ``align_corners=True``); otherwise half-pixel
    centres with the source coordinate clamped to the edges (OpenCV's ``INTER_LINEAR``,
    ``tf.image.resize``, PyTorch's ``align_corners=False``)."""
    out = np.arange(n_out, dtype=np.float64)
    if align_corners:
        src = out * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    else:
        src = (out + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    w = np.zeros((n_out, n_in))
    np.add.at(w, (np.arange(n_out), lo), 1.0 - frac)
    np.add.at(w, (np.arange(n_out), hi), frac)
    return w


def _normalized(term: np.ndarray, config: FullGradConfig) -> np.ndarray:
    """abs, then min-max per image (``"term"``) or per image and channel (``"channel"``)."""
    a = np.abs(term.astype(np.float64))
    axes = tuple(range(1, a.ndim)) if config.normalize == "term" else tuple(range(2, a.ndim))
    a = a - a.min(axis=axes, keepdims=True)
    return a / (a.max(axis=axes, keepdims=True) + config.eps)


def fullgrad_map(decomposition: FullGradDecomposition, config: FullGradConfig | None = None,
                 size: tuple[int, int] | None = None) -> np.ndarray:
    """The FullGrad saliency map (N, H, W) from a decomposition (Srinivas & Fleuret 2019), with
    the post-processing of ``config``.

    Each spatial term is normalised at its own resolution, summed over its channels and then
    resized: bilinear resizing is linear, so this equals resizing every channel first (what
    both reference implementations do) at a fraction of the cost.
    """
    config = config or FullGradConfig()
    h, w = size or decomposition.input_term.shape[-2:]
    total = _normalized(decomposition.input_term, config).sum(axis=1)
    total = np.einsum("ih,nhw,jw->nij", resize_matrix(total.shape[1], h, config.align_corners),
                      total, resize_matrix(total.shape[2], w, config.align_corners))
    for term in decomposition.bias_terms.values():
        if term.ndim != decomposition.input_term.ndim:
            continue  # no spatial extent (a Gemm / Dense bias): decomposition only
        m = _normalized(term, config).sum(axis=1)
        ry = resize_matrix(m.shape[1], h, config.align_corners)
        rx = resize_matrix(m.shape[2], w, config.align_corners)
        total = total + np.einsum("ih,nhw,jw->nij", ry, m, rx)
    if config.rescale:
        total = total - total.min(axis=(1, 2), keepdims=True)
        total = total / (total.max(axis=(1, 2), keepdims=True) + config.eps)
    return total.astype(np.float32)


def fullgrad(model, inputs, target=None, baseline=None, *, batch_size: int = 16,
             config: FullGradConfig | None = None, return_delta: bool = False):
    """FullGrad saliency maps (Srinivas & Fleuret, NeurIPS 2019) of a batch.

    Same call shape as the other attribution methods; FullGrad has no baseline (``baseline``
    must be None) and no steps (one forward and one backward pass per batch).

    Args:
        model: a classifier (:class:`converters.onnx_to_tf.TFModel` returning logits).
        inputs: the model's normalised input, float (N, C, H, W).
        target: ``None`` (the predicted class), one int for all inputs, or one per input; out
            of range raises with the valid range.
        batch_size: inputs per forward pass.
        config: :class:`FullGradConfig` (the map's post-processing).
        return_delta: also return the completeness gap f(x) - sum of all terms (N,).

    Returns:
        the saliency maps (N, H, W), non-negative; with ``return_delta``, ``(maps, gap)``.
    """
    if baseline is not None:
        raise AttributionError("FullGrad decomposes the score at the input itself and has no "
                               "baseline; leave baseline=None")
    model = contract_model(model)
    config = config or FullGradConfig()
    if not isinstance(config, FullGradConfig):
        raise AttributionError(f"config must be a FullGradConfig; got {type(config).__name__}")
    x, targets, batch_size = _prepare(model, inputs, target, batch_size)
    maps, gaps = [], []
    for i in range(0, len(x), batch_size):
        d = _decompose(model, x[i:i + batch_size], targets[i:i + batch_size], batch_size)
        maps.append(fullgrad_map(d, config))
        gaps.append(d.gap)
    maps = np.concatenate(maps)
    return (maps, np.concatenate(gaps)) if return_delta else maps

