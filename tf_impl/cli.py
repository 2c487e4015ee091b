"""Command line: ``python -m tf_impl <technique> ...``.

    python -m tf_impl feature-inversion --model vgg16_features --layer conv3_1 \\
        --image astronaut --steps 300 --out runs/fi

Each technique writes its pictures, its loss history (CSV and plot) and a ``result.json``
into ``--out``. Ctrl-C stops the optimisation and still writes what was reached.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

# aliases worth listing in --help (the rest: python -m model_zoo info NAME)
_HELP_MODELS = ("vgg16_features", "alexnet_features", "resnet18", "resnet20_cifar")


def _epilog() -> str:
    import model_zoo
    from model_zoo import data

    lines = ["models (zoo names, or a path to an .onnx file):",
             "  " + ", ".join(model_zoo.available()), "", "layers (aliases; any ONNX tensor name "
             "works too; `python -m model_zoo info NAME` lists all):"]
    for name in _HELP_MODELS:
        aliases = [a for a in model_zoo.info(name).layer_aliases if "." not in a]
        lines.append(f"  {name}: " + ", ".join(aliases))
    lines += ["", "bundled images (--image also takes a file path):",
              "  " + ", ".join(data.list_images())]
    return "\n".join(lines)


def _add_feature_inversion(sub) -> None:
    from .feature_inversion import FeatureInversionConfig

    d = FeatureInversionConfig()
    p = sub.add_parser(
        "feature-inversion",
        help="recover an image from a layer's activations (Mahendran & Vedaldi 2015)",
        description="Recover an image whose activations at --layer match those of --image, "
        "with a total-variation prior (Mahendran & Vedaldi 2015). Several layers give one "
        "reconstruction each (or one joint objective with --joint).",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="vgg16_features", help="zoo name or .onnx path "
                   "(default: %(default)s)")
    p.add_argument("--layer", action="append", required=True, help="layer alias or ONNX tensor "
                   "name; repeat or comma-separate for several (e.g. conv1_2,conv3_1)")
    p.add_argument("--joint", action="store_true", help="one objective over all layers")
    p.add_argument("--image", default="astronaut", help="bundled name or file (default: "
                   "%(default)s)")
    p.add_argument("--size", type=int, default=224, help="resize the image to this (shorter "
                   "side, centre crop; default %(default)s)")
    p.add_argument("--steps", type=int, default=d.optimize.steps)
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
    p.add_argument("--snapshot-every", type=int, default=0, help="write snapshots/*.png every "
                   "N steps (0: none)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS in result.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="runs/fi", help="output folder (default: %(default)s)")
    p.set_defaults(run=run_feature_inversion)


def _load_model(name_or_path: str):
    import model_zoo
    from converters import onnx_to_tf

    if name_or_path in model_zoo.available():
        return onnx_to_tf.load(model_zoo.load(name_or_path))
    path = Path(name_or_path)
    if path.suffix == ".onnx" or path.exists():
        return onnx_to_tf.load(path)
    raise ValueError(f"unknown model {name_or_path!r}: give a zoo name ("
                     f"{', '.join(model_zoo.available())}) or a path to an .onnx file")


def run_feature_inversion(args) -> int:
    import numpy as np

    from . import images as imgs
    from .feature_inversion import FeatureInversionConfig, invert_features
    from .report import OutputDir, caption, history_figure, image_grid_figure

    out = OutputDir(args.out)  # refuse an unwritable folder before any work
    layers = [s.strip() for spec in args.layer for s in spec.split(",") if s.strip()]
    config = FeatureInversionConfig(
        tv_weight=args.tv_weight, tv_beta=args.tv_beta or None, alpha_weight=args.alpha_weight,
        alpha=args.alpha, init=args.init, seed=args.seed,
    ).with_(steps=args.steps, learning_rate=args.lr, optimizer=args.optimizer,
            progress=not args.quiet, snapshot_every=args.snapshot_every)
    model = _load_model(args.model)
    for layer in layers:
        model.resolve(layer)
    if args.size < 16:
        raise ValueError(f"--size {args.size} is too small; use at least 16 (224 is the default)")
    imgs.check_memory(model, (1, 3, args.size, args.size), layers)  # before decoding a picture
    picture = imgs.load_image(args.image, args.size)
    for note in picture.notes:
        print(f"note: {args.image}: {note}", file=sys.stderr)
    groups = [layers] if args.joint else [[layer] for layer in layers]
    results, status = {}, EXIT_OK
    for group in groups:
        run_name = "+".join(group)
        safe = run_name.replace("/", "_").replace("+", "__")

        def snapshot(step, loss, terms, opt, _safe=safe):
            every = args.snapshot_every
            if every and step % every == 0:
                px = imgs.denormalize(opt.value(), *imgs.preprocessing_of(model))
                out.write_png(f"snapshots/{_safe}_step{step:05d}.png", np.clip(px, 0, 1))
            return False

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
        if result.stopped:
            print(f"  stopped: {result.message}", file=sys.stderr)
            status = EXIT_INTERRUPTED if result.interrupted else EXIT_FAILED
            if result.interrupted:
                break
    _write_feature_inversion_outputs(out, args, picture, results, caption, history_figure,
                                     image_grid_figure)
    print(f"wrote {out.path}/", file=sys.stderr)
    return status


def _write_feature_inversion_outputs(out, args, picture, results, caption, history_figure,
                                     image_grid_figure) -> None:
    import numpy as np

    if len(results) > 1:  # one picture holding every layer's reconstruction
        row = np.concatenate([r.image for r in results.values()], axis=3)
        out.write_png("reconstruction.png", row)
    panels = [("original", picture.pixels)] + [
        (caption(name, r.metrics), r.image) for name, r in results.items()
    ]
    out.write_figure("comparison.png", lambda p: image_grid_figure(
        p, panels, title=f"feature inversion, {args.model}, {picture.name}"))
    histories = {name: r.history for name, r in results.items()}
    out.write_history_csv("history.csv", histories)
    out.write_figure("history.png", lambda p: history_figure(
        p, histories, title=f"feature inversion, {args.model}"))
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tf_impl",
        description="Model inversion and CNN visualization on ONNX models, in TensorFlow.",
    )
    sub = parser.add_subparsers(dest="technique", metavar="TECHNIQUE", required=True)
    _add_feature_inversion(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import converters  # noqa: F401  (quiet TF logs; blocks a crashing triton import)

    parser = build_parser()
    args = parser.parse_args(argv)
    from converters.onnx_to_tf import OnnxImportError
    from model_zoo import ModelZooError

    from .images import ImageError
    from .report import OutputError

    t0 = time.perf_counter()
    try:
        status = args.run(args)
    except (ValueError, OnnxImportError, ModelZooError, ImageError, OutputError,
            FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
