"""Command line: ``python -m tf_impl <technique> ...``.

    python -m tf_impl feature-inversion --model vgg16_features --layer conv3_1 \\
        --image astronaut --steps 300 --out runs/fi
    python -m tf_impl gradient-inversion --model resnet20_cifar --batch 4 \\
        --attack gradinversion --out runs/gi
    python -m tf_impl saliency|occlusion|guided-backprop --model resnet20_cifar --out runs/sal
    python -m tf_impl class-viz|adversarial|deepdream ...
    python -m tf_impl texture|style-transfer|fast-style|fast-style-train ...
    python -m tf_impl integrated-gradients|idgi|fullgrad|attribution-eval ...
    python -m tf_impl hdr-gan --steps 300 --out runs/hdr

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


_ATTACKS = ("gradinversion", "dlg", "idlg", "inverting-gradients")


def _add_gradient_inversion(sub) -> None:
    from .gradient_inversion.gradinversion import GradInversionConfig

    d = GradInversionConfig()
    p = sub.add_parser(
        "gradient-inversion",
        help="recover a private batch and its labels from a shared gradient",
        description="A federated-learning client shares the gradient of its loss on a private "
        "batch (bundled real images); recover the labels (iDLG / GradInversion's column-wise "
        "minimum / a duplicate-aware rule) and the images (DLG, iDLG, Inverting Gradients or "
        "GradInversion). Reconstructions are matched to the originals by LPIPS before scoring.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="resnet20_cifar", help="zoo name or .onnx classifier "
                   "(default: %(default)s; lenet_dlg for DLG)")
    p.add_argument("--attack", choices=_ATTACKS, default="gradinversion")
    p.add_argument("--batch", type=int, default=4, help="private batch size (default 4)")
    p.add_argument("--first", type=int, default=0, help="index of the first bundled image "
                   "(CIFAR-10 test set for 32x32 models, photos otherwise)")
    p.add_argument("--labels", choices=("restore", "true"), default="restore",
                   help="restore the labels from the gradient (default) or give the attack the "
                   "true ones")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the "
                   f"attack's; GradInversion {d.optimize.steps}, DLG 300 L-BFGS steps)")
    p.add_argument("--seeds", type=int, default=d.seeds, help="GradInversion seeds (G)")
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--bn-mode", choices=("eval", "train"), default="eval",
                   help="BatchNorm mode of the client's step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-compile", action="store_true", help="run the steps eagerly (no "
                   "tf.function tracing, which takes ~20 s for a double backward through a "
                   "ResNet; slower steps: for short runs)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="runs/gi", help="output folder (default: %(default)s)")
    p.set_defaults(run=run_gradient_inversion)


def _private_batch(model_name: str, model, n: int, first: int):
    import numpy as np

    import model_zoo
    from model_zoo import data

    from . import images as imgs

    shape = model.input_shape
    mean, std = imgs.preprocessing_of(model)
    if shape[2] == 32:
        pixels, y = data.cifar10("test", n=first + n, normalize=False)
        pixels, y = pixels[first:], y[first:]
    else:
        names = [k for k in data.list_images() if data.image_label(k) is not None]
        if first + n > len(names):
            raise ValueError(f"only {len(names)} labelled photos are bundled; lower --batch or "
                             "--first")
        size = shape[2] or 224
        pixels = np.concatenate([data.image(k, size, normalize=False)
                                 for k in names[first:first + n]])
        y = np.array([data.image_label(k) for k in names[first:first + n]], np.int64)
        info = model_zoo.info(model_name) if model_name in model_zoo.available() else None
        if info is not None and info.num_classes and y.max() >= info.num_classes:
            y = y % info.num_classes
    if len(pixels) < n:
        raise ValueError(f"not enough bundled images for --batch {n} from --first {first}")
    return pixels, imgs.normalize(pixels, mean, std), y


def run_gradient_inversion(args) -> int:
    import numpy as np

    from .gradient_inversion import client_gradient
    from .gradient_inversion.dlg import DLGConfig, dlg, idlg_config, inverting_gradients_config
    from .gradient_inversion.evaluate import score
    from .gradient_inversion.gradinversion import GradInversionConfig, grad_inversion
    from .gradient_inversion.labels import label_accuracy, restore_labels
    from .report import OutputDir, history_figure, image_grid_figure

    out = OutputDir(args.out)
    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1; got {args.batch}")
    model = _load_model(args.model)
    pixels, x, y = _private_batch(args.model, model, args.batch, args.first)
    shared = client_gradient(model, x, y, bn_mode=args.bn_mode)
    restored = np.sort(restore_labels(model, shared))
    acc = label_accuracy(y, restored)
    print(f"labels: true {sorted(y.tolist())}, restored {restored.tolist()} ({acc:.0%})",
          file=sys.stderr)
    given = y if args.labels == "true" else None
    opt = {"progress": not args.quiet, "compile": not args.no_compile}
    if args.steps is not None:
        opt["steps"] = args.steps
    if args.lr is not None:
        opt["learning_rate"] = args.lr
    if args.attack == "gradinversion":
        cfg = GradInversionConfig(seeds=args.seeds, seed=args.seed).with_(**opt)
        result = grad_inversion(model, shared, cfg, labels=given)
    else:
        base = {"dlg": DLGConfig(), "idlg": idlg_config(),
                "inverting-gradients": inverting_gradients_config()}[args.attack]
        if given is not None:
            base = base.with_(labels="given")
        cfg = base.with_(seed=args.seed, **opt)
        result = dlg(model, shared, cfg, labels=given)
    s = score(pixels, result.image, true_labels=y, restored_labels=result.extra["labels"])
    order = np.asarray(s["order"])
    rec = result.image[order]
    print(f"{args.attack}: PSNR {s['psnr_mean']:.2f} dB, SSIM {s['ssim_mean']:.3f}, LPIPS "
          f"{s['lpips_mean']:.3f}, {result.steps} steps in {result.seconds:.1f} s", file=sys.stderr)
    for i in range(len(pixels)):
        out.write_png(f"original_{i}.png", pixels[i])
        out.write_png(f"reconstruction_{i}.png", rec[i])
    panels = [(f"original, label {y[i]}", pixels[i]) for i in range(len(pixels))] + [
        (f"PSNR {s['psnr'][i]:.1f}, LPIPS {s['lpips'][i]:.2f}", rec[i]) for i in range(len(rec))]
    out.write_figure("comparison.png", lambda p: image_grid_figure(
        p, panels, ncols=len(pixels), size=1.8,
        title=f"{args.attack} on {args.model}, batch {args.batch}\noriginals (top), "
        "reconstructions (bottom)"))
    seeds = result.extra.get("seeds")
    if seeds is not None:
        seed_panels = [(f"seed {g}" if i == 0 else "", seeds[g][order][i])
                       for g in range(len(seeds)) for i in range(len(pixels))]
        out.write_figure("seeds.png", lambda p: image_grid_figure(
            p, seed_panels, ncols=len(pixels), size=1.6, title="every seed (rows)"))
    out.write_history_csv("history.csv", {args.attack: result.history})
    out.write_figure("history.png", lambda p: history_figure(
        p, {args.attack: result.history}, title=f"{args.attack} on {args.model}"))
    out.write_json("result.json", {
        "technique": result.technique, "attack": args.attack, "model": args.model,
        "batch": args.batch, "true_labels": y.tolist(), "restored_labels": restored.tolist(),
        "label_accuracy": acc, "labels_used": result.extra["labels"],
        "client": {"reduction": shared.reduction, "bn_mode": shared.bn_mode,
                   "loss": shared.loss},
        "metrics": s, "config": result.summary()["config"], "seconds": round(result.seconds, 3),
        "steps": result.steps, "stopped": result.stopped, "message": result.message,
    })
    print(f"wrote {out.path}/", file=sys.stderr)
    if result.stopped:
        print(f"stopped: {result.message}", file=sys.stderr)
        return EXIT_INTERRUPTED if result.interrupted else EXIT_FAILED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tf_impl",
        description="Model inversion and CNN visualization on ONNX models, in TensorFlow.",
    )
    sub = parser.add_subparsers(dest="technique", metavar="TECHNIQUE", required=True)
    _add_feature_inversion(sub)
    _add_gradient_inversion(sub)
    from . import cli_hdr_gan
    from .attribution import cli_eval, cli_paths
    from .visualization import cli_ascent, cli_fast_style, cli_saliency, cli_style

    for module in (cli_saliency, cli_ascent, cli_style, cli_fast_style, cli_paths, cli_eval,
                   cli_hdr_gan):
        module.add_parsers(sub)
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
