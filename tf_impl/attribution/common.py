"""What the attribution methods share: argument checks, target scores, batched gradients."""

from __future__ import annotations

import numbers

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from ..config import TechniqueConfig, plain


class AttributionError(ValueError):
    """A bad argument to an attribution method; the message says what is expected."""


class AttributionConfig(TechniqueConfig):
    """The attribution methods' configs: :class:`tf_impl.config.TechniqueConfig` raising
    :class:`AttributionError`."""

    error = AttributionError


def check_inputs(model, inputs) -> np.ndarray:
    """``inputs`` as float32 NCHW matching the model's input (rank and fixed sizes)."""
    model = contract_model(model)
    x = np.asarray(inputs)
    if not np.issubdtype(x.dtype, np.floating):
        raise AttributionError(
            f"inputs must be the model's normalised float input (N, C, H, W); got dtype {x.dtype}")
    spec = model.inputs[0].shape
    if x.ndim == len(spec) - 1:
        raise AttributionError(
            f"inputs must be batched {len(spec)}-D (N, C, H, W); got shape {x.shape}. Add a batch "
            "axis: inputs[None]")
    if x.ndim != len(spec):
        raise AttributionError(f"inputs must be {len(spec)}-D like the model's input "
                               f"{tuple(spec)}; got shape {x.shape}")
    for axis, (got, want) in enumerate(zip(x.shape, spec)):
        if axis and want is not None and got != want:
            raise AttributionError(
                f"inputs have shape {x.shape} but the model takes {tuple(spec)} (axis {axis} is "
                f"{got}, expected {want})")
    return x.astype(np.float32)


_NEEDS = "attribution explains one class score, so it needs"


def require_classifier(model):
    """``model`` behind its contract; refuses a model with no classifier output."""
    from ..visualization.checks import require_classifier as require

    return require(model, error=AttributionError, what=_NEEDS)


def logits(model, x) -> tf.Tensor:
    """The model's logits for ``x``; refuses outputs that are not (batch, classes) scores."""
    model = contract_model(model)
    from ..visualization.checks import class_scores

    return class_scores(model, x, error=AttributionError, what=_NEEDS)


def resolve_targets(model, x: np.ndarray, target=None, *, out=None) -> np.ndarray:
    """One class index per input: the prediction when ``target`` is None, an int for all, or a
    sequence with one per input. Out-of-range targets name the valid range."""
    model = contract_model(model)
    out = logits(model, x) if out is None else out
    n, classes = int(out.shape[0]), int(out.shape[1])
    if target is None:
        return np.argmax(np.asarray(out), axis=1).astype(np.int64)
    t = np.asarray(target)
    if t.ndim == 0:
        t = np.full(n, t)
    if t.shape != (n,):
        raise AttributionError(f"target must be one class index or one per input ({n}); got "
                               f"shape {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise AttributionError(f"target must hold integer class indices; got {t.dtype}")
    bad = t[(t < 0) | (t >= classes)]
    if bad.size:
        raise AttributionError(f"target {bad[0]} is out of range: this model has {classes} "
                               f"classes, so use 0 to {classes - 1}")
    return t.astype(np.int64)


def check_baseline(baseline, x: np.ndarray) -> np.ndarray:
    """The baseline broadcast to ``x``'s shape: None (zeros in input space), a scalar, one
    image (C, H, W) for all inputs, or an array of ``x``'s shape."""
    if baseline is None:
        return np.zeros_like(x)
    b = np.asarray(baseline, np.float32)
    if b.ndim == 0:
        return np.full_like(x, float(b))
    if b.shape == x.shape:
        return b
    if b.shape == x.shape[1:]:
        return np.broadcast_to(b, x.shape).copy()
    raise AttributionError(
        f"baseline has shape {b.shape}; it must be a scalar, one input {x.shape[1:]} or the "
        f"inputs' shape {x.shape}")


def is_real(v) -> bool:
    """A real number (not a bool): what the configs' float fields accept."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def check_steps(steps, batch_size) -> tuple[int, int]:
    """Positive integers, or an error saying so."""
    for name, v in (("steps", steps), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise AttributionError(f"{name} must be a positive integer; got {plain(v)!r}")
    return int(steps), int(batch_size)


def target_scores(model, x, targets) -> tf.Tensor:
    """The ``targets``' scores (logits), one per row of ``x``."""
    model = contract_model(model)
    out = logits(model, x)
    return tf.gather(out, tf.convert_to_tensor(targets), axis=1, batch_dims=1)


def gradients(model, points: np.ndarray, targets: np.ndarray, batch_size: int, *,
              relu_mode: str = "standard") -> tuple[np.ndarray, np.ndarray]:
    """(target scores, d score / d input) at every row of ``points``, ``batch_size`` rows per
    forward pass. ``targets`` has one entry per row."""
    model = contract_model(model)
    scores, grads = [], []
    for i in range(0, len(points), batch_size):
        p = tf.convert_to_tensor(points[i:i + batch_size])
        t = tf.convert_to_tensor(targets[i:i + batch_size])
        with tf.GradientTape() as tape:
            tape.watch(p)
            out = model(p, relu_mode=relu_mode) if relu_mode != "standard" else model(p)
            out = out[0] if isinstance(out, tuple) else out
            s = tf.gather(out, t, axis=1, batch_dims=1)
        grads.append(tape.gradient(s, p).numpy())
        scores.append(s.numpy())
    return np.concatenate(scores), np.concatenate(grads)


def merged_config(config, cls, **overrides):
    """``config`` (default ``cls()``) with the call's non-None keyword overrides applied."""
    config = cls() if config is None else config
    if not isinstance(config, cls):
        raise AttributionError(f"config must be a {cls.__name__}; got {type(config).__name__}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return config.with_(**changes) if changes else config


def fit_batch(model, shape, requested: int, *, factor: float, what: str,
              share: float = 1.0) -> int:
    """Inputs of ``shape`` ((C, H, W) or (N, C, H, W)) per forward pass: ``requested``, or
    fewer so that ``factor`` times one input's activations (``tf_impl.memory``) fit in
    ``share`` of the memory budget; refuses when not even one fits. Chunking changes nothing
    but the peak memory: every row is computed on its own."""
    from .. import memory

    c, h, w = tuple(shape)[-3:]
    per_row = factor * memory.activation_bytes(model, (1, c, h, w))
    return memory.chunk_rows(per_row, requested, what=f"{what} at {h}x{w}", share=share)
