"""Bundled data: the CIFAR-10 subset and the photos, ready for the zoo's models (numpy only).

Example:
    >>> from model_zoo import data
    >>> x, y = data.cifar10("test", n=8)
    >>> x.shape, x.dtype, y.dtype
    ((8, 3, 32, 32), dtype('float32'), dtype('int64'))
    >>> data.image("cat_dog").shape
    (1, 3, 224, 224)
"""

from __future__ import annotations

import difflib
import os
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import ModelZooError
from .registry import ASSETS, CIFAR10_NAMES, IMAGENET_PREP, Preprocessing, get_spec

CIFAR_FILE = ASSETS / "cifar10_subset.npz"
IMAGE_DIRS = ("visualization", "imagenet_samples", "style", "content")
SKIMAGE_NAMES = ("astronaut", "chelsea", "coffee", "rocket", "camera")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
# ImageNet targets of the classic visualization demos (see assets/images/SOURCES.txt).
_DEMO_LABELS = {"snake": 56, "cat_dog": 243, "spider": 72}


def _prep(model: str | None) -> Preprocessing:
    return IMAGENET_PREP if model is None else get_spec(model).preprocessing


@lru_cache(maxsize=1)
def _cifar_arrays() -> dict[str, np.ndarray]:
    if not CIFAR_FILE.is_file():
        raise ModelZooError(f"{CIFAR_FILE} is missing: restore model_zoo/assets from git")
    with np.load(CIFAR_FILE, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def cifar10(split: str = "test", n: int | None = None, *, normalize: bool = True,
            layout: str = "NCHW") -> tuple[np.ndarray, np.ndarray]:
    """Bundled CIFAR-10 images (first 4,000 train / 1,000 test) as ``(x float32, y int64)``.

    ``normalize=True`` applies the CIFAR ResNets' preprocessing: x/255, then ImageNet mean
    (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225); ``normalize=False`` gives x/255 in
    [0, 1]. ``layout`` is "NCHW" (default, as the ONNX models) or "NHWC".

    Example:
        >>> x, y = cifar10("train", n=2, normalize=False, layout="NHWC")
        >>> x.shape, float(x.max()) <= 1.0
        ((2, 32, 32, 3), True)
    """
    if split not in ("train", "test"):
        raise ModelZooError(f"split must be 'train' or 'test', got {split!r}")
    if layout not in ("NCHW", "NHWC"):
        raise ModelZooError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
    arrays = _cifar_arrays()
    x_all, y_all = arrays[f"x_{split}"], arrays[f"y_{split}"]
    if n is not None and not 0 <= n <= len(x_all):
        raise ModelZooError(f"n must be between 0 and {len(x_all)} for split {split!r}, got {n}")
    x = x_all[:n].astype(np.float32) / 255.0
    if normalize:
        x = (x - np.float32(IMAGENET_PREP.mean)) / np.float32(IMAGENET_PREP.std)
    if layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x, dtype=np.float32), y_all[:n].astype(np.int64)


def cifar10_class_names() -> tuple[str, ...]:
    """The ten CIFAR-10 class names in label order.

    Example:
        >>> cifar10_class_names()[:3]
        ('airplane', 'automobile', 'bird')
    """
    return CIFAR10_NAMES


