"""The defaults of texture synthesis and style transfer (Gatys et al. 2015, 2016): layers,
weights, sizes, the optimiser, in one frozen dataclass each."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...optimize import OptimizeConfig
from ..checks import (
    VisualizationConfig,
    VisualizationError,
)

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
