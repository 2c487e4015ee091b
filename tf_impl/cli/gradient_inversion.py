"""``gradient-inversion``: recover a private batch and its labels from a shared gradient.

    python -m tf_impl gradient-inversion --model resnet20_cifar --batch 4 \\
        --attack gradinversion --out runs/gi
    python -m tf_impl gradient-inversion --model lenet_dlg --attack dlg --batch 1 --out runs/dlg

Writes ``original_*.png``/``reconstruction_*.png``, ``comparison.png``, ``seeds.png``
(GradInversion), ``history.csv``/``history.png`` and ``result.json``.
"""

from __future__ import annotations

import argparse
import sys

from .common import add_model_options, epilog, exit_status, load_model

ATTACKS = ("gradinversion", "dlg", "idlg", "inverting-gradients")


def add_parsers(sub) -> None:
    """Add ``gradient-inversion`` to argparse subparsers ``sub``."""
    from ..gradient_inversion.gradinversion import GradInversionConfig

    d = GradInversionConfig()
    p = sub.add_parser(
        "gradient-inversion",
        help="recover a private batch and its labels from a shared gradient",
        description="A federated-learning client shares the gradient of its loss on a private "
        "batch (bundled real images); recover the labels (iDLG / GradInversion's column-wise "
        "minimum / a duplicate-aware rule) and the images (DLG, iDLG, Inverting Gradients or "
        "GradInversion). Reconstructions are matched to the originals by LPIPS before scoring.",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_options(p, "resnet20_cifar", help="zoo name or .onnx classifier; lenet_dlg for "
                      "DLG")
    p.add_argument("--attack", choices=ATTACKS, default="gradinversion")
    p.add_argument("--batch", type=int, default=4, help="private batch size (default 4)")
    p.add_argument("--first", type=int, default=0, help="index of the first bundled image "
                   "(CIFAR-10 test set for 32x32 models, photos otherwise)")
    p.add_argument("--labels", choices=("restore", "true"), default="restore",
                   help="restore the labels from the gradient (default) or give the attack the "
                   "true ones")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the "
                   f"attack's; GradInversion {d.optimize.steps}, DLG 300 L-BFGS steps)")
    p.add_argument("--seeds", type=int, default=d.seeds, help="GradInversion seeds (G)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--bn-mode", choices=("eval", "train"), default="eval",
                   help="BatchNorm mode of the client's step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-compile", action="store_true", help="run the steps eagerly (no "
                   "tf.function tracing, which takes ~20 s for a double backward through a "
                   "ResNet; slower steps: for short runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="runs/gi", help="output folder (default: %(default)s)")
    p.set_defaults(run=run_gradient_inversion)


def run_gradient_inversion(args) -> int:
    import numpy as np

    from ..gradient_inversion import client_gradient
    from ..gradient_inversion.dlg import DLGConfig, dlg, idlg_config, inverting_gradients_config
    from ..gradient_inversion.evaluate import score
    from ..gradient_inversion.gradinversion import GradInversionConfig, grad_inversion
    from ..gradient_inversion.labels import label_accuracy, restore_labels
    from ..gradient_inversion.private_batch import private_batch
    from ..report import OutputDir, image_grid_figure

    out = OutputDir(args.out)
    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1; got {args.batch}")
    model = load_model(args, classifier="gradient inversion")
    pixels, x, y = private_batch(model, args.batch, args.first)
    shared = client_gradient(model, x, y, bn_mode=args.bn_mode)
    restored = np.sort(restore_labels(model, shared))
    acc = label_accuracy(y, restored)
    print(f"labels: true {sorted(y.tolist())}, restored {restored.tolist()} ({acc:.0%})",
          file=sys.stderr)
    given = y if args.labels == "true" else None
    opt = {"progress": not args.quiet, "compile": not args.no_compile}
    if args.steps is not None:
        opt["steps"] = args.steps
    if args.lr is not None:
        opt["learning_rate"] = args.lr
    if args.attack == "gradinversion":
        cfg = GradInversionConfig(seeds=args.seeds, seed=args.seed).with_(**opt)
        result = grad_inversion(model, shared, cfg, labels=given)
    else:
        base = {"dlg": DLGConfig(), "idlg": idlg_config(),
                "inverting-gradients": inverting_gradients_config()}[args.attack]
        if given is not None:
            base = base.with_(labels="given")
        cfg = base.with_(seed=args.seed, **opt)
        result = dlg(model, shared, cfg, labels=given)
    s = score(pixels, result.image, true_labels=y, restored_labels=result.extra["labels"])
    order = np.asarray(s["order"])
    rec = result.image[order]
    print(f"{args.attack}: PSNR {s['psnr_mean']:.2f} dB, SSIM {s['ssim_mean']:.3f}, LPIPS "
          f"{s['lpips_mean']:.3f}, {result.steps} steps in {result.seconds:.1f} s", file=sys.stderr)
    for i in range(len(pixels)):
        out.write_png(f"original_{i}.png", pixels[i])
        out.write_png(f"reconstruction_{i}.png", rec[i])
    panels = [(f"original, label {y[i]}", pixels[i]) for i in range(len(pixels))] + [
        (f"PSNR {s['psnr'][i]:.1f}, LPIPS {s['lpips'][i]:.2f}", rec[i]) for i in range(len(rec))]
    out.write_figure("comparison.png", lambda p: image_grid_figure(
        p, panels, ncols=len(pixels), size=1.8,
        title=f"{args.attack} on {args.model}, batch {args.batch}\noriginals (top), "
        "reconstructions (bottom)"))
    seeds = result.extra.get("seeds")
    if seeds is not None:
        seed_panels = [(f"seed {g}" if i == 0 else "", seeds[g][order][i])
                       for g in range(len(seeds)) for i in range(len(pixels))]
        out.write_figure("seeds.png", lambda p: image_grid_figure(
            p, seed_panels, ncols=len(pixels), size=1.6, title="every seed (rows)"))
    out.write_history({args.attack: result.history}, title=f"{args.attack} on {args.model}")
    out.write_json("result.json", {
        "technique": result.technique, "attack": args.attack, "model": args.model,
        "batch": args.batch, "true_labels": y.tolist(), "restored_labels": restored.tolist(),
        "label_accuracy": acc, "labels_used": result.extra["labels"],
        "client": {"reduction": shared.reduction, "bn_mode": shared.bn_mode,
                   "loss": shared.loss},
        "metrics": s, "config": result.summary()["config"], "seconds": round(result.seconds, 3),
        "steps": result.steps, "stopped": result.stopped, "message": result.message,
    })
    print(f"wrote {out.path}/", file=sys.stderr)
    return exit_status(result)
