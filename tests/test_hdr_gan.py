"""HDR-GAN's objectives (tf_impl.hdr_gan): the mu-law tonemapper, the hypersphere loss, the
PatchGAN, a few training steps, clear errors; and parity with the plain-PyTorch transcription
(converters.torch_reference.hdr_gan).

Parity: TF runs in float32, the reference in float64 (its textbook formulas are exact there
for ||u|| up to ~1e150), on random inputs whose norms span 1e-6 to 1e20. Values on the sphere
and distances are bounded (|p_i| <= 1, d in [0, pi]) and their gradients too (|dd/du| <= 2),
so those are compared with an absolute tolerance of 1e-5; the tonemapper, the moment losses
and the PatchGAN with 1e-5 relative to the largest reference value. Training quality at a
few hundred steps is measured in benchmarks/hdr_gan.py.
"""

from __future__ import annotations

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import argparse
import json
import math

import numpy as np
import pytest
import tensorflow as tf
import torch
from compare import rel_error as rel

from converters.torch_reference import hdr_gan as ref
from tf_impl import hdr_gan as hg
from tf_impl.hdr_gan import (
    HDRGANConfig,
    HDRGANError,
    HDRGANSteps,
    PatchDiscriminator,
    TinyMergeNet,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ABS = 1e-5
EXTREMES = (1e-8, 1.0, 1e4, 1e20)


def vectors(n=64, dim=5, lo=-6.0, hi=20.0, seed=0) -> np.ndarray:
    """Random directions with norms log-uniform in [10^lo, 10^hi], plus the norm-1 case."""
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((n, dim))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    r = 10 ** rng.uniform(lo, hi, (n, 1))
    r[0] = 1.0
    return (d * r).astype(np.float32)


def tf_value_and_grad(fn, x, weights=None):
    """fn(x) and d sum(w * fn(x)) / dx, in TF (float32)."""
    v = tf.Variable(x)
    with tf.GradientTape() as tape:
        out = fn(v)
        s = tf.reduce_sum(out * (weights if weights is not None else 1.0))
    return out.numpy(), tape.gradient(s, v).numpy()


def torch_value_and_grad(fn, x, weights=None):
    """fn(x) and its gradient, in PyTorch float64."""
    t = torch.tensor(np.asarray(x, np.float64), requires_grad=True)
    out = fn(t)
    w = torch.tensor(np.asarray(weights, np.float64)) if weights is not None else 1.0
    (out * w).sum().backward()
    return out.detach().numpy(), t.grad.numpy()


# -- the tonemapper --------------------------------------------------------------------------
def test_mu_law_maps_0_and_1_onto_themselves_and_inverts():
    h = np.linspace(0, 1, 101, dtype=np.float32)
    t = hg.mu_law_tonemap(h).numpy()
    assert t[0] == 0 and abs(t[-1] - 1) < 1e-6 and np.all(np.diff(t) > 0)
    assert abs(t[50] - math.log(1 + 5000 * 0.5) / math.log(5001)) < 1e-6
    np.testing.assert_allclose(hg.inverse_mu_law(t).numpy(), h, atol=2e-6)
    assert abs(float(hg.mu_law_tonemap(np.float32(0.5), mu=10.0))
               - math.log(6) / math.log(11)) < 1e-6


def test_tonemapped_l1_and_psnr():
    rng = np.random.default_rng(1)
    gt = rng.uniform(0, 1, (2, 3, 8, 8)).astype(np.float32)
    pred = np.clip(gt * 1.1, 0, None).astype(np.float32)
    want = np.mean(np.abs(np.log1p(5000 * pred) - np.log1p(5000 * gt))) / np.log1p(5000)
    assert abs(float(hg.tonemapped_l1(pred, gt)) - want) < 1e-6
    assert float(hg.tonemapped_l1(gt, gt)) == 0
    psnr = hg.tonemapped_psnr(pred, gt)
    t = lambda h: np.log1p(5000 * h) / np.log1p(5000)  # noqa: E731
    mse = np.mean((t(pred) - t(gt)) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(psnr, 10 * np.log10(1 / mse), rtol=1e-4)


def test_tonemapper_parity_values_and_gradients():
    rng = np.random.default_rng(2)
    h = np.concatenate([rng.uniform(0, 1, 200), 10 ** rng.uniform(-6, 0, 56), [0.0]])
    h = h.astype(np.float32).reshape(1, 1, 1, -1)
    w = rng.standard_normal(h.shape).astype(np.float32)
    v_tf, g_tf = tf_value_and_grad(hg.mu_law_tonemap, h, w)
    v_pt, g_pt = torch_value_and_grad(ref.mu_law_tonemap, h, w)
    assert rel(v_tf, v_pt) < 1e-5 and rel(g_tf, g_pt) < 1e-5
    pred = rng.uniform(0, 1, (2, 3, 8, 8)).astype(np.float32)
    gt = rng.uniform(0, 1, (2, 3, 8, 8)).astype(np.float32)
    v_tf, g_tf = tf_value_and_grad(lambda p: hg.tonemapped_l1(p, gt), pred)
    v_pt, g_pt = torch_value_and_grad(lambda p: ref.tonemapped_l1(p, torch.tensor(
        gt.astype(np.float64))), pred)
    assert rel(v_tf, v_pt) < 1e-5 and rel(g_tf, g_pt) < 1e-5


# -- the hypersphere -------------------------------------------------------------------------
def test_projection_lands_on_the_unit_sphere():
    u = vectors(200, 7)
    p = hg.inverse_stereographic_projection(u).numpy()
    assert p.shape == (200, 8)
    np.testing.assert_allclose(np.linalg.norm(p.astype(np.float64), axis=1), 1.0, atol=1e-6)
    zero = hg.inverse_stereographic_projection(np.zeros((1, 3), np.float32)).numpy()
    np.testing.assert_array_equal(zero, [[0, 0, 0, -1]])  # the south pole
    big = hg.inverse_stereographic_projection(np.full((1, 3), 1e30, np.float32)).numpy()
    np.testing.assert_allclose(big, [[0, 0, 0, 1]], atol=1e-7)  # towards the north pole


def test_distance_in_0_pi_decreasing_and_equal_to_arccos_of_projection():
    r = np.logspace(-8, 30, 400)
    u = (r[:, None] * np.array([[0.6, 0.0, -0.8]])).astype(np.float32)
    d = hg.north_pole_distance(u).numpy()
    assert np.all(d >= 0) and np.all(d <= np.pi) and np.all(np.diff(d) <= 0)
    assert abs(d[0] - np.pi) < 1e-6 and d[-1] < 1e-20
    p_last = hg.inverse_stereographic_projection(u).numpy()[:, -1].astype(np.float64)
    ok = (r > 1e-2) & (r < 1e2)  # where arccos of a float32 coordinate is accurate
    np.testing.assert_allclose(d[ok], np.arccos(p_last[ok]), atol=2e-5)
    s = r ** 2  # the definition, in float64
    np.testing.assert_allclose(d[ok], np.arccos((s[ok] - 1) / (s[ok] + 1)), atol=1e-6)


@pytest.mark.parametrize("norm", EXTREMES)
def test_distance_and_projection_are_stable_at_extreme_norms(norm):
    direction = np.array([0.48, -0.6, 0.64], np.float32)
    u = (norm * direction)[None]
    d, g = tf_value_and_grad(hg.north_pole_distance, u)
    assert np.all(np.isfinite(d)) and np.all(np.isfinite(g))
    assert abs(d[0] - 2 * math.atan(1 / norm)) < 1e-6
    # d'(u) = -2 / (1 + ||u||^2) * u / ||u||
    np.testing.assert_allclose(g[0], -2 / (1 + norm ** 2) * direction, rtol=1e-5, atol=1e-12)
    w = np.array([[0.3, -0.2, 0.5, 0.7]], np.float32)
    p, gp = tf_value_and_grad(hg.inverse_stereographic_projection, u, w)
    assert np.all(np.isfinite(p)) and np.all(np.isfinite(gp))
    assert abs(np.linalg.norm(p) - 1) < 1e-6
    loss, gl = tf_value_and_grad(lambda v: hg.hypersphere_generator_loss(v, 3), u)
    assert np.isfinite(loss) and np.all(np.isfinite(gl))


def test_gradient_at_the_origin_is_finite():
    d, g = tf_value_and_grad(hg.north_pole_distance, np.zeros((2, 4), np.float32))
    assert np.allclose(d, np.pi) and np.all(g == 0)


def test_sphere_parity_values_and_gradients_over_wide_norms():
    u = vectors(128, 5)
    w_d = np.random.default_rng(3).standard_normal(128).astype(np.float32)
    d_tf, gd_tf = tf_value_and_grad(hg.north_pole_distance, u, w_d)
    d_pt, gd_pt = torch_value_and_grad(ref.north_pole_distance, u, w_d)
    assert np.max(np.abs(d_tf - d_pt)) < ABS and np.max(np.abs(gd_tf - gd_pt)) < ABS
    w_p = np.random.default_rng(4).standard_normal((128, 6)).astype(np.float32)
    p_tf, gp_tf = tf_value_and_grad(hg.inverse_stereographic_projection, u, w_p)
    p_pt, gp_pt = torch_value_and_grad(ref.inverse_stereographic_projection, u, w_p)
    assert np.max(np.abs(p_tf - p_pt)) < ABS and np.max(np.abs(gp_tf - gp_pt)) < ABS


def test_arccos_definition_parity_where_it_is_accurate():
    u = vectors(64, 4, lo=-2, hi=2, seed=5)
    d_tf, g_tf = tf_value_and_grad(hg.north_pole_distance, u)
    d_pt, g_pt = torch_value_and_grad(ref.north_pole_distance_arccos, u)
    assert np.max(np.abs(d_tf - d_pt)) < ABS and np.max(np.abs(g_tf - g_pt)) < ABS


@pytest.mark.parametrize("per_patch", [False, True])
def test_moment_losses_parity(per_patch):
    rng = np.random.default_rng(6)
    scale = 10 ** rng.uniform(-3, 3, (4, 1, 1, 1))
    real = (rng.standard_normal((4, 2, 5, 5)) * scale).astype(np.float32)
    fake = (rng.standard_normal((4, 2, 5, 5)) * scale[::-1]).astype(np.float32)
    m_tf = hg.sphere_moments(real, 3, per_patch).numpy()
    m_pt = ref.sphere_moments(torch.tensor(real, dtype=torch.float64), 3, per_patch).numpy()
    assert m_tf.shape == (3,) and rel(m_tf, m_pt) < 1e-5
    real_t = torch.tensor(real, dtype=torch.float64)
    v_tf, g_tf = tf_value_and_grad(
        lambda f: hg.hypersphere_discriminator_loss(real, f, 3, per_patch), fake)
    v_pt, g_pt = torch_value_and_grad(
        lambda f: ref.hypersphere_discriminator_loss(real_t, f, 3, per_patch), fake)
    assert abs(v_tf - v_pt) < 1e-5 * abs(v_pt) + 1e-6 and rel(g_tf, g_pt) < 1e-5
    v_tf, g_tf = tf_value_and_grad(lambda f: hg.hypersphere_generator_loss(f, 2, per_patch),
                                   fake)
    v_pt, g_pt = torch_value_and_grad(lambda f: ref.hypersphere_generator_loss(f, 2, per_patch),
                                      fake)
    assert abs(v_tf - v_pt) < 1e-5 * abs(v_pt) and rel(g_tf, g_pt) < 1e-5


def test_loss_signs_and_vector_layouts():
    near_south = np.full((3, 1, 2, 2), 1e-3, np.float32)  # d ~ pi
    near_north = np.full((3, 1, 2, 2), 1e3, np.float32)  # d ~ 0
    # the discriminator's loss is lowest with real samples south and fake samples north
    good = float(hg.hypersphere_discriminator_loss(near_south, near_north, 1))
    bad = float(hg.hypersphere_discriminator_loss(near_north, near_south, 1))
    assert good < -3.0 < 3.0 < bad
    assert float(hg.hypersphere_generator_loss(near_south, 2)) < float(
        hg.hypersphere_generator_loss(near_north, 2))
    x = np.zeros((3, 2, 4, 5), np.float32)
    assert hg.discriminator_vectors(x).shape == (3, 40)
    assert hg.discriminator_vectors(x, per_patch=True).shape == (60, 2)
    m1 = hg.sphere_moments(near_south, 3).numpy()
    d = 2 * math.atan(1 / 2e-3)  # one flattened vector of four 1e-3 entries: norm 2e-3
    np.testing.assert_allclose(m1, [d, d ** 2, d ** 3], rtol=1e-6)


# -- networks --------------------------------------------------------------------------------
def test_patchgan_output_shape_and_parity():
    disc = PatchDiscriminator(width=0.25, seed=3)
    assert disc.widths == (16, 32, 64, 128, 1)
    x = np.random.default_rng(7).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    out = disc(x).numpy()
    assert out.shape == (2, 1, 6, 6)
    assert PatchDiscriminator(width=1.0).widths == (64, 128, 256, 512, 1)
    want = ref.patch_discriminator(torch.from_numpy(x), disc.weights()).detach().numpy()
    assert rel(out, want) < 1e-5
    # the input gradient of the generator loss through the discriminator
    _, g_tf = tf_value_and_grad(lambda v: hg.hypersphere_generator_loss(disc(v), 3), x)
    xt = torch.tensor(x, requires_grad=True)
    ref.hypersphere_generator_loss(ref.patch_discriminator(xt, disc.weights()), 3).backward()
    assert rel(g_tf, xt.grad.numpy()) < 1e-4  # float32 on both sides through five convs


def test_generator_shapes():
    gen = TinyMergeNet(3, 8)
    ldr = hg.make_exposures(np.full((2, 3, 16, 16), 0.3, np.float32))
    assert ldr.shape == (2, 3, 3, 16, 16)
    x = hg.generator_inputs(ldr, (1.0, 4.0, 16.0))
    assert x.shape == (2, 18, 16, 16)
    t = gen(x).numpy()
    assert t.shape == (2, 3, 16, 16) and 0 < t.min() and t.max() < 1
    h = hg.predict_hdr(gen, ldr, (1.0, 4.0, 16.0))
    np.testing.assert_allclose(hg.mu_law_tonemap(h).numpy(), t, atol=1e-5)


def test_exposures_clip_and_gamma():
    hdr = np.array([0.0, 0.01, 0.1, 0.5, 1.0], np.float32).reshape(1, 1, 1, 5).repeat(3, 1)
    ldr = hg.make_exposures(hdr, (1.0, 4.0, 16.0), bits=0)
    np.testing.assert_allclose(ldr[0, 0, 0, 0], hdr[0, 0, 0] ** (1 / 2.2), rtol=1e-6)
    np.testing.assert_allclose(ldr[0, 2, 0, 0], np.minimum(16 * hdr[0, 0, 0], 1) ** (1 / 2.2),
                               rtol=1e-6)
    q = hg.make_exposures(hdr, bits=8)
    np.testing.assert_allclose(q * 255, np.round(q * 255), atol=1e-4)


def test_a_few_steps_lower_the_tonemapped_l1_on_a_fixed_batch():
    cfg = HDRGANConfig(lambda_adv=0.01, d_learning_rate=2e-4).with_(learning_rate=3e-3)
    gen = TinyMergeNet(3, 8, seed=1)
    disc = PatchDiscriminator(width=0.125, seed=2)
    photos = hg.load_photos(["astronaut", "coffee"], 32)
    hdr = hg.synthetic_hdr(photos)
    x = hg.generator_inputs(hg.make_exposures(hdr), cfg.exposures)
    steps = HDRGANSteps(cfg, gen, disc)
    before = float(hg.tonemapped_l1(hg.predict_hdr(gen, hg.make_exposures(hdr),
                                                   cfg.exposures), hdr))
    seen = []
    for _ in range(15):
        d = steps.discriminator_step(x, hdr)
        t = steps.generator_step(x, hdr)
        seen.append(t["l1"])
    assert set(d) == {"d_loss", "d_real", "d_fake"} and set(t) == {"l1", "g_adv", "loss"}
    assert all(math.isfinite(v) for v in (*d.values(), *t.values()))
    after = float(hg.tonemapped_l1(hg.predict_hdr(gen, hg.make_exposures(hdr), cfg.exposures),
                                   hdr))
    assert after < 0.7 * before and seen[-1] < seen[0]


def test_train_returns_a_result_and_ctrl_c_keeps_the_steps(tmp_path):
    cfg = HDRGANConfig(train_photos=("astronaut", "coffee"), held_out=("rocket",),
                       image_size=48, crop=32, eval_size=32, batch_size=2,
                       d_width=0.125, generator_width=8).with_(steps=12, progress=False,
                                                              learning_rate=3e-3)
    gen = TinyMergeNet(3, 8)
    r = hg.train_hdr_gan(cfg, generator=gen)
    assert r.steps == 12 and r.stopped is None
    assert {"l1", "g_adv", "loss", "d_loss", "d_real", "d_fake"} == set(r.history)
    assert all(len(v) == 12 for v in r.history.values())
    assert r.metrics["psnr_mu_after"] > r.metrics["psnr_mu_before"]
    assert r.image.shape == r.original.shape == (1, 3, 32, 32)
    assert r.extra["exposures"].shape == (1, 3, 3, 32, 32)
    json.loads(r.to_json())
    hg.draw_hdr_gan(tmp_path / "fig.png", {"L1 + adv": r})
    assert (tmp_path / "fig.png").stat().st_size > 1000

    def stop_at_3(step, terms, generator):
        if step == 3:
            raise KeyboardInterrupt

    r2 = hg.train_hdr_gan(cfg.with_(lambda_adv=0.0), callback=stop_at_3)
    assert r2.interrupted and r2.steps == 3 and "kept" in r2.message  # 3 were applied
    assert set(r2.history) == {"l1", "loss"} and len(r2.history["l1"]) == 3
    assert np.all(np.isfinite(r2.image))


# -- bad input -------------------------------------------------------------------------------
def test_negative_or_nan_hdr_is_refused():
    with pytest.raises(HDRGANError, match="negative values.*H >= 0"):
        hg.mu_law_tonemap(np.array([0.5, -0.1], np.float32))
    with pytest.raises(HDRGANError, match="NaN or Inf"):
        hg.mu_law_tonemap(np.array([np.nan], np.float32))
    with pytest.raises(HDRGANError, match="ground-truth HDR image has negative"):
        hg.tonemapped_l1(np.zeros((1, 3, 4, 4)), -np.ones((1, 3, 4, 4)))
    with pytest.raises(HDRGANError, match="negative"):
        hg.make_exposures(-np.ones((1, 3, 4, 4), np.float32))
    with pytest.raises(HDRGANError, match="mu must be a positive number"):
        hg.mu_law_tonemap(np.ones(2), mu=0)


def test_wrong_number_of_exposures_is_refused():
    ldr = hg.make_exposures(np.full((1, 3, 8, 8), 0.2, np.float32), (1.0, 4.0))
    with pytest.raises(HDRGANError, match="got 2 exposures but 3 exposure times"):
        hg.generator_inputs(ldr, (1.0, 4.0, 16.0))
    with pytest.raises(HDRGANError, match="merges 3 exposures; got 2"):
        hg.predict_hdr(TinyMergeNet(3, 4), ldr, (1.0, 4.0))
    with pytest.raises(HDRGANError, match="at least two exposure times"):
        HDRGANConfig(exposures=(1.0,))
    with pytest.raises(HDRGANError, match="the config has 2 exposure times"):
        hg.train_hdr_gan(HDRGANConfig(exposures=(1.0, 4.0)), generator=TinyMergeNet(3, 4))


def test_mismatched_shapes_and_bad_settings_are_refused():
    with pytest.raises(HDRGANError, match=r"shape \(1, 3, 4, 4\).*\(1, 3, 4, 5\).*must match"):
        hg.tonemapped_l1(np.zeros((1, 3, 4, 4)), np.zeros((1, 3, 4, 5)))
    with pytest.raises(HDRGANError, match="at least 32x32"):
        PatchDiscriminator(width=0.125)(np.zeros((1, 3, 16, 16), np.float32))
    with pytest.raises(HDRGANError, match=r"\(N, 3, H, W\)"):
        PatchDiscriminator(width=0.125)(np.zeros((1, 4, 64, 64), np.float32))
    with pytest.raises(HDRGANError, match="NCHW"):
        hg.sphere_moments(np.zeros((2, 3, 4)), 3)
    with pytest.raises(HDRGANError, match="moments must be an integer >= 1"):
        hg.sphere_moments(np.zeros((2, 3)), 0)
    with pytest.raises(HDRGANError, match="lambda_adv must be >= 0"):
        HDRGANConfig(lambda_adv=-1)
    with pytest.raises(HDRGANError, match="both trained on and held out"):
        HDRGANConfig(held_out=("astronaut",))
    with pytest.raises(HDRGANError, match="crop must be >= 32"):
        HDRGANConfig(crop=16)


def test_tf_impl_module_does_not_import_torch():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(hg))
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
             for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom)}
    assert "torch" not in names


def _cli_available():
    try:
        import tf_impl.cli.hdr_gan  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _cli_available(), reason="no tf_impl.cli.hdr_gan")
def test_cli_writes_the_figure_and_result(tmp_path):
    from tf_impl.cli.hdr_gan import add_parsers

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="technique", required=True)
    add_parsers(sub)
    args = p.parse_args(["hdr-gan", "--steps", "6", "--quick", "--quiet", "--out",
                         str(tmp_path / "run")])
    assert args.run(args) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["technique"] == "hdr_gan" and result["steps"] == 6
    assert {"psnr_mu_before", "psnr_mu_after"} <= set(result["metrics"])
    assert (tmp_path / "run" / "hdr_gan.png").exists()


@pytest.mark.skipif(not _cli_available(), reason="no tf_impl.cli.hdr_gan")
def test_cli_refuses_bad_settings_with_a_value_error(tmp_path):
    from tf_impl.cli.hdr_gan import add_parsers

    p = argparse.ArgumentParser()
    add_parsers(p.add_subparsers(dest="technique", required=True))
    args = p.parse_args(["hdr-gan", "--lambda-adv", "-1", "--quick", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="lambda_adv must be >= 0"):
        args.run(args)
