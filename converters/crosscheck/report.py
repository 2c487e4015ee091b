"""The cross-check's vocabulary: tolerances, exit codes, one compared pair of values
(``Comparison``) and the table of them (``Report``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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


def short_reason(err: BaseException) -> str:
    """``Type: message`` of an error on one short line."""
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


def failed_row(what: str, tolerance: float, err: BaseException, role: str = CHECK) -> Comparison:
    """A row for a comparison that could not run: NaN values, the error as the note."""
    return Comparison(what, np.nan, np.nan, tolerance, role, f"failed: {short_reason(err)}")
