"""Texture synthesis (Gatys, Ecker & Bethge 2015): an image whose Gram matrices match a
source texture's."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from ... import images as imgs
from ... import memory
from ...result import Result
from ..checks import (
    VisualizationError,
    check_image_size,
)
from ..perceptual import gram_matrix
from . import setup
from .config import TextureConfig
from .terms import build_objective


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
    setup.check_layers(model, config.layers)
    picture = setup.working_picture(model, texture, setup.working_size(model, size), "texture")
    source = picture.pixels
    check_image_size(model, source)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    x = imgs.normalize(source, mean, std)
    feats = setup.target_features(model, x, config.layers, "texture")
    grams = {k: gram_matrix(feats[k]).numpy() for k in config.layers}
    if output_size is None:
        out_hw = tuple(source.shape[2:])
    elif isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
        out_hw = (setup.working_size(model, output_size, "output_size"),) * 2
    else:
        out_hw = tuple(setup.working_size(model, s, "output_size") for s in output_size)
        if len(out_hw) != 2:
            raise VisualizationError(f"output_size must be n or (h, w); got {output_size!r}")
    shape = (1, source.shape[1], *out_hw)
    start = setup.start_pixels(init, shape, config)
    check_image_size(model, start)
    memory.check_memory(model, shape, list(config.layers))
    weights = config.weights()
    objective = build_objective(model, grams, weights, config.style_weight,
                                tv_weight=config.tv_weight, tv_beta=config.tv_beta)
    x_start = imgs.normalize(start, mean, std)
    setup.target_features(model, x_start, config.layers, "output")  # the output size works
    first = {k: float(v) for k, v in objective(tf.constant(x_start)).items()}
    run, final = setup.run_loop(model, objective, start, config, mean, std, callback)
    metrics = {
        "style_loss_start": setup.unweighted_terms(first, "style:", config.style_weight, weights),
        "style_loss": setup.unweighted_terms(final, "style:", config.style_weight, weights),
    }
    return setup.as_result("texture_synthesis", run, mean, std, config, original=source,
                           metrics=metrics, extra={
                               "texture": picture.name,
                               "notes": picture.notes,
                               "layers": list(config.layers),
                               "layer_weights": weights,
                               "source_shape": list(source.shape),
                               "final_terms": final,
                           })
