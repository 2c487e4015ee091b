"""Gradient inversion in TF (tf_impl.gradient_inversion) against the PyTorch reference
(converters.torch_reference.gradient_inversion) on the same ONNX files.

Agreement is max |TF - PyTorch| / max |PyTorch| per array, and |TF - PyTorch| / |PyTorch| per
history entry.

- (a) the client's shared gradient, every weight of resnet20_cifar, mean and sum reductions,
  on real CIFAR-10 test images: <= 1e-4.
- (b) the labels restored from either gradient by the same numpy rules: identical.
- (c) GradInversion (all terms: gradient distance, TV, L2, BN prior, group term, Langevin
  noise; 2 seeds), the first 3 steps of a 10-step run with 3 warm-up steps: TF runs
  ``grad_inversion`` itself, with the consensus refreshed after steps 1, 4, 7 and 10
  (``group_start=1, group_every=3``, plain mean of the seeds: ``registration="none"``), so
  the group term is on with the step-1 consensus held constant through steps 2 and 3;
  PyTorch runs ``gradinversion_torch`` with the same refresh. <= 1e-3 on the seeds' images and
  on every history entry (measured here: 3.2e-6 on the images, 5.2e-7 on the history).
- (d) DLG's soft-label objective on lenet_dlg: the gradient of the gradient distance with
  respect to the dummy images *and* the dummy soft labels: <= 1e-4. TF's fused
  softmax-cross-entropy op dropped the second-order term with respect to the labels; this
  guards the fix (``victim.cross_entropy`` with ``log_softmax``).

Why (c) compares the first 3 of 10 steps with seed 8 and a batch of 2. The gradient distance
is a double backward through ReLUs: when a pre-activation lies within float32 rounding of
zero, two float32 runs (TF and PyTorch, or PyTorch float32 and float64) take different sides
of the kink, and the weight gradient, hence the image gradient, jumps (by ~1e-2 of its
maximum); Adam carries the jump on. Which runs meet such an event depends on the CPU and its
oneDNN code path. Measured on an AVX2 AMD EPYC (2 cores), float32 against float64 of the same
framework on the iterate, per step of the 10-step run (seed 8, 2 images):

    step             1     2     3     4     5     6     7     8     9     10
    PyTorch          7e-8  4e-6  4e-6  4e-6  5e-6  5e-6  5e-6  2e-4  2e-4  2e-4
    TF               7e-8  3e-6  4e-6  1e-4  2e-4  3e-4  3e-4  3e-4  3e-4  3e-4

(history: <= 2e-7 PyTorch and <= 6e-7 TF up to step 3; up to 4e-5 and 2e-5 later). Over 12
seeds, PyTorch float32 is within 1e-4 of float64 after 10 steps for 2 (seeds 1 and 10), and
some seeds meet an event at step 2 or 3 (seed 6: 1e-3 at step 2; seed 3: 5e-4 at step 3).
The 10-step seed-8 case was chosen on the machine where this test was written (PyTorch
float32 within 1e-4 of float64 there); here both sides meet an event in it (PyTorch at step 8,
TF at step 4), so float32 agreement after 10 steps would measure luck. Its first 3 steps
(the warm-up, with the consensus refreshed after step 1 and held through steps 2 and 3) are
within 1e-5 of float64 on both sides here, and are a prefix of the run that was well
conditioned there: ``test_gradinversion_case_is_well_conditioned`` checks PyTorch float32
against float64 on them (<= 1e-4). TF float32 runs the same 10-step configuration
(``grad_inversion`` stopped by its callback after step 3) and PyTorch ``steps=3``.

There, with the default start (seed 0, batch 4), an event came at the second step; after 10
steps PyTorch float32 against float64 alone differed by 8e-2 on the images, and TF against
PyTorch by 5e-2.

Float64 on both sides would check all 10 steps (and any seed): with a float64 model and a
float64 copy of the float32-pinned pieces of tf_impl.gradient_inversion (GradientMatcher's
targets, bn_prior's cast, the consensus and group_on variables, the start, the Langevin noise
and the box), TF and PyTorch agree to 3e-14 on the iterate and 2e-14 on the history after 10
steps (seeds 0, 1, 2, 8), but grad_inversion itself runs in float32 only.
"""

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import numpy as np
import pytest
import tensorflow as tf
import torch
from compare import rel_error as rel

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
GI_COMPARED = 3  # steps compared, of the GI_STEPS-step schedule (see the module doc)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def resnet(resnet20_path, resnet20):
    return resnet20_path, resnet20


@pytest.fixture(scope="module")
def batch():
    return model_zoo.data.cifar10("test", n=4)


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


# -- (c) GradInversion, the first 3 of 10 steps --------------------------------------------------
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
    torch_f32 = ref.gradinversion_torch(path, shared, y, cfg, start, steps=GI_COMPARED)
    return path, model, shared, y, cfg, start, torch_f32


def test_gradinversion_matches_torch(gi_case):
    path, model, shared, y, cfg, start, out = gi_case
    tf_res = grad_inversion(model, shared, cfg, labels=y,
                            callback=lambda step, *_: step >= GI_COMPARED)
    assert out["steps"] == tf_res.steps == GI_COMPARED and out["stopped"] is None
    assert tf_res.stopped == "callback"
    assert out["refreshed"] == [s for s, _ in tf_res.extra["registration_converged"]] == [1]
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
    float64 agree to 1e-4 over the compared steps (measured on an AVX2 EPYC: 4e-6 on the
    iterate, 2e-7 on the history; after all 10 steps 2.4e-4 there, see the module doc)."""
    path, _, shared, y, cfg, start, f32 = gi_case
    f64 = ref.gradinversion_torch(path, shared, y, cfg, start, steps=GI_COMPARED,
                                  dtype=torch.float64)
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


def test_the_reference_takes_the_registration_as_a_function(gi_case):
    # references sit upstream of tf_impl: a registering run is handed tf_impl's registration
    from tf_impl.gradient_inversion.registration import consensus

    path, model, shared, y, cfg, start, _ = gi_case
    ecc = cfg.with_(registration="ecc")
    with pytest.raises(ValueError, match="register=tf_impl.gradient_inversion.registration"):
        ref.gradinversion_torch(path, shared, y, ecc, start, steps=1)
    out = ref.gradinversion_torch(path, shared, y, ecc, start, steps=2, register=consensus)
    assert out["refreshed"] == [1] and np.isfinite(out["consensus"]).all()
