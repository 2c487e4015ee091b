"""``layers``: what a model is to the techniques: its contract and every tensor they can tap.

    python -m tf_impl layers resnet20_cifar
    python -m tf_impl layers model.onnx --layout nhwc --bgr --scale 255 --json layers.json

Prints the model's inputs and outputs, its contract (each field with the source it came from:
default, metadata, graph, sidecar, override), its layer aliases, then one row per tappable
tensor: index, ONNX tensor name, alias(es), shape (channels-first, as the techniques see it,
from one forward at batch 1 at the model's input size, 224x224 for a model that takes any size,
or ``--input-size``), and the op that produces it. The logits tensor and the output are marked.
``--json FILE`` writes the same as JSON. :func:`describe_model` is the summary part, also
printed by ``python -m model_zoo info PATH``.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from .common import EXIT_OK, add_contract_options, load_model, model_path

DEFAULT_SIZE = 224
PROBE_SIZE = 32


def add_parsers(sub) -> None:
    """Add the ``layers`` sub-command to ``sub``."""
    p = sub.add_parser(
        "layers", help="a model's contract and every tensor a technique can tap",
        description="Print the model's inputs, outputs, contract (with where each field came "
        "from) and layer aliases, then one row per tappable tensor: index, ONNX name, aliases, "
        "shape (channels-first at batch 1, as the techniques see it) and the producing op; the "
        "logits tensor and the output are marked.",
        epilog="Any tensor name or alias listed here works as --layer (feature-inversion, "
        "deepdream, texture...). A model that takes any size is probed at 224x224, or at "
        "--input-size.", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="FILE_OR_ZOO_NAME", help="a zoo name or an .onnx file")
    add_contract_options(p)
    p.add_argument("--json", dest="json_file", metavar="FILE", default=None,
                   help="also write the summary and the table as JSON")
    p.set_defaults(run=run_layers)


# -- the summary ------------------------------------------------------------------------------
def fmt_shape(shape) -> str:
    """``(N, 3, 32, 32)``: a declared shape, ``N`` for a dynamic batch, ``?`` for others."""
    if shape is None:
        return "(unknown)"
    return "(" + ", ".join("N" if (i == 0 and d is None) else ("?" if d is None else str(d))
                           for i, d in enumerate(shape)) + ")"


def aliases_by_tensor(model) -> dict[str, list[str]]:
    """ONNX tensor name -> its aliases (``model.aliases`` reversed), in alias order."""
    out: dict[str, list[str]] = {}
    for alias, tensor in model.aliases.items():
        out.setdefault(tensor, []).append(alias)
    return out


def logits_tensor(model) -> str | None:
    """The tensor holding the class logits: the contract's, else the output of a classifier,
    else None (a feature extractor)."""
    c = model.contract
    if c.logits:
        return c.logits
    return model.output_names[0] if c.is_classifier else None


def describe_model(model, source: str, *, all_aliases: bool = False) -> list[str]:
    """A few lines about ``model`` (seen through its contract) loaded from ``source``: inputs,
    outputs, the contract with each field's source, the logits tensor and the aliases
    (module paths such as ``layer1.0`` only with ``all_aliases``)."""
    from converters.onnx_to_tf import contract_model

    model = contract_model(model)
    graph = model.graph
    c = model.contract
    lines = [f"{source}: opset {graph.opset}, {len(graph.nodes)} nodes, "
             f"{sum(int(np.prod(v.shape)) for v in graph.onnx_variables.values()):,} parameters"]
    for spec in graph.inputs:
        lines.append(f"  input   {spec.name} {fmt_shape(spec.shape)} {spec.dtype.name}, "
                     f"{c.layout}")
    lines.append(f"  techniques feed {fmt_shape(model.inputs[0].shape)}: NCHW, RGB, "
                 "normalised (see the contract)")
    for name, shape in zip(graph.output_names, graph.output_shapes):
        lines.append(f"  output  {name} {fmt_shape(shape)}, {c.output}")
    lines.append(f"  logits  {logits_tensor(model) or '(none: a feature extractor)'}")
    lines.append("  contract:")
    lines += ["  " + row for row in c.describe().splitlines()]
    shown = {a: t for a, t in model.aliases.items() if all_aliases or "." not in a}
    lines.append(f"  layer aliases ({len(model.aliases)})")
    width = max((len(a) for a in shown), default=0)
    lines += [f"    {a:<{width}}  {t}" for a, t in shown.items()]
    hidden = len(model.aliases) - len(shown)
    if hidden:
        lines.append(f"    ({hidden} module paths such as 'layer1.0' or 'features.4' hidden; "
                     "the table lists them)")
    return lines


# -- the tensors ------------------------------------------------------------------------------
def probe_size(model) -> tuple[int, int]:
    """(H, W) the table's forward runs at: the model's input size, else 224x224."""
    shape = model.inputs[0].shape
    return (int(shape[2] or DEFAULT_SIZE), int(shape[3] or DEFAULT_SIZE))


def _forward_shapes(model, x, names, *, compiled: bool) -> dict[str, tuple | None]:
    """Shapes of ``names`` from one forward; a tensor that cannot be computed gets None
    (bisecting, so one bad tensor leaves the others' shapes)."""
    if not names:
        return {}
    try:
        values = model(x, taps=list(names), compiled=compiled)
        return {n: tuple(int(d) for d in values[n].shape) for n in names}
    except Exception:  # noqa: BLE001 - a tensor the forward cannot give: bisect, then None
        if len(names) == 1:
            return {names[0]: None}
        half = len(names) // 2
        return {**_forward_shapes(model, x, names[:half], compiled=compiled),
                **_forward_shapes(model, x, names[half:], compiled=compiled)}


def tensor_shapes(model, names=None, *, budget: float | None = None
                  ) -> dict[str, tuple | None]:
    """Channels-first shape of each tensor at batch 1 and :func:`probe_size`.

    One forward with every tensor tapped. For a model that takes any size, a 32x32 probe
    first estimates the memory that needs; above ``budget`` bytes (default a quarter of the
    available memory) the tensors are tapped in chunks that fit, each in a compiled forward
    (which frees what it does not return).
    """
    shape = model.inputs[0].shape
    names = list(model.layer_names if names is None else names)
    h, w = probe_size(model)
    c = int(shape[1] or 3)
    dtype = model.dtype.as_numpy_dtype
    chunks = [names]
    if shape[2] is None or shape[3] is None:
        if budget is None:
            import psutil

            budget = 0.25 * psutil.virtual_memory().available
        scale = h * w / PROBE_SIZE ** 2
        try:
            probe = model(np.zeros((1, c, PROBE_SIZE, PROBE_SIZE), dtype), taps=names,
                          compiled=False)
            need = {n: int(np.prod(probe[n].shape)) * 4 * scale for n in names}
        except Exception:  # noqa: BLE001 - too small for the model, or a bad tensor: no estimate
            need = {}
        if need and sum(need.values()) > budget:
            chunks, size = [[]], 0.0
            for n in names:
                if chunks[-1] and size + need[n] > budget:
                    chunks.append([])
                    size = 0.0
                chunks[-1].append(n)
                size += need[n]
    x = np.zeros((1, c, h, w), dtype)
    try:  # one plain forward first: a model that cannot run at all gets one clear error
        model(x, taps=[model.output_names[0]], compiled=len(chunks) > 1)
    except Exception as err:  # noqa: BLE001 - any failure of the forward: say which input
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"the model does not run on a 1x{c}x{h}x{w} input ({msg}); give its "
                         "input size with --input-size H,W") from None
    out: dict[str, tuple | None] = {}
    for chunk in chunks:
        out.update(_forward_shapes(model, x, chunk, compiled=len(chunks) > 1))
    return out


