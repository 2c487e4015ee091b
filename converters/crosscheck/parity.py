"""The cross-check itself: forward outputs and input gradients of TF against
onnxruntime and PyTorch, with the reference's own noise measured."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .report import (
    CHECK,
    FORWARD_TOL,
    GRAD32,
    GRAD64,
    GRADIENT64_TOL,
    GRADIENT_TOL,
    INFO,
    NOISE,
    NOISE_FACTOR,
    NOISE_LIMIT,
    Comparison,
    CrossCheckError,
    Report,
    compare,
    failed_row,
    short_reason,
)
from .runtimes import (
    count_relu_kinks,
    float_input,
    fold_identities,
    input_shape_for,
    load_tf,
    ort_run,
    output_kind,
    read_proto,
    resolve_model,
    tf_input_gradient,
    tf_values,
    torch_double,
    torch_outputs,
    with_outputs,
)


# -- the cross-check ----------------------------------------------------------------------------
def crosscheck(
    model: str | os.PathLike,
    x: np.ndarray | None = None,
    *,
    batch: int = 1,
    seed: int = 0,
    forward_tol: float = FORWARD_TOL,
    gradient_tol: float = GRADIENT_TOL,
    projection: np.ndarray | Callable[[np.ndarray], np.ndarray] | None = None,
    keep_arrays: bool = False,
    compiled: bool = False,
) -> Report:
    """Compare TF (our importer), onnxruntime and PyTorch (onnx2torch) on one input.

    ``x`` is the graph's input as the graph declares it (NHWC for a Keras graph); by default
    seeded standard-normal noise of the declared shape (``batch``; dynamic H, W = 64). The
    gradients compared are d<w, t(x)>/dx, ``t`` the logits when the model ends in a Softmax,
    else its (first) output. ``projection`` gives ``w``: an array of ``t``'s shape, or a
    function of onnxruntime's value of ``t`` returning one (e.g. a one-hot of the top class,
    for a saliency map); by default a seeded random ``w``, so that the whole vector-Jacobian
    product is tested. ``keep_arrays=True`` stores the input, the outputs (and logits) and the
    float32 gradients in ``report.arrays`` (not serialised by ``to_dict``). TF runs eagerly
    (one forward and one gradient trace cost more than the whole eager check);
    ``compiled=True`` runs it inside ``tf.function`` as ``model(x)`` does by default.

    Raises :class:`CrossCheckError` when the model cannot be cross-checked at all (see the
    module docstring); a missing reference is recorded in ``report.reference`` instead.
    """
    path = resolve_model(model)
    t0 = time.perf_counter()
    tf_model = load_tf(path)
    proto = read_proto(path)
    input_name, input_type = float_input(path, proto)
    rng = np.random.default_rng(seed)
    if x is None:
        x = rng.standard_normal(input_shape_for(path, batch)).astype(np.float32)
    x = np.asarray(x, np.float32)
    report = Report(str(model), tuple(x.shape))

    kind, logits = output_kind(tf_model)
    report.output_kind, report.logits = kind, logits
    out_name = tf_model.output_names[0]
    names = [out_name] + ([logits] if logits and logits != out_name else [])
    target = names[-1]  # the tensor whose projection is differentiated
    labels = {out_name: "forward", logits: "logits"}
    y_tf = _tf_forward(path, tf_model, x, names, compiled, report)
    report.seconds["tensorflow"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref = ort_run(path, proto, names, input_name, x.astype(input_type))
    report.seconds["onnxruntime"] = time.perf_counter() - t0
    for n in names:
        what = f"{labels[n]} TF vs onnxruntime"
        report.rows.append(
            compare(what, y_tf[n], ref[n], forward_tol)
            if y_tf is not None
            else Comparison(what, np.nan, np.nan, forward_tol, CHECK, "TF forward failed")
        )

    # d/dx of <w, t(x)>: with a random w, a full vector-Jacobian product, not just a sum
    if projection is None:
        w = rng.standard_normal(ref[target].shape)
    else:
        w = projection(ref[target]) if callable(projection) else projection
    w = np.asarray(w, np.float32)
    if keep_arrays:
        report.arrays = {"input": x}
        for n, kind_name in ((out_name, "output"), (logits, "logits")):
            if n:
                report.arrays[f"{kind_name}_onnxruntime"] = ref[n]
                if y_tf is not None:
                    report.arrays[f"{kind_name}_tf"] = y_tf[n]
    g_tf = None if y_tf is None else _tf_gradient(report, tf_model, x, w, target, compiled)
    if keep_arrays and g_tf is not None:
        report.arrays["grad_tf"] = g_tf
    case = _Case(path, proto, names, labels, target, x, w, y_tf, ref, g_tf)
    _reference_rows(report, case, forward_tol, gradient_tol, keep_arrays, compiled)
    return report


def _tf_forward(path, tf_model, x, names, compiled, report) -> dict | None:
    """Our importer's values of ``names``; None (and a note) when it fails where it should
    not; a ``CrossCheckError`` when the file is one it refuses."""
    from .. import onnx_to_tf

    try:
        return tf_values(tf_model, x, names, compiled)
    except (onnx_to_tf.OnnxImportError, onnx_to_tf.ModelInputError) as err:
        raise CrossCheckError(
            path,
            f"our importer cannot run it ({short_reason(err)})",
            "see the message; the file may need re-exporting",
        ) from None
    except Exception as err:  # noqa: BLE001 - our importer failed where it should not
        report.notes.append(f"TF forward failed: {short_reason(err)}")
        return None


def _tf_gradient(report, tf_model, x, w, target, compiled) -> np.ndarray | None:
    """TF's float32 input gradient of <w, target(x)>, and the count of ReLU inputs near their
    kink (where float32 rounding may flip a unit); failures become notes."""
    g_tf = None
    try:
        g_tf = tf_input_gradient(tf_model, x, w, target, compiled)
    except Exception as err:  # noqa: BLE001
        report.notes.append(f"TF float32 gradient failed: {short_reason(err)}")
    try:
        report.relu_near_kink = count_relu_kinks(tf_model, x, compiled=compiled)
    except Exception as err:  # noqa: BLE001
        report.notes.append(f"counting ReLU kinks failed: {short_reason(err)}")
    return g_tf


@dataclass
class _Case:
    """What the TF vs onnxruntime part computed, for the reference's rows."""

    path: Path
    proto: object  # onnx.ModelProto
    names: list[str]  # the output, and the logits if any
    labels: dict  # tensor name -> "forward" | "logits"
    target: str  # the tensor whose projection is differentiated
    x: np.ndarray
    w: np.ndarray
    y_tf: dict | None
    ref: dict
    g_tf: np.ndarray | None


