"""Foundation targets: parity on every zoo model, TF speed beside onnxruntime and PyTorch,
and the cost of importing VGG16.

    python -m benchmarks.foundation            # full run (~25 minutes on 2 cores)
    python -m benchmarks.foundation --quick    # fewer repetitions, small models only

Writes ``benchmarks/results/foundation.json`` and ``foundation.md`` and prints the tables.
Each speed contender (onnxruntime, TF ``model(x)``, TF with XLA, TF ``model.freeze``,
PyTorch; forward and forward + input gradient) runs in its own process, and the processes
are alternated over rounds, so machine noise hits all contenders alike and no runtime's idle
threads slow another down; medians over all rounds are compared, ratios are what to read.

Targets (issue "Foundation"):
- forward TF vs onnxruntime <= 1e-5 relative to max |output|; input gradient TF vs PyTorch
  <= 1e-4 (float32; ReLU-kink flips are reported, and the float64 gradient must agree);
- batch 1, 224x224: TF forward (tf.function) <= 1.3 x onnxruntime on vgg16 and resnet18
  (measured for ``model(x)`` and for the forward-only ``model.freeze(shape)``);
  TF forward + input gradient <= 1.0 x PyTorch (onnx2torch) on the same model;
- import of vgg16 (528 MB of weights) < 10 s, holding at most two copies of the weights.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import converters  # noqa: F401  (blocks triton before torch: see converters/triton_guard.py)

RESULTS = Path(__file__).resolve().parent / "results"


def _median_ms(samples: list[float]) -> float:
    return float(np.median(samples) * 1e3)


# What each contender times; the worker process builds only the runtime it needs.
CONTENDERS = {
    "onnxruntime forward": "ort",
    "TF forward": "tf",
    "TF forward (XLA)": "tf_xla",
    "TF forward (frozen)": "tf_frozen",
    "PyTorch forward": "torch",
    "TF forward+grad": "tf_grad",
    "PyTorch forward+grad": "torch_grad",
}


def model_path_and_shape(name: str) -> tuple[Path, list[int]]:
    """A zoo name or an ``.onnx`` path, and its batch-1 input shape in the graph's own layout
    (224 for dynamic spatial axes)."""
    if name.endswith(".onnx"):
        from converters.crosscheck import input_shape_for

        path = Path(name)
        return path, list(input_shape_for(path, 1, 224))
    import model_zoo

    shape = list(model_zoo.info(name).input_shape)
    shape[0] = 1
    return model_zoo.load(name), [224 if d is None else d for d in shape]


def _contender(name: str, kind: str):
    """``(call, setup_seconds)`` for one contender on ``name`` (a zoo name or an ``.onnx``
    path) at batch 1."""
    path, shape = model_path_and_shape(name)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    t0 = time.perf_counter()
    if kind == "ort":
        from converters.crosscheck import ort_session

        sess = ort_session(path)
        feed = {sess.get_inputs()[0].name: x}
        return (lambda: sess.run(None, feed)), time.perf_counter() - t0
    if kind.startswith("torch"):
        import torch

        from converters import onnx_to_torch

        net = onnx_to_torch.load(path)
        with torch.no_grad():
            w = torch.from_numpy(_weights(net(torch.from_numpy(x)).shape))
        setup = time.perf_counter() - t0
        if kind == "torch":
            def forward():
                with torch.no_grad():
                    return net(torch.from_numpy(x)).numpy()

            return forward, setup

        def forward_grad():
            xx = torch.from_numpy(x).requires_grad_(True)
            (net(xx) * w).sum().backward()
            return xx.grad.numpy()

        return forward_grad, setup

    import tensorflow as tf

    from converters import onnx_to_tf

    model = onnx_to_tf.load(path, jit_compile=kind == "tf_xla")
    xt = tf.constant(x)
    if kind == "tf_frozen":
        frozen = model.freeze(shape)
        return (lambda: frozen(xt).numpy()), time.perf_counter() - t0
    if kind in ("tf", "tf_xla"):
        return (lambda: model(xt).numpy()), time.perf_counter() - t0
    wt = tf.constant(_weights(model(xt).shape))

    @tf.function
    def grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            s = tf.reduce_sum(model(x) * wt)
        return tape.gradient(s, x)

    return (lambda: grad(xt).numpy()), time.perf_counter() - t0


def _weights(shape) -> np.ndarray:
    """The seeded output weights of the scalar whose input gradient is timed."""
    return np.random.default_rng(1).standard_normal(tuple(shape)).astype(np.float32)


def speed_worker(name: str, kind: str, calls: int) -> dict:
    """Time ``calls`` calls of one contender after a warm-up of >= 5 calls and >= 1 s
    (tracing, XLA compilation, oneDNN primitives, allocators)."""
    fn, setup = _contender(name, kind)
    t0, n = time.perf_counter(), 0
    while n < 5 or time.perf_counter() - t0 < 1.0:
        fn()
        n += 1
    seconds = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t)
    return {"seconds": seconds, "setup_seconds": setup}


def bench_speed(name: str, rounds: int, calls: int = 15, contenders: list[str] | None = None
                ) -> dict:
    """Batch-1 timings of forward and forward + input gradient, each contender in its own
    process, the processes alternated over ``rounds`` (the order rotated each round).

    One process per runtime, because the runtimes disturb each other inside one process on
    2 cores: onnxruntime's worker threads keep spinning after a run and slowed the next few
    TF calls by up to 2x (measured: the first TF call after an onnxruntime block took 23 ms,
    the eighth 13.6 ms, against 11.5 ms with no onnxruntime session in the process).
    """
    keys = list(contenders or CONTENDERS)
    samples: dict[str, list[float]] = {k: [] for k in keys}
    setup: dict[str, list[float]] = {k: [] for k in keys}
    for r in range(rounds):
        for key in keys[r % len(keys):] + keys[: r % len(keys)]:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.foundation", "--speed-worker", name,
                 CONTENDERS[key], "--calls", str(calls)],
                capture_output=True, text=True, check=False,
                cwd=Path(__file__).resolve().parent.parent,
            )
            if out.returncode:
                raise RuntimeError(f"speed worker {name} / {key} failed:\n{out.stderr[-3000:]}")
            res = json.loads(out.stdout.strip().splitlines()[-1])
            samples[key] += res["seconds"]
            setup[key].append(res["setup_seconds"])
    ms = {k: _median_ms(v) for k, v in samples.items()}
    out = {
        "model": name,
        "rounds": rounds,
        "calls_per_round": calls,
        "median_ms": ms,
        "p10_p90_ms": {k: [float(np.percentile(v, 10) * 1e3), float(np.percentile(v, 90) * 1e3)]
                       for k, v in samples.items()},
    }
    ort = ms.get("onnxruntime forward")
    for key, ratio in (("TF forward", "ratio_tf_vs_ort_forward"),
                       ("TF forward (XLA)", "ratio_tf_xla_vs_ort_forward"),
                       ("TF forward (frozen)", "ratio_tf_frozen_vs_ort_forward")):
        if ort and key in ms:
            out[ratio] = ms[key] / ort
    if "TF forward (frozen)" in setup:
        out["freeze_seconds"] = float(np.median(setup["TF forward (frozen)"]))
    if "PyTorch forward+grad" in ms and "TF forward+grad" in ms:
        out["ratio_tf_vs_torch_forward_grad"] = ms["TF forward+grad"] / ms["PyTorch forward+grad"]
    return out


_PROBE = r"""
import json, sys, time
import psutil
import numpy as np
import tensorflow as tf
import onnx
from converters import onnx_to_tf
tf.constant(1.0) + 1  # start the runtime before measuring
proc = psutil.Process()
base = proc.memory_info().rss
t0 = time.perf_counter()
model = onnx_to_tf.load(sys.argv[1])
seconds = time.perf_counter() - t0
# VmHWM: this process's own peak resident memory (ru_maxrss would also count the parent's
# peak, which a child inherits across fork/exec)
status = open("/proc/self/status").read()
peak = int(next(l for l in status.splitlines() if l.startswith("VmHWM")).split()[1]) * 1024
weights = sum(int(np.prod(v.shape)) * 4 for v in model.onnx_variables.values())
print(json.dumps({"seconds": seconds, "weights_bytes": weights, "rss_before": base,
                  "rss_after": proc.memory_info().rss, "peak_rss": peak}))
