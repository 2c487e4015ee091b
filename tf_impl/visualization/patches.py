"""Maximally activating patches: the dataset crops that excite one unit of a layer most.

Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014 (Fig. 2:
"the top 9 activations in a random subset of feature maps across the validation data", each
shown as the image patch under the unit's receptive field), and Girshick, Donahue, Darrell &
Malik, "Rich feature hierarchies for accurate object detection and semantic segmentation",
CVPR 2014 (Sec. 3.1, Fig. 4: the top-scoring regions of pool5 units, "each unit's receptive
field" drawn on the image).

For a layer and channel the scan runs the model over a dataset in batches (the bundled
CIFAR-10 images, an array of pictures, or a folder of photos), keeps the ``k`` largest
activations over images and spatial positions, and crops each to the receptive field of the
unit that produced it. By default one activation per image is kept (the image's strongest
position, as Zeiler & Fergus show nine different images); ``one_per_image=False`` ranks every
(image, position) pair.

The receptive field comes from the ONNX graph (:mod:`.receptive_field`). Patches are the
field cropped at the image border and placed in a canvas of the full field's size filled with
``pad_value`` (so every patch has the same shape and the unit stays at its centre).

Example:
    >>> model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))          # doctest: +SKIP
    >>> found = top_patches(model, "layer2", 5)                              # doctest: +SKIP
    >>> found.patches.shape, found.values[:3], found.field.size             # doctest: +SKIP
    >>> draw_patches("layer2_5.png", found)                                  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from converters.onnx_to_tf import contract_model

from .. import images as imgs
from .. import interrupts
from ..config import plain
from ..loop import progress_bar
from . import checks
from .checks import VisualizationConfig, VisualizationError
from .receptive_field import ReceptiveField, receptive_field, tap_shapes

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")

# -- the scan ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PatchesConfig(VisualizationConfig):
    """Defaults for the maximally-activating-patch scan (Zeiler & Fergus 2014, Fig. 2).

    Attributes:
        k: how many patches to keep (9 as in Zeiler & Fergus' figures).
        one_per_image: keep only each image's strongest position (Zeiler & Fergus show nine
            different images); ``False`` ranks every (image, position) pair, so neighbouring
            positions of one image may fill the list.
        batch_size: images per forward pass.
        size: the side photos from a folder are resized to for size-free models (fixed-size
            models use their own input size).
        pad_value: the pixel value outside the image in the patch canvas (0: black).
        progress: a tqdm bar over the batches (on stderr).
        compiled: run the model in a ``tf.function`` (tracing costs more than it saves for a
            scan of a few hundred small images, so off by default).
    """

    k: int = 9
    one_per_image: bool = True
    batch_size: int = 64
    size: int = 224
    pad_value: float = 0.0
    progress: bool = True
    compiled: bool = False

    def validate(self) -> None:
        if self.batch_size < 1:
            raise VisualizationError(f"batch_size must be >= 1; got {self.batch_size}")
        if self.size < 1:
            raise VisualizationError(f"size must be >= 1; got {self.size}")

@dataclass
class Patches:
    """The top-k activations of one unit and the patches under their receptive fields.

    Attributes:
        layer, channel: the unit's layer (as given; ``field.layer`` is its ONNX tensor name)
            and channel.
        patches: (k, 3, rh, rw) pixels in [0, 1]: each field cropped at the image border and
            placed in a canvas filled with ``pad_value``; best first.
        values: (k,) the activations, in decreasing order (ties: lower index, then position).
        indices: (k,) the source images' indices (into ``sources`` for folders).
        positions: (k, 2) the units' (y, x) in the layer's map.
        boxes: (k, 4) (y0, y1, x0, x1) the cropped region in the source image, half-open.
        field: the layer's :class:`ReceptiveField`.
        sources: names of the dataset's images (file names for a folder, ``cifar10[i]`` or
            ``image[i]``), indexed by ``indices``.
        images_scanned: images run through the model (fewer when interrupted).
        skipped: ``(file, reason)`` for every file of a folder that could not be read.
        interrupted: Ctrl-C stopped the scan; the result holds the top-k found so far.
    """

    layer: str
    channel: int
    patches: np.ndarray
    values: np.ndarray
    indices: np.ndarray
    positions: np.ndarray
    boxes: np.ndarray
    field: ReceptiveField
    sources: list[str]
    images_scanned: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False
    message: str = ""
    seconds: float = 0.0
    config: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "layer": self.layer, "channel": self.channel,
            "values": [float(v) for v in self.values],
            "sources": [self.sources[i] for i in self.indices],
            "positions": self.positions.tolist(), "boxes": self.boxes.tolist(),
            "field": self.field.to_dict(), "images_scanned": self.images_scanned,
            "skipped": [list(s) for s in self.skipped], "interrupted": self.interrupted,
            "message": self.message, "seconds": round(self.seconds, 3), "config": self.config,
        }


def read_photo(path, hw: tuple[int, int]) -> np.ndarray:
    """A photo as (3, H, W) float32 in [0, 1]: the shorter side scaled to cover ``hw``
    (bilinear), then centre-cropped; grayscale/RGBA/palette converted to RGB."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        rgb = im.convert("RGB")
    h, w = hw
    scale = max(h / rgb.height, w / rgb.width)
    nw, nh = max(w, round(rgb.width * scale)), max(h, round(rgb.height * scale))
    rgb = rgb.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - w) // 2, (nh - h) // 2
    rgb = rgb.crop((left, top, left + w, top + h))
    return np.asarray(rgb, np.float32).transpose(2, 0, 1) / np.float32(255.0)


