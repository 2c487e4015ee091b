"""``feature-inversion``: recover an image from a layer's activations (Mahendran & Vedaldi 2015).

    python -m tf_impl feature-inversion --model vgg16_features --layer conv3_1 \\
        --image astronaut --steps 300 --out runs/fi

Writes ``reconstruction.png`` (one per layer with several), ``comparison.png``,
``history.csv``/``history.png``, ``result.json`` and, with ``--snapshot-every N``,
``snapshots/*.png``.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from .common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
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
    working_size,
)


def add_parsers(sub) -> None:
    """Add ``feature-inversion`` to argparse subparsers ``sub``."""
    from ..feature_inversion import FeatureInversionConfig

    d = FeatureInversionConfig()
    p = sub.add_parser(
        "feature-inversion",
        help="recover an image from a layer's activations (Mahendran & Vedaldi 2015)",
        description="Recover an image whose activations at --layer match those of --image, "
        "with a total-variation prior (Mahendran & Vedaldi 2015). Several layers give one "
        "reconstruction each (or one joint objective with --joint).",
        epilog=epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_options(p, "vgg16_features")
    p.add_argument("--layer", action="append", required=True, help="layer alias or ONNX tensor "
                   "name; repeat or comma-separate for several (e.g. conv1_2,conv3_1)")
    p.add_argument("--joint", action="store_true", help="one objective over all layers")
    p.add_argument("--image", default="astronaut", help="bundled name, file or cifar10:K "
                   "(default: %(default)s)")
    p.add_argument("--size", type=at_least(16), default=None, help="resize the image to this "
                   "(shorter side, centre crop; default 224, or the model's fixed input size); a "
                   "size that would not fit in memory is refused with the largest that does "
                   "(TF_IMPL_MEMORY_LIMIT, e.g. 2G, plans for less)")
    p.add_argument("--steps", type=positive_int, default=d.optimize.steps)
    p.add_argument("--lr", type=float, default=d.optimize.learning_rate, help="Adam learning "
                   "rate (default %(default)s)")
    p.add_argument("--optimizer", choices=("adam", "sgd", "lbfgs"), default="adam")
    p.add_argument("--tv-weight", type=float, default=d.tv_weight)
    p.add_argument("--tv-beta", type=float, default=d.tv_beta, help="beta of TV^beta; 0 for "
                   "tf.image.total_variation (default %(default)s)")
    p.add_argument("--alpha-weight", type=float, default=d.alpha_weight)
    p.add_argument("--alpha", type=float, default=d.alpha)
    p.add_argument("--init", choices=("noise", "blur", "gray"), default=d.init)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--snapshot-every", type=non_negative_int, default=0, help="write "
                   "snapshots/*.png every N steps (0: none)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS in result.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="runs/fi", help="output folder (default: %(default)s)")
    p.set_defaults(run=run_feature_inversion)


@finishes_run_folder
def run_feature_inversion(args) -> int:
    from .. import images as imgs
    from .. import memory
    from ..feature_inversion import FeatureInversionConfig, invert_features

    out = open_run_folder(args)  # refuse an unwritable folder before any work
    layers = split_list(args.layer)
    config = FeatureInversionConfig(
        tv_weight=args.tv_weight, tv_beta=args.tv_beta or None, alpha_weight=args.alpha_weight,
        alpha=args.alpha, init=args.init, seed=args.seed,
    ).with_(steps=args.steps, learning_rate=args.lr, optimizer=args.optimizer,
            progress=not args.quiet, snapshot_every=args.snapshot_every)
    check_pictures(args.image)  # a bad image before the model is loaded
    model = load_model(args)
    for layer in layers:
        model.resolve(layer)
    size = working_size(args, model)
    memory.check_memory(model, (1, 3, size, size), layers)  # before decoding a picture
    picture = imgs.load_image(args.image, size)
    for note in picture.notes:
        print(f"note: {args.image}: {note}", file=sys.stderr)
    groups = [layers] if args.joint else [[layer] for layer in layers]
    results, status = {}, EXIT_OK
    for group in groups:
        run_name = "+".join(group)
        safe = run_name.replace("/", "_").replace("+", "__")
        snapshot = snapshot_writer(out, model, args.snapshot_every, prefix=f"{safe}_")
        print(f"feature-inversion: {args.model} {run_name}, {args.steps} steps", file=sys.stderr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the notes were printed above
            result = invert_features(model, picture.pixels, group, config, callback=snapshot,
                                     lpips=not args.no_lpips)
        results[run_name] = result
        suffix = "" if len(groups) == 1 else f"_{safe}"
        out.write_png(f"reconstruction{suffix}.png", result.image)
        m = result.metrics
        print(f"  {run_name}: PSNR {m.get('psnr', float('nan')):.2f} dB, SSIM "
              f"{m.get('ssim', float('nan')):.3f}"
              + (f", LPIPS {m['lpips_vgg']:.3f}" if "lpips_vgg" in m else "")
              + f", {result.steps} steps in {result.seconds:.1f} s", file=sys.stderr)
        code = exit_status(result, prefix="  ")
        if code != EXIT_OK:
            status = code
            if code == EXIT_INTERRUPTED:
                break
    write_outputs(out, args, picture, results)
    print(f"wrote {out.target}/", file=sys.stderr)
    return status


def write_outputs(out, args, picture, results) -> None:
    """The comparison figure, the histories and ``result.json`` of the runs in ``results``."""
    import numpy as np

    from ..report import caption, image_grid_figure

    if len(results) > 1:  # one picture holding every layer's reconstruction
        row = np.concatenate([r.image for r in results.values()], axis=3)
        out.write_png("reconstruction.png", row)
    panels = [("original", picture.pixels)] + [
        (caption(name, r.metrics), r.image) for name, r in results.items()
    ]
    out.write_figure("comparison.png", lambda p: image_grid_figure(
        p, panels, title=f"feature inversion, {args.model}, {picture.name}"))
    out.write_history({name: r.history for name, r in results.items()},
                      title=f"feature inversion, {args.model}")
    first = next(iter(results.values()))
    out.write_json("result.json", {
        "technique": "feature_inversion",
        "model": args.model,
        "image": picture.name,
        "size": list(picture.pixels.shape),
        "notes": picture.notes,
        "config": first.summary()["config"],
        "runs": {name: {k: v for k, v in r.summary().items() if k != "config"}
                 for name, r in results.items()},
        "seconds": round(sum(r.seconds for r in results.values()), 3),
        "steps": {name: r.steps for name, r in results.items()},
        "metrics": {name: r.metrics for name, r in results.items()},
    })
