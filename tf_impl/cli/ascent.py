"""The gradient-ascent visualizations: ``class-viz``, ``adversarial``, ``deepdream``.

    python -m tf_impl class-viz --model resnet20_cifar --class 3,8 --out runs/class_viz
    python -m tf_impl adversarial --model resnet20_cifar --method pgd --eps 8/255 --n 4 \\
        --out runs/adv
    python -m tf_impl deepdream --model vgg16_features --layer relu4_3 --image tubingen \\
        --out runs/dream

Each writes its pictures (PNG), a ``result.json`` and, for the optimisations, the history as
``history.csv`` and ``history.png`` into ``--out``. Ctrl-C stops the run and still writes what
was reached (exit 130).
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction

from .common import (
    add_model_options,
    at_least,
    check_pictures,
    class_names,
    epilog,
    exit_status,
    finishes_run_folder,
    load_model,
    non_negative_int,
    open_run_folder,
    positive_int,
    split_list,
)


def number(text: str) -> float:
    """A float, or a fraction such as ``8/255`` (an argparse type)."""
    try:
        return float(Fraction(text.strip())) if "/" in text else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"expected a number such as 0.03 or 8/255; got {text!r}") from None


def _ints(specs) -> list[int]:
    out = []
    for s in split_list(specs):
        try:
            out.append(int(s))
        except ValueError:
            raise ValueError(f"expected integer class indices; got {s!r}") from None
    return out


def _run_options(p, out_default: str, compile_flag: bool = True) -> None:
    if compile_flag:
        p.add_argument("--no-compile", action="store_true", help="run the steps eagerly (no "
                       "tf.function tracing: faster for a few steps, slower for many)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default=out_default, help="output folder (default: %(default)s)")


def add_parsers(sub) -> None:
    """Add the ``class-viz``, ``adversarial`` and ``deepdream`` sub-commands to ``sub``."""
    from ..visualization.adversarial import AdversarialConfig
    from ..visualization.class_viz import ClassVizConfig
    from ..visualization.deepdream import DeepDreamConfig

    fmt = argparse.RawDescriptionHelpFormatter
    c = ClassVizConfig()
    p = sub.add_parser(
        "class-viz", help="class model visualization (Simonyan et al. 2014)",
        description="Synthesize the image that maximises a class score minus an L2 penalty "
        "(Simonyan et al. 2014), with CS231n's jitter, blur and normalised steps.",
        epilog=epilog(), formatter_class=fmt)
    add_model_options(p, "resnet20_cifar", help="classifier: zoo name or .onnx")
    p.add_argument("--class", dest="classes", action="append", required=True,
                   help="class index; repeat or comma-separate for several")
    p.add_argument("--steps", type=positive_int, default=c.optimize.steps)
    p.add_argument("--lr", type=float, default=c.optimize.learning_rate, help="learning rate "
                   "at 224x224 (default %(default)s; scaled by sqrt(H*W)/224 for other sizes "
                   "unless --no-size-scaling)")
    p.add_argument("--jitter", type=non_negative_int, default=c.jitter, help="largest random "
                   "shift at 224x224, 0: none (default %(default)s; scaled by size/224 unless "
                   "--no-size-scaling)")
    p.add_argument("--no-size-scaling", action="store_true", help="use --lr and --jitter as "
                   "given at any image size")
    p.add_argument("--l2-reg", type=float, default=c.l2_reg)
    p.add_argument("--tv-weight", type=float, default=c.tv_weight)
    p.add_argument("--blur-every", type=non_negative_int, default=c.blur_every,
                   help="blur the image every N steps (0: never; default %(default)s)")
    p.add_argument("--blur-sigma", type=float, default=c.blur_sigma)
    p.add_argument("--init", choices=("noise", "zeros"), default=c.init)
    p.add_argument("--size", type=at_least(8), default=None,
                   help="image side for models of any size "
                   "(default 224)")
    _run_options(p, "runs/class_viz")
    p.set_defaults(run=run_class_viz)

    a = AdversarialConfig()
    p = sub.add_parser(
        "adversarial", help="FGSM / PGD adversarial examples under an L-inf budget",
        description="Adversarial examples: FGSM (Goodfellow et al. 2015) or the iterative "
        "attack (Kurakin et al. 2017; PGD of Madry et al. 2018 with --random-start), "
        "untargeted or targeted (--target), in pixel space. Without --image, 32x32 models "
        "attack bundled CIFAR-10 test images with their true labels.",
        epilog=epilog(), formatter_class=fmt)
    add_model_options(p, "resnet20_cifar", help="classifier")
    p.add_argument("--method", choices=("pgd", "fgsm"), default="pgd")
    p.add_argument("--eps", type=number, default=a.eps, help="L-inf budget in pixel units, "
                   "in (0, 1]; fractions work (default 8/255)")
    p.add_argument("--step", type=number, default=a.step_size, help="PGD step (default 2/255)")
    p.add_argument("--steps", type=positive_int, default=a.optimize.steps)
    p.add_argument("--random-start", action="store_true")
    p.add_argument("--target", type=at_least(0), default=None, help="target class (targeted "
                   "attack)")
    p.add_argument("--targeted-loss", choices=("log_prob", "score"), default=a.targeted_loss)
    p.add_argument("--early-stop", action="store_true", help="stop once every image is fooled")
    p.add_argument("--image", action="append", help="bundled name, file or cifar10:K; repeat "
                   "for several "
                   "(default: CIFAR-10 test images for 32x32 models)")
    p.add_argument("--label", action="append", help="true class per image (default: bundled "
                   "labels, else the model's prediction)")
    p.add_argument("--n", type=positive_int, default=4,
                   help="CIFAR-10 images to attack (default 4)")
    p.add_argument("--first", type=at_least(0), default=0, help="index of the first CIFAR-10 image")
    _run_options(p, "runs/adversarial")
    p.set_defaults(run=run_adversarial)

    d = DeepDreamConfig()
    p = sub.add_parser(
        "deepdream", help="DeepDream (Mordvintsev et al. 2015)",
        description="Amplify a layer's activations in a picture by normalised gradient ascent "
        "over octaves with random shifts (Mordvintsev et al. 2015).",
        epilog=epilog(), formatter_class=fmt)
    add_model_options(p, "vgg16_features", help="zoo name or .onnx path")
    p.add_argument("--layer", action="append", help="layer alias or ONNX tensor name; repeat or "
                   "comma-separate (default relu4_3 for vgg16_features)")
    p.add_argument("--image", default="tubingen", help="bundled name, file or cifar10:K (default: "
                   "%(default)s)")
    p.add_argument("--size", type=at_least(16), default=224, help="image side for models of "
                   "any size (default %(default)s; a fixed-size model uses its own)")
    p.add_argument("--octaves", type=positive_int, default=d.octaves)
    p.add_argument("--octave-scale", type=float, default=d.octave_scale)
    p.add_argument("--steps", type=positive_int, default=d.optimize.steps, help="steps per octave")
    p.add_argument("--step-size", type=number, default=d.optimize.learning_rate,
                   help="step in pixel units (default 1.5/255)")
    p.add_argument("--jitter", type=non_negative_int, default=d.jitter, help="largest random "
                   "shift, 0: none (default %(default)s)")
    p.add_argument("--objective", choices=("mean_square", "l2_norm"), default=d.objective)
    _run_options(p, "runs/deepdream", compile_flag=False)  # eager already: sizes change per octave
    p.set_defaults(run=run_deepdream)


def _write_history(out, name: str, result, title: str) -> None:
    if result.history:
        out.write_history({name: result.history}, title, linear=True)


@finishes_run_folder
def run_class_viz(args) -> int:
    import numpy as np

    from ..visualization.class_viz import ClassVizConfig, class_visualization, draw_class_viz

    out = open_run_folder(args)
    classes = _ints(args.classes)
    config = ClassVizConfig(
        l2_reg=args.l2_reg, tv_weight=args.tv_weight, jitter=args.jitter,
        blur_every=args.blur_every, blur_sigma=args.blur_sigma, init=args.init, seed=args.seed,
        scale_with_size=not args.no_size_scaling,
    ).with_(steps=args.steps, learning_rate=args.lr, progress=not args.quiet,
            compile=not args.no_compile)
    model = load_model(args, classifier="class visualization")
    names = class_names(model)
    print(f"class-viz: {args.model}, classes {classes}, {args.steps} steps", file=sys.stderr)
    result = class_visualization(model, classes, config, size=args.size, class_names=names)
    out.write_png("class_viz.png", np.concatenate(list(result.image), axis=2))
    for i, k in enumerate(result.extra["targets"]):
        out.write_png(f"class_{k}.png", result.image[i])
    out.write_figure("figure.png", lambda p: draw_class_viz(
        p, result, title=f"class model visualization, {args.model}"))
    _write_history(out, "class_viz", result, f"class visualization, {args.model}")
    out.write_json("result.json", {"model": args.model, **result.summary()})
    for name, s, pr in zip(result.extra["class_names"], result.extra["scores"],
                           result.extra["probs"]):
        print(f"  {name}: score {s:.2f}, probability {pr:.3f}", file=sys.stderr)
    print(f"wrote {out.target}/", file=sys.stderr)
    return exit_status(result)


def _attack_inputs(args, model):
    import numpy as np

    from model_zoo import data

    from .. import images as imgs
    from ..visualization import checks

    labels = _ints(args.label) or None
    if args.image:
        fixed = checks.fixed_size(model)
        pictures = [imgs.load_image(im, fixed[0] if fixed else 224) for im in args.image]
        for im, picture in zip(args.image, pictures):
            checks.check_image_size(model, picture.pixels)
            for note in picture.notes:
                print(f"note: {im}: {note}", file=sys.stderr)
        pixels = np.concatenate([picture.pixels for picture in pictures])
        if labels is None:
            known = [picture.label for picture in pictures]  # bundled photos, cifar10:K
            n = checks.num_classes(model)
            if all(k is not None and k < n for k in known):
                labels = known
        return pixels, labels, list(args.image)
    if checks.fixed_size(model) != (32, 32):
        raise ValueError("give --image (a bundled name or a file): bundled CIFAR-10 images "
                         "only fit 32x32 models")
    pixels, y = data.cifar10("test", n=args.first + args.n, normalize=False)
    pixels, y = pixels[args.first:], y[args.first:]
    if len(pixels) < args.n:
        raise ValueError(f"only {len(pixels) + args.first} CIFAR-10 test images are bundled")
    names = [f"cifar10_test_{args.first + i}" for i in range(len(pixels))]
    return pixels, (labels if labels is not None else y), names


@finishes_run_folder
def run_adversarial(args) -> int:
    import numpy as np

    from ..visualization.adversarial import (
        AdversarialConfig,
        amplified_perturbation,
        attack,
        draw_adversarial,
    )

    out = open_run_folder(args)
    config = AdversarialConfig(
        eps=args.eps, random_start=args.random_start, targeted_loss=args.targeted_loss,
        early_stop=args.early_stop, seed=args.seed,
    ).with_(steps=args.steps, learning_rate=args.step, progress=not args.quiet,
            compile=not args.no_compile)
    check_pictures(*(args.image or []))  # a bad image before the model is loaded
    model = load_model(args, classifier="an adversarial attack")
    pixels, labels, names = _attack_inputs(args, model)
    print(f"adversarial: {args.method} on {args.model}, {len(pixels)} images, eps "
          f"{args.eps * 255:.2f}/255", file=sys.stderr)
    result = attack(model, pixels, labels, config, method=args.method, target=args.target)
    classes = class_names(model)
    row = lambda a: np.concatenate(list(a), axis=2)  # noqa: E731  (images side by side)
    out.write_png("original.png", row(result.original))
    out.write_png("perturbation.png", row(amplified_perturbation(result)))
    out.write_png("adversarial.png", row(result.image))
    out.write_figure("comparison.png", lambda p: draw_adversarial(p, result, class_names=classes))
    if args.method == "pgd":
        _write_history(out, "pgd", result, f"PGD on {args.model}")
    out.write_json("result.json", {"model": args.model, "images": names,
                                   "class_names": classes, **result.summary()})
    m = result.metrics
    print(f"  fooled {m['success_rate']:.0%}; accuracy {m['accuracy_before']:.0%} -> "
          f"{m['accuracy_after']:.0%}; L-inf max {m['linf_max'] * 255:.2f}/255, mean L2 "
          f"{m['l2_mean']:.3f}", file=sys.stderr)
    print(f"wrote {out.target}/", file=sys.stderr)
    return exit_status(result)


@finishes_run_folder
def run_deepdream(args) -> int:
    import warnings

    from ..visualization.deepdream import DeepDreamConfig, deepdream, draw_deepdream

    out = open_run_folder(args)
    layers = split_list(args.layer)
    if not layers:
        if args.model != "vgg16_features":
            raise ValueError("give --layer (e.g. relu4_3 for vgg16_features, layer2 for "
                             "resnet20_cifar)")
        layers = ["relu4_3"]
    config = DeepDreamConfig(
        objective=args.objective, octaves=args.octaves, octave_scale=args.octave_scale,
        jitter=args.jitter, seed=args.seed,
    ).with_(steps=args.steps, learning_rate=args.step_size, progress=not args.quiet)
    check_pictures(args.image)  # a bad image before the model is loaded
    model = load_model(args)
    print(f"deepdream: {args.model} {','.join(layers)} on {args.image}", file=sys.stderr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # notes are printed below
        result = deepdream(model, args.image, layers, config, size=args.size)
    for note in result.extra["notes"]:
        print(f"note: {note}", file=sys.stderr)
    out.write_png("dream.png", result.image)
    out.write_figure("comparison.png", lambda p: draw_deepdream(p, result))
    _write_history(out, "deepdream", result, f"DeepDream, {args.model} {','.join(layers)}")
    out.write_json("result.json", {"model": args.model, **result.summary()})
    m = result.metrics
    print(f"  objective {m['objective_original']:.4g} -> {m['objective_dream']:.4g} in "
          f"{result.steps} steps ({result.seconds:.1f} s)", file=sys.stderr)
    print(f"wrote {out.target}/", file=sys.stderr)
    return exit_status(result)
