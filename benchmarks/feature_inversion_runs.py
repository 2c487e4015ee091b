"""What every feature-inversion experiment shares: the settings (full and quick), the
models, one inversion and its record, and the figures."""

from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass
from functools import cache
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import converters  # noqa: E402,F401  (blocks triton before torch: see converters/triton_guard.py)

DPI = 80  # keeps the committed figures small


@dataclass(frozen=True)
class Settings:
    """Sizes, steps and the grid of a run of the experiments.

    Attributes:
        size: image size of the VGG16 layer comparison.
        sweep_size: image size of the learning-rate, TV and ratio sweeps.
        steps: Adam steps of every run.
        lrs, tv_weights, ratios: the values swept by experiments 1-3.
        vgg_runs: VGG16 layers to invert; ``"a+b+c"`` is one joint objective over those
            layers, weighted by ``joint_weights`` (1 for a layer not listed there).
        resnet18_layers: the ResNet-18 layers to invert (the zoo's ResNet-18 takes 224x224
            inputs only, so these runs are 224x224 whatever ``size`` says).
        cifar_layers: the CIFAR-10 ResNet-20 layers (32x32).
        cifar_index: which CIFAR-10 test image the ResNet-20 inverts.
        lpips: compute LPIPS(vgg) for every run.
    """

    size: int = 224
    sweep_size: int = 128
    steps: int = 300
    lrs: tuple[float, ...] = (0.001, 0.01, 0.1)
    tv_weights: tuple[float, ...] = (0.0, 0.005, 0.05, 0.5, 5.0)
    ratios: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0, 10.0)
    vgg_runs: tuple[str, ...] = ("conv1_1", "conv3_1", "conv5_1", "conv1_2+conv3_1+conv5_1")
    joint_weights: tuple[tuple[str, float], ...] = (
        ("conv1_2", 0.1), ("conv3_1", 1.0), ("conv5_1", 1.0))
    resnet18_layers: tuple[str, ...] = ("conv1", "layer1", "layer2", "layer3", "layer4")
    cifar_layers: tuple[str, ...] = ("conv1", "layer1", "layer2", "layer3")
    cifar_index: int = 0
    lpips: bool = True


@cache
def load_model(name: str):
    """The zoo model ``name`` imported into TensorFlow (once per process)."""
    import model_zoo
    from converters import onnx_to_tf

    return onnx_to_tf.load(model_zoo.load(name))


def base_config(settings: Settings, **changes):
    """The paper defaults (Adam lr 0.1, TV^2 weight 0.05, noise init) with ``settings.steps``."""
    from tf_impl.feature_inversion import FeatureInversionConfig

    return FeatureInversionConfig().with_(steps=settings.steps, progress=False, **changes)


def invert(model, image, layers, config, settings: Settings, *, size: int, weights=None):
    """:func:`tf_impl.feature_inversion.invert_features` with the metrics, quietly."""
    from tf_impl.feature_inversion import invert_features

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return invert_features(model, image, list(layers), config, weights=weights, size=size,
                               lpips=settings.lpips)


def final_terms(model, result, layers, weights=None) -> tuple[float, float]:
    """The unweighted data term (sum over layers of w_l/sum(w) times the normalised error) and
    the mean TV^2 (in the model's normalised input space) of the final image."""
    from tf_impl import images as imgs
    from tf_impl.priors import TotalVariation, feature_match

    mean, std = imgs.preprocessing_of(model)
    x0 = imgs.normalize(result.original, mean, std)
    x = imgs.normalize(result.image, mean, std)
    feats = model(x0, taps=list(layers))
    targets = {layer: np.asarray(feats[layer]) for layer in layers}
    weights = dict(weights or {})
    total = sum(weights.get(layer, 1.0) for layer in layers)
    data = feature_match(model, targets, {k: weights.get(k, 1.0) / total for k in layers})(x)
    tv = TotalVariation(2.0, normalize=True).value(x)
    return float(sum(float(v) for v in data.values())), float(tv)


def record(experiment: str, run: str, model_name: str, model, result, layers, config, *,
           weights=None, note: str = "") -> dict:
    """One JSON-ready row describing a run."""
    data, tv = final_terms(model, result, layers, weights)
    m = result.metrics
    return {
        "experiment": experiment,
        "run": run,
        "model": model_name,
        "layers": list(layers),
        "weights": dict(weights or {}),
        "image": result.extra.get("image"),
        "size": int(result.image.shape[-1]),
        "steps": result.steps,
        "learning_rate": config.optimize.learning_rate,
        "tv_weight": config.tv_weight,
        "psnr": float(m.get("psnr", math.nan)),
        "ssim": float(m.get("ssim", math.nan)),
        "lpips_vgg": float(m.get("lpips_vgg", math.nan)),
        "seconds": round(result.seconds, 2),
        "final_loss": float(result.history["loss"][-1]) if result.history.get("loss") else None,
        "data_term": data,
        "tv_term": tv,
        "note": note,
    }


def log_row(row: dict) -> None:
    print(f"  {row['experiment']:>7} {row['run']:<28} PSNR {row['psnr']:5.2f} dB  SSIM "
          f"{row['ssim']:.3f}  LPIPS {row['lpips_vgg']:.3f}  data {row['data_term']:.3g}  "
          f"TV {row['tv_term']:.3g}  {row['seconds']:.1f} s", file=sys.stderr, flush=True)


def image_grid(path, panels, *, title: str = "", ncols: int | None = None,
               size: float = 2.1) -> Path:
    """Images side by side, each with its caption (as :func:`tf_impl.report.image_grid_figure`,
    at ``DPI`` and without touching the pyplot backend, so notebooks keep inline plots)."""
    from matplotlib.figure import Figure

    from tf_impl.report import to_uint8

    n = len(panels)
    ncols = ncols or min(n, 6)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(size * ncols, size * nrows + 0.5))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, (cap, pixels) in zip(axes, panels):
        ax.imshow(to_uint8(pixels), interpolation="nearest")
        ax.set_title(cap, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    return Path(path)


def result_panels(results: dict, rows: list[dict], original, label=lambda row: row["run"]):
    from tf_impl.report import caption

    panels = [("original", original)]
    for row in rows:
        metrics = {"psnr": row["psnr"], "lpips_vgg": row["lpips_vgg"]}
        panels.append((caption(label(row), metrics), results[row["run"]].image))
    return panels


def out_folder(out) -> Path:
    path = Path(out)
    path.mkdir(parents=True, exist_ok=True)
    return path


def original_of(results: dict):
    return next(iter(results.values())).original


def sweep(experiment: str, option: str, values, image, settings: Settings, layer: str):
    """One VGG16 inversion of ``layer`` per value of the config ``option``: (rows, results),
    the runs named ``<experiment>=<value>``."""
    model = load_model("vgg16_features")
    rows, results = [], {}
    for value in values:
        config = base_config(settings, **{option: value})
        result = invert(model, image, [layer], config, settings, size=settings.sweep_size)
        name = f"{experiment}={value:g}"
        results[name] = result
        rows.append(record(experiment, name, "vgg16_features", model, result, [layer], config))
        log_row(rows[-1])
    return rows, results
