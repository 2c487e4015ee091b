"""Victims we did not export: every technique's command and the cross-check on third-party-style
files, and the forward speed of the imported model beside onnxruntime.

    python -m benchmarks.third_party                 # full-size files (about 1.5 h on 2 cores)
    python -m benchmarks.third_party --small         # the tiny test builds (about 10 minutes)
    python -m benchmarks.third_party --speed-only    # re-time the speed rows only
    python -m benchmarks.third_party --models caffe_resnet18,tv_resnet50

The files come from ``model_zoo.third_party`` (Keras applications exported NHWC with a Softmax
head, torchvision models from the new and the old exporter, a Caffe-style wrapper): built
once into the zoo's cache folder (``third_party/``), each with a sidecar contract written from
the builder's ground truth, as a user would write it. For each file:

- import, and the contract the importer infers (layout and output kind from the graph);
- forward through the contract against onnxruntime fed the file's own input made by hand
  (softmax of our logits against the file's probabilities, or logits against logits);
- ``python -m converters.crosscheck FILE``: its exit code (0 ok, 3 reference unavailable);
- every technique's command at toy settings: its exit code and seconds (a model with no fully
  connected layer is expected to refuse gradient inversion with exit 2).

Speed (issue "any ONNX victim"): batch 1 at 224x224, the frozen forward (``freeze``) within
1.3x onnxruntime and ``model(x)`` within 1.6x, on resnet50, mobilenet_v3_small and the
Caffe-style wrapper; each contender in its own process, alternated over rounds
(``benchmarks.foundation.bench_speed``).

Writes ``benchmarks/results/third_party.{json,md}`` (``third_party_quick.*`` with --small).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np

import converters  # noqa: F401  (blocks triton before torch: see converters/triton_guard.py)

from . import write_results

RESULTS = Path(__file__).resolve().parent / "results"
SPEED_MODELS = ("tv_resnet50", "tv_mobilenet_v3_small", "caffe_resnet18")
SPEED_CONTENDERS = ["onnxruntime forward", "TF forward", "TF forward (frozen)"]
COMMANDS = ("feature-inversion", "gradient-inversion", "saliency", "guided-backprop",
            "occlusion", "class-viz", "adversarial", "deepdream", "integrated-gradients", "idgi",
            "fullgrad", "attribution-eval")
SHORT = {"feature-inversion": "FI", "gradient-inversion": "GI", "saliency": "sal",
         "guided-backprop": "GB", "occlusion": "occ", "class-viz": "CV", "adversarial": "adv",
         "deepdream": "DD", "integrated-gradients": "IG", "idgi": "IDGI", "fullgrad": "FG",
         "attribution-eval": "ins/del"}


def folder() -> Path:
    from model_zoo.cache import resolve_cache_dir

    return resolve_cache_dir().parent / "third_party"


def build(name: str, small: bool) -> tuple[Path, object]:
    """The file (built once, cached) and its ground truth, with a sidecar contract."""
    from model_zoo import third_party as tp

    where = folder() / ("small" if small else "full")
    path = tp.save(name, where, small=small)
    truth = tp.load_truth(path)
    path.with_name(path.stem + ".contract.json").write_text(json.dumps({
        "layout": truth.layout, "channel_order": truth.channel_order, "scale": truth.scale,
        "mean": list(truth.mean), "std": list(truth.std)}))
    return path, truth


def command_args(command: str, layer: str, size: int) -> list[str]:
    """Toy settings: enough to run every stage and write every output."""
    window = str(max(4, size // 4))
    return {
        "feature-inversion": ["--layer", layer, "--steps", "5", "--size", str(size),
                              "--no-lpips"],
        "gradient-inversion": ["--batch", "1", "--steps", "2", "--labels", "true",
                               "--no-compile", "--seeds", "1"],
        "saliency": ["--segment"],
        "guided-backprop": [],
        "occlusion": ["--window", window, "--stride", window],
        "class-viz": ["--class", "1", "--steps", "2", "--no-compile"],
        "adversarial": ["--steps", "2", "--no-compile",
                        *(["--n", "1"] if size == 32 else ["--image", "cat_dog"])],
        "deepdream": ["--layer", layer, "--steps", "2", "--octaves", "1", "--size", str(size)],
        "integrated-gradients": ["--steps", "8", "--batch-size", "8"],
        "idgi": ["--steps", "8", "--batch-size", "8"],
        "fullgrad": [],
        "attribution-eval": ["--n", "1", "--methods", "ig,fullgrad", "--steps", "8",
                             "--all-images", "--batch-size", "8"],
    }[command]


def run_command(argv: list[str]) -> tuple[int | str, float, str]:
    """(exit code, seconds, last error line) of one ``python -m tf_impl`` command, in-process."""
    from tf_impl.cli import main as cli

    err = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code: int | str = cli(argv)
        except Exception as exc:  # noqa: BLE001 - a traceback is a finding, recorded as such
            code = f"traceback: {type(exc).__name__}"
            traceback.print_exc(file=err)
    lines = [ln for ln in err.getvalue().splitlines() if ln.startswith("error")]
    return code, time.perf_counter() - t0, (lines[-1] if lines else "")


def forward_parity(path: Path, truth) -> float:
    """max |ours - onnxruntime| / max |onnxruntime| through the contract, on 2 photos."""
    from converters import onnx_to_tf
    from converters.crosscheck import ort_session
    from model_zoo import data
    from tf_impl import images as imgs

    view = onnx_to_tf.load(path).with_contract()
    h, w = truth.input_size
    names = [k for k in data.list_images() if data.image_label(k) is not None][:2]
    pixels = np.concatenate([data.image(k, h, normalize=False) for k in names])
    logits = view(imgs.normalize(pixels, *view.preprocessing)).numpy().astype(np.float64)
    sess = ort_session(path)
    ref = sess.run(None, {sess.get_inputs()[0].name: truth.model_input(pixels)})[0]
    ref = ref.reshape(len(pixels), -1).astype(np.float64)
    ours = logits
    if truth.output == "probabilities":
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        ours = e / e.sum(axis=1, keepdims=True)
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


def run_commands(row: dict, path: Path, layer: str, size: int, out: Path,
                 commands: tuple[str, ...] = COMMANDS) -> None:
    """Run ``commands`` on the file and record each one's exit code, seconds and files."""
    name = row["model"]
    row.setdefault("commands", {})
    for command in commands:
        argv = [command, "--model", str(path), "--out", str(out / name / command),
                "--overwrite", "--quiet", *command_args(command, layer, size)]  # a rerun replaces
        code, seconds, error = run_command(argv)
        written = sorted(p.name for p in (out / name / command).glob("*")) \
            if (out / name / command).is_dir() else []
        row["commands"][command] = {"exit": code, "seconds": round(seconds, 1),
                                    "error": error, "files": len(written)}
        print(f"  {name} {command}: exit {code} in {seconds:.1f} s {error}", flush=True)


