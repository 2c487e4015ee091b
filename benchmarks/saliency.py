"""Saliency, guided backprop and occlusion: parity with Captum, and the speed of batched occlusion.

    python -m benchmarks.saliency            # full run (a few minutes on 2 cores)
    python -m benchmarks.saliency --quick    # 4 images, 1 round (checks the script)

Writes ``benchmarks/results/saliency.json`` and ``saliency.md`` (``_quick`` with ``--quick``)
and prints the tables.

1. Parity (target: max relative error <= 1e-4). ``tf_impl.visualization.saliency`` against
   Captum 0.9 on the onnx2torch copy of the same ONNX file, on the first 20 CIFAR-10 test
   images, each explained for its predicted class: resnet20_cifar (trained, BatchNorm, 19 Relu
   nodes) and keras_cnn (a Keras graph through tf2onnx). Error per image: max |TF - Captum| /
   max |Captum| of the map (saliency: max over channels of |gradient|; guided backprop: the
   signed gradient; occlusion: the map, window 8, stride 4, mid-grey pixel baseline); the
   table gives the largest over the images. The same calls are timed, TF and Captum in
   interleaved rounds.
2. Occlusion speed on resnet20_cifar (target: batched >= 5x faster than one window per forward
   pass). The same window and stride (4 and 2: 225 windows per image), ``batch_size`` 64
   against 1, both through ``tf_impl``'s occlusion; Captum with ``perturbations_per_eval`` 64
   and 1 beside them. Interleaved rounds, median seconds per image.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import converters  # noqa: F401  (blocks triton before torch: see converters/triton_guard.py)
from benchmarks import write_results

RESULTS = Path(__file__).resolve().parent / "results"
TOL = 1e-4


def _rel_per_image(got, want) -> list[float]:
    got, want = np.asarray(got), np.asarray(want)
    return [float(np.max(np.abs(g - w)) / np.max(np.abs(w))) for g, w in zip(got, want)]


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def bench_parity(name: str, n: int, rounds: int) -> dict:
    import model_zoo
    from converters import onnx_to_tf
    from converters.torch_reference import saliency as ref
    from tf_impl import images as imgs
    from tf_impl.visualization import saliency as sal

    path = model_zoo.load(name)
    model, net = onnx_to_tf.load(path), ref.load_module(path)
    pixels, _ = model_zoo.data.cifar10("test", n=n, normalize=False)
    mean, std = imgs.preprocessing_of(model)
    x = imgs.normalize(pixels, mean, std)
    cfg = sal.OcclusionConfig(window=8, stride=4, baseline=0.5, batch_size=64)
    base = imgs.normalize(np.full((1, 3, 1, 1), 0.5, np.float32), mean, std).reshape(-1)
    targets = sal.saliency(model, pixels).predicted  # warm-up and the targets
    methods = {
        "saliency": (lambda: sal.saliency(model, pixels, targets).map,
                     lambda: ref.saliency_torch(net, x, targets)["map"]),
        "guided backprop": (lambda: sal.guided_backprop(model, pixels, targets).attribution,
                            lambda: ref.guided_backprop_torch(net, x, targets)),
        "occlusion": (lambda: sal.occlusion(model, pixels, targets, cfg).map,
                      lambda: ref.occlusion_torch(net, x, targets, 8, 4, base,
                                                  batch_size=64)[:, 0]),
    }
    rows = []
    for method, (tf_fn, torch_fn) in methods.items():
        tf_fn(), torch_fn()  # warm-up: tracing
        times = {"tf": [], "captum": []}
        for _ in range(rounds):
            got, t_tf = _timed(tf_fn)
            want, t_pt = _timed(torch_fn)
            times["tf"].append(t_tf)
            times["captum"].append(t_pt)
        errs = _rel_per_image(got, want)
        ms_tf, ms_pt = (float(np.median(times[k]) * 1e3) for k in ("tf", "captum"))
        rows.append({"model": name, "method": method, "images": n,
                     "max_rel_error": max(errs), "median_rel_error": float(np.median(errs)),
                     "ok": max(errs) <= TOL, "tf_ms": ms_tf, "captum_ms": ms_pt,
                     "ratio_tf_vs_captum": ms_tf / ms_pt})
        print(f"  {name} {method}: max rel error {max(errs):.2e}, TF {ms_tf:.0f} ms, Captum "
              f"{ms_pt:.0f} ms", flush=True)
    cov = ref.relu_coverage(path, net)
    return {"rows": rows, "relu_coverage": cov}


def bench_occlusion_speed(n: int, rounds: int, window: int, stride: int, batch: int) -> dict:
    import torch

    import model_zoo
    from converters import onnx_to_tf
    from converters.torch_reference import saliency as ref
    from tf_impl import images as imgs
    from tf_impl.attribution.occlusion import window_starts
    from tf_impl.visualization import saliency as sal

    path = model_zoo.load("resnet20_cifar")
    model, net = onnx_to_tf.load(path), ref.load_module(path)
    pixels, _ = model_zoo.data.cifar10("test", n=n, normalize=False)
    mean, std = imgs.preprocessing_of(model)
    x = imgs.normalize(pixels, mean, std)
    base = imgs.normalize(np.full((1, 3, 1, 1), 0.5, np.float32), mean, std).reshape(-1)
    targets = sal.saliency(model, pixels).predicted
    cfg = sal.OcclusionConfig(window=window, stride=stride, baseline=0.5, batch_size=batch)
    windows = len(window_starts(32, window, stride)) ** 2
    contenders = {
        f"TF batch {batch}": lambda: sal.occlusion(model, pixels, targets, cfg).map,
        "TF batch 1": lambda: sal.occlusion(model, pixels, targets, cfg.with_(batch_size=1)).map,
        f"Captum batch {batch}": lambda: ref.occlusion_torch(net, x, targets, window, stride,
                                                            base, batch_size=batch),
        "Captum batch 1": lambda: ref.occlusion_torch(net, x, targets, window, stride, base,
                                                      batch_size=1),
    }
    outs = {k: fn() for k, fn in contenders.items()}  # warm-up: tracing
    agree = float(np.max(np.abs(outs[f"TF batch {batch}"] - outs["TF batch 1"]))
                  / np.max(np.abs(outs["TF batch 1"])))
    samples: dict[str, list[float]] = {k: [] for k in contenders}
    for _ in range(rounds):
        for key, fn in contenders.items():
            _, dt = _timed(fn)
            samples[key].append(dt / n)
    s = {k: float(np.median(v)) for k, v in samples.items()}
    return {
        "model": "resnet20_cifar", "images": n, "rounds": rounds, "window": window,
        "stride": stride, "windows_per_image": windows, "batch_size": batch,
        "seconds_per_image": s,
        "speedup_tf": s["TF batch 1"] / s[f"TF batch {batch}"],
        "speedup_captum": s["Captum batch 1"] / s[f"Captum batch {batch}"],
        "ratio_tf_vs_captum_batched": s[f"TF batch {batch}"] / s[f"Captum batch {batch}"],
        "batched_vs_single_rel_diff": agree,
        "torch_threads": torch.get_num_threads(),
    }


def markdown(res: dict) -> str:
    lines = ["# Saliency, guided backprop, occlusion", "", f"Machine: {res['machine']}", "",
             f"## Parity with Captum {res['captum']} (target: max relative error <= {TOL:g})",
             "", "max |TF - Captum| / max |Captum| per image, largest over the images; each "
             "image explained for its predicted class. Times: the whole batch, median of "
             "interleaved rounds.", "",
             "| model | method | images | max rel. error | median | met | TF (ms) | Captum (ms) "
             "| TF / Captum |", "|---|---|---|---|---|---|---|---|---|"]
    for r in res["parity"]:
        lines.append(f"| {r['model']} | {r['method']} | {r['images']} | {r['max_rel_error']:.1e} "
                     f"| {r['median_rel_error']:.1e} | {'yes' if r['ok'] else 'NO'} | "
                     f"{r['tf_ms']:.0f} | {r['captum_ms']:.0f} | {r['ratio_tf_vs_captum']:.2f} |")
    for name, cov in res["relu_coverage"].items():
        lines.append("")
        lines.append(f"{name}: {cov['onnx_relu_nodes']} ONNX Relu nodes, "
                     f"{cov['torch_relu_modules']} nn.ReLU modules in the onnx2torch model "
                     f"(Captum's GuidedBackprop hooks these), {cov['functional_relus']} "
                     "functional relus.")
    s = res["occlusion_speed"]
    b = s["batch_size"]
    sp = s["seconds_per_image"]
    lines += ["", f"## Occlusion speed, {s['model']}: window {s['window']}, stride "
              f"{s['stride']} ({s['windows_per_image']} windows per image), {s['images']} "
              "images, median seconds per image over interleaved rounds", "",
              "| | batch 1 (s) | batch " + str(b) + " (s) | speed-up (target >= 5) |",
              "|---|---|---|---|",
              f"| TF (tf_impl) | {sp['TF batch 1']:.3f} | {sp[f'TF batch {b}']:.3f} | "
              f"{s['speedup_tf']:.1f}x |",
              f"| Captum | {sp['Captum batch 1']:.3f} | {sp[f'Captum batch {b}']:.3f} | "
              f"{s['speedup_captum']:.1f}x |", "",
              f"Batched TF / batched Captum: {s['ratio_tf_vs_captum_batched']:.2f} (PyTorch with "
              f"{s['torch_threads']} intra-op thread, TF with its default pools). Batched and "
              f"one-window maps differ by {s['batched_vs_single_rel_diff']:.1e} (relative). "
              f"Target >= 5x: {'met' if s['speedup_tf'] >= 5 else 'NOT met'}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.saliency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 images, 1 round (checks the "
                        "script)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    import captum
    import torch

    torch.set_num_threads(1)  # beside TF's pools on a small machine (see tests/conftest.py)
    n, rounds = (4, 1) if args.quick else (20, 3)
    print("parity...", flush=True)
    parity, coverage = [], {}
    for name in ("resnet20_cifar", "keras_cnn"):
        p = bench_parity(name, n, rounds)
        parity += p["rows"]
        coverage[name] = p["relu_coverage"]
    print("occlusion speed...", flush=True)
    speed = bench_occlusion_speed(2 if args.quick else 4, 1 if args.quick else 3, 4, 2, 64)
    res = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_version()}",
        "captum": captum.__version__,
        "parity": parity,
        "relu_coverage": coverage,
        "occlusion_speed": speed,
    }
    write_results(args.out, "saliency", args.quick, res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
