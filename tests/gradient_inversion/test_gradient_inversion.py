"""Gradient inversion: the victim's gradient, the attacks' behaviour, bad input, the CLI.

Small settings (few steps); parity with PyTorch is in test_gi_parity.py, label restoration in
test_gi_labels.py, quality figures in benchmarks/gradient_inversion.py.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

import model_zoo
from converters import onnx_to_tf
from tf_impl import images as imgs
from tf_impl import metrics
from tf_impl.cli import main as cli_main
from tf_impl.gradient_inversion import (
    GradientInversionError,
    SharedGradient,
    check_gradient,
    client_gradient,
    fc_layer,
    parameter_names,
)
from tf_impl.gradient_inversion.dlg import DLGConfig, dlg
from tf_impl.gradient_inversion.gradinversion import GradInversionConfig, grad_inversion
from tf_impl.gradient_inversion.inverting_gradients import (
    InvertingGradientsConfig,
    inverting_gradients,
)
from tf_impl.gradient_inversion.labels import restore_labels
from tf_impl.gradient_inversion.matching import GradientMatcher, bn_inputs
from tf_impl.gradient_inversion.registration import consensus, register_affine
from tf_impl.gradient_inversion.scoring import match, score
from tf_impl.gradient_inversion.victim import cross_entropy


@pytest.fixture(scope="module")
def cifar():
    pixels, y = model_zoo.data.cifar10("test", n=4, normalize=False)
    return pixels, y


def test_client_gradient_is_keyed_by_onnx_name_in_onnx_layout(resnet20):
    x, y = model_zoo.data.cifar10("test", n=2)
    shared = client_gradient(resnet20, x, y)
    names = parameter_names(resnet20)
    assert set(shared.grads) == set(names)
    assert not any("running" in k for k in names)
    assert shared.grads["conv1.weight"].shape == (16, 3, 3, 3)  # OIHW, as in the ONNX file
    assert shared.batch_size == 2 and shared.reduction == "mean" and shared.bn_mode == "eval"
    summed = client_gradient(resnet20, x, y, reduction="sum")
    np.testing.assert_allclose(summed.grads["linear.bias"], 2 * shared.grads["linear.bias"],
                               rtol=1e-5, atol=1e-8)
    assert client_gradient(resnet20, x, y, bn_mode="train").bn_mode == "train"


def test_fc_layer_reads_the_weight_orientation():
    torch_fc = fc_layer(onnx_to_tf.load(model_zoo.load("resnet20_cifar")))
    assert (torch_fc.weight, torch_fc.out_axis, torch_fc.num_classes) == ("linear.weight", 0, 10)
    keras_fc = fc_layer(onnx_to_tf.load(model_zoo.load("keras_cnn")))
    assert keras_fc.out_axis == 1 and keras_fc.num_classes == 10 and keras_fc.bias is not None


def test_the_model_finds_its_classifier_once(monkeypatch):
    from converters.onnx_to_tf import model as model_module

    calls = []
    real = model_module.find_classifier
    monkeypatch.setattr(model_module, "find_classifier", lambda g: calls.append(1) or real(g))
    m = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))
    first = fc_layer(m)
    assert fc_layer(m) is first and m.with_contract().classifier() is first
    assert len(calls) == 1


def test_the_imported_model_is_a_victim():
    from converters.onnx_to_tf import Victim, contract_model

    m = contract_model(onnx_to_tf.load(model_zoo.load("lenet_dlg10")))
    assert isinstance(m, Victim)
    assert not isinstance(object(), Victim)


def test_soft_label_cross_entropy_keeps_the_second_order_term(lenet):
    # the gradient of the weight gradient w.r.t. the soft labels must not vanish
    x = tf.Variable(tf.random.stateless_normal([1, 3, 32, 32], [0, 1]))
    y = tf.Variable(tf.random.stateless_normal([1, 100], [0, 2]))
    w = lenet.onnx_variables["fc.weight"]
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss = cross_entropy(lenet(x), y)
        gw = inner.gradient(loss, w)
        s = tf.reduce_sum(gw * gw)
    gy = outer.gradient(s, y)
    assert float(tf.reduce_max(tf.abs(gy))) > 0


DLG_SEEDS = range(10)  # restarts from fresh dummy data, as DLG is run in practice
DLG_MAX_STEPS = 80
DLG_PSNR = 15.0  # dB; 300 steps reach ~50 dB (benchmarks/gradient_inversion.py)


def test_dlg_recovers_a_cifar_image_and_its_label_on_lenet(lenet, cifar):
    """DLG (L-BFGS lr 1, no line search, soft labels) from its default start is chaotic: a
    change of the shared gradient at the level of float32 rounding (1e-7 relative) decides
    whether a run converges. Measured on an AVX2 AMD EPYC, seed 0: 13 of 20 such perturbed
    runs reach 15 dB (after 40 to 79 steps), 7 stall near the start (5-6 dB); unperturbed,
    TF float32 reaches 15 dB at step 44 (13.85 dB at step 40, so the former "> 15 dB after 40
    steps" failed here), TF float64 at step 40 (15.2 dB), PyTorch float32 15.5 dB and float64
    15.0 dB at step 40. Over seeds 0-11 in float32, 6 runs reach 15 dB (at steps 38, 41, 41,
    43, 44 and 67) and 6 stall; in float64, seeds 0-7 give 3 (steps 40, 41, 41).

    So the assertion is about the attack, not one trajectory: restarting from seeds 0, 1, ...
    (stopping each run once it passes 15 dB), some run within DLG_SEEDS reaches 15 dB within
    80 steps, and that run has the true label and has cut its loss 100-fold. A run succeeds
    about half the time, so ten restarts all fail with probability ~1e-3 by chance; here seed
    0 succeeds (44 steps, about as long as the former fixed 40 steps)."""
    pixels, y = cifar
    shared = client_gradient(lenet, pixels[:1], y[:1])  # lenet_dlg takes [0, 1] pixels
    mean, std = imgs.preprocessing_of(lenet)
    tried = {}
    for seed in DLG_SEEDS:
        seen = []

        def reached(step, loss, terms, opt, seen=seen):  # stop once past DLG_PSNR
            px = np.clip(imgs.denormalize(opt.value()["x"], mean, std), 0, 1)
            seen.append(float(np.asarray(metrics.psnr(pixels[:1], px)).reshape(-1)[0]))
            return seen[-1] > DLG_PSNR

        cfg = DLGConfig(seed=seed).with_(steps=DLG_MAX_STEPS, progress=False)
        r = dlg(lenet, shared, cfg, callback=reached)
        tried[seed] = (r.steps, round(max(seen, default=0.0), 1))
        if r.stopped == "callback":
            break
    else:
        pytest.fail(f"no DLG run reached {DLG_PSNR} dB in {DLG_MAX_STEPS} steps; "
                    f"(steps, best PSNR) per seed: {tried}")
    assert r.extra["labels"] == [int(y[0])], tried
    assert r.history["loss"][-1] < 1e-2 * r.history["loss"][0], tried
    assert score(pixels[:1], r.image)["psnr_mean"] > DLG_PSNR, tried


def test_inverting_gradients_runs_with_restored_labels(resnet20, cifar):
    x, y = model_zoo.data.cifar10("test", n=2)
    shared = client_gradient(resnet20, x, y)
    cfg = InvertingGradientsConfig().with_(steps=3, progress=False, compile=False)
    r = inverting_gradients(resnet20, shared, cfg)
    assert sorted(r.extra["labels"]) == sorted(restore_labels(resnet20, shared).tolist())
    assert r.technique == "inverting_gradients" and len(r.history["gradient"]) == 3
    assert 0 <= r.image.min() and r.image.max() <= 1


def test_gradinversion_records_every_term_and_every_seed(resnet20):
    x, y = model_zoo.data.cifar10("test", n=2)
    shared = client_gradient(resnet20, x, y)
    cfg = GradInversionConfig(seeds=2, group_start=2, group_every=2).with_(
        steps=4, warmup=1, progress=False, compile=False)
    r = grad_inversion(resnet20, shared, cfg)
    assert set(r.history) == {"loss", "gradient", "tv", "l2", "bn", "group", "lr"}
    assert r.history["group"][0] == 0 and r.history["group"][-1] > 0  # on from group_start
    assert r.extra["seeds"].shape == (2, 2, 3, 32, 32)
    assert sorted(r.extra["labels"]) == sorted(restore_labels(resnet20, shared).tolist())
    assert [s for s, _ in r.extra["registration_converged"]] == [2, 4]


def test_registration_undoes_a_shift():
    img = model_zoo.data.image("astronaut", size=32, normalize=False)[0]
    shifted = np.roll(img, 2, axis=2)
    warped, ok = register_affine(shifted, img)
    assert ok
    inner = (slice(None), slice(4, -4), slice(4, -4))
    assert np.abs(warped - img)[inner].mean() < 0.5 * np.abs(shifted - img)[inner].mean()
    fused, frac = consensus(np.stack([img[None], shifted[None]]))
    assert fused.shape == (1, 3, 32, 32) and frac == 1.0


def test_matching_pairs_reconstructions_with_their_originals(cifar):
    pixels, _ = cifar
    perm = np.array([2, 0, 3, 1])
    noise = 0.05 * np.random.default_rng(0).standard_normal(pixels.shape)
    recovered = np.clip(pixels[perm] + noise, 0, 1).astype(np.float32)  # unordered, noisy
    np.testing.assert_array_equal(match(pixels, recovered), np.argsort(perm))
    np.testing.assert_array_equal(match(pixels, recovered, by="mse"), np.argsort(perm))


# -- bad input --------------------------------------------------------------------------------
def test_a_gradient_from_another_model_is_refused(resnet20, lenet, cifar):
    pixels, y = cifar
    foreign = client_gradient(lenet, pixels[:1], y[:1])
    with pytest.raises(GradientInversionError, match="another model"):
        check_gradient(resnet20, foreign)
    good = client_gradient(resnet20, *model_zoo.data.cifar10("test", n=1))
    bad = dict(good.grads, **{"linear.weight": good.grads["linear.weight"].T})
    with pytest.raises(GradientInversionError, match="ONNX layout"):
        check_gradient(resnet20, bad)


def test_labels_out_of_range_and_bad_batches_are_refused(resnet20):
    x, _ = model_zoo.data.cifar10("test", n=2)
    with pytest.raises(GradientInversionError, match=r"0\.\.9"):
        client_gradient(resnet20, x, np.array([3, 12]))
    with pytest.raises(GradientInversionError, match="one per image"):
        client_gradient(resnet20, x, np.array([3]))
    with pytest.raises(GradientInversionError, match="4-D"):
        client_gradient(resnet20, x[0], np.array([3]))


def test_bn_prior_on_a_model_without_bn_says_so_and_runs_without_it(lenet):
    with pytest.raises(GradientInversionError, match="no BatchNormalization"):
        bn_inputs(lenet)
    shared = client_gradient(lenet, *model_zoo.data.cifar10("test", n=1, normalize=False))
    # the attack still runs (any classifier): without the BN prior, and it says so
    with pytest.warns(UserWarning, match="no BatchNormalization layers.*bn_weight=0"):
        result = grad_inversion(lenet, shared, GradInversionConfig().with_(steps=1,
                                                                            progress=False))
    assert result.config["bn_weight"] == 0.0 and "bn" not in result.history


def test_unknown_distance_is_refused(resnet20):
    shared = client_gradient(resnet20, *model_zoo.data.cifar10("test", n=1))
    with pytest.raises(GradientInversionError, match="distance"):
        GradientMatcher(resnet20, shared, "l1")
    with pytest.raises(ValueError, match="distance"):
        DLGConfig(distance="l1")
    assert isinstance(shared, SharedGradient)


# -- command line -----------------------------------------------------------------------------
def test_cli_gradient_inversion_writes_its_outputs(tmp_path):
    out = tmp_path / "gi"
    code = cli_main(["gradient-inversion", "--batch", "2", "--steps", "2", "--seeds", "2",
                     "--no-compile", "--quiet", "--out", str(out)])
    assert code == 0
    for name in ("comparison.png", "seeds.png", "history.png", "history.csv", "result.json",
                 "original_0.png", "reconstruction_1.png"):
        assert (out / name).is_file(), name
    res = json.loads((out / "result.json").read_text())
    assert 0 <= res["label_accuracy"] <= 1 and len(res["metrics"]["psnr"]) == 2
    assert len(res["restored_labels"]) == 2 and res["true_labels"] == [3, 8]
    assert res["config"]["seeds"] == 2 and res["steps"] == 2


def test_cli_dlg_on_lenet(tmp_path):
    out = tmp_path / "dlg"
    code = cli_main(["gradient-inversion", "--model", "lenet_dlg", "--attack", "dlg", "--batch",
                     "1", "--steps", "3", "--quiet", "--out", str(out)])
    assert code == 0
    assert json.loads((out / "result.json").read_text())["attack"] == "dlg"


def test_cli_bad_batch_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:  # refused by the parser
        cli_main(["gradient-inversion", "--batch", "0", "--out", str(tmp_path / "x")])
    assert info.value.code == 2 and "argument --batch" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_shared_gradient_is_checked_once_per_attack(monkeypatch, resnet20):
    from tf_impl.gradient_inversion import victim

    x, y = model_zoo.data.cifar10("test", n=1)
    shared = client_gradient(resnet20, x, y)
    calls = []
    real = victim._validate
    monkeypatch.setattr(victim, "_validate", lambda m, s: calls.append(1) or real(m, s))
    inverting_gradients(resnet20, shared, InvertingGradientsConfig().with_(steps=1, progress=False))
    assert len(calls) == 1  # labels restored, matcher built, trials run: one check
    # a copy with other gradients is checked again, and a bad one refused
    checked = check_gradient(resnet20, shared)
    bad = dataclasses.replace(checked, grads={k: v * np.nan for k, v in checked.grads.items()})
    with pytest.raises(GradientInversionError, match="NaN"):
        check_gradient(resnet20, bad)
