"""Feature inversion in TF (tf_impl.feature_inversion) against the PyTorch reference
(converters.torch_reference.feature_inversion) on the same ONNX model, step for step.

vgg16_features (ImageNet weights) at 64x64 on the astronaut photo; both sides start from the
same seeded pixels and run the same optimizer. Agreement is max |TF - PyTorch| / max |PyTorch|
on the final image (pixel space) and, per step, |TF - PyTorch| / |PyTorch| on every history
entry; both must be below 1e-3.

Why the cases are what they are (measured on 2 CPU cores, float32):

- Adam divides each gradient entry by its running RMS, so a pixel whose gradient is below
  Adam's epsilon (1e-8) moves in proportion to the gradient's float32 rounding error. With seed
  0 the two-layer case has such a pixel at the start (|dL/dx| = 7.7e-10 against a maximum of
  5.4e-3): PyTorch float32 against PyTorch float64 alone then differs by 2.3e-2 on the image
  after 20 steps, so no float32 implementation can meet 1e-3 there. Seed 1 has no such pixel:
  test_two_layer_case_is_well_conditioned checks that (PyTorch float32 vs float64 <= 1e-4).
- SGD on the two-layer case crosses a ReLU kink at step 8: a conv2_2 pre-activation of 1.8e-6
  (5e-8 of the layer's maximum) has opposite signs in TF and PyTorch float32 (TF's convolution
  rounding is ~7e-7 of the maximum, PyTorch's ~3e-7), which changes the gradient by 2% at one
  pixel and the image by 1.6e-3 after 20 steps (3.1e-3 with seed 1); only the single-layer
  SGD case is tested.
"""

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import numpy as np
import pytest
import tensorflow as tf
import torch

import model_zoo
from converters import onnx_to_tf
from converters.torch_reference import feature_inversion as ref
from model_zoo.data import image
from tf_impl import optimize as tf_optimize
from tf_impl.feature_inversion import FeatureInversionConfig, initial_pixels, invert_features
from tf_impl.priors import AlphaNorm, TotalVariation

TOL = 1e-3

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vgg():
    path = model_zoo.load("vgg16_features")
    return path, onnx_to_tf.load(path)


@pytest.fixture(scope="module")
def photo():
    return image("astronaut", size=64, normalize=False)


def rel_image(got, want) -> float:
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def run_both(vgg, photo, layers, config, weights=None, dtype=torch.float32):
    path, model = vgg
    start = initial_pixels(config, photo)
    tf_res = invert_features(
        model, photo, layers, config, weights=weights, init=start, metrics=False
    )
    torch_res = ref.invert_features_torch(
        path, photo, layers, config, weights=weights, start_pixels=start, dtype=dtype
    )
    return tf_res, torch_res


def check_parity(tf_res, torch_res, steps):
    assert tf_res.steps == torch_res["steps"] == steps
    assert set(tf_res.history) == set(torch_res["history"])
    errors = {"image": rel_image(tf_res.image, torch_res["image"])}
    for key, want in torch_res["history"].items():
        got, want = np.asarray(tf_res.history[key]), np.asarray(want)
        assert got.shape == want.shape == (steps,), key
        errors[key] = float(np.max(np.abs(got - want) / np.abs(want)))
    bad = {k: v for k, v in errors.items() if not v <= TOL}
    assert not bad, f"relative differences above {TOL}: {bad} (all: {errors})"
    return errors


def cfg(**kw) -> FeatureInversionConfig:
    return FeatureInversionConfig().with_(progress=False, **kw)


