"""The cache folder: where it is, its ``manifest.json``, atomic writes and a lock.

Example:
    >>> from model_zoo.cache import resolve_cache_dir
    >>> resolve_cache_dir("/tmp/zoo-example").name
    'zoo-example'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from .errors import ModelZooError

ENV_VAR = "MODEL_ZOO_CACHE"
DEFAULT_CACHE = Path("~/.cache/tf-model-inversion/model_zoo")
MANIFEST = "manifest.json"
# the fix of every error about a cache folder that cannot be written
WRITABLE_FIX = f"choose a writable folder (--cache-dir, cache_dir=... or ${ENV_VAR})"


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``cache_dir``, else ``$MODEL_ZOO_CACHE``, else ``~/.cache/tf-model-inversion/model_zoo``.

    The folder is created if needed.

    Example:
        >>> resolve_cache_dir("/tmp/zoo-example").is_dir()
        True
    """
    raw = cache_dir if cache_dir is not None else os.environ.get(ENV_VAR) or DEFAULT_CACHE
    path = Path(raw).expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        why = "a file is there" if path.is_file() else err.strerror or err
        raise ModelZooError(
            f"cannot create the model-zoo cache folder {path} ({why}); "
            f"{WRITABLE_FIX}") from err
    return path



def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks.

    Example:
        >>> sha256_file(__file__) == sha256_file(__file__)
        True
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(path: Path, writer: Callable[[BinaryIO], None]) -> None:
    """Call ``writer(fh)`` on a temp file next to ``path``, fsync, then ``os.replace``.

    An exception (or an interruption) leaves ``path`` untouched and removes the temp file.

    Example:
        >>> p = Path(tempfile.mkdtemp()) / "x.bin"
        >>> atomic_write(p, lambda fh: fh.write(b"ok"))
        >>> p.read_bytes()
        b'ok'
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_THREAD_LOCKS: dict[Path, threading.RLock] = {}
_DEPTH: dict[Path, int] = {}


@contextlib.contextmanager
def locked(cache: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``cache/.lock`` (``flock`` on POSIX), re-entrant per process.

    A folder where the lock file cannot be written raises ``ModelZooError`` (one line).

    Example:
        >>> folder = resolve_cache_dir("/tmp/zoo-example")
        >>> with locked(folder):
        ...     with locked(folder):  # nested use in one process does not deadlock
        ...         pass
    """
    rlock = _THREAD_LOCKS.setdefault(cache, threading.RLock())
    with rlock:
        depth = _DEPTH.get(cache, 0)
        _DEPTH[cache] = depth + 1
        try:
            if depth > 0:
                yield
                return
            try:
                import fcntl
            except ImportError:  # pragma: no cover - Windows: in-process lock only
                yield
                return
            try:
                fh = open(cache / ".lock", "a+b")  # noqa: SIM115 - closed by the with below
            except OSError as err:  # a read-only folder: the first write of every export
                raise ModelZooError(
                    f"cannot write to the model-zoo cache folder {cache} "
                    f"({err.strerror or err}); {WRITABLE_FIX}") from err
            with fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        finally:
            _DEPTH[cache] -= 1


def read_manifest(cache: Path) -> dict[str, Any]:
    """The manifest as a dict ``{"files": {...}, "weights": {...}}`` (empty when absent).

    A corrupt manifest is treated as empty: every file is then re-verified by re-export.
    """
    path = cache / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data.setdefault("files", {})
    data.setdefault("weights", {})
    return data


def update_manifest(cache: Path, section: str, key: str, entry: dict[str, Any] | None) -> None:
    """Set (or with ``entry=None`` delete) ``manifest[section][key]``, written atomically.

    Call it while holding ``locked(cache)``.
    """
    data = read_manifest(cache)
    if entry is None:
        data[section].pop(key, None)
    else:
        data[section][key] = entry
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(cache / MANIFEST, lambda fh: fh.write(text.encode("utf-8")))


def now_iso() -> str:
    """Current UTC time as ``2025-01-31T12:00:00Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
