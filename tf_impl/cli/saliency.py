"""``saliency``, ``guided-backprop`` and ``occlusion`` (:mod:`tf_impl.visualization.saliency`).

    python -m tf_impl saliency --model resnet20_cifar --image cifar10:3 --segment --out runs/sal
    python -m tf_impl guided-backprop --model vgg16 --image cat_dog --target 243 --out runs/gb
    python -m tf_impl occlusion --model resnet20_cifar --window 8 --stride 4 --out runs/occ

Each writes ``input.png``, the map(s) as PNG, ``overlay.png`` (image | map | overlay) and
``result.json`` (target class, predicted class and its probability, the config, seconds). Bad
input raises :class:`~tf_impl.visualization.checks.VisualizationError` (a ValueError), which
``main`` prints as one ``error:`` line with exit status 2.
"""

from __future__ import annotations

import sys

from .common import (
    EXIT_OK,
    add_picture_command,
    check_pictures,
    class_names,
    finishes_run_folder,
    load_model,
    load_picture,
    open_run_folder,
    positive_int,
    prediction_fields,
)


def add_parsers(sub) -> None:
    """Add the ``saliency``, ``guided-backprop`` and ``occlusion`` sub-commands to ``sub``."""
    from ..visualization.saliency import GrabCutConfig, OcclusionConfig

    p = add_picture_command(
        sub, "saliency", "backprop saliency map (Simonyan et al. 2014)",
        "The gradient of the target class's logit with respect to the input, max over "
        "colour channels of its magnitude (Simonyan, Vedaldi & Zisserman 2014). With "
        "--segment, GrabCut seeded by the map segments the object (their sec. 3.1).")
    p.add_argument("--wrt", choices=("input", "pixels"), default="input", help="differentiate "
                   "w.r.t. the normalised model input or the [0, 1] pixels (default %(default)s)")
    g = GrabCutConfig()
    p.add_argument("--segment", action="store_true", help="also write a GrabCut segmentation "
                   "(mask.png, segmentation.png)")
    p.add_argument("--fg-percentile", type=float, default=g.fg_percentile)
    p.add_argument("--bg-percentile", type=float, default=g.bg_percentile)
    p.add_argument("--out", default="runs/saliency", help="output folder (default: %(default)s)")
    p.set_defaults(run=run_saliency)

    p = add_picture_command(
        sub, "guided-backprop", "guided backprop (Springenberg et al. 2015)",
        "The target logit's input gradient with every Relu node of the ONNX graph "
        "using the guided backward rule (Springenberg et al. 2015).")
    p.add_argument("--wrt", choices=("input", "pixels"), default="input")
    p.add_argument("--out", default="runs/guided_backprop", help="output folder (default: "
                   "%(default)s)")
    p.set_defaults(run=run_guided_backprop)

    d = OcclusionConfig()
    p = add_picture_command(
        sub, "occlusion", "occlusion sensitivity (Zeiler & Fergus 2014)",
        "Slide a window filled with --baseline over the image and map the mean drop of "
        "the target score over the windows covering each pixel (Zeiler & Fergus 2014; "
        "defined as Captum's Occlusion).")
    p.add_argument("--window", type=positive_int, nargs="+", default=[d.window],
                   help="window size, "
                   "one int or H W (default %(default)s)")
    p.add_argument("--stride", type=positive_int, nargs="+", default=[d.stride],
                   help="step between "
                   "windows, 1..window, one int or H W (default %(default)s)")
    p.add_argument("--baseline", type=float, default=d.baseline, help="fill value (default "
                   "%(default)s)")
    p.add_argument("--baseline-space", choices=("pixels", "input"), default=d.baseline_space,
                   help="baseline as a [0, 1] pixel value or a normalised model-input value "
                   "(default %(default)s)")
    p.add_argument("--score", choices=("logit", "probability"), default=d.score)
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size,
                   help="windows per forward "
                   "pass (1: one at a time; default %(default)s)")
    p.add_argument("--out", default="runs/occlusion", help="output folder (default: "
                   "%(default)s)")
    p.set_defaults(run=run_occlusion)


# -- shared steps -------------------------------------------------------------------------------
def _record(args, picture, attribution, names, extra=None) -> dict:
    """``result.json`` of one explained picture."""
    t, p = int(attribution.target[0]), int(attribution.predicted[0])
    return {
        "technique": attribution.method,
        "model": args.model,
        "image": picture.name,
        "size": list(attribution.pixels.shape),
        "notes": picture.notes,
        "true_label": picture.label,
        **prediction_fields(names, t, p, attribution.target_probability[0],
                            attribution.probability[0]),
        "config": attribution.config,
        "seconds": round(attribution.seconds, 4),
        **(extra or {}),
    }


