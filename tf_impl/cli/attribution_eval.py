"""``attribution-eval``: insertion / deletion AUC of attribution methods.

    python -m tf_impl attribution-eval --model resnet20_cifar --n 16 --methods ig,idgi-ig,fullgrad

Computes insertion and deletion curves (Petsiuk et al. 2018) of the chosen methods on N bundled
CIFAR-10 test images (photos for larger models) and writes ``curves.png``, ``table.md`` (mean
AUC +- standard error, seconds per image) and ``result.json``; the tables and records are
built by :mod:`tf_impl.attribution.tables`. Bad input raises
:class:`~tf_impl.attribution.common.AttributionError` (a ValueError), which ``main`` prints as
one ``error:`` line with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from .common import (
    CIFAR_PREFIX,
    EXIT_OK,
    add_model_options,
    at_least,
    finishes_run_folder,
    load_model,
    open_run_folder,
    positive_int,
)


def add_parsers(sub) -> None:
    """Add the ``attribution-eval`` sub-command to ``sub``."""
    from ..attribution.evaluation import METHODS, CausalMetricConfig

    d = CausalMetricConfig()
    p = sub.add_parser(
        "attribution-eval", help="insertion/deletion AUC of attribution methods",
        description="Rank pixels by each method's attribution, then delete them (to the "
        "baseline) or insert them (into a blurred copy) a few percent at a time and follow the "
        "target class's probability (Petsiuk et al. 2018). Insertion AUC: higher is better; "
        "deletion AUC: lower is better.", epilog="methods: " + ", ".join(METHODS),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_options(p, "resnet20_cifar", help="zoo classifier or .onnx path")
    p.add_argument("--n", type=positive_int, default=16, help="images (CIFAR-10 test images for "
                   "32x32 models, bundled photos otherwise; default %(default)s)")
    p.add_argument("--methods", default="ig,idgi_ig,saliency,fullgrad", help="comma-separated, "
                   "from: " + ", ".join(METHODS) + " (default %(default)s)")
    p.add_argument("--steps", type=positive_int, default=None, help="path steps of the IG-family "
                   "methods (default: each method's own)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="rows per forward pass "
                   "(default %(default)s)")
    p.add_argument("--step-fraction", type=float, default=d.step_fraction, help="fraction of "
                   "pixels changed per step (default 8/224)")
    p.add_argument("--ranking", choices=("sum", "abs"), default=d.ranking, help="pixel score: "
                   "attribution summed over channels, or |attribution| summed (default "
                   "%(default)s)")
    p.add_argument("--all-images", action="store_true", help="keep misclassified images "
                   "(default: correctly classified ones only)")
    p.add_argument("--size", type=at_least(8), default=224, help="photo size for models that take "
                   "any size (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--out", default="runs/attribution_eval", help="output folder (default: "
                   "%(default)s)")
    p.set_defaults(run=run_attribution_eval)


def _images(args, model):
    """(normalised inputs, labels or None, names) of the first ``--n`` images for the model."""
    import numpy as np

    from model_zoo import data

    from .. import images as imgs
    from ..attribution.common import AttributionError
    from ..visualization import checks

    fixed = checks.fixed_size(model)
    mean, std = imgs.preprocessing_of(model)
    if fixed == (32, 32):
        pixels, labels = data.cifar10("test", n=args.n, normalize=False)
        names = [f"{CIFAR_PREFIX}{k}" for k in range(len(pixels))]
        return imgs.normalize(pixels, mean, std), labels.astype(np.int64), names
    photos = data.list_images()
    if args.n > len(photos):
        raise AttributionError(f"--n {args.n}: this model takes {fixed or 'any-size'} images and "
                               f"only {len(photos)} photos are bundled; use --n <= {len(photos)}")
    size = fixed[0] if fixed else args.size
    pixels = np.concatenate([imgs.load_image(p, size).pixels for p in photos[:args.n]])
    return imgs.normalize(pixels, mean, std), None, photos[:args.n]


@finishes_run_folder
def run_attribution_eval(args) -> int:
    from pathlib import Path

    import numpy as np

    from ..attribution.common import AttributionError, check_steps, logits
    from ..attribution.evaluation import CausalMetricConfig, draw_curves, method_name
    from ..attribution.tables import evaluate_methods, methods_record, results_summary

    methods = [method_name(m) for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise AttributionError("--methods is empty: name at least one method")
    if args.n < 1:
        raise AttributionError(f"--n must be a positive integer; got {args.n}")
    check_steps(args.steps if args.steps is not None else 1, args.batch_size)
    config = CausalMetricConfig(step_fraction=args.step_fraction, ranking=args.ranking)
    out = open_run_folder(args)
    model = load_model(args, classifier="the insertion/deletion evaluation")
    x, labels, names = _images(args, model)
    pred = np.argmax(np.asarray(logits(model, x)), axis=1)
    if labels is not None and not args.all_images:
        keep = pred == labels
        if not keep.any():
            raise AttributionError("none of the images is classified correctly; pass "
                                   "--all-images to evaluate them anyway")
        x, pred, names = x[keep], pred[keep], [nm for nm, k in zip(names, keep) if k]
    say = None if args.quiet else (lambda s: print(s, file=sys.stderr))
    results = evaluate_methods(model, x, methods, targets=pred, steps=args.steps,
                               batch_size=args.batch_size, config=config, progress=say)
    table = results_summary(results, images=len(x), model_name=args.model,
                            pixels_per_step=config.pixels_per_step(x.shape[2] * x.shape[3]))
    out.write_figure("curves.png", lambda p: draw_curves(
        p, {m: {k: r[k] for k in ("insertion", "deletion")} for m, r in results.items()},
        title=f"{args.model}, {len(x)} images"))
    out.write_figure("table.md", lambda p: Path(p).write_text(table))  # atomic, any file
    record = {
        "technique": "attribution-eval",
        "model": args.model,
        "images": names,
        "targets": [int(t) for t in pred],
        "config": config.to_dict(),
        "steps": args.steps,
        "methods": methods_record(results),
    }
    # the scalars a sweep's table collects: each method's mean AUCs and time per image
    record["metrics"] = {m: {"insertion_auc": r["insertion_auc"][0],
                             "deletion_auc": r["deletion_auc"][0],
                             "seconds_per_image": r["seconds_per_image"]}
                         for m, r in record["methods"].items()}
    out.write_json("result.json", record)
    if say:
        say(table)
    return EXIT_OK
