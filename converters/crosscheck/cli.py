"""``python -m converters.crosscheck``: the cross-check of one file or zoo name, one
line per failure, the exit code of the verdict.

Error handling mirrors ``python -m tf_impl`` (``tf_impl.cli.main``): bad input (the types
:func:`error_types` lists, and bad option values) prints one ``error: <file>: <problem>;
<fix>`` line on stderr and exits 2, never a traceback."""

from __future__ import annotations

import argparse
import json
import math
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


def error_types() -> tuple[type[BaseException], ...]:
    """The errors ``main`` prints as one ``error: ...`` line with exit status 2:
    CrossCheckError, the importer's OnnxImportError, ContractError and ModelInputError,
    ModelZooError and FileNotFoundError (as ``tf_impl.cli.common.error_types``). The
    importer's errors only once it is loaded: an error before that (a name typo) costs no
    TensorFlow start-up."""
    from model_zoo import ModelZooError

    types = (CrossCheckError, ModelZooError, FileNotFoundError)
    importer = sys.modules.get("converters.onnx_to_tf")
    if importer is None:
        return types
    return (*types, importer.OnnxImportError, importer.ContractError, importer.ModelInputError)


def check_options(args: argparse.Namespace) -> None:
    """Refuse option values the cross-check cannot use (ValueError, one line)."""
    if args.batch < 1:
        raise ValueError(f"--batch {args.batch}: the batch size must be at least 1")
    if args.seed < 0:
        raise ValueError(f"--seed {args.seed}: the seed must be 0 or more")
    for flag, tol in (("--forward-tol", args.forward_tol), ("--gradient-tol", args.gradient_tol)):
        if not (math.isfinite(tol) and tol >= 0):
            raise ValueError(f"{flag} {tol:g}: a tolerance must be a finite number, 0 or more")
    if args.json is not None and (args.json.is_dir() or not args.json.parent.is_dir()):
        what = "is a folder" if args.json.is_dir() else f"has no folder {args.json.parent}"
        raise ValueError(f"--json {args.json} {what}; give a file path in an existing folder")


def bad_input_line(model: str, err: BaseException) -> str:
    """``error: <file>: <message>`` (the file named once, whatever raised)."""
    text = " ".join(str(err).split()) or type(err).__name__
    named = isinstance(err, CrossCheckError) or model in text
    return f"error: {text}" if named else f"error: {model}: {text}"


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
        "  2  bad input (unknown zoo name; missing, empty, truncated or unreadable file; a\n"
        "     folder or a non-.onnx file; external data missing or outside the model's\n"
        "     folder; unsupported op; a non-float or multi-input model; a bad option value):\n"
        "     one line 'error: <file>: <problem>; <fix>' on stderr\n"
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
    try:
        check_options(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
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
    except error_types() as err:
        print(bad_input_line(args.model, err), file=sys.stderr)
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
