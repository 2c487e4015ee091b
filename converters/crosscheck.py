"""Cross-check an ONNX model in three runtimes: our TF importer, onnxruntime, PyTorch (onnx2torch).

For one input it compares the forward outputs (TF vs onnxruntime, PyTorch vs onnxruntime,
TF vs PyTorch) and the gradient of a fixed random projection of the output with respect to
the input (TF vs PyTorch, in float32 and in float64). Errors are reported as the max absolute
difference and the max absolute difference relative to the reference's max magnitude.

- **The graph's own layout.** The input is fed as the graph declares it (an NHWC Keras graph
  gets NHWC input) and every tensor is compared in the graph's own axis order.
- **Logits.** When the model ends in a Softmax/LogSoftmax (``model.contract.output``), a
  saturated softmax would make the output comparison pass vacuously: its input, the logits
  tensor (``model.contract.logits``), is compared too (onnxruntime and PyTorch get it as an
  extra graph output of an in-memory copy of the model, TF taps it), and the input gradient
  is that of a random projection of the logits, not of the probabilities.
- **Reference noise.** The "PyTorch vs onnxruntime" rows say how far the reference itself is
  from onnxruntime; they decide nothing. The float32 "TF vs PyTorch" rows pass at
  ``max(tolerance, NOISE_FACTOR x noise)``, the noise being the largest relative difference
  of those rows. A reference further than ``NOISE_LIMIT`` from onnxruntime is unreliable:
  it counts as unavailable and the TF vs PyTorch rows are shown for information only.
- **The reference may be unavailable.** When onnx2torch cannot convert the file, or PyTorch
  cannot run it, the TF vs onnxruntime rows are still computed and the report says why the
  reference is missing (``report.reference``: ``"ok"`` or ``"unavailable: <why>"``).
- **float64.** ``load(..., dtype="float64")`` and ``torch_model.double()`` (its float Casts
  made float64 too, as our importer's float64 mode does): free of float32 ReLU-kink
  ambiguity, so the float64 gradient row tests the implementation itself. The float32
  gradient row may fail only where ReLU inputs sit at the kink and the float64 row agrees.
- **The reference's copy.** Identity nodes that read an initializer (torch.onnx.export's
  deduplicated weights) are folded into initializers for onnx2torch, which needs a Conv's
  bias as an initializer; the table notes it.
- TF runs eagerly (``--compiled``: inside ``tf.function``, as ``model(x)`` runs).

Command line::

    python -m converters.crosscheck resnet20_cifar          # a zoo name
    python -m converters.crosscheck path/to/model.onnx --batch 2 --json report.json

prints the table. Exit status:

- 0: every check passes and the reference (PyTorch) was available.
- 1: a mismatch: a TF vs onnxruntime row, or a TF vs PyTorch row (when the reference is
  available), fails; or our importer failed where the others ran.
- 2: bad input: an unknown zoo name, a missing, truncated or unreadable file, external data
  onnxruntime or our importer refuses, an op our importer does not support, a model whose
  input is not float or that has several inputs. One line on stderr:
  ``error: <file>: <problem>; <fix>``.
- 3: reference unavailable: the TF vs onnxruntime rows pass, but onnx2torch/PyTorch could not
  convert or run the model (or disagrees with onnxruntime beyond ``NOISE_LIMIT``), so the
  gradients were not (all) checked. The table says why.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

# Targets (issue: foundation): forward <= 1e-5, input gradient <= 1e-4, relative to max |ref|
FORWARD_TOL = 1e-5
GRADIENT_TOL = 1e-4
# In float64 both frameworks must agree to rounding: this checks the implementation itself.
GRADIENT64_TOL = 1e-9
KINK_REL = 1e-5  # a ReLU input this close to 0 (relative) may fall on either side in float32
DEFAULT_SPATIAL = 64  # for models with dynamic H, W
# float32 TF vs PyTorch rows pass at max(tolerance, NOISE_FACTOR x (PyTorch vs onnxruntime))
NOISE_FACTOR = 4.0
# a PyTorch reference further than this from onnxruntime (relative) is no reference
NOISE_LIMIT = 1e-3

EXIT_OK, EXIT_MISMATCH, EXIT_BAD_INPUT, EXIT_REFERENCE_UNAVAILABLE = 0, 1, 2, 3

GRAD32 = "input gradient TF vs PyTorch"
GRAD64 = "input gradient TF vs PyTorch (float64)"

# row roles: "check" rows decide the verdict; "noise" rows (PyTorch vs onnxruntime) measure
# the reference; "info" rows are shown only (TF vs an unreliable reference)
CHECK, NOISE, INFO = "check", "noise", "info"


class CrossCheckError(ValueError):
    """The model cannot be cross-checked (exit status 2); ``str(err)`` is one line:
    ``<file>: <problem>; <fix>``."""

    def __init__(self, file, problem: str, fix: str = ""):
        self.file, self.problem, self.fix = str(file), _one_line(problem), _one_line(fix)
        super().__init__(f"{self.file}: {self.problem}" + (f"; {self.fix}" if self.fix else ""))


def _one_line(text: str, limit: int = 600) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _why(err: BaseException) -> str:
    return _one_line(f"{type(err).__name__}: {err}", 300)


@dataclass
class Comparison:
    what: str
    max_abs: float
    max_rel: float
    tolerance: float
    role: str = CHECK
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_rel) and self.max_rel <= self.tolerance)


@dataclass
class Report:
    model: str
    input_shape: tuple[int, ...]
    rows: list[Comparison] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    relu_near_kink: int = 0  # ReLU inputs within KINK_REL of zero (float32, TF side)
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    reference: str = "ok"  # "ok" or "unavailable: <why>" (PyTorch through onnx2torch)
    output_kind: str = "logits"  # the contract's output kind
    logits: str | None = None  # the logits tensor compared besides the output, if any
    noise: float | None = None  # PyTorch vs onnxruntime, max relative difference
    notes: list[str] = field(default_factory=list)

    @property
    def reference_ok(self) -> bool:
        return self.reference == "ok"

    @property
    def ok(self) -> bool:
        """Every checking row passes: TF vs onnxruntime, and TF vs PyTorch where PyTorch ran
        (and agrees with onnxruntime). The float32 gradient row may fail only where the
        float64 gradient agrees and ReLU inputs sit at the kink (float32 rounding picks the
        side of the kink, so the frameworks legitimately take different subgradients there).
        The reference's own rows (PyTorch vs onnxruntime) decide nothing."""
        for r in self.rows:
            if r.role != CHECK or r.ok:
                continue
            g64 = self._row(GRAD64)
            if r.what == GRAD32 and self.relu_near_kink and g64 is not None and g64.ok:
                continue
            return False
        return True

    @property
    def exit_code(self) -> int:
        if not self.ok:
            return EXIT_MISMATCH
        return EXIT_OK if self.reference_ok else EXIT_REFERENCE_UNAVAILABLE

    @property
    def verdict(self) -> str:
        return {EXIT_OK: "OK", EXIT_MISMATCH: "MISMATCH"}.get(
            self.exit_code, "OK (TF vs onnxruntime); REFERENCE UNAVAILABLE"
        )

    def _row(self, what: str) -> Comparison | None:
        return next((r for r in self.rows if r.what == what), None)

    def table(self) -> str:
        out = f"output: {self.output_kind}" + (f" (logits {self.logits!r})" if self.logits else "")
        lines = [
            f"{self.model}  input {self.input_shape}  {out}  ReLU inputs at the kink (float32): "
            f"{self.relu_near_kink}",
            f"  reference (PyTorch via onnx2torch): {self.reference}",
            f"  {'comparison':<40}{'max abs':>12}{'max rel':>12}{'tol':>10}  ok",
        ]
        for r in self.rows:
            mark = {NOISE: "(reference noise)", INFO: "(info)"}.get(r.role, "yes" if r.ok else "NO")
            lines.append(
                f"  {r.what:<40}{r.max_abs:>12.3e}{r.max_rel:>12.3e}{r.tolerance:>10.0e}  {mark}"
                + (f"  {r.note}" if r.note else "")
            )
        if self.noise is not None:
            lines.append(
                f"  PyTorch vs onnxruntime: {self.noise:.1e} (reference noise); float32 TF vs "
                f"PyTorch rows pass at max(tol, {NOISE_FACTOR:g} x noise)"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "input_shape": list(self.input_shape),
            "ok": self.ok,
            "exit_code": self.exit_code,
            "reference": self.reference,
            "output_kind": self.output_kind,
            "logits": self.logits,
            "reference_noise": self.noise,
            "relu_near_kink": self.relu_near_kink,
            "rows": [asdict(r) | {"ok": r.ok} for r in self.rows],
            "notes": list(self.notes),
            "seconds": self.seconds,
        }


