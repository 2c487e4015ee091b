"""Images in and out of the techniques: checked, converted, normalised for a model.

The techniques take pictures in *pixel space*, floats in [0, 1], NCHW (as ONNX models do), and
run the model on the normalised input ``(pixel - mean) / std``. This module turns what a user
has (a bundled name, a file, an array of almost any common shape) into that, saying what it
converted (grayscale and RGBA become RGB, with a note), and refuses what it cannot use with a
message that names the problem and the fix.

A picture given as text has one syntax everywhere (:func:`parse_image_spec`): a bundled name,
a file path or ``cifar10:K``. A file or bundled photo smaller than the size it is resized to
is upscaled with a note; one under :data:`MIN_SIDE` pixels a side, or that would be upscaled
more than :data:`MAX_UPSCALE` times, is refused (:func:`upscale_notes`).

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


# a picture smaller than MIN_SIDE pixels on a side, or one that would be upscaled more than
# MAX_UPSCALE times to the working size, is refused; any upscaling is said in a note
MIN_SIDE = 8
MAX_UPSCALE = 8.0
# where a user finds the bundled names (the help of any picture command lists them)
NAMES_HELP = "`python -m tf_impl saliency --help` lists the bundled names"


@dataclass(frozen=True)
class ImageSpec:
    """What an image spec names: ``kind`` "cifar10" (``value`` K, an int), "bundled" (a
    bundled or scikit-image name, a str) or "file" (a path)."""

    kind: str
    value: object
    text: str


def parse_image_spec(spec) -> ImageSpec:
    """The one syntax of a picture, on the command line and in :func:`load_image`:
    ``cifar10:K`` (the K-th bundled CIFAR-10 test image, K in [0, 1000)), a bundled name
    (``astronaut``, ``cat_dog``...: ``model_zoo.data.list_images``) or a file path.

    Refuses, with one line that says what to give: a bad ``cifar10:K``, a path that is not a
    file (the spec has a ``/`` or an image suffix: "not found"), an unknown name (with a
    "did you mean" for a near bundled name).
    """
    import difflib

    from model_zoo import ModelZooError, data

    text = os.fspath(spec) if isinstance(spec, os.PathLike) else spec
    if not isinstance(text, str) or not text.strip():
        raise ImageError(f"an image spec must be a bundled name, a file path or cifar10:K; "
                         f"got {text!r}")
    if text.startswith(CIFAR_PREFIX):
        try:
            k = int(text[len(CIFAR_PREFIX):])
        except ValueError:
            raise ImageError(f"image {text!r}: write cifar10:K with K an integer in [0, 1000)"
                             ) from None
        if not 0 <= k < 1000:
            raise ImageError(f"image {text!r}: K must be in [0, 1000) (the bundled CIFAR-10 "
                             "test images)")
        return ImageSpec("cifar10", k, text)
    path = Path(text).expanduser()
    if text in data.SKIMAGE_NAMES:
        return ImageSpec("bundled", text, text)
    if path.is_file():
        return ImageSpec("file", path, text)
    try:
        data.image_path(text)
        return ImageSpec("bundled", text, text)
    except ModelZooError:
        pass
    if path.is_dir():
        raise ImageError(f"image {text} is a folder, not a picture: give an image file, a "
                         f"bundled name or cifar10:K")
    if "/" in text or os.sep in text or path.suffix.lower() in data.IMAGE_SUFFIXES:
        where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise ImageError(f"image file {text} not found{where}: check the path, or give a "
                         f"bundled name or cifar10:K")
    close = difflib.get_close_matches(text, data.list_images(), n=1)
    hint = f"did you mean {close[0]}? Or give" if close else "give"
    raise ImageError(f"unknown image {text!r}: {hint} a file path, cifar10:K (K in [0, 1000)) "
                     f"or a bundled name ({NAMES_HELP})")


def cifar_image(spec: str) -> Image:
    """``cifar10:K``: the K-th bundled CIFAR-10 test image (32x32) and its label."""
    from model_zoo import data

    k = parse_image_spec(spec).value
    pixels, labels = data.cifar10("test", n=k + 1, normalize=False)
    return Image(np.ascontiguousarray(pixels[k:k + 1], np.float32), spec, [], int(labels[k]))


def upscale_notes(name: str, width: int, height: int, size: int) -> list[str]:
    """A note when a ``width`` x ``height`` picture is upscaled to ``size`` (shorter side);
    refuses one below :data:`MIN_SIDE` pixels on a side or that would be upscaled more than
    :data:`MAX_UPSCALE` times, saying the size and the fix."""
    short = min(width, height)
    need = max(MIN_SIDE, -(-size // int(MAX_UPSCALE)))
    if short < MIN_SIDE or size > MAX_UPSCALE * short:
        raise ImageError(
            f"image {name} is {width}x{height} pixels, too small to use at {size}x{size} "
            f"(pictures need at least {MIN_SIDE} pixels a side and at most {MAX_UPSCALE:g}x "
            f"upscaling): give a picture at least {need} pixels on its shorter side"
            + (f", or a --size of at most {int(MAX_UPSCALE * short)} where the model takes "
               "any size" if short >= MIN_SIDE else ""))
    if short < size:
        return [f"upscaled {size / short:.1f}x from {width}x{height} (shorter side to {size}): "
                "the picture is smaller than the working size, so its details are interpolated"]
    return []


def load_image(source, size: int | None = 224) -> Image:
    """A bundled name (``model_zoo.data.list_images``), ``cifar10:K`` (the K-th bundled
    CIFAR-10 test image, 32x32, with its label), a file path or an array, as pixels.

    Strings go through :func:`parse_image_spec`. Files and bundled names are resized (shorter
    side to ``size``) and centre-cropped to a square, as :func:`model_zoo.data.image` does; a
    picture smaller than ``size`` is upscaled with a note, and one too small to upscale (see
    :func:`upscale_notes`) is refused. CIFAR-10 images and arrays are used at their own size
    (``size`` is ignored for them).
    """
    if isinstance(source, (str, os.PathLike)):
        import model_zoo.data as data
        from model_zoo import ModelZooError

        spec = parse_image_spec(source)
        if spec.kind == "cifar10":
            return cifar_image(spec.text)
        src = str(spec.value)
        size = size or 224
        try:
            width, height = data.image_size(src)
            notes = _file_mode_notes(src) + upscale_notes(spec.text, width, height, size)
            pixels = data.image(src, size=size, normalize=False)
        except ModelZooError as err:  # an unreadable file
            raise ImageError(str(err)) from err
        name = Path(src).stem
        label = data.image_label(src) if spec.kind == "bundled" else None
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
