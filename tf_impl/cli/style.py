"""The Gatys family: ``texture`` and ``style-transfer``.

    python -m tf_impl texture --image starry_night --size 256 --steps 300 --out runs/texture
    python -m tf_impl style-transfer --content tubingen --style starry_night --out runs/style

Each run writes the result (``result.png``), its inputs (``content.png``/``style.png`` or
``source.png``), a figure content | style | result (``comparison.png``; source | synthesized
for textures), ``history.csv``/``history.png`` (every loss term per step) and ``result.json``
(config, metrics, seconds, steps). Ctrl-C stops the optimisation and still writes what was
reached.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from .common import (
    add_model_options,
    at_least,
    check_pictures,
    epilog,
    exit_status,
    finishes_run_folder,
    load_model,
    non_negative_int,
    open_run_folder,
    positive_int,
    snapshot_writer,
    split_list,
)

MIN_SIZE = 16  # the smallest picture side (tf_impl.visualization.style's MIN_SIZE)


def _split(specs) -> tuple[str, ...] | None:
    return tuple(split_list(specs)) if specs else None


def _floats(spec: str | None) -> tuple[float, ...] | None:
    if not spec:
        return None
    try:
        return tuple(float(s) for s in spec.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"weights must be comma-separated numbers; got {spec!r}") from None


# (optimizer, learning rate, steps) when --optimizer is not the config's default optimizer
# and --lr / --steps are not given (the config's defaults otherwise)
_OTHER = {"texture": ("adam", 0.1, 300), "style-transfer": ("lbfgs", 1.0, 15)}


def _defaults(technique: str, d) -> dict[str, tuple[float, int]]:
    name, lr, steps = _OTHER[technique]
    return {d.optimize.optimizer: (d.optimize.learning_rate, d.optimize.steps), name: (lr, steps)}


def _common(p, d, out: str, technique: str) -> None:
    opt = d.optimize
    lrs = _defaults(technique, d)
    add_model_options(p, "vgg16_features", help="zoo name or .onnx path of a feature "
                      "extractor")
    p.add_argument("--size", type=at_least(MIN_SIZE), default=None, help="resize pictures to "
                   "this (shorter "
                   "side, centre crop; default 256, or the model's fixed input size)")
    p.add_argument("--optimizer", choices=("adam", "lbfgs"), default=opt.optimizer,
                   help="adam or lbfgs (the papers' choice; a step is then 20 iterations); "
                   "default %(default)s")
    p.add_argument("--steps", type=positive_int, default=None,
                   help=f"default {lrs['adam'][1]} with "
                   f"adam, {lrs['lbfgs'][1]} with lbfgs")
    p.add_argument("--lr", type=float, default=None, help=f"learning rate (default "
                   f"{lrs['adam'][0]:g} with adam, {lrs['lbfgs'][0]:g} with lbfgs)")
    p.set_defaults(technique_name=technique)
    p.add_argument("--style-weight", type=float, default=d.style_weight, help="beta "
                   "(default %(default)g; Grams normalised by C*H*W, mean squared error)")
    p.add_argument("--tv-weight", type=float, default=d.tv_weight)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--snapshot-every", type=non_negative_int, default=0,
                   help="write snapshots/*.png every "
                   "N steps (0: none)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default=out, help="output folder (default: %(default)s)")


def add_parsers(sub) -> None:
    """Add ``texture`` and ``style-transfer`` to ``sub`` (argparse subparsers)."""
    from ..visualization.style import StyleTransferConfig, TextureConfig

    t = TextureConfig()
    p = sub.add_parser(
        "texture",
        help="synthesise a texture by matching Gram matrices (Gatys et al. 2015)",
        description="Synthesise a new sample of --image's texture from noise by matching the "
        "Gram matrices of several layers of a feature extractor (Gatys, Ecker & Bethge 2015).",
        epilog=epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image", default="starry_night", help="texture source: bundled name, "
                   "file or cifar10:K (default: %(default)s)")
    p.add_argument("--output-size", type=at_least(MIN_SIZE), default=None,
                   help="size of the synthesised "
                   "texture (default: the source's)")
    p.add_argument("--layers", action="append", help="layers whose Grams are matched, comma-"
                   f"separated (default: {','.join(t.layers)})")
    p.add_argument("--layer-weights", default=None, help="one weight per layer, comma-"
                   "separated (default: 1/L each)")
    _common(p, t, "runs/texture", "texture")
    p.set_defaults(run=run_texture)

    s = StyleTransferConfig()
    p = sub.add_parser(
        "style-transfer",
        help="render a photograph in the style of a painting (Gatys et al. 2016)",
        description="Neural style transfer (Gatys, Ecker & Bethge 2016): match --content's "
        "features at the content layers and --style's Gram matrices at the style layers, with a "
        "small total-variation prior.",
        epilog=epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--content", default="tubingen",
                   help="bundled name, file or cifar10:K (default: "
                   "%(default)s)")
    p.add_argument("--style", default="starry_night",
                   help="bundled name, file or cifar10:K (default: "
                   "%(default)s)")
    p.add_argument("--style-size", type=at_least(MIN_SIZE), default=None,
                   help="resize the style image to "
                   "this (default: the content's size; larger gives finer strokes)")
    p.add_argument("--content-layers", action="append", help="comma-separated (default: "
                   f"{','.join(s.content_layers)})")
    p.add_argument("--style-layers", action="append", help="comma-separated (default: "
                   f"{','.join(s.style_layers)})")
    p.add_argument("--style-layer-weights", default=None, help="one weight per style layer, "
                   "comma-separated (default: 1/L each)")
    p.add_argument("--content-weight", type=float, default=s.content_weight, help="alpha "
                   "(default %(default)g; mean squared feature error)")
    p.add_argument("--init", choices=("content", "noise", "style"), default=s.init)
    _common(p, s, "runs/style", "style-transfer")
    p.set_defaults(run=run_style_transfer)


def _optimize(args, d) -> dict:
    lr, steps = _defaults(args.technique_name, d)[args.optimizer]
    steps = steps if args.steps is None else args.steps
    return dict(steps=steps, learning_rate=lr if args.lr is None else args.lr,
                optimizer=args.optimizer, progress=not args.quiet,
                snapshot_every=args.snapshot_every)


def _finish(out, args, result, technique: str, extra: dict) -> int:
    out.write_history({technique: result.history}, title=f"{technique}, {args.model}")
    summary = result.summary()
    out.write_json("result.json", {"technique": result.technique, "model": args.model,
                                   **extra, **summary})
    m = result.metrics
    print(f"  style loss {m['style_loss_start']:.3g} -> {m['style_loss']:.3g}"
          + (f", content loss {m['content_loss']:.3g}" if "content_loss" in m else "")
          + f", {result.steps} steps in {result.seconds:.1f} s", file=sys.stderr)
    print(f"wrote {out.target}/", file=sys.stderr)
    return exit_status(result, prefix="  ")


@finishes_run_folder
def run_texture(args) -> int:
    from ..visualization.style import TextureConfig, draw_texture, synthesize_texture

    out = open_run_folder(args)  # refuse an unwritable folder before any work
    kw = {"layers": _split(args.layers)} if args.layers else {}
    config = TextureConfig(layer_weights=_floats(args.layer_weights), style_weight=
                           args.style_weight, tv_weight=args.tv_weight, seed=args.seed,
                           **kw).with_(**_optimize(args, TextureConfig()))
    check_pictures(args.image)  # a bad image before the model is loaded
    model = load_model(args)
    print(f"texture: {args.model}, {args.image}, layers {','.join(config.layers)}, "
          f"{config.optimize.steps} {config.optimize.optimizer} steps", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = synthesize_texture(model, args.image, config, size=args.size,
                                    output_size=args.output_size,
                                    callback=snapshot_writer(out, model, args.snapshot_every))
    for note in result.extra["notes"]:
        print(f"note: {args.image}: {note}", file=sys.stderr)
    out.write_png("result.png", result.image)
    out.write_png("source.png", result.original)
    out.write_figure("comparison.png", lambda p: draw_texture(
        p, result.original, result.image, title=f"texture synthesis, {args.model}, "
        f"{result.extra['texture']}"))
    return _finish(out, args, result, "texture", {"image": result.extra["texture"]})


@finishes_run_folder
def run_style_transfer(args) -> int:
    from .. import images as imgs
    from ..visualization.style import StyleTransferConfig, draw_style_transfer, style_transfer

    out = open_run_folder(args)
    kw = {}
    if args.content_layers:
        kw["content_layers"] = _split(args.content_layers)
    if args.style_layers:
        kw["style_layers"] = _split(args.style_layers)
    config = StyleTransferConfig(
        style_layer_weights=_floats(args.style_layer_weights), content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight, init=args.init, seed=args.seed,
        **kw).with_(**_optimize(args, StyleTransferConfig()))
    check_pictures(args.content, args.style)  # a bad image before the model is loaded
    model = load_model(args)
    print(f"style-transfer: {args.model}, {args.content} in the style of {args.style}, "
          f"{config.optimize.steps} {config.optimize.optimizer} steps", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = style_transfer(model, args.content, args.style, config, size=args.size,
                                style_size=args.style_size,
                                callback=snapshot_writer(out, model, args.snapshot_every))
    for note in result.extra["notes"]:
        print(f"note: {note}", file=sys.stderr)
    # the style picture as the run saw it (same resize and crop)
    style_px = imgs.load_image(args.style, result.extra["style_shape"][2]).pixels
    out.write_png("result.png", result.image)
    out.write_png("content.png", result.original)
    out.write_png("style.png", style_px)
    out.write_figure("comparison.png", lambda p: draw_style_transfer(
        p, result.original, style_px, result.image, title=f"style transfer, {args.model}: "
        f"{result.extra['content']} x {result.extra['style']}"))
    return _finish(out, args, result, "style_transfer",
                   {"content": result.extra["content"], "style": result.extra["style"]})
