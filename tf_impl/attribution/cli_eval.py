"""Command line for :mod:`.fullgrad` and :mod:`.evaluation`: the ``fullgrad`` and
``attribution-eval`` sub-commands of ``python -m tf_impl``.

    python -m tf_impl fullgrad --model resnet20_cifar --image cifar10:3 --out runs/fullgrad
    python -m tf_impl attribution-eval --model resnet20_cifar --n 16 --methods ig,idgi-ig,fullgrad

``fullgrad`` writes ``input.png``, ``fullgrad.png`` (the map in [0, 1]), ``fullgrad_color.png``,
``overlay.png`` (image | map | overlay) and ``result.json`` (target and predicted class, the
completeness check f(x) = sum(x * grad_x) + sum of the bias terms, the config, seconds).
``attribution-eval`` computes insertion and deletion curves (Petsiuk et al. 2018) of the
chosen methods on N bundled CIFAR-10 test images (photos for larger models) and writes
``curves.png``, ``table.md`` (mean AUC +- standard error, seconds per image) and
``result.json``. ``tf_impl/cli.py`` wires :func:`add_parsers` into its parser; bad input
raises :class:`~.common.AttributionError` (a ValueError), which its ``main`` prints as one
``error:`` line with exit status 2.
"""

from __future__ import annotations

import argparse
import sys
import time

EXIT_OK = 0
_CIFAR = "cifar10:"


def add_parsers(sub) -> None:
    """Add the ``fullgrad`` and ``attribution-eval`` sub-commands to ``sub``."""
    from ..visualization.cli_saliency import _epilog
    from .evaluation import METHODS, CausalMetricConfig

    p = sub.add_parser(
        "fullgrad", help="FullGrad saliency (Srinivas & Fleuret 2019)",
        description="The input gradient times the input plus, for every layer with a bias "
        "(Conv, Gemm, BatchNorm, constant Add), the bias times the gradient at that layer's "
        "output, each post-processed (abs, min-max, bilinear resize) and summed (Srinivas & "
        "Fleuret 2019). Also checks completeness: the terms sum to the target logit on "
        "ReLU networks.", epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20_cifar", help="zoo classifier or .onnx path "
                   "(default: %(default)s)")
    p.add_argument("--image", default=None, help="bundled name, file, or cifar10:K (default: "
                   "cifar10:0 for 32x32 models, cat_dog otherwise)")
    p.add_argument("--size", type=int, default=224, help="image size for models that take any "
                   "size (default %(default)s)")
    p.add_argument("--target", type=int, default=None, help="class to explain (default: the "
                   "predicted class)")
    p.add_argument("--postprocess", choices=("paper", "grad-cam"), default="paper",
                   help="the authors' post-processing or pytorch-grad-cam's (default "
                   "%(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--out", default="runs/fullgrad", help="output folder (default: "
                   "%(default)s)")
    p.set_defaults(run=run_fullgrad)

    d = CausalMetricConfig()
    p = sub.add_parser(
        "attribution-eval", help="insertion/deletion AUC of attribution methods",
        description="Rank pixels by each method's attribution, then delete them (to the "
        "baseline) or insert them (into a blurred copy) a few percent at a time and follow the "
        "target class's probability (Petsiuk et al. 2018). Insertion AUC: higher is better; "
        "deletion AUC: lower is better.", epilog="methods: " + ", ".join(METHODS),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20_cifar", help="zoo classifier or .onnx path "
                   "(default: %(default)s)")
    p.add_argument("--n", type=int, default=16, help="images (CIFAR-10 test images for "
                   "32x32 models, bundled photos otherwise; default %(default)s)")
    p.add_argument("--methods", default="ig,idgi_ig,saliency,fullgrad", help="comma-separated, "
                   "from: " + ", ".join(METHODS) + " (default %(default)s)")
    p.add_argument("--steps", type=int, default=None, help="path steps of the IG-family "
                   "methods (default: each method's own)")
    p.add_argument("--batch-size", type=int, default=32, help="rows per forward pass "
                   "(default %(default)s)")
    p.add_argument("--step-fraction", type=float, default=d.step_fraction, help="fraction of "
                   "pixels changed per step (default 8/224)")
    p.add_argument("--ranking", choices=("sum", "abs"), default=d.ranking, help="pixel score: "
                   "attribution summed over channels, or |attribution| summed (default "
                   "%(default)s)")
    p.add_argument("--all-images", action="store_true", help="keep misclassified images "
                   "(default: correctly classified ones only)")
    p.add_argument("--size", type=int, default=224, help="photo size for models that take "
                   "any size (default %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--out", default="runs/attribution_eval", help="output folder (default: "
                   "%(default)s)")
    p.set_defaults(run=run_attribution_eval)