@lru_cache(maxsize=1)
def _bundled() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in IMAGE_DIRS:
        for path in sorted((ASSETS / "images" / folder).glob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                found[path.stem] = path
    return found


def list_images() -> list[str]:
    """Names accepted by ``image``: bundled photos (by file stem) and scikit-image's.

    Example:
        >>> {"snake", "starry_night", "tubingen", "astronaut"} <= set(list_images())
        True
    """
    return list(_bundled()) + list(SKIMAGE_NAMES)


def image_path(name: str) -> Path:
    """File of a bundled photo (``"cat_dog"`` or ``"visualization/cat_dog"``).

    Example:
        >>> image_path("snake").name
        'snake.png'
    """
    stem = name.split("/")[-1]
    if stem in _bundled() and (stem == name or _bundled()[stem].parent.name in name):
        return _bundled()[stem]
    close = difflib.get_close_matches(stem, list_images(), n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise ModelZooError(f"unknown image {name!r}: neither a file nor a bundled name; {hint}"
                        f"give a file path or a bundled name (the file stems under "
                        f"{ASSETS / 'images'}, or {', '.join(SKIMAGE_NAMES)})")


def image_size(name_or_path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) of a bundled name or an image file, as stored (read from the file's
    header; scikit-image's pictures are loaded).

    Example:
        >>> image_size("snake")[0] > 100
        True
    """
    from PIL import Image

    if isinstance(name_or_path, str) and name_or_path in SKIMAGE_NAMES:
        import skimage.data

        h, w = np.asarray(getattr(skimage.data, name_or_path)()).shape[:2]
        return int(w), int(h)
    path = Path(name_or_path)
    if not path.is_file():
        path = image_path(str(name_or_path))
    try:
        with Image.open(path) as img:
            return img.size
    except OSError as err:
        raise ModelZooError(f"cannot read {path} as an image ({err}); expected a PNG/JPEG "
                            "file") from err


def image_label(name: str) -> int | None:
    """ImageNet class index of a bundled photo when known (file name or demo target).

    Example:
        >>> image_label("imagenet_16_251"), image_label("snake"), image_label("udnie")
        (251, 56, None)
    """
    match = re.fullmatch(r"imagenet_\d+_(\d+)", Path(name).stem)
    if match:
        return int(match.group(1))
    return _DEMO_LABELS.get(Path(name).stem)


def _read_rgb(name_or_path: str | os.PathLike[str]) -> np.ndarray:
    """uint8 (H, W, 3) RGB array of a bundled name, a scikit-image name or a file path."""
    from PIL import Image

    if isinstance(name_or_path, str) and name_or_path in SKIMAGE_NAMES:
        import skimage.data

        arr = np.asarray(getattr(skimage.data, name_or_path)())
        img = Image.fromarray(arr)
    else:
        path = Path(name_or_path)
        if not path.is_file():
            path = image_path(str(name_or_path))
        try:
            img = Image.open(path)
            img.load()
        except OSError as err:
            raise ModelZooError(f"cannot read {path} as an image ({err}); expected a PNG/JPEG "
                                "file or a bundled name") from err
    if img.mode in ("I", "I;16", "I;16B", "F"):
        arr = np.asarray(img, dtype=np.float64)
        arr = 255.0 * (arr - arr.min()) / max(float(arr.max() - arr.min()), 1e-12)
        img = Image.fromarray(arr.astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA")
    return np.asarray(img.convert("RGB"))


def image(name_or_path: str | os.PathLike[str], size: int = 224, *, model: str | None = None,
          normalize: bool = True) -> np.ndarray:
    """A photo as a float32 (1, 3, size, size) array ready for a model.

    Resizes the shorter side to ``size`` (bilinear, antialiased), centre-crops to a square,
    converts grayscale/RGBA/palette images to RGB, scales to [0, 1] and, with ``normalize``,
    applies ``info(model).preprocessing`` (ImageNet mean/std when ``model`` is None).

    Example:
        >>> x = image("camera", size=64, normalize=False)   # a grayscale photo
        >>> x.shape, float(x.min()) >= 0.0
        ((1, 3, 64, 64), True)
    """
    from PIL import Image

    if not isinstance(size, int) or size < 1:
        raise ModelZooError(f"size must be a positive int, got {size}")
    prep = _prep(model)  # validate the model name before reading the picture
    rgb = Image.fromarray(_read_rgb(name_or_path))
    w, h = rgb.size
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    rgb = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    rgb = rgb.crop((left, top, left + size, top + size))
    x = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1)[None] / np.float32(255.0)
    if normalize:
        x = normalize_array(x, prep)
    return np.ascontiguousarray(x, dtype=np.float32)


def _channel_shape(x: np.ndarray, layout: str) -> tuple[int, ...]:
    if x.ndim not in (3, 4) or layout not in ("NCHW", "NHWC"):
        raise ModelZooError(f"expected a CHW/NCHW (or HWC/NHWC with layout='NHWC') array, got "
                            f"shape {x.shape} with layout {layout!r}")
    if layout == "NHWC":
        return (1,) * (x.ndim - 1) + (3,)
    return (3, 1, 1) if x.ndim == 3 else (1, 3, 1, 1)


def normalize_array(x: np.ndarray, prep: Preprocessing | str | None = None,
                    layout: str = "NCHW") -> np.ndarray:
    """``(x - mean) / std`` with a Preprocessing, a model name, or ImageNet stats (None).

    Example:
        >>> float(normalize_array(np.full((1, 3, 1, 1), 0.485, np.float32))[0, 0, 0, 0])
        0.0
    """
    p = prep if isinstance(prep, Preprocessing) else _prep(prep)
    shape = _channel_shape(np.asarray(x), layout)
    mean = np.asarray(p.mean, np.float32).reshape(shape)
    std = np.asarray(p.std, np.float32).reshape(shape)
    return ((np.asarray(x, np.float32) - mean) / std).astype(np.float32)


def normalize_nchw(pixels, mean, std) -> np.ndarray:
    """``(pixels - mean) / std`` per channel of an NCHW batch, in float32, for any (mean, std)
    of the batch's channel count (the model's input from pixels in [0, 1])."""
    m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    return ((np.asarray(pixels, np.float32) - m) / s).astype(np.float32)


def denormalize_nchw(x, mean, std) -> np.ndarray:
    """The inverse of :func:`normalize_nchw`: ``x * std + mean`` per channel, float32."""
    m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    return (np.asarray(x, np.float32) * s + m).astype(np.float32)


def denormalize(x: np.ndarray, model: str | None = None, *, layout: str = "NCHW"
                ) -> np.ndarray:
    """Undo a model's normalisation: ``x * std + mean`` (ImageNet stats when model is None).

    Example:
        >>> x = image("chelsea", size=32, normalize=False)
        >>> bool(np.allclose(denormalize(normalize_array(x)), x, atol=1e-6))
        True
    """
    p = _prep(model)
    shape = _channel_shape(np.asarray(x), layout)
    mean = np.asarray(p.mean, np.float32).reshape(shape)
    std = np.asarray(p.std, np.float32).reshape(shape)
    return (np.asarray(x, np.float32) * std + mean).astype(np.float32)
