"""Gradient inversion in TF (tf_impl.gradient_inversion) against the PyTorch reference
(converters.torch_reference.gradient_inversion) on the same ONNX files.

Agreement is max |TF - PyTorch| / max |PyTorch| per array, and |TF - PyTorch| / |PyTorch| per
history entry.

- (a) the client's shared gradient, every weight of resnet20_cifar, mean and sum reductions,
  on real CIFAR-10 test images: <= 1e-4.
- (b) the labels restored from either gradient by the same numpy rules: identical.
- (c) 10 steps of GradInversion (all terms: gradient distance, TV, L2, BN prior, group term,
  Langevin noise; 2 seeds): TF runs ``grad_inversion`` itself, with the consensus refreshed
  after steps 1, 4, 7 and 10 (``group_start=1, group_every=3``, plain mean of the seeds:
  ``registration="none"``), so the group term is on with a constant consensus between
  refreshes; PyTorch runs ``gradinversion_torch`` with the same refresh. <= 1e-3 on the seeds'
  images and on every history entry.
- (d) DLG's soft-label objective on lenet_dlg: the gradient of the gradient distance with
  respect to the dummy images *and* the dummy soft labels: <= 1e-4. TF's fused
  softmax-cross-entropy op dropped the second-order term with respect to the labels; this
  guards the fix (``victim.cross_entropy`` with ``log_softmax``).

Why (c) uses seed 8 with a batch of 2 (measured on 2 CPU cores, float32): the gradient
distance is a double backward through ReLUs. When a pre-activation lies within float32
rounding of zero, the two frameworks (or PyTorch float32 and float64) take different sides of
the kink, and the weight gradient, hence the image gradient, jumps (by ~1e-2 of its maximum).
From the default start (seed 0, batch 4) that happens at the second step; after 10 steps
PyTorch float32 against PyTorch float64 alone differs by 8e-2 on the images and 8e-3 on the
gradient term, and TF against PyTorch by 5e-2 and 1e-2: no float32 implementation can meet 1e-3
there. Seed 8 with 2 images crosses no kink within rounding in 10 steps:
``test_gradinversion_case_is_well_conditioned`` checks that (float32 vs float64 <= 1e-4).
"""

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import numpy as np
import pytest
import tensorflow as tf
import torch

import model_zoo
from converters import onnx_to_tf
from converters.torch_reference import gradient_inversion as ref
from tf_impl import images as imgs
from tf_impl.gradient_inversion import SharedGradient, client_gradient, fc_layer
from tf_impl.gradient_inversion.gradinversion import GradInversionConfig, grad_inversion
from tf_impl.gradient_inversion.labels import restore_labels
from tf_impl.gradient_inversion.matching import GradientMatcher
from tf_impl.optimize import seeded_noise

GRAD_TOL = 1e-4
RUN_TOL = 1e-3
GI_SEED, GI_BATCH, GI_STEPS = 8, 2, 10


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def resnet():
    path = model_zoo.load("resnet20_cifar")
    return path, onnx_to_tf.load(path)


@pytest.fixture(scope="module")
def batch():
    return model_zoo.data.cifar10("test", n=4)


def rel(got, want) -> float:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def rel_history(got: dict, want: dict) -> dict[str, float]:
    """Per entry, max over steps of |got - want| / |want| (0 where both are 0)."""
    assert set(got) == set(want), (sorted(got), sorted(want))
    out = {}
    for k in want:
        a, b = np.asarray(got[k], np.float64), np.asarray(want[k], np.float64)
        assert a.shape == b.shape, (k, a.shape, b.shape)
        d = np.abs(a - b)
        out[k] = float(np.max(np.where(d == 0, 0.0, d / np.maximum(np.abs(b), 1e-30))))
    return out


# -- (a), (b): the shared gradient and the labels read from it ---------------------------------
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_client_gradient_and_labels(resnet, batch, reduction):
    path, model = resnet
    x, y = batch
    shared = client_gradient(model, x, y, reduction=reduction)
    grads = ref.client_gradient_torch(path, x, y, reduction)
    assert sorted(grads) == sorted(shared.grads)
    assert len(grads) == 59  # conv and FC weights, BN scales and biases; no running stats
    errors = {k: rel(shared.grads[k], grads[k]) for k in grads}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= GRAD_TOL, (worst, errors[worst])
    # the same numpy rules on the PyTorch gradient give the same labels
    theirs = SharedGradient(grads, reduction, len(y))
    for method in ("auto", "column_min", "duplicates"):
        np.testing.assert_array_equal(restore_labels(model, theirs, method),
                                      restore_labels(model, shared, method), err_msg=method)


def test_client_gradient_train_mode(resnet, batch):
    """BatchNorm on batch statistics (a local training step): the running statistics are
    neither used nor updated on either side."""
    path, model = resnet
    x, y = batch
    shared = client_gradient(model, x, y, bn_mode="train")
    grads = ref.client_gradient_torch(path, x, y, bn_mode="train")
    errors = {k: rel(shared.grads[k], grads[k]) for k in grads}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= GRAD_TOL, (worst, errors[worst])