def _judge_reference(report: Report, case: _Case, y_np: dict, forward_tol) -> tuple[str, float]:
    """PyTorch against onnxruntime (the reference's own noise): (the role of the TF vs PyTorch
    rows, the tolerance the noise adds). A reference noisier than ``NOISE_LIMIT`` is none."""
    noise_rows = [compare(f"{case.labels[n]} PyTorch vs onnxruntime", y_np[n], case.ref[n],
                          forward_tol, NOISE) for n in case.names]
    report.rows.extend(noise_rows)
    report.noise = max(r.max_rel for r in noise_rows)
    if bool(np.isfinite(report.noise) and report.noise <= NOISE_LIMIT):
        return CHECK, NOISE_FACTOR * report.noise
    report.reference = (
        f"unavailable: PyTorch differs from onnxruntime by {report.noise:.1e} (max rel, limit "
        f"{NOISE_LIMIT:.0e}), so it is no reference; TF vs PyTorch rows are information only")
    return INFO, 0.0


def _reference_rows(
    report: Report, case: _Case, forward_tol, gradient_tol, keep_arrays, compiled
) -> None:
    """PyTorch's rows; any failure on its side marks the reference unavailable, and the
    rows computed so far stay."""
    import torch

    from .. import onnx_to_torch

    names, labels, target, x, w = case.names, case.labels, case.target, case.x, case.w
    y_tf, g_tf = case.y_tf, case.g_tf
    stage = "onnx2torch conversion"
    t0 = time.perf_counter()
    try:
        folded, count = fold_identities(with_outputs(case.proto, names))
        if count:
            report.notes.append(
                f"for onnx2torch, {count} Identity node(s) of initializers "
                "(deduplicated weights) were folded into initializers"
            )
        torch_model = onnx_to_torch.load(folded)
        stage = "PyTorch forward"
        x_torch = torch.from_numpy(x.copy()).requires_grad_(True)
        y_torch = torch_outputs(torch_model, x_torch, names)
        report.seconds["pytorch"] = time.perf_counter() - t0
        y_np = {n: y_torch[n].detach().numpy() for n in names}
        role, slack = _judge_reference(report, case, y_np, forward_tol)
        if y_tf is not None:
            report.rows.extend(compare(f"{labels[n]} TF vs PyTorch", y_tf[n], y_np[n],
                                       max(forward_tol, slack), role) for n in names)
        if keep_arrays:
            report.arrays["output_pytorch"] = y_np[names[0]]
            if len(names) > 1:
                report.arrays["logits_pytorch"] = y_np[names[1]]
        stage = "PyTorch gradient"
        (y_torch[target] * torch.from_numpy(w)).sum().backward()
        g_torch = x_torch.grad.numpy().copy()
        if keep_arrays:
            report.arrays["grad_pytorch"] = g_torch
        tol32 = max(gradient_tol, slack)
        report.rows.append(
            compare(GRAD32, g_tf, g_torch, tol32, role)
            if g_tf is not None
            else Comparison(GRAD32, np.nan, np.nan, tol32, role, "TF gradient failed")
        )

        # float64: free of float32 ReLU-kink ambiguity, so it tests the implementation
        stage = "PyTorch float64"
        torch64 = torch_double(torch_model)
        x64 = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
        y64 = torch_outputs(torch64, x64, names)[target]
        (y64 * torch.from_numpy(w.astype(np.float64))).sum().backward()
        g64_torch = x64.grad.numpy()
    except Exception as err:  # noqa: BLE001 - onnx2torch/PyTorch raise anything
        report.reference = f"unavailable: {stage}: {short_reason(err)}"
        return
    try:
        tf64 = load_tf(case.path, "float64")
        g64_tf = tf_input_gradient(
            tf64, x.astype(np.float64), w.astype(np.float64), target, compiled
        )
        report.rows.append(compare(GRAD64, g64_tf, g64_torch, GRADIENT64_TOL, role))
    except Exception as err:  # noqa: BLE001 - our float64 path failed: a failing row
        report.rows.append(failed_row(GRAD64, GRADIENT64_TOL, err, role))
