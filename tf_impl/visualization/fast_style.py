"""Fast (feed-forward) style transfer: one network, several styles, blends between them.

Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution", ECCV 2016: a convolutional *transformation network* maps a content photo to
its stylised version in one forward pass. It is trained, once per style, to minimise the
perceptual losses of a fixed pretrained VGG-16 (Gatys et al. 2016):

    L = lambda_c * ||phi_j(y) - phi_j(x)||^2 / (C_j H_j W_j)            (content, relu2_2)
      + lambda_s * sum_l ||G_l(y) - G_l(s)||^2                           (style, relu1_2 ..
      + lambda_TV * TV(y)                                                  relu4_3)

with y = f_W(x), G the Gram matrix normalised by C H W (:mod:`.perceptual`). The network
downsamples with two stride-2 convolutions, applies residual blocks and upsamples back.

Dumoulin, Shlens & Kudlur, "A Learned Representation for Artistic Style", ICLR 2017, make one
network hold S styles: every normalisation layer is a *conditional instance normalisation*

    CIN(x; s) = gamma_s * (x - mu(x)) / sigma(x) + beta_s,

with its own (gamma_s, beta_s) per style and every other weight shared; a style is picked by
an index, and a convex combination of the styles' (gamma, beta) blends them (their Fig. 7).
From that paper too: upsampling by nearest-neighbour resize followed by a convolution instead
of a transposed convolution (no checkerboard artefacts, Odena et al. 2016), reflection
padding, and a sigmoid output (pixels in [0, 1]).

Training is *not* the shared :class:`tf_impl.optimize.Optimization` loop: that loop optimises
an image, here the network's weights are learned over a stream of random content batches. A
plain compiled step (``tf.GradientTape`` and Adam with PyTorch's arithmetic,
:class:`tf_impl.optimizers.Adam`) does it; the loop around it has a tqdm progress bar, logs the
losses, stops on a non-finite loss before applying it, and on Ctrl-C returns what was trained
(the command line then saves it).

The public API takes and returns NCHW pixels in [0, 1]; the network runs NHWC inside.

Example:
    >>> from tf_impl.visualization import fast_style as fs
    >>> model = fs.load()                                   # the shipped model   # doctest: +SKIP
    >>> model.styles                                                               # doctest: +SKIP
    ('starry_night', 'the_scream', 'udnie')
    >>> out = fs.apply(model, "tubingen", style="udnie", size=256)                 # doctest: +SKIP
    >>> mix = fs.apply(model, "tubingen", style=[0.5, 0.5, 0.0], size=256)         # doctest: +SKIP

Command line (:mod:`tf_impl.cli.fast_style`):

    python -m tf_impl fast-style-train --styles starry_night,udnie --out DIR
    python -m tf_impl fast-style --image tubingen --style 1 --out runs/fs
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import tensorflow as tf

from .. import images as imgs
from ..optimizers import Adam
from .checks import VisualizationError
from .perceptual import content_loss, gram_matrix, style_loss

FORMAT = "tf_impl.fast_style"
FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE = "fast_style.json", "fast_style.npz"
_EPS = 1e-5  # instance-norm epsilon
_MIN_SIDE = 16


def shipped_path() -> Path:
    """The folder of the model trained and shipped with the repository."""
    from model_zoo.registry import ASSETS

    return Path(ASSETS) / "fast_style"


class FastStyleError(VisualizationError):
    """A bad argument or a missing/corrupt saved model; the message says what to do."""


@dataclass(frozen=True)
class FastStyleConfig:
    """Network size and training settings of fast style transfer.

    Paper values, and what was shrunk so that training fits on a 2-core CPU in minutes:

    Attributes:
        styles: the style images (bundled names or file paths), one (gamma, beta) set each.
            Dumoulin et al. train 10 to 32 styles per network; 3 here.
        channels: filters of the 9x9 input conv and the two stride-2 convs (the upsampling
            convs mirror them). Johnson et al.: (32, 64, 128); Dumoulin et al. the same.
            Shrunk to (16, 32, 32).
        residual_blocks: Johnson et al.: 5 blocks of two 3x3 convs. Shrunk to 3.
        outer_kernel: the first and last convolutions' kernel (9 in both papers).
        image_size: training crops. Johnson et al.: 256x256 COCO images; Dumoulin et al.:
            256x256 ImageNet crops. Shrunk to 64x64 random crops of the bundled photos plus
            CIFAR-10 training images upsampled.
        cifar_fraction: the share of each batch drawn from CIFAR-10 (the rest: photo crops).
        style_size: the style image is resized (shorter side) and centre-cropped to this
            before its Gram matrices are taken. The scale of the learned brush strokes follows
            style_size / image_size (2 here; Johnson et al. use the style image at about the
            training size).
        batch_size: Johnson et al.: 4. Kept.
        steps: Johnson et al.: 40,000 iterations (2 epochs of COCO); Dumoulin et al.: 40,000
            per style set. The shipped model: see its fast_style.json.
        learning_rate: Adam, 1e-3 (Johnson et al.; Dumoulin et al. use the same). The shipped
            model used 2e-3 for its short run (2,500 steps).
        content_layer: relu2_2 (Johnson et al. for style transfer).
        style_layers: relu1_2, relu2_2, relu3_3, relu4_3 (Johnson et al.), equal weights.
        content_weight, style_weight: lambda_c and lambda_s for this project's mean-based
            losses (:func:`.perceptual.content_loss`, :func:`.perceptual.style_loss`); their
            ratio 1e5 is the one of pytorch/examples' fast_neural_style, which uses the same
            normalisations.
        tv_weight: lambda_TV on the mean squared neighbour difference of the output pixels
            (Johnson et al. cross-validate it in [1e-6, 1e-4] for their sum-based TV).
        loss_model: the zoo's pretrained VGG-16 convolutional part.
        seed: the weights' initialisation and the order of batches and styles.
        log_every: a log line with the losses every this many steps (0: none).
    """

    styles: tuple[str, ...] = ("starry_night", "the_scream", "udnie")
    channels: tuple[int, int, int] = (16, 32, 32)
    residual_blocks: int = 3
    outer_kernel: int = 9
    image_size: int = 64
    cifar_fraction: float = 0.5
    style_size: int = 128
    batch_size: int = 4
    steps: int = 3000
    learning_rate: float = 1e-3
    content_layer: str = "relu2_2"
    style_layers: tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
    content_weight: float = 1.0
    style_weight: float = 1e5
    tv_weight: float = 1.0
    loss_model: str = "vgg16_features"
    seed: int = 0
    log_every: int = 100

    def __post_init__(self):
        if isinstance(self.styles, str) or not len(self.styles):
            raise FastStyleError("styles must be a non-empty list of style images, e.g. "
                                 "('starry_night', 'udnie')")
        if len(set(self.styles)) != len(self.styles):
            raise FastStyleError(f"styles must be distinct; got {list(self.styles)}")
        if len(self.channels) != 3 or min(self.channels) < 1:
            raise FastStyleError(f"channels must be three positive filter counts; got "
                                 f"{self.channels}")
        if self.residual_blocks < 0:
            raise FastStyleError(f"residual_blocks must be >= 0; got {self.residual_blocks}")
        if self.outer_kernel < 1 or self.outer_kernel % 2 == 0:
            raise FastStyleError(f"outer_kernel must be odd and positive; got "
                                 f"{self.outer_kernel}")
        if self.image_size < _MIN_SIDE or self.image_size % 4:
            raise FastStyleError(f"image_size must be a multiple of 4, at least {_MIN_SIDE}; "
                                 f"got {self.image_size}")
        if self.style_size < _MIN_SIDE:
            raise FastStyleError(f"style_size must be at least {_MIN_SIDE}; got "
                                 f"{self.style_size}")
        if not 0 <= self.cifar_fraction <= 1:
            raise FastStyleError(f"cifar_fraction must be in [0, 1]; got {self.cifar_fraction}")
        if self.batch_size < 1 or self.steps < 0:
            raise FastStyleError("batch_size must be >= 1 and steps >= 0")
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise FastStyleError(f"learning_rate must be a positive number; got "
                                 f"{self.learning_rate}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            if not getattr(self, name) >= 0:
                raise FastStyleError(f"{name} must be >= 0; got {getattr(self, name)}")
        if not self.style_layers:
            raise FastStyleError("style_layers must name at least one layer, e.g. relu2_2")

    def with_(self, **changes) -> FastStyleConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FastStyleConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise FastStyleError(f"unknown config fields {unknown}: the saved model was written "
                                 "by another version of fast_style")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


# -- the network ------------------------------------------------------------------------------
def _layer_specs(config: FastStyleConfig) -> list[tuple[str, int, int, int, int, bool]]:
    """(name, kernel, stride, in channels, out channels, upsample first) of every conv."""
    c1, c2, c3 = config.channels
    k = config.outer_kernel
    specs = [("conv1", k, 1, 3, c1, False), ("conv2", 3, 2, c1, c2, False),
             ("conv3", 3, 2, c2, c3, False)]
    for i in range(1, config.residual_blocks + 1):
        specs += [(f"res{i}a", 3, 1, c3, c3, False), (f"res{i}b", 3, 1, c3, c3, False)]
    specs += [("up1", 3, 1, c3, c2, True), ("up2", 3, 1, c2, c1, True), ("out", k, 1, c1, 3, False)]
    return specs


def instance_norm(x, gamma, beta, eps: float = _EPS):
    """Instance normalisation of an NHWC tensor with per-sample (N, C) or shared (C,) scale and
    shift: gamma * (x - mean_hw) / sqrt(var_hw + eps) + beta (Ulyanov et al. 2016)."""
    mean, var = tf.nn.moments(x, axes=[1, 2], keepdims=True)
    gamma = tf.convert_to_tensor(gamma, x.dtype)
    beta = tf.convert_to_tensor(beta, x.dtype)
    if gamma.shape.rank == 2:
        gamma, beta = gamma[:, None, None, :], beta[:, None, None, :]
    return (x - mean) * tf.math.rsqrt(var + eps) * gamma + beta


def conditional_instance_norm(x, gammas, betas, style_weights, eps: float = _EPS):
    """Conditional instance normalisation (Dumoulin et al. 2017, eq. 5) with a blend.

    ``gammas``/``betas`` are (S, C), one row per style; ``style_weights`` is (S,) or (N, S)
    (per sample). The scale and shift used are the weighted sums ``w @ gammas``, ``w @ betas``:
    a one-hot ``w`` picks one style, a convex ``w`` blends them.
    """
    w = tf.convert_to_tensor(style_weights, x.dtype)
    w = w[None] if w.shape.rank == 1 else w
    return instance_norm(x, tf.matmul(w, gammas), tf.matmul(w, betas), eps)


def _upsample2(x):
    """Nearest-neighbour x2 upsampling of NHWC (each pixel becomes a 2x2 block)."""
    s = tf.shape(x)
    x = tf.broadcast_to(x[:, :, None, :, None, :], [s[0], s[1], 2, s[2], 2, s[3]])
    return tf.reshape(x, [s[0], 2 * s[1], 2 * s[2], s[3]])


class FastStyleNet(tf.Module):
    """Johnson et al.'s transformation network with conditional instance normalisation.

    conv 9x9 -> conv 3x3 /2 -> conv 3x3 /2 -> residual blocks -> (x2 resize, conv 3x3) twice
    -> conv 9x9 -> sigmoid; every conv (reflection padded, no bias) is followed by CIN with one
    (gamma, beta) per style, then ReLU (not inside the residual sum, not at the output).

    ``model(pixels, style_weights)`` runs it: pixels NCHW in [0, 1] with H and W multiples of
    4, weights (S,) or (N, S); no checks (use :func:`apply` for checked input).
    """

    def __init__(self, config: FastStyleConfig | None = None, *, seed: int | None = None,
                 name: str = "fast_style"):
        super().__init__(name=name)
        self.config = config or FastStyleConfig()
        rng = np.random.default_rng(self.config.seed if seed is None else seed)
        s = self.num_styles
        self.specs = _layer_specs(self.config)
        self.kernels, self.gammas, self.betas = {}, {}, {}
        for lname, k, _, cin, cout, _ in self.specs:
            std = math.sqrt(2.0 / (k * k * cin))  # He et al. 2015 (ReLU follows)
            init = rng.normal(0.0, std, (k, k, cin, cout)).astype(np.float32)
            self.kernels[lname] = tf.Variable(init, name=f"{lname}/kernel")
            self.gammas[lname] = tf.Variable(np.ones((s, cout), np.float32), name=f"{lname}/gamma")
            self.betas[lname] = tf.Variable(np.zeros((s, cout), np.float32), name=f"{lname}/beta")

    @property
    def styles(self) -> tuple[str, ...]:
        return tuple(self.config.styles)

    @property
    def num_styles(self) -> int:
        return len(self.config.styles)

    def weights(self) -> dict[str, np.ndarray]:
        """Every weight as numpy, by name (``conv1/kernel``, ``conv1/gamma``, ...)."""
        out = {}
        for lname, *_ in self.specs:
            out[f"{lname}/kernel"] = self.kernels[lname].numpy()
            out[f"{lname}/gamma"] = self.gammas[lname].numpy()
            out[f"{lname}/beta"] = self.betas[lname].numpy()
        return out

    def _variables_by_name(self) -> dict[str, tf.Variable]:
        out = {}
        for lname, *_ in self.specs:
            out[f"{lname}/kernel"] = self.kernels[lname]
            out[f"{lname}/gamma"] = self.gammas[lname]
            out[f"{lname}/beta"] = self.betas[lname]
        return out

    def set_weights(self, weights: dict[str, np.ndarray], *, source: str = "weights") -> None:
        """Assign weights by name; a missing name or a wrong shape is refused, saying which."""
        variables = self._variables_by_name()
        missing = sorted(set(variables) - set(weights))
        extra = sorted(set(weights) - set(variables))
        if missing or extra:
            raise FastStyleError(f"{source} does not fit this network ({self._describe()}): "
                                 f"missing {missing[:5]}, unexpected {extra[:5]}")
        for key, var in variables.items():
            value = np.asarray(weights[key])
            if tuple(value.shape) != tuple(var.shape):
                raise FastStyleError(f"{source}: {key} has shape {value.shape}, the network "
                                     f"({self._describe()}) needs {tuple(var.shape)}")
            if not np.all(np.isfinite(value)):
                raise FastStyleError(f"{source}: {key} contains NaN or Inf")
            var.assign(value.astype(np.float32))

    def _describe(self) -> str:
        c = self.config
        return (f"{self.num_styles} styles, channels {tuple(c.channels)}, "
                f"{c.residual_blocks} residual blocks")

    def _conv(self, x, lname, k, stride, w):
        p = k // 2
        if p:
            x = tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")
        x = tf.nn.conv2d(x, self.kernels[lname], stride, "VALID")
        return conditional_instance_norm(x, self.gammas[lname], self.betas[lname], w)

    def forward_nhwc(self, x, style_weights):
        """NHWC pixels -> NHWC stylised pixels in (0, 1)."""
        specs = {s[0]: s for s in self.specs}
        w = style_weights

        def block(h, lname, relu=True):
            _, k, stride, _, _, up = specs[lname]
            if up:
                h = _upsample2(h)
            h = self._conv(h, lname, k, stride, w)
            return tf.nn.relu(h) if relu else h

        h = block(x, "conv1")
        h = block(h, "conv2")
        h = block(h, "conv3")
        for i in range(1, self.config.residual_blocks + 1):
            h = h + block(block(h, f"res{i}a"), f"res{i}b", relu=False)
        h = block(h, "up1")
        h = block(h, "up2")
        return tf.sigmoid(block(h, "out", relu=False))

    def __call__(self, pixels, style_weights):
        x = tf.transpose(tf.convert_to_tensor(pixels, tf.float32), [0, 2, 3, 1])
        y = self.forward_nhwc(x, tf.convert_to_tensor(style_weights, tf.float32))
        return tf.transpose(y, [0, 3, 1, 2])

    def onnx_function(self):
        """(tf.function, input signature) for ONNX export: inputs ``pixels`` (N, 3, H, W) in
        [0, 1] with H, W multiples of 4 and ``style_weights`` (S,); output NCHW pixels."""
        sig = [tf.TensorSpec((None, 3, None, None), tf.float32, name="pixels"),
               tf.TensorSpec((self.num_styles,), tf.float32, name="style_weights")]
        return tf.function(lambda p, w: self(p, w), input_signature=sig), sig


def export_onnx(model: FastStyleNet, path, opset: int = 17):
    """Export the network (all styles, blend weights as the second input) to ONNX via tf2onnx
    (:func:`converters.tf_to_onnx.function_to_onnx`). Returns the ModelProto."""
    from converters.tf_to_onnx import function_to_onnx

    fn, sig = model.onnx_function()
    return function_to_onnx(fn, sig, path, opset=opset)


# -- choosing a style -------------------------------------------------------------------------
def _style_list(model: FastStyleNet) -> str:
    return ", ".join(f"{i} {n}" for i, n in enumerate(model.styles))


def style_weights(model: FastStyleNet, style) -> np.ndarray:
    """The (S,) blend weights for ``style``: an index, a style name, or S convex weights.

    Refuses an index out of range (saying how many styles the model holds), an unknown name,
    and weights of the wrong length, negative, non-finite or not summing to 1.
    """
    n = model.num_styles
    if isinstance(style, str):
        if style in model.styles:
            return np.eye(n, dtype=np.float32)[model.styles.index(style)]
        try:
            style = int(style)
        except ValueError:
            raise FastStyleError(f"unknown style {style!r}: this model holds {n} styles "
                                 f"({_style_list(model)}); give an index or a name") from None
    if isinstance(style, (bool, np.bool_)):
        raise FastStyleError(f"style must be an index, a name or blend weights; got {style!r}")
    if isinstance(style, (int, np.integer)):
        if not 0 <= style < n:
            raise FastStyleError(f"style index {style} is out of range: this model holds {n} "
                                 f"styles ({_style_list(model)}), so use 0 to {n - 1}")
        return np.eye(n, dtype=np.float32)[int(style)]
    try:
        w = np.asarray(style, np.float64)
    except (TypeError, ValueError):
        raise FastStyleError(f"style must be an index, a name or {n} blend weights; got "
                             f"{style!r}") from None
    if w.ndim != 1 or w.shape[0] != n:
        raise FastStyleError(f"blend weights must be {n} numbers, one per style "
                             f"({_style_list(model)}); got shape {w.shape}")
    if not np.all(np.isfinite(w)):
        raise FastStyleError(f"blend weights must be finite; got {w.tolist()}")
    if np.any(w < 0):
        raise FastStyleError(f"blend weights must be >= 0 (a convex combination); got "
                             f"{w.tolist()}")
    if abs(w.sum() - 1.0) > 1e-3:
        raise FastStyleError(f"blend weights must sum to 1 (a convex combination); they sum "
                             f"to {w.sum():.4g}: divide them by that")
    return w.astype(np.float32)


# -- applying ---------------------------------------------------------------------------------
def _content_pixels(content, size: int | None) -> np.ndarray:
    if isinstance(content, (str, os.PathLike)):
        picture = imgs.load_image(content, size or 256)
    else:
        picture = imgs.as_pixels(content, name="content image")
    imgs.warn_notes(picture)
    return picture.pixels


def apply(model: FastStyleNet, content, style=0, *, size: int | None = None) -> np.ndarray:
    """Stylise ``content`` with one style of ``model`` or a blend of its styles.

    Args:
        model: a :class:`FastStyleNet` (e.g. :func:`load`).
        content: pixels in [0, 1] (NCHW/CHW/HWC, float or uint8), a file path or a bundled
            name (resized to ``size``, default 256).
        style: an index in [0, S), a style name, or S blend weights (>= 0, summing to 1).

    Returns:
        NCHW float32 pixels in [0, 1], the size of the content. Sides that are not multiples
        of 4 are reflection-padded for the network and cropped back.
    """
    w = style_weights(model, style)
    px = _content_pixels(content, size)
    n, _, h, wd = px.shape
    if min(h, wd) < _MIN_SIDE:
        raise FastStyleError(f"the content image is {h}x{wd}; fast style transfer needs at "
                             f"least {_MIN_SIDE}x{_MIN_SIDE} pixels")
    ph, pw = -h % 4, -wd % 4
    if ph or pw:
        px = np.pad(px, [(0, 0), (0, 0), (0, ph), (0, pw)], mode="reflect")
    out = _forward(model, tf.constant(px), tf.constant(w))
    return np.clip(out.numpy()[:, :, :h, :wd], 0.0, 1.0).astype(np.float32)


def _forward(model: FastStyleNet, px, w):
    fn = getattr(model, "_compiled_forward", None)
    if fn is None:
        fn = tf.function(lambda p, v: model(p, v), reduce_retracing=True)
        model._compiled_forward = fn
    return fn(px, w)


def draw_styles(path, model: FastStyleNet, content, *, blend=None, size: int = 256) -> None:
    """Draw content | each style | a blend (equal weights unless ``blend`` is given)."""
    from ..report import image_grid_figure

    px = _content_pixels(content, size)[:1]
    blend = style_weights(model, blend if blend is not None else
                          np.full(model.num_styles, 1.0 / model.num_styles))
    panels = [("content", px)]
    panels += [(f"{i}: {name}", apply(model, px, i)) for i, name in enumerate(model.styles)]
    label = " + ".join(f"{b:.2f} {n}" for b, n in zip(blend, model.styles) if b > 0)
    panels.append((f"blend\n{label}", apply(model, px, blend)))
    image_grid_figure(path, panels, ncols=len(panels),
                      title="fast style transfer (Johnson et al. 2016, conditional instance norm "
                      "of Dumoulin et al. 2017)")


# -- losses -----------------------------------------------------------------------------------
class PerceptualLoss:
    """Johnson et al.'s losses on a pretrained VGG with the styles' Gram matrices precomputed.

    ``loss(net, content, style_index)`` -> {"content", "style", "tv", "loss"} (weighted sum),
    averaged over the batch; differentiable with respect to the network's weights.
    """

    def __init__(self, config: FastStyleConfig, vgg=None, style_pixels=None):
        self.config = config
        if vgg is None:
            import model_zoo
            from converters import onnx_to_tf

            vgg = onnx_to_tf.load(model_zoo.load(config.loss_model))
        self.vgg = vgg
        for layer in (config.content_layer, *config.style_layers):
            try:
                vgg.resolve(layer)
            except KeyError as err:
                raise FastStyleError(err.args[0] if err.args else str(err)) from None
        mean, std = imgs.preprocessing_of(vgg)
        self.mean = tf.constant(np.asarray(mean, np.float32).reshape(1, -1, 1, 1))
        self.std = tf.constant(np.asarray(std, np.float32).reshape(1, -1, 1, 1))
        if style_pixels is None:
            style_pixels = [load_style(s, config.style_size) for s in config.styles]
        if len(style_pixels) != len(config.styles):
            raise FastStyleError(f"{len(style_pixels)} style images for "
                                 f"{len(config.styles)} styles")
        per_style = [self.features(tf.constant(p), config.style_layers) for p in style_pixels]
        self.grams = {layer: tf.constant(np.concatenate(
            [gram_matrix(f[layer]).numpy() for f in per_style])) for layer in config.style_layers}

    def features(self, pixels, layers):
        return self.vgg((pixels - self.mean) / self.std, taps=list(layers))

    def __call__(self, net: FastStyleNet, content, style_index):
        cfg = self.config
        target = tf.stop_gradient(self.features(content, [cfg.content_layer])[cfg.content_layer])
        w = tf.one_hot(style_index, net.num_styles, dtype=tf.float32)
        y = net(content, w)
        layers = list(dict.fromkeys([cfg.content_layer, *cfg.style_layers]))
        feats = self.features(y, layers)
        c = content_loss({cfg.content_layer: feats[cfg.content_layer]},
                         {cfg.content_layer: target})
        grams = {layer: tf.gather(self.grams[layer], style_index) for layer in cfg.style_layers}
        s = style_loss(feats, grams)
        dx = y[:, :, :, 1:] - y[:, :, :, :-1]
        dy = y[:, :, 1:, :] - y[:, :, :-1, :]
        tv = tf.reduce_mean(tf.square(dx)) + tf.reduce_mean(tf.square(dy))
        loss = cfg.content_weight * c + cfg.style_weight * s + cfg.tv_weight * tv
        return {"loss": loss, "content": c, "style": s, "tv": tv}


def load_style(style: str, size: int) -> np.ndarray:
    """A style image (bundled name or path) as (1, 3, size, size) pixels."""
    try:
        return imgs.load_image(style, size).pixels[:1]
    except imgs.ImageError as err:
        raise FastStyleError(f"style image {style!r}: {err}") from None


def evaluate(model: FastStyleNet, loss: PerceptualLoss, content) -> dict[str, dict[str, float]]:
    """The losses of every style on a fixed content batch: {style name: {term: value}}."""
    px = tf.constant(np.asarray(content, np.float32))
    out = {}
    for i, name in enumerate(model.styles):
        terms = loss(model, px, tf.constant(i))
        out[name] = {k: float(v) for k, v in terms.items()}
    return out


# -- training data ----------------------------------------------------------------------------
HELD_OUT = ("tubingen", "astronaut")  # never trained on: the evaluation and demo pictures


def training_photos(size: int = 256) -> np.ndarray:
    """The bundled photos (not the style images, not :data:`HELD_OUT`) at ``size``, NCHW."""
    import model_zoo.data as data

    names = [n for n in data.list_images() if n not in data.SKIMAGE_NAMES
             and n not in HELD_OUT and data.image_path(n).parent.name != "style"]
    return np.concatenate([data.image(n, size=size, normalize=False) for n in names])


def _resize(px: np.ndarray, size: int) -> np.ndarray:
    x = tf.image.resize(np.transpose(px, (0, 2, 3, 1)), (size, size), method="bilinear",
                        antialias=True)
    return np.clip(np.transpose(x.numpy(), (0, 3, 1, 2)), 0, 1).astype(np.float32)


class ContentSampler:
    """Random training batches: crops (random position and flip) of the photos, and CIFAR-10
    training images upsampled to the crop size, mixed by ``cifar_fraction``."""

    def __init__(self, config: FastStyleConfig, photos: np.ndarray | None = None,
                 cifar: np.ndarray | None = None, seed: int | None = None):
        self.size = config.image_size
        self.fraction = config.cifar_fraction
        self.rng = np.random.default_rng(config.seed if seed is None else seed)
        if photos is None and config.cifar_fraction < 1:
            photos = training_photos(max(256, 2 * self.size))
        if cifar is None and config.cifar_fraction > 0:
            import model_zoo.data as data

            cifar = data.cifar10("train", normalize=False)[0]
        self.photos = photos
        self.cifar = cifar
        if photos is not None and min(photos.shape[2:]) < self.size:
            raise FastStyleError(f"content photos of {photos.shape[2]}x{photos.shape[3]} are "
                                 f"smaller than the {self.size}x{self.size} crops")

    def batch(self, n: int) -> np.ndarray:
        out = np.empty((n, 3, self.size, self.size), np.float32)
        from_cifar = self.rng.random(n) < self.fraction
        if self.photos is None:
            from_cifar[:] = True
        if self.cifar is None:
            from_cifar[:] = False
        k = int(from_cifar.sum())
        if k:
            idx = self.rng.integers(0, len(self.cifar), k)
            out[from_cifar] = _resize(self.cifar[idx], self.size)
        for i in np.flatnonzero(~from_cifar):
            img = self.photos[self.rng.integers(0, len(self.photos))]
            top = self.rng.integers(0, img.shape[1] - self.size + 1)
            left = self.rng.integers(0, img.shape[2] - self.size + 1)
            out[i] = img[:, top:top + self.size, left:left + self.size]
        flip = self.rng.random(n) < 0.5
        out[flip] = out[flip][:, :, :, ::-1]
        return out


def evaluation_batch(size: int) -> np.ndarray:
    """A fixed content batch never trained on: the held-out photos and 2 CIFAR-10 test images."""
    import model_zoo.data as data

    photos = np.concatenate([data.image(n, size=size, normalize=False) for n in HELD_OUT])
    cifar = _resize(data.cifar10("test", n=2, normalize=False)[0], size)
    return np.concatenate([photos, cifar])


# -- training ---------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` returns: the network, the per-step history and the losses of every
    style on a fixed held-out batch before and after training."""

    model: FastStyleNet
    history: dict[str, list[float]]
    steps: int
    seconds: float
    stopped: str | None = None  # None, "interrupted", "non-finite", "callback"
    message: str = ""
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        return self.stopped == "interrupted"

    def summary(self) -> dict:
        return {"steps": self.steps, "seconds": round(self.seconds, 2), "stopped": self.stopped,
                "message": self.message, "before": self.before, "after": self.after}


