"""Neural style transfer (Gatys, Ecker & Bethge 2016): the content of one image in the
style of another."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from ... import images as imgs
from ... import memory
from ...result import Result
from ..checks import (
    check_image_size,
)
from ..perceptual import gram_matrix
from . import setup
from .config import StyleTransferConfig
from .terms import build_objective


# -- style transfer -----------------------------------------------------------------------------
def style_transfer(
    model,
    content="tubingen",
    style="starry_night",
    config: StyleTransferConfig | None = None,
    *,
    size: int | None = None,
    style_size: int | None = None,
    init: np.ndarray | None = None,
    preprocessing: tuple[Sequence[float], Sequence[float]] | None = None,
    callback: Callable | None = None,
) -> Result:
    """Render ``content`` in the style of ``style`` (Gatys, Ecker & Bethge 2016).

    Args:
        model: a feature extractor (e.g. ``vgg16_features``) with the configured layers.
        content, style: pixels in [0, 1] (NCHW/CHW/HWC arrays, float or uint8), file paths or
            bundled names (``model_zoo.data.list_images()``; defaults ``tubingen`` and
            ``starry_night`` as in the paper's Fig. 3).
        config: :class:`StyleTransferConfig` (paper defaults when omitted).
        size: resize a content file / name to this (shorter side, centre crop; default 256, or
            the model's fixed input size); arrays keep their size.
        style_size: resize a style file / name to this. Default: the content's shorter side,
            so the brush strokes have the scale they have at the content's resolution; a
            different value keeps the style at its own scale (Gram matrices do not depend on
            the spatial size, larger values give finer strokes).
        init: an explicit start in pixel space (the content's shape).
        preprocessing: (mean, std) of the model input (default: the zoo's record).
        callback: ``callback(step, loss, terms, optimization)`` after every step; True stops.

    Returns:
        a :class:`~tf_impl.result.Result`: ``image`` the stylised picture in pixel space
        [0, 1], ``original`` the content, ``metrics`` the unweighted ``style_loss``
        (sum_l w_l S_l) and ``content_loss`` (sum P_l) at the start and at the end,
        ``history`` every weighted term per step.
    """
    model = contract_model(model)
    config = config or StyleTransferConfig()
    setup.check_layers(model, config.content_layers + config.style_layers)
    size = setup.working_size(model, size)
    content_pic = setup.working_picture(model, content, size, "content")
    content_px = content_pic.pixels
    check_image_size(model, content_px)
    side = setup.working_size(model, style_size or min(content_px.shape[2:]), "style_size")
    style_pic = setup.working_picture(model, style, side, "style")
    style_px = style_pic.pixels
    check_image_size(model, style_px)
    start = setup.start_pixels(init, content_px.shape, config, content_px, style_px)
    memory.check_memory(model, content_px.shape, list(config.content_layers + config.style_layers))
    mean, std = preprocessing or imgs.preprocessing_of(model)
    s_feats = setup.target_features(model, imgs.normalize(style_px, mean, std),
                                    config.style_layers, "style")
    c_feats = setup.target_features(model, imgs.normalize(content_px, mean, std),
                                    config.content_layers + config.style_layers, "content")
    grams = {k: gram_matrix(s_feats[k]).numpy() for k in config.style_layers}
    contents = {k: np.asarray(c_feats[k]) for k in config.content_layers}
    weights = config.weights()
    objective = build_objective(
        model, grams, weights, config.style_weight, contents=contents,
        content_weight=config.content_weight, tv_weight=config.tv_weight, tv_beta=config.tv_beta)
    first = {k: float(v) for k, v in objective(
        tf.constant(imgs.normalize(start, mean, std))).items()}
    run, final = setup.run_loop(model, objective, start, config, mean, std, callback)
    metrics = {}
    for when, terms in (("_start", first), ("", final)):
        metrics["style_loss" + when] = setup.unweighted_terms(
            terms, "style:", config.style_weight, weights)
        metrics["content_loss" + when] = setup.unweighted_terms(
            terms, "content:", config.content_weight)
    return setup.as_result("style_transfer", run, mean, std, config, original=content_px,
                           metrics=metrics, extra={
                               "content": content_pic.name,
                               "style": style_pic.name,
                               "notes": content_pic.notes + style_pic.notes,
                               "content_shape": list(content_px.shape),
                               "style_shape": list(style_px.shape),
                               "style_layer_weights": weights,
                               "final_terms": final,
                           })
