"""Fast style transfer (tf_impl.visualization.fast_style): conditional instance norm, blending,
training, save/load, the shipped model, ONNX portability, the command line and bad input.

Tiny networks (channels 4-8, one residual block) at 32x32 and a few steps; the shipped model
is applied at 64x64. The ONNX check exports the shipped network with tf2onnx and compares
onnxruntime's forward with TensorFlow's.
"""

from __future__ import annotations

import argparse
import json
import shutil

import numpy as np
import pytest

import model_zoo
from converters import onnx_to_tf
from tf_impl.cli import fast_style as cli_fast_style
from tf_impl.cli import main as cli_main
from tf_impl.visualization import fast_style as fs

TINY = dict(channels=(4, 8, 8), residual_blocks=1, outer_kernel=5, image_size=32,
            style_size=32, batch_size=2, log_every=0)


@pytest.fixture(scope="module")
def vgg():
    return onnx_to_tf.load(model_zoo.load("vgg16_features"))


@pytest.fixture(scope="module")
def shipped():
    return fs.load()


@pytest.fixture(scope="module")
def photo():
    return model_zoo.data.image("tubingen", size=64, normalize=False)


def _randomised(net: fs.FastStyleNet, seed: int = 0) -> fs.FastStyleNet:
    """Give every style its own random (gamma, beta), so that styles differ."""
    rng = np.random.default_rng(seed)
    w = net.weights()
    for k in w:
        if k.endswith("/gamma"):
            w[k] = (1 + 0.5 * rng.standard_normal(w[k].shape)).astype(np.float32)
        elif k.endswith("/beta"):
            w[k] = (0.5 * rng.standard_normal(w[k].shape)).astype(np.float32)
    net.set_weights(w)
    return net


def _numpy_instance_norm(x, gamma, beta, eps=1e-5):
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


# -- conditional instance norm and blending ----------------------------------------------------
def test_cin_with_one_hot_weights_is_instance_norm_with_that_styles_scale_and_shift():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 3.0, (2, 7, 5, 6)).astype(np.float32)
    gammas = rng.normal(1.0, 0.5, (3, 6)).astype(np.float32)
    betas = rng.normal(0.0, 1.0, (3, 6)).astype(np.float32)
    for k in range(3):
        got = fs.conditional_instance_norm(x, gammas, betas, np.eye(3, dtype=np.float32)[k])
        want = _numpy_instance_norm(x.astype(np.float64), gammas[k], betas[k])
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4)
        plain = fs.instance_norm(x, gammas[k], betas[k])
        np.testing.assert_allclose(got.numpy(), plain.numpy(), rtol=0, atol=1e-6)
    # per-sample weights: each sample gets its own style
    w = np.eye(3, dtype=np.float32)[[2, 0]]
    got = fs.conditional_instance_norm(x, gammas, betas, w).numpy()
    for i, k in enumerate([2, 0]):
        np.testing.assert_allclose(got[i:i + 1], _numpy_instance_norm(
            x[i:i + 1].astype(np.float64), gammas[k], betas[k]), rtol=1e-4, atol=1e-4)


def test_blending_uses_the_convex_combination_of_the_styles_gamma_and_beta():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 6, 6, 4)).astype(np.float32)
    gammas, betas = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    w = np.array([0.2, 0.5, 0.3], np.float32)
    got = fs.conditional_instance_norm(x, gammas.astype(np.float32),
                                       betas.astype(np.float32), w).numpy()
    want = _numpy_instance_norm(x.astype(np.float64), w @ gammas, w @ betas)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)

    # the whole network: a blend equals a one-style network holding the blended (gamma, beta)
    cfg = fs.FastStyleConfig(styles=("starry_night", "udnie", "the_scream"), **TINY)
    net = _randomised(fs.FastStyleNet(cfg))
    single = fs.FastStyleNet(cfg.with_(styles=("blend",)))
    weights = net.weights()
    mixed = {k: (w @ v)[None] if k.endswith(("/gamma", "/beta")) else v
             for k, v in weights.items()}
    single.set_weights(mixed)
    px = model_zoo.data.image("astronaut", size=32, normalize=False)
    np.testing.assert_allclose(fs.apply(net, px, w), fs.apply(single, px, 0), atol=1e-5)
    # one-hot weights, the index and the name give the same picture; styles differ
    a, b = fs.apply(net, px, 1), fs.apply(net, px, "udnie")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, fs.apply(net, px, [0.0, 1.0, 0.0]))
    assert np.abs(a - fs.apply(net, px, 0)).max() > 0.05


