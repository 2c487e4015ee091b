"""Insertion / deletion comparisons of attribution methods, as tables and records.

:func:`evaluate_methods` runs each method and both causal metrics (Petsiuk et al. 2018) on the
same images; :func:`results_table` makes the markdown table (mean AUC +- standard error,
seconds per image), :func:`results_summary` the table with its heading, and
:func:`methods_record` the per-method part of a ``result.json``.

>>> results = evaluate_methods(model, x, ["ig", "fullgrad"], targets=pred)   # doctest: +SKIP
>>> print(results_table(results))                                           # doctest: +SKIP
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["evaluate_methods", "mean_se", "methods_record", "results_summary", "results_table"]


def evaluate_methods(model, x, methods, *, targets, steps=None, batch_size=32, config=None,
                     progress=None) -> dict:
    """Insertion and deletion of each method on ``x``.

    Args:
        model: a classifier (``converters.onnx_to_tf`` model).
        x: the model's normalised input (N, C, H, W).
        methods: method names of :data:`tf_impl.attribution.evaluation.METHODS`.
        targets: one class per image.
        steps: path steps of the IG-family methods (None: each method's own).
        batch_size: rows per forward pass.
        config: a :class:`~tf_impl.attribution.evaluation.CausalMetricConfig` (None: default).
        progress: called with one line per method when given.

    Returns:
        ``{method: {"insertion": CausalCurves, "deletion": CausalCurves, "seconds":
        attribution seconds per image}}``, in the order of ``methods``.
    """
    from .evaluation import attribute, deletion, insertion

    results = {}
    for method in methods:
        t0 = time.perf_counter()
        a = attribute(method, model, x, targets, steps=steps, batch_size=batch_size)
        seconds = (time.perf_counter() - t0) / len(x)
        ins = insertion(model, x, a, targets, config=config, batch_size=batch_size)
        dele = deletion(model, x, a, targets, config=config, batch_size=batch_size)
        results[method] = {"insertion": ins, "deletion": dele, "seconds": seconds}
        if progress:
            progress(f"{method}: insertion {ins.auc.mean():.4f}, deletion {dele.auc.mean():.4f}"
                     f" ({seconds:.3f} s/image)")
    return results


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the mean (0 for a single value)."""
    v = np.asarray(values, np.float64)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
    return float(v.mean()), se


def results_table(results: dict) -> str:
    """A markdown table of :func:`evaluate_methods`' results: method | insertion AUC |
    deletion AUC | seconds per image."""
    from .evaluation import METHOD_TITLES

    lines = ["| method | insertion AUC (higher is better) | deletion AUC (lower is better) | "
             "s / image |", "| --- | --- | --- | --- |"]
    for method, r in results.items():
        im, ise = mean_se(r["insertion"].auc)
        dm, dse = mean_se(r["deletion"].auc)
        lines.append(f"| {METHOD_TITLES.get(method, method)} | {im:.4f} ± {ise:.4f} | "
                     f"{dm:.4f} ± {dse:.4f} | {r['seconds']:.3f} |")
    return "\n".join(lines) + "\n"


def results_summary(results: dict, *, images: int, model_name: str,
                    pixels_per_step: int) -> str:
    """:func:`results_table` under a one-line heading (what was measured, on what)."""
    return (f"Insertion / deletion AUC (Petsiuk et al. 2018) on {images} images, {model_name}; "
            f"mean ± standard error; {pixels_per_step} pixels per step.\n\n"
            + results_table(results))


def methods_record(results: dict) -> dict:
    """The per-method record of :func:`evaluate_methods`' results: mean AUC and standard
    error, per-image AUCs, mean curves and seconds per image (rounded to 6 digits)."""
    def rounded(values):
        return [round(float(v), 6) for v in values]

    return {m: {
        "insertion_auc": mean_se(r["insertion"].auc),
        "deletion_auc": mean_se(r["deletion"].auc),
        "insertion_auc_per_image": rounded(r["insertion"].auc),
        "deletion_auc_per_image": rounded(r["deletion"].auc),
        "insertion_curve": rounded(r["insertion"].probabilities.mean(0)),
        "deletion_curve": rounded(r["deletion"].probabilities.mean(0)),
        "fractions": rounded(r["insertion"].fractions),
        "seconds_per_image": r["seconds"],
    } for m, r in results.items()}
