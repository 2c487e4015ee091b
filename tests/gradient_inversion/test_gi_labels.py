"""Label restoration from the last FC layer's gradient (tf_impl/gradient_inversion/labels.py).

iDLG is exact for one sample and is checked on every image tried. The batch rules are
statistical: on the trained resnet20_cifar a test image's softmax is often saturated in float32
(p_label == 1.0 for a third of the test set, so the sample leaves no trace in the FC gradient),
and with only 10 classes a misclassified sample pours its softmax mass into another present
class. The resnet20 batch tests therefore use a small set of batches checked to be recoverable:
images the model classifies correctly with 1 % < 1 - p_label < 10 % (confident but not
saturated). ``benchmarks/label_restoration.py`` measures the rates over random batches.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import model_zoo
from tf_impl.gradient_inversion import GradientInversionError, client_gradient, fc_layer
from tf_impl.gradient_inversion.labels import (
    LabelRestorationWarning,
    column_min_labels,
    duplicate_aware_labels,
    idlg_label,
    label_accuracy,
    label_counts,
    restore_labels,
)

# resnet20_cifar test-set indices checked to be recoverable (see the module docstring):
# correctly classified with 1e-2 < 1 - p_label < 1e-1.
UNIQUE_BATCHES = [
    [97, 37, 86, 332],  # labels 0, 1, 2, 3
    [22, 12, 501, 20],  # 4, 5, 6, 7
    [154, 363, 183, 586],  # 0, 1, 2, 3
    [97, 37, 86, 332, 22, 12, 501, 20],  # 0..7
]
DUPLICATE_BATCHES = [[607, 637, 148, 363], [688, 690, 488, 407]]  # labels 3, 3, 5, 1


@pytest.fixture(scope="module")
def cifar():
    return model_zoo.data.cifar10("test")


def test_idlg_exact_on_single_samples(zoo_model, cifar):
    x, y = cifar
    m = zoo_model("resnet20_cifar")
    # images 0, 1 and 4 are saturated (p_label == 1.0 in float32): the label's row is zero
    for i in range(8):
        shared = client_gradient(m, x[i : i + 1], y[i : i + 1])
        assert idlg_label(m, shared) == y[i]
        assert restore_labels(m, shared).tolist() == [y[i]]
    lenet = zoo_model("lenet_dlg")  # untrained, sigmoid features, 100 classes
    for i, label in enumerate([0, 17, 42, 99, 63, 5]):
        shared = client_gradient(lenet, x[i : i + 1], np.array([label]))
        assert idlg_label(lenet, shared) == label
        assert column_min_labels(lenet, shared).tolist() == [label]


@pytest.mark.parametrize("idx", UNIQUE_BATCHES, ids=lambda i: f"batch{len(i)}-{i[0]}")
def test_column_min_recovers_unique_labels(zoo_model, cifar, idx):
    x, y = cifar
    m = zoo_model("resnet20_cifar")
    shared = client_gradient(m, x[idx], y[idx])
    assert len(set(y[idx].tolist())) == len(idx)
    assert column_min_labels(m, shared).tolist() == sorted(y[idx].tolist())
    # the duplicate-aware rule agrees on a batch without repeats
    assert duplicate_aware_labels(m, shared).tolist() == sorted(y[idx].tolist())


def test_column_min_on_untrained_lenet_random_batches(zoo_model, cifar):
    x, _ = cifar
    m = zoo_model("lenet_dlg")
    rng = np.random.default_rng(0)
    for _ in range(4):
        idx = rng.choice(len(x), 8, replace=False)
        labels = rng.choice(100, 8, replace=False)
        shared = client_gradient(m, x[idx], labels)
        assert column_min_labels(m, shared).tolist() == sorted(labels.tolist())


@pytest.mark.parametrize("idx", DUPLICATE_BATCHES, ids=lambda i: str(i[0]))
def test_duplicate_aware_counts_repeated_labels(zoo_model, cifar, idx):
    x, y = cifar
    m = zoo_model("resnet20_cifar")
    assert y[idx].tolist() == [3, 3, 5, 1]
    for reduction in ("mean", "sum"):
        shared = client_gradient(m, x[idx], y[idx], reduction=reduction)
        assert duplicate_aware_labels(m, shared).tolist() == [1, 3, 3, 5]
        assert restore_labels(m, shared).tolist() == [1, 3, 3, 5]  # auto -> duplicates
        assert label_counts(m, shared) == {1: 1, 3: 2, 5: 1}
    # the unique rule can return each class once only, and says so
    with pytest.warns(LabelRestorationWarning, match="repeats labels"):
        unique = column_min_labels(m, shared)
    assert label_accuracy(y[idx], unique) == 0.75


def test_keras_layout_out_axis_1(zoo_model, cifar):
    x, _ = cifar
    m = zoo_model("keras_cnn")
    fc = fc_layer(m)
    assert fc.out_axis == 1
    labels = np.array([2, 2, 2, 7, 0, 0])
    shared = client_gradient(m, x[:6], labels)
    assert duplicate_aware_labels(m, shared).tolist() == [0, 0, 2, 2, 2, 7]
    assert duplicate_aware_labels(fc, shared).tolist() == [0, 0, 2, 2, 2, 7]  # FCLayer form
    unique = np.array([9, 4, 1, 6])
    shared = client_gradient(m, x[:4], unique)
    assert column_min_labels(m, shared).tolist() == [1, 4, 6, 9]
    assert idlg_label(m, client_gradient(m, x[:1], np.array([8]))) == 8


def test_sum_reduction_gives_the_same_labels(zoo_model, cifar):
    x, y = cifar
    m = zoo_model("resnet20_cifar")
    idx = UNIQUE_BATCHES[0]
    mean = client_gradient(m, x[idx], y[idx], reduction="mean")
    total = client_gradient(m, x[idx], y[idx], reduction="sum")
    np.testing.assert_allclose(total.grads["linear.bias"], 4 * mean.grads["linear.bias"],
                               atol=1e-7)
    assert column_min_labels(m, total).tolist() == column_min_labels(m, mean).tolist()
    one = client_gradient(m, x[3:4], y[3:4], reduction="sum")
    assert idlg_label(m, one) == y[3]


def test_plain_dict_needs_k(zoo_model, cifar):
    x, y = cifar
    m = zoo_model("resnet20_cifar")
    idx = UNIQUE_BATCHES[1]
    grads = dict(client_gradient(m, x[idx], y[idx]).grads)
    with pytest.raises(GradientInversionError, match="pass k="):
        column_min_labels(m, grads)
    assert column_min_labels(m, grads, k=4).tolist() == sorted(y[idx].tolist())
    assert duplicate_aware_labels(m, grads, k=4).tolist() == sorted(y[idx].tolist())


def test_without_bias_counts_from_weight_rows_and_warns(zoo_model, cifar):
    x, _ = cifar
    m = zoo_model("keras_cnn")
    fc = dataclasses.replace(fc_layer(m), bias=None)
    shared = client_gradient(m, x[:6], np.array([2, 2, 2, 7, 0, 0]))
    with pytest.warns(LabelRestorationWarning, match="no bias"):
        labels = duplicate_aware_labels(fc, shared)
    assert labels.tolist() == [0, 0, 2, 2, 2, 7]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auto = restore_labels(fc, client_gradient(m, x[:3], np.array([1, 5, 3])))
    assert auto.tolist() == [1, 3, 5]  # auto without a bias -> column-wise minimum


def test_saturated_samples_leave_no_trace(zoo_model, cifar):
    # images 0 and 1 have p_label == 1.0 in float32: their (p - y) is exactly zero, so the
    # FC gradient only carries the tiny positive leak to the other classes
    x, y = cifar
    m = zoo_model("resnet20_cifar")
    shared = client_gradient(m, x[:2], y[:2])
    assert not np.any(shared.grads["linear.bias"] < 0)
    with pytest.warns(LabelRestorationWarning, match="saturated"):
        column_min_labels(m, shared)


def test_error_messages(zoo_model, cifar):
    x, y = cifar
    m = zoo_model("resnet20_cifar")
    shared = client_gradient(m, x[:2], np.array([1, 2]))
    with pytest.raises(GradientInversionError,
                       match="a batch of 12 cannot have unique labels among 10 classes: use "
                             "duplicate_aware_labels"):
        column_min_labels(m, shared, k=12)
    with pytest.raises(GradientInversionError, match="use column_min_labels .* or "
                                                     "duplicate_aware_labels"):
        idlg_label(m, shared)
    with pytest.raises(GradientInversionError, match="use column_min_labels"):
        restore_labels(m, shared, method="idlg")
    other = client_gradient(zoo_model("lenet_dlg"), x[:1], np.array([0]))
    with pytest.raises(GradientInversionError, match="another model"):
        restore_labels(m, other)
    missing = {k: v for k, v in shared.grads.items() if k != "linear.weight"}
    with pytest.raises(GradientInversionError, match="'linear.weight'"):
        duplicate_aware_labels(m, missing, k=2)
    with pytest.raises(GradientInversionError, match="has shape"):
        column_min_labels(fc_layer(m), {"linear.weight": np.zeros((64, 10))}, k=2)
    with pytest.raises(GradientInversionError, match="method must be one of"):
        restore_labels(m, shared, method="llg")
    for k in (0, 2.5, True):
        with pytest.raises(GradientInversionError, match="positive int"):
            duplicate_aware_labels(m, shared, k=k)
    with pytest.raises(GradientInversionError, match="model_or_fc"):
        column_min_labels("resnet20_cifar", shared)
    with pytest.raises(GradientInversionError, match="SharedGradient"):
        column_min_labels(m, [shared.grads])
    nan = dict(shared.grads)
    nan["linear.bias"] = np.full(10, np.nan, np.float32)
    with pytest.raises(GradientInversionError, match="NaN"):
        duplicate_aware_labels(m, nan, k=2)


def test_label_accuracy_is_multiset_agreement():
    assert label_accuracy([3, 3, 5, 1], [1, 3, 5, 5]) == 0.75
    assert label_accuracy([3, 3, 5, 1], [5, 1, 3, 3]) == 1.0
    assert label_accuracy(np.array([7]), np.array([], dtype=np.int64)) == 0.0
    assert label_accuracy([0, 1], [1, 1, 0]) == 1.0  # divides by the true batch size
    with pytest.raises(GradientInversionError, match="integer class indices"):
        label_accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(GradientInversionError, match="1-D"):
        label_accuracy([[0, 1]], [0, 1])
    with pytest.raises(GradientInversionError, match=">= 0"):
        label_accuracy([0, 1], [-1, 1])
    with pytest.raises(GradientInversionError, match="empty"):
        label_accuracy([], [1])
