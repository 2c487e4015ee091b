"""Fast style transfer: ``fast-style`` (apply) and ``fast-style-train``.

    python -m tf_impl fast-style --image tubingen --style starry_night --out runs/fs
    python -m tf_impl fast-style --image photo.jpg --blend 0.5,0.5,0 --out runs/fs_blend
    python -m tf_impl fast-style-train --styles starry_night,udnie --steps 2000 --out runs/fsm

``add_parsers(sub)`` adds both to the project's command line; :func:`add_apply_parser` and
:func:`add_train_parser` add one each under any name. ``--model`` is a
saved style network folder here, not an ONNX classifier, so these commands take no contract
flags.
"""

from __future__ import annotations

import json
import sys
import time

from .common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    at_least,
    check_pictures,
    finishes_run_folder,
    non_negative_int,
    open_run_folder,
    positive_int,
    split_list,
)


def add_parsers(sub) -> None:
    """Add ``fast-style`` and ``fast-style-train`` to argparse subparsers ``sub``."""
    add_apply_parser(sub, "fast-style")
    add_train_parser(sub, "fast-style-train")


def _shipped_styles() -> str:
    try:
        from ..visualization.fast_style import CONFIG_FILE, shipped_path

        meta = json.loads((shipped_path() / CONFIG_FILE).read_text())
        return ", ".join(f"{i} {s['name']}" for i, s in enumerate(meta["styles"]))
    except Exception:  # help text only
        return "(shipped model not found)"


def add_apply_parser(sub, name: str) -> None:
    p = sub.add_parser(
        name, help="stylise an image with a trained feed-forward style network "
        "(Johnson et al. 2016, conditional instance norm of Dumoulin et al. 2017)",
        description="Stylise --image in one forward pass of a trained multi-style network: "
        "one style (--style) or a convex blend of its styles (--blend). Writes stylized.png, "
        "styles.png (content | every style | the blend) and result.json.",
        epilog=f"styles of the shipped model: {_shipped_styles()}",
    )
    p.add_argument("--model", default=None, help="saved model folder (fast_style.json + "
                   "fast_style.npz; default: the shipped model_zoo/assets/fast_style)")
    p.add_argument("--image", default="tubingen", help="bundled name, file or cifar10:K (default: "
                   "%(default)s)")
    p.add_argument("--size", type=at_least(16), default=256,
                   help="resize the image to this (shorter "
                   "side, centre crop; default %(default)s)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--style", default="0", help="style index or name (default 0)")
    group.add_argument("--blend", default=None, help="comma-separated weights, one per style, "
                       ">= 0 and summing to 1 (e.g. 0.5,0.5,0)")
    p.add_argument("--quiet", action="store_true", help="no messages")
    p.add_argument("--out", default="runs/fast_style", help="output folder (default: "
                   "%(default)s)")
    p.set_defaults(run=run_apply)


def add_train_parser(sub, name: str) -> None:
    from ..visualization.fast_style import FastStyleConfig

    d = FastStyleConfig()
    p = sub.add_parser(
        name, help="train a multi-style feed-forward style network (Johnson et al. 2016 + "
        "Dumoulin et al. 2017)",
        description="Train one transformation network with conditional instance norm on "
        "several styles against VGG-16 perceptual losses, then save it (fast_style.json + "
        "fast_style.npz) with its loss history and a preview into --out. Ctrl-C saves what "
        "was trained.",
    )
    p.add_argument("--styles", default=",".join(d.styles), help="comma-separated style images "
                   "(bundled names or files; default %(default)s)")
    p.add_argument("--steps", type=positive_int, default=d.steps)
    p.add_argument("--size", type=at_least(16), default=d.image_size, help="training crop size "
                   "(multiple of 4; default %(default)s)")
    p.add_argument("--style-size", type=at_least(16), default=d.style_size)
    p.add_argument("--batch", type=positive_int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.learning_rate)
    p.add_argument("--channels", default=",".join(map(str, d.channels)), help="three filter "
                   "counts (default %(default)s)")
    p.add_argument("--blocks", type=non_negative_int, default=d.residual_blocks,
                   help="residual blocks (default %(default)s)")
    p.add_argument("--content-weight", type=float, default=d.content_weight)
    p.add_argument("--style-weight", type=float, default=d.style_weight)
    p.add_argument("--tv-weight", type=float, default=d.tv_weight)
    p.add_argument("--cifar-fraction", type=float, default=d.cifar_fraction)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--resume", default=None, help="a saved model folder to go on training")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="runs/fast_style_model", help="folder for the model "
                   "(default: %(default)s)")
    p.set_defaults(run=run_train)


