"""Scoring a reconstructed batch: match it to the originals, then PSNR, SSIM, LPIPS, labels.

Labels come back unordered, so reconstructions are first matched to originals one-to-one by
the Hungarian algorithm on LPIPS (as the ``breaching`` framework does); the metrics are then
per matched pair and averaged.

Memory grows linearly with the batch: the all-pairs LPIPS cost is built from each image's
features, computed once (:func:`lpips_cost`), never by running the backbone on all N^2 pairs
(which took 2 GiB at batch 25, 6 GiB at batch 50 and would take terabytes at 1000); the
backbone sees the images a chunk at a time, the chunk sized to the memory available.
"""

from __future__ import annotations

import numpy as np


def match(originals: np.ndarray, recovered: np.ndarray, *, by: str = "lpips") -> np.ndarray:
    """Index ``order`` such that ``recovered[order[i]]`` is matched to ``originals[i]``.

    ``by``: ``"lpips"`` (VGG LPIPS; images of at least 16x16) or ``"mse"``.
    """
    from scipy.optimize import linear_sum_assignment


    n = len(originals)
    if len(recovered) != n:
        raise ValueError(f"{len(recovered)} reconstructions for {n} originals")
    if n == 1:
        return np.zeros(1, int)
    if by == "mse":
        cost = np.array([[np.mean((o - r) ** 2) for r in recovered] for o in originals])
    elif by == "lpips":
        cost = lpips_cost(originals, recovered)
    else:
        raise ValueError(f"by must be 'lpips' or 'mse'; got {by!r}")
    rows, cols = linear_sum_assignment(cost)
    order = np.empty(n, int)
    order[rows] = cols
    return order


# LPIPS-VGG keeps, per input pixel, 64 + 128/4 + 256/16 + 512/64 + 512/256 = 122 float32
# feature values (relu1_2 .. relu5_3 at strides 1, 2, 4, 8, 16)
LPIPS_FEATURE_BYTES_PER_PIXEL = 122 * 4
# the backbone's forward pass, per input pixel: VGG-16's tensors up to relu5_3 take 2.2 MiB for
# a 32x32 image (tf_impl.memory.activation_bytes), about 2280 bytes a pixel; a margin of 2
LPIPS_FORWARD_BYTES_PER_PIXEL = 2 * 2280


def lpips_chunk(height: int, width: int, available: int | None = None) -> int:
    """Images per LPIPS backbone pass: 64, or fewer so that they fit a quarter of the memory
    budget (1 at least: scoring is not refused, the attack's preflight has run)."""
    from .. import memory

    per_image = LPIPS_FORWARD_BYTES_PER_PIXEL * height * width
    return int(max(1, min(64, 0.25 * memory.budget(available) // per_image)))


def _features(lp, images: np.ndarray, chunk: int):
    """Per LPIPS layer: the (N, H*W*C) unit-normalised features and their head-weighted
    squared norms (N,), filled a chunk of images at a time (no second copy)."""
    heads = [np.asarray(hd, np.float32) for hd in lp.heads]
    feats, norms = None, [np.empty(len(images)) for _ in heads]
    for i in range(0, len(images), chunk):
        part = [np.asarray(f) for f in lp.features(images[i:i + chunk])]
        if feats is None:
            feats = [np.empty((len(images), f[0].size), np.float32) for f in part]
        for f, hd, out, sq in zip(part, heads, feats, norms):
            k = len(f)
            out[i:i + k] = f.reshape(k, -1)
            sq[i:i + k] = (np.square(f) @ hd).reshape(k, -1).sum(axis=1)
    return feats, norms


def lpips_cost(originals: np.ndarray, recovered: np.ndarray, *, net: str = "vgg",
               available: int | None = None) -> np.ndarray:
    """(N, M) LPIPS distance of every original to every reconstruction.

    Each image's features go through the backbone once; per layer ``l`` with features
    ``f`` (unit-normalised over channels) and head ``w``,
    ``d_l(a, b) = mean_hw sum_c w_c (f_a - f_b)^2 = (|f_a|_w^2 + |f_b|_w^2 - 2 <f_a, w f_b>) / HW``
    so the N x M table is three matrix products, not N*M backbone passes. Memory: the
    reconstructions' features (:data:`LPIPS_FEATURE_BYTES_PER_PIXEL` each) plus one chunk of
    originals.
    """
    from .. import metrics

    lp = metrics.LPIPS(net)
    h, w = originals.shape[-2:]
    chunk = lpips_chunk(h, w, available)
    heads = [np.asarray(hd, np.float32) for hd in lp.heads]
    rec, rec_sq = _features(lp, recovered, chunk)
    cost = np.zeros((len(originals), len(recovered)), np.float64)
    for i in range(0, len(originals), chunk):
        org, org_sq = _features(lp, originals[i:i + chunk], chunk)
        for f, f_sq, g, g_sq, hd in zip(org, org_sq, rec, rec_sq, heads):
            k, pixels = len(f), f.shape[1] // len(hd)
            fw = (f.reshape(k, pixels, len(hd)) * hd).reshape(k, -1)
            d = f_sq[:, None] + g_sq[None, :] - 2.0 * (fw @ g.T)
            cost[i:i + k] += np.maximum(d, 0.0) / pixels
    return cost


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
    lp = metrics.LPIPS("vgg")
    chunk = lpips_chunk(*originals.shape[-2:])
    lpips = np.concatenate([np.asarray(lp(originals[i:i + chunk], rec[i:i + chunk])).reshape(-1)
                            for i in range(0, len(rec), chunk)])
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