# -- fullgrad -----------------------------------------------------------------------------------
def run_fullgrad(args) -> int:
    import numpy as np

    from .. import images as imgs
    from ..report import OutputDir
    from ..visualization.cli_saliency import _class_names, _load_model, _picture
    from ..visualization.saliency import colorize, normalize_map
    from .common import check_inputs
    from .fullgrad import FullGradConfig, _decompose, _prepare, draw_fullgrad, fullgrad_map

    config = FullGradConfig.pytorch_grad_cam() if args.postprocess == "grad-cam" \
        else FullGradConfig()
    out = OutputDir(args.out)  # refuse an unwritable folder before any work
    model = _load_model(args.model)
    pixels, name, label = _picture(args, model)
    out.write_png("input.png", pixels)
    x = check_inputs(model, imgs.normalize(pixels, *imgs.preprocessing_of(model)))
    t0 = time.perf_counter()
    x, targets, _ = _prepare(model, x, args.target, 1)
    d = _decompose(model, x, targets, 1)
    m = fullgrad_map(d, config)
    seconds = time.perf_counter() - t0
    z = model(x, compiled=False)  # one image: eager is cheaper than tracing
    z = np.asarray(z[0] if isinstance(z, tuple) else z, np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    t, pred = int(d.targets[0]), int(np.argmax(z[0]))
    names = _class_names(args.model)

    def named(k):
        return names[k] if names and 0 <= k < len(names) else None

    out.write_png("fullgrad.png", normalize_map(m)[:, None])
    out.write_png("fullgrad_color.png", colorize(m[0], "hot"))
    title = (f"FullGrad, {args.model}, {name}\ntarget {t}"
             f"{f' ({named(t)})' if named(t) else ''}; predicted {pred}"
             f"{f' ({named(pred)})' if named(pred) else ''}, p = {p[0, pred]:.2f}")
    out.write_figure("overlay.png", lambda path: draw_fullgrad(path, pixels, m[0], title=title))
    score, total, gap = float(d.scores[0]), float(d.total[0]), float(d.gap[0])
    rel = abs(gap) / max(abs(score), 1e-12)
    record = {
        "technique": "fullgrad",
        "model": args.model,
        "image": name,
        "size": list(pixels.shape),
        "true_label": label,
        "target_class": t,
        "target_name": named(t),
        "target_probability": round(float(p[0, t]), 6),
        "predicted_class": pred,
        "predicted_name": named(pred),
        "probability": round(float(p[0, pred]), 6),
        "completeness": {
            "score": score, "input_term": float(d.input_term.sum(dtype=np.float64)),
            "bias_terms": float(d.bias_sums.sum()), "total": total, "gap": gap,
            "relative_gap": rel, "exact": bool(rel <= 1e-4),
            "note": "score = sum(x * grad_x) + sum over layers of sum(bias * grad at the "
                    "layer's output); exact (to rounding) on ReLU networks whose biases are "
                    "all explicit",
        },
        "bias_layers": [{"name": la.name, "op": la.op_type,
                         "sum": float(d.bias_terms[la.name].sum(dtype=np.float64))}
                        for la in d.layers],
        "config": config.to_dict(),
        "seconds": round(seconds, 4),
    }
    out.write_json("result.json", record)
    if not args.quiet:
        print(f"fullgrad: target {t}, predicted {pred} (p = {p[0, pred]:.3f}); completeness gap "
              f"{gap:.2e} ({rel:.1e} of the logit); {seconds:.2f} s; wrote {out.path}/",
              file=sys.stderr)
    return EXIT_OK


# -- attribution-eval ---------------------------------------------------------------------------
def _images(args, model):
    """(normalised inputs, labels or None, names) of the first ``--n`` images for the model."""
    import numpy as np

    from model_zoo import data

    from .. import images as imgs
    from ..visualization import checks
    from .common import AttributionError

    fixed = checks.fixed_size(model)
    mean, std = imgs.preprocessing_of(model)
    if fixed == (32, 32):
        pixels, labels = data.cifar10("test", n=args.n, normalize=False)
        names = [f"{_CIFAR}{k}" for k in range(len(pixels))]
        return imgs.normalize(pixels, mean, std), labels.astype(np.int64), names
    photos = data.list_images()
    if args.n > len(photos):
        raise AttributionError(f"--n {args.n}: this model takes {fixed or 'any-size'} images and "
                               f"only {len(photos)} photos are bundled; use --n <= {len(photos)}")
    size = fixed[0] if fixed else args.size
    pixels = np.concatenate([imgs.load_image(p, size).pixels for p in photos[:args.n]])
    return imgs.normalize(pixels, mean, std), None, photos[:args.n]


def evaluate_methods(model, x, methods, *, targets, steps=None, batch_size=32, config=None,
                     progress=None) -> dict:
    """Insertion and deletion of each method on ``x``: ``{method: {"insertion": CausalCurves,
    "deletion": CausalCurves, "seconds": attribution seconds per image}}``."""
    from .evaluation import attribute, deletion, insertion

    results = {}
    for method in methods:
        t0 = time.perf_counter()
        a = attribute(method, model, x, targets, steps=steps, batch_size=batch_size)
        seconds = (time.perf_counter() - t0) / len(x)
        ins = insertion(model, x, a, targets, config=config, batch_size=batch_size)
        dele = deletion(model, x, a, targets, config=config, batch_size=batch_size)
        results[method] = {"insertion": ins, "deletion": dele, "seconds": seconds}
        if progress:
            progress(f"{method}: insertion {ins.auc.mean():.4f}, deletion {dele.auc.mean():.4f}"
                     f" ({seconds:.3f} s/image)")
    return results


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for a single value)."""
    import numpy as np

    v = np.asarray(values, np.float64)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se


def results_table(results: dict) -> str:
    """A markdown table: method | insertion AUC | deletion AUC | seconds per image."""
    from .evaluation import METHOD_TITLES

    lines = ["| method | insertion AUC (higher is better) | deletion AUC (lower is better) | "
             "s / image |", "| --- | --- | --- | --- |"]
    for method, r in results.items():
        im, ise = mean_se(r["insertion"].auc)
        dm, dse = mean_se(r["deletion"].auc)
        lines.append(f"| {METHOD_TITLES.get(method, method)} | {im:.4f} ± {ise:.4f} | "
                     f"{dm:.4f} ± {dse:.4f} | {r['seconds']:.3f} |")
    return "\n".join(lines) + "\n"


def run_attribution_eval(args) -> int:
    from pathlib import Path

    import numpy as np

    from ..report import OutputDir
    from ..visualization.cli_saliency import _load_model
    from .common import AttributionError, check_steps, logits
    from .evaluation import CausalMetricConfig, draw_curves, method_name

    methods = [method_name(m) for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise AttributionError("--methods is empty: name at least one method")
    if args.n < 1:
        raise AttributionError(f"--n must be a positive integer; got {args.n}")
    check_steps(args.steps if args.steps is not None else 1, args.batch_size)
    config = CausalMetricConfig(step_fraction=args.step_fraction, ranking=args.ranking)
    out = OutputDir(args.out)
    model = _load_model(args.model)
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
    table = (f"Insertion / deletion AUC (Petsiuk et al. 2018) on {len(x)} images, {args.model}; "
             f"mean ± standard error; {config.pixels_per_step(x.shape[2] * x.shape[3])} pixels "
             "per step.\n\n" + results_table(results))
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
        "methods": {m: {
            "insertion_auc": mean_se(r["insertion"].auc),
            "deletion_auc": mean_se(r["deletion"].auc),
            "insertion_auc_per_image": [round(float(v), 6) for v in r["insertion"].auc],
            "deletion_auc_per_image": [round(float(v), 6) for v in r["deletion"].auc],
            "insertion_curve": [round(float(v), 6) for v in r["insertion"].probabilities.mean(0)],
            "deletion_curve": [round(float(v), 6) for v in r["deletion"].probabilities.mean(0)],
            "fractions": [round(float(v), 6) for v in r["insertion"].fractions],
            "seconds_per_image": r["seconds"],
        } for m, r in results.items()},
    }
    out.write_json("result.json", record)
    if say:
        say(table)
    return EXIT_OK
