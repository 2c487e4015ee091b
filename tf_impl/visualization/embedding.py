"""Feature space: nearest neighbours in feature vs pixel space, and 2-D maps of a dataset.

Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS 2012, Sec. 6.1 and Fig. 4: the training images whose last-hidden-layer feature
vectors lie closest (Euclidean distance) to a test image's are semantically similar even when
their pixels are far apart, unlike neighbours in pixel space. Van der Maaten & Hinton,
"Visualizing Data using t-SNE", JMLR 2008: a 2-D map that keeps neighbourhoods (perplexity 30
as commonly used, PCA to 50 dimensions first, as the paper does), shown with the images as
thumbnails at their points (Karpathy's "t-SNE visualization of CNN codes"); PCA gives the
linear 2-D projection.

Distances: Euclidean (L2, the paper's) by default in both spaces; ``metric="cosine"`` uses
1 - cosine similarity. Pixel space is the flattened pixels in [0, 1]; feature space is a
layer's activations flattened in NCHW order (or averaged / max-pooled over positions with
``pooling=``).

Example:
    >>> x, y = model_zoo.data.cifar10("test", n=200, normalize=False)          # doctest: +SKIP
    >>> f = features(model, x, "layer3", pooling="avg")                         # doctest: +SKIP
    >>> near = nearest_neighbours(x[:4], x, 5, "feature", model=model,
    ...                           layer="layer3")                               # doctest: +SKIP
    >>> xy = embed_2d(f, "tsne", seed=0)                                         # doctest: +SKIP
    >>> draw_embedding("tsne.png", xy, x, labels=y)                             # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from converters.onnx_to_tf import contract_model

from .. import images as imgs
from ..config import plain
from . import checks
from .checks import VisualizationConfig, VisualizationError

METHODS = ("pca", "tsne")
METRICS = ("l2", "cosine")
SPACES = ("feature", "pixel")
POOLINGS = (None, "avg", "max")
# t-SNE's exact gradient up to this many points (Barnes-Hut's tree costs more than it saves
# on small sets); Barnes-Hut (theta 0.5) above
_EXACT_TSNE = 200


@dataclass(frozen=True)
class EmbeddingConfig(VisualizationConfig):
    """Defaults for neighbours and 2-D maps (Krizhevsky et al. 2012; van der Maaten & Hinton
    2008).

    Attributes:
        metric: ``"l2"`` (Euclidean, as Krizhevsky et al.) or ``"cosine"`` (1 - cos).
        pooling: ``None`` flattens a feature map, ``"avg"``/``"max"`` pool it over positions.
        method: ``"pca"`` (deterministic, fast) or ``"tsne"``.
        perplexity: t-SNE perplexity (30; lowered to (N - 1) / 3 for small sets, with a
            warning); ``pca_dims``: PCA to this many dimensions before t-SNE (50).
        seed: the random state of PCA's solver and t-SNE.
        batch_size: images per forward pass when computing features.

    The functions below take these as keyword arguments with the same defaults; the config
    records a run's choices (``to_dict()``) next to its pictures.
    """

    metric: str = "l2"
    pooling: str | None = None
    method: str = "pca"
    perplexity: float = 30.0
    pca_dims: int = 50
    seed: int = 0
    batch_size: int = 64

    def validate(self) -> None:
        _choice("metric", self.metric, METRICS)
        _choice("pooling", self.pooling, POOLINGS)
        _choice("method", self.method, METHODS)

class Neighbours(NamedTuple):
    """``indices`` (Q, k) into the pool, nearest first (ties: lower index first), and their
    ``distances`` (Q, k)."""

    indices: np.ndarray
    distances: np.ndarray


def _choice(what: str, value, allowed: tuple) -> None:
    if value not in allowed:
        raise VisualizationError(f"{what} must be one of {allowed}; got {value!r}")


def features(model, images, layer: str, *, pooling: str | None = None, batch_size: int = 64,
             preprocessing=None) -> np.ndarray:
    """A layer's activations for a set of pictures, one row each: (N, D) float32.

    Args:
        images: pixels in [0, 1], (N, 3, H, W) (or anything :func:`tf_impl.images.as_pixels`
            takes); the model's preprocessing is applied here.
        layer: any layer (alias or tensor name).
        pooling: ``None`` flattens (C*H*W, NCHW order), ``"avg"``/``"max"`` pool over the
            positions of a feature map (C values).
    """
    model = contract_model(model)
    _choice("pooling", pooling, POOLINGS)
    if batch_size < 1:
        raise VisualizationError(f"batch_size must be >= 1; got {batch_size}")
    name = checks.check_layer(model, layer)
    pixels = imgs.as_pixels(images, name="images").pixels
    checks.check_image_size(model, pixels)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    rows = []
    for lo in range(0, len(pixels), batch_size):
        x = imgs.normalize(pixels[lo: lo + batch_size], mean, std)
        a = np.asarray(model(x, taps=[name], compiled=False)[name], np.float32)
        if pooling is not None:
            if a.ndim != 4:
                raise VisualizationError(
                    f"pooling={pooling!r} needs a feature map; layer {layer!r} has shape "
                    f"{a.shape}: use pooling=None")
            a = a.mean(axis=(2, 3)) if pooling == "avg" else a.max(axis=(2, 3))
        rows.append(a.reshape(len(a), -1))
    return np.concatenate(rows)


def _vectors(arr, what: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim == 4:
        a = imgs.as_pixels(a, name=what).pixels
    elif a.ndim != 2:
        raise VisualizationError(
            f"{what} must be images (N, 3, H, W) or vectors (N, D); got shape {a.shape}")
    a = a.reshape(len(a), -1).astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise VisualizationError(f"{what} contains NaN or Inf values")
    return a


def distances(query: np.ndarray, pool: np.ndarray, metric: str = "l2",
              chunk: int = 64) -> np.ndarray:
    """(Q, N) distances between rows (float64): Euclidean, or 1 - cosine similarity (a zero
    vector is at distance 1 from everything)."""
    _choice("metric", metric, METRICS)
    q, p = np.asarray(query, np.float64), np.asarray(pool, np.float64)
    if q.shape[1] != p.shape[1]:
        raise VisualizationError(
            f"query vectors have {q.shape[1]} values and pool vectors {p.shape[1]}: they must "
            "come from the same space (same image size, same layer)")
    if metric == "cosine":
        qn = np.linalg.norm(q, axis=1, keepdims=True)
        pn = np.linalg.norm(p, axis=1, keepdims=True)
        sim = (q / np.where(qn > 0, qn, 1)) @ (p / np.where(pn > 0, pn, 1)).T
        return 1.0 - np.clip(sim, -1.0, 1.0)
    out = np.empty((len(q), len(p)))
    for lo in range(0, len(q), chunk):  # exact differences: a query's own copy is at 0
        d = q[lo: lo + chunk, None, :] - p[None, :, :]
        out[lo: lo + chunk] = np.sqrt(np.einsum("qnd,qnd->qn", d, d))
    return out


def nearest_neighbours(query, pool, k: int = 5, space: str = "feature", *, model=None,
                       layer: str | None = None, metric: str = "l2",
                       pooling: str | None = None, preprocessing=None) -> Neighbours:
    """The ``k`` nearest pool items of each query, in pixel or feature space.

    Args:
        query, pool: images in pixel space (Q, 3, H, W) / (N, 3, H, W), or precomputed
            vectors (Q, D) / (N, D), which are used as they are in either space.
        k: neighbours per query, 1 <= k <= N.
        space: ``"pixel"`` (flattened pixels) or ``"feature"`` (``layer``'s activations of
            ``model``; needs both unless vectors are given).
        metric: ``"l2"`` (Euclidean, default) or ``"cosine"`` (1 - cosine similarity).
        pooling: for feature space, as in :func:`features`.

    Returns:
        :class:`Neighbours` ``(indices, distances)``, each (Q, k), nearest first; ties go to
        the lower pool index, so a query that is in the pool comes first among its copies.
    """
    model = None if model is None else contract_model(model)
    _choice("space", space, SPACES)
    _choice("metric", metric, METRICS)
    q, p = np.asarray(query), np.asarray(pool)
    if q.ndim == 3:
        q = q[None]
    if space == "feature" and (q.ndim == 4 or p.ndim == 4):
        if model is None or layer is None:
            raise VisualizationError(
                "space='feature' with images needs model= and layer= (or pass feature vectors "
                "from features(...))")
        if q.ndim == 4:
            q = features(model, q, layer, pooling=pooling, preprocessing=preprocessing)
        if p.ndim == 4:
            p = features(model, p, layer, pooling=pooling, preprocessing=preprocessing)
    q, p = _vectors(q, "query"), _vectors(p, "pool")
    if len(p) == 0:
        raise VisualizationError("the pool is empty; give at least one image")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= len(p):
        raise VisualizationError(
            f"k must be an integer from 1 to the pool size {len(p)}; got {plain(k)!r}")
    d = distances(q, p, metric)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return Neighbours(order, np.take_along_axis(d, order, axis=1))


def embed_2d(feats, method: str = "pca", seed: int = 0, *, perplexity: float = 30.0,
             pca_dims: int = 50) -> np.ndarray:
    """Points in 2-D for (N, D) vectors (one per image): (N, 2) float64.

    ``"pca"``: the first two principal components (scikit-learn ``PCA``). ``"tsne"``:
    scikit-learn ``TSNE`` (PCA initialisation, ``perplexity``, the data reduced to
    ``pca_dims`` dimensions by PCA first when it has more; the exact gradient up to 200 points,
    Barnes-Hut above), seeded by ``seed``.
    """
    _choice("method", method, METHODS)
    x = np.asarray(feats)
    if x.ndim < 2:
        raise VisualizationError(f"features must be (N, D); got shape {x.shape}")
    x = x.reshape(len(x), -1).astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise VisualizationError("features contain NaN or Inf values")
    n = len(x)
    if n < 3:
        raise VisualizationError(f"a 2-D map needs at least 3 points; got {n}")
    from sklearn.decomposition import PCA

    if method == "pca":
        dims = min(2, x.shape[1])
        out = PCA(n_components=dims, random_state=seed).fit_transform(x)
        return np.pad(out, ((0, 0), (0, 2 - dims))) if dims < 2 else out
    from sklearn.manifold import TSNE

    if x.shape[1] > pca_dims and n > pca_dims:
        x = PCA(n_components=pca_dims, random_state=seed).fit_transform(x)
    p = float(perplexity)
    if p >= (n - 1) / 3:
        p2 = max((n - 1) / 3, 1.0)
        warnings.warn(f"perplexity {p:g} is too large for {n} points; using {p2:.3g}",
                      stacklevel=2)
        p = p2
    method = "exact" if n <= _EXACT_TSNE else "barnes_hut"
    return TSNE(n_components=2, perplexity=p, init="pca", random_state=seed,
                method=method).fit_transform(x)


def draw_neighbours(path, queries, pool, pixel: np.ndarray, feature: np.ndarray, *,
                    title: str = "", size: float = 1.1) -> None:
    """For each query, a row of its neighbours in pixel space and a row in feature space
    (query image first in each row), from the index arrays of :func:`nearest_neighbours`."""
    from ..report import headless_pyplot, to_uint8

    qs = imgs.as_pixels(queries, name="queries").pixels
    ps = imgs.as_pixels(pool, name="pool").pixels
    pixel, feature = np.atleast_2d(pixel), np.atleast_2d(feature)
    if len(pixel) != len(qs) or len(feature) != len(qs):
        raise VisualizationError(
            f"{len(qs)} queries but {len(pixel)} pixel and {len(feature)} feature rows")
    k = max(pixel.shape[1], feature.shape[1])
    plt = headless_pyplot()
    fig, axes = plt.subplots(2 * len(qs), k + 1, figsize=(size * (k + 1) + 0.8,
                                                          size * 2 * len(qs) + 0.5),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for qi in range(len(qs)):
        for r, (space, idx) in enumerate((("pixel", pixel[qi]), ("feature", feature[qi]))):
            row = axes[2 * qi + r]
            row[0].imshow(to_uint8(qs[qi]))
            row[0].set_title(f"query {qi} ({space})", fontsize=6, pad=1)
            for j, i in enumerate(idx):
                row[j + 1].imshow(to_uint8(ps[int(i)]))
                row[j + 1].set_title(f"#{int(i)}", fontsize=6, pad=1)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def draw_embedding(path, points, images, *, labels=None, class_names=None, zoom: float = 0.6,
                   title: str = "", figsize: float = 9.0) -> None:
    """The images as thumbnails at their 2-D points (matplotlib ``OffsetImage`` in an
    ``AnnotationBbox``), framed in their label's colour when ``labels`` are given."""
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    from ..report import headless_pyplot, to_uint8

    pts = np.asarray(points, np.float64)
    px = imgs.as_pixels(images, name="images").pixels
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) != len(px):
        raise VisualizationError(
            f"points must be (N, 2) for the N={len(px)} images; got shape {pts.shape}")
    plt = headless_pyplot()
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(figsize, figsize))
    ax.scatter(pts[:, 0], pts[:, 1], s=2, c="none")
    for i, (xy, img) in enumerate(zip(pts, px)):
        frame = {}
        if labels is not None:
            frame = {"bboxprops": {"edgecolor": cmap(int(labels[i]) % 10), "lw": 1.5}}
        box = AnnotationBbox(OffsetImage(to_uint8(img), zoom=zoom), tuple(xy), pad=0.1,
                             frameon=labels is not None, **frame)
        ax.add_artist(box)
    if labels is not None and class_names is not None:
        for c in sorted(set(int(v) for v in labels)):
            ax.scatter([], [], color=cmap(c % 10), label=class_names[c])
        ax.legend(fontsize=7, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