def first_activation(model) -> str:
    return next(n.outputs[0] for n in model.nodes if n.op_type in ("Relu", "Clip", "HardSwish"))


def bench_model(name: str, small: bool, out: Path) -> dict:
    from converters import crosscheck, onnx_to_tf

    row: dict = {"model": name}
    t0 = time.perf_counter()
    path, truth = build(name, small)
    row["build_seconds"] = round(time.perf_counter() - t0, 1)
    row.update(origin=truth.origin, layout=truth.layout, output=truth.output,
               input=[*truth.input_size], mb=round(path.stat().st_size / 2**20, 1))
    t0 = time.perf_counter()
    model = onnx_to_tf.load(path)
    row["import_seconds"] = round(time.perf_counter() - t0, 2)
    from converters.onnx_to_tf.contract_sources import infer_from_graph

    graph, _ = infer_from_graph(model)  # what the graph alone says, before the sidecar
    row["inferred"] = {"layout": graph.get("layout") == truth.layout,
                       "output": graph.get("output") == truth.output}
    row["forward_rel"] = forward_parity(path, truth)
    layer = first_activation(model)
    del model
    printed = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        try:
            code: int | str = crosscheck.main([str(path)])
        except Exception as exc:  # noqa: BLE001 - recorded
            code = f"traceback: {type(exc).__name__}"
    row["crosscheck"] = {"exit": code, "seconds": round(time.perf_counter() - t0, 1),
                         "table": printed.getvalue().strip().splitlines()}
    run_commands(row, path, layer, truth.input_size[0], out)
    return row


def expected(row: dict, command: str) -> bool:
    """What passing means: exit 0 with outputs, or a clean refusal of gradient inversion on a
    model without a fully connected layer."""
    r = row["commands"][command]
    if r["exit"] == 0:
        return r["files"] > 0
    return command == "gradient-inversion" and r["exit"] == 2 and "fully connected" in r["error"]


