"""Saving and loading a network (weights ``.npz`` beside a ``.json`` record), and the
shipped one."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from .network import (
    CONFIG_FILE,
    FORMAT,
    FORMAT_VERSION,
    WEIGHTS_FILE,
    FastStyleConfig,
    FastStyleError,
    FastStyleNet,
    shipped_path,
)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _style_record(style: str) -> dict:
    rec = {"name": style if Path(style).suffix == "" else Path(style).stem}
    try:
        import model_zoo.data as data

        p = Path(style) if Path(style).is_file() else data.image_path(style)
        rec.update(file=p.name, sha256=_sha256(p))
        if p.parent.parent.name == "images":
            rec["bundled"] = f"model_zoo/assets/images/{p.parent.name}/{p.name}"
    except Exception:  # an unreadable source only loses the provenance note
        pass
    return rec


def save(model: FastStyleNet, folder, *, training: dict | None = None) -> Path:
    """Write ``fast_style.npz`` (weights, float32) and ``fast_style.json`` (config, styles,
    weights checksum, training summary) into ``folder``; returns the JSON path."""
    from ...report import OutputDir

    out = OutputDir(folder)
    out._atomic(WEIGHTS_FILE, lambda p: _write_npz(p, model.weights()))
    meta = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "network": "Johnson et al. 2016 transformation network, conditional instance norm "
                   "(Dumoulin et al. 2017), resize-conv upsampling, sigmoid output",
        "input": "pixels NCHW in [0, 1]; H, W multiples of 4 (apply() pads)",
        "styles": [_style_record(s) for s in model.styles],
        "config": model.config.to_dict(),
        "weights_sha256": _sha256(out.file(WEIGHTS_FILE)),
        "parameters": int(sum(v.size for v in model.weights().values())),
        "training": training or {},
    }
    return out.write_json(CONFIG_FILE, meta)


def _write_npz(path, weights):
    with open(path, "wb") as f:
        np.savez_compressed(f, **weights)


def _paths(path) -> tuple[Path, Path]:
    p = Path(path)
    if p.suffix == ".json":
        return p, p.with_suffix(".npz")
    if p.suffix == ".npz":
        return p.with_suffix(".json"), p
    return p / CONFIG_FILE, p / WEIGHTS_FILE


def load(path=None) -> FastStyleNet:
    """Load a saved network (a folder holding ``fast_style.json`` and ``fast_style.npz``, or
    either file); by default the shipped one (:func:`shipped_path`).

    A missing file, invalid JSON, a weights file that does not match its recorded checksum,
    or weights that do not fit the recorded config are refused with a message saying so.
    """
    meta_path, npz_path = _paths(shipped_path() if path is None else path)
    hint = ("save one with fast_style.save(model, folder) or train one with `python -m "
            "tf_impl fast-style-train --out DIR`")
    for p in (meta_path, npz_path):
        if not p.is_file():
            raise FastStyleError(f"no saved fast-style model at {Path(path or meta_path.parent)}"
                                 f": {p} is missing (a model is {CONFIG_FILE} + {WEIGHTS_FILE}"
                                 f" in one folder); {hint}")
    try:
        meta = json.loads(meta_path.read_text())
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as err:
        raise FastStyleError(f"{meta_path} is corrupt (not valid JSON: {err}); restore it (git "
                             f"checkout) or re-save the model") from None
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise FastStyleError(f"{meta_path} is not a fast-style model of format {FORMAT} "
                             f"version {FORMAT_VERSION} (found {meta.get('format')!r} version "
                             f"{meta.get('version')!r})")
    recorded = meta.get("weights_sha256")
    if recorded and _sha256(npz_path) != recorded:
        raise FastStyleError(f"{npz_path} is corrupt: its checksum does not match the one "
                             f"recorded in {meta_path.name}; restore it (git checkout) or "
                             "re-save the model")
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            weights = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise FastStyleError(f"{npz_path} is corrupt (cannot read it as .npz: {err}); restore "
                             "it (git checkout) or re-save the model") from None
    try:
        config = FastStyleConfig.from_dict(meta["config"])
    except (KeyError, TypeError) as err:
        raise FastStyleError(f"{meta_path} has no valid config ({err})") from None
    net = FastStyleNet(config)
    net.set_weights(weights, source=str(npz_path))
    net.metadata = meta
    return net
