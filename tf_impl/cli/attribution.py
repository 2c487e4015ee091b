"""The attribution maps: ``integrated-gradients``, ``idgi`` and ``fullgrad``.

    python -m tf_impl integrated-gradients --model resnet20_cifar --image cifar10:3 --steps 64
    python -m tf_impl integrated-gradients --method guided-ig --steps 200 --out runs/gig
    python -m tf_impl idgi --method blur-ig --max-sigma 8 --image cifar10:7 --out runs/idgi
    python -m tf_impl fullgrad --model resnet20_cifar --image cifar10:3 --out runs/fullgrad

``integrated-gradients`` runs IG (``--quadrature``: Captum's rules), Guided IG or Blur IG
(``--method``); ``idgi`` runs IDGI on the chosen method's path and, from the same forward
passes, the method itself, drawn side by side. Each writes ``input.png``, the attribution
map(s) as PNG (sum over channels of |attribution|), ``overlay.png`` (image | maps | overlays)
and ``result.json`` (target and predicted class, F at the input and at the path's start, the
completeness gap, the config, seconds).

``fullgrad`` writes ``input.png``, ``fullgrad.png`` (the map in [0, 1]),
``fullgrad_color.png``, ``overlay.png`` (image | map | overlay) and ``result.json`` (target and
predicted class, the completeness check f(x) = sum(x * grad_x) + sum of the bias terms, the
config, seconds). Bad input raises :class:`~tf_impl.attribution.common.AttributionError` (a
ValueError), which ``main`` prints as one ``error:`` line with exit status 2.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .common import (
    EXIT_OK,
    add_picture_command,
    check_pictures,
    class_names,
    epilog,
    finishes_run_folder,
    load_model,
    load_picture,
    open_run_folder,
    positive_int,
    prediction_fields,
)

METHODS = ("ig", "guided-ig", "blur-ig")
BASELINES = ("black", "white", "zero", "blur")


def _paths_epilog() -> str:
    return epilog("classifiers") + (
        "\n\nbaselines (--baseline, for ig and guided-ig): black / white (pixels 0 / 1, "
        "normalised), zero (zero model input: the dataset mean colour, Captum's default), "
        "blur (the input blurred by a Gaussian of --baseline-sigma pixels). Blur IG has none: "
        "its path starts at the input blurred with --max-sigma.")


def _path_command(sub, name: str, help_: str, description: str, text: str):
    from ..attribution.integrated_gradients import QUADRATURES

    p = add_picture_command(sub, name, help_, description, epilog_text=text,
                            quiet_help="no summary line on stderr")
    p.add_argument("--method", choices=METHODS, default="ig", help="the path method "
                   "(default %(default)s)")
    p.add_argument("--steps", type=positive_int, default=None, help="path steps (default: the "
                   "method's: ig 50, guided-ig 200, blur-ig 100)")
    p.add_argument("--batch-size", type=positive_int, default=32,
                   help="path points per forward pass "
                   "(default %(default)s)")
    p.add_argument("--baseline", choices=BASELINES, default=None, help="ig / guided-ig "
                   "baseline (default black)")
    p.add_argument("--baseline-sigma", type=float, default=4.0, help="blur of --baseline blur, "
                   "pixels (default %(default)s)")
    p.add_argument("--fraction", type=float, default=None, help="guided-ig: features moved per "
                   "round (default 0.25)")
    p.add_argument("--max-dist", type=float, default=None, help="guided-ig: deviation from "
                   "the straight line (default 0.02)")
    p.add_argument("--max-sigma", type=float, default=None, help="blur-ig: largest blur, "
                   "pixels (default 50)")
    p.add_argument("--mode", choices=("abs", "positive"), default="abs", help="map: sum over "
                   "channels of |attr|, or the positive part of the sum (default %(default)s)")
    if name == "integrated-gradients":
        p.add_argument("--quadrature", choices=QUADRATURES, default="gausslegendre",
                       help="ig's rule, Captum's names (default %(default)s)")
    p.add_argument("--out", default=f"runs/{name.replace('-', '_')}", help="output folder "
                   "(default: %(default)s)")
    return p


def add_parsers(sub) -> None:
    """Add the ``integrated-gradients``, ``idgi`` and ``fullgrad`` sub-commands to ``sub``."""
    text = _paths_epilog()
    p = _path_command(
        sub, "integrated-gradients", "Integrated Gradients, Guided IG or Blur IG",
        "Path attributions of the target logit: Integrated Gradients (Sundararajan et al. "
        "2017) with Captum's quadrature rules, Guided IG (Kapishnikov et al. 2021) or "
        "Blur IG (Xu et al. 2020), with the completeness gap sum(attr) - (F(x) - "
        "F(start)).", text)
    p.set_defaults(run=run_integrated_gradients)
    p = _path_command(
        sub, "idgi", "IDGI on the IG, Guided IG or Blur IG path (Yang et al. 2023)",
        "IDGI (Yang et al. 2023): along the method's path, each step's score change "
        "F(x_{j+1}) - F(x_j) goes to the features in proportion to g_j^2 / ||g_j||^2, so "
        "the attributions sum to F(x) - F(start) exactly. The method's own attribution, "
        "from the same forward passes, is drawn beside it.", text)
    p.set_defaults(run=run_idgi)

    p = add_picture_command(
        sub, "fullgrad", "FullGrad saliency (Srinivas & Fleuret 2019)",
        "The input gradient times the input plus, for every layer with a bias "
        "(Conv, Gemm, BatchNorm, constant Add), the bias times the gradient at that layer's "
        "output, each post-processed (abs, min-max, bilinear resize) and summed (Srinivas & "
        "Fleuret 2019). Also checks completeness: the terms sum to the target logit on "
        "ReLU networks.", quiet_help="no progress output")
    p.add_argument("--postprocess", choices=("paper", "grad-cam"), default="paper",
                   help="the authors' post-processing or pytorch-grad-cam's (default "
                   "%(default)s)")
    p.add_argument("--out", default="runs/fullgrad", help="output folder (default: "
                   "%(default)s)")
    p.set_defaults(run=run_fullgrad)


# -- shared steps -------------------------------------------------------------------------------
def _options(args) -> dict:
    """The method's own settings from the flags, refusing those of another method."""
    from ..attribution.common import AttributionError

    method = args.method.replace("-", "_")
    given = {"fraction": args.fraction, "max_dist": args.max_dist, "max_sigma": args.max_sigma}
    allowed = {"ig": (), "guided_ig": ("fraction", "max_dist"), "blur_ig": ("max_sigma",)}
    wrong = [k for k, v in given.items() if v is not None and k not in allowed[method]]
    if wrong:
        raise AttributionError(f"--{wrong[0].replace('_', '-')} does not apply to --method "
                               f"{args.method}")
    if method == "blur_ig" and args.baseline is not None:
        raise AttributionError("--baseline does not apply to --method blur-ig: its path starts "
                               "at the input blurred with --max-sigma")
    return {k: v for k, v in given.items() if v is not None}