def _blend(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--blend must be comma-separated numbers, e.g. 0.5,0.5,0; got "
                         f"{text!r}") from None


@finishes_run_folder
def run_apply(args) -> int:
    from .. import images as imgs
    from .. import interrupts
    from ..visualization import fast_style as fs

    check_pictures(args.image)  # a bad image before the model is loaded
    out = open_run_folder(args)  # refuse a folder holding a run before any work
    model = fs.load(args.model)
    interrupts.check("while loading the model")  # Ctrl-C/SIGTERM so far: nothing to keep yet
    style = _blend(args.blend) if args.blend is not None else args.style
    weights = fs.style_weights(model, style)
    picture = imgs.load_image(args.image, args.size)
    for note in picture.notes:
        print(f"note: {args.image}: {note}", file=sys.stderr)
    t0 = time.perf_counter()
    result = fs.apply(model, picture.pixels, weights)
    seconds = time.perf_counter() - t0
    out.write_png("stylized.png", result)
    out.write_png("content.png", picture.pixels)
    out.write_figure("styles.png", lambda p: fs.draw_styles(
        p, model, picture.pixels, blend=weights if args.blend is not None else None))
    out.write_json("result.json", {
        "technique": "fast_style",
        "model": str(args.model or fs.shipped_path()),
        "styles": list(model.styles),
        "style_weights": [round(float(w), 6) for w in weights],
        "image": picture.name,
        "notes": picture.notes,
        "size": list(result.shape),
        "seconds": round(seconds, 4),
        "files": ["stylized.png", "content.png", "styles.png"],
    })
    if not args.quiet:
        used = ", ".join(f"{w:.2f} {n}" for w, n in zip(weights, model.styles) if w > 0)
        print(f"fast-style: {picture.name} with {used} in {seconds:.2f} s; wrote {out.target}/",
              file=sys.stderr)
    return EXIT_OK


@finishes_run_folder
def run_train(args) -> int:
    from ..visualization import fast_style as fs

    out = open_run_folder(args)
    try:
        channels = tuple(int(c) for c in args.channels.split(","))
    except ValueError:
        raise ValueError(f"--channels must be three integers, e.g. 16,32,32; got "
                         f"{args.channels!r}") from None
    styles = tuple(split_list(args.styles))
    for s in styles:
        fs.load_style(s, 16)  # an unknown or unreadable style is refused before any work
    config = fs.FastStyleConfig(
        styles=styles, channels=channels, residual_blocks=args.blocks, image_size=args.size,
        style_size=args.style_size, batch_size=args.batch, steps=args.steps,
        learning_rate=args.lr, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight,
        cifar_fraction=args.cifar_fraction, seed=args.seed)
    model = None
    if args.resume:
        model = fs.load(args.resume)
        if tuple(model.styles) != styles:
            raise ValueError(f"--resume model holds styles {list(model.styles)}; pass "
                             f"--styles {','.join(model.styles)}")
        config = config.with_(channels=tuple(model.config.channels),
                              residual_blocks=model.config.residual_blocks,
                              outer_kernel=model.config.outer_kernel)
        model.config = config
    if not args.quiet:
        print(f"fast-style-train: {len(styles)} styles ({', '.join(styles)}), {args.steps} "
              f"steps of {args.batch}x{args.size}x{args.size}", file=sys.stderr)
    result = fs.train(config, model=model, progress=not args.quiet)
    summary = result.summary()
    summary["loss_curve_every_100"] = _curve(result.history["loss"], 100)
    fs.save(result.model, out.path, training=summary)
    plotted = {k: v for k, v in result.history.items() if k != "style_index"}
    out.write_history({"train": result.history}, title="fast style transfer training",
                      plotted={"train": plotted})
    out.write_figure("styles.png", lambda p: fs.draw_styles(p, result.model, "tubingen"))
    out.write_json("result.json", {"technique": "fast_style_train", "config": config.to_dict(),
                                   **summary})
    if not args.quiet:
        for name in result.model.styles:
            b, a = result.before.get(name), result.after.get(name)
            if b and a:
                print(f"  {name}: held-out loss {b['loss']:.4g} -> {a['loss']:.4g} (content "
                      f"{b['content']:.3g} -> {a['content']:.3g}, style {b['style']:.3g} -> "
                      f"{a['style']:.3g})", file=sys.stderr)
        print(f"  {result.message}; wrote {out.target}/", file=sys.stderr)
    if result.stopped == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_FAILED if result.stopped == "non-finite" else EXIT_OK


def _curve(values, every: int) -> list[float]:
    return [round(float(sum(values[i:i + every]) / len(values[i:i + every])), 6)
            for i in range(0, len(values), every)]
