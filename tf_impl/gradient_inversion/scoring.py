"""Scoring a reconstructed batch: match it to the originals, then PSNR, SSIM, LPIPS, labels.

Labels come back unordered, so reconstructions are first matched to originals one-to-one by
the Hungarian algorithm on LPIPS (as the ``breaching`` framework does); the metrics are then
per matched pair and averaged.
"""

from __future__ import annotations

import numpy as np


def match(originals: np.ndarray, recovered: np.ndarray, *, by: str = "lpips") -> np.ndarray:
    """Index ``order`` such that ``recovered[order[i]]`` is matched to ``originals[i]``.

    ``by``: ``"lpips"`` (VGG LPIPS; images of at least 16x16) or ``"mse"``.
    """
    from scipy.optimize import linear_sum_assignment

    from .. import metrics

    n = len(originals)
    if len(recovered) != n:
        raise ValueError(f"{len(recovered)} reconstructions for {n} originals")
    if n == 1:
        return np.zeros(1, int)
    if by == "mse":
        cost = np.array([[np.mean((o - r) ** 2) for r in recovered] for o in originals])
    elif by == "lpips":
        lp = metrics.LPIPS("vgg")
        a = np.repeat(originals, n, axis=0)
        b = np.tile(recovered, (n, 1, 1, 1))
        cost = np.asarray(lp(a, b)).reshape(n, n)
    else:
        raise ValueError(f"by must be 'lpips' or 'mse'; got {by!r}")
    rows, cols = linear_sum_assignment(cost)
    order = np.empty(n, int)
    order[rows] = cols
    return order


def score(originals: np.ndarray, recovered: np.ndarray, *, true_labels=None,
          restored_labels=None, by: str = "lpips") -> dict:
    """Per-image and mean PSNR, SSIM, LPIPS after matching; label accuracy when given.

    Images are pixel space, NCHW, in [0, 1].
    """
    from .. import metrics

    order = match(originals, recovered, by=by if originals.shape[-1] >= 16 else "mse")
    rec = recovered[order]
    psnr = np.asarray(metrics.psnr(originals, rec)).reshape(-1)
    ssim = np.asarray(metrics.ssim(originals, rec)).reshape(-1)
    lpips = np.asarray(metrics.LPIPS("vgg")(originals, rec)).reshape(-1)
    out = {
        "order": order.tolist(),
        "psnr": psnr.tolist(),
        "ssim": ssim.tolist(),
        "lpips": lpips.tolist(),
        "psnr_mean": float(np.mean(psnr)),
        "ssim_mean": float(np.mean(ssim)),
        "lpips_mean": float(np.mean(lpips)),
    }
    if true_labels is not None and restored_labels is not None:
        from .labels import label_accuracy

        out["label_accuracy"] = label_accuracy(true_labels, restored_labels)
    return out
