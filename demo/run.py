"""The demo's command line (``python -m demo``; see :mod:`demo`)."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import demo

from .page import write_outputs
from .parity import run_model, top1_text
from .techniques import ATTR_RUNS, run_feature_inversion, run_gradient_inversion, run_visualization


def main(argv: list[str] | None = None) -> int:
    import model_zoo

    parser = argparse.ArgumentParser(prog="python -m demo",
                                     description=demo.__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    parser.add_argument("--models", help="comma-separated zoo names (default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="128x128 photos for models with dynamic height/width; techniques "
                        "at toy sizes")
    parser.add_argument("--no-techniques", action="store_true",
                        help="only the parity table (skip feature inversion & co.)")
    args = parser.parse_args(argv)
    names = model_zoo.available()
    if args.models:
        wanted = [m.strip() for m in args.models.split(",") if m.strip()]
        unknown = [m for m in wanted if m not in names]
        if unknown or not wanted:
            what = f"unknown model(s) {', '.join(unknown)}" if unknown else "no model names given"
            print(f"error: {what}; valid models: {', '.join(names)}", file=sys.stderr)
            return 2
        names = wanted
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=args.out).close()
    except OSError as err:
        print(f"error: cannot write to {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.filterwarnings("ignore", module="onnx2torch")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)  # retracing notices per shape
    start, results = time.perf_counter(), []
    for i, name in enumerate(names, 1):
        results.append(res := run_model(name, args.quick, args.out))
        gc.collect()  # the big models of this one go before the next loads
        status = "pass" if res["ok"] else ("ERROR" if "error" in res else "FAIL")
        if res["ok"] and not all(w["ok"] for w in res["rows"]):
            status += " (float32 gradient excused: ReLU inputs at the kink, float64 agrees)"
        top1 = f"  top-1 TF vs ORT: {top1_text(res)}" if res.get("top1") else ""
        print(f"[{i}/{len(names)}] {name}: {status} in {res['total_seconds']:.1f} s{top1}")
        print(res.get("table", res.get("error")), flush=True)
    techniques = []
    if not args.no_techniques:
        print("feature inversion (VGG16 features, astronaut)...", flush=True)
        techniques.append(run_feature_inversion(args.out, args.quick))
        print("gradient inversion (DLG on LeNet, Inverting Gradients on an untrained ResNet-20, "
              "GradInversion on the trained one)...", flush=True)
        techniques.append(run_gradient_inversion(args.out, args.quick))
        print("visualization gallery (saliency, class viz, adversarial, DeepDream, style)...",
              flush=True)
        techniques.append(run_visualization(args.out, args.quick))
        print("attribution (IG, IDGI, FullGrad, insertion/deletion) and HDR-GAN...", flush=True)
        techniques.append(run_visualization(args.out, args.quick, technique="attribution",
                                            runs=ATTR_RUNS))
    total = time.perf_counter() - start
    write_outputs(args.out, results, total, techniques)
    failed = [r["model"] for r in results if not r["ok"]]
    for t in techniques:
        print(f"{t['technique']}: {'done' if t['ok'] else 'FAILED'} in {t['seconds']:.0f} s")
    print(f"{len(names) - len(failed)}/{len(names)} models pass in {total:.0f} s; wrote "
          f"{args.out / 'index.html'}")
    failed += [t["technique"] for t in techniques if not t["ok"]]
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


