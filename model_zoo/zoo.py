"""``load`` and ``info``: the cached ONNX files and what is known about each model.

Example:
    >>> import model_zoo
    >>> path = model_zoo.load("lenet_dlg")
    >>> path.name
    'lenet_dlg-random.onnx'
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .cache import (
    atomic_write,
    locked,
    now_iso,
    read_manifest,
    resolve_cache_dir,
    sha256_file,
    update_manifest,
)
from .errors import ModelZooError
from .registry import ModelInfo, ModelSpec, class_names_for, get_spec

_ALIAS_MEMO: dict[str, dict[str, str]] = {}


def _flavour(spec: ModelSpec, pretrained: bool | None) -> bool:
    flag = spec.default_pretrained if pretrained is None else pretrained
    if not isinstance(flag, bool):
        raise ModelZooError(f"pretrained must be True, False or None (the model's default), "
                            f"got {pretrained!r}")
    if flag and spec.pretrained_kind == "none":
        why = ("DLG uses a random init (weights U(-0.5, 0.5)), there are no trained weights"
               if spec.name.startswith("lenet") else "it is defined with random weights only")
        raise ModelZooError(f"{spec.name} has no pretrained weights: {why}; "
                            "use pretrained=False (or None)")
    return flag


def file_name(name: str, pretrained: bool) -> str:
    """Cache file name of a model flavour, e.g. ``resnet20_cifar-pretrained.onnx``."""
    return f"{name}-{'pretrained' if pretrained else 'random'}.onnx"


def cached_entry(name: str, pretrained: bool, cache: Path, *, verify: bool = True
                 ) -> dict[str, Any] | None:
    """The manifest entry of a cached file if the file is there (and its sha256 matches)."""
    from .export import EXPORT_FORMAT

    fname = file_name(name, pretrained)
    entry = read_manifest(cache)["files"].get(fname)
    path = cache / fname
    if not entry or entry.get("format") != EXPORT_FORMAT or not path.is_file():
        return None
    if get_spec(name).backend == "third_party":  # rebuilt when its builder changes
        from .third_party import FORMAT

        if (entry.get("third_party") or {}).get("format") != FORMAT:
            return None
    if verify and sha256_file(path) != entry.get("sha256"):
        return None
    return entry


def load(name: str, *, pretrained: bool | None = None,
         cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of the ONNX file of ``name``, exported into the cache on first use.

    ``pretrained=None`` takes the model's default (see ``info(name).default_pretrained``).
    The cache is ``cache_dir``, else ``$MODEL_ZOO_CACHE``, else
    ``~/.cache/tf-model-inversion/model_zoo``; ``manifest.json`` there records name, flavour,
    sha256, opset, creation time and weight source of each file. A file whose sha256 no
    longer matches the manifest is exported again. Files are written atomically.

    Example:
        >>> import onnx
        >>> onnx.load(load("resnet20_cifar")).graph.input[0].name
        'input'
    """
    spec = get_spec(name)
    flag = _flavour(spec, pretrained)
    cache = resolve_cache_dir(cache_dir)
    path = cache / file_name(name, flag)
    if cached_entry(name, flag, cache):
        return path
    with locked(cache):
        if cached_entry(name, flag, cache):  # exported by another process meanwhile
            return path
        from .export import EXPORT_FORMAT, export_model, graph_opset, read_metadata

        start = time.perf_counter()
        proto, source, aliases = export_model(name, flag, cache)
        data = proto.SerializeToString()
        atomic_write(path, lambda fh: fh.write(data))
        entry = {
            "name": name,
            "pretrained": flag,
            "sha256": sha256_file(path),
            "opset": graph_opset(proto),
            "created": now_iso(),
            "weights_source": source,
            "format": EXPORT_FORMAT,
            "size_bytes": len(data),
            "export_seconds": round(time.perf_counter() - start, 3),
            "exporter": _exporter_versions(spec),
            "layer_aliases": aliases,
        }
        if spec.backend == "third_party":
            meta = read_metadata(proto)
            record = json.loads(meta["model_zoo.third_party"])
            entry["third_party"] = {"catalogue": record["catalogue"],
                                    "format": record["format"], "truth": record["truth"]}
            entry["contract"] = json.loads(meta["tfmi.contract"])
        update_manifest(cache, "files", path.name, entry)
        _ALIAS_MEMO.setdefault(name, aliases)
    return path


