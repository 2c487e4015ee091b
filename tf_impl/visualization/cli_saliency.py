"""Command line for :mod:`tf_impl.visualization.saliency`: ``saliency``, ``guided-backprop`` and
``occlusion`` sub-commands of ``python -m tf_impl``.

    python -m tf_impl saliency --model resnet20_cifar --image cifar10:3 --segment --out runs/sal
    python -m tf_impl guided-backprop --model vgg16 --image cat_dog --target 243 --out runs/gb
    python -m tf_impl occlusion --model resnet20_cifar --window 8 --stride 4 --out runs/occ

Each writes ``input.png``, the map(s) as PNG, ``overlay.png`` (image | map | overlay) and
``result.json`` (target class, predicted class and its probability, the config, seconds).
``tf_impl/cli.py`` wires :func:`add_parsers` into its parser; bad input raises
:class:`~tf_impl.visualization.checks.VisualizationError` (a ValueError), which its ``main``
prints as one ``error:`` line with exit status 2.
"""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
_CIFAR = "cifar10:"


def _epilog() -> str:
    import model_zoo
    from model_zoo import data

    return "\n".join([
        "models (zoo classifiers, or a path to an .onnx file):",
        "  " + ", ".join(n for n in model_zoo.available() if not n.endswith("_features")),
        "", "images (--image): a bundled photo, a file, or cifar10:K (the K-th bundled CIFAR-10 "
        "test image, 0..999); default cifar10:0 for 32x32 models, cat_dog otherwise:",
        "  " + ", ".join(data.list_images()),
    ])


def _common(sub, name: str, help_: str, description: str, *, epilog: str | None = None,
            quiet_help: str = "no progress bar"):
    """A sub-command explaining one picture: --model, --image, --size, --target, --quiet
    (shared with the attribution commands)."""
    p = sub.add_parser(name, help=help_, description=description,
                       epilog=_epilog() if epilog is None else epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20_cifar", help="zoo classifier or .onnx path "
                   "(default: %(default)s)")
    p.add_argument("--image", default=None, help="bundled name, file, or cifar10:K (default: "
                   "cifar10:0 for 32x32 models, cat_dog otherwise)")
    p.add_argument("--size", type=int, default=224, help="image size for models that take any "
                   "size (fixed-size models use theirs; default %(default)s)")
    p.add_argument("--target", type=int, default=None, help="class to explain (default: the "
                   "predicted class)")
    p.add_argument("--quiet", action="store_true", help=quiet_help)
    return p


def add_parsers(sub) -> None:
    """Add the ``saliency``, ``guided-backprop`` and ``occlusion`` sub-commands to ``sub``."""
    from .saliency import GrabCutConfig, OcclusionConfig

    p = _common(sub, "saliency", "backprop saliency map (Simonyan et al. 2014)",
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

    p = _common(sub, "guided-backprop", "guided backprop (Springenberg et al. 2015)",
                "The target logit's input gradient with every Relu node of the ONNX graph "
                "using the guided backward rule (Springenberg et al. 2015).")
    p.add_argument("--wrt", choices=("input", "pixels"), default="input")
    p.add_argument("--out", default="runs/guided_backprop", help="output folder (default: "
                   "%(default)s)")
    p.set_defaults(run=run_guided_backprop)

    d = OcclusionConfig()
    p = _common(sub, "occlusion", "occlusion sensitivity (Zeiler & Fergus 2014)",
                "Slide a window filled with --baseline over the image and map the mean drop of "
                "the target score over the windows covering each pixel (Zeiler & Fergus 2014; "
                "defined as Captum's Occlusion).")
    p.add_argument("--window", type=int, nargs="+", default=[d.window], help="window size, "
                   "one int or H W (default %(default)s)")
    p.add_argument("--stride", type=int, nargs="+", default=[d.stride], help="step between "
                   "windows, 1..window, one int or H W (default %(default)s)")
    p.add_argument("--baseline", type=float, default=d.baseline, help="fill value (default "
                   "%(default)s)")
    p.add_argument("--baseline-space", choices=("pixels", "input"), default=d.baseline_space,
                   help="baseline as a [0, 1] pixel value or a normalised model-input value "
                   "(default %(default)s)")
    p.add_argument("--score", choices=("logit", "probability"), default=d.score)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="windows per forward "
                   "pass (1: one at a time; default %(default)s)")
    p.add_argument("--out", default="runs/occlusion", help="output folder (default: "
                   "%(default)s)")
    p.set_defaults(run=run_occlusion)


# -- shared steps -------------------------------------------------------------------------------
def _load_model(name: str):
    from ..cli import _load_model as load

    return load(name)


def _picture(args, model):
    """(pixels (1, 3, H, W), image name, true label or None)."""
    from model_zoo import data

    from .. import images as imgs
    from . import checks

    fixed = checks.fixed_size(model)
    spec = args.image or (f"{_CIFAR}0" if fixed == (32, 32) else "cat_dog")
    if spec.startswith(_CIFAR):
        try:
            k = int(spec[len(_CIFAR):])
        except ValueError:
            raise checks.VisualizationError(
                f"--image {spec!r}: write cifar10:K with K an integer in [0, 1000)") from None
        if not 0 <= k < 1000:
            raise checks.VisualizationError(
                f"--image {spec!r}: K must be in [0, 1000) (the bundled CIFAR-10 test images)")
        pixels, labels = data.cifar10("test", n=k + 1, normalize=False)
        return pixels[k:k + 1], spec, int(labels[k])
    if args.size < 8:
        raise checks.VisualizationError(f"--size {args.size} is too small; use at least 8")
    picture = imgs.load_image(spec, fixed[0] if fixed else args.size)
    for note in picture.notes:
        print(f"note: {spec}: {note}", file=sys.stderr)
    label = data.image_label(spec) if spec in data.list_images() else None
    return picture.pixels, picture.name, label


