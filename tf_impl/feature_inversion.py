"""Feature inversion: recover an image from one or more layers' activations.

Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them", CVPR 2015:

    x* = argmin_x  sum_l w_l ||phi_l(x) - phi_l(x0)||^2 / ||phi_l(x0)||^2
                   + lambda_TV * TV^beta(x) + lambda_alpha * ||x||_alpha^alpha

(eq. 1 with the normalised data term of eq. 2, the alpha-norm of eq. 4 and TV^beta of eq. 5),
minimised with Adam from noise (or a blurred copy, or a given start) inside the valid pixel
box. The image lives in the model's normalised input space; the box, the result and the
metrics are in pixel space [0, 1].

Example:
    >>> import model_zoo
    >>> from converters import onnx_to_tf
    >>> from tf_impl.feature_inversion import FeatureInversionConfig, invert_features
    >>> model = onnx_to_tf.load(model_zoo.load("vgg16_features"))      # doctest: +SKIP
    >>> result = invert_features(model, "astronaut", ["conv3_1"])         # doctest: +SKIP
    >>> result.metrics["psnr"]                                            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from . import images as imgs
from . import memory
from . import metrics as m
from .config import TechniqueConfig
from .optimize import Optimization, OptimizeConfig, pixel_box, seeded_noise
from .priors import AlphaNorm, Objective, TotalVariation, feature_match
from .result import Result

_INITS = ("noise", "blur", "gray")


@dataclass(frozen=True)
class FeatureInversionConfig(TechniqueConfig):
    """Defaults for feature inversion (Mahendran & Vedaldi 2015), tuned on VGG16 at 224x224.

    Attributes:
        tv_weight: lambda_TV, on the *mean* TV^beta over pixel values (``normalize=True``), so
            it does not depend on the image size.
        tv_beta: beta of TV^beta (2 as in the paper's experiments); ``None`` switches to
            ``tf.image.total_variation`` (anisotropic L1).
        alpha_weight, alpha: lambda_alpha and alpha of the alpha-norm prior (mean over pixel
            values; the paper uses alpha 6; 0 weight turns it off).
        init: ``"noise"`` (grey plus Gaussian noise of ``init_std``, seeded), ``"blur"`` (the
            original blurred by a Gaussian of ``blur_sigma`` pixels) or ``"gray"``.
        seed: the noise seed (the PyTorch reference draws the same noise).
        clip_to_pixels: keep the image inside the valid pixel box [0, 1] after every step.
        optimize: the shared loop's settings (Adam, learning rate, steps, progress...).
    """

    tv_weight: float = 0.05
    tv_beta: float | None = 2.0
    alpha_weight: float = 0.0
    alpha: float = 6.0
    init: str = "noise"
    init_std: float = 0.1
    blur_sigma: float = 4.0
    seed: int = 0
    clip_to_pixels: bool = True
    optimize: OptimizeConfig = field(
        default_factory=lambda: OptimizeConfig(steps=300, learning_rate=0.1)
    )

    def validate(self) -> None:
        if self.init not in _INITS:
            raise self.error(
                f"init must be one of {_INITS} (or pass init=array); got {self.init!r}"
            )
        for name in ("tv_weight", "alpha_weight", "init_std", "blur_sigma"):
            if getattr(self, name) < 0:
                raise self.error(f"{name} must be >= 0; got {getattr(self, name)}")



def gaussian_blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of an NCHW batch (reflect padding), in TensorFlow."""
    if sigma <= 0:
        return np.asarray(pixels, np.float32)
    r = max(1, int(3 * sigma + 0.5))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(np.float32)
    x = tf.transpose(tf.constant(pixels, tf.float32), [0, 2, 3, 1])
    c = x.shape[-1]
    x = tf.pad(x, [[0, 0], [r, r], [r, r], [0, 0]], mode="REFLECT")
    kh = tf.tile(tf.reshape(k, [-1, 1, 1, 1]), [1, 1, c, 1])
    kw = tf.tile(tf.reshape(k, [1, -1, 1, 1]), [1, 1, c, 1])
    x = tf.nn.depthwise_conv2d(x, kh, [1, 1, 1, 1], "VALID")
    x = tf.nn.depthwise_conv2d(x, kw, [1, 1, 1, 1], "VALID")
    return tf.transpose(x, [0, 3, 1, 2]).numpy()


def initial_pixels(config: FeatureInversionConfig, original: np.ndarray) -> np.ndarray:
    """The start in pixel space, from ``config.init`` (seeded, reproducible)."""
    if config.init == "noise":
        x = 0.5 + seeded_noise(original.shape, config.seed, config.init_std)
    elif config.init == "blur":
        x = gaussian_blur(original, config.blur_sigma)
    else:
        x = np.full(original.shape, 0.5, np.float32)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def build_objective(
    model,
    targets: Mapping[str, np.ndarray],
    config: FeatureInversionConfig,
    weights: Mapping[str, float] | None = None,
) -> Objective:
    """The data term over the layers plus the configured priors."""
    model = contract_model(model)
    objective = feature_match(model, targets, weights)
    if config.tv_weight:
        objective = objective + config.tv_weight * TotalVariation(config.tv_beta, normalize=True)
    if config.alpha_weight:
        objective = objective + config.alpha_weight * AlphaNorm(config.alpha, normalize=True)
    return objective


def _layers(model, layers) -> list[str]:
    model = contract_model(model)
    if isinstance(layers, str):
        layers = [layers]
    layers = list(layers)
    if not layers:
        raise ValueError("give at least one layer to invert, e.g. ['conv3_1']")
    for layer in layers:
        model.resolve(layer)  # UnknownTapError lists the valid names and aliases
    return layers


def invert_features(
    model,
    image,
    layers: str | Sequence[str],
    config: FeatureInversionConfig | None = None,
    *,
    weights: Mapping[str, float] | None = None,
    init: np.ndarray | None = None,
    preprocessing: tuple[Sequence[float], Sequence[float]] | None = None,
    size: int = 224,
    callback: Callable | None = None,
    metrics: bool = True,
    lpips: bool = True,
) -> Result:
    """Recover an image whose activations at ``layers`` match those of ``image``.

    Args:
        model: a :class:`converters.onnx_to_tf.TFModel` (e.g. ``vgg16_features``).
        image: pixels in [0, 1] (NCHW/CHW/HWC array, uint8 or float), a file path or a bundled
            name (``model_zoo.data.list_images()``); grayscale/RGBA are converted (with a
            warning).
        layers: one layer or several (aliases such as ``"conv3_1"`` or ONNX tensor names);
            several layers make one joint objective.
        config: :class:`FeatureInversionConfig` (paper defaults when omitted).
        weights: per-layer weights of the data term (default 1 each).
        init: an explicit start in pixel space (same shape as the image).
        preprocessing: (mean, std) of the model input; by default the zoo's record for zoo
            models, identity otherwise.
        size: resize files and bundled photos to this (shorter side, centre crop).
        callback: ``callback(step, loss, terms, optimization)`` after every step; return
            True to stop.
        metrics: compute PSNR and SSIM (and LPIPS(vgg) with ``lpips``) against the original.

    Returns:
        a :class:`tf_impl.result.Result` with the reconstruction in pixel space.
    """
    model = contract_model(model)
    config = config or FeatureInversionConfig()
    layers = _layers(model, layers)
    picture = imgs.load_image(image, size)
    imgs.warn_notes(picture)
    original = picture.pixels
    memory.check_memory(model, original.shape, layers)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    x_orig = imgs.normalize(original, mean, std)
    feats = model(x_orig, taps=layers)
    targets = {layer: np.asarray(feats[layer]) for layer in layers}
    objective = build_objective(model, targets, config, weights)
    if init is not None:
        start = imgs.as_pixels(init, name="init").pixels
        if start.shape != original.shape:
            raise ValueError(f"init has shape {start.shape}; the image is {original.shape}")
    else:
        start = initial_pixels(config, original)
    box = pixel_box(mean, std, channels=original.shape[1]) if config.clip_to_pixels else None
    opt = Optimization(objective, imgs.normalize(start, mean, std), config.optimize, box=box)
    run = opt.run(callback=callback)
    image_px = np.clip(imgs.denormalize(run.x, mean, std), 0, 1)
    best_px = np.clip(imgs.denormalize(run.best, mean, std), 0, 1)
    result = Result(
        technique="feature_inversion",
        image=image_px,
        best_image=best_px,
        original=original,
        history=run.history,
        config=config.to_dict(),
        seconds=run.seconds,
        steps=run.steps_done,
        stopped=run.stopped,
        message=run.message,
        snapshots=[(s, np.clip(imgs.denormalize(v, mean, std), 0, 1)) for s, v in run.snapshots],
        extra={
            "layers": layers,
            "weights": dict(weights or {}),
            "image": picture.name,
            "notes": picture.notes,
            "target_shapes": {k: list(v.shape) for k, v in targets.items()},
        },
    )
    if metrics:
        result.metrics.update(m.summary(original, image_px, nets=("vgg",) if lpips else ()))
    return result