def compare(
    what: str, got: np.ndarray, ref: np.ndarray, tolerance: float, role: str = CHECK
) -> Comparison:
    got, ref = np.asarray(got, np.float64), np.asarray(ref, np.float64)
    if got.shape != ref.shape:
        return Comparison(
            what,
            np.nan,
            np.nan,
            tolerance,
            role,
            f"shape {got.shape} differs from the reference's {ref.shape}",
        )
    diff = float(np.max(np.abs(got - ref))) if got.size else 0.0
    scale = float(np.max(np.abs(ref))) if ref.size else 0.0
    return Comparison(what, diff, diff / scale if scale > 0 else diff, tolerance, role)


def _failed(what: str, tolerance: float, err: BaseException, role: str = CHECK) -> Comparison:
    return Comparison(what, np.nan, np.nan, tolerance, role, f"failed: {_why(err)}")


def resolve_model(model: str | os.PathLike) -> Path:
    """A path to an ONNX file, or a model_zoo name (exported on first use).

    Raises :class:`CrossCheckError` for a missing file or an unknown zoo name."""
    path = Path(model)
    if path.suffix == ".onnx" or path.exists():
        if not path.is_file():
            raise CrossCheckError(
                path,
                "no ONNX file there",
                "give the path of an existing .onnx file or a zoo name (python -m model_zoo list)",
            )
        return path
    import model_zoo

    try:
        return Path(model_zoo.load(str(model)))
    except model_zoo.ModelZooError as err:
        names = model_zoo.available()
        if str(model) not in names:
            close = difflib.get_close_matches(str(model), names, n=3)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise CrossCheckError(
                model,
                "neither an existing file nor a zoo model",
                f"{hint}give a path to a .onnx file or one of {', '.join(names)}",
            ) from None
        raise CrossCheckError(model, str(err), "see python -m model_zoo list") from None


