"""``python -m converters.crosscheck``: the cross-check of one file or zoo name, one
line per failure, the exit code of the verdict."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

from .parity import crosscheck
from .report import (
    EXIT_BAD_INPUT,
    EXIT_MISMATCH,
    FORWARD_TOL,
    GRADIENT_TOL,
    NOISE_FACTOR,
    CrossCheckError,
    short_reason,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m converters.crosscheck",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Compare an ONNX model's forward output (and logits, behind a final "
        "Softmax) and input gradient across our TF importer, onnxruntime and PyTorch "
        "(onnx2torch), in the graph's own layout.",
        epilog="exit status:\n"
        "  0  every check passes\n"
        "  1  mismatch (a TF vs onnxruntime row, or a TF vs PyTorch row, fails)\n"
        "  2  bad input (unknown zoo name; missing, truncated or unreadable file; external\n"
        "     data refused; unsupported op; a non-float or multi-input model): one line\n"
        "     'error: <file>: <problem>; <fix>' on stderr\n"
        "  3  reference unavailable: TF vs onnxruntime passes, but onnx2torch/PyTorch cannot\n"
        "     convert or run the model; the table says why\n"
        f"float32 TF vs PyTorch rows pass at max(tol, {NOISE_FACTOR:g} x the PyTorch vs "
        "onnxruntime difference).",
    )
    parser.add_argument("model", help="path to a .onnx file or a model_zoo name")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--forward-tol", type=float, default=FORWARD_TOL)
    parser.add_argument("--gradient-tol", type=float, default=GRADIENT_TOL)
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="run TF inside tf.function (as model(x) does) instead of eagerly",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TF's start-up log lines
    warnings.filterwarnings("ignore", module="onnx2torch")  # its per-op notices
    try:
        report = crosscheck(
            args.model,
            batch=args.batch,
            seed=args.seed,
            forward_tol=args.forward_tol,
            gradient_tol=args.gradient_tol,
            compiled=args.compiled,
        )
    except CrossCheckError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as err:  # noqa: BLE001 - never a traceback for a file
        print(
            f"error: {args.model}: the cross-check itself failed ({short_reason(err)}); please "
            "report it with the file",
            file=sys.stderr,
        )
        return EXIT_MISMATCH
    print(report.table())
    if args.json:
        try:
            args.json.write_text(json.dumps(report.to_dict(), indent=2))
        except OSError as err:
            print(
                f"error: {args.json}: cannot write the JSON report ({err.strerror or err}); "
                "choose a writable path",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
    print(report.verdict)
    return report.exit_code