def tensor_table(model) -> list[dict]:
    """One row per tappable tensor: index, name, aliases, shape (channels-first, batch 1),
    producing op (``input`` for the graph input), and whether it is the logits / an output."""
    from converters.onnx_to_tf import contract_model

    model = contract_model(model)
    producer = {o: n.op_type for n in model.nodes for o in n.outputs if o}
    inputs = {spec.name for spec in model.graph.inputs}
    aliases = aliases_by_tensor(model)
    logits = logits_tensor(model)
    outputs = set(model.output_names)
    shapes = tensor_shapes(model)
    return [{
        "index": i,
        "name": name,
        "aliases": aliases.get(name, []),
        "shape": None if shapes.get(name) is None else list(shapes[name]),
        "op": "input" if name in inputs else producer.get(name, "?"),
        "logits": name == logits,
        "output": name in outputs,
    } for i, name in enumerate(model.layer_names)]


def format_table(rows: list[dict]) -> list[str]:
    """The table as text lines."""
    def marks(r):
        return ", ".join(m for m, on in (("logits", r["logits"]), ("output", r["output"])) if on)

    cells = [("#", "tensor", "aliases", "shape", "op", "")] + [
        (str(r["index"]), r["name"], ", ".join(r["aliases"]) or "-",
         "?" if r["shape"] is None else str(tuple(r["shape"])),
         r["op"], f"<- {marks(r)}" if marks(r) else "") for r in rows]
    widths = [max(len(row[k]) for row in cells) for k in range(len(cells[0]))]
    return ["  " + "  ".join(cell.ljust(wd) for cell, wd in zip(row, widths)).rstrip()
            for row in cells]


def run_layers(args) -> int:
    from ..report import OutputError

    path = model_path(args.model)
    model = load_model(args, path)
    rows = tensor_table(model)
    h, w = probe_size(model)
    lines = describe_model(model, f"{args.model} ({path})" if str(path) != args.model
                           else args.model)
    lines.append(f"  tensors ({len(rows)}; shapes channels-first at batch 1, input {h}x{w})")
    lines += format_table(rows)
    print("\n".join(lines))
    if args.json_file:
        record = {
            "model": args.model,
            "path": str(path),
            "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype.name}
                       for s in model.graph.inputs],
            "working_input": list(model.inputs[0].shape),
            "outputs": [{"name": n, "shape": None if s is None else list(s)}
                        for n, s in zip(model.graph.output_names, model.graph.output_shapes)],
            "logits": logits_tensor(model),
            "contract": model.contract.to_dict(),
            "contract_sources": dict(model.contract.sources),
            "aliases": dict(model.aliases),
            "probe_size": [h, w],
            "tensors": rows,
        }
        try:
            with open(args.json_file, "w", encoding="utf-8") as f:
                json.dump(record, f, indent=2)
        except OSError as err:
            raise OutputError(f"cannot write --json {args.json_file} ({err.strerror or err}); "
                              "choose another path") from None
        print(f"wrote {args.json_file}", file=sys.stderr)
    return EXIT_OK
