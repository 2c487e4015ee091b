"""Label restoration: read the private labels of a batch off the last FC layer's gradient.

With cross-entropy and a fully connected classifier ``z = W h + b``, the client's gradient is

    dL/dW[k, :] = c * sum_i (p_ik - y_ik) h_i        dL/db[k] = c * sum_i (p_ik - y_ik)

(``c = 1/B`` for a mean-reduced loss, 1 for a sum), with ``p_i`` the softmax output and
``y_i`` the one-hot label of sample ``i``. When the features ``h_i`` entering the FC layer are
non-negative (after a ReLU, an average pool or a sigmoid), a class no sample carries has an
all non-negative weight-gradient row and a positive bias gradient, while a class that is
present usually has negative entries. Three rules build on that:

- :func:`idlg_label` -- iDLG (Zhao et al. 2020), batch of one: the class whose weight-gradient
  row sums to a negative value.
- :func:`column_min_labels` -- GradInversion (Yin et al., CVPR 2021): the ``K`` classes with
  the most negative minimum over the FC input features, for ``K`` samples with unique labels.
- :func:`duplicate_aware_labels` -- counts repeated labels from the bias gradient, in the
  spirit of LLG (Wainakh et al., PoPETs 2022: present classes from negative gradients, then
  counts from the gradient magnitude once the "impact" of one sample is known) and iLRG
  (Ma et al., ICLR 2023: the bias gradient is ``p_bar_k - n_k / B``, so counts follow once the
  batch-mean softmax ``p_bar`` is estimated). See that function for the estimator.

:func:`restore_labels` picks one, and :func:`label_accuracy` scores a restored multiset.
Everything here is numpy on the shared gradient: no TensorFlow call is needed.

Example:
    >>> model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))          # doctest: +SKIP
    >>> x, y = model_zoo.data.cifar10("test")                                # doctest: +SKIP
    >>> idx = [607, 637, 148, 363]                       # labels 3, 3, 5, 1  # doctest: +SKIP
    >>> restore_labels(model, client_gradient(model, x[idx], y[idx]))        # doctest: +SKIP
    array([1, 3, 3, 5])
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from converters.onnx_to_tf import contract_model

from ..config import plain
from .victim import FCLayer, GradientInversionError, SharedGradient, check_gradient, fc_layer

METHODS = ("auto", "idlg", "column_min", "duplicates")


class LabelRestorationWarning(UserWarning):
    """The rule ran but its assumptions look violated (the result may be wrong)."""


@dataclass(frozen=True)
class _FCGrad:
    """The FC gradient as (classes, features), the bias gradient, and the batch facts."""

    fc: FCLayer
    weight: np.ndarray  # (classes, features)
    bias: np.ndarray | None  # (classes,) or None when the layer / the gradient has no bias
    batch_size: int | None  # None: a plain dict was passed, which does not say
    reduction: str


def _fc_gradient(model_or_fc, shared) -> _FCGrad:
    """Validate the inputs and pull out the FC weight (and bias) gradient."""
    known_batch = isinstance(shared, SharedGradient)
    if not known_batch and not isinstance(shared, Mapping):
        raise GradientInversionError(
            f"shared must be a SharedGradient (from client_gradient) or a dict of ONNX "
            f"initializer name -> gradient; got {type(shared).__name__}"
        )
    if isinstance(model_or_fc, FCLayer):
        fc = model_or_fc
        if not known_batch:
            shared = SharedGradient({k: np.asarray(v) for k, v in shared.items()})
    elif hasattr(model_or_fc, "onnx_variables") and hasattr(model_or_fc, "nodes"):
        fc = fc_layer(model_or_fc)
        shared = check_gradient(model_or_fc, shared)
    else:
        raise GradientInversionError(
            "model_or_fc must be a model from converters.onnx_to_tf.load(...) or the FCLayer "
            f"of fc_layer(model); got {type(model_or_fc).__name__}"
        )
    if fc.weight not in shared.grads:
        raise GradientInversionError(
            f"the shared gradient has no entry {fc.weight!r}: the weight of the classifier's "
            f"last FC layer (node {fc.node!r}), which label restoration reads. The gradient "
            f"has {len(shared.grads)} entries, e.g. {sorted(shared.grads)[:3]}"
        )
    gw = np.asarray(shared.grads[fc.weight], dtype=np.float64)
    if gw.ndim != 2 or gw.shape[fc.out_axis] != fc.num_classes:
        raise GradientInversionError(
            f"gradient {fc.weight!r} has shape {gw.shape}; expected a 2-D FC weight gradient "
            f"with {fc.num_classes} classes on axis {fc.out_axis} (ONNX layout)"
        )
    gb = None
    if fc.bias is not None and fc.bias in shared.grads:
        gb = np.asarray(shared.grads[fc.bias], dtype=np.float64).reshape(-1)
        if gb.shape != (fc.num_classes,):
            raise GradientInversionError(
                f"gradient {fc.bias!r} has shape {gb.shape}; expected ({fc.num_classes},)"
            )
    for name, g in ((fc.weight, gw), (fc.bias, gb)):
        if g is not None and not np.all(np.isfinite(g)):
            raise GradientInversionError(f"gradient {name!r} contains NaN or Inf")
    if shared.reduction not in ("mean", "sum"):
        raise GradientInversionError(
            f"shared.reduction must be 'mean' or 'sum'; got {shared.reduction!r}"
        )
    batch = int(shared.batch_size) if known_batch else None
    if batch is not None and batch < 1:
        raise GradientInversionError(f"shared.batch_size must be >= 1; got {batch}")
    return _FCGrad(fc, fc.per_class(gw), gb, batch, shared.reduction)


def _batch(g: _FCGrad, k, what: str) -> int:
    if k is None:
        if g.batch_size is None:
            raise GradientInversionError(
                f"{what}: a plain gradient dict does not say the batch size; pass k=<number of "
                "samples> or a SharedGradient from client_gradient"
            )
        k = g.batch_size
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise GradientInversionError(f"{what}: k must be a positive int; got {plain(k)!r}")
    return int(k)


def idlg_label(model_or_fc, shared) -> int:
    """The label of a single-sample gradient by iDLG (Zhao et al. 2020, "iDLG: Improved Deep
    Leakage from Gradients").

    For one sample, ``dL/dW[k, :] = (p_k - y_k) h``: with non-negative features ``h`` the true
    class's row is the only one summing to a negative value (``p_k - 1 < 0``). If the features
    sum negative (no ReLU before the layer) the signs flip, so the odd one out is taken; when
    the weight gradient is inconclusive the bias gradient (``p - y``, negative only at the
    label) decides.

    Args:
        model_or_fc: the model (the gradient is checked against it) or its :class:`FCLayer`.
        shared: the client's :class:`SharedGradient` (batch 1) or a dict of gradients.

    Returns:
        the class index.

    Raises:
        GradientInversionError: a batch larger than one (use :func:`column_min_labels` or
            :func:`duplicate_aware_labels`), or an all-zero FC gradient.

    Example:
        >>> shared = client_gradient(model, x[:1], y[:1])                 # doctest: +SKIP
        >>> idlg_label(model, shared) == y[0]                             # doctest: +SKIP
        True
    """
    g = _fc_gradient(model_or_fc, shared)
    if g.batch_size is not None and g.batch_size != 1:
        raise GradientInversionError(
            f"iDLG reads the label of a single sample, but the gradient is of a batch of "
            f"{g.batch_size}: use column_min_labels (unique labels) or duplicate_aware_labels "
            "(repeated labels)"
        )
    s = g.weight.sum(axis=1)
    neg, pos = np.flatnonzero(s < 0), np.flatnonzero(s > 0)
    if len(neg) == 1:
        return int(neg[0])
    if len(neg) == 0 and np.count_nonzero(s <= 0) == 1:
        # a saturated softmax (p_label == 1 in float32): the label's row vanishes and every
        # other row carries a small positive p_k h
        return int(np.argmin(s))
    if len(pos) == 1 and len(s) > 2:
        return int(pos[0])
    if g.bias is not None and np.count_nonzero(g.bias < 0) == 1:
        return int(np.argmin(g.bias))
    if not np.any(s) and (g.bias is None or not np.any(g.bias)):
        raise GradientInversionError(
            "the FC layer's gradient is all zero (the features entering it are zero, or the "
            "loss is saturated): no label can be read from it"
        )
    warnings.warn(
        f"iDLG: {len(neg)} classes have a negative weight-gradient row sum (expected exactly "
        "one for a single sample with non-negative features); returning the most negative. "
        "Is the batch really one sample?",
        LabelRestorationWarning,
        stacklevel=2,
    )
    return int(np.argmin(s))


def column_min_labels(model_or_fc, shared, k: int | None = None) -> np.ndarray:
    """The labels of a batch with unique labels by GradInversion's column-wise minimum (Yin et
    al., CVPR 2021, "See through Gradients", Sec. 3.1).

    ``labels = argsort(min over features of dL/dW[k, :])[:K]``: a class no sample carries has
    a non-negative row (``p_ik h_i >= 0``), a present class has strongly negative entries
    where its sample's features are large. Ties are broken by the row sum (iDLG's statistic),
    which matters when a sample's softmax saturates (its row is then zero). Assumes
    non-negative features before the FC layer and unique labels; a repeated label can only
    come back once. The paper reports 99.56 % on ImageNet, ResNet-50, batch 8.

    Args:
        model_or_fc: the model or its :class:`FCLayer`.
        shared: the client's :class:`SharedGradient` or a dict of gradients (then pass ``k``).
        k: number of labels to return; defaults to ``shared.batch_size``.

    Returns:
        ``k`` distinct class indices, sorted (the gradient does not tell which sample has
        which label).

    Example:
        >>> idx = [97, 37, 86, 332]                       # labels 0, 1, 2, 3  # doctest: +SKIP
        >>> column_min_labels(model, client_gradient(model, x[idx], y[idx]))  # doctest: +SKIP
        array([0, 1, 2, 3])
    """
    g = _fc_gradient(model_or_fc, shared)
    k = _batch(g, k, "column_min_labels")
    n_cls = g.fc.num_classes
    if k > n_cls:
        raise GradientInversionError(
            f"a batch of {k} cannot have unique labels among {n_cls} classes: use "
            "duplicate_aware_labels"
        )
    col_min = g.weight.min(axis=1)
    n_neg = int(np.count_nonzero(col_min < 0))
    if n_neg < k:
        warnings.warn(
            f"column_min_labels: only {n_neg} of {n_cls} classes have a negative weight-"
            f"gradient entry but k={k}: the batch repeats labels (use duplicate_aware_labels), "
            "a sample's softmax is saturated (p_label == 1 leaves no trace in the gradient) or "
            "the features before the FC layer can be negative",
            LabelRestorationWarning,
            stacklevel=2,
        )
    # ties (a saturated softmax gives a zero row, and ReLU zeros give zero minima) are broken
    # by the row sum, iDLG's statistic
    return np.sort(np.lexsort((g.weight.sum(axis=1), col_min))[:k])


def _allocate(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer counts >= 1 summing to ``total``, proportional to ``weights`` (largest
    remainder)."""
    n = len(weights)
    w = np.clip(np.asarray(weights, np.float64), 0.0, None)
    target = total * w / w.sum() if w.sum() > 0 else np.full(n, total / n)
    counts = np.maximum(np.floor(target), 1).astype(np.int64)
    rest = target - counts
    while counts.sum() > total:  # the floor of 1 overshot: take from the most over-served
        over = np.where(counts > 1, rest, np.inf)
        counts[int(np.argmin(over))] -= 1
        rest = target - counts
    for i in np.argsort(-rest, kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return counts


def label_counts(model_or_fc, shared, k: int | None = None) -> dict[int, int]:
    """``{class: count}`` behind :func:`duplicate_aware_labels` (same arguments)."""
    return dict(Counter(duplicate_aware_labels(model_or_fc, shared, k).tolist()))


def duplicate_aware_labels(model_or_fc, shared, k: int | None = None) -> np.ndarray:
    """The labels of a batch that may repeat labels, counted from the FC bias gradient.

    Based on LLG (Wainakh et al., PoPETs 2022, "User-Level Label Leakage from Gradients in
    Federated Learning") and iLRG (Ma et al., ICLR 2023, "Instance-wise Batch Label
    Restoration via Gradients in Federated Learning"). With ``B`` samples and a mean loss the
    bias gradient is ``g_k = p_bar_k - n_k / B`` (``p_bar_k`` the batch mean of the softmax
    output for class ``k``, ``n_k`` the number of samples labelled ``k``); with a sum, ``B``
    times that. Steps, on ``G_k = B g_k = P_k - n_k`` (``P_k`` the summed softmax mass):

    1. present classes: a negative entry in the weight-gradient row (GradInversion's test,
       exact when the features before the FC layer are non-negative: an absent class's row
       is ``sum_i p_ik h_i >= 0``) or a negative bias gradient (an absent class has
       ``G_k = P_k >= 0``).
    2. the softmax mass a present class receives from the other samples is estimated by the
       absent classes' mean ``G`` (for them ``G_k = P_k``; LLG's offset), so
       ``est_k = mean_absent(G) - G_k``, which is ``n_k`` times the per-sample impact
       ``1 - p_ik`` (plus a small share of the leak). When every class is present, the leak
       is taken as zero.
    3. the counts: each present class gets at least one sample and the ``B`` samples are
       shared in proportion to ``est`` by largest remainder (the impact's unknown scale drops
       out, so mean and sum reductions give the same answer).

    Without an FC bias (or its gradient) the weight-gradient row sums ``sum_i (p_ik - y_ik)
    |h_i|_1`` stand in (LLG's original signal), which weights each sample by its feature norm:
    a :class:`LabelRestorationWarning` says the counts are less reliable. The counts are
    exact for an untrained model (near-uniform softmax); on a confident trained model samples
    with ``p_ik -> 1`` add almost nothing to the gradient and the counts blur.

    Args:
        model_or_fc: the model or its :class:`FCLayer`.
        shared: the client's :class:`SharedGradient` or a dict of gradients (then pass ``k``).
        k: batch size (number of labels returned); defaults to ``shared.batch_size``.

    Returns:
        the sorted multiset of ``k`` labels.

    Example:
        >>> idx = [607, 637, 148, 363]                    # labels 3, 3, 5, 1  # doctest: +SKIP
        >>> duplicate_aware_labels(model, client_gradient(model, x[idx], y[idx]))  # doctest: +SKIP
        array([1, 3, 3, 5])
    """
    g = _fc_gradient(model_or_fc, shared)
    k = _batch(g, k, "duplicate_aware_labels")
    col_min = g.weight.min(axis=1)
    present = col_min < 0
    if g.bias is not None:
        signal = g.bias * (k if g.reduction == "mean" else 1.0)
        present |= signal < 0
    else:
        signal = g.weight.sum(axis=1)
        if g.reduction == "mean":
            signal = signal * k
        warnings.warn(
            f"the FC layer {g.fc.node!r} has no bias (or its gradient was not shared): "
            "duplicate labels are counted from the weight-gradient row sums, which weight each "
            "sample by its feature norm; counts are approximate",
            LabelRestorationWarning,
            stacklevel=2,
        )
    idx = np.flatnonzero(present)
    if len(idx) == 0:
        if not np.any(signal) and not np.any(g.weight):
            raise GradientInversionError(
                "the FC layer's gradient is all zero: no label can be read from it"
            )
        warnings.warn(
            "duplicate_aware_labels: no class has a negative FC gradient entry (saturated "
            "softmax, or features before the FC layer that can be negative); guessing the "
            "class with the smallest gradient for the whole batch",
            LabelRestorationWarning,
            stacklevel=2,
        )
        idx = np.array([int(np.argmin(signal))])
    if len(idx) >= k:
        if len(idx) > k:
            warnings.warn(
                f"duplicate_aware_labels: {len(idx)} classes look present but k={k}; keeping "
                "the k with the most negative column minimum",
                LabelRestorationWarning,
                stacklevel=2,
            )
        return np.sort(idx[np.argsort(col_min[idx], kind="stable")[:k]])
    absent = ~present
    leak = float(signal[absent].mean()) if absent.any() else 0.0
    counts = _allocate(leak - signal[idx], k)
    return np.repeat(idx, counts)


def restore_labels(model, shared, method: str = "auto", k: int | None = None) -> np.ndarray:
    """Restore the labels of the client's batch from its shared gradient.

    ``method``: ``"idlg"`` (:func:`idlg_label`, Zhao et al. 2020; batch 1), ``"column_min"``
    (:func:`column_min_labels`, Yin et al. 2021; unique labels), ``"duplicates"``
    (:func:`duplicate_aware_labels`, after LLG / iLRG; repeated labels) or ``"auto"``: iDLG for
    a batch of one, the duplicate-aware rule when the FC layer has a bias gradient, else the
    column-wise minimum.

    Returns:
        the sorted labels as an int64 array of length ``k`` (default ``shared.batch_size``).

    Example:
        >>> restore_labels(model, client_gradient(model, x[:1], y[:1]))   # doctest: +SKIP
        array([3])
    """
    model = contract_model(model)
    if method not in METHODS:
        raise GradientInversionError(f"method must be one of {METHODS}; got {method!r}")
    if method == "auto":
        g = _fc_gradient(model, shared)
        batch = _batch(g, k, "restore_labels")
        if batch == 1:
            method = "idlg"
        elif g.bias is not None:
            method = "duplicates"
        else:
            method = "column_min"
    if method == "idlg":
        if k not in (None, 1):
            raise GradientInversionError(f"iDLG restores one label; got k={k}")
        return np.array([idlg_label(model, shared)], dtype=np.int64)
    if method == "column_min":
        return column_min_labels(model, shared, k).astype(np.int64)
    return duplicate_aware_labels(model, shared, k).astype(np.int64)


def label_accuracy(true, restored) -> float:
    """Fraction of the true labels recovered, ignoring order: ``|true ∩ restored| / |true|``
    with multiset intersection (a label repeated twice must be restored twice).

    Example:
        >>> label_accuracy([3, 3, 5, 1], [1, 3, 5, 5])
        0.75
    """
    t, r = np.asarray(true), np.asarray(restored)
    for name, a in (("true", t), ("restored", r)):
        if a.ndim != 1 or (a.size and a.dtype.kind not in "iu"):
            raise GradientInversionError(
                f"{name} labels must be a 1-D sequence of integer class indices; got shape "
                f"{a.shape}, dtype {a.dtype}"
            )
        if a.size and a.min() < 0:
            raise GradientInversionError(f"{name} labels must be >= 0; got {a.min()}")
    if t.size == 0:
        raise GradientInversionError("true labels are empty")
    common = Counter(t.tolist()) & Counter(r.tolist())
    return sum(common.values()) / t.size
