"""Checking a built file (onnxruntime, onnx2torch, our importer) and the command line
``python -m model_zoo.third_party``."""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx

from .catalogue import CATALOGUE, SMALL, save, truth_path
from .truth import Truth, data_input


# --------------------------------------------------------------------------- checks
def check(path: str | os.PathLike[str], truth: Truth, *, batch: int = 2, seed: int = 0,
          importer: bool = False) -> dict[str, Any]:
    """Run a file: onnxruntime, onnx2torch.convert and optionally our importer.

    Returns ``ort_ok``, ``output_shape``, ``onnx2torch_ok`` (with ``onnx2torch_error``) and,
    with ``importer``, ``importer_rel`` = max|tf - ort| / max|ort| (or ``importer_error``).
    """
    import onnxruntime as ort

    proto = onnx.load(os.fspath(path))
    data = data_input(proto)
    fixed = data.type.tensor_type.shape.dim[0].dim_value
    n = fixed or batch
    pixels = np.random.default_rng(seed).uniform(0, 1, (n, 3, *truth.input_size))
    x = truth.model_input(pixels.astype(np.float32))
    result: dict[str, Any] = {}
    options = ort.SessionOptions()
    options.log_severity_level = 3  # legacy files: one warning per initializer listed as input
    sess = ort.InferenceSession(proto.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])
    ref = sess.run(None, {data.name: x})[0]
    result.update(ort_ok=True, output_shape=tuple(ref.shape))
    try:
        from ..triton_guard import guard_triton

        guard_triton()
        from onnx2torch import convert

        convert(proto)
        result["onnx2torch_ok"] = True
    except Exception as err:  # noqa: BLE001 - any failure is the measurement
        result["onnx2torch_ok"] = False
        result["onnx2torch_error"] = f"{type(err).__name__}: {err}"
    if importer:
        try:
            from converters import onnx_to_tf

            model = onnx_to_tf.load(proto)
            got = np.asarray(model(x, compiled=False))  # eager: no minutes of tracing
            result["importer_rel"] = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        except Exception as err:  # noqa: BLE001
            result["importer_error"] = f"{type(err).__name__}: {err}"
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model_zoo.third_party",
        description="Build third-party-style ONNX files (Keras, torchvision, Caffe-style) and "
                    "print what they are.")
    parser.add_argument("names", nargs="*", help="configurations (default: all)")
    parser.add_argument("--small", action="store_true", help="tiny test variants (SMALL)")
    parser.add_argument("--out", default="runs/third_party", help="output folder")
    parser.add_argument("--parity", action="store_true",
                        help="also run our importer against onnxruntime")
    args = parser.parse_args(argv)
    from ..triton_guard import guard_triton

    guard_triton()
    table = SMALL if args.small else CATALOGUE
    names = args.names or list(table)
    unknown = [n for n in names if n not in table]
    if unknown:
        parser.error(f"unknown names {unknown}; expected some of {', '.join(table)}")
    cols = ("name", "origin", "input", "output", "params", "MB", "onnx2torch", "ort", "seconds")
    if args.parity:
        cols += ("importer",)
    print(" | ".join(cols), flush=True)
    for name in names:
        start = time.perf_counter()
        path = save(name, args.out, small=args.small)
        seconds = time.perf_counter() - start
        with open(truth_path(path), encoding="utf-8") as fh:
            record = json.load(fh)
        truth = Truth.from_dict(record["truth"])
        proto = onnx.load(os.fspath(path), load_external_data=False)
        dims = [d.dim_param or d.dim_value for d in data_input(proto).type.tensor_type.shape.dim]
        res = check(path, truth, batch=1, importer=args.parity)
        o2t = "yes" if res["onnx2torch_ok"] else "no"
        if res["onnx2torch_ok"] != truth.onnx2torch_ok:
            o2t += " (Truth says otherwise!)"
        row = [name, truth.origin, str(tuple(dims)), str(res["output_shape"]),
               f"{record['params_count']:,}", f"{path.stat().st_size / 1e6:.1f}", o2t,
               "yes" if res["ort_ok"] else "no",
               f"{seconds:.1f} (build {record['build_seconds']})"]
        if args.parity:
            row.append(f"{res['importer_rel']:.1e}" if "importer_rel" in res
                       else res.get("importer_error", "")[:120])
        print(" | ".join(row), flush=True)
        if "onnx2torch_error" in res:
            print(f"    onnx2torch: {res['onnx2torch_error'][:300]}", flush=True)
    return 0
