"""Gradient-inversion quality: DLG on LeNet, and the GradInversion ablation on ResNet-20.

    python -m benchmarks.gradient_inversion            # full run (~2 hours on 2 cores)
    python -m benchmarks.gradient_inversion --quick    # toy settings, to check the script

Writes ``benchmarks/results/gradient_inversion.json`` and ``.md`` and prints the tables.
(Label restoration: ``benchmarks/label_restoration.py``; the speed of one GradInversion step
against PyTorch: ``benchmarks/gradient_inversion_speed.py``; Inverting Gradients and
GradInversion beside breaching on the same gradient and budget, and the loops' speed:
``benchmarks/gradient_inversion_anchor.py``.)

Targets (issue "Gradient inversion"):
- DLG on ``lenet_dlg``, one CIFAR image, batch 1: PSNR >= 30 dB in the median of 10 images;
- GradInversion on ``resnet20_cifar``, batch 4 and 8: an ablation (gradient loss only; + TV/L2;
  + BN prior; + group consistency with a plain mean; + registration) with PSNR and LPIPS,
  each added term not making the mean worse -- reported as measured, whatever it is.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks import write_results

from .gradient_inversion_report import RESULTS, UNTRAINED_PNG, ablation_from_sweep, markdown

PAPER_STEPS = 20_000  # GradInversionConfig.paper()'s budget

ABLATION = (
    ("gradient loss only", {"tv_weight": 0.0, "l2_weight": 0.0, "bn_weight": 0.0,
                            "group_weight": 0.0}),
    ("+ TV / L2", {"bn_weight": 0.0, "group_weight": 0.0}),
    ("+ BN prior", {"group_weight": 0.0}),
    ("+ group consistency (plain mean)", {"registration": "none"}),
    ("+ registration (ECC affine)", {"registration": "ecc"}),
)


def bench_dlg(n_images: int, steps: int) -> dict:
    import model_zoo
    from converters import onnx_to_tf
    from tf_impl.gradient_inversion import client_gradient
    from tf_impl.gradient_inversion.dlg import DLGConfig, dlg
    from tf_impl.metrics import psnr

    model = onnx_to_tf.load(model_zoo.load("lenet_dlg"))
    pixels, y = model_zoo.data.cifar10("test", n=n_images, normalize=False)
    rows = []
    for i in range(n_images):
        shared = client_gradient(model, pixels[i : i + 1], y[i : i + 1])
        r = dlg(model, shared, DLGConfig().with_(steps=steps, progress=False))
        p = float(np.asarray(psnr(pixels[i : i + 1], r.image))[0])
        rows.append({"image": i, "label": int(y[i]), "restored": r.extra["labels"][0],
                     "psnr": p, "seconds": round(r.seconds, 1),
                     "final_loss": r.history["loss"][-1]})
        print(f"  DLG image {i}: PSNR {p:.2f} dB, label {r.extra['labels'][0]} (true {y[i]}), "
              f"{r.seconds:.1f} s", flush=True)
    return {"rows": rows, "median_psnr": float(np.median([r["psnr"] for r in rows])),
            "label_accuracy": float(np.mean([r["label"] == r["restored"] for r in rows])),
            "steps": steps}


BN_SWEEP = tuple((f"TV / L2 + BN prior {w:g}", {"bn_weight": w, "group_weight": 0.0})
                 for w in (0.0, 1e-3, 1e-2, 1e-1))


def bench_ablation(batch: int, steps: int, seeds: int, distance: str = "l2",
                   n_batches: int = 1, configurations=ABLATION, preset: str = "quick",
                   record=None) -> dict:
    """Every configuration on ``n_batches`` disjoint batches of CIFAR-10 test images (the
    first ``batch`` images, the next ``batch``, ...); per-image scores are kept so that each
    row can be compared with the one before it image by image. ``preset``: ``"quick"`` (the
    summed priors, the group term from a third of the run) or ``"paper"``
    (``GradInversionConfig.paper()``'s weights and group schedule); ``record(section)`` after
    every row (a long run keeps the rows it finished)."""
    import tensorflow as tf

    import model_zoo
    from converters import onnx_to_tf
    from tf_impl.gradient_inversion import client_gradient
    from tf_impl.gradient_inversion.gradinversion import GradInversionConfig, grad_inversion
    from tf_impl.gradient_inversion.labels import restore_labels
    from tf_impl.gradient_inversion.scoring import score

    model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))
    total = batch * n_batches
    pixels, y = model_zoo.data.cifar10("test", n=total, normalize=False)
    x, _ = model_zoo.data.cifar10("test", n=total)
    batches = []
    for i in range(n_batches):
        part = slice(i * batch, (i + 1) * batch)
        shared = client_gradient(model, x[part], y[part])
        # the client's softmax (cross_entropy differentiates log_softmax): exactly 1.0 where
        # its p - y is exactly zero, which tf.nn.softmax's rounding almost never gives
        probs = np.asarray(tf.exp(tf.nn.log_softmax(model(x[part]))))
        batches.append({
            "labels": y[part].tolist(),
            "restored_labels": restore_labels(model, shared).tolist(),
            # 0: the sample leaves no trace in the gradient
            "one_minus_p_label": (1.0 - probs[np.arange(batch), y[part]]).tolist(),
            "shared": shared, "x": x[part], "pixels": pixels[part], "y": y[part],
        })
    rows = []
    for name, change in configurations:
        if preset == "paper":
            cfg = GradInversionConfig.paper(seeds=seeds, distance=distance, **change).with_(
                steps=steps, progress=False)
        else:
            cfg = GradInversionConfig(seeds=seeds, distance=distance, group_start=steps // 3,
                                      group_every=max(steps // 6, 1), **change).with_(
                steps=steps, progress=False)
        t0 = time.perf_counter()
        per_image = {"psnr": [], "ssim": [], "lpips": []}
        for b in batches:  # true labels: isolate the priors
            r = grad_inversion(model, b["shared"], cfg, labels=b["y"])
            s = score(b["pixels"], r.image)
            for k in per_image:
                per_image[k] += s[k]
        rows.append({"config": name, **{k: float(np.mean(v)) for k, v in per_image.items()},
                     "per_image": per_image, "seconds": round(time.perf_counter() - t0, 1)})
        print(f"  batch {batch} x {n_batches}, {distance}, {name}: PSNR {rows[-1]['psnr']:.2f}, "
              f"LPIPS {rows[-1]['lpips']:.3f} ({rows[-1]['seconds']:.0f} s)", flush=True)
        if record is not None:
            record(_ablation_record(batch, n_batches, steps, seeds, distance, preset, batches,
                                    rows))
    return _ablation_record(batch, n_batches, steps, seeds, distance, preset, batches, rows)


def _ablation_record(batch, n_batches, steps, seeds, distance, preset, batches, rows) -> dict:
    from tf_impl.gradient_inversion.labels import label_accuracy

    return {"batch": batch, "n_batches": n_batches, "steps": steps, "seeds": seeds,
            "distance": distance, "preset": preset,
            "labels": [b["labels"] for b in batches],
            "restored_labels": [b["restored_labels"] for b in batches],
            "label_accuracy": float(np.mean([label_accuracy(b["y"], np.array(b["restored_labels"]))
                                             for b in batches])),
            "one_minus_p_label": [v for b in batches for v in b["one_minus_p_label"]],
            "rows": rows}


UNTRAINED_TV = 1e-3  # the TV weight that works on the untrained victim (the demo's; 0.2 blurs)
CHECKPOINTS = Path("runs/benchmarks")  # the untrained runs' checkpoints (git-ignored)


def bench_untrained(n_images: int, steps: int, record, previous: dict | None = None,
                    checkpoints: Path | None = None, restarts: int = 1) -> dict:
    """Inverting Gradients on an untrained (seeded init) resnet20_cifar, BN eval, batch 1,
    labels restored from the gradient, one CIFAR-10 test image at a time; ``record(section)``
    after every image. ``restarts`` trials per image, the one with the lowest gradient distance
    scored (the paper's protocol); with ``checkpoints`` every trial's best iterate is scored
    too (``trial_lpips``), so the gain of the restarts shows on the same images. Images
    already in ``previous`` (same budget and restarts) are kept; with ``checkpoints`` each
    trial writes its checkpoint there and resumes from it (a run with more restarts reuses
    the trials already finished)."""
    import model_zoo
    from converters import onnx_to_tf
    from tf_impl import images as imgs
    from tf_impl.gradient_inversion import client_gradient
    from tf_impl.gradient_inversion.inverting_gradients import (
        InvertingGradientsConfig,
        inverting_gradients,
    )
    from tf_impl.gradient_inversion.scoring import score
    from tf_impl.gradient_inversion.trials import trial_path

    model = onnx_to_tf.load(model_zoo.load("resnet20_cifar", pretrained=False))
    mean, std = imgs.preprocessing_of(model)
    pixels, y = model_zoo.data.cifar10("test", n=n_images, normalize=False)
    cfg = InvertingGradientsConfig.paper(steps=steps, tv_weight=UNTRAINED_TV, restarts=restarts,
                                         progress=False)
    same = previous and (previous.get("steps"), previous.get("restarts", 1)) == (steps, restarts)
    keep = previous if same else {}
    section = {"model": "resnet20_cifar", "pretrained": False, "bn_mode": "eval", "batch": 1,
               "steps": steps, "tv_weight": UNTRAINED_TV, "restarts": restarts,
               "rows": keep.get("rows", [])}
    for i in range(len(section["rows"]), n_images):
        shared = client_gradient(model, imgs.normalize(pixels[i:i + 1], mean, std), y[i:i + 1],
                                 bn_mode="eval")
        ckpt = None if checkpoints is None else _untrained_checkpoint(checkpoints, steps, i)
        resume = ckpt is not None and trial_path(ckpt, 0).is_file()
        r = inverting_gradients(model, shared, cfg, checkpoint=ckpt, resume=resume)
        s = score(pixels[i:i + 1], r.best_image)
        row = {"image": i, "label": int(y[i]), "restored": r.extra["labels"][0],
               "psnr": s["psnr"][0], "ssim": s["ssim"][0], "lpips": s["lpips"][0],
               "seconds": round(r.seconds, 1), "stopped": r.stopped,
               "trials": r.extra.get("trials", [r.extra["gradient_distance"]]),
               "best_trial": r.extra.get("best_trial", 0)}
        if ckpt is not None:
            row["trial_lpips"] = [
                score(pixels[i:i + 1], _best_of_trial(ckpt, k, mean, std))["lpips"][0]
                for k in range(len(row["trials"]))]
        section["rows"].append(row)
        print(f"  untrained resnet20, image {i}: PSNR {s['psnr'][0]:.2f}, LPIPS "
              f"{s['lpips'][0]:.3f} (trial {row['best_trial'] + 1} of {len(row['trials'])}), "
              f"label {r.extra['labels'][0]} (true {y[i]}), {r.seconds:.0f} s", flush=True)
        record(section)
    return section


def _best_of_trial(checkpoint: Path, trial: int, mean, std) -> np.ndarray:
    """Trial ``trial``'s best iterate in pixels, read from its checkpoint file."""
    from tf_impl import images as imgs
    from tf_impl.gradient_inversion.trials import trial_path

    x = np.load(trial_path(checkpoint, trial))["best/x"]
    return np.clip(imgs.denormalize(x, mean, std), 0, 1)


def _untrained_checkpoint(checkpoints: Path, steps: int, image: int) -> Path:
    """The checkpoint name of the untrained-victim run on test image ``image``."""
    return checkpoints / f"untrained-{steps}-image{image}"


def untrained_figure(section: dict, checkpoints: Path, out: Path) -> bool:
    """Originals (top) and the best iterates (bottom) of the untrained-victim runs, read
    from their checkpoints; False (nothing drawn) when a checkpoint is missing."""
    import model_zoo
    from tf_impl.gradient_inversion.trials import trial_path
    from tf_impl.report import caption, image_grid_figure

    rows = section["rows"]
    ckpts = [_untrained_checkpoint(checkpoints, section["steps"], r["image"]) for r in rows]
    best = [r.get("best_trial", 0) for r in rows]
    if not rows or not all(trial_path(c, k).is_file() for c, k in zip(ckpts, best)):
        return False
    prep = model_zoo.info("resnet20_cifar").preprocessing
    pixels, _ = model_zoo.data.cifar10("test", n=max(r["image"] for r in rows) + 1,
                                       normalize=False)
    recovered = [_best_of_trial(c, k, prep.mean, prep.std)[0] for c, k in zip(ckpts, best)]
    panels = [(f"CIFAR-10 test #{r['image']}", pixels[r["image"]]) for r in rows]
    panels += [(caption(f"recovered (label {r['restored']})", r), rec)
               for r, rec in zip(rows, recovered)]
    image_grid_figure(out, panels, ncols=len(rows), title=(
        f"Inverting Gradients, untrained resnet20_cifar (BN eval),\nbatch 1, "
        f"{section['steps']} iterations, TV {section['tv_weight']:g}"
        + (f", best of {section['restarts']} trials" if section.get("restarts", 1) > 1 else "")))
    return True


def _ablation_cell(rows: list, batch: int, steps: int, seeds: int, distance: str,
                   n_batches: int, paper: bool, record) -> None:
    """One ablation table (batch size x distance), recorded as it grows."""
    print(f"GradInversion ablation, batch {batch} x {n_batches}, {distance} distance, "
          f"{steps} steps{' (paper preset)' if paper else ''}...", flush=True)
    rows.append(None)
    rows[-1] = bench_ablation(batch, steps, seeds, distance, n_batches,
                              preset="paper" if paper else "quick", record=record)


def _budget(args) -> tuple[int, int, tuple[int, ...], int, int, int]:
    """(DLG images, DLG steps, ablation batch sizes, steps, seeds, batches per row)."""
    if args.quick:
        dlg_n, dlg_steps, batches, steps, seeds, n_batches = 2, 5, (2,), 4, 2, 1
    else:
        dlg_n, dlg_steps, batches, steps, seeds, n_batches = 10, 300, (4, 8), 400, 2, 3
    steps = args.steps or steps
    if args.paper_ablation:
        steps = args.steps or (4 if args.quick else PAPER_STEPS)
    return dlg_n, dlg_steps, batches, steps, args.seeds or seeds, args.batches or n_batches


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gradient_inversion",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--distances", default="l2,cosine",
                        help="gradient distances of the ablation (default: %(default)s)")
    parser.add_argument("--steps", type=int, help="Adam steps per ablation row (default 400)")
    parser.add_argument("--batches", type=int, help="disjoint batches per ablation row "
                        "(default 3; 1 with --quick)")
    parser.add_argument("--sweep-only", action="store_true",
                        help="run only the BN-weight sweep and keep the DLG and ablation figures "
                        "of the last full run")
    parser.add_argument("--ablation-only", action="store_true",
                        help="run only the ablation and keep the DLG and BN-sweep figures of the "
                        "last full run")
    parser.add_argument("--untrained-only", action="store_true",
                        help="run only Inverting Gradients on the untrained ResNet-20 (batch 1, "
                        "--untrained-steps, --untrained-images) and keep the other figures; "
                        "images already measured at that budget are kept, and each run "
                        "checkpoints under runs/benchmarks/ and resumes from there")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the .md from the last run's JSON and the anchor "
                        "benchmark's result files, running nothing")
    parser.add_argument("--untrained-steps", type=int, default=24_000,
                        help="iterations of the untrained-victim runs (default: the paper's "
                        "24,000)")
    parser.add_argument("--untrained-images", type=int, default=4)
    parser.add_argument("--untrained-restarts", type=int, default=1,
                        help="trials per image, the lowest gradient distance kept (default 1; "
                        "finished trials are reused from the checkpoints)")
    parser.add_argument("--paper-ablation", action="store_true",
                        help="with --ablation-only: the ablation with the weights and budget "
                        "of GradInversionConfig.paper() (20,000 steps unless --steps; about "
                        "0.1 s a step at batch 8 x 2 seeds on 2 CPU cores, so hours per row: "
                        "a GPU job), kept beside the short ablation")
    parser.add_argument("--seeds", type=int, help="seeds per ablation run (default 2)")
    parser.add_argument("--from-sweep", type=Path, metavar="FOLDER",
                        help="render the paper-budget ablation from a sweep of "
                        "benchmarks/grids/gradinversion_ablation.yaml (python -m tf_impl sweep "
                        "... --out FOLDER, e.g. on a cluster or a GPU box) and keep the other "
                        "figures of the last full run")
    return parser


