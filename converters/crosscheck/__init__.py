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
- 2: bad input: an unknown zoo name (with the closest names), a missing, empty, truncated or
  unreadable file, a folder or a file without the ``.onnx`` suffix, external data that is
  missing or lies outside the model's folder (onnxruntime and our importer refuse it), an op
  our importer does not support, a model whose input is not float or that has several
  inputs, a bad option value (``--batch 0``, a negative or NaN tolerance, a ``--json`` path
  in no folder). One line on stderr, as ``python -m tf_impl`` prints:
  ``error: <file>: <problem>; <fix>``, never a traceback.
- 3: reference unavailable: the TF vs onnxruntime rows pass, but onnx2torch/PyTorch could not
  convert or run the model (or disagrees with onnxruntime beyond ``NOISE_LIMIT``), so the
  gradients were not (all) checked. The table says why.
"""

from __future__ import annotations

from .cli import main
from .parity import crosscheck
from .report import (
    CHECK,
    EXIT_BAD_INPUT,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_REFERENCE_UNAVAILABLE,
    FORWARD_TOL,
    GRAD32,
    GRAD64,
    GRADIENT64_TOL,
    GRADIENT_TOL,
    INFO,
    KINK_REL,
    NOISE,
    Comparison,
    CrossCheckError,
    Report,
    compare,
)
from .runtimes import count_relu_kinks, input_shape_for, ort_session, resolve_model

__all__ = [
    "CHECK", "EXIT_BAD_INPUT", "EXIT_MISMATCH", "EXIT_OK", "EXIT_REFERENCE_UNAVAILABLE",
    "FORWARD_TOL", "GRAD32", "GRAD64", "GRADIENT64_TOL", "GRADIENT_TOL", "INFO", "KINK_REL",
    "NOISE", "Comparison", "CrossCheckError", "Report", "compare", "count_relu_kinks",
    "crosscheck", "input_shape_for", "main", "ort_session", "resolve_model",
]
