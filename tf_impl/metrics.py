"""Image-quality metrics in TensorFlow: PSNR, SSIM and LPIPS, all differentiable.

The numbers that reconstruction papers report (model inversion, gradient inversion, feature
inversion) are PSNR, SSIM (Wang et al., "Image quality assessment: from error visibility to
structural similarity", IEEE TIP 2004) and LPIPS (Zhang et al., "The Unreasonable
Effectiveness of Deep Features as a Perceptual Metric", CVPR 2018). These functions give
the same values as ``skimage.metrics`` and the ``lpips`` package (``tests/test_metrics.py``
checks both to 1e-4), work inside ``tf.GradientTape`` and never import PyTorch.

Conventions: images are in pixel space ``[0, data_range]`` (``[0, 1]`` by default), NCHW as
everywhere in the project, ``layout="NHWC"`` accepted; a single 3-D image (CHW or HWC) gives
a scalar, a batch gives one value per image, shape ``(N,)``. Inputs may be numpy arrays or
tensors; float64 inputs are computed in float64, anything else in float32.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).random((2, 3, 32, 32), dtype=np.float32)
    >>> y = np.clip(x + 0.05, 0, 1)
    >>> psnr(x, y).shape, ssim(x, y).shape
    (TensorShape([2]), TensorShape([2]))
    >>> float(LPIPS("alex")(x, x)[0])                  # doctest: +SKIP
    0.0
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from .config import plain

__all__ = ["LPIPS", "lpips", "psnr", "ssim", "summary"]

_LAYOUTS = ("NCHW", "NHWC")


# -- input handling ----------------------------------------------------------------------------
def _pair(fn: str, x, y, layout: str) -> tuple[tf.Tensor, tf.Tensor, bool]:
    """Both images as NHWC tensors of one float dtype, and whether a single image was given."""
    if layout not in _LAYOUTS:
        raise ValueError(f"{fn}: layout must be 'NCHW' or 'NHWC'; got {layout!r}")
    xt, yt = tf.convert_to_tensor(x), tf.convert_to_tensor(y)
    dtype = tf.float64 if xt.dtype == tf.float64 and yt.dtype == tf.float64 else tf.float32
    xt, yt = tf.cast(xt, dtype), tf.cast(yt, dtype)
    rank = xt.shape.rank
    if rank not in (3, 4) or yt.shape.rank != rank:
        order = layout if layout == "NCHW" else "NHWC"
        raise ValueError(
            f"{fn}: expected two {order} batches or two single {order[1:]} images; got shapes "
            f"{_shape(xt)} and {_shape(yt)}. For one grayscale H x W image add a channel "
            "axis (x[None] for NCHW, x[..., None] for NHWC)"
        )
    if not xt.shape.is_compatible_with(yt.shape):
        raise ValueError(
            f"{fn}: the two images must have the same shape; got {_shape(xt)} and {_shape(yt)} "
            f"({layout}). Resize or crop one of them to the other's size first"
        )
    single = rank == 3
    if single:
        xt, yt = xt[None], yt[None]
    if layout == "NCHW":
        xt, yt = tf.transpose(xt, (0, 2, 3, 1)), tf.transpose(yt, (0, 2, 3, 1))
    return xt, yt, single


def _shape(t: tf.Tensor) -> tuple:
    return tuple(t.shape) if t.shape.rank is not None else ("?",)


def _check_range(fn: str, data_range: float) -> float:
    if not (isinstance(data_range, numbers.Real) and data_range > 0 and math.isfinite(data_range)):
        raise ValueError(
            f"{fn}: data_range must be a positive number (1.0 for images in [0, 1], 255 for "
            f"[0, 255]); got {plain(data_range)!r}"
        )
    return float(data_range)


def _out(v: tf.Tensor, single: bool) -> tf.Tensor:
    return v[0] if single else v


# -- PSNR --------------------------------------------------------------------------------------
def psnr(x, y, *, data_range: float = 1.0, layout: str = "NCHW", clip: bool = True) -> tf.Tensor:
    """Peak signal-to-noise ratio in dB, per image: ``10 log10(data_range^2 / MSE(x, y))``.

    ``clip=True`` first clamps both images to ``[0, data_range]``, the field's convention
    (PSNR of de-normalised images clamped to [0, 1], then averaged over images). With
    ``clip=False`` the value equals ``skimage.metrics.peak_signal_noise_ratio(y, x,
    data_range=data_range)`` for each image. Identical images give ``+inf`` (and no useful
    gradient there); the MSE is taken over all pixels and channels of each image.

    Args:
        x, y: images, NCHW/NHWC batches or one CHW/HWC image, numpy or tensors.
        data_range: the range of valid pixel values (1.0 for [0, 1], 255 for uint8-like).
        layout: "NCHW" (default) or "NHWC".
        clip: clamp both images to [0, data_range] first.

    Returns:
        shape (N,) for a batch, a scalar for one image.

    Example:
        >>> x = np.zeros((1, 3, 8, 8), np.float32)
        >>> round(float(psnr(x, x + 0.1)[0]), 3)        # 10 log10(1 / 0.01)
        20.0
    """
    data_range = _check_range("psnr", data_range)
    xt, yt, single = _pair("psnr", x, y, layout)
    if clip:
        xt = tf.clip_by_value(xt, 0.0, data_range)
        yt = tf.clip_by_value(yt, 0.0, data_range)
    mse = tf.reduce_mean(tf.square(xt - yt), axis=(1, 2, 3))
    value = (10.0 / math.log(10.0)) * tf.math.log(tf.constant(data_range**2, mse.dtype) / mse)
    return _out(value, single)


# -- SSIM --------------------------------------------------------------------------------------
_TRUNCATE = 3.5  # skimage's Gaussian truncation: an 11-tap window for sigma = 1.5


def _window(win_size: int | None, gaussian_weights: bool, sigma: float) -> tuple[np.ndarray, int]:
    """The normalised 1-D filter (as scipy.ndimage builds it) and the crop window size."""
    if gaussian_weights:
        radius = int(_TRUNCATE * sigma + 0.5)  # scipy.ndimage.gaussian_filter's radius
        taps = np.arange(-radius, radius + 1, dtype=np.float64)
        kernel = np.exp(-0.5 * taps**2 / sigma**2)
        kernel /= kernel.sum()
        if win_size is None:
            win_size = 2 * radius + 1
    else:
        if win_size is None:
            win_size = 7
        kernel = np.full(win_size, 1.0 / win_size)
    return kernel, win_size


def ssim(
    x,
    y,
    *,
    data_range: float = 1.0,
    layout: str = "NCHW",
    win_size: int | None = None,
    gaussian_weights: bool = False,
    sigma: float = 1.5,
    use_sample_covariance: bool = True,
    k1: float = 0.01,
    k2: float = 0.03,
) -> tf.Tensor:
    """Mean structural similarity per image (Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 2004).

    A transcription of ``skimage.metrics.structural_similarity(a, b, data_range=...,
    channel_axis=-1, ...)``: local means, variances and covariance from a sliding window
    (a uniform ``win_size`` x ``win_size`` box, or a Gaussian of ``sigma`` truncated at 3.5
    sigma), the image extended by half-sample symmetric reflection (scipy's ``'reflect'``),
    the SSIM map cropped by ``(win_size - 1) // 2`` pixels at each border, averaged, then
    averaged over channels. The defaults are skimage's (7x7 box, sample covariance); the
    setting of Wang et al. is ``gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False``. ``win_size=None`` means 7 for the box and
    ``2 * int(3.5 * sigma + 0.5) + 1`` (11 for sigma 1.5) for the Gaussian, as in skimage.

    Args:
        x, y: images, NCHW/NHWC batches or one CHW/HWC image, any number of channels.
        data_range: range of valid pixel values (sets C1 = (k1 R)^2, C2 = (k2 R)^2).
        layout: "NCHW" (default) or "NHWC".
        win_size: odd side of the window (also the crop); see above for None.
        gaussian_weights, sigma: Gaussian-weighted window of this standard deviation.
        use_sample_covariance: divide by NP - 1 instead of NP (NP = win_size^2).
        k1, k2: the stabilising constants.

    Returns:
        shape (N,) for a batch, a scalar for one image.

    Example:
        >>> x = np.random.default_rng(0).random((2, 3, 16, 16))
        >>> [round(float(v), 6) for v in ssim(x, x)]
        [1.0, 1.0]
    """
    data_range = _check_range("ssim", data_range)
    for name, value in (("k1", k1), ("k2", k2), ("sigma", sigma)):
        if not value > 0:
            raise ValueError(f"ssim: {name} must be positive; got {plain(value)!r}")
    if win_size is not None and (
        not isinstance(win_size, int | np.integer) or win_size < 3 or win_size % 2 == 0
    ):
        raise ValueError(f"ssim: win_size must be an odd integer >= 3 (e.g. 7); got "
                         f"{plain(win_size)!r}")
    xt, yt, single = _pair("ssim", x, y, layout)
    kernel, win_size = _window(win_size, gaussian_weights, sigma)
    radius = len(kernel) // 2
    h, w = xt.shape[1], xt.shape[2]
    if h is None or w is None:
        raise ValueError("ssim: the image height and width must be known (static shapes)")
    if min(h, w) < win_size or min(h, w) <= radius:
        raise ValueError(
            f"ssim: the images ({h} x {w}) are smaller than the {max(win_size, 2 * radius + 1)}"
            f"-pixel window; use images of at least that size or pass a smaller odd win_size "
            "(check the layout argument if the channels were taken for the height)"
        )
    dtype = xt.dtype
    n, c = tf.shape(xt)[0], xt.shape[3]
    # Second moments from mean-free images: exact (variance and covariance are invariant to
    # a constant shift) and free of the float32 cancellation in E[x^2] - E[x]^2.
    mx = tf.stop_gradient(tf.reduce_mean(xt, axis=(1, 2), keepdims=True))
    my = tf.stop_gradient(tf.reduce_mean(yt, axis=(1, 2), keepdims=True))
    xc, yc = xt - mx, yt - my
    stack = tf.concat([xc, yc, xc * xc, yc * yc, xc * yc], axis=3)  # (N, H, W, 5C)
    pad = [[0, 0], [radius, radius], [radius, radius], [0, 0]]
    stack = tf.pad(stack, pad, mode="SYMMETRIC")  # scipy.ndimage mode 'reflect'
    k = tf.constant(kernel, dtype)
    kh = tf.tile(tf.reshape(k, (-1, 1, 1, 1)), (1, 1, 5 * c, 1))
    kw = tf.tile(tf.reshape(k, (1, -1, 1, 1)), (1, 1, 5 * c, 1))
    filtered = tf.nn.depthwise_conv2d(stack, kh, (1, 1, 1, 1), "VALID")
    filtered = tf.nn.depthwise_conv2d(filtered, kw, (1, 1, 1, 1), "VALID")
    uxc, uyc, uxx, uyy, uxy = tf.split(filtered, 5, axis=3)
    np_ = win_size**2
    cov_norm = np_ / (np_ - 1) if use_sample_covariance else 1.0
    vx = cov_norm * (uxx - uxc * uxc)
    vy = cov_norm * (uyy - uyc * uyc)
    vxy = cov_norm * (uxy - uxc * uyc)
    ux, uy = uxc + mx, uyc + my
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    crop = (win_size - 1) // 2
    s = s[:, crop : h - crop, crop : w - crop, :]
    value = tf.reduce_mean(tf.reshape(s, (n, -1)), axis=1)  # equal-size channels: mean of means
    return _out(value, single)


# -- LPIPS -------------------------------------------------------------------------------------
# net: (model_zoo name, lpips npz name, taps, smallest input side with non-empty last tap)
_NETS = {
    "vgg": ("vgg16_features", "vgg16", ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"), 16),
    "alex": ("alexnet_features", "alexnet", ("relu1", "relu2", "relu3", "relu4", "relu5"), 31),
}
_NET_ALIASES = {"vgg": "vgg", "vgg16": "vgg", "alex": "alex", "alexnet": "alex"}
# lpips v0.1 ScalingLayer, applied after mapping [0, 1] to [-1, 1]
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_LOADED: dict[tuple[str, str], tuple[object, tuple[tf.Tensor, ...]]] = {}


def _backbone(net: str, cache_dir: str | os.PathLike[str] | None):
    """(TFModel, heads) of ``net``, imported once per (net, cache folder)."""
    from model_zoo.cache import resolve_cache_dir

    key = (net, str(resolve_cache_dir(cache_dir)))
    if key not in _LOADED:
        import model_zoo
        from converters.onnx_to_tf import load
        from model_zoo.pretrained import load_lpips_npz

        zoo_name, npz_name, _, _ = _NETS[net]
        model = load(model_zoo.load(zoo_name, cache_dir=cache_dir))
        arrays = load_lpips_npz(npz_name, cache_dir)
        heads = tuple(tf.constant(arrays[f"lin{k}"].reshape(-1), tf.float32) for k in range(5))
        _LOADED[key] = (model, heads)
    return _LOADED[key]


class LPIPS:
    """Learned Perceptual Image Patch Similarity, v0.1 (Zhang et al., CVPR 2018).

    ``d(x, y) = sum_l mean_hw( w_l . (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|)^2 )`` with
    ``f_l`` the ImageNet-pretrained VGG-16 (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) or
    AlexNet (relu1..relu5) features of the input mapped to [-1, 1] and shifted/scaled by the
    lpips ScalingLayer, the norm over channels (plus 1e-10), and ``w_l`` the published linear
    heads. The backbones are the model zoo's ONNX files (``vgg16_features``,
    ``alexnet_features``) imported with ``converters.onnx_to_tf.load``; the heads come from
    ``model_zoo.pretrained.load_lpips_npz``. Both are loaded once per (net, cache folder).

    Inputs are in [0, 1] (NCHW, or ``layout="NHWC"``), 1 or 3 channels (a grayscale image is
    repeated over RGB, as the lpips package's broadcasting does), at least 16 x 16 pixels for
    VGG and 31 x 31 for AlexNet. Differentiable with respect to both images; the gradient
    stays finite where a whole feature vector is zero (lpips' ``sqrt`` gives NaN there).

    Example:
        >>> metric = LPIPS("alex")                                  # doctest: +SKIP
        >>> x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
        >>> metric(x, np.clip(x + 0.1, 0, 1)).shape                 # doctest: +SKIP
        TensorShape([2])
    """

    def __init__(self, net: str = "vgg", *, cache_dir: str | os.PathLike[str] | None = None):
        if not isinstance(net, str) or net.lower() not in _NET_ALIASES:
            raise ValueError(
                f"LPIPS: unknown net {net!r}; use 'vgg' (VGG-16, the usual choice for "
                "reconstruction results) or 'alex' (AlexNet, lpips' default)"
            )
        self.net = _NET_ALIASES[net.lower()]
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.model, self.heads = _backbone(self.net, cache_dir)
        self.taps = _NETS[self.net][2]
        self.min_size = _NETS[self.net][3]

    def __repr__(self) -> str:
        return f"LPIPS(net={self.net!r})"

    def features(self, x, *, layout: str = "NCHW") -> tuple[tf.Tensor, ...]:
        """Unit-normalised NHWC features of a [0, 1] batch, one tensor per layer.

        Example:
            >>> [f.shape[-1] for f in LPIPS("alex").features(x)]    # doctest: +SKIP
            [64, 192, 384, 256, 256]
        """
        xt, _, _ = _pair("LPIPS", x, x, layout)
        return self._features(self._prepare(xt))

    def _prepare(self, xt: tf.Tensor) -> tf.Tensor:
        """NHWC [0, 1] float -> the backbone's NCHW input (lpips v0.1 scaling)."""
        c = xt.shape[3]
        if c not in (1, 3):
            raise ValueError(
                f"LPIPS: expected 1 or 3 channels, got {c} (shape {_shape(xt)} as NHWC). "
                "Pass RGB or grayscale images; check the layout argument"
            )
        h, w = xt.shape[1], xt.shape[2]
        if h is not None and w is not None and min(h, w) < self.min_size:
            raise ValueError(
                f"LPIPS({self.net!r}): images of {h} x {w} pixels are too small for the backbone; "
                f"use at least {self.min_size} x {self.min_size} (upsample first)"
            )
        xt = tf.cast(xt, tf.float32)
        if c == 1:
            xt = tf.tile(xt, (1, 1, 1, 3))
        shift = tf.constant(_SHIFT, tf.float32)
        scale = tf.constant(_SCALE, tf.float32)
        xt = ((2.0 * xt - 1.0) - shift) / scale
        return tf.transpose(xt, (0, 3, 1, 2))

    def _features(self, inp: tf.Tensor) -> tuple[tf.Tensor, ...]:
        feats = self.model(inp, taps=list(self.taps), layout="NHWC")
        out = []
        for tap in self.taps:
            f = feats[tap]
            sq = tf.reduce_sum(tf.square(f), axis=3, keepdims=True)
            # sqrt(max(., 1e-30)): lpips' sqrt(.) + 1e-10 to within 1e-15, but a finite gradient
            # where a whole feature vector is zero (sqrt'(0) = inf would make it NaN)
            norm = tf.sqrt(tf.maximum(sq, 1e-30))
            out.append(f / (norm + 1e-10))
        return tuple(out)

    def __call__(self, x, y, *, layout: str = "NCHW") -> tf.Tensor:
        """Per-image LPIPS distance, shape (N,) (a scalar for one CHW/HWC image).

        Example:
            >>> LPIPS("vgg")(x, y).numpy()                          # doctest: +SKIP
            array([0.21, 0.35], dtype=float32)
        """
        xt, yt, single = _pair("LPIPS", x, y, layout)
        n = tf.shape(xt)[0]
        both = self._prepare(tf.concat([tf.cast(xt, tf.float32), tf.cast(yt, tf.float32)], 0))
        total = tf.zeros((n,), tf.float32)
        for f, head in zip(self._features(both), self.heads):
            d = tf.square(f[:n] - f[n:])
            total += tf.reduce_mean(tf.tensordot(d, head, axes=1), axis=(1, 2))
        return _out(total, single)


def lpips(
    x, y, net: str = "vgg", *, layout: str = "NCHW", cache_dir: str | os.PathLike[str] | None = None
) -> tf.Tensor:
    """``LPIPS(net)(x, y)``: per-image LPIPS v0.1 distance of [0, 1] images (Zhang et al. 2018).

    Example:
        >>> x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
        >>> float(lpips(x, x, net="alex")[0])                       # doctest: +SKIP
        0.0
    """
    return LPIPS(net, cache_dir=cache_dir)(x, y, layout=layout)


# -- result files ------------------------------------------------------------------------------
def summary(
    x,
    y,
    *,
    nets: Sequence[str] = ("vgg",),
    data_range: float = 1.0,
    layout: str = "NCHW",
) -> dict[str, float]:
    """Mean PSNR, SSIM and LPIPS over a batch, as plain floats for a result.json.

    Both images are clamped to ``[0, data_range]`` first (the reporting convention); SSIM is
    skimage's default setting, LPIPS sees the images divided by ``data_range``. Keys:
    ``"psnr"``, ``"ssim"`` and ``"lpips_<net>"`` for each of ``nets`` (pass ``nets=()`` to
    skip LPIPS). A mean PSNR is ``inf`` when some pair is identical.

    Example:
        >>> x = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
        >>> sorted(summary(x, x * 0.9, nets=()))
        ['psnr', 'ssim']
    """
    data_range = _check_range("summary", data_range)
    xt, yt, _ = _pair("summary", x, y, layout)
    xt = tf.clip_by_value(xt, 0.0, data_range)
    yt = tf.clip_by_value(yt, 0.0, data_range)
    out = {
        "psnr": float(tf.reduce_mean(psnr(xt, yt, data_range=data_range, layout="NHWC"))),
        "ssim": float(tf.reduce_mean(ssim(xt, yt, data_range=data_range, layout="NHWC"))),
    }
    if isinstance(nets, str):
        nets = (nets,)
    for net in nets:
        metric = LPIPS(net)
        d = metric(xt / data_range, yt / data_range, layout="NHWC")
        out[f"lpips_{metric.net}"] = float(tf.reduce_mean(d))
    return out
