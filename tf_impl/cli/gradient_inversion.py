"""``gradient-inversion``: recover a private batch and its labels from a shared gradient.

    python -m tf_impl gradient-inversion --model resnet20_cifar --batch 4 \\
        --attack gradinversion --out runs/gi
    python -m tf_impl gradient-inversion --model lenet_dlg --attack dlg --batch 1 --out runs/dlg
    python -m tf_impl gradient-inversion --attack inverting-gradients --preset paper \
        --batch 1 --labels true --max-minutes 30 --checkpoint runs/ig/run.npz --out runs/ig
    # ... interrupted (Ctrl-C keeps the best iterate); continue where it stopped:
    python -m tf_impl gradient-inversion --attack inverting-gradients --preset paper \
        --batch 1 --labels true --checkpoint runs/ig/run.npz --resume --out runs/ig

Writes ``original_*.png``/``reconstruction_*.png``, ``comparison.png``, ``seeds.png``
(GradInversion; both figures show the first 16 images of a larger batch),
``history.csv``/``history.png`` and ``result.json``. A batch that would not fit in memory is
refused before anything is written, with the largest batch that fits (see
``tf_impl.memory``; ``TF_IMPL_MEMORY_LIMIT=2G`` plans for less memory than the machine has).
"""

from __future__ import annotations

import argparse
import sys

from .common import (
    add_model_options,
    at_least,
    epilog,
    exit_status,
    finishes_run_folder,
    load_model,
    open_run_folder,
    positive_int,
)