def test_apply_keeps_any_size_and_stays_in_the_pixel_range(shipped):
    px = np.random.default_rng(3).random((2, 3, 50, 37)).astype(np.float32)
    out = fs.apply(shipped, px, 0)
    assert out.shape == px.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    hwc = (px[0].transpose(1, 2, 0) * 255).astype(np.uint8)  # uint8 HWC is accepted too
    assert fs.apply(shipped, hwc, 0).shape == (1, 3, 50, 37)


# -- training ---------------------------------------------------------------------------------
def _tiny_training(vgg, steps, **changes):
    cfg = fs.FastStyleConfig(styles=("starry_night",), steps=steps, learning_rate=1e-2,
                             cifar_fraction=0.0, **TINY).with_(**changes)
    batch = np.concatenate([model_zoo.data.image(n, size=32, normalize=False)
                            for n in ("amber", "golden_gate")])
    sampler = fs.ContentSampler(cfg, photos=batch, cifar=None)
    style = [model_zoo.data.image("starry_night", size=32, normalize=False)]
    return cfg, batch, sampler, style


def test_a_few_training_steps_lower_the_loss_on_a_fixed_batch(vgg):
    cfg, batch, sampler, style = _tiny_training(vgg, steps=12)
    result = fs.train(cfg, vgg=vgg, sampler=sampler, style_pixels=style, eval_content=batch,
                      progress=False)
    assert result.steps == 12 and result.stopped is None
    assert all(len(v) == 12 for v in result.history.values())
    before, after = result.before["starry_night"], result.after["starry_night"]
    assert after["loss"] < 0.7 * before["loss"], (before, after)
    assert np.isclose(before["loss"], before["content"] + 1e5 * before["style"]
                      + before["tv"], rtol=1e-4)
    # the same losses, recomputed independently of the training loop
    loss = fs.PerceptualLoss(cfg, vgg, style)
    again = fs.losses_on(result.model, loss, batch)["starry_night"]
    assert np.isclose(again["loss"], after["loss"], rtol=1e-4)


def test_interrupt_keeps_the_steps_done(vgg):
    cfg, batch, sampler, style = _tiny_training(vgg, steps=50)

    def stop_at_3(step, terms, net):
        if step == 3:
            raise KeyboardInterrupt

    r = fs.train(cfg, vgg=vgg, sampler=sampler, style_pixels=style, eval_content=batch[:0],
                 progress=False, callback=stop_at_3)
    assert r.interrupted and r.steps == 3 and len(r.history["loss"]) == 3
    assert "interrupted" in r.message


def test_a_non_finite_loss_stops_without_applying_the_update(vgg):
    cfg, batch, sampler, style = _tiny_training(vgg, steps=20, learning_rate=1e30)
    r = fs.train(cfg, vgg=vgg, sampler=sampler, style_pixels=style, eval_content=batch[:0],
                 progress=False)
    assert r.stopped == "non-finite" and "NaN" in r.message and r.steps < 20
    assert all(np.all(np.isfinite(v)) for v in r.model.weights().values())


# -- save / load ------------------------------------------------------------------------------
def test_save_load_round_trip_gives_identical_outputs(tmp_path):
    cfg = fs.FastStyleConfig(styles=("udnie", "mosaic"), **TINY)
    net = _randomised(fs.FastStyleNet(cfg, seed=5))
    path = fs.save(net, tmp_path / "m", training={"steps": 0})
    back = fs.load(tmp_path / "m")
    assert back.styles == ("udnie", "mosaic") and back.config == cfg
    for k, v in net.weights().items():
        np.testing.assert_array_equal(back.weights()[k], v)
    px = model_zoo.data.image("astronaut", size=32, normalize=False)
    for style in (0, 1, [0.25, 0.75]):
        np.testing.assert_array_equal(fs.apply(back, px, style), fs.apply(net, px, style))
    meta = json.loads(path.read_text())
    assert meta["styles"][0]["name"] == "udnie" and len(meta["styles"][0]["sha256"]) == 64
    assert fs.load(path).styles == back.styles  # the JSON path works too


def test_shipped_model_is_small_documented_and_stylises(shipped, photo):
    folder = fs.shipped_path()
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size < 5 * 2**20
    sources = (folder / "SOURCES.txt").read_text()
    meta = json.loads((folder / fs.CONFIG_FILE).read_text())
    assert len(shipped.styles) >= 2
    for style in shipped.styles:
        assert style in sources
    before, after = meta["training"]["before"], meta["training"]["after"]
    for style in shipped.styles:  # it was trained: held-out loss went down for every style
        assert after[style]["loss"] < 0.5 * before[style]["loss"]
    outs = [fs.apply(shipped, photo, i) for i in range(len(shipped.styles))]
    for out in outs:
        assert out.shape == photo.shape and 0.0 <= out.min() and out.max() <= 1.0
        assert out.std() > 0.05  # a picture, not a flat colour
        assert np.abs(out - photo).mean() > 0.03  # and not the content returned unchanged
    assert np.abs(outs[0] - outs[1]).mean() > 0.02  # styles differ