def input_shape_for(path: Path, batch: int = 1, spatial: int = DEFAULT_SPATIAL) -> tuple[int, ...]:
    """The model's input shape with ``batch`` and ``spatial`` filled in for dynamic axes (a
    fixed batch size stays as declared; read from the graph skeleton, without the weights)."""
    from .onnx_to_tf.mmap_weights import read_lean

    proto, raw = read_lean(path)
    raw.close()
    inits = {t.name for t in proto.graph.initializer}
    inp = next(i for i in proto.graph.input if i.name not in inits)
    dims = [
        d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim
    ]
    return tuple(d if d is not None else (batch if k == 0 else spatial) for k, d in enumerate(dims))


def ort_session(path: Path | bytes):
    """An onnxruntime session on the CPU provider (a path, or a serialised model)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    source = path if isinstance(path, bytes) else str(path)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


# -- the three runtimes -------------------------------------------------------------------------
def _load_tf(path: Path, dtype: str = "float32"):
    from . import onnx_to_tf

    try:
        return onnx_to_tf.load(path, dtype=dtype)
    except onnx_to_tf.OnnxImportError as err:
        msg = str(err)
        for prefix in (f"{path} ", f"{path}: "):
            msg = msg[len(prefix) :] if msg.startswith(prefix) else msg
        problem, _, fix = msg.partition("; ")
        raise CrossCheckError(path, f"our importer cannot load it: {problem}", fix) from None


def _float_input(path: Path, proto) -> tuple[str, np.dtype]:
    """The graph's one data input and its numpy dtype; refuses non-float and multi-input."""
    from onnx import helper

    inits = {t.name for t in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise CrossCheckError(
            path,
            f"the model takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)})",
            "the cross-check feeds one float input; cross-check a single-input export",
        )
    vi = inputs[0]
    elem = vi.type.tensor_type.elem_type
    np_type = np.dtype(helper.tensor_dtype_to_np_dtype(elem)) if elem else np.dtype(np.float32)
    if np_type.kind != "f":
        dims = [
            d.dim_value if d.HasField("dim_value") else "?" for d in vi.type.tensor_type.shape.dim
        ]
        raise CrossCheckError(
            path,
            f"the model's input {vi.name!r} is {np_type.name} {tuple(dims)}, not float",
            "the cross-check feeds random float input and differentiates with respect to it: "
            "export the model with a float input (the preprocessing of uint8 pixels outside "
            "the graph) and cross-check that",
        )
    return vi.name, np_type


def _read_proto(path: Path):
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as err:  # noqa: BLE001 - any reader failure is a bad file
        raise CrossCheckError(
            path, f"onnx cannot read it ({_why(err)})", "export the file again"
        ) from None


def _elem_type(proto, name: str) -> int:
    """The element type of tensor ``name`` (shape inference where the graph does not say)."""
    import onnx

    def find(graph):
        for vi in (*graph.value_info, *graph.output, *graph.input):
            if vi.name == name and vi.type.tensor_type.elem_type:
                return vi.type.tensor_type.elem_type
        return None

    found = find(proto.graph)
    if found is None:  # the input of the final Softmax: the output's type, if no Cast between
        producer = {o: n for n in proto.graph.node for o in n.output}
        tensor, elem = proto.graph.output[0].name, proto.graph.output[0].type.tensor_type
        while tensor in producer and elem.elem_type:
            node = producer[tensor]
            if node.op_type in ("Softmax", "LogSoftmax") and node.input[0] == name:
                found = elem.elem_type
                break
            if node.op_type not in ("Identity", "Dropout", "Reshape", "Flatten", "Squeeze"):
                break
            tensor = node.input[0]
    if found is None:
        try:
            found = find(onnx.shape_inference.infer_shapes(proto).graph)
        except Exception:  # noqa: BLE001 - inference is a convenience: fall back below
            found = None
    return found or proto.graph.output[0].type.tensor_type.elem_type or onnx.TensorProto.FLOAT


def _with_outputs(proto, names: list[str]):
    """A copy of ``proto`` that also outputs ``names`` (tensors inside the graph)."""
    import onnx
    from onnx import helper

    have = {o.name for o in proto.graph.output}
    extra = [n for n in names if n not in have]
    if not extra:
        return proto
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    for n in extra:
        copy.graph.output.append(helper.make_tensor_value_info(n, _elem_type(proto, n), None))
    return copy


def _fold_identities(proto) -> tuple[object, int]:
    """``proto`` with each Identity of an initializer replaced by a copy of it, and their count.

    torch.onnx.export deduplicates equal weights (e.g. zero biases) into one initializer read
    through Identity nodes; onnx2torch's Conv wants its bias as an initializer and fails on
    them. Same values, so the reference's copy gets the folded form."""
    import onnx

    g = proto.graph
    inits = {t.name: t for t in g.initializer}
    outputs = {o.name for o in g.output}
    fold = [
        n
        for n in g.node
        if n.op_type == "Identity"
        and len(n.input) == 1
        and n.input[0] in inits
        and n.output[0] not in outputs
    ]
    if not fold:
        return proto, 0
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    gone = {id_node.output[0] for id_node in fold}
    keep = [
        n
        for n in copy.graph.node
        if not (n.op_type == "Identity" and n.output and n.output[0] in gone)
    ]
    del copy.graph.node[:]
    copy.graph.node.extend(keep)
    for n in fold:
        t = onnx.TensorProto()
        t.CopyFrom(inits[n.input[0]])
        t.name = n.output[0]
        copy.graph.initializer.append(t)
    return copy, len(fold)


def _ort_run(path: Path, proto, names: list[str], input_name: str, x: np.ndarray) -> dict:
    """onnxruntime's values of ``names`` (the first output, and the logits if any)."""
    extended = _with_outputs(proto, names)
    try:
        sess = ort_session(path if extended is proto else extended.SerializeToString())
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types
        raise CrossCheckError(
            path,
            f"onnxruntime cannot load it ({_why(err)})",
            "check it with onnx.checker.check_model; external data must sit next to the model "
            "with a relative location",
        ) from None
    try:
        values = sess.run(names, {input_name: x})
    except Exception as err:  # noqa: BLE001
        raise CrossCheckError(
            path,
            f"onnxruntime cannot run it on input {x.shape} ({_why(err)})",
            "check the input shape the model declares (--batch) and the file",
        ) from None
    return dict(zip(names, values, strict=True))


def _tf_values(model, x: np.ndarray, names: list[str], compiled: bool = False) -> dict:
    import tensorflow as tf

    out = model(tf.constant(x), taps=names, layout="ONNX", compiled=compiled)
    return {n: out[n].numpy() for n in names}


def _tf_input_gradient(
    model, x: np.ndarray, w: np.ndarray, name: str | None = None, compiled: bool = False
) -> np.ndarray:
    """d<w, t(x)>/dx, ``t`` the tensor ``name`` (default: the first output), graph layout."""
    import tensorflow as tf

    name = name or model.output_names[0]
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        out = model(xt, taps=[name], layout="ONNX", compiled=compiled)[name]
        scalar = tf.reduce_sum(out * tf.constant(w, out.dtype))
    return tape.gradient(scalar, xt).numpy()


def _torch_outputs(module, x, names: list[str]) -> dict:
    out = module(x)
    out = list(out) if isinstance(out, (tuple, list)) else [out]
    if len(out) < len(names):
        raise RuntimeError(f"PyTorch returned {len(out)} outputs for {len(names)} wanted")
    return dict(zip(names, out[: len(names)], strict=True))


def _torch_double(module):
    """The onnx2torch module in float64, its float casts included: ``.double()`` converts
    weights and constant buffers, and each Cast module's float target becomes float64 (the
    graph's ``Cast(to=FLOAT)`` would otherwise bring float32 back into the double model,
    the same rule as our importer's float64 mode)."""
    import torch

    module = module.double()
    for sub in module.modules():
        dtype = getattr(sub, "torch_dtype", None)
        if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
            sub.torch_dtype = torch.float64
    return module


# piecewise-linear activations: the input values where the slope jumps (Clip's come from its
# bounds); float32 rounding may put an input on either side of one
_KINKS = {"Relu": (0.0,), "HardSwish": (-3.0, 3.0), "HardSigmoid": None}


def count_relu_kinks(model, x, rel: float = KINK_REL, compiled: bool = False) -> int:
    """Inputs of piecewise-linear activations within ``rel`` x (the tensor's max) of a kink:
    ReLU at 0, Clip (ReLU6) at its bounds, HardSwish at -3 and 3, HardSigmoid where
    ``alpha * x + beta`` reaches 0 or 1."""
    points: dict[str, list[float]] = {}
    for n in model.nodes:
        if n.op_type == "Clip":
            if n.since < 11:
                bounds = [n.attr("min"), n.attr("max")]
            else:
                bounds = [model.static_value(b) if b else None for b in n.inputs[1:3]]
            kinks = [float(np.asarray(b).reshape(-1)[0]) for b in bounds if b is not None]
        elif n.op_type == "HardSigmoid":
            alpha, beta = float(n.attr("alpha", 0.2)), float(n.attr("beta", 0.5))
            kinks = [-beta / alpha, (1.0 - beta) / alpha]
        elif n.op_type in _KINKS:
            kinks = list(_KINKS[n.op_type])
        else:
            continue
        points.setdefault(n.inputs[0], []).extend(kinks)
    if not points:
        return 0
    taps = model(x, taps=list(points), layout="ONNX", compiled=compiled)
    count = 0
    for name, kinks in points.items():
        a = np.asarray(taps[name])
        scale = rel * np.abs(a).max()
        count += int(sum(np.sum(np.abs(a - k) <= scale) for k in set(kinks)))
    return count


def _output_kind(model) -> tuple[str, str | None]:
    """(the contract's output kind, the logits tensor behind a final Softmax or None)."""
    from .onnx_to_tf.contract_sources import find_logits

    contract = model.contract
    kind, logits = contract.output, contract.logits
    if contract.sources.get("output", "default") == "default":
        # a contract left at its defaults (e.g. a model without an image input): the graph
        try:
            kind, logits, _ = find_logits(model)
        except Exception:  # noqa: BLE001 - no inference: compare the output only
            pass
    if kind not in ("probabilities", "log_probabilities"):
        logits = None
    return kind, logits


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
    from . import onnx_to_tf

    path = resolve_model(model)
    t0 = time.perf_counter()
    tf_model = _load_tf(path)
    proto = _read_proto(path)
    input_name, input_type = _float_input(path, proto)
    rng = np.random.default_rng(seed)
    if x is None:
        x = rng.standard_normal(input_shape_for(path, batch)).astype(np.float32)
    x = np.asarray(x, np.float32)
    report = Report(str(model), tuple(x.shape))

    kind, logits = _output_kind(tf_model)
    report.output_kind, report.logits = kind, logits
    out_name = tf_model.output_names[0]
    names = [out_name] + ([logits] if logits and logits != out_name else [])
    target = names[-1]  # the tensor whose projection is differentiated
    labels = {out_name: "forward", logits: "logits"}

    try:
        y_tf = _tf_values(tf_model, x, names, compiled)
    except (onnx_to_tf.OnnxImportError, onnx_to_tf.ModelInputError) as err:
        raise CrossCheckError(
            path,
            f"our importer cannot run it ({_why(err)})",
            "see the message; the file may need re-exporting",
        ) from None
    except Exception as err:  # noqa: BLE001 - our importer failed where it should not
        y_tf = None
        report.notes.append(f"TF forward failed: {_why(err)}")
    report.seconds["tensorflow"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ref = _ort_run(path, proto, names, input_name, x.astype(input_type))
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
        report.arrays = {"input": x, "output_onnxruntime": ref[out_name]}
        if y_tf is not None:
            report.arrays["output_tf"] = y_tf[out_name]
        if logits:
            report.arrays["logits_onnxruntime"] = ref[logits]
            if y_tf is not None:
                report.arrays["logits_tf"] = y_tf[logits]

    g_tf = None
    if y_tf is not None:
        try:
            g_tf = _tf_input_gradient(tf_model, x, w, target, compiled)
        except Exception as err:  # noqa: BLE001
            report.notes.append(f"TF float32 gradient failed: {_why(err)}")
        if keep_arrays and g_tf is not None:
            report.arrays["grad_tf"] = g_tf
        try:
            report.relu_near_kink = count_relu_kinks(tf_model, x, compiled=compiled)
        except Exception as err:  # noqa: BLE001
            report.notes.append(f"counting ReLU kinks failed: {_why(err)}")

    case = _Case(path, proto, names, labels, target, x, w, y_tf, ref, g_tf)
    _reference_rows(report, case, forward_tol, gradient_tol, keep_arrays, compiled)
    return report


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


def _reference_rows(
    report: Report, case: _Case, forward_tol, gradient_tol, keep_arrays, compiled
) -> None:
    """PyTorch's rows; any failure on its side marks the reference unavailable, and the
    rows computed so far stay."""
    import torch

    from . import onnx_to_torch

    names, labels, target, x, w = case.names, case.labels, case.target, case.x, case.w
    y_tf, ref, g_tf = case.y_tf, case.ref, case.g_tf
    stage = "onnx2torch conversion"
    t0 = time.perf_counter()
    try:
        folded, count = _fold_identities(_with_outputs(case.proto, names))
        if count:
            report.notes.append(
                f"for onnx2torch, {count} Identity node(s) of initializers "
                "(deduplicated weights) were folded into initializers"
            )
        torch_model = onnx_to_torch.load(folded)
        stage = "PyTorch forward"
        x_torch = torch.from_numpy(x.copy()).requires_grad_(True)
        y_torch = _torch_outputs(torch_model, x_torch, names)
        report.seconds["pytorch"] = time.perf_counter() - t0
        y_np = {n: y_torch[n].detach().numpy() for n in names}
        noise_rows = [
            compare(f"{labels[n]} PyTorch vs onnxruntime", y_np[n], ref[n], forward_tol, NOISE)
            for n in names
        ]
        report.rows.extend(noise_rows)
        report.noise = max(r.max_rel for r in noise_rows)
        reliable = bool(np.isfinite(report.noise) and report.noise <= NOISE_LIMIT)
        if not reliable:
            report.reference = (
                f"unavailable: PyTorch differs from onnxruntime by {report.noise:.1e} (max rel, "
                f"limit {NOISE_LIMIT:.0e}), so it is no reference; TF vs PyTorch rows are "
                "information only"
            )
        role = CHECK if reliable else INFO
        slack = NOISE_FACTOR * report.noise if reliable else 0.0
        if y_tf is not None:
            for n in names:
                report.rows.append(
                    compare(
                        f"{labels[n]} TF vs PyTorch",
                        y_tf[n],
                        y_np[n],
                        max(forward_tol, slack),
                        role,
                    )
                )
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
        torch64 = _torch_double(torch_model)
        x64 = torch.from_numpy(x.astype(np.float64)).requires_grad_(True)
        y64 = _torch_outputs(torch64, x64, names)[target]
        (y64 * torch.from_numpy(w.astype(np.float64))).sum().backward()
        g64_torch = x64.grad.numpy()
    except Exception as err:  # noqa: BLE001 - onnx2torch/PyTorch raise anything
        report.reference = f"unavailable: {stage}: {_why(err)}"
        return
    try:
        tf64 = _load_tf(case.path, "float64")
        g64_tf = _tf_input_gradient(
            tf64, x.astype(np.float64), w.astype(np.float64), target, compiled
        )
        report.rows.append(compare(GRAD64, g64_tf, g64_torch, GRADIENT64_TOL, role))
    except Exception as err:  # noqa: BLE001 - our float64 path failed: a failing row
        report.rows.append(_failed(GRAD64, GRADIENT64_TOL, err, role))


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
            f"error: {args.model}: the cross-check itself failed ({_why(err)}); please "
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


if __name__ == "__main__":
    sys.exit(main())
