"""Images in and out of the techniques: checked, converted, normalised for a model.

The techniques take pictures in *pixel space*, floats in [0, 1], NCHW (as ONNX models do), and
run the model on the normalised input ``(pixel - mean) / std``. This module turns what a user
has (a bundled name, a file, an array of almost any common shape) into that, saying what it
converted (grayscale and RGBA become RGB, with a note), and refuses what it cannot use with a
message that names the problem and the fix.

Example:
    >>> img = load_image("astronaut", size=64)                   # doctest: +SKIP
    >>> img.pixels.shape, img.notes
    ((1, 3, 64, 64), [])
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from converters.onnx_to_tf import contract_model
from model_zoo.data import denormalize_nchw, normalize_nchw

# pixels as they are, and the ImageNet statistics most models are trained with
IDENTITY = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


class ImageError(ValueError):
    """An image the technique cannot use; the message says what to do."""


CIFAR_PREFIX = "cifar10:"


@dataclass
class Image:
    """A checked picture: ``pixels`` float32 (N, 3, H, W) in [0, 1], what was converted, and
    its class when it is a bundled, labelled image."""

    pixels: np.ndarray
    name: str = "image"
    notes: list[str] = field(default_factory=list)
    label: int | None = None


def preprocessing_of(model) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) of a model's working input, in pixel units and RGB order.

    Read from the model's contract (``converters.onnx_to_tf.contract``): the file's metadata
    (the zoo writes its preprocessing there), a sidecar or the command line's flags. A model
    that divides by a std works on ``(pixel - mean) / std`` exactly as it was trained; a
    Caffe-style model (0..255, mean subtraction only) on ``pixel - mean / 255``.
    """
    model = contract_model(model)
    return getattr(model, "preprocessing", IDENTITY)


normalize = normalize_nchw  # pixels in [0, 1] (N, C, H, W) -> (pixels - mean) / std
denormalize = denormalize_nchw  # the model's input -> x * std + mean


def _channels_first(arr: np.ndarray, notes: list[str]) -> np.ndarray:
    """(N, C, H, W) from 2-D, 3-D (CHW or HWC) or 4-D (NCHW or NHWC) arrays."""
    if arr.ndim == 2:
        notes.append("grayscale (H, W) image: replicated to 3 channels")
        return arr[None, None]
    if arr.ndim == 3:
        if arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            return arr[None]
        if arr.shape[-1] in (1, 3, 4):
            return arr.transpose(2, 0, 1)[None]
        raise ImageError(
            f"a 3-D image must be (C, H, W) or (H, W, C) with 1, 3 or 4 channels; "
            f"got shape {arr.shape}"
        )
    if arr.ndim == 4:
        if arr.shape[1] in (1, 3, 4):
            return arr
        if arr.shape[-1] in (1, 3, 4):
            notes.append("channels-last (N, H, W, C) batch: transposed to NCHW")
            return arr.transpose(0, 3, 1, 2)
        raise ImageError(f"a 4-D batch must be NCHW with 1, 3 or 4 channels; got shape {arr.shape}")
    raise ImageError(
        f"an image must be 2-D (H, W), 3-D (C, H, W) or 4-D (N, C, H, W); got "
        f"{arr.ndim}-D shape {arr.shape}"
    )


def as_pixels(image, *, name: str = "image") -> Image:
    """Check and convert an array to pixels (N, 3, H, W) float32 in [0, 1].

    uint8 arrays are scaled by 1/255; floats must already lie in [0, 1] (a normalised image
    is refused: pass the picture, the technique normalises it for the model). One channel is
    replicated to three and a fourth (alpha) channel is dropped, each with a note.
    """
    arr = np.asarray(image)
    notes: list[str] = []
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype.kind in "iu":
        raise ImageError(
            f"integer images must be uint8 (0..255); got {arr.dtype}. Convert "
            "with x.astype('float32') / x.max()"
        )
    elif arr.dtype.kind != "f":
        raise ImageError(f"an image must be a float or uint8 array; got dtype {arr.dtype}")
    arr = _channels_first(arr.astype(np.float32), notes)
    c = arr.shape[1]
    if c == 1:
        if not notes:
            notes.append("grayscale image: replicated to 3 channels")
        arr = np.repeat(arr, 3, axis=1)
    elif c == 4:
        notes.append("RGBA image: alpha channel dropped")
        arr = arr[:, :3]
    if not np.all(np.isfinite(arr)):
        raise ImageError(f"{name} contains NaN or Inf values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ImageError(
            f"{name} has values in [{lo:.3g}, {hi:.3g}]; pass pixels in [0, 1] "
            "(float) or 0..255 (uint8), not a normalised tensor: the technique "
            "applies the model's mean/std itself"
        )
    return Image(np.ascontiguousarray(np.clip(arr, 0, 1), np.float32), name, notes)


def cifar_image(spec: str) -> Image:
    """``cifar10:K``: the K-th bundled CIFAR-10 test image (32x32) and its label."""
    from model_zoo import data

    try:
        k = int(spec[len(CIFAR_PREFIX):])
    except ValueError:
        raise ImageError(f"image {spec!r}: write cifar10:K with K an integer in [0, 1000)"
                         ) from None
    if not 0 <= k < 1000:
        raise ImageError(f"image {spec!r}: K must be in [0, 1000) (the bundled CIFAR-10 test "
                         "images)")
    pixels, labels = data.cifar10("test", n=k + 1, normalize=False)
    return Image(np.ascontiguousarray(pixels[k:k + 1], np.float32), spec, [], int(labels[k]))


def load_image(source, size: int | None = 224) -> Image:
    """A bundled name (``model_zoo.data.list_images()``), ``cifar10:K`` (the K-th bundled
    CIFAR-10 test image, 32x32, with its label), a file path or an array, as pixels.

    Files and bundled names are resized (shorter side to ``size``) and centre-cropped to a
    square, as :func:`model_zoo.data.image` does; CIFAR-10 images and arrays are used at
    their own size (``size`` is ignored for them).
    """
    if isinstance(source, str) and source.startswith(CIFAR_PREFIX):
        return cifar_image(source)
    if isinstance(source, (str, os.PathLike)):
        import model_zoo.data as data
        from model_zoo import ModelZooError

        src = str(source)
        notes = _file_mode_notes(src)
        try:
            pixels = data.image(src, size=size or 224, normalize=False)
        except ModelZooError as err:  # its message names the bundled images
            raise ImageError(str(err)) from err
        name = Path(src).stem
        label = data.image_label(src) if src in data.list_images() else None
        return Image(pixels, name, notes, label)
    return as_pixels(source)


def _file_mode_notes(src: str) -> list[str]:
    path = Path(src)
    if not path.is_file():
        return []
    try:
        from PIL import Image as PILImage

        with PILImage.open(path) as im:
            mode = im.mode
    except OSError:
        return []
    if mode in ("L", "LA", "I", "I;16", "F", "1"):
        return [f"grayscale file ({mode}): replicated to 3 channels"]
    if mode in ("RGBA", "P", "PA"):
        return [f"{mode} file: converted to RGB (alpha dropped)"]
    return []


def warn_notes(image: Image) -> None:
    for note in image.notes:
        warnings.warn(f"{image.name}: {note}", stacklevel=3)