# -- the pieces of the reference against tf_impl ----------------------------------------------
@pytest.mark.parametrize("beta", [None, 2.0, 1.5])
@pytest.mark.parametrize("normalize", [True, False])
def test_total_variation_matches_tf(beta, normalize):
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 7))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        v_tf = TotalVariation(beta, normalize=normalize).value(xt)
    g_tf = tape.gradient(v_tf, xt).numpy()
    xp = torch.tensor(x, requires_grad=True)
    v_pt = ref.total_variation(xp, beta, normalize)
    v_pt.backward()
    assert float(v_tf) == pytest.approx(v_pt.item(), rel=1e-12)
    np.testing.assert_allclose(g_tf, xp.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("alpha", [6.0, 2.0, 1.5])
def test_alpha_norm_matches_tf(alpha):
    x = np.random.default_rng(1).standard_normal((1, 3, 8, 8))
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        v_tf = AlphaNorm(alpha, normalize=True).value(xt)
    g_tf = tape.gradient(v_tf, xt).numpy()
    xp = torch.tensor(x, requires_grad=True)
    v_pt = ref.alpha_norm(xp, alpha, True)
    v_pt.backward()
    assert float(v_tf) == pytest.approx(v_pt.item(), rel=1e-12)
    np.testing.assert_allclose(g_tf, xp.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_schedule_matches_tf():
    for kw in (
        {},
        {"schedule": "step", "milestones": (0.3, 0.6), "gamma": 0.5},
        {"schedule": "cosine", "warmup": 5},
        {"schedule": "step", "warmup": 3},
    ):
        c = tf_optimize.OptimizeConfig(steps=30, learning_rate=0.1, **kw)
        assert [ref.learning_rate_at(c, s) for s in range(30)] == [
            tf_optimize.learning_rate_at(c, s) for s in range(30)
        ]


def test_taps_match_tf_model(vgg, photo):
    path, model = vgg
    raw = "/features/features.2/Conv_output_0"
    names = ["conv2_1", "conv3_1", raw, "input"]
    taps = ref.TorchTaps(path, names)
    assert taps.tensor_of[raw] == raw and taps.tensor_of["conv3_1"] == model.resolve("conv3_1")
    x = (photo - 0.45) / 0.225
    got = taps(torch.from_numpy(x))
    want = model(x, taps=names)
    for name in names:
        g, w = got[name].detach().numpy(), np.asarray(want[name])
        assert g.shape == w.shape, name
        assert rel_image(g, w) < 1e-5, name
    assert model.resolve("conv1_2") == raw
    with pytest.raises(KeyError, match="conv3_1"):
        ref.TorchTaps(path, ["conv9_9"])


@pytest.mark.parametrize("init", ["noise", "blur", "gray"])
def test_start_matches_tf(vgg, photo, init):
    """With steps=0 the reference returns its start: the same pixels tf_impl draws."""
    path, _ = vgg
    c = cfg(init=init, steps=0, seed=3)
    out = ref.invert_features_torch(path, photo, ["conv1_1"], c)
    np.testing.assert_allclose(out["image"], initial_pixels(c, photo), atol=2e-6)
    assert out["history"] == {} and out["steps"] == 0


# -- whole runs: 20 Adam steps ------------------------------------------------------------------
def test_adam_single_layer(vgg, photo):
    c = cfg(steps=20)
    check_parity(*run_both(vgg, photo, ["conv2_1"], c), 20)


TWO = ["conv1_2", "conv3_1"]
WEIGHTS = {"conv1_2": 0.5, "conv3_1": 2.0}


def test_adam_two_layers_with_weights(vgg, photo):
    c = cfg(steps=20, seed=1)
    tf_res, torch_res = run_both(vgg, photo, TWO, c, WEIGHTS)
    assert {"feature:conv1_2", "feature:conv3_1", "tv"} <= set(torch_res["history"])
    check_parity(tf_res, torch_res, 20)


def test_two_layer_case_is_well_conditioned(vgg, photo):
    """PyTorch float32 against PyTorch float64 on the two-layer case: the parity test above
    measures implementation differences, not float32 amplification (see the module doc)."""
    path, _ = vgg
    c = cfg(steps=20, seed=1)
    start = initial_pixels(c, photo)
    out = {
        dt: ref.invert_features_torch(
            path, photo, TWO, c, weights=WEIGHTS, start_pixels=start, dtype=dt
        )
        for dt in (torch.float32, torch.float64)
    }
    assert rel_image(out[torch.float32]["image"], out[torch.float64]["image"]) < 1e-4
    for key, want in out[torch.float64]["history"].items():
        got = np.asarray(out[torch.float32]["history"][key])
        assert np.max(np.abs(got - want) / np.abs(want)) < 1e-5, key


def test_sgd_single_layer(vgg, photo):
    """SGD with momentum has no Adam-specific arithmetic: 20 steps agree to float32 rounding
    (measured 1.2e-7 on the image, 2.5e-7 on the history)."""
    c = cfg(steps=20, optimizer="sgd", learning_rate=10.0, momentum=0.9)
    errors = check_parity(*run_both(vgg, photo, ["conv2_1"], c), 20)
    assert errors["image"] < 1e-5


def test_lbfgs_two_steps(vgg, photo):
    """L-BFGS through Optimization.step and torch.optim.LBFGS.step, projected after each step.
    Short: quasi-Newton steps amplify float32 rounding fast on VGG (PyTorch float32 against
    float64 alone differs by 1e-2 after three steps of five iterations)."""
    c = cfg(steps=2, optimizer="lbfgs", learning_rate=0.5, lbfgs_max_iter=2)
    check_parity(*run_both(vgg, photo, ["conv2_1"], c), 2)


def test_adam_anisotropic_tv(vgg, photo):
    """tv_beta=None: tf.image.total_variation (L1) against its PyTorch transcription."""
    c = cfg(steps=3, tv_beta=None)
    tf_res, torch_res = run_both(vgg, photo, ["conv2_1"], c)
    check_parity(tf_res, torch_res, 3)


def test_adam_alpha_norm_and_tv_beta(vgg, photo):
    """The alpha-norm prior (alpha 6) with TV^beta, beta 1.5 (the +1e-12 floor path)."""
    c = cfg(steps=3, alpha_weight=0.1, alpha=6.0, tv_beta=1.5)
    tf_res, torch_res = run_both(vgg, photo, ["conv2_1"], c)
    assert torch_res["history"]["alpha6"][0] > 1e-2  # the prior is not negligible
    check_parity(tf_res, torch_res, 3)


def test_reference_accepts_dict_config(vgg, photo):
    path, _ = vgg
    c = cfg(steps=2)
    start = initial_pixels(c, photo)
    a = ref.invert_features_torch(path, photo, "conv1_1", c, start_pixels=start)
    b = ref.invert_features_torch(path, photo, "conv1_1", c.to_dict(), start_pixels=start)
    np.testing.assert_array_equal(a["x"], b["x"])
    assert a["history"] == b["history"]
