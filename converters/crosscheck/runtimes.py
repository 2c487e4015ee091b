"""The three runtimes of a cross-check: our importer (TF), onnxruntime and onnx2torch
(PyTorch), each asked for the same tensors on the same input."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np

from .report import DEFAULT_SPATIAL, KINK_REL, CrossCheckError, short_reason


def resolve_model(model: str | os.PathLike) -> Path:
    """A path to an ONNX file, or a model_zoo name (exported on first use).

    Raises :class:`CrossCheckError` for a missing file, a folder, a file without the
    ``.onnx`` suffix or an unknown zoo name (with the closest names)."""
    path = Path(model)
    if path.suffix == ".onnx" or path.exists():
        if path.is_dir():
            raise CrossCheckError(path, "is a folder, not an ONNX file",
                                  "give the path of a .onnx file inside it, or a zoo name")
        if not path.is_file():
            raise CrossCheckError(
                path,
                "no ONNX file there",
                "give the path of an existing .onnx file or a zoo name (python -m model_zoo list)",
            )
        if path.suffix.lower() != ".onnx":
            raise CrossCheckError(path, "not an ONNX file (expected the .onnx suffix)",
                                  "export the model to ONNX first (e.g. converters.tf_to_onnx)")
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
        raise CrossCheckError(model, str(err)) from None  # the zoo's message has the fix


EMBED_DATA = "python -c \"import onnx; onnx.save(onnx.load('MODEL.onnx'), 'OUT.onnx')\""


def reader_failure(path: Path, who: str, err: BaseException) -> CrossCheckError:
    """The one-line error for a reference reader (onnx, onnxruntime) that refused the file:
    its external data, a truncated or non-ONNX file, or anything else."""
    low = str(err).lower()
    if "external" in low or "tensorproto" in low:
        return CrossCheckError(
            path,
            f"{who} refuses its external data ({short_reason(err)})",
            "keep the data file next to the .onnx with a relative location (as saved), or "
            f"re-save the model with the data embedded: {EMBED_DATA}",
        )
    if any(k in low for k in ("protobuf", "wire format", "decode", "no graph was found")):
        return CrossCheckError(
            path,
            f"{who} cannot parse it ({short_reason(err)})",
            "the file is truncated or not an ONNX model: export it again",
        )
    return CrossCheckError(
        path,
        f"{who} cannot load it ({short_reason(err)})",
        "check it with onnx.checker.check_model; external data must sit next to the model "
        "with a relative location",
    )


def input_shape_for(path: Path, batch: int = 1, spatial: int = DEFAULT_SPATIAL) -> tuple[int, ...]:
    """The model's input shape with ``batch`` and ``spatial`` filled in for dynamic axes (a
    fixed batch size stays as declared; read from the graph skeleton, without the weights)."""
    from ..onnx_to_tf.mmap_weights import read_lean

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
def load_tf(path: Path, dtype: str = "float32"):
    """Our importer's model of the file (a ``CrossCheckError`` when it cannot import it)."""
    from .. import onnx_to_tf

    try:
        return onnx_to_tf.load(path, dtype=dtype)
    except onnx_to_tf.OnnxImportError as err:
        msg = str(err)
        for prefix in (f"{path} ", f"{path}: "):
            msg = msg[len(prefix) :] if msg.startswith(prefix) else msg
        problem, _, fix = msg.partition("; ")
        raise CrossCheckError(path, f"our importer cannot load it: {problem}", fix) from None


def float_input(path: Path, proto) -> tuple[str, np.dtype]:
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


def read_proto(path: Path):
    """The file's ONNX graph, weights left on disk (a ``CrossCheckError`` when unreadable)."""
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as err:  # noqa: BLE001 - any reader failure is a bad file
        raise reader_failure(path, "onnx", err) from None


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


def with_outputs(proto, names: list[str]):
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


def fold_identities(proto) -> tuple[object, int]:
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


def ort_run(path: Path, proto, names: list[str], input_name: str, x: np.ndarray) -> dict:
    """onnxruntime's values of ``names`` (the first output, and the logits if any)."""
    extended = with_outputs(proto, names)
    try:
        sess = ort_session(path if extended is proto else extended.SerializeToString())
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own types
        raise reader_failure(path, "onnxruntime", err) from None
    try:
        values = sess.run(names, {input_name: x})
    except Exception as err:  # noqa: BLE001
        raise CrossCheckError(
            path,
            f"onnxruntime cannot run it on input {x.shape} ({short_reason(err)})",
            "check the input shape the model declares (--batch) and the file",
        ) from None
    return dict(zip(names, values, strict=True))


def tf_values(model, x: np.ndarray, names: list[str], compiled: bool = False) -> dict:
    """The named tensors of our model on ``x``, in the graph's layout."""
    import tensorflow as tf

    out = model(tf.constant(x), taps=names, layout="ONNX", compiled=compiled)
    return {n: out[n].numpy() for n in names}


def tf_input_gradient(
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


def torch_outputs(module, x, names: list[str]) -> dict:
    """The onnx2torch module's outputs on ``x`` under the graph's output names."""
    out = module(x)
    out = list(out) if isinstance(out, (tuple, list)) else [out]
    if len(out) < len(names):
        raise RuntimeError(f"PyTorch returned {len(out)} outputs for {len(names)} wanted")
    return dict(zip(names, out[: len(names)], strict=True))


def torch_double(module):
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


def output_kind(model) -> tuple[str, str | None]:
    """(the contract's output kind, the logits tensor behind a final Softmax or None)."""
    from ..onnx_to_tf.contract_sources import find_logits

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
