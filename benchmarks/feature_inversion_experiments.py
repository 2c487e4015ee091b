"""Feature inversion experiments (Mahendran & Vedaldi 2015), after the course assignment.

    python -m benchmarks.feature_inversion_experiments           # full run (~10 min on 2 cores)
    python -m benchmarks.feature_inversion_experiments --quick --out /tmp/fi   # seconds
    python -m benchmarks.feature_inversion_experiments --image path/to/photo.jpg
    python -m benchmarks.feature_inversion_experiments --experiments lr,tv

1. ``lr``: Adam learning rate 0.001 vs 0.01 vs 0.1 (the default) on VGG16 conv3_1: the loss
   curves on one figure and the reconstructions.
2. ``tv``: the TV^2 weight swept over 0 ... 5 on conv3_1: reconstructions side by side.
3. ``ratio``: the data term's weight fixed, the TV/data ratio varied on conv4_1: the final
   (unweighted) data term against the final TV term, the images, and a check that scaling both
   weights by 10 changes (almost) nothing with Adam, so the ratio is what matters.
4. ``layers``: shallow vs deep: VGG16 (ImageNet-pretrained) conv1_1, conv3_1, conv5_1 and a
   weighted conv1_2 + conv3_1 + conv5_1 objective; ResNet-18 conv1, layer1..layer4 (SEEDED
   RANDOM weights: no pretrained ResNet-18 is available offline); the CIFAR-10 ResNet-20
   (trained) conv1, layer1..layer3 on a CIFAR-10 test image at 32x32.
5. ``--image``: any bundled name (``python -m tf_impl feature-inversion --help`` lists them) or
   an image file, for experiments 1-4 (the CIFAR model always takes a CIFAR test image).

The full run writes ``benchmarks/results/feature_inversion_experiments/``: the figures (small
PNGs), ``results.json`` (every run: settings, metrics, final terms, seconds) and
``summary.md`` (one table of every run's PSNR / SSIM / LPIPS(vgg) / seconds). ``--quick``
(48x48 images, 5 steps) writes to a temporary folder unless ``--out`` is given.

Experiments 1, 2 and 4 are also grids of ``python -m tf_impl feature-inversion`` runs, for a
cluster or a GPU box: ``python -m tf_impl sweep benchmarks/grids/feature_inversion_lr_tv.yaml``
(and ``feature_inversion_layers.yaml``) writes the table, a plot per option and
``montage.png``, every reconstruction laid out learning rate x TV weight.

Each experiment is a function (:func:`run_lr`, :func:`run_tv_sweep`, :func:`run_ratio`,
:func:`run_layers`, :func:`run_resnet18_layers`, :func:`run_cifar_layers`) returning
``{"rows": [...], "figures": {...}, "results": {run: Result}}``; the notebook
``notebooks/feature_inversion.ipynb`` calls them.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import converters  # noqa: E402,F401  (blocks triton before torch: see converters/triton_guard.py)

from .feature_inversion_runs import (
    DPI,
    Settings,
    base_config,
    image_grid,
    invert,
    load_model,
    log_row,
    original_of,
    out_folder,
    record,
    result_panels,
    sweep,
)

RESULTS = Path(__file__).resolve().parent / "results" / "feature_inversion_experiments"
EXPERIMENTS = ("lr", "tv", "ratio", "layers")


FULL = Settings()
# a smoke test of every code path (the tests run it twice: script and notebook)
QUICK = Settings(size=48, sweep_size=48, steps=5, lrs=(0.001, 0.1), tv_weights=(0.0, 5.0),
                 ratios=(0.01, 1.0), vgg_runs=("conv1_1", "conv1_2+conv3_1+conv5_1"),
                 resnet18_layers=("conv1",), cifar_layers=("conv1", "layer1"))





# -- 1. learning rate --------------------------------------------------------------------------
def run_lr(image, out, settings: Settings = FULL, *, lrs=None, layer: str = "conv3_1") -> dict:
    """Adam with each learning rate in ``lrs`` (default ``settings.lrs``) on VGG16 ``layer``;
    loss curves on one figure and the images."""
    from matplotlib.figure import Figure

    out = out_folder(out)
    rows, results = sweep("lr", "learning_rate", lrs or settings.lrs, image, settings, layer)
    fig = Figure(figsize=(8.4, 3.2))
    ax_loss, ax_data = fig.subplots(1, 2)
    for name, result in results.items():
        steps = np.arange(1, len(result.history["loss"]) + 1)
        ax_loss.plot(steps, result.history["loss"], label=name)
        ax_data.plot(steps, result.history[f"feature:{layer}"], label=name)
    for ax, what in ((ax_loss, "total loss"), (ax_data, f"data term ({layer}, normalised)")):
        ax.set_yscale("log")
        ax.set_xlabel("Adam step")
        ax.set_title(what, fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"learning rate, VGG16 {layer}, {settings.sweep_size}px", fontsize=9)
    fig.tight_layout()
    curves = out / "lr_curves.png"
    fig.savefig(curves, dpi=DPI)
    images = image_grid(out / "lr_images.png", result_panels(results, rows, original_of(results)),
                        title=f"learning rate, VGG16 {layer}, {settings.steps} steps")
    return {"rows": rows, "figures": {"curves": curves, "images": images}, "results": results}


# -- 2. TV weight ------------------------------------------------------------------------------
def run_tv_sweep(image, out, settings: Settings = FULL, *, tv_weights=None,
                 layer: str = "conv3_1") -> dict:
    """The TV^2 weight swept (default ``settings.tv_weights``) on VGG16 ``layer``;
    reconstructions side by side."""
    out = out_folder(out)
    rows, results = sweep("tv", "tv_weight", tv_weights or settings.tv_weights, image, settings,
                          layer)
    images = image_grid(out / "tv_sweep.png", result_panels(results, rows, original_of(results)),
                        title=f"TV^2 weight, VGG16 {layer}, {settings.steps} steps")
    return {"rows": rows, "figures": {"images": images}, "results": results}


# -- 3. data / regulariser ratio ---------------------------------------------------------------
def run_ratio(image, out, settings: Settings = FULL, *, ratios=None, layer: str = "conv4_1",
              data_weight: float = 1.0, scale_check: float = 10.0) -> dict:
    """Data weight fixed at ``data_weight``, TV weight = ratio * data_weight for each ratio
    (default ``settings.ratios``).

    Plots the final (unweighted) data term against the final TV^2 term, one point per ratio,
    and adds one run with both weights times ``scale_check`` at the middle ratio: Adam is
    (nearly) invariant to the scale of the loss, so only the ratio should matter.
    """
    from matplotlib.figure import Figure

    out = out_folder(out)
    model = load_model("vgg16_features")
    rows, results = [], {}
    ratios = tuple(ratios or settings.ratios)
    runs = [(r, data_weight) for r in ratios]
    mid = ratios[len(ratios) // 2]
    if scale_check:
        runs.append((mid, data_weight * scale_check))
    for ratio, w in runs:
        config = base_config(settings, tv_weight=ratio * w)
        weights = {layer: w}
        result = invert(model, image, [layer], config, settings, size=settings.sweep_size,
                        weights=weights)
        name = f"ratio={ratio:g}" + ("" if w == data_weight else f" (weights x{w / data_weight:g})")
        results[name] = result
        rows.append(record("ratio", name, "vgg16_features", model, result, [layer], config,
                           weights=weights))
        log_row(rows[-1])
    fig = Figure(figsize=(4.6, 3.6))
    ax = fig.subplots()
    main = rows[:len(ratios)]
    ax.plot([r["tv_term"] for r in main], [r["data_term"] for r in main], "o-")
    for r, ratio in zip(main, ratios):
        ax.annotate(f"{ratio:g}", (r["tv_term"], r["data_term"]), fontsize=7,
                    textcoords="offset points", xytext=(4, 4))
    for r in rows[len(main):]:
        ax.plot([r["tv_term"]], [r["data_term"]], "x", color="C3", label=r["run"])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("final TV^2 (mean, normalised input)")
    ax.set_ylabel(f"final data term ({layer}, normalised)")
    ax.set_title(f"TV/data ratio, VGG16 {layer}", fontsize=9)
    if len(rows) > len(main):
        ax.legend(fontsize=7)
    fig.tight_layout()
    tradeoff = out / "ratio_tradeoff.png"
    fig.savefig(tradeoff, dpi=DPI)
    panels = result_panels(results, rows, original_of(results))
    images = image_grid(out / "ratio_images.png", panels,
                        title=f"TV/data ratio (data weight {data_weight:g}), VGG16 {layer}")
    return {"rows": rows, "figures": {"tradeoff": tradeoff, "images": images},
            "results": results}


# -- 4. shallow vs deep ------------------------------------------------------------------------
def _layer_runs(experiment, model_name, image, runs, settings, size, out_name, title,
                out, label=lambda row: row["run"], note=""):
    model = load_model(model_name)
    config = base_config(settings)
    rows, results = [], {}
    for name, layers, weights in runs:
        result = invert(model, image, layers, config, settings, size=size, weights=weights)
        results[name] = result
        rows.append(record(experiment, name, model_name, model, result, layers, config,
                           weights=weights, note=note))
        log_row(rows[-1])
    panels = result_panels(results, rows, original_of(results), label)
    images = image_grid(out_folder(out) / out_name, panels, title=title)
    return {"rows": rows, "figures": {"images": images}, "results": results}


def run_layers(image, out, settings: Settings = FULL) -> dict:
    """VGG16 (ImageNet-pretrained): ``settings.vgg_runs``, e.g. shallow, middle, deep and a
    weighted multi-layer objective."""
    joint = dict(settings.joint_weights)
    runs = []
    for name in settings.vgg_runs:
        layers = tuple(name.split("+"))
        weights = {k: joint.get(k, 1.0) for k in layers} if len(layers) > 1 else None
        runs.append((name, layers, weights))
    return _layer_runs("layers", "vgg16_features", image, runs, settings, settings.size,
                       "layers_vgg16.png",
                       f"VGG16 (pretrained), {settings.size}px, {settings.steps} steps", out)


def run_resnet18_layers(image, out, settings: Settings = FULL) -> dict:
    """ResNet-18 conv1, layer1..layer4 at 224x224, with SEEDED RANDOM weights."""
    runs = [(layer, (layer,), None) for layer in settings.resnet18_layers]
    return _layer_runs(
        "layers", "resnet18", image, runs, settings, 224, "layers_resnet18.png",
        f"ResNet-18 with RANDOM weights (no pretrained one offline), 224px, "
        f"{settings.steps} steps", out,
        label=lambda row: f"{row['run']} (random weights)", note="random weights")


def cifar_image(index: int = 0):
    """CIFAR-10 test image ``index`` as (1, 3, 32, 32) pixels in [0, 1], and its class name."""
    from model_zoo import data

    x, y = data.cifar10("test", n=index + 1, normalize=False)
    return x[index:index + 1], data.cifar10_class_names()[int(y[index])]


def run_cifar_layers(out, settings: Settings = FULL) -> dict:
    """The CIFAR-10 ResNet-20 (trained), ``settings.cifar_layers``, on a CIFAR-10 test image at
    32x32."""
    pixels, label = cifar_image(settings.cifar_index)
    runs = [(layer, (layer,), None) for layer in settings.cifar_layers]
    return _layer_runs(
        "layers", "resnet20_cifar", pixels, runs, settings, 32, "layers_resnet20_cifar.png",
        f"CIFAR-10 ResNet-20 (trained), test image {settings.cifar_index} ({label}), 32px, "
        f"{settings.steps} steps", out, note=f"CIFAR-10 test #{settings.cifar_index} ({label})")


# -- the report --------------------------------------------------------------------------------
def _fmt(v, spec=".2f"):
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def markdown_table(rows: list[dict]) -> str:
    """One line per run: experiment, model, run, size, steps, lr, TV weight, terms, metrics."""
    lines = ["| experiment | model | run | size | steps | lr | TV weight | data term | TV^2 | "
             "PSNR (dB) | SSIM | LPIPS(vgg) | seconds |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        model = r["model"] + (" (random)" if r["model"] == "resnet18" else "")
        lines.append(
            f"| {r['experiment']} | {model} | {r['run']} | {r['size']} | {r['steps']} | "
            f"{r['learning_rate']:g} | {r['tv_weight']:g} | {_fmt(r['data_term'], '.3g')} | "
            f"{_fmt(r['tv_term'], '.3g')} | {_fmt(r['psnr'])} | {_fmt(r['ssim'], '.3f')} | "
            f"{_fmt(r['lpips_vgg'], '.3f')} | {_fmt(r['seconds'], '.1f')} |")
    return "\n".join(lines)


def write_summary(out, rows: list[dict], figures: dict, *, image, settings: Settings,
                  seconds: float) -> dict:
    """``results.json`` and ``summary.md`` in ``out``; returns the JSON record."""
    out = out_folder(out)
    from tf_impl.report import OutputDir

    record = {
        "image": str(image),
        "settings": asdict(settings),
        "config": base_config(settings).to_dict(),  # the defaults; each run lists its changes
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "seconds_total": round(seconds, 1),
        "figures": {k: Path(v).name for k, v in figures.items()},
        "runs": rows,
    }
    files = OutputDir(out)
    files.write_json("results.json", record)
    figs = "\n\n".join(f"![{k}]({Path(v).name})" for k, v in figures.items())
    text = f"""# Feature inversion experiments (Mahendran & Vedaldi 2015)

