"""Reading ONNX files safely: parse errors, external data, structural checks, opsets."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx import external_data_helper

from .errors import OnnxImportError
from .mmap_weights import RawWeights, WireFormatError, read_lean

MIN_OPSET, MAX_OPSET = 7, 18


def read_model(
    source: str | os.PathLike | onnx.ModelProto | bytes,
) -> tuple[onnx.ModelProto, RawWeights | None]:
    """Return the model proto and, for files, the memory-mapped raw weights (see mmap_weights)."""
    if isinstance(source, onnx.ModelProto):
        return source, None
    if isinstance(source, bytes):
        try:
            return onnx.load_from_string(source), None
        except (DecodeError, ValueError) as err:
            raise OnnxImportError(f"the bytes given are not an ONNX model: {err}") from err
    path = Path(source)
    if not path.is_file():
        raise OnnxImportError(
            f"no ONNX file at {path}; pass a path to a .onnx file or a zoo name "
            "through model_zoo.load(name)"
        )
    if path.stat().st_size == 0:
        raise OnnxImportError(
            f"{path}: the file is empty (0 bytes), not an ONNX model; export it again")
    try:
        model, raw = read_lean(path)
    except (WireFormatError, DecodeError, ValueError, RuntimeError, OSError) as err:
        raise OnnxImportError(
            f"{path} could not be parsed as ONNX ({type(err).__name__}: {err}); the file is "
            "truncated or not an ONNX model: export it again"
        ) from err
    _load_external_data(model, path)
    return model, raw


def _load_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Read the weights saved beside the file (``save_as_external_data``). Like onnxruntime,
    refuses a location outside the model's folder; a missing data file names the file and
    the fix."""
    tensors = [t for t in model.graph.initializer if external_data_helper.uses_external_data(t)]
    if not tensors:
        return
    base = path.parent.resolve()
    files = set()
    for t in tensors:
        info = {e.key: e.value for e in t.external_data}
        location = info.get("location", "")
        target = (base / location).resolve()
        if os.path.isabs(location) or not target.is_relative_to(base):
            raise OnnxImportError(
                f"{path}: initializer {t.name!r} points to external data {location!r} outside "
                f"the model's folder {base}, which our importer (like onnxruntime) refuses to "
                "read; move the data file next to the model and re-save it with a relative "
                "location, or with the data embedded (onnx.save without save_as_external_data)"
            )
        if not target.is_file():
            raise OnnxImportError(
                f"{path}: its external data file {target} (location {location!r}, initializer "
                f"{t.name!r}) is missing; put the data file back next to the .onnx, where it "
                "was saved, or re-save the model with the data embedded where both are complete: "
                "python -c \"import onnx; onnx.save(onnx.load('MODEL.onnx'), 'OUT.onnx')\""
            )
        files.add(str(target))
    try:
        external_data_helper.load_external_data_for_model(model, str(base))
    except (ValueError, OSError) as err:  # a data file shorter than the model says
        raise OnnxImportError(
            f"{path}: its external data ({', '.join(sorted(files))}) could not be read "
            f"({type(err).__name__}: {err}); the "
            "data file is truncated or not the one saved with the model: save the model and "
            "its data again"
        ) from err


def default_opset(model: onnx.ModelProto) -> int:
    versions = {imp.domain or "": imp.version for imp in model.opset_import}
    opset = versions.get("", versions.get("ai.onnx"))
    if opset is None:
        raise OnnxImportError("the model declares no default-domain opset (opset_import)")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise OnnxImportError(
            f"the model uses opset {opset}; this importer supports opsets {MIN_OPSET} to "
            f"{MAX_OPSET}. Re-export with opset_version=17 (torch.onnx.export) or convert "
            "with onnx.version_converter.convert_version(model, 17)"
        )
    return opset


def check_structure(model: onnx.ModelProto) -> None:
    """Every node input must be produced before it is read (catches truncated graphs)."""
    g = model.graph
    known = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
    for node in g.node:
        for name in node.input:
            if name not in known:
                raise OnnxImportError(
                    f"malformed graph: {node.op_type} node {node.name!r} reads tensor {name!r} "
                    "that no earlier node, input or initializer produces (truncated file, or "
                    "nodes not in topological order)"
                )
        known.update(node.output)
    for out in g.output:
        if out.name not in known:
            raise OnnxImportError(f"malformed graph: output {out.name!r} is never produced")
    if not g.output:
        raise OnnxImportError("malformed graph: it declares no outputs")