def _class_names(model_name: str):
    import model_zoo

    if model_name in model_zoo.available():
        names = model_zoo.info(model_name).class_names
        return list(names) if names else None
    return None


def _record(args, name, label, attribution, extra=None) -> dict:
    names = _class_names(args.model)
    t, p = int(attribution.target[0]), int(attribution.predicted[0])

    def named(k):
        return names[k] if names and 0 <= k < len(names) else None

    return {
        "technique": attribution.method,
        "model": args.model,
        "image": name,
        "size": list(attribution.pixels.shape),
        "true_label": label,
        "target_class": t,
        "target_name": named(t),
        "target_probability": round(float(attribution.target_probability[0]), 6),
        "predicted_class": p,
        "predicted_name": named(p),
        "probability": round(float(attribution.probability[0]), 6),
        "config": attribution.config,
        "seconds": round(attribution.seconds, 4),
        **(extra or {}),
    }


def _title(args, name, a) -> str:
    names = _class_names(args.model)
    t, p = int(a.target[0]), int(a.predicted[0])
    tn = f" ({names[t]})" if names and t < len(names) else ""
    pn = f" ({names[p]})" if names and p < len(names) else ""
    return (f"{a.method.replace('_', ' ')}, {args.model}, {name}\ntarget {t}{tn}; predicted "
            f"{p}{pn}, p = {float(a.probability[0]):.2f}")


def _start(args):
    from ..report import OutputDir

    out = OutputDir(args.out)  # refuse an unwritable folder before any work
    model = _load_model(args.model)
    pixels, name, label = _picture(args, model)
    out.write_png("input.png", pixels)
    return out, model, pixels, name, label


def _done(out, a) -> int:
    print(f"{a.method}: target {int(a.target[0])}, predicted {int(a.predicted[0])} "
          f"(p = {float(a.probability[0]):.3f}), {a.seconds:.2f} s; wrote {out.path}/",
          file=sys.stderr)
    return EXIT_OK


# -- the sub-commands ---------------------------------------------------------------------------
def run_saliency(args) -> int:
    from .saliency import (
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
    out, model, pixels, name, label = _start(args)
    a = saliency(model, pixels, args.target, SaliencyConfig(wrt=args.wrt))
    out.write_png("saliency.png", normalize_map(a.map)[:, None])
    out.write_png("saliency_color.png", colorize(a.map[0], "hot"))
    title = _title(args, name, a)
    out.write_figure("overlay.png", lambda p: draw_saliency(p, pixels, a.map[0], title=title))
    extra = {}
    if grab is not None:
        mask = grabcut_segmentation(pixels, a.map, grab)
        out.write_png("mask.png", mask[:, None].astype("float32"))
        out.write_figure("segmentation.png", lambda p: draw_segmentation(
            p, pixels, mask[0], a.map[0], grab, title=title))
        extra = {"segmentation": {"config": grab.to_dict(),
                                  "foreground_fraction": round(float(mask.mean()), 4)}}
    out.write_json("result.json", _record(args, name, label, a, extra))
    return _done(out, a)


def run_guided_backprop(args) -> int:
    from .saliency import (
        GuidedBackpropConfig,
        draw_guided_backprop,
        gradient_image,
        guided_backprop,
        normalize_map,
    )

    out, model, pixels, name, label = _start(args)
    a = guided_backprop(model, pixels, args.target, GuidedBackpropConfig(wrt=args.wrt))
    out.write_png("guided_backprop.png", gradient_image(a.attribution))
    out.write_png("guided_backprop_magnitude.png", normalize_map(a.map)[:, None])
    title = _title(args, name, a)
    out.write_figure("overlay.png", lambda p: draw_guided_backprop(
        p, pixels, a.attribution[0], title=title))
    out.write_json("result.json", _record(args, name, label, a))
    return _done(out, a)


def _pair_arg(flag: str, values: list[int]):
    from .checks import VisualizationError

    if len(values) == 1:
        return values[0]
    if len(values) == 2:
        return tuple(values)
    raise VisualizationError(f"{flag} takes one int or two (H W); got {len(values)} values")


def run_occlusion(args) -> int:
    from .saliency import OcclusionConfig, colorize, draw_occlusion, occlusion

    config = OcclusionConfig(
        window=_pair_arg("--window", args.window), stride=_pair_arg("--stride", args.stride),
        baseline=args.baseline, baseline_space=args.baseline_space, score=args.score,
        batch_size=args.batch_size)  # checked before any work
    out, model, pixels, name, label = _start(args)
    a = occlusion(model, pixels, args.target, config, progress=not args.quiet)
    out.write_png("occlusion.png", colorize(a.map[0], "RdBu_r", symmetric=True))
    title = _title(args, name, a)
    out.write_figure("overlay.png", lambda p: draw_occlusion(p, pixels, a.map[0], title=title))
    m = a.map[0]
    out.write_json("result.json", _record(args, name, label, a, {
        "map": {"min": float(m.min()), "max": float(m.max()), "mean": float(m.mean())}}))
    return _done(out, a)