def _exporter_versions(spec: ModelSpec) -> dict[str, str]:
    import onnx

    versions = {"onnx": onnx.__version__, "python": sys.version.split()[0]}
    backend = spec.backend
    if backend == "third_party":
        from .third_party import FORMAT, config

        builder = config(spec.third_party or "").builder
        versions["model_zoo.third_party"] = str(FORMAT)
        # the Caffe-style wrapper edits a torch export (onnx only), the others export anew
        backend = "keras" if builder == "keras" else "torch"
        if builder == "torchvision":
            import torchvision

            versions["torchvision"] = torchvision.__version__
        if builder == "caffe":
            import onnxruntime

            versions["onnxruntime"] = onnxruntime.__version__  # its parity check on build
    if backend == "torch":
        import torch

        versions["torch"] = torch.__version__
    else:
        import tensorflow as tf
        import tf2onnx

        versions.update(tensorflow=tf.__version__, tf2onnx=tf2onnx.__version__)
        if spec.backend == "third_party":  # keras.applications
            import keras

            versions["keras"] = keras.__version__
    return versions


def layer_aliases(name: str, cache_dir: str | os.PathLike[str] | None = None
                  ) -> dict[str, str]:
    """Alias -> ONNX tensor name for ``name`` (same map as in the file's metadata).

    Read from the manifest when a file of the model is cached, else computed from a
    weight-less export (names do not depend on weights). A third-party-style model has no
    weight-less export: its file is exported into the cache (seconds) and read from there.
    """
    spec = get_spec(name)
    if name in _ALIAS_MEMO:
        return dict(_ALIAS_MEMO[name])
    cache = resolve_cache_dir(cache_dir)
    for attempt in range(2):
        for flag in (spec.default_pretrained, not spec.default_pretrained):
            entry = cached_entry(name, flag, cache, verify=False)
            if entry and isinstance(entry.get("layer_aliases"), dict):
                _ALIAS_MEMO[name] = dict(entry["layer_aliases"])
                return dict(_ALIAS_MEMO[name])
        if spec.backend != "third_party" or attempt:
            break
        load(name, cache_dir=cache)
    from .export import structural_aliases

    _ALIAS_MEMO[name] = structural_aliases(name)
    return dict(_ALIAS_MEMO[name])


def info(name: str) -> ModelInfo:
    """Everything known about ``name``: shapes, classes, preprocessing, aliases, provenance.

    Example:
        >>> i = info("vgg16_features")
        >>> i.input_shape, i.layer_aliases["relu1_2"]
        ((1, 3, None, None), '/features/features.3/Relu_output_0')
    """
    spec = get_spec(name)
    return ModelInfo(
        name=spec.name,
        input_shape=spec.input_shape,
        num_classes=spec.num_classes,
        class_names=class_names_for(spec),
        preprocessing=spec.preprocessing,
        layer_aliases=layer_aliases(name),
        default_pretrained=spec.default_pretrained,
        description=spec.description,
        weights_source=spec.source(spec.default_pretrained),
        licence=spec.licence,
        file_contract=spec.file_contract,
    )


def cache_status(name: str, cache_dir: str | os.PathLike[str] | None = None
                 ) -> dict[bool, bool]:
    """``{pretrained_flag: cached?}`` for the flavours a model has (no sha256 check)."""
    spec = get_spec(name)
    cache = resolve_cache_dir(cache_dir)
    flags = [False] if spec.pretrained_kind == "none" else [True, False]
    return {f: cached_entry(name, f, cache, verify=False) is not None for f in flags}