def _title(args, name, a, names) -> str:
    t, p = int(a.target[0]), int(a.predicted[0])
    tn = f" ({names[t]})" if names and t < len(names) else ""
    pn = f" ({names[p]})" if names and p < len(names) else ""
    return (f"{a.method.replace('_', ' ')}, {args.model}, {name}\ntarget {t}{tn}; predicted "
            f"{p}{pn}, p = {float(a.probability[0]):.2f}")


def _start(args):
    """(output folder, model, pixels, the picture), ``input.png`` written."""

    check_pictures(args.image)  # a bad image before the model is loaded
    out = open_run_folder(args)  # refuse a folder holding a run before any work
    model = load_model(args, classifier="explaining a class score")
    picture = load_picture(args, model)
    out.write_png("input.png", picture.pixels)
    return out, model, picture.pixels, picture


def _done(out, a) -> int:
    print(f"{a.method}: target {int(a.target[0])}, predicted {int(a.predicted[0])} "
          f"(p = {float(a.probability[0]):.3f}), {a.seconds:.2f} s; wrote {out.target}/",
          file=sys.stderr)
    return EXIT_OK


# -- the sub-commands ---------------------------------------------------------------------------
@finishes_run_folder
def run_saliency(args) -> int:
    from ..visualization.saliency import (
        GrabCutConfig,
        SaliencyConfig,
        colorize,
        draw_saliency,
        draw_segmentation,
        grabcut_segmentation,
        normalize_map,
        saliency,
    )

    grab = GrabCutConfig(fg_percentile=args.fg_percentile, bg_percentile=args.bg_percentile) \
        if args.segment else None  # checked before any work
    out, model, pixels, picture = _start(args)
    name = picture.name
    names = class_names(model)
    a = saliency(model, pixels, args.target, SaliencyConfig(wrt=args.wrt))
    out.write_png("saliency.png", normalize_map(a.map)[:, None])
    out.write_png("saliency_color.png", colorize(a.map[0], "hot"))
    caption = _title(args, name, a, names)
    out.write_figure("overlay.png", lambda p: draw_saliency(p, pixels, a.map[0], title=caption))
    extra = {}
    if grab is not None:
        mask = grabcut_segmentation(pixels, a.map, grab)
        out.write_png("mask.png", mask[:, None].astype("float32"))
        out.write_figure("segmentation.png", lambda p: draw_segmentation(
            p, pixels, mask[0], a.map[0], grab, title=caption))
        extra = {"segmentation": {"config": grab.to_dict(),
                                  "foreground_fraction": round(float(mask.mean()), 4)}}
    out.write_json("result.json", _record(args, picture, a, names, extra))
    return _done(out, a)


@finishes_run_folder
def run_guided_backprop(args) -> int:
    from ..visualization.saliency import (
        GuidedBackpropConfig,
        draw_guided_backprop,
        gradient_image,
        guided_backprop,
        normalize_map,
    )

    out, model, pixels, picture = _start(args)
    name = picture.name
    names = class_names(model)
    a = guided_backprop(model, pixels, args.target, GuidedBackpropConfig(wrt=args.wrt))
    out.write_png("guided_backprop.png", gradient_image(a.attribution))
    out.write_png("guided_backprop_magnitude.png", normalize_map(a.map)[:, None])
    caption = _title(args, name, a, names)
    out.write_figure("overlay.png", lambda p: draw_guided_backprop(
        p, pixels, a.attribution[0], title=caption))
    out.write_json("result.json", _record(args, picture, a, names))
    return _done(out, a)


def _pair_arg(flag: str, values: list[int]):
    """One int, or (H, W) from two; refuses more."""
    from ..visualization.checks import VisualizationError

    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return tuple(values)
    raise VisualizationError(f"{flag} takes one int or two (H W); got {len(values)} values")


@finishes_run_folder
def run_occlusion(args) -> int:
    from ..visualization.saliency import OcclusionConfig, colorize, draw_occlusion, occlusion

    config = OcclusionConfig(
        window=_pair_arg("--window", args.window), stride=_pair_arg("--stride", args.stride),
        baseline=args.baseline, baseline_space=args.baseline_space, score=args.score,
        batch_size=args.batch_size)  # checked before any work
    out, model, pixels, picture = _start(args)
    name = picture.name
    names = class_names(model)
    a = occlusion(model, pixels, args.target, config, progress=not args.quiet)
    out.write_png("occlusion.png", colorize(a.map[0], "RdBu_r", symmetric=True))
    caption = _title(args, name, a, names)
    out.write_figure("overlay.png", lambda p: draw_occlusion(p, pixels, a.map[0], title=caption))
    m = a.map[0]
    out.write_json("result.json", _record(args, picture, a, names, {
        "map": {"min": float(m.min()), "max": float(m.max()), "mean": float(m.mean())}}))
    return _done(out, a)
