"""Saliency, guided backprop and occlusion for pixels: the configs, the record they return, and
the front ends over :mod:`tf_impl.attribution` (see the package docstring)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from ... import images as imgs
from ...attribution import common
from ...attribution.gradients import channel_max
from ...attribution.occlusion import occlusion_map
from ...config import plain
from .. import checks
from ..checks import VisualizationConfig, VisualizationError

_WRT = ("input", "pixels")
_SPACES = ("pixels", "input")
_SCORES = ("logit", "probability")


# -- configs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SaliencyConfig(VisualizationConfig):
    """Backprop saliency (Simonyan et al. 2014, sec. 3): |dS_c/dI|, max over colour channels.

    Attributes:
        wrt: differentiate with respect to the normalised model ``"input"`` (Captum's
            convention on the same model) or the ``"pixels"`` in [0, 1] (the input gradient
            divided by the per-channel std).
    """

    wrt: str = "input"

    def validate(self) -> None:
        if self.wrt not in _WRT:
            raise VisualizationError(f"wrt must be one of {_WRT}; got {self.wrt!r}")


@dataclass(frozen=True)
class GuidedBackpropConfig(VisualizationConfig):
    """Guided backprop (Springenberg et al. 2015, sec. 3.4).

    Attributes:
        wrt: as in :class:`SaliencyConfig`.
    """

    wrt: str = "input"

    def validate(self) -> None:
        if self.wrt not in _WRT:
            raise VisualizationError(f"wrt must be one of {_WRT}; got {self.wrt!r}")


def _pair(name: str, value) -> tuple[int, int]:
    v = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(v) != 2 or not all(isinstance(a, (int, np.integer)) for a in v):
        raise VisualizationError(f"{name} must be an int or a pair of ints (h, w); got {value!r}")
    return int(v[0]), int(v[1])


@dataclass(frozen=True)
class OcclusionConfig(VisualizationConfig):
    """Occlusion sensitivity (Zeiler & Fergus 2014, sec. 4.2), defined as Captum's Occlusion.

    Zeiler & Fergus slide a grey square over 224x224 ImageNet images and plot the classifier's
    output per position; they give no window size. The defaults suit 32x32 CIFAR images (a
    quarter of the side, half-overlapping); for 224x224 use e.g. ``window=32, stride=16``.

    Attributes:
        window: the occluder's (height, width) in pixels, or one int for a square. It covers
            all colour channels.
        stride: the step between window positions, int or (h, w); 1 <= stride <= window, so
            that every pixel is covered. Windows start at 0 and continue until the image is
            covered: ceil((H - window) / stride) + 1 positions per axis, the last one cut off
            at the border when the step does not divide H - window (Captum's rule).
        baseline: the value the window is filled with.
        baseline_space: ``"pixels"`` (``baseline`` is a pixel value in [0, 1], the same in every
            channel: 0.5 is mid-grey; it is normalised per channel for the model) or
            ``"input"`` (``baseline`` is put into the normalised model input as it is, as
            Captum's ``baselines=`` does; 0 is the dataset mean colour).
        score: ``"logit"`` (the unnormalised class score, Captum on the raw model) or
            ``"probability"`` (the softmax probability, as plotted by Zeiler & Fergus).
        batch_size: at most this many occluded images per forward pass (Captum's
            ``perturbations_per_eval``; the windows are split into chunks of equal size, the
            last one padded, so one traced shape serves them all); 1 runs one window per
            forward pass. The result does not depend on it (to float32 rounding).
    """

    window: int | tuple[int, int] = 8
    stride: int | tuple[int, int] = 4
    baseline: float = 0.5
    baseline_space: str = "pixels"
    score: str = "logit"
    batch_size: int = 64

    def validate(self) -> None:
        wh, ww = _pair("window", self.window)
        sh, sw = _pair("stride", self.stride)
        if wh < 1 or ww < 1:
            raise VisualizationError(f"window must be >= 1 pixel; got {plain(self.window)!r}")
        if sh < 1 or sw < 1:
            raise VisualizationError(
                f"stride must be >= 1 pixel; got {plain(self.stride)!r} (use 1 to "
                f"{min(wh, ww)}, at most the window size)")
        if sh > wh or sw > ww:
            raise VisualizationError(
                f"stride {plain(self.stride)!r} is larger than the window "
                f"{plain(self.window)!r}: some pixels would never be occluded. Use a stride of at "
                "most the window size")
        if self.baseline_space not in _SPACES:
            raise VisualizationError(
                f"baseline_space must be one of {_SPACES}; got {self.baseline_space!r}")
        if self.score not in _SCORES:
            raise VisualizationError(f"score must be one of {_SCORES}; got {self.score!r}")
        if not math.isfinite(float(self.baseline)):
            raise VisualizationError(f"baseline must be a finite number; got {self.baseline!r}")
        if self.baseline_space == "pixels" and not 0.0 <= float(self.baseline) <= 1.0:
            raise VisualizationError(
                f"a pixel-space baseline must lie in [0, 1] (0.5 is mid-grey); got "
                f"{self.baseline!r}. For a value in the model's input space use "
                "baseline_space='input'")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise VisualizationError(
                f"batch_size must be an integer >= 1 (1: one window per forward pass); got "
                f"{self.batch_size!r}")

    @property
    def window_hw(self) -> tuple[int, int]:
        return _pair("window", self.window)

    @property
    def stride_hw(self) -> tuple[int, int]:
        return _pair("stride", self.stride)


# -- the result ---------------------------------------------------------------------------------
@dataclass
class Attribution:
    """What :func:`saliency`, :func:`guided_backprop` and :func:`occlusion` return.

    Attributes:
        method: ``"saliency"``, ``"guided_backprop"`` or ``"occlusion"``.
        map: (N, H, W) float32: the saliency map (max over channels of |gradient|), the
            guided-backprop magnitude (the same reduction of the guided gradient) or the
            occlusion map (mean score drop per pixel; negative where occluding helps).
        attribution: the raw attribution: the signed gradient (N, 3, H, W) for saliency and
            guided backprop; the occlusion map as (N, 1, H, W) (the same for every channel).
        pixels: the images, (N, 3, H, W) in [0, 1].
        target: (N,) the explained class of each image.
        predicted: (N,) the model's top class; ``probability`` its softmax probability, and
            ``target_probability`` the target's.
        config: the configuration as a dict; ``seconds`` the wall time.
    """

    method: str
    map: np.ndarray
    attribution: np.ndarray
    pixels: np.ndarray
    target: np.ndarray
    predicted: np.ndarray
    probability: np.ndarray
    target_probability: np.ndarray
    config: dict = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict:
        """JSON-ready fields (no arrays but the per-image class data)."""
        return {
            "method": self.method,
            "target_class": self.target.tolist(),
            "predicted_class": self.predicted.tolist(),
            "probability": [round(float(p), 6) for p in self.probability],
            "target_probability": [round(float(p), 6) for p in self.target_probability],
            "config": self.config,
            "seconds": round(self.seconds, 4),
        }


# -- the pieces ---------------------------------------------------------------------------------
def _logits(model, x, relu_mode: str = "standard") -> tf.Tensor:
    model = contract_model(model)
    return checks.class_scores(model, x, relu_mode=relu_mode,
                               what="saliency and occlusion explain a class score, so they need")


def _targets(target, logits: np.ndarray, model) -> np.ndarray:
    """One class per image: the predicted one (``None``), one int for all, or one per image."""
    model = contract_model(model)
    n, classes = logits.shape
    if target is None:
        return logits.argmax(1).astype(np.int64)
    if np.ndim(target) == 0:
        return np.full(n, checks.check_class(model, target, classes=classes), np.int64)
    ts = list(np.asarray(target).reshape(-1)) if not isinstance(target, (list, tuple)) else \
        list(target)
    if len(ts) != n:
        raise VisualizationError(
            f"give one target class per image: {n} images, {len(ts)} targets (or one int for "
            "all, or None for each image's predicted class)")
    return np.array([checks.check_class(model, t, classes=classes) for t in ts], np.int64)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def _prepare(model, image, target, preprocessing):
    """pixels, normalised input, (mean, std), logits, targets, predicted, probabilities."""
    model = contract_model(model)
    pixels, x = checks.model_input(model, image, preprocessing=preprocessing)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    logits = _logits(model, x).numpy()
    targets = _targets(target, logits, model)
    probs = _softmax(logits.astype(np.float64))
    return pixels, x, (mean, std), logits, targets, probs


def _std_array(std, channels: int) -> np.ndarray:
    s = np.asarray(std, np.float32).reshape(-1)
    s = np.repeat(s, channels) if s.size == 1 else s
    return s.reshape(1, -1, 1, 1)


def input_gradients(model, x, targets, *, relu_mode: str = "standard") -> np.ndarray:
    """d logits[i, targets[i]] / d x[i] for every image of the normalised batch ``x`` (N,C,H,W).

    The images are independent (BatchNorm in eval mode), so one backward pass of the sum of
    the N target logits gives every image's own gradient. ``relu_mode="guided"`` gives guided
    backprop, ``"deconvnet"`` Zeiler & Fergus' deconvnet rule.
    """
    x = np.asarray(x, np.float32)
    targets = np.asarray(targets, np.int64)
    return common.gradients(model, x, targets, max(len(x), 1), relu_mode=relu_mode)[1]


magnitude_map = channel_max  # (N, H, W): max over channels of |gradient|


def normalize_map(m) -> np.ndarray:
    """Each map rescaled to [0, 1] (min to 0, max to 1; a constant map gives zeros)."""
    m = np.asarray(m, np.float32)
    axes = tuple(range(1, m.ndim)) if m.ndim == 3 else None
    lo, hi = m.min(axis=axes, keepdims=True), m.max(axis=axes, keepdims=True)
    return np.where(hi > lo, (m - lo) / np.where(hi > lo, hi - lo, 1), 0).astype(np.float32)


def gradient_image(gradient, contrast: float = 0.15) -> np.ndarray:
    """A signed gradient (N, 3, H, W) as RGB pixels in [0, 1] for display.

    Each image is centred on its mean and divided by its standard deviation, scaled by
    ``contrast`` and shifted to 0.5 (zero gradient is mid-grey), then clipped; this keeps the
    few largest values from washing out the rest, unlike a min-max stretch.
    """
    g = np.asarray(gradient, np.float32)
    axes = (1, 2, 3)
    g = g - g.mean(axis=axes, keepdims=True)
    std = g.std(axis=axes, keepdims=True)
    g = g / np.where(std > 0, std, 1)
    return np.clip(0.5 + contrast * g, 0, 1).astype(np.float32)


def _result(method, smap, attribution, pixels, targets, logits, probs, config, t0):
    pred = logits.argmax(1).astype(np.int64)
    rows = np.arange(len(pred))
    return Attribution(
        method=method, map=np.asarray(smap, np.float32), attribution=attribution,
        pixels=pixels, target=targets, predicted=pred,
        probability=probs[rows, pred].astype(np.float32),
        target_probability=probs[rows, targets].astype(np.float32),
        config=config.to_dict(), seconds=time.perf_counter() - t0)


# -- saliency and guided backprop ---------------------------------------------------------------
def saliency(model, image, target=None, config: SaliencyConfig | None = None, *,
             preprocessing=None) -> Attribution:
    """Backprop saliency maps (Simonyan et al. 2014, sec. 3) of a batch.

    Args:
        model: a classifier (:class:`converters.onnx_to_tf.TFModel` returning logits).
        image: pixels in [0, 1] (NCHW, CHW or HWC array, uint8 or float; N images), or a
            bundled name / file (loaded at the model's input size).
        target: the class to explain: ``None`` for each image's predicted class, one int for
            all images, or one per image. Out of range raises with the valid range.
        config: :class:`SaliencyConfig`.
        preprocessing: (mean, std) of the model input; the zoo's record by default.

    Returns:
        an :class:`Attribution` whose ``map`` is max_c |dS_c/dI| (N, H, W) and ``attribution``
        the signed gradient (N, 3, H, W).
    """
    model = contract_model(model)
    config = config or SaliencyConfig()
    t0 = time.perf_counter()
    pixels, x, (_, std), logits, targets, probs = _prepare(model, image, target, preprocessing)
    grad = input_gradients(model, x, targets)
    if config.wrt == "pixels":
        grad = grad / _std_array(std, grad.shape[1])
    return _result("saliency", magnitude_map(grad), grad, pixels, targets, logits, probs,
                   config, t0)


def guided_backprop(model, image, target=None, config: GuidedBackpropConfig | None = None, *,
                    preprocessing=None) -> Attribution:
    """Guided backprop (Springenberg et al. 2015, sec. 3.4) of a batch.

    The gradient of the target logit with every ReLU's backward rule replaced by
    ``dy * (x > 0) * (dy > 0)``: the importer applies it to every Relu node of the ONNX graph
    (``model(x, relu_mode="guided")``). A model without ReLUs gives the plain gradient.

    Returns:
        an :class:`Attribution` whose ``attribution`` is the raw signed gradient (N, 3, H, W)
        (show it with :func:`gradient_image`) and ``map`` its channel-max magnitude.
    """
    model = contract_model(model)
    config = config or GuidedBackpropConfig()
    t0 = time.perf_counter()
    pixels, x, (_, std), logits, targets, probs = _prepare(model, image, target, preprocessing)
    grad = input_gradients(model, x, targets, relu_mode="guided")
    if config.wrt == "pixels":
        grad = grad / _std_array(std, grad.shape[1])
    return _result("guided_backprop", magnitude_map(grad), grad, pixels, targets, logits, probs,
                   config, t0)


# -- occlusion ----------------------------------------------------------------------------------
def occlusion(model, image, target=None, config: OcclusionConfig | None = None, *,
              preprocessing=None, progress: bool = False) -> Attribution:
    """Occlusion sensitivity maps (Zeiler & Fergus 2014, sec. 4.2) of a batch.

    Args:
        model, image, target, preprocessing: as in :func:`saliency`.
        config: :class:`OcclusionConfig` (window, stride, baseline and its space, score,
            batch size).
        progress: show a progress bar over the windows.

    Returns:
        an :class:`Attribution` whose ``map`` (N, H, W) is the mean drop of the target score
        over the windows covering each pixel (positive: occluding the pixel hurts the class),
        as Captum's ``Occlusion`` defines it.
    """
    model = contract_model(model)
    config = config or OcclusionConfig()
    t0 = time.perf_counter()
    pixels, x, (mean, std), logits, targets, probs = _prepare(model, image, target, preprocessing)
    if config.baseline_space == "pixels":
        c = x.shape[1]
        base = imgs.normalize(np.full((1, c, 1, 1), config.baseline, np.float32), mean, std)
    else:
        base = np.float32(config.baseline)
    wh, ww = config.window_hw
    if wh > x.shape[2] or ww > x.shape[3]:
        raise VisualizationError(
            f"the occlusion window {wh}x{ww} is larger than the image {x.shape[2]}x"
            f"{x.shape[3]}: use a window of at most {x.shape[2]}x{x.shape[3]}")
    omap = occlusion_map(model, x, targets, config.window_hw, config.stride_hw, base,
                         score=config.score, batch_size=config.batch_size, progress=progress)
    return _result("occlusion", omap, omap[:, None], pixels, targets, logits, probs, config, t0)