class _Dataset:
    """Batches of pixels from CIFAR-10, an array or a folder, with skipped files counted."""

    def __init__(self, model, source, config: PatchesConfig, n: int | None, split: str):
        model = contract_model(model)
        self.skipped: list[tuple[str, str]] = []
        self.files: list[Path] | None = None
        fixed = checks.fixed_size(model)
        if isinstance(source, str) and source == "cifar10" and not Path(source).is_dir():
            import model_zoo

            pixels, _ = model_zoo.data.cifar10(split, n=n, normalize=False)
            self._arrays(model, pixels, f"cifar10-{split}")
        elif isinstance(source, (str, os.PathLike)):
            folder = Path(source)
            if not folder.exists():
                raise VisualizationError(
                    f"no such folder: {folder}; give a folder of .jpg/.png photos, an array of "
                    "pixels, or 'cifar10'")
            if not folder.is_dir():
                raise VisualizationError(
                    f"{folder} is a file, not a folder; give a folder of .jpg/.png photos (or "
                    "an array of pixels)")
            files = sorted(p for p in folder.iterdir()
                           if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
            if n is not None:
                files = files[:n]
            if not files:
                raise VisualizationError(
                    f"the folder {folder} holds no photos ({', '.join(PHOTO_SUFFIXES)} files); "
                    "add some or point to another folder")
            self.files = files
            self.hw = fixed or (config.size, config.size)
            self.sources = [p.name for p in files]
            self.folder = folder
        else:
            pixels = imgs.as_pixels(source, name="dataset").pixels
            if n is not None:
                pixels = pixels[:n]
            self._arrays(model, pixels, "image")
        self.n = len(self.sources)
        if self.n == 0:
            raise VisualizationError("the dataset is empty; give at least one image")

    def _arrays(self, model, pixels, name):
        model = contract_model(model)
        checks.check_image_size(model, pixels)
        self.pixels = pixels
        self.hw = tuple(pixels.shape[2:])
        self.sources = [f"{name}[{i}]" for i in range(len(pixels))]

    def batches(self, batch_size: int) -> Iterator[tuple[np.ndarray | None, np.ndarray, int]]:
        """(pixels, their source indices, images consumed so far); pixels is None for a
        batch of files none of which could be read."""
        for lo in range(0, self.n, batch_size):
            idx = np.arange(lo, min(lo + batch_size, self.n))
            if self.files is None:
                yield self.pixels[idx], idx, int(idx[-1]) + 1
                continue
            good, arrays = [], []
            for i in idx:
                try:
                    arrays.append(read_photo(self.files[i], self.hw))
                    good.append(i)
                except Exception as err:  # noqa: BLE001 - any unreadable file is skipped
                    self.skipped.append((self.files[i].name, f"{type(err).__name__}: {err}"))
            yield (np.stack(arrays) if good else None), np.asarray(good, np.int64), int(idx[-1]) + 1


def _crop(pixels: np.ndarray, box_full, hw, pad_value: float, size) -> tuple[np.ndarray, tuple]:
    """The field ``box_full`` (unclipped) of one (3, H, W) image in a canvas of ``size``."""
    y0, y1, x0, x1 = box_full
    canvas = np.full((pixels.shape[0], *size), pad_value, np.float32)
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, hw[0]), max(x0, 0), min(x1, hw[1])
    if cy1 > cy0 and cx1 > cx0:
        canvas[:, cy0 - y0: cy1 - y0, cx0 - x0: cx1 - x0] = pixels[:, cy0:cy1, cx0:cx1]
    return canvas, (cy0, cy1, cx0, cx1)


