"""Argument checks shared by the visualization methods: clear messages with the valid range."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from .. import images as imgs
from ..config import TechniqueConfig, plain


class VisualizationError(ValueError):
    """A bad argument to a visualization method; the message names the valid choices."""


class VisualizationConfig(TechniqueConfig):
    """The visualization techniques' configs: :class:`tf_impl.config.TechniqueConfig` raising
    :class:`VisualizationError`."""

    error = VisualizationError


def class_scores(model, x, *, relu_mode: str = "standard", error=VisualizationError,
                 what: str = "class scores need") -> tf.Tensor:
    """The model's (batch, classes) logits for ``x`` (the input of a final Softmax, spatial
    maps squeezed: see the model contract); a model with no classifier output raises
    ``error`` (the visualization and attribution methods explain one class score)."""
    model = require_classifier(model, error=error, what=what)
    out = model(x, relu_mode=relu_mode) if relu_mode != "standard" else model(x)
    out = out[0] if isinstance(out, tuple) else out
    if out.shape.rank != 2:
        raise error(
            f"this model's class scores have shape {tuple(out.shape)}, not (batch, classes); "
            "give the logits tensor with --logits TENSOR (python -m tf_impl layers MODEL "
            "lists them)")
    return out


def require_classifier(model, *, error=VisualizationError, what: str = "class scores need"):
    """``model`` behind its contract, or ``error`` when it has no classifier output."""
    model = contract_model(model)
    contract = getattr(model, "contract", None)  # None: a plain callable (a test double)
    if contract is not None and not contract.is_classifier:
        raise error(
            f"{what} a classifier, but this model's output {model.output_names[0]!r} is a "
            "feature map (contract output 'features'); use a classifier (e.g. resnet20_cifar, "
            "vgg16), or, if that output holds class scores, say so with --output logits")
    return model


def num_classes(model) -> int:
    """The number of classes of a classifier (the logits' last axis)."""
    model = require_classifier(model)
    if hasattr(model, "num_classes"):
        return model.num_classes
    spec = model.inputs[0]
    dims = [1 if i == 0 else (64 if d is None else d) for i, d in enumerate(spec.shape)]
    return int(class_scores(model, tf.zeros(dims, spec.dtype)).shape[-1])


def check_class(model, target, *, classes: int | None = None) -> int:
    """``target`` as an int in [0, classes), or an error naming the valid range."""
    n = classes if classes is not None else num_classes(model)
    try:
        t = int(target)
    except (TypeError, ValueError):
        raise VisualizationError(
            f"class index must be an integer in [0, {n}); got {plain(target)!r}") from None
    if t != target or not 0 <= t < n:
        raise VisualizationError(
            f"class index {plain(target)!r} is out of range: this model has {n} classes, so "
            f"use 0 to {n - 1}"
        )
    return t


def check_channel(layer: str, channel, channels: int) -> int:
    """``channel`` as an int in [0, channels), or an error naming the layer and the range."""
    try:
        c = int(channel)
    except (TypeError, ValueError):
        raise VisualizationError(f"channel must be an integer; got {plain(channel)!r}") from None
    if c != channel or not 0 <= c < channels:
        raise VisualizationError(
            f"channel {plain(channel)!r} is out of range for layer {layer!r}, which has {channels} "
            f"channels: use 0 to {channels - 1}"
        )
    return c


def check_layer(model, layer: str) -> str:
    """The ONNX tensor name of ``layer`` (alias or raw name); the importer's error lists the
    valid names otherwise."""
    try:
        return model.resolve(layer)
    except KeyError as err:
        raise VisualizationError(err.args[0] if err.args else str(err)) from None


def fixed_size(model) -> tuple[int, int] | None:
    """(H, W) when the model's input has a fixed spatial size (a fully connected head)."""
    shape = contract_model(model).inputs[0].shape
    if len(shape) == 4 and shape[2] is not None and shape[3] is not None:
        return int(shape[2]), int(shape[3])
    return None


def check_image_size(model, pixels: np.ndarray) -> None:
    """Refuse pictures of the wrong size for a fixed-size model, saying which size it takes."""
    size = fixed_size(model)
    if size is not None and tuple(pixels.shape[-2:]) != size:
        raise VisualizationError(
            f"this model takes {size[0]}x{size[1]} images (its input is fixed at "
            f"{tuple(contract_model(model).inputs[0].shape)}); got {pixels.shape[-2]}x"
            f"{pixels.shape[-1]}. Give it at {size[0]}x{size[1]} (a file or bundled name is "
            "resized for you; a cifar10:K image is 32x32)"
        )


def model_input(model, image, *, preprocessing=None) -> tuple[np.ndarray, np.ndarray]:
    """(pixels in [0, 1] NCHW, the model's normalised input) for a picture (any form
    :func:`tf_impl.images.as_pixels` accepts, or a bundled name / file at the model's size)."""
    if isinstance(image, (str,)) or hasattr(image, "__fspath__"):
        size = fixed_size(model)
        pixels = imgs.load_image(image, size[0] if size else 224).pixels
    else:
        pixels = imgs.as_pixels(image).pixels
    check_image_size(model, pixels)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    return pixels, imgs.normalize(pixels, mean, std)
