"""The checks on HDR-GAN's inputs, shared by the losses, the config and the data: each bad
value raises :class:`HDRGANError` naming the problem and the fix."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from ..config import plain


class HDRGANError(ValueError):
    """A bad argument to the HDR-GAN functions; the message names the problem and the fix."""


def check_mu(mu) -> float:
    """The mu-law parameter: a positive finite number."""
    if not (isinstance(mu, (int, float, np.floating)) and mu > 0 and math.isfinite(mu)):
        raise HDRGANError(f"mu must be a positive number (HDR-GAN uses 5000); got {plain(mu)!r}")
    return float(mu)


def check_moments(moments) -> int:
    """How many moments the hypersphere loss matches: an integer >= 1."""
    if not isinstance(moments, (int, np.integer)) or isinstance(moments, bool) or moments < 1:
        raise HDRGANError(f"moments must be an integer >= 1 (HDR-GAN uses 3); got "
                          f"{plain(moments)!r}")
    return int(moments)


def check_times(times) -> tuple[float, ...]:
    """Exposure times: at least two positive finite numbers."""
    times = tuple(float(t) for t in times)
    if len(times) < 2:
        raise HDRGANError(f"give at least two exposure times; got {times}")
    if not all(t > 0 and math.isfinite(t) for t in times):
        raise HDRGANError(f"exposure times must be positive numbers; got {times}")
    return times


def _concrete(x) -> np.ndarray | None:
    """The value of ``x`` when it is known now (numpy or eager), else None (symbolic)."""
    if isinstance(x, (tf.Tensor, tf.Variable)):
        if not tf.executing_eagerly():
            return None
        try:
            return x.numpy()
        except (AttributeError, NotImplementedError, TypeError, ValueError):
            return None
    try:
        return np.asarray(x)
    except (TypeError, ValueError):
        return None


def check_hdr(hdr, name: str = "HDR image"):
    """Negative or non-finite radiance is refused (when the value is known, i.e. eagerly)."""
    value = _concrete(hdr)
    if value is None:
        return
    if not np.issubdtype(value.dtype, np.number):
        raise HDRGANError(f"{name} must be numeric; got dtype {value.dtype}")
    if not np.all(np.isfinite(value)):
        raise HDRGANError(f"{name} holds NaN or Inf values; HDR radiance must be finite")
    if value.size and value.min() < 0:
        raise HDRGANError(
            f"{name} has negative values (min {float(value.min()):.4g}); the mu-law tonemapper "
            "needs linear radiance H >= 0: clip with np.maximum(hdr, 0) or fix the HDR "
            "conversion")


def check_same_shape(a, b, names=("prediction", "target")):
    """Two images of one shape."""
    sa, sb = tuple(tf.convert_to_tensor(a).shape), tuple(tf.convert_to_tensor(b).shape)
    if sa != sb:
        raise HDRGANError(f"the {names[0]} has shape {sa} and the {names[1]} {sb}: they must "
                          "match")