def _baseline(args, model, x):
    from ..attribution.blur_ig import gaussian_blur
    from ..attribution.integrated_gradients import pixel_baseline

    if args.method == "blur-ig":
        return None
    kind = args.baseline or "black"
    if kind == "zero":
        return np.zeros_like(x)
    if kind == "blur":
        return gaussian_blur(x, args.baseline_sigma).astype(np.float32)
    return pixel_baseline(model, x, 0.0 if kind == "black" else 1.0)


def _start(args):
    from .. import images as imgs
    from ..attribution.common import AttributionError

    options = _options(args)  # refuse bad flags before any work
    if args.baseline_sigma <= 0:
        raise AttributionError(f"--baseline-sigma must be > 0; got {args.baseline_sigma}")
    check_pictures(args.image)  # a bad image before the model is loaded
    out = open_run_folder(args)  # refuse a folder holding a run before any work
    model = load_model(args, classifier="explaining a class score")
    picture = load_picture(args, model)
    x = imgs.normalize(picture.pixels, *imgs.preprocessing_of(model))
    out.write_png("input.png", picture.pixels)
    return out, model, picture.pixels, x, picture, options


def _record(args, model, x, picture, change, delta, config, seconds, extra=None) -> dict:
    """result.json: the classes, F at the input and at the path's start (F(x) minus the
    change sum(attr) - delta), the completeness gap, the config."""
    from ..attribution.common import resolve_targets
    from ..attribution.integrated_gradients import output_scores

    z = output_scores(model, x, 1)
    t = int(resolve_targets(model, x, args.target, out=z)[0])
    z = z[0].astype(np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    pred = int(p.argmax())
    change = float(change[0])
    return {
        "technique": "idgi" if args.run is run_idgi else "integrated_gradients",
        "method": args.method,
        "model": args.model,
        "image": picture.name,
        "notes": picture.notes,
        "true_label": picture.label,
        **prediction_fields(class_names(model), t, pred, p[t], p[pred]),
        "baseline": None if args.method == "blur-ig" else (args.baseline or "black"),
        "score_input": float(z[t]),
        "score_start": float(z[t] - change),
        "completeness_gap": float(delta[0]),
        "relative_gap": float(abs(delta[0]) / abs(change)) if change else None,
        "config": config,
        "seconds": round(seconds, 4),
        **(extra or {}),
    }


def _title(args, model, name, what, targets) -> str:
    names = class_names(model)
    t = int(targets[0])
    tn = f" ({names[t]})" if names and t < len(names) else ""
    return f"{what}, {args.model}, {name}; target {t}{tn}"


def _write_map(out, filename, attr, mode):
    from ..attribution.integrated_gradients import attribution_map
    from ..visualization.saliency import colorize

    out.write_png(filename, colorize(attribution_map(attr[:1], mode)[0], "hot"))


def _done(args, out, what, record) -> int:
    if not args.quiet:
        print(f"{what}: target {record['target_class']}, predicted {record['predicted_class']} "
              f"(p = {record['probability']:.3f}), completeness gap "
              f"{record['completeness_gap']:.4g}, {record['seconds']:.2f} s; wrote {out.target}/",
              file=sys.stderr)
    return EXIT_OK


def _given(**values) -> dict:
    return {k: v for k, v in values.items() if v is not None}


# -- the sub-commands ---------------------------------------------------------------------------
@finishes_run_folder
def run_integrated_gradients(args) -> int:
    from ..attribution.blur_ig import BlurIGConfig, blur_ig
    from ..attribution.guided_ig import GuidedIGConfig, guided_ig
    from ..attribution.integrated_gradients import (
        IntegratedGradientsConfig,
        draw_attribution,
        integrated_gradients,
    )

    common = _given(steps=args.steps, batch_size=args.batch_size)
    if args.method == "ig":
        fn, cfg = integrated_gradients, IntegratedGradientsConfig().with_(
            method=args.quadrature, **common)
    elif args.method == "guided-ig":
        fn, cfg = guided_ig, GuidedIGConfig().with_(**common, **_options(args))
    else:
        fn, cfg = blur_ig, BlurIGConfig().with_(**common, **_options(args))
    out, model, pixels, x, picture, _ = _start(args)
    name = picture.name
    b = _baseline(args, model, x)
    t0 = time.perf_counter()
    attr, delta = fn(model, x, args.target, b, return_delta=True, config=cfg)
    seconds = time.perf_counter() - t0
    change = attr.astype(np.float64).reshape(len(attr), -1).sum(1) - delta
    what = "integrated gradients" if args.method == "ig" else args.method
    _write_map(out, "attribution.png", attr, args.mode)
    record = _record(args, model, x, picture, change, delta, cfg.to_dict(), seconds)
    title = _title(args, model, name, what, [record["target_class"]])
    out.write_figure("overlay.png", lambda p: draw_attribution(
        p, pixels, attr[:1], title=title, mode=args.mode, name=what))
    out.write_json("result.json", record)
    return _done(args, out, what, record)


@finishes_run_folder
def run_idgi(args) -> int:
    from ..attribution.idgi import IDGIConfig, path_points_and_gradients
    from ..attribution.integrated_gradients import draw_attributions

    cfg = IDGIConfig(base=args.method, steps=args.steps, batch_size=args.batch_size)
    out, model, pixels, x, picture, options = _start(args)
    name = picture.name
    b = _baseline(args, model, x)
    t0 = time.perf_counter()
    samples = path_points_and_gradients(model, x, args.target, b, cfg.resolved_steps,
                                        cfg.batch_size, base=cfg.base, keep_points=False,
                                        **options)
    attr, delta = samples.idgi(return_delta=True)
    seconds = time.perf_counter() - t0
    _write_map(out, "idgi.png", attr, args.mode)
    _write_map(out, f"{cfg.base}.png", samples.base_attribution, args.mode)
    title = _title(args, model, name, f"IDGI on the {args.method} path", samples.targets)
    out.write_figure("overlay.png", lambda p: draw_attributions(
        p, pixels, {args.method: samples.base_attribution[:1], f"IDGI ({args.method})": attr[:1]},
        title=title, mode=args.mode))
    record = _record(args, model, x, picture, samples.scores[-1] - samples.scores[0], delta,
                     {**cfg.to_dict(), "path": samples.config}, seconds,
                     {"base_completeness_gap": float(samples.base_delta[0])})
    out.write_json("result.json", record)
    return _done(args, out, "idgi", record)


@finishes_run_folder
def run_fullgrad(args) -> int:
    from .. import images as imgs
    from ..attribution.common import check_inputs
    from ..attribution.fullgrad import (
        FullGradConfig,
        draw_fullgrad,
        fullgrad_decompose,
        fullgrad_map,
    )
    from ..visualization.saliency import colorize, normalize_map

    config = FullGradConfig.pytorch_grad_cam() if args.postprocess == "grad-cam" \
        else FullGradConfig()
    check_pictures(args.image)  # a bad image before the model is loaded
    out = open_run_folder(args)  # refuse a folder holding a run before any work
    model = load_model(args, classifier="FullGrad")
    picture = load_picture(args, model)
    pixels, name, label = picture.pixels, picture.name, picture.label
    out.write_png("input.png", pixels)
    x = check_inputs(model, imgs.normalize(pixels, *imgs.preprocessing_of(model)))
    t0 = time.perf_counter()
    d = fullgrad_decompose(model, x, args.target, batch_size=1)
    m = fullgrad_map(d, config)
    seconds = time.perf_counter() - t0
    z = model(x, compiled=False)  # one image: eager is cheaper than tracing
    z = np.asarray(z[0] if isinstance(z, tuple) else z, np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    t, pred = int(d.targets[0]), int(np.argmax(z[0]))
    names = class_names(model)

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
        "notes": picture.notes,
        "true_label": label,
        **prediction_fields(names, t, pred, p[0, t], p[0, pred]),
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
              f"{gap:.2e} ({rel:.1e} of the logit); {seconds:.2f} s; wrote {out.target}/",
              file=sys.stderr)
    return EXIT_OK
