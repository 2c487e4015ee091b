"""The transformation network: its config, conditional instance normalisation, the
net itself, its export to ONNX, and choosing or blending its styles."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from ..checks import VisualizationConfig, VisualizationError

FORMAT = "tf_impl.fast_style"
FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE = "fast_style.json", "fast_style.npz"
_EPS = 1e-5  # instance-norm epsilon
MIN_SIDE = 16  # the smallest content side the network takes (two stride-2 downsamplings)


def shipped_path() -> Path:
    """The folder of the model trained and shipped with the repository."""
    from model_zoo.registry import ASSETS

    return Path(ASSETS) / "fast_style"


class FastStyleError(VisualizationError):
    """A bad argument or a missing/corrupt saved model; the message says what to do."""


@dataclass(frozen=True)
class FastStyleConfig(VisualizationConfig):
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

    error = FastStyleError

    def validate(self) -> None:
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
        if self.image_size < MIN_SIDE or self.image_size % 4:
            raise FastStyleError(f"image_size must be a multiple of 4, at least {MIN_SIDE}; "
                                 f"got {self.image_size}")
        if self.style_size < MIN_SIDE:
            raise FastStyleError(f"style_size must be at least {MIN_SIDE}; got "
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