class _Step:
    """The compiled training step, split in two so that a non-finite loss is never applied."""

    def __init__(self, net: FastStyleNet, loss: PerceptualLoss, learning_rate: float):
        self.net, self.loss = net, loss
        self.variables = list(net.trainable_variables)
        self.optimizer = Adam(learning_rate=learning_rate)
        self.gradients = tf.function(self._gradients, reduce_retracing=True)
        self.apply = tf.function(self._apply, reduce_retracing=True)

    def _gradients(self, content, style_index):
        with tf.GradientTape() as tape:
            terms = self.loss(self.net, content, style_index)
        return terms, tape.gradient(terms["loss"], self.variables)

    def _apply(self, grads):
        self.optimizer.apply_gradients(zip(grads, self.variables))


def train(config: FastStyleConfig | None = None, *, model: FastStyleNet | None = None,
          vgg=None, sampler: ContentSampler | None = None, style_pixels=None,
          eval_content: np.ndarray | None = None, progress: bool = True,
          callback: Callable | None = None) -> TrainResult:
    """Train (or go on training) a multi-style network with Johnson et al.'s losses.

    Every step draws a content batch from ``sampler`` and one style index (uniformly, seeded)
    and takes one Adam step on the weighted sum of content, style and TV losses.

    Args:
        config: :class:`FastStyleConfig` (defaults when omitted).
        model: a network to train further (default: a fresh one from ``config``).
        vgg: the loss network (default: the zoo's ``config.loss_model``).
        sampler: the content batches (default :class:`ContentSampler` from ``config``).
        style_pixels: the style images as pixel arrays (default: loaded from
            ``config.styles`` at ``config.style_size``).
        eval_content: a fixed batch for the before/after losses (default
            :func:`evaluation_batch`; an empty array skips them).
        progress: tqdm progress bar and a log line every ``config.log_every`` steps.
        callback: ``callback(step, terms, model)`` after every step; return True to stop.

    Returns:
        a :class:`TrainResult`; on Ctrl-C (or a non-finite loss, which is not applied) it
        holds what was trained so far, with ``stopped`` saying why.
    """
    config = config or FastStyleConfig()
    net = model or FastStyleNet(config)
    if tuple(net.styles) != tuple(config.styles):
        raise FastStyleError(f"the model holds styles {list(net.styles)}, the config "
                             f"{list(config.styles)}: train it with its own styles")
    loss = PerceptualLoss(config, vgg, style_pixels)
    sampler = sampler or ContentSampler(config)
    if eval_content is None:
        eval_content = evaluation_batch(config.image_size)
    before = evaluate(net, loss, eval_content) if len(eval_content) else {}
    step_fn = _Step(net, loss, config.learning_rate)
    rng = np.random.default_rng(config.seed + 1)
    history: dict[str, list[float]] = {"loss": [], "content": [], "style": [], "tv": [],
                                       "style_index": []}
    stopped, message, done = None, "", 0
    from tqdm.auto import tqdm

    bar = tqdm(total=config.steps, desc="fast-style", disable=not progress, file=sys.stderr,
               leave=False)
    t0 = time.perf_counter()
    try:
        for step in range(1, config.steps + 1):
            s = int(rng.integers(0, net.num_styles))
            content = tf.constant(sampler.batch(config.batch_size))
            terms, grads = step_fn.gradients(content, tf.constant(s))
            terms = {k: float(v) for k, v in terms.items()}
            if not all(math.isfinite(v) for v in terms.values()):
                stopped = "non-finite"
                message = (f"stopped at step {step}: the loss became NaN/Inf ({terms}); the "
                           "update was not applied. Lower learning_rate")
                break
            step_fn.apply(grads)
            done = step
            for k, v in terms.items():
                history[k].append(v)
            history["style_index"].append(s)
            bar.update(1)
            bar.set_postfix(loss=f"{terms['loss']:.4g}", style=net.styles[s], refresh=False)
            if progress and config.log_every and step % config.log_every == 0:
                recent = {k: float(np.mean(history[k][-config.log_every:]))
                          for k in ("loss", "content", "style", "tv")}
                bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in
                                                       recent.items()), file=sys.stderr)
            if callback is not None and callback(step, terms, net):
                stopped, message = "callback", f"stopped by the callback at step {step}"
                break
    except KeyboardInterrupt:
        stopped = "interrupted"
        message = f"interrupted after {done} of {config.steps} steps; the weights trained so far " \
                  "are kept"
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    after = evaluate(net, loss, eval_content) if len(eval_content) else {}
    return TrainResult(net, history, done, seconds, stopped, message or
                       f"{done} steps in {seconds:.1f} s", before, after)


