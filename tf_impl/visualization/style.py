"""Texture synthesis and neural style transfer: the Gatys family, by Gram-matrix matching.

Gatys, Ecker & Bethge, "Texture Synthesis Using Convolutional Neural Networks", NeurIPS 2015;
Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks", CVPR 2016.

A layer's *style* (its texture statistics) is the Gram matrix of its feature maps, its
*content* the feature maps themselves. With F_l(x) the (C_l, H_l W_l) matrix of layer l's
maps (:mod:`tf_impl.visualization.perceptual`):

    G_l(x) = F_l(x) F_l(x)^T / (C_l H_l W_l)                          (normalised Gram matrix)
    S_l(x) = mean_ij (G_l(x)_ij - G_l(style)_ij)^2                     (perceptual.style_loss)
    P_l(x) = mean (F_l(x) - F_l(content))^2                            (perceptual.content_loss)

Texture synthesis (2015, eq. 4-5) minimises, from noise,

    L_texture(x) = beta * sum_l w_l S_l(x)       over relu1_1, pool1, pool2, pool3, pool4

and style transfer (2016, eq. 7) minimises, from the content photograph,

    L(x) = alpha * P_relu4_2(x) + beta * sum_l w_l S_l(x) + lambda_TV * TV(x)
                                       over relu1_1, relu2_1, relu3_1, relu4_1, relu5_1

with w_l = 1/5 (the paper's equal weights) and, beyond the paper, a small total-variation
prior (mean squared neighbour differences, :class:`tf_impl.priors.TotalVariation`) against
high-frequency noise, as most later implementations add. The optimisation runs in the shared
loop (:mod:`tf_impl.optimize`) on the image in the model's normalised input space, projected
onto the valid pixel box [0, 1] after every step; results are in pixel space.

**Scale of the weights.** The paper writes E_l = 1/(4 N_l^2 M_l^2) sum_ij (G_ij - A_ij)^2 with
the unnormalised Gram G = F F^T (N_l = C_l channels, M_l = H_l W_l positions) and
L_content = 1/2 sum (F - P)^2. Here the Gram is divided by C H W and both losses are *means*
(the normalisation of PyTorch's neural-style tutorial), so

    S_l = 4 E_l / N_l^2        and        P_l = 2 L_content / (N_l M_l).

Neither grows with the image size. At 256x256, tubingen against starry_night,
S_l is 1e-5 .. 3e-4 over the five style layers and P_relu4_2 of the style image is ~14. The
defaults alpha = 1, beta = 1e6 (the weights of PyTorch's neural-style tutorial, which uses
this normalisation) give a strong stylisation that keeps the content recognisable (a 200-step
run at 256: ``benchmarks/results/style_transfer_256.png``). The paper's alpha / beta of 1e-3 ..
1e-4 does not carry over: besides E_l and the 1/2-sum content loss it refers to a VGG-19 fed
0..255 pixels whose weights were rescaled so each filter's mean activation is 1. Only ratios
change the result; the absolute scale matters for Adam's epsilon and L-BFGS's first step,
which is why beta is not 1.

**Layer names.** The paper names Caffe blobs, and Caffe's ReLU runs in place, so its
"conv1_1" / "conv4_2" are the *rectified* maps: ``relu1_1`` / ``relu4_2`` here (aliases of
``vgg16_features``; ``model.aliases`` lists them). The paper uses VGG-19 with average pooling;
``vgg16_features`` is VGG-16 with its max pooling as exported (aliases ``pool1``..``pool5``).

**Optimizer.** The papers use L-BFGS. Texture synthesis keeps it (``TextureConfig``: 15
steps of 20 iterations, lr 1): from noise it converges far better than Adam for the same
number of gradient evaluations (starry_night at 128x128, at most 200 evaluations: Gram loss
3.0e-5 with L-BFGS against 8.2e-5 with the best Adam learning rate tried, 0.1, and only
L-BFGS reproduces the large structures such as the stars). Style transfer defaults to Adam
(``StyleTransferConfig``: 300 steps, lr 0.02): it starts from the content photograph, where
Adam is nearly as good per evaluation (128x128, about 150 evaluations: total loss 10.1 with
lr 0.02 and 9.0 with lr 0.05 against 8.3 with L-BFGS, no visible difference), its whole
step (forward with every tap, losses, input gradient, update, box projection) is one compiled
``tf.function`` call, and the pixel box is applied after every step, whereas with L-BFGS it
is applied only after each outer step (the inner iterates may leave [0, 1] and the
projection disturbs the curvature pairs).
``with_(optimizer="lbfgs", learning_rate=1.0, steps=15)`` gives the paper's choice (and
``with_(optimizer="adam", learning_rate=0.1, steps=300)`` Adam for textures).

Example:
    >>> import model_zoo
    >>> from converters import onnx_to_tf
    >>> from tf_impl.visualization.style import StyleTransferConfig, style_transfer
    >>> model = onnx_to_tf.load(model_zoo.load("vgg16_features"))             # doctest: +SKIP
    >>> result = style_transfer(model, "tubingen", "starry_night")               # doctest: +SKIP
    >>> result.image.shape, result.history["style:relu3_1"][-1]                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from .. import images as imgs
from ..optimize import Optimization, OptimizeConfig, pixel_box, seeded_noise
from ..priors import Objective, Term, TotalVariation
from ..result import Result
from .checks import (
    VisualizationConfig,
    VisualizationError,
    check_image_size,
    check_layer,
    fixed_size,
)
from .perceptual import content_loss, gram_matrix, style_loss

__all__ = [
    "CONTENT_LAYERS",
    "STYLE_LAYERS",
    "TEXTURE_LAYERS",
    "ContentTerm",
    "GramTerm",
    "StyleTransferConfig",
    "TextureConfig",
    "build_objective",
    "draw_style_transfer",
    "draw_texture",
    "style_transfer",
    "synthesize_texture",
    "target_features",
]

TEXTURE_LAYERS = ("relu1_1", "pool1", "pool2", "pool3", "pool4")
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)
_INITS = ("content", "noise", "style")
DEFAULT_SIZE = 256
MIN_SIZE = 16


# -- configs ------------------------------------------------------------------------------------
def _positive(name: str, value, *, zero_ok: bool = False) -> None:
    ok = value >= 0 if zero_ok else value > 0
    if not (isinstance(value, (int, float)) and not isinstance(value, bool) and ok
            and np.isfinite(value)):
        rng = ">= 0" if zero_ok else "> 0"
        raise VisualizationError(f"{name} must be a finite number {rng}; got {value!r}")


def _layer_tuple(name: str, layers) -> tuple[str, ...]:
    if isinstance(layers, str):
        layers = (layers,)
    layers = tuple(layers)
    if not layers or not all(isinstance(k, str) and k for k in layers):
        raise VisualizationError(
            f"{name} must be a non-empty sequence of layer names (aliases such as "
            f"'relu3_1'); got {layers!r}")
    if len(set(layers)) != len(layers):
        raise VisualizationError(f"{name} lists a layer twice: {layers!r}")
    return layers


def _check_weights(name: str, layers: tuple[str, ...], weights) -> tuple[float, ...] | None:
    if weights is None:
        return None
    weights = tuple(weights)
    if len(weights) != len(layers):
        raise VisualizationError(
            f"{name} needs one weight per layer ({len(layers)} for {list(layers)}); got "
            f"{len(weights)}")
    for layer, w in zip(layers, weights):
        _positive(f"{name}[{layer!r}]", w)
    return tuple(float(w) for w in weights)


@dataclass(frozen=True)
class TextureConfig(VisualizationConfig):
    """Defaults for texture synthesis (Gatys, Ecker & Bethge 2015).

    Attributes:
        layers: the layers whose Gram matrices are matched (the paper's full model:
            conv1_1, pool1..pool4 in Caffe's naming, i.e. ``relu1_1, pool1..pool4``).
        layer_weights: w_l, one per layer (``None``: 1 / len(layers) each, as the paper).
        style_weight: beta, the overall scale of the Gram loss (the S_l of the module doc are
            ~1e-5 .. 1e-2, so 1e6 gives losses of order 1-1000; it changes the result only
            through Adam's epsilon and L-BFGS's first step).
        tv_weight, tv_beta: an optional TV^beta prior on the mean over pixel values (0: off,
            as in the paper).
        init_std, seed: the start, 0.5 + N(0, init_std) per pixel value (seeded, clipped to
            [0, 1]): "white noise" as in the paper.
        optimize: the shared loop's settings: L-BFGS as in the paper, 15 steps of 20
            iterations (300 gradient evaluations), lr 1 (see the module doc).
    """

    layers: tuple[str, ...] = TEXTURE_LAYERS
    layer_weights: tuple[float, ...] | None = None
    style_weight: float = 1e6
    tv_weight: float = 0.0
    tv_beta: float | None = 2.0
    init_std: float = 0.2
    seed: int = 0
    optimize: OptimizeConfig = field(
        default_factory=lambda: OptimizeConfig(
            steps=15, optimizer="lbfgs", learning_rate=1.0, lbfgs_max_iter=20)
    )

    def validate(self) -> None:
        object.__setattr__(self, "layers", _layer_tuple("layers", self.layers))
        object.__setattr__(self, "layer_weights",
                           _check_weights("layer_weights", self.layers, self.layer_weights))
        _positive("style_weight", self.style_weight)
        _positive("tv_weight", self.tv_weight, zero_ok=True)
        _positive("init_std", self.init_std, zero_ok=True)

    def weights(self) -> dict[str, float]:
        """w_l per layer (1 / L each by default)."""
        ws = self.layer_weights or (1.0 / len(self.layers),) * len(self.layers)
        return dict(zip(self.layers, ws))


@dataclass(frozen=True)
class StyleTransferConfig(VisualizationConfig):
    """Defaults for neural style transfer (Gatys, Ecker & Bethge 2016).

    Attributes:
        content_layers: where content is matched (the paper: conv4_2, i.e. ``relu4_2``).
        style_layers: where style is matched (the paper: conv1_1..conv5_1, i.e.
            ``relu1_1, relu2_1, relu3_1, relu4_1, relu5_1``).
        style_layer_weights: w_l, one per style layer (``None``: 1/5 each, as the paper).
        content_weight: alpha, on the *mean* squared feature error P_l (see the module doc).
        style_weight: beta, on sum_l w_l S_l with Grams normalised by C H W (the module doc
            says why the paper's alpha / beta does not carry over); more gives more style.
        tv_weight, tv_beta: lambda_TV on the mean TV^beta over pixel values (``normalize=
            True``, independent of the image size; beta 2: squared differences). The paper
            has none; 0 turns it off. 10 smooths the finest grain only (at 128x128, 1 has no
            visible effect, 100 softens the brush strokes, 1000 blurs).
        init: ``"content"`` (start from the photograph: faster and deterministic; the paper
            starts from white noise and reports similar results, Fig. 6), ``"noise"``
            (0.5 + N(0, init_std), seeded) or ``"style"`` (the style image; needs it at the
            content's size).
        init_std, seed: the noise start.
        optimize: the shared loop's settings; Adam, lr 0.02 in normalised input units
            (~0.005 in pixel units), 300 steps (see the module doc for L-BFGS).
    """

    content_layers: tuple[str, ...] = CONTENT_LAYERS
    style_layers: tuple[str, ...] = STYLE_LAYERS
    style_layer_weights: tuple[float, ...] | None = None
    content_weight: float = 1.0
    style_weight: float = 1e6
    tv_weight: float = 10.0
    tv_beta: float | None = 2.0
    init: str = "content"
    init_std: float = 0.2
    seed: int = 0
    optimize: OptimizeConfig = field(
        default_factory=lambda: OptimizeConfig(steps=300, learning_rate=0.02)
    )

    def validate(self) -> None:
        object.__setattr__(self, "content_layers",
                           _layer_tuple("content_layers", self.content_layers))
        object.__setattr__(self, "style_layers", _layer_tuple("style_layers", self.style_layers))
        object.__setattr__(self, "style_layer_weights", _check_weights(
            "style_layer_weights", self.style_layers, self.style_layer_weights))
        _positive("content_weight", self.content_weight)
        _positive("style_weight", self.style_weight)
        _positive("tv_weight", self.tv_weight, zero_ok=True)
        _positive("init_std", self.init_std, zero_ok=True)
        if self.init not in _INITS:
            raise VisualizationError(
                f"init must be one of {_INITS} (or pass init=array); got {self.init!r}")

    def weights(self) -> dict[str, float]:
        """w_l per style layer (1 / L each by default)."""
        n = len(self.style_layers)
        return dict(zip(self.style_layers, self.style_layer_weights or (1.0 / n,) * n))


# -- loss terms ---------------------------------------------------------------------------------
class GramTerm(Term):
    """S_l(x) = mean_ij (G_l(x) - G_l(style))^2 for one layer (:func:`perceptual.style_loss`).

    Composes with the terms of :mod:`tf_impl.priors` (``beta * GramTerm(...) + ...``); an
    :class:`~tf_impl.priors.Objective` runs the model once per evaluation with every layer its
    terms read.
    """

    def __init__(self, model, layer: str, target_gram, *, name: str | None = None):
        model = contract_model(model)
        self.model, self.layer = model, layer
        self.target = tf.constant(np.asarray(target_gram), tf.float32)
        self.name = name or f"style:{layer}"

    def layers(self):
        return (self.layer,)

    def value(self, x, features):
        f = tf.cast(features[self.layer], tf.float32)
        if f.shape[1] != self.target.shape[-1]:
            raise VisualizationError(
                f"layer {self.layer!r} has {f.shape[1]} channels but its target Gram matrix "
                f"is {tuple(self.target.shape)}: the target came from another model")
        return style_loss({self.layer: f}, {self.layer: self.target})


class ContentTerm(Term):
    """P_l(x) = mean (F_l(x) - F_l(content))^2 for one layer (:func:`perceptual.content_loss`)."""

    def __init__(self, model, layer: str, target, *, name: str | None = None):
        model = contract_model(model)
        self.model, self.layer = model, layer
        self.target = tf.constant(np.asarray(target), tf.float32)
        self.name = name or f"content:{layer}"

    def layers(self):
        return (self.layer,)

    def value(self, x, features):
        f = tf.cast(features[self.layer], tf.float32)
        if f.shape != self.target.shape:
            raise VisualizationError(
                f"layer {self.layer!r} gives shape {tuple(f.shape)} but the content target "
                f"has {tuple(self.target.shape)}: the image must have the content's size")
        return content_loss({self.layer: f}, {self.layer: self.target})


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


# -- inputs -------------------------------------------------------------------------------------
def _check_layers(model, layers: Sequence[str]) -> None:
    model = contract_model(model)
    for layer in layers:
        check_layer(model, layer)  # names the valid aliases otherwise


def _size(model, size, name: str = "size") -> int:
    model = contract_model(model)
    if size is None:
        fixed = fixed_size(model)
        return fixed[0] if fixed else DEFAULT_SIZE
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise VisualizationError(
            f"{name} must be an integer >= {MIN_SIZE} (pixels of the shorter side; "
            f"{DEFAULT_SIZE} is the default on CPU); got {size!r}")
    return int(size)


def _picture(model, source, size: int, what: str) -> imgs.Image:
    model = contract_model(model)
    picture = imgs.load_image(source, size)
    imgs.warn_notes(picture)
    px = picture.pixels
    if px.shape[0] != 1:
        raise VisualizationError(f"the {what} image must be a single picture; got a batch of "
                                 f"{px.shape[0]}")
    if min(px.shape[2:]) < MIN_SIZE:
        raise VisualizationError(f"the {what} image is {px.shape[2]}x{px.shape[3]}; use at "
                                 f"least {MIN_SIZE}x{MIN_SIZE}")
    return picture


def target_features(model, x: np.ndarray, layers: Sequence[str], what: str
                    ) -> dict[str, tf.Tensor]:
    """The activations at ``layers`` for the normalised input ``x`` (computed once), checked
    to be convolutional feature maps (N, C, H, W) with at least one position."""
    model = contract_model(model)
    try:
        feats = model(x, taps=list(layers))
    except KeyError:
        raise
    except Exception as err:  # a shape error from inside the graph (e.g. a pool on 1x1 maps)
        lines = [s.strip() for s in str(err).splitlines() if s.strip()] or [type(err).__name__]
        cause = next((s for s in reversed(lines) if "Error" in s), lines[-1])[:300]
        raise VisualizationError(
            f"the model cannot run on the {what} image of {x.shape[2]}x{x.shape[3]} up to "
            f"{list(layers)}; if the image is too small for these layers, use a larger one "
            f"(e.g. size {DEFAULT_SIZE}) or shallower layers. The model said: {cause}"
        ) from None
    for layer in layers:
        f = feats[layer]
        if f.shape.rank != 4:
            raise VisualizationError(
                f"layer {layer!r} gives shape {tuple(f.shape)}, not convolutional feature maps "
                "(N, C, H, W): Gram matrices and content maps need a feature extractor's "
                "conv/relu/pool layers (e.g. vgg16_features' relu1_1..relu5_3, pool1..pool5)")
        if min(f.shape[2:]) < 1:
            raise VisualizationError(
                f"the {what} image ({x.shape[2]}x{x.shape[3]}) is too small for layer "
                f"{layer!r} (its maps are {tuple(f.shape[2:])}); use a larger image")
    return feats


def _start(init, shape, config, content_px=None, style_px=None) -> np.ndarray:
    if init is not None:
        start = imgs.as_pixels(init, name="init").pixels
        if start.shape != tuple(shape):
            raise VisualizationError(f"init has shape {start.shape}; the result is {shape}")
        return start
    kind = getattr(config, "init", "noise")
    if kind == "content":
        return np.array(content_px, np.float32)
    if kind == "style":
        if style_px.shape != tuple(shape):
            raise VisualizationError(
                f"init='style' needs the style image at the content's size {shape[2:]}; it is "
                f"{style_px.shape[2:]} (leave style_size unset, or use init='content')")
        return np.array(style_px, np.float32)
    noise = 0.5 + seeded_noise(shape, config.seed, config.init_std)
    return np.clip(noise, 0.0, 1.0).astype(np.float32)


def _run(model, objective, start_px, config, mean, std, callback):
    model = contract_model(model)
    box = pixel_box(mean, std, channels=start_px.shape[1])
    opt = Optimization(objective, imgs.normalize(start_px, mean, std), config.optimize, box=box)
    run = opt.run(callback=callback)
    final = {k: float(tf.reduce_sum(v)) for k, v in objective(tf.constant(run.x)).items()}
    return run, final


def _to_pixels(x, mean, std) -> np.ndarray:
    return np.clip(imgs.denormalize(x, mean, std), 0, 1)


def _unweighted(terms: Mapping[str, float], prefix: str, scale: float,
                weights: Mapping[str, float] | None = None) -> float:
    total = 0.0
    for k, v in terms.items():
        if k.startswith(prefix):
            w = weights[k[len(prefix):]] if weights else 1.0
            total += v / (scale * w)
    return total


# -- texture synthesis --------------------------------------------------------------------------
def synthesize_texture(
    model,
    texture="starry_night",
    config: TextureConfig | None = None,
    *,
    size: int | None = None,
    output_size: int | tuple[int, int] | None = None,
    init: np.ndarray | None = None,
    preprocessing: tuple[Sequence[float], Sequence[float]] | None = None,
    callback: Callable | None = None,
) -> Result:
    """Synthesise a new sample of a texture by matching Gram matrices (Gatys et al. 2015).

    Args:
        model: a feature extractor (:class:`converters.onnx_to_tf.TFModel`, e.g.
            ``vgg16_features``) with the layers of ``config.layers``.
        texture: the source: pixels in [0, 1] (NCHW/CHW/HWC, float or uint8), a file path or a
            bundled name (``model_zoo.data.list_images()``).
        config: :class:`TextureConfig` (paper defaults when omitted).
        size: resize files / bundled names to this (shorter side, centre crop; default 256,
            or the model's fixed input size). Arrays keep their size.
        output_size: the synthesised image's size, ``n`` or ``(h, w)`` (default: the
            source's); Gram matrices do not depend on the spatial size.
        init: an explicit start in pixel space (shape (1, 3, h, w) of the output).
        preprocessing: (mean, std) of the model input (default: the zoo's record).
        callback: ``callback(step, loss, terms, optimization)`` after every step; True stops.

    Returns:
        a :class:`~tf_impl.result.Result`: ``image`` the texture in pixel space [0, 1],
        ``original`` the source, ``metrics`` ``style_loss`` (sum_l w_l S_l, without beta) at
        the start and at the end, ``history`` each layer's weighted term per step.
    """
    model = contract_model(model)
    config = config or TextureConfig()
    _check_layers(model, config.layers)
    picture = _picture(model, texture, _size(model, size), "texture")
    source = picture.pixels
    check_image_size(model, source)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    feats = target_features(model, imgs.normalize(source, mean, std), config.layers, "texture")
    grams = {k: gram_matrix(feats[k]).numpy() for k in config.layers}
    if output_size is None:
        out_hw = tuple(source.shape[2:])
    elif isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
        out_hw = (_size(model, output_size, "output_size"),) * 2
    else:
        out_hw = tuple(_size(model, s, "output_size") for s in output_size)
        if len(out_hw) != 2:
            raise VisualizationError(f"output_size must be n or (h, w); got {output_size!r}")
    shape = (1, source.shape[1], *out_hw)
    start = _start(init, shape, config)
    check_image_size(model, start)
    imgs.check_memory(model, shape, list(config.layers))
    weights = config.weights()
    objective = build_objective(model, grams, weights, config.style_weight,
                                tv_weight=config.tv_weight, tv_beta=config.tv_beta)
    x_start = imgs.normalize(start, mean, std)
    target_features(model, x_start, config.layers, "output")  # the output size works
    first = {k: float(v) for k, v in objective(tf.constant(x_start)).items()}
    run, final = _run(model, objective, start, config, mean, std, callback)
    return Result(
        technique="texture_synthesis",
        image=_to_pixels(run.x, mean, std),
        best_image=_to_pixels(run.best, mean, std),
        original=source,
        history=run.history,
        config=config.to_dict(),
        metrics={
            "style_loss_start": _unweighted(first, "style:", config.style_weight, weights),
            "style_loss": _unweighted(final, "style:", config.style_weight, weights),
        },
        seconds=run.seconds,
        steps=run.steps_done,
        stopped=run.stopped,
        message=run.message,
        snapshots=[(s, _to_pixels(v, mean, std)) for s, v in run.snapshots],
        extra={
            "texture": picture.name,
            "notes": picture.notes,
            "layers": list(config.layers),
            "layer_weights": weights,
            "source_shape": list(source.shape),
            "final_terms": final,
        },
    )


# -- style transfer -----------------------------------------------------------------------------
def style_transfer(
    model,
    content="tubingen",
    style="starry_night",
    config: StyleTransferConfig | None = None,
    *,
    size: int | None = None,
    style_size: int | None = None,
    init: np.ndarray | None = None,
    preprocessing: tuple[Sequence[float], Sequence[float]] | None = None,
    callback: Callable | None = None,
) -> Result:
    """Render ``content`` in the style of ``style`` (Gatys, Ecker & Bethge 2016).

    Args:
        model: a feature extractor (e.g. ``vgg16_features``) with the configured layers.
        content, style: pixels in [0, 1] (NCHW/CHW/HWC arrays, float or uint8), file paths or
            bundled names (``model_zoo.data.list_images()``; defaults ``tubingen`` and
            ``starry_night`` as in the paper's Fig. 3).
        config: :class:`StyleTransferConfig` (paper defaults when omitted).
        size: resize a content file / name to this (shorter side, centre crop; default 256, or
            the model's fixed input size); arrays keep their size.
        style_size: resize a style file / name to this. Default: the content's shorter side,
            so the brush strokes have the scale they have at the content's resolution; a
            different value keeps the style at its own scale (Gram matrices do not depend on
            the spatial size, larger values give finer strokes).
        init: an explicit start in pixel space (the content's shape).
        preprocessing: (mean, std) of the model input (default: the zoo's record).
        callback: ``callback(step, loss, terms, optimization)`` after every step; True stops.

    Returns:
        a :class:`~tf_impl.result.Result`: ``image`` the stylised picture in pixel space
        [0, 1], ``original`` the content, ``metrics`` the unweighted ``style_loss``
        (sum_l w_l S_l) and ``content_loss`` (sum P_l) at the start and at the end,
        ``history`` every weighted term per step.
    """
    model = contract_model(model)
    config = config or StyleTransferConfig()
    _check_layers(model, config.content_layers + config.style_layers)
    size = _size(model, size)
    content_pic = _picture(model, content, size, "content")
    content_px = content_pic.pixels
    check_image_size(model, content_px)
    style_pic = _picture(model, style, _size(model, style_size or min(content_px.shape[2:]),
                                             "style_size"), "style")
    style_px = style_pic.pixels
    check_image_size(model, style_px)
    start = _start(init, content_px.shape, config, content_px, style_px)
    imgs.check_memory(model, content_px.shape, list(config.content_layers + config.style_layers))
    mean, std = preprocessing or imgs.preprocessing_of(model)
    s_feats = target_features(model, imgs.normalize(style_px, mean, std), config.style_layers,
                              "style")
    c_feats = target_features(model, imgs.normalize(content_px, mean, std),
                              config.content_layers + config.style_layers, "content")
    grams = {k: gram_matrix(s_feats[k]).numpy() for k in config.style_layers}
    contents = {k: np.asarray(c_feats[k]) for k in config.content_layers}
    weights = config.weights()
    objective = build_objective(
        model, grams, weights, config.style_weight, contents=contents,
        content_weight=config.content_weight, tv_weight=config.tv_weight, tv_beta=config.tv_beta)
    first = {k: float(v) for k, v in objective(
        tf.constant(imgs.normalize(start, mean, std))).items()}
    run, final = _run(model, objective, start, config, mean, std, callback)
    metrics = {}
    for when, terms in (("_start", first), ("", final)):
        metrics["style_loss" + when] = _unweighted(terms, "style:", config.style_weight, weights)
        metrics["content_loss" + when] = _unweighted(terms, "content:", config.content_weight)
    return Result(
        technique="style_transfer",
        image=_to_pixels(run.x, mean, std),
        best_image=_to_pixels(run.best, mean, std),
        original=content_px,
        history=run.history,
        config=config.to_dict(),
        metrics=metrics,
        seconds=run.seconds,
        steps=run.steps_done,
        stopped=run.stopped,
        message=run.message,
        snapshots=[(s, _to_pixels(v, mean, std)) for s, v in run.snapshots],
        extra={
            "content": content_pic.name,
            "style": style_pic.name,
            "notes": content_pic.notes + style_pic.notes,
            "content_shape": list(content_px.shape),
            "style_shape": list(style_px.shape),
            "style_layer_weights": weights,
            "final_terms": final,
        },
    )


# -- pictures -----------------------------------------------------------------------------------
def draw_style_transfer(path, content, style, result, *, title: str = "") -> None:
    """content | style | result side by side (pixel-space images, (1, 3, H, W) or (3, H, W));
    ``result`` may be a :class:`~tf_impl.result.Result`."""
    from ..report import image_grid_figure

    image = result.image if isinstance(result, Result) else result
    image_grid_figure(path, [("content", content), ("style", style), ("result", image)],
                      title=title or "neural style transfer (Gatys et al. 2016)", size=3.2)


def draw_texture(path, source, synthesized, *, title: str = "") -> None:
    """texture source | synthesised texture side by side; ``synthesized`` may be a
    :class:`~tf_impl.result.Result`."""
    from ..report import image_grid_figure

    image = synthesized.image if isinstance(synthesized, Result) else synthesized
    image_grid_figure(path, [("source", source), ("synthesized", image)],
                      title=title or "texture synthesis (Gatys et al. 2015)", size=3.2)