def markdown(results: dict) -> str:
    small = results["small"]
    lines = [
        "# Third-party victims" + (" (small builds)" if small else ""),
        "",
        f"Machine: {results['machine']}. Files from `model_zoo.third_party`"
        f"{' (SMALL: 32x32, 10 classes)' if small else ' (full size: 224x224, 1000 classes)'}"
        ", each with a sidecar contract from the builder's ground truth.",
        "",
        "## Every technique's command",
        "",
        "Cells: seconds of a run that wrote its outputs (exit 0); `refused` = a clean one-line "
        "exit 2 (gradient inversion needs a fully connected layer); anything else is a failure "
        "and shows its exit code.",
        "",
        "| model | origin | layout, output | MB | import s | contract inferred | fwd vs ORT "
        "| crosscheck | " + " | ".join(SHORT[c] for c in COMMANDS) + " |",
        "|---|---|---|---|---|---|---|---|" + "---|" * len(COMMANDS),
    ]
    failures = 0
    for row in results["models"]:
        if "error" in row:
            failures += 1
            lines.append(f"| {row['model']} | build failed: {row['error']} |")
            continue
        cells = []
        for command in COMMANDS:
            r = row["commands"][command]
            ok = expected(row, command)
            failures += not ok
            cells.append(f"{r['seconds']:.0f}" if r["exit"] == 0 and ok else
                         "refused" if ok else f"**exit {r['exit']}**")
        cc = row["crosscheck"]["exit"]
        failures += cc not in (0, 3)
        inferred = "yes" if all(row["inferred"].values()) else \
            "NO: " + ", ".join(k for k, v in row["inferred"].items() if not v)
        lines.append(
            f"| {row['model']} | {row['origin']} | {row['layout']}, {row['output']} | "
            f"{row['mb']} | {row['import_seconds']:.2f} | {inferred} | {row['forward_rel']:.1e} "
            f"| {'ok' if cc == 0 else 'ref. unavailable' if cc == 3 else f'**exit {cc}**'} | "
            + " | ".join(cells) + " |")
    lines += ["", f"Failures: {failures} (target: 0; forward within 1e-5 of onnxruntime).", ""]
    if results.get("speed"):
        lines += [
            "## Forward speed (batch 1, median ms; each contender in its own process)",
            "",
            "| model | onnxruntime | TF `model(x)` | TF `freeze` | model(x)/ORT (<= 1.6) | "
            "frozen/ORT (<= 1.3) |",
            "|---|---|---|---|---|---|",
        ]
        for s in results["speed"]:
            m = s["median_ms"]
            lines.append(
                f"| {s['label']} | {m['onnxruntime forward']:.1f} | {m['TF forward']:.1f} | "
                f"{m['TF forward (frozen)']:.1f} | {s['ratio_tf_vs_ort_forward']:.2f} | "
                f"{s['ratio_tf_frozen_vs_ort_forward']:.2f} |")
        cpu = results.get("cpu", {})
        lines += ["", f"{results['speed'][0]['rounds']} rounds x "
                  f"{results['speed'][0]['calls_per_round']} calls per contender. CPU: "
                  f"{cpu.get('cpu', '?')}, {cpu.get('vector', '?')}, TensorFlow's oneDNN kernels "
                  f"{'on' if cpu.get('onednn') else 'off (Eigen convolutions)'}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from model_zoo import third_party as tp

    parser = argparse.ArgumentParser(prog="python -m benchmarks.third_party", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="the tiny test builds")
    parser.add_argument("--models", help="comma-separated catalogue names (default: all)")
    parser.add_argument("--speed-only", action="store_true",
                        help="re-time the speed rows, keep the last matrix")
    parser.add_argument("--commands", help="comma-separated commands to run again on the "
                        "models of the last run (or --models), keeping everything else")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed rows")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--runs", type=Path, default=Path("runs/third_party"),
                        help="where the commands write their outputs")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",")] if args.models else list(tp.CATALOGUE)
    stem = "third_party_quick" if args.small else "third_party"
    previous = args.out / f"{stem}.json"
    if args.speed_only or args.commands:
        if not previous.is_file():
            parser.error(f"--speed-only / --commands need a previous run's {previous}")
        results = json.loads(previous.read_text())
        if args.commands:
            from converters import onnx_to_tf

            again = tuple(c.strip() for c in args.commands.split(","))
            unknown = [c for c in again if c not in COMMANDS]
            if unknown:
                parser.error(f"unknown command(s) {unknown}; from {', '.join(COMMANDS)}")
            for row in results["models"]:
                if "commands" not in row or (args.models and row["model"] not in names):
                    continue
                path, truth = build(row["model"], args.small)
                layer = first_activation(onnx_to_tf.load(path))
                run_commands(row, path, layer, truth.input_size[0], args.runs, again)
            args.no_speed = args.no_speed or not args.speed_only
    else:
        results = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, "
                              f"Python {platform.python_version()}",
                   "small": args.small, "models": [], "speed": []}
        for name in names:
            print(f"{name}...", flush=True)
            try:
                results["models"].append(bench_model(name, args.small, args.runs))
            except Exception as exc:  # noqa: BLE001 - one model's failure is a finding
                traceback.print_exc()
                results["models"].append({"model": name, "error": f"{type(exc).__name__}: "
                                                                  f"{exc}"[:300]})
    if not args.no_speed and not args.small:
        from . import cpu_record
        from .foundation import bench_speed

        results["speed"], results["cpu"] = [], cpu_record()
        for name in SPEED_MODELS:
            path, _ = build(name, False)
            print(f"timing {name}...", flush=True)
            s = bench_speed(str(path), args.rounds, args.calls, SPEED_CONTENDERS)
            s["label"] = name
            results["speed"].append(s)
    write_results(args.out, "third_party", args.small, results, markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
