"""Composable loss terms: values against plain numpy formulas, composition, shared forward."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tf_impl.priors import L2, AlphaNorm, FeatureMatch, Objective, TotalVariation, feature_match


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(3).standard_normal((2, 3, 9, 11)).astype(np.float32)


def _np_tv_l1(x):  # anisotropic: sum |dx| + sum |dy| over the full grid
    return np.abs(np.diff(x, axis=3)).sum() + np.abs(np.diff(x, axis=2)).sum()


def _np_tv_beta(x, beta):
    dx = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
    dy = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
    return ((dx.astype(np.float64) ** 2 + dy**2) ** (beta / 2)).sum()


def test_total_variation_matches_numpy(batch):
    tv = TotalVariation().value(tf.constant(batch))
    np.testing.assert_allclose(float(tv), _np_tv_l1(batch), rtol=1e-5)
    for beta in (1.0, 2.0, 3.0):
        got = float(TotalVariation(beta).value(tf.constant(batch)))
        np.testing.assert_allclose(got, _np_tv_beta(batch, beta), rtol=1e-4)
    norm = float(TotalVariation(2.0, normalize=True).value(tf.constant(batch)))
    np.testing.assert_allclose(norm, _np_tv_beta(batch, 2.0) / (3 * 9 * 11), rtol=1e-5)


def test_tv_beta_below_two_has_a_finite_gradient_on_flat_images():
    x = tf.Variable(tf.zeros([1, 3, 8, 8]))
    with tf.GradientTape() as tape:
        v = TotalVariation(1.0).value(x)
    assert np.all(np.isfinite(tape.gradient(v, x).numpy()))


def test_alpha_norm_and_l2_match_numpy(batch):
    np.testing.assert_allclose(
        float(AlphaNorm(6).value(tf.constant(batch))), (np.abs(batch) ** 6).sum(), rtol=1e-5
    )
    np.testing.assert_allclose(float(L2().value(batch)), (batch**2).sum(), rtol=1e-5)
    assert L2().name == "l2" and AlphaNorm(6).name == "alpha6"


def test_terms_compose_with_plus_and_scalar_times(batch):
    obj = TotalVariation(2.0) + 0.5 * L2() + 2 * (0.1 * AlphaNorm(3))
    assert isinstance(obj, Objective)
    vals = {k: float(v) for k, v in obj(tf.constant(batch)).items()}
    assert list(vals) == ["tv", "l2", "alpha3"]
    np.testing.assert_allclose(vals["l2"], 0.5 * (batch**2).sum(), rtol=1e-5)
    np.testing.assert_allclose(vals["alpha3"], 0.2 * (np.abs(batch) ** 3).sum(), rtol=1e-5)
    twice = TotalVariation() + TotalVariation()
    assert list(twice(tf.constant(batch))) == ["tv", "tv#2"]
    assert list(sum([L2(), TotalVariation()])(tf.constant(batch))) == ["l2", "tv"]
    with pytest.raises(TypeError):
        TotalVariation() * "heavy"


class _CountingModel:
    """A stand-in model: taps are fixed linear maps of the input; counts calls."""

    def __init__(self):
        self.calls = []
        rng = np.random.default_rng(0)
        self.w = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal((3, 5))}

    def __call__(self, x, taps):
        self.calls.append(tuple(taps))
        return {t: tf.einsum("nchw,cd->ndhw", x, tf.constant(self.w[t], x.dtype)) for t in taps}


def test_feature_match_is_the_normalised_error_and_runs_the_model_once(batch):
    model = _CountingModel()
    x0 = tf.constant(batch)
    targets = model(x0, taps=["a", "b"])
    model.calls.clear()
    obj = feature_match(model, targets, {"b": 3.0}) + 1e-3 * TotalVariation()
    x = batch + 0.1
    vals = obj(tf.constant(x))
    assert model.calls == [("a", "b")]  # one forward for both layers
    for layer, w in (("a", 1.0), ("b", 3.0)):
        phi = np.einsum("nchw,cd->ndhw", x, model.w[layer])
        t = targets[layer].numpy()
        want = w * ((phi - t) ** 2).sum() / (t**2).sum()
        np.testing.assert_allclose(float(vals[f"feature:{layer}"]), want, rtol=1e-4)
    with pytest.raises(ValueError, match="all zero"):
        FeatureMatch(model, "a", np.zeros((1, 4, 2, 2)))
    with pytest.raises(ValueError, match="without a target"):
        feature_match(model, targets, {"c": 1.0})