ATTACKS = ("gradinversion", "dlg", "idlg", "inverting-gradients")
FIGURE_COLUMNS = 16  # comparison.png and seeds.png show at most this many images


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
    p.add_argument("--untrained", action="store_true", help="the zoo model with seeded random "
                   "weights (a model early in training: its gradients leak far more than a "
                   "trained model's)")
    p.add_argument("--attack", choices=ATTACKS, default="gradinversion")
    p.add_argument("--batch", type=positive_int, default=4, help="private batch size (default "
                   "4); a batch that would not fit in memory is refused with the largest that "
                   "does (set TF_IMPL_MEMORY_LIMIT, e.g. 2G, to plan for less memory)")
    p.add_argument("--first", type=at_least(0), default=0, help="index of the first bundled image "
                   "(CIFAR-10 test set for 32x32 models, photos otherwise)")
    p.add_argument("--labels", choices=("restore", "true"), default="restore",
                   help="restore the labels from the gradient (default) or give the attack the "
                   "true ones")
    p.add_argument("--preset", choices=("quick", "paper"), default="quick",
                   help="Inverting Gradients and GradInversion: 'quick' (CPU-sized: 2,000 and "
                   f"{d.optimize.steps} steps) or 'paper' (the anchors' budgets: 24,000 and "
                   "20,000 steps; GradInversion with 8 seeds)")
    p.add_argument("--steps", type=positive_int, default=None, help="optimizer steps (default: the "
                   "preset's; DLG 300 L-BFGS steps)")
    p.add_argument("--seeds", type=positive_int, default=None,
                   help="GradInversion seeds (G; default: "
                   f"the preset's, quick {d.seeds}, paper 8)")
    p.add_argument("--restarts", type=positive_int, default=None, help="Inverting Gradients and "
                   "GradInversion: runs from other starts, the best by gradient distance kept")
    p.add_argument("--max-minutes", type=float, default=None, help="time budget: when it is "
                   "spent the run stops early and keeps the best iterate")
    p.add_argument("--checkpoint", default=None, help="write the run's state to this file "
                   "(<stem>-trial<k>.npz) every 500 steps and when it stops")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint (the "
                   "resumed run replaces the stopped one in --out)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--tv-weight", type=float, default=None, help="Inverting Gradients and "
                   "GradInversion: the TV prior's weight (default: the preset's; Inverting "
                   "Gradients 0.2 on the mean TV)")
    for term, what in (("l2", "the L2 prior's"), ("bn", "the BN prior's"),
                       ("group", "group consistency's")):
        p.add_argument(f"--{term}-weight", type=float, default=None,
                       help=f"GradInversion: {what} weight (default: the preset's)")
    p.add_argument("--registration", choices=("ecc", "none"), default=None,
                   help="GradInversion: register the seeds onto their mean (ECC affine) or use "
                   "the plain mean (default: the preset's)")
    p.add_argument("--distance", choices=("l2", "cosine"), default=None,
                   help="GradInversion: the gradient distance (default: the preset's)")
    p.add_argument("--bn-mode", choices=("eval", "train"), default="eval",
                   help="BatchNorm mode of the client's step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-compile", action="store_true", help="run the steps eagerly (no "
                   "tf.function tracing, which takes ~20 s for a double backward through a "
                   "ResNet; slower steps: for short runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="runs/gi", help="output folder (default: %(default)s)")
    p.set_defaults(run=run_gradient_inversion)


def _say_budget(cfg) -> None:
    """Say what a run too long for its time budget will do (stop early, keep the best)."""
    budget = cfg.optimize.max_seconds
    if budget is None:
        return
    runs = cfg.restarts
    print(f"{cfg.optimize.steps} steps x {runs} restart(s) with a {budget / 60:.1f}-minute "
          "budget: if the budget runs out first, the run stops there and keeps the best "
          "iterate so far (continue it later with --checkpoint FILE --resume)", file=sys.stderr)


def _seeds(args) -> int:
    """The images optimised together per private image: GradInversion's seeds, else 1."""
    if args.attack != "gradinversion":
        return 1
    from ..gradient_inversion.gradinversion import GradInversionConfig

    if args.seeds is not None:
        return args.seeds
    return GradInversionConfig.PAPER["seeds"] if args.preset == "paper" else \
        GradInversionConfig().seeds


_GI_TERMS = ("l2_weight", "bn_weight", "group_weight", "registration", "distance")


def _check_args(args) -> None:
    if args.resume and not args.checkpoint:
        raise ValueError("--resume needs --checkpoint FILE (the file the interrupted run "
                         "wrote)")
    if args.max_minutes is not None and not args.max_minutes > 0:
        raise ValueError(f"--max-minutes must be > 0; got {args.max_minutes}")
    if args.attack in ("dlg", "idlg") and (args.restarts or args.checkpoint or
                                           args.preset == "paper"):
        raise ValueError(f"--preset paper, --restarts and --checkpoint are for "
                         f"inverting-gradients and gradinversion, not {args.attack}")
    if args.tv_weight is not None and args.attack in ("dlg", "idlg"):
        raise ValueError("--tv-weight is for inverting-gradients and gradinversion")
    given = [f"--{k.replace('_', '-')}" for k in _GI_TERMS if getattr(args, k) is not None]
    if given and args.attack != "gradinversion":
        raise ValueError(f"{', '.join(given)}: GradInversion's terms, not {args.attack}'s")


def _attack(args, model, shared, given):
    """The attack's config from the preset and the flags, run on the shared gradient."""
    from ..gradient_inversion.dlg import DLGConfig, dlg, idlg_config
    from ..gradient_inversion.gradinversion import GradInversionConfig, grad_inversion
    from ..gradient_inversion.inverting_gradients import (
        InvertingGradientsConfig,
        inverting_gradients,
    )

    opt = {"progress": not args.quiet, "compile": not args.no_compile}
    if args.steps is not None:
        opt["steps"] = args.steps
    if args.lr is not None:
        opt["learning_rate"] = args.lr
    if args.max_minutes is not None:
        opt["max_seconds"] = 60.0 * args.max_minutes
    own = {"seed": args.seed}
    if args.tv_weight is not None:
        own["tv_weight"] = args.tv_weight
    if args.restarts is not None:
        own["restarts"] = args.restarts
    resumable = {"checkpoint": args.checkpoint, "resume": args.resume}
    if args.attack == "gradinversion":
        if args.seeds is not None:
            own["seeds"] = args.seeds
        own.update({k: getattr(args, k) for k in _GI_TERMS if getattr(args, k) is not None})
        cfg = getattr(GradInversionConfig, args.preset)(**own, **opt)
        _say_budget(cfg)
        return grad_inversion(model, shared, cfg, labels=given, **resumable)
    if args.attack == "inverting-gradients":
        cfg = getattr(InvertingGradientsConfig, args.preset)(**own, **opt)
        _say_budget(cfg)
        return inverting_gradients(model, shared, cfg, labels=given, **resumable)
    base = {"dlg": DLGConfig(), "idlg": idlg_config()}[args.attack]
    if given is not None:
        base = base.with_(labels="given")
    return dlg(model, shared, base.with_(seed=args.seed, **opt), labels=given)


def _stage_checkpoint(args, out) -> None:
    """A ``--checkpoint`` inside ``--out`` is written in the run's staging folder (so it lands
    with the run, see tf_impl/run_folder.py); ``--resume`` starts from the stopped run's copy."""
    import shutil
    from pathlib import Path

    if not args.checkpoint:
        return
    path = Path(args.checkpoint).resolve()
    try:
        rel = path.relative_to(out.target.resolve())
    except ValueError:
        return  # outside the run folder: read and written where it is
    staged = out.path / rel
    staged.parent.mkdir(parents=True, exist_ok=True)
    if args.resume:  # the file and its per-trial siblings (run-trial0.npz, ...)
        for f in path.parent.glob(f"{path.stem}*{path.suffix}"):
            shutil.copy2(f, staged.parent / f.name)
    args.checkpoint = str(staged)


@finishes_run_folder
def run_gradient_inversion(args) -> int:
    import numpy as np

    from ..gradient_inversion import client_gradient
    from ..gradient_inversion.labels import label_accuracy, restore_labels
    from ..gradient_inversion.preflight import check_batch_memory
    from ..gradient_inversion.private_batch import private_batch
    from ..gradient_inversion.scoring import score

    _check_args(args)
    name = args.model
    if args.untrained:
        import model_zoo

        if args.model not in model_zoo.available():
            raise ValueError(f"--untrained takes a zoo model name; {args.model!r} is not one "
                             f"({', '.join(model_zoo.available())})")
        args.model = str(model_zoo.load(args.model, pretrained=False))
    model = load_model(args, classifier="gradient inversion")
    check_batch_memory(model, args.batch, copies=_seeds(args), scored=True, name=name)
    args.overwrite = args.overwrite or args.resume  # the resumed run replaces the stopped one
    out = open_run_folder(args)
    _stage_checkpoint(args, out)
    pixels, x, y = private_batch(model, args.batch, args.first)
    shared = client_gradient(model, x, y, bn_mode=args.bn_mode)
    restored = np.sort(restore_labels(model, shared))
    acc = label_accuracy(y, restored)
    shown = (f"true {sorted(y.tolist())}, restored {restored.tolist()}" if len(y) <= 16
             else f"{len(y)} restored (result.json lists them)")
    print(f"labels: {shown} ({acc:.0%})", file=sys.stderr)
    result = _attack(args, model, shared, y if args.labels == "true" else None)
    # the optimisation attacks report their best iterate (lowest objective), as breaching does
    image = result.image if args.attack in ("dlg", "idlg") else result.best_image
    s = score(pixels, image, true_labels=y, restored_labels=result.extra["labels"])
    order = np.asarray(s["order"])
    rec = image[order]
    print(f"{args.attack}: PSNR {s['psnr_mean']:.2f} dB, SSIM {s['ssim_mean']:.3f}, LPIPS "
          f"{s['lpips_mean']:.3f}, {result.steps} steps in {result.seconds:.1f} s", file=sys.stderr)
    _figures(out, args, name, pixels, y, rec, s, result.extra.get("seeds"), order)
    out.write_history({args.attack: result.history}, title=f"{args.attack} on {name}")
    out.write_json("result.json", {
        "technique": result.technique, "attack": args.attack, "model": name,
        "weights": "seeded random" if args.untrained else "as in the file",
        "batch": args.batch, "true_labels": y.tolist(), "restored_labels": restored.tolist(),
        "label_accuracy": acc, "labels_used": result.extra["labels"],
        "client": {"reduction": shared.reduction, "bn_mode": shared.bn_mode,
                   "loss": shared.loss},
        "metrics": s, "config": result.summary()["config"], "seconds": round(result.seconds, 3),
        "steps": result.steps, "stopped": result.stopped, "message": result.message,
    })
    print(f"wrote {out.target}/", file=sys.stderr)
    return exit_status(result)


def _figures(out, args, name, pixels, y, rec, s, seeds, order) -> None:
    """The originals and the reconstructions (matched), one PNG each and side by side; every
    seed's reconstruction for GradInversion."""
    from ..report import image_grid_figure

    for i in range(len(pixels)):
        out.write_png(f"original_{i}.png", pixels[i])
        out.write_png(f"reconstruction_{i}.png", rec[i])
    shown = min(len(pixels), FIGURE_COLUMNS)  # a figure stays a readable (and drawable) size
    more = f" (the first {shown})" if shown < len(pixels) else ""
    panels = [(f"original, label {y[i]}", pixels[i]) for i in range(shown)] + [
        (f"PSNR {s['psnr'][i]:.1f}, LPIPS {s['lpips'][i]:.2f}", rec[i]) for i in range(shown)]
    out.write_figure("comparison.png", lambda p: image_grid_figure(
        p, panels, ncols=shown, size=1.8,
        title=f"{args.attack} on {name}{' (untrained)' if args.untrained else ''}, batch "
        f"{args.batch}{more}\noriginals (top), "
        "reconstructions (bottom)"))
    if seeds is not None:
        seed_panels = [(f"seed {g}" if i == 0 else "", seeds[g][order][i])
                       for g in range(len(seeds)) for i in range(shown)]
        out.write_figure("seeds.png", lambda p: image_grid_figure(
            p, seed_panels, ncols=shown, size=1.6, title="every seed (rows)"))