`python -m benchmarks.feature_inversion_experiments` on `{image}`
({seconds / 60:.1f} min in all on {os.cpu_count()} CPU cores, {platform.machine()}).

- Adam from seeded noise, {settings.steps} steps, learning rate 0.1 and TV^2 weight 0.05 (on
  the mean over pixel values) unless swept.
- Sizes: the sweeps {settings.sweep_size}x{settings.sweep_size}, the VGG16 layer comparison
  {settings.size}x{settings.size}, ResNet-18 224x224 (its only size), the CIFAR-10 ResNet-20
  32x32 on CIFAR-10 test image {settings.cifar_index}.
- VGG16 (ImageNet) and ResNet-20 (CIFAR-10) are trained; **ResNet-18 has seeded random
  weights** (no pretrained ResNet-18 is available offline).
- *data term*: the final image's normalised feature error
  ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 (weighted mean over layers); *TV^2*: its mean
  squared-gradient TV in the model's normalised input space; PSNR / SSIM / LPIPS(vgg) against
  the original, in pixel space; *seconds*: the optimisation alone.

{markdown_table(rows)}

{figs}
"""
    files._atomic("summary.md", lambda p: Path(p).write_text(text, encoding="utf-8"))
    return record


def run_all(image, out, settings: Settings = FULL, experiments=EXPERIMENTS) -> dict:
    """Every experiment named in ``experiments``; writes the figures and the summary."""
    t0 = time.perf_counter()
    rows: list[dict] = []
    figures: dict[str, Path] = {}
    steps = {
        "lr": lambda: {"lr": run_lr(image, out, settings)},
        "tv": lambda: {"tv": run_tv_sweep(image, out, settings)},
        "ratio": lambda: {"ratio": run_ratio(image, out, settings)},
        "layers": lambda: {"vgg16": run_layers(image, out, settings),
                           "resnet18": run_resnet18_layers(image, out, settings),
                           "resnet20_cifar": run_cifar_layers(out, settings)},
    }
    for name in experiments:
        print(f"feature inversion experiment {name!r}", file=sys.stderr, flush=True)
        for key, res in steps[name]().items():
            rows += res["rows"]
            figures.update({f"{key}_{k}": v for k, v in res["figures"].items()})
    return write_summary(out, rows, figures, image=image, settings=settings,
                         seconds=time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.feature_inversion_experiments",
        description="Feature inversion experiments: learning rate, TV weight, TV/data ratio, "
        "shallow vs deep layers (VGG16, ResNet-18 random, CIFAR-10 ResNet-20).")
    parser.add_argument("--quick", action="store_true",
                        help="48x48 images, 5 steps (a smoke test); writes to a temp folder")
    parser.add_argument("--image", default="chelsea",
                        help="bundled name or image file (default: %(default)s)")
    parser.add_argument("--out", default=None, help=f"output folder (default: {RESULTS}, or a "
                        "temporary folder with --quick)")
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS),
                        help="comma-separated subset of %(default)s")
    parser.add_argument("--steps", type=int, default=None, help="override the steps")
    args = parser.parse_args(argv)
    experiments = [e.strip() for e in args.experiments.split(",") if e.strip()]
    unknown = sorted(set(experiments) - set(EXPERIMENTS))
    if unknown:
        parser.error(f"unknown experiments {unknown}; choose from {', '.join(EXPERIMENTS)}")
    settings = QUICK if args.quick else FULL
    if args.steps is not None:
        settings = replace(settings, steps=args.steps)
    out = Path(args.out) if args.out else (
        Path(tempfile.mkdtemp(prefix="fi_experiments_")) if args.quick else RESULTS)
    from tf_impl.images import load_image

    try:
        load_image(args.image, 32)  # a bad --image fails before any work
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    record = run_all(args.image, out, settings, experiments)
    print(markdown_table(record["runs"]))
    print(f"wrote {out}/ ({record['seconds_total']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["FULL", "QUICK", "Settings", "cifar_image", "image_grid", "invert", "load_model",
           "main", "markdown_table", "run_all", "run_cifar_layers", "run_layers", "run_lr",
           "run_ratio", "run_resnet18_layers", "run_tv_sweep", "write_summary"]
