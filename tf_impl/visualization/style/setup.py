"""What texture synthesis and style transfer share: the pictures at the working size,
the targets' features, the start image and the run of the shared loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from ... import images as imgs
from ...optimize import Optimization, pixel_box, seeded_noise
from ...result import Result
from ..checks import (
    VisualizationError,
    check_layer,
    fixed_size,
)
from .config import DEFAULT_SIZE, MIN_SIZE


# -- inputs -------------------------------------------------------------------------------------
def check_layers(model, layers: Sequence[str]) -> None:
    """Every layer named must be a tap of the model (the error lists the aliases)."""
    model = contract_model(model)
    for layer in layers:
        check_layer(model, layer)  # names the valid aliases otherwise


def working_size(model, size, name: str = "size") -> int:
    """The side the images are worked at: ``size``, or the model's fixed input size."""
    model = contract_model(model)
    if size is None:
        fixed = fixed_size(model)
        return fixed[0] if fixed else DEFAULT_SIZE
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise VisualizationError(
            f"{name} must be an integer >= {MIN_SIZE} (pixels of the shorter side; "
            f"{DEFAULT_SIZE} is the default on CPU); got {size!r}")
    return int(size)


def working_picture(model, source, size: int, what: str) -> imgs.Image:
    """``source`` (a name, a file, pixels) at the working size, its notes shown."""
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


def start_pixels(init, shape, config, content_px=None, style_px=None) -> np.ndarray:
    """The start image: ``init`` when given, else the config's choice (content, noise, style)."""
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


def run_loop(model, objective, start_px, config, mean, std, callback):
    """The shared optimisation loop from ``start_px``, kept inside the pixel box."""
    model = contract_model(model)
    box = pixel_box(mean, std, channels=start_px.shape[1])
    opt = Optimization(objective, imgs.normalize(start_px, mean, std), config.optimize, box=box)
    run = opt.run(callback=callback)
    final = {k: float(tf.reduce_sum(v)) for k, v in objective(tf.constant(run.x)).items()}
    return run, final


def to_pixels(x, mean, std) -> np.ndarray:
    """The model's input back to pixels in [0, 1]."""
    return np.clip(imgs.denormalize(x, mean, std), 0, 1)


def unweighted_terms(terms: Mapping[str, float], prefix: str, scale: float,
                     weights: Mapping[str, float] | None = None) -> float:
    """The sum of the ``prefix`` terms with the weights divided out (the paper's raw loss)."""
    total = 0.0
    for k, v in terms.items():
        if k.startswith(prefix):
            w = weights[k[len(prefix):]] if weights else 1.0
            total += v / (scale * w)
    return total


def as_result(technique: str, run, mean, std, config, *, original, metrics, extra) -> Result:
    """The record of a texture synthesis or a style transfer: the run's final and best
    images and snapshots in pixel space, its history and stop."""
    return Result(
        technique=technique,
        image=to_pixels(run.x, mean, std),
        best_image=to_pixels(run.best, mean, std),
        original=original,
        history=run.history,
        config=config.to_dict(),
        metrics=metrics,
        seconds=run.seconds,
        steps=run.steps_done,
        stopped=run.stopped,
        message=run.message,
        snapshots=[(step, to_pixels(v, mean, std)) for step, v in run.snapshots],
        extra=extra,
    )