"""


def bench_import(name: str = "vgg16") -> dict:
    """Import time and memory in a fresh interpreter (so the peak belongs to the import)."""
    import model_zoo

    path = model_zoo.load(name)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)], capture_output=True, text=True, check=True
    )
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["model"] = name
    res["file_bytes"] = path.stat().st_size
    res["peak_copies_of_weights"] = (res["peak_rss"] - res["rss_before"]) / res["weights_bytes"]
    res["held_copies_after"] = (res["rss_after"] - res["rss_before"]) / res["weights_bytes"]
    return res


def bench_parity(models: list[str]) -> list[dict]:
    from converters.crosscheck import crosscheck

    reports = []
    for name in models:
        _, shape = model_path_and_shape(name)  # the file's own layout (NHWC for Keras files)
        x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
        t0 = time.perf_counter()
        report = crosscheck(name, x)
        d = report.to_dict()
        d["seconds_total"] = time.perf_counter() - t0
        reports.append(d)
        print(report.table(), flush=True)
    return reports


def markdown(results: dict) -> str:
    lines = [
        "# Foundation benchmark",
        "",
        f"Machine: {results['machine']}",
        "",
        "## Parity (batch 1; max |diff| / max |reference|)",
        "",
        "| model | input | fwd TF vs ORT | fwd PyTorch vs ORT | grad TF vs PyTorch (f32) "
        "| grad (f64) | ReLU kinks | ok |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results["parity"]:
        rel = {row["what"]: row["max_rel"] for row in r["rows"]}
        lines.append(
            f"| {r['model']} | {tuple(r['input_shape'])} | "
            f"{rel['forward TF vs onnxruntime']:.1e} | "
            f"{rel['forward PyTorch vs onnxruntime']:.1e} | "
            f"{rel['input gradient TF vs PyTorch']:.1e} | "
            f"{rel['input gradient TF vs PyTorch (float64)']:.1e} | {r['relu_near_kink']} | "
            f"{'yes' if r['ok'] else 'NO'} |"
        )
    lines += [
        "",
        "## Speed (batch 1, median ms; each contender in its own process, the processes "
        "alternated over rounds)",
        "",
        "| model | ORT fwd | TF fwd | TF fwd XLA | TF fwd frozen | PyTorch fwd | TF fwd+grad | "
        "PyTorch fwd+grad | TF/ORT fwd | TF frozen/ORT fwd (target <= 1.3) | "
        "TF/PyTorch fwd+grad (target <= 1.0) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in results["speed"]:
        m = s["median_ms"]
        lines.append(
            f"| {s['model']} | {m['onnxruntime forward']:.1f} | {m['TF forward']:.1f} | "
            f"{m['TF forward (XLA)']:.1f} | {m['TF forward (frozen)']:.1f} | "
            f"{m['PyTorch forward']:.1f} | "
            f"{m['TF forward+grad']:.1f} | {m['PyTorch forward+grad']:.1f} | "
            f"{s['ratio_tf_vs_ort_forward']:.2f} | {s['ratio_tf_frozen_vs_ort_forward']:.2f} | "
            f"{s['ratio_tf_vs_torch_forward_grad']:.2f} |"
        )
    lines += [
        "",
        "Spread (p10 - p90 ms): "
        + "; ".join(
            f"{s['model']}: " + ", ".join(
                f"{k} {lo:.1f} - {hi:.1f}" for k, (lo, hi) in s["p10_p90_ms"].items()
                if k in ("onnxruntime forward", "TF forward", "TF forward (frozen)"))
            for s in results["speed"] if "p10_p90_ms" in s)
        + ".",
        "",
        "TF fwd is `model(x)` (variables, differentiable); TF fwd frozen is `model.freeze(shape)`",
        "(weights baked in as constants, forward only; loading and freezing took "
        + ", ".join(f"{s['model']} {s['freeze_seconds']:.1f} s" for s in results["speed"])
        + "). "
        + ", ".join(f"{s['model']} {s['rounds']} rounds x {s['calls_per_round']} calls"
                    for s in results["speed"])
        + " per contender. One process per runtime: inside one process onnxruntime's worker "
        "threads keep spinning after a run and slowed the following TF calls by up to 2x on "
        "2 cores.",
    ]
    imp = results.get("import")
    if imp:
        lines += [
            "",
            "## Import",
            "",
            f"{imp['model']}: {imp['weights_bytes'] / 2**20:.0f} MiB of weights imported in "
            f"{imp['seconds']:.2f} s (target < 10 s); peak extra memory "
            f"{imp['peak_copies_of_weights']:.2f} x the weights (target <= 2), "
            f"{imp['held_copies_after']:.2f} x held afterwards.",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import model_zoo

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.foundation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small models, few rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--speed-only", action="store_true", help="re-time the speed rows and "
                        "keep the parity and import figures of the last full run")
    parser.add_argument("--speed-worker", nargs=2, metavar=("MODEL", "CONTENDER"),
                        help=argparse.SUPPRESS)  # one contender's timings, as JSON on stdout
    parser.add_argument("--calls", type=int, default=15, help="timed calls per contender and "
                        "round (default 15)")
    args = parser.parse_args(argv)
    if args.speed_worker:
        print(json.dumps(speed_worker(*args.speed_worker, args.calls)))
        return 0
    rounds = args.rounds or (2 if args.quick else 4)
    if args.speed_only:
        path = args.out / "foundation.json"
        if not path.is_file():
            parser.error(f"--speed-only needs a previous full run's {path}")
        results = json.loads(path.read_text())
        results["speed"] = []
        for name in ["resnet18", "vgg16"]:
            print(f"timing {name} ({rounds} rounds of one process per contender)...", flush=True)
            results["speed"].append(bench_speed(name, rounds, args.calls))
        path.write_text(json.dumps(results, indent=2))
        md = markdown(results)
        (args.out / "foundation.md").write_text(md)
        print(md)
        return 0
    parity_models = (
        ["resnet20_cifar", "lenet_dlg", "keras_cnn"] if args.quick else model_zoo.available()
    )
    speed_models = ["resnet18"] if args.quick else ["resnet18", "vgg16"]
    results = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, "
        f"{platform.python_version()}",
        "parity": bench_parity(parity_models),
        "speed": [],
    }
    for name in speed_models:
        print(f"timing {name} ({rounds} rounds of one process per contender)...", flush=True)
        results["speed"].append(bench_speed(name, rounds, args.calls))
    if not args.quick:
        results["import"] = bench_import("vgg16")
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "foundation_quick" if args.quick else "foundation"
    (args.out / f"{stem}.json").write_text(json.dumps(results, indent=2))
    md = markdown(results)
    (args.out / f"{stem}.md").write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