def test_draw_styles_writes_a_picture(shipped, tmp_path):
    path = tmp_path / "styles.png"
    fs.draw_styles(path, shipped, "tubingen", size=64)
    assert path.stat().st_size > 1000


# -- ONNX portability -------------------------------------------------------------------------
def test_exported_onnx_forward_matches_tensorflow(shipped, photo, tmp_path):
    """onnxruntime on the tf2onnx export vs TF: max |difference| <= 1e-4 on pixels in [0, 1]
    (float32, through every conv and instance-norm layer)."""
    import onnxruntime as ort

    fs.export_onnx(shipped, tmp_path / "fast_style.onnx")
    sess = ort.InferenceSession(str(tmp_path / "fast_style.onnx"),
                                providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["pixels", "style_weights"]
    px = np.concatenate([photo, photo[:, :, :, ::-1]])[:, :, :, :60]  # batch 2, 64x60
    n = len(shipped.styles)
    for w in (np.eye(n, dtype=np.float32)[n - 1], np.full(n, 1.0 / n, np.float32)):
        want = shipped(px, w).numpy()
        got = sess.run(None, {"pixels": px, "style_weights": w})[0]
        assert got.shape == want.shape == px.shape
        assert np.abs(got - want).max() <= 1e-4


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("style, match", [
    (3, r"style index 3 is out of range: this model holds 3 styles .* use 0 to 2"),
    (-1, r"out of range: this model holds 3 styles"),
    ("picasso", r"unknown style 'picasso': this model holds 3 styles"),
    (True, "an index, a name or blend weights"),
    ([0.5, 0.5], r"blend weights must be 3 numbers"),
    ([[1.0, 0, 0]], r"blend weights must be 3 numbers"),
    ([1.2, -0.2, 0.0], r"must be >= 0"),
    ([0.5, 0.2, 0.2], r"must sum to 1 .* sum to 0.9"),
    ([np.nan, 0.5, 0.5], r"finite"),
    ("abc,1", r"unknown style"),
])
def test_bad_style_choices_are_refused_with_the_valid_range(shipped, style, match):
    assert shipped.num_styles == 3
    with pytest.raises(fs.FastStyleError, match=match):
        fs.apply(shipped, np.zeros((1, 3, 32, 32), np.float32), style)


def test_too_small_or_invalid_content_is_refused(shipped):
    with pytest.raises(fs.FastStyleError, match="at least 16x16"):
        fs.apply(shipped, np.zeros((1, 3, 8, 32), np.float32), 0)
    with pytest.raises(ValueError, match="normalised"):
        fs.apply(shipped, np.full((1, 3, 32, 32), -2.0, np.float32), 0)


def test_missing_or_corrupt_saved_models_are_refused_clearly(tmp_path):
    with pytest.raises(fs.FastStyleError, match=r"no saved fast-style model .* is missing"):
        fs.load(tmp_path / "nothing_here")
    good = tmp_path / "good"
    shutil.copytree(fs.shipped_path(), good)

    bad_json = tmp_path / "bad_json"
    shutil.copytree(good, bad_json)
    (bad_json / fs.CONFIG_FILE).write_text("{not json")
    with pytest.raises(fs.FastStyleError, match="corrupt .*not valid JSON"):
        fs.load(bad_json)

    bad_npz = tmp_path / "bad_npz"
    shutil.copytree(good, bad_npz)
    data = bytearray((bad_npz / fs.WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bad_npz / fs.WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(fs.FastStyleError, match="corrupt: its checksum does not match"):
        fs.load(bad_npz)
    meta = json.loads((bad_npz / fs.CONFIG_FILE).read_text())
    meta.pop("weights_sha256")  # no checksum to catch it: the reader must
    (bad_npz / fs.CONFIG_FILE).write_text(json.dumps(meta))
    (bad_npz / fs.WEIGHTS_FILE).write_bytes(b"garbage, not a zip file")
    with pytest.raises(fs.FastStyleError, match=r"corrupt \(cannot read it as .npz"):
        fs.load(bad_npz)

    wrong = tmp_path / "wrong_shape"
    shutil.copytree(good, wrong)
    meta = json.loads((wrong / fs.CONFIG_FILE).read_text())
    meta.pop("weights_sha256")
    meta["config"]["channels"] = [8, 8, 8]
    (wrong / fs.CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(fs.FastStyleError, match=r"conv1/kernel has shape .* needs"):
        fs.load(wrong)


@pytest.mark.parametrize("changes, match", [
    (dict(styles=()), "non-empty"),
    (dict(styles=("udnie", "udnie")), "distinct"),
    (dict(image_size=30), "multiple of 4"),
    (dict(channels=(8, 8)), "three positive"),
    (dict(learning_rate=0.0), "positive"),
    (dict(style_weight=-1.0), "style_weight must be >= 0"),
])
def test_bad_configs_are_refused(changes, match):
    with pytest.raises(fs.FastStyleError, match=match):
        fs.FastStyleConfig(**changes)


def test_unknown_style_image_and_layer_are_refused(vgg):
    cfg = fs.FastStyleConfig(styles=("no_such_painting",), **TINY)
    with pytest.raises(fs.FastStyleError, match="no_such_painting"):
        fs.PerceptualLoss(cfg, vgg)
    cfg = fs.FastStyleConfig(styles=("udnie",), content_layer="relu9_9", **TINY)
    with pytest.raises(fs.FastStyleError, match="relu9_9"):
        fs.PerceptualLoss(cfg, vgg)


# -- command line -----------------------------------------------------------------------------
def _parse(argv):
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="technique", required=True)
    cli_fast_style.add_parsers(sub)
    return p.parse_args(argv)


def test_cli_apply_writes_the_picture_and_result_json(tmp_path):
    out = tmp_path / "fs"
    args = _parse(["fast-style", "--image", "tubingen", "--size", "64", "--blend",
                   "0.5,0.5,0", "--quiet", "--out", str(out)])
    assert args.run(args) == 0
    for name in ("stylized.png", "content.png", "styles.png", "result.json"):
        assert (out / name).is_file(), name
    res = json.loads((out / "result.json").read_text())
    assert res["style_weights"] == [0.5, 0.5, 0.0] and res["size"] == [1, 3, 64, 64]


def test_cli_train_saves_a_model_that_apply_loads_and_ctrl_c_saves_too(tmp_path, monkeypatch):
    out = tmp_path / "model"
    common = ["--styles", "udnie,mosaic", "--size", "32", "--style-size", "32", "--batch",
              "1", "--channels", "4,8,8", "--blocks", "1", "--cifar-fraction", "1", "--quiet"]
    args = _parse(["fast-style-train", "--steps", "2", *common, "--out", str(out)])
    assert args.run(args) == 0
    for name in (fs.CONFIG_FILE, fs.WEIGHTS_FILE, "history.csv", "history.png", "styles.png",
                 "result.json"):
        assert (out / name).is_file(), name
    res = json.loads((out / "result.json").read_text())
    assert res["steps"] == 2 and set(res["after"]) == {"udnie", "mosaic"}
    args = _parse(["fast-style", "--model", str(out), "--style", "mosaic", "--size", "32",
                   "--quiet", "--out", str(tmp_path / "applied")])
    assert args.run(args) == 0

    calls = []
    real_batch = fs.ContentSampler.batch

    def interrupt_at_3(self, n):  # Ctrl-C arrives while the third batch is drawn
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_batch(self, n)

    monkeypatch.setattr(fs.ContentSampler, "batch", interrupt_at_3)
    out2 = tmp_path / "interrupted"
    args = _parse(["fast-style-train", "--steps", "100", *common, "--out", str(out2)])
    assert args.run(args) == 130
    res = json.loads((out2 / "result.json").read_text())
    assert res["stopped"] == "interrupted" and res["steps"] == 2
    assert fs.load(out2).styles == ("udnie", "mosaic")


@pytest.mark.parametrize("argv, match", [
    (["fast-style", "--style", "7", "--size", "32"], "holds 3 styles"),
    (["fast-style", "--blend", "0.5,0.6,0", "--size", "32"], "sum to 1"),
    (["fast-style", "--blend", "a,b", "--size", "32"], "comma-separated numbers"),
    (["fast-style", "--model", "/no/such/model"], "no saved fast-style model"),
    (["fast-style", "--image", "no_such_picture"], "no_such_picture"),
    (["fast-style-train", "--styles", "no_such_painting", "--steps", "1"], "no_such_painting"),
    (["fast-style-train", "--channels", "4,x,8", "--steps", "1"], "three integers"),
])
def test_cli_bad_input_exits_2_with_a_message(argv, match, tmp_path, capsys):
    code = cli_main([*argv, "--quiet", "--out", str(tmp_path / "o")])
    assert code == 2
    assert match in capsys.readouterr().err