# -- saving and loading -----------------------------------------------------------------------
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _style_record(style: str) -> dict:
    rec = {"name": style if Path(style).suffix == "" else Path(style).stem}
    try:
        import model_zoo.data as data

        p = Path(style) if Path(style).is_file() else data.image_path(style)
        rec.update(file=p.name, sha256=_sha256(p))
        if p.parent.parent.name == "images":
            rec["bundled"] = f"model_zoo/assets/images/{p.parent.name}/{p.name}"
    except Exception:  # an unreadable source only loses the provenance note
        pass
    return rec


def save(model: FastStyleNet, folder, *, training: dict | None = None) -> Path:
    """Write ``fast_style.npz`` (weights, float32) and ``fast_style.json`` (config, styles,
    weights checksum, training summary) into ``folder``; returns the JSON path."""
    from ..report import OutputDir

    out = OutputDir(folder)
    out._atomic(WEIGHTS_FILE, lambda p: _write_npz(p, model.weights()))
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "network": "Johnson et al. 2016 transformation network, conditional instance norm "
                   "(Dumoulin et al. 2017), resize-conv upsampling, sigmoid output",
        "input": "pixels NCHW in [0, 1]; H, W multiples of 4 (apply() pads)",
        "styles": [_style_record(s) for s in model.styles],
        "config": model.config.to_dict(),
        "weights_sha256": _sha256(out.file(WEIGHTS_FILE)),
        "parameters": int(sum(v.size for v in model.weights().values())),
        "training": training or {},
    }
    return out.write_json(CONFIG_FILE, meta)