def _top_flat(flat: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values of a 1-D array; ties at the threshold go to the
    lowest indices (image, then row, then column order), so the scan is deterministic."""
    take = min(k, flat.size)
    thr = flat[np.argpartition(-flat, take - 1)[take - 1]]
    above = np.flatnonzero(flat > thr)
    equal = np.flatnonzero(flat == thr)[: take - len(above)]
    return np.concatenate([above, equal])


def _check_k(k: int, n: int, shape, one_per_image: bool) -> None:
    """k patches must exist: at most one per image, or one per position of the map."""
    per_image = 1 if one_per_image else shape[2] * shape[3]
    if k > n * per_image:
        what = "one per image" if one_per_image else f"{shape[2]}x{shape[3]} positions per image"
        raise VisualizationError(
            f"k={k} is larger than the dataset: {n} images ({what}) give at most "
            f"{n * per_image} patches; use k <= {n * per_image}")


class _Best:
    """The k highest activations seen so far (value, image, y, x; ties to the lowest image,
    row, column) with their receptive fields cropped from the images."""

    def __init__(self, k: int, field, hw, config: PatchesConfig):
        self.k, self.field, self.hw, self.config = k, field, hw, config
        self.values = np.zeros(0, np.float64)
        self.index = np.zeros(0, np.int64)
        self.pos = np.zeros((0, 2), np.int64)
        self.patches = np.zeros((0, 3, *field.size), np.float32)
        self.boxes = np.zeros((0, 4), np.int64)

    def add(self, px: np.ndarray, idx: np.ndarray, act: np.ndarray) -> None:
        """Merge one batch: pictures ``px``, their dataset indices, activations (B, H, W)."""
        flat = act.reshape(len(px), -1)
        if self.config.one_per_image:  # argmax: the first (lowest) position of a tie
            cand_b, cand_p = np.arange(len(px)), np.argmax(flat, axis=1)
        else:
            cand_b, cand_p = np.divmod(_top_flat(flat.ravel(), self.k), flat.shape[1])
        cand_v = flat[cand_b, cand_p]
        keep = np.isfinite(cand_v)
        cand_b, cand_p, cand_v = cand_b[keep], cand_p[keep], cand_v[keep]
        cy, cx = np.divmod(cand_p, act.shape[2])
        all_v = np.concatenate([self.values, cand_v])
        all_i = np.concatenate([self.index, idx[cand_b]])
        all_y = np.concatenate([self.pos[:, 0], cy])
        all_x = np.concatenate([self.pos[:, 1], cx])
        order = np.lexsort((all_x, all_y, all_i, -all_v))[: self.k]
        new_patches, new_boxes = [], []
        for o in order:
            if o < len(self.values):
                new_patches.append(self.patches[o])
                new_boxes.append(self.boxes[o])
            else:
                c = o - len(self.values)
                canvas, box = _crop(px[cand_b[c]], self.field.box(cy[c], cx[c]), self.hw,
                                    self.config.pad_value, self.field.size)
                new_patches.append(canvas)
                new_boxes.append(box)
        self.values, self.index = all_v[order], all_i[order]
        self.pos = np.stack([all_y[order], all_x[order]], axis=1)
        self.patches = np.stack(new_patches) if new_patches else self.patches
        self.boxes = np.asarray(new_boxes, np.int64).reshape(-1, 4)


def _skipped_note(data: _Dataset) -> list[str]:
    """A warning (and a note) for unreadable files; an error when none could be read."""
    if not data.skipped:
        return []
    where = getattr(data, "folder", "the folder")
    if len(data.skipped) == data.n:
        first = "; ".join(f"{f}: {r}" for f, r in data.skipped[:3])
        raise VisualizationError(
            f"none of the {data.n} photos in {where} could be read ({first}); check the "
            "files or point to another folder")
    note = (f"skipped {len(data.skipped)} of {data.n} files in {where} that could not be "
            f"read: " + ", ".join(f for f, _ in data.skipped[:5])
            + (" ..." if len(data.skipped) > 5 else ""))
    warnings.warn(note, stacklevel=3)
    return [note]


def top_patches(
    model,
    layer: str,
    channel: int,
    source="cifar10",
    config: PatchesConfig | None = None,
    *,
    n: int | None = None,
    split: str = "test",
    preprocessing=None,
    callback: Callable | None = None,
) -> Patches:
    """The ``config.k`` dataset patches that activate ``channel`` of ``layer`` most.

    Args:
        model: a :class:`converters.onnx_to_tf.TFModel`.
        layer: a 4-D layer (alias or ONNX tensor name); ``channel`` an index into its channels.
        source: ``"cifar10"`` (the bundled images, ``split`` and the first ``n``), an array of
            pictures in pixel space (N, 3, H, W) in [0, 1], or a folder of .jpg/.png photos
            (resized to the model's input size; files that cannot be read are skipped,
            counted in ``skipped`` and reported with a warning).
        config: :class:`PatchesConfig` (k, one per image, batch size...).
        n: use only the first ``n`` images of the source.
        preprocessing: (mean, std) of the model input; the zoo's record by default.
        callback: ``callback(batch_number, images_scanned)`` after every batch; return True to
            stop early.

    Returns:
        :class:`Patches`. Ctrl-C stops the scan and returns the top-k found so far
        (``interrupted=True``).
    """
    model = contract_model(model)
    config = config or PatchesConfig()
    started = time.perf_counter()
    name = checks.check_layer(model, layer)
    k = config.k
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise VisualizationError(f"k must be an integer >= 1; got {plain(k)!r}")
    data = _Dataset(model, source, config, n, split)
    shape = tap_shapes(model, [name], data.hw)[name]
    if len(shape) != 4:
        raise VisualizationError(
            f"layer {layer!r} has shape {shape}, not a feature map (N, C, H, W): pick a "
            "convolutional layer")
    channel = checks.check_channel(layer, channel, shape[1])
    _check_k(k, data.n, shape, config.one_per_image)
    rf = receptive_field(model, name, data.hw)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    best = _Best(k, rf, data.hw, config)
    scanned, interrupted, nonfinite, stop_msg = 0, False, 0, ""
    bar = progress_bar(data.n, desc="patches", unit="img", enabled=config.progress)
    try:
        for b, (px, idx, consumed) in enumerate(data.batches(config.batch_size)):
            if interrupts.requested() is not None:  # Ctrl-C/SIGTERM under graceful_stop
                raise KeyboardInterrupt
            if bar is not None:
                bar.update(consumed - bar.n)
            if px is None:
                continue
            out = model(imgs.normalize(px, mean, std), taps=[name], compiled=config.compiled)
            act = np.asarray(out[name])[:, channel].astype(np.float64)  # (B, H, W)
            bad = ~np.isfinite(act)
            nonfinite += int(bad.sum())
            act[bad] = -np.inf
            best.add(px, idx, act)
            scanned += len(px)
            if callback is not None and callback(b + 1, scanned):
                stop_msg = f"stopped by the callback after {scanned} images"
                break
    except KeyboardInterrupt:
        interrupted = True
        stop_msg = f"interrupted after {scanned} of {data.n} images: the top-k found so far"
    finally:
        if bar is not None:
            bar.close()
    messages = [stop_msg] if stop_msg else []
    messages += _skipped_note(data)
    if nonfinite:
        messages.append(f"ignored {nonfinite} non-finite activations")
    if len(best.values) < k and not interrupted and not stop_msg:
        messages.append(f"found only {len(best.values)} patches (k={k})")
    return Patches(
        layer=layer, channel=channel, patches=best.patches, values=best.values.astype(np.float32),
        indices=best.index, positions=best.pos, boxes=best.boxes, field=rf, sources=data.sources,
        images_scanned=scanned, skipped=data.skipped, interrupted=interrupted,
        message="; ".join(messages), seconds=time.perf_counter() - started,
        config=config.to_dict(),
    )


def draw_patches(path, found: Patches, *, ncols: int | None = None, title: str | None = None,
                 size: float = 1.4) -> None:
    """The patches in a grid, best first, each captioned with its activation and source.

    Canvas rows and columns that are padding in every patch (a field larger than the image)
    are trimmed from the picture; the arrays in ``found`` keep the full field."""
    import math

    from ..report import headless_pyplot, to_uint8

    n = len(found.values)
    if n == 0:
        raise VisualizationError("no patches to draw (the scan found none)")
    rf = found.field
    full = np.array([rf.box(y, x) for y, x in found.positions]).reshape(-1, 4)
    inner = found.boxes - full[:, [0, 0, 2, 2]]  # the image part, in canvas coordinates
    r0, r1 = inner[:, 0].min(), inner[:, 1].max()
    c0, c1 = inner[:, 2].min(), inner[:, 3].max()
    shown = found.patches[:, :, r0:r1, c0:c1] if r1 > r0 and c1 > c0 else found.patches
    plt = headless_pyplot()
    ncols = ncols or min(n, max(1, math.ceil(math.sqrt(n))))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols + 0.3, (size + 0.35) * nrows
                                                    + 0.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, patch, v, i in zip(axes.ravel(), shown, found.values, found.indices):
        ax.imshow(to_uint8(patch), interpolation="nearest")
        ax.set_title(f"{v:.3g}\n{found.sources[i]}", fontsize=6, pad=1)
    fig.suptitle(title if title is not None else
                 f"{found.layer} channel {found.channel}: top {n} (field {rf.size[0]}x"
                 f"{rf.size[1]}, stride {rf.jump[0]})", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
