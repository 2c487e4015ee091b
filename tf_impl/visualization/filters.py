"""Filters and activation maps: what the convolution kernels look like, what a layer responds to.

The first layer's kernels act on RGB pixels, so each one can be shown as a small colour image
(Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS 2012, Fig. 3; Zeiler & Fergus, "Visualizing and Understanding Convolutional
Networks", ECCV 2014, Fig. 5). Deeper kernels act on feature maps, not colours: each output
channel's kernel is shown as a grid of grayscale tiles, one per input channel. The activation
maps of any layer for one image are the layer's output channels as images (Yosinski et al.,
"Understanding Neural Networks Through Deep Visualization", ICML DL workshop 2015).

Weights are read from ``model.onnx_variables`` in the ONNX layout (O, I/groups, kh, kw), found
by the model (``model.conv_kernels()``: the graph's Conv node that produces the requested
layer), so the pictures are the ONNX file's own numbers.

Normalisation (documented, tested): every first-layer filter is min-max scaled on its own over
all of its kh x kw x 3 values, ``(w - min) / (max - min)``, to [0, 1]; for deeper layers each
output channel is min-max scaled over all of its in-channel tiles together (so the tiles of one
filter are comparable), or per tile / per layer (``normalize=``). A constant filter maps to 0.5.

Example:
    >>> import model_zoo
    >>> from converters import onnx_to_tf
    >>> model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))        # doctest: +SKIP
    >>> first_layer_filters(model).shape                                    # doctest: +SKIP
    (16, 3, 3, 3)
    >>> maps = activations(model, x_pixels[:1], "layer1")                  # doctest: +SKIP
    >>> draw_activations("layer1.png", maps, max_channels=16)              # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from converters.onnx_to_tf import contract_model
from converters.onnx_to_tf.graph_queries import ConvLayer

from . import checks
from .checks import VisualizationError

_NORMALIZE = ("filter", "tile", "layer", "none")


@dataclass(frozen=True)
class ConvKernels:
    """The kernels of one Conv node, in ONNX layout.

    Attributes:
        weights: (O, I/groups, kh, kw) float32, as stored in the ONNX file.
        node: the Conv node's name; ``weight``: its initializer's name; ``output``: the tensor
            it produces; ``groups``: its ``group`` attribute.
    """

    weights: np.ndarray
    node: str
    weight: str
    output: str
    groups: int


def _conv_names(model) -> list[str]:
    """Names to suggest for convolution layers: aliases of Conv outputs, else the tensors."""
    model = contract_model(model)
    outs = {c.output for c in model.conv_kernels().values() if isinstance(c, ConvLayer)}
    named = [a for a, t in model.aliases.items() if t in outs]
    return named or sorted(outs)


def _kernels(model, conv: ConvLayer) -> ConvKernels:
    model = contract_model(model)
    if not conv.stored:
        raise VisualizationError(
            f"the weights of Conv node {conv.node!r} ({conv.weight!r}) are computed in the graph, "
            "not stored as an initializer, so they cannot be shown; pick another layer"
        )
    w = conv.weight
    arr = np.asarray(model.to_onnx_layout(w, model.onnx_variables[w]), np.float32)
    return ConvKernels(arr, conv.node, w, conv.output, conv.groups)


def conv_kernels(model, layer: str) -> ConvKernels:
    """The kernels of the convolution that produces ``layer`` (an alias or tensor name).

    The model answers (``model.conv_kernels()``): back from the layer through pointwise ops
    (ReLU, BatchNorm, bias Add/Mul with a constant...) to the Conv node; a layer made by
    pooling, by adding two branches, or by anything else is refused with the names of the
    model's convolution layers.
    """
    model = contract_model(model)
    name = checks.check_layer(model, layer)
    found = model.conv_kernels().get(name)
    if isinstance(found, ConvLayer):
        return _kernels(model, found)
    convs = ", ".join(_conv_names(model))
    if found is None or found.op == "input":
        raise VisualizationError(
            f"layer {layer!r} is the model's input, not a convolution; convolution layers: "
            f"{convs}" if found is not None else
            f"layer {layer!r} is not computed from the model's input, so it has no kernels; "
            f"convolution layers: {convs}")
    raise VisualizationError(
        f"layer {layer!r} is produced by a {found.op} node ({found.node!r}), not by a "
        "convolution followed only by pointwise ops, so it has no kernels of its own; "
        f"convolution layers: {convs}"
    )


def first_conv(model) -> ConvKernels:
    """The kernels of the first Conv node in the graph (the one that sees the pixels)."""
    model = contract_model(model)
    for conv in model.conv_kernels().values():
        if isinstance(conv, ConvLayer):
            return _kernels(model, conv)
    raise VisualizationError("this model has no Conv node, so it has no filters to show")


def _minmax(w: np.ndarray, axes) -> np.ndarray:
    lo = w.min(axis=axes, keepdims=True)
    hi = w.max(axis=axes, keepdims=True)
    span = hi - lo
    out = np.where(span > 0, (w - lo) / np.where(span > 0, span, 1), 0.5)
    return out.astype(np.float32)


def first_layer_filters(model) -> np.ndarray:
    """The first convolution's kernels as RGB tiles, (O, kh, kw, 3) float32 in [0, 1].

    Each filter is min-max scaled on its own over all of its values; a BGR model's kernels
    are shown in RGB order (its contract says which). A one-channel first layer
    (grayscale models) is replicated to three channels; other channel counts are refused.
    """
    model = contract_model(model)
    k = first_conv(model)
    w = k.weights
    if w.shape[1] == 1:
        w = np.repeat(w, 3, axis=1)
    elif w.shape[1] != 3:
        raise VisualizationError(
            f"the first convolution ({k.node!r}) takes {w.shape[1]} input channels, not RGB, so "
            "its kernels cannot be shown as colour tiles; use layer_filters(model, layer)"
        )
    contract = getattr(model, "contract", None)
    if contract is not None and contract.bgr:  # the model's channel 0 is blue: show RGB
        w = w[:, ::-1]
    return _minmax(w, (1, 2, 3)).transpose(0, 2, 3, 1)


def tile_grid(tiles: np.ndarray, ncols: int | None = None, *, pad: int = 1,
              pad_value: float = 1.0) -> np.ndarray:
    """(n, h, w) tiles laid out row by row in a (rows*(h+pad)-pad, cols*(w+pad)-pad) image.

    ``ncols`` defaults to ceil(sqrt(n)); tile ``i`` sits at row ``i // ncols``, column
    ``i % ncols``; the separators and empty cells hold ``pad_value``.
    """
    tiles = np.asarray(tiles, np.float32)
    n, h, w = tiles.shape
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    nrows = -(-n // ncols)
    grid = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), pad_value, np.float32)
    for i in range(n):
        r, c = divmod(i, ncols)
        grid[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = tiles[i]
    return grid


def layer_filters(model, layer: str, *, normalize: str = "filter", pad: int = 1,
                  pad_value: float = 1.0) -> np.ndarray:
    """Deeper kernels as grayscale grids: (O, GH, GW) float32, one grid per output channel.

    Output channel ``o``'s grid holds its kernels for the in-channels ``0 .. I/groups - 1`` as
    tiles (see :func:`tile_grid`: ceil(sqrt(I)) columns, separators of ``pad`` pixels filled
    with ``pad_value``).

    Args:
        layer: a convolution layer (alias or tensor name), or a pointwise op after one (e.g. its
            ReLU or BatchNorm output).
        normalize: min-max scaling to [0, 1] over each output channel's tiles together
            (``"filter"``, default), over each tile (``"tile"``), over the whole layer
            (``"layer"``), or none (``"none"``: raw weights).
    """
    model = contract_model(model)
    if normalize not in _NORMALIZE:
        raise VisualizationError(f"normalize must be one of {_NORMALIZE}; got {normalize!r}")
    w = conv_kernels(model, layer).weights
    if normalize == "filter":
        w = _minmax(w, (1, 2, 3))
    elif normalize == "tile":
        w = _minmax(w, (2, 3))
    elif normalize == "layer":
        w = _minmax(w, (0, 1, 2, 3))
    return np.stack([tile_grid(f, pad=pad, pad_value=pad_value) for f in w])


def activations(model, image, layer: str, *, preprocessing=None) -> np.ndarray:
    """The activation maps of ``layer`` for one image, (C, H, W) float32.

    Args:
        image: one picture in pixel space [0, 1] (CHW, HWC or a batch of one), or a bundled
            name / file path (loaded at the model's input size, or 224 for size-free models).
        layer: any tensor (alias or ONNX name). A vector layer (N, C) gives (C, 1, 1).
        preprocessing: (mean, std) of the model input; the zoo's record by default.
    """
    model = contract_model(model)
    name = checks.check_layer(model, layer)
    pixels, x = checks.model_input(model, image, preprocessing=preprocessing)
    if pixels.shape[0] != 1:
        raise VisualizationError(
            f"activations() takes one image; got a batch of {pixels.shape[0]}. Pass x[i:i+1]"
        )
    out = np.asarray(model(x, taps=[name], compiled=False)[name])
    if out.ndim == 4:
        return out[0]
    if out.ndim == 2:
        return out[0][:, None, None]
    raise VisualizationError(
        f"layer {layer!r} has shape {out.shape}: neither a feature map (N, C, H, W) nor a "
        "vector (N, C); pick another layer"
    )


def _grid_shape(n: int, ncols: int | None) -> tuple[int, int]:
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    return -(-n // ncols), ncols


def draw_filters(path, filters: np.ndarray, *, max_filters: int = 64, ncols: int | None = None,
                 title: str = "", size: float = 0.9) -> None:
    """A grid of filters with their indices: RGB tiles from :func:`first_layer_filters`
    ((O, kh, kw, 3)) or grayscale grids from :func:`layer_filters` ((O, GH, GW))."""
    from ..report import headless_pyplot

    f = np.asarray(filters, np.float32)
    rgb = f.ndim == 4 and f.shape[-1] == 3
    if not rgb and f.ndim != 3:
        raise VisualizationError(
            f"filters must be (O, kh, kw, 3) RGB tiles or (O, H, W) grayscale grids; got shape "
            f"{f.shape}"
        )
    if max_filters < 1:
        raise VisualizationError(f"max_filters must be >= 1; got {max_filters}")
    f = f[:max_filters]
    plt = headless_pyplot()
    nrows, ncols = _grid_shape(len(f), ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.4, size * nrows + 0.6),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i, (ax, tile) in enumerate(zip(axes.ravel(), f)):
        if rgb:
            ax.imshow(np.clip(tile, 0, 1), interpolation="nearest")
        else:
            ax.imshow(tile, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(str(i), fontsize=6, pad=1)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def draw_activations(path, maps: np.ndarray, *, max_channels: int = 64,
                     channels: Sequence[int] | None = None, ncols: int | None = None,
                     image: np.ndarray | None = None, title: str = "", cmap: str = "viridis",
                     size: float = 1.2) -> None:
    """A grid of a layer's channel maps (from :func:`activations`), each titled with its
    channel index; ``channels`` picks them (default the first ``max_channels``), ``image``
    adds the input picture as the first panel. Each map has its own colour scale."""
    from ..report import headless_pyplot, to_uint8

    maps = np.asarray(maps, np.float32)
    if maps.ndim != 3:
        raise VisualizationError(f"maps must be (C, H, W); got shape {maps.shape}")
    if max_channels < 1:
        raise VisualizationError(f"max_channels must be >= 1; got {max_channels}")
    if channels is None:
        channels = range(min(len(maps), max_channels))
    channels = [checks.check_channel("maps", c, len(maps)) for c in channels][:max_channels]
    panels = len(channels) + (image is not None)
    plt = headless_pyplot()
    nrows, ncols = _grid_shape(panels, ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.4, size * nrows + 0.6),
                             squeeze=False)
    cells = iter(axes.ravel())
    for ax in axes.ravel():
        ax.axis("off")
    if image is not None:
        ax = next(cells)
        ax.imshow(to_uint8(image))
        ax.set_title("input", fontsize=7, pad=1)
    for c in channels:
        ax = next(cells)
        ax.imshow(maps[c], cmap=cmap, interpolation="nearest")
        ax.set_title(str(c), fontsize=7, pad=1)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