def _write_npz(path, weights):
    with open(path, "wb") as f:
        np.savez_compressed(f, **weights)


def _paths(path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix == ".json":
        return p, p.with_suffix(".npz")
    if p.suffix == ".npz":
        return p.with_suffix(".json"), p
    return p / CONFIG_FILE, p / WEIGHTS_FILE


def load(path=None) -> FastStyleNet:
    """Load a saved network (a folder holding ``fast_style.json`` and ``fast_style.npz``, or
    either file); by default the shipped one (:func:`shipped_path`).

    A missing file, invalid JSON, a weights file that does not match its recorded checksum,
    or weights that do not fit the recorded config are refused with a message saying so.
    """
    meta_path, npz_path = _paths(shipped_path() if path is None else path)
    hint = ("save one with fast_style.save(model, folder) or train one with `python -m "
            "tf_impl fast-style-train --out DIR`")
    for p in (meta_path, npz_path):
        if not p.is_file():
            raise FastStyleError(f"no saved fast-style model at {Path(path or meta_path.parent)}"
                                 f": {p} is missing (a model is {CONFIG_FILE} + {WEIGHTS_FILE}"
                                 f" in one folder); {hint}")
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise FastStyleError(f"{meta_path} is corrupt (not valid JSON: {err}); restore it (git "
                             f"checkout) or re-save the model") from None
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise FastStyleError(f"{meta_path} is not a fast-style model of format {FORMAT} "
                             f"version {FORMAT_VERSION} (found {meta.get('format')!r} version "
                             f"{meta.get('version')!r})")
    recorded = meta.get("weights_sha256")
    if recorded and _sha256(npz_path) != recorded:
        raise FastStyleError(f"{npz_path} is corrupt: its checksum does not match the one "
                             f"recorded in {meta_path.name}; restore it (git checkout) or "
                             "re-save the model")
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            weights = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise FastStyleError(f"{npz_path} is corrupt (cannot read it as .npz: {err}); restore "
                             "it (git checkout) or re-save the model") from None
    try:
        config = FastStyleConfig.from_dict(meta["config"])
    except (KeyError, TypeError) as err:
        raise FastStyleError(f"{meta_path} has no valid config ({err})") from None
    net = FastStyleNet(config)
    net.set_weights(weights, source=str(npz_path))
    net.metadata = meta
    return net