def main(argv: list[str] | None = None) -> int:
    import converters  # noqa: F401  (quiet TF logs)

    parser = _parser()
    args = parser.parse_args(argv)
    dlg_n, dlg_steps, batches, steps, seeds, n_batches = _budget(args)
    distances = [d.strip() for d in args.distances.split(",") if d.strip()]
    previous = args.out / ("gradient_inversion_quick.json" if args.quick
                           else "gradient_inversion.json")
    kept = (args.sweep_only or args.ablation_only or args.untrained_only or args.render_only
            or args.from_sweep)
    if kept:
        if not previous.is_file():
            parser.error("--sweep-only, --ablation-only, --untrained-only, --render-only and "
                         f"--from-sweep need a previous full run's {previous}")
        res = json.loads(previous.read_text())
    else:
        print("DLG...", flush=True)
        res = {"machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, "
               f"{platform.python_version()}", "dlg": bench_dlg(dlg_n, dlg_steps)}

    def save(key, index=None):
        def record(section):
            if index is None:
                res[key] = section
            else:
                res[key][index] = section
            write_results(args.out, "gradient_inversion", args.quick, res, markdown(res),
                          echo=False)
        return record

    if args.from_sweep:
        res["ablation_paper"] = ablation_from_sweep(args.from_sweep)
        write_results(args.out, "gradient_inversion", args.quick, res, markdown(res))
        return 0
    if args.render_only:
        if res.get("untrained") and not args.quick:
            untrained_figure(res["untrained"], CHECKPOINTS, args.out / UNTRAINED_PNG)
        write_results(args.out, "gradient_inversion", args.quick, res, markdown(res))
        return 0
    if args.untrained_only:
        u_steps = 3 if args.quick else args.untrained_steps
        n = 1 if args.quick else args.untrained_images
        print(f"Inverting Gradients on the untrained ResNet-20, {n} images x {u_steps} "
              f"iterations x {args.untrained_restarts} trials...", flush=True)
        bench_untrained(n, u_steps, save("untrained"), res.get("untrained"),
                        None if args.quick else CHECKPOINTS, restarts=args.untrained_restarts)
        if not args.quick:
            untrained_figure(res["untrained"], CHECKPOINTS, args.out / UNTRAINED_PNG)
        write_results(args.out, "gradient_inversion", args.quick, res, markdown(res))
        return 0
    if not args.sweep_only:
        key = "ablation_paper" if args.paper_ablation else "ablation"
        res[key] = []
        for distance in distances:
            for b in batches:
                _ablation_cell(res[key], b, steps, seeds, distance, n_batches,
                               args.paper_ablation, save(key, len(res[key])))
    if not args.ablation_only:
        print(f"BN-weight sweep, batch {batches[-1]} x {n_batches}, cosine distance...",
              flush=True)
        res["bn_sweep"] = bench_ablation(batches[-1], steps, seeds, "cosine", n_batches,
                                         configurations=BN_SWEEP)
    write_results(args.out, "gradient_inversion", args.quick, res, markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