# -- (c) GradInversion, 10 steps ---------------------------------------------------------------
def gi_config(seed: int = GI_SEED) -> GradInversionConfig:
    return GradInversionConfig(
        seeds=2, seed=seed, group_start=1, group_every=3, registration="none"
    ).with_(steps=GI_STEPS, warmup=3, progress=False)


@pytest.fixture(scope="module")
def gi_case(resnet, batch):
    path, model = resnet
    x, y = batch[0][:GI_BATCH], batch[1][:GI_BATCH]
    cfg = gi_config()
    start = seeded_noise((cfg.seeds * GI_BATCH, 3, 32, 32), cfg.seed, cfg.init_std)
    shared = client_gradient(model, x, y)
    torch_f32 = ref.gradinversion_torch(path, shared, y, cfg, start)
    return path, model, shared, y, cfg, start, torch_f32


def test_gradinversion_matches_torch(gi_case):
    path, model, shared, y, cfg, start, out = gi_case
    tf_res = grad_inversion(model, shared, cfg, labels=y)
    assert out["steps"] == tf_res.steps == GI_STEPS and out["stopped"] is None
    assert out["refreshed"] == [s for s, _ in tf_res.extra["registration_converged"]] == [
        1, 4, 7, 10]
    assert {"gradient", "tv", "l2", "bn", "group"} <= set(tf_res.history)
    assert tf_res.history["group"][0] == 0 and min(tf_res.history["group"][1:]) > 0
    mean, std = imgs.preprocessing_of(model)
    torch_px = np.clip(imgs.denormalize(out["x"], mean, std), 0, 1)
    image_err = rel(tf_res.extra["seeds"].reshape(torch_px.shape), torch_px)
    hist = rel_history(tf_res.history, out["history"])
    assert image_err <= RUN_TOL, (image_err, hist)
    assert max(hist.values()) <= RUN_TOL, (image_err, hist)


def test_gradinversion_case_is_well_conditioned(gi_case):
    """The case of the parity test is insensitive to float32 rounding: PyTorch float32 and
    float64 agree to 1e-4 after 10 steps (with the default seed 0 and 4 images they differ
    by 8e-2, see the module docstring)."""
    path, _, shared, y, cfg, start, f32 = gi_case
    f64 = ref.gradinversion_torch(path, shared, y, cfg, start, dtype=torch.float64)
    assert rel(f32["x"], f64["x"]) <= GRAD_TOL
    assert max(rel_history(f32["history"], f64["history"]).values()) <= GRAD_TOL


# -- (d) DLG: soft labels ----------------------------------------------------------------------
@pytest.mark.parametrize("distance", ["l2", "cosine"])
def test_dlg_soft_label_gradients(distance):
    path = model_zoo.load("lenet_dlg")
    model = onnx_to_tf.load(path)
    x, y = model_zoo.data.cifar10("test", n=2, normalize=False)  # lenet_dlg: identity prep
    shared = client_gradient(model, x, y)
    dummy_x = seeded_noise(x.shape, 0)
    k = fc_layer(model).num_classes  # 100: DLG's LeNet has CIFAR-100's head
    dummy_y = seeded_noise((2, k), 1)  # logits of the soft labels, as dlg() draws them

    matcher = GradientMatcher(model, shared, distance)
    xv, yv = tf.Variable(dummy_x), tf.Variable(dummy_y)
    with tf.GradientTape() as tape:
        dist, _ = matcher(xv, yv)
    dx, dy = (g.numpy() for g in tape.gradient(dist, [xv, yv]))

    m = ref.GradientMatcherTorch(path, shared, distance)
    xt = torch.tensor(dummy_x, requires_grad=True)
    yt = torch.tensor(dummy_y, requires_grad=True)
    dist_t, _ = m(xt, yt)
    dxt, dyt = (g.numpy() for g in torch.autograd.grad(dist_t, [xt, yt]))

    assert abs(float(dist) - float(dist_t)) <= GRAD_TOL * abs(float(dist_t))
    assert np.abs(dyt).max() > 0  # the labels do move the weight gradient
    assert rel(dx, dxt) <= GRAD_TOL, rel(dx, dxt)
    assert rel(dy, dyt) <= GRAD_TOL, rel(dy, dyt)
    if distance == "l2":
        # the check has teeth: TF's fused op, which drops the second-order term with respect
        # to the labels, is far off (relative error 1.0 on the label gradient)
        with tf.GradientTape() as tape:
            with tf.GradientTape() as inner:
                loss = tf.reduce_mean(
                    tf.nn.softmax_cross_entropy_with_logits(tf.nn.softmax(yv), model(xv)))
            fused = matcher.distance_of(inner.gradient(loss, matcher.variables))
        fused_dy = tape.gradient(fused, yv)
        assert fused_dy is None or rel(fused_dy.numpy(), dyt) > 0.1
