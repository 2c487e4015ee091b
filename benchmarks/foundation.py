"""Foundation targets: parity on every zoo model, TF speed beside onnxruntime and PyTorch,
and the cost of importing VGG16.

    python -m benchmarks.foundation            # full run (~10 minutes on 2 cores)
    python -m benchmarks.foundation --quick    # fewer repetitions, small models only

Writes ``benchmarks/results/foundation.json`` and ``foundation.md`` and prints the tables.
Timings are interleaved within a group (one call of each contender per round: onnxruntime
and TF forward; then TF and PyTorch forward+gradient) and summarised by the median, so
machine noise hits the contenders of a group alike; ratios are what to read.

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

import converters  # noqa: F401  (blocks triton before torch: see converters/_compat.py)

RESULTS = Path(__file__).resolve().parent / "results"
BLOCK = 3  # timed calls per contender per round, after one untimed call


def _median_ms(samples: list[float]) -> float:
    return float(np.median(samples) * 1e3)


def bench_speed(name: str, rounds: int, threads: int | None = None) -> dict:
    """Interleaved timings at batch 1 of forward and forward + input gradient."""
    import tensorflow as tf
    import torch

    import model_zoo
    from converters import onnx_to_tf, onnx_to_torch
    from converters.crosscheck import ort_session

    path = model_zoo.load(name)
    shape = list(model_zoo.info(name).input_shape)
    shape[0] = 1
    shape = [224 if d is None else d for d in shape]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    sess = ort_session(path)
    feed = {sess.get_inputs()[0].name: x}
    model = onnx_to_tf.load(path)
    model_xla = onnx_to_tf.load(path, jit_compile=True)
    t0 = time.perf_counter()
    frozen = model.freeze(shape)
    freeze_s = time.perf_counter() - t0
    net = onnx_to_torch.load(path)
    xt = tf.constant(x)
    w = np.random.default_rng(1).standard_normal(sess.run(None, feed)[0].shape).astype(np.float32)
    wt = tf.constant(w)
    w_torch = torch.from_numpy(w)

    @tf.function
    def tf_grad(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            s = tf.reduce_sum(model(x) * wt)
        return tape.gradient(s, x)

    def torch_grad():
        xx = torch.from_numpy(x).requires_grad_(True)
        (net(xx) * w_torch).sum().backward()
        return xx.grad.numpy()

    def torch_forward():
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()

    # Two groups, each timed in interleaved rounds: the forward contenders together, then the
    # forward+gradient ones. Interleaving all six at once lets one runtime's idle threads
    # (still spinning after its call) slow the next one down, which flatters the ratios. For
    # the same reason each round times a block of BLOCK calls per contender and drops the
    # block's first call (onnxruntime's worker threads spin for a while after a run and took
    # ~40 % off the next TF call on 2 cores).
    groups = [
        {
            "onnxruntime forward": lambda: sess.run(None, feed),
            "TF forward": lambda: model(xt).numpy(),
            "TF forward (XLA)": lambda: model_xla(xt).numpy(),
            "TF forward (frozen)": lambda: frozen(xt).numpy(),
        },
        {
            "PyTorch forward": torch_forward,
            "TF forward+grad": lambda: tf_grad(xt).numpy(),
            "PyTorch forward+grad": torch_grad,
        },
    ]
    samples: dict[str, list[float]] = {}
    for group in groups:
        for fn in group.values():  # warm-up: tracing, XLA compilation, allocator
            fn()
            fn()
        for key in group:
            samples[key] = []
        for _ in range(rounds):
            for key, fn in group.items():
                for k in range(BLOCK + 1):
                    t0 = time.perf_counter()
                    fn()
                    if k:
                        samples[key].append(time.perf_counter() - t0)
    ms = {k: _median_ms(v) for k, v in samples.items()}
    return {
        "model": name,
        "input": shape,
        "rounds": rounds,
        "median_ms": ms,
        "ratio_tf_vs_ort_forward": ms["TF forward"] / ms["onnxruntime forward"],
        "ratio_tf_xla_vs_ort_forward": ms["TF forward (XLA)"] / ms["onnxruntime forward"],
        "ratio_tf_frozen_vs_ort_forward": ms["TF forward (frozen)"] / ms["onnxruntime forward"],
        "freeze_seconds": freeze_s,
        "ratio_tf_vs_torch_forward_grad": ms["TF forward+grad"] / ms["PyTorch forward+grad"],
        "torch_threads": torch.get_num_threads(),
    }


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
    import model_zoo
    from converters.crosscheck import crosscheck

    reports = []
    for name in models:
        shape = list(model_zoo.info(name).input_shape)
        shape[0] = 1
        shape = [224 if d is None else d for d in shape]
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
        "## Speed (batch 1, median ms, interleaved rounds of 3 calls per contender within each "
        "group: "
        "ORT + TF forward; PyTorch + TF gradient)",
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
        "TF fwd is `model(x)` (variables, differentiable); TF fwd frozen is `model.freeze(shape)`",
        "(weights baked in as constants, forward only; freezing took "
        + ", ".join(f"{s['model']} {s['freeze_seconds']:.1f} s" for s in results["speed"])
        + ").",
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
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.quick else 8)
    if args.speed_only:
        path = args.out / "foundation.json"
        if not path.is_file():
            parser.error(f"--speed-only needs a previous full run's {path}")
        results = json.loads(path.read_text())
        results["speed"] = []
        for name in ["resnet18", "vgg16"]:
            print(f"timing {name} ({rounds} interleaved rounds)...", flush=True)
            results["speed"].append(bench_speed(name, rounds))
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
        print(f"timing {name} ({rounds} interleaved rounds)...", flush=True)
        results["speed"].append(bench_speed(name, rounds))
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
