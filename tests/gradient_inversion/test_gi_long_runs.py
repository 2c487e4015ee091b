"""Long gradient-inversion runs: paper presets read against breaching's configurations,
restarts, checkpoints and resume, the time budget, Ctrl-C, and their bad input.

Runs are a few uncompiled steps on DLG's LeNet (fast); figures at the paper budget are in
benchmarks/gradient_inversion_anchor.py.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

import model_zoo
from converters import onnx_to_tf
from tf_impl.cli import main as cli_main
from tf_impl.gradient_inversion import client_gradient
from tf_impl.gradient_inversion.gradinversion import GradInversionConfig, grad_inversion
from tf_impl.gradient_inversion.inverting_gradients import (
    InvertingGradientsConfig,
    inverting_gradients,
)
from tf_impl.optimize import CheckpointError, OptimizeConfig, optimize
from tf_impl.priors import MeanTotalVariation

EAGER = {"progress": False, "compile": False}


@pytest.fixture(scope="module")
def batch(lenet):
    x, y = model_zoo.data.cifar10("test", n=2, normalize=False)  # lenet_dlg takes [0, 1]
    return x, y, client_gradient(lenet, x, y)


def _gi(**changes):
    # LeNet has no BatchNorm: the BN prior is off; two seeds with the group term from step 2
    return GradInversionConfig(bn_weight=0.0, seeds=2, group_start=2, group_every=2).with_(
        warmup=1, **EAGER, **changes)


# -- presets -----------------------------------------------------------------------------------
def test_paper_presets_carry_breachings_budgets_and_schedules():
    anchor = pytest.importorskip("converters.torch_reference.breaching_anchor")
    pytest.importorskip("breaching")
    ig, ours = anchor.attack_config("invertinggradients"), InvertingGradientsConfig.paper()
    assert ours.optimize.steps == ig.optim.max_iterations
    assert ours.optimize.learning_rate == ig.optim.step_size and ig.optim.signed == "hard"
    assert ours.optimize.signed_gradients and ours.optimize.schedule == "step"
    assert ours.tv_weight == ig.regularization.total_variation.scale
    assert ours.distance == "cosine" and ig.objective.type == "cosine-similarity"
    stg, gi = anchor.attack_config("seethroughgradients"), GradInversionConfig.paper()
    assert gi.optimize.steps == stg.optim.max_iterations
    assert gi.optimize.warmup == stg.optim.warmup and gi.optimize.schedule == "cosine"
    assert gi.tv_weight == stg.regularization.total_variation.scale
    assert gi.l2_weight == stg.regularization.norm.scale
    assert gi.bn_weight == stg.regularization.deep_inversion.scale
    assert gi.gradient_weight == 0.5 * stg.objective.scale  # breaching's 0.5 * sum of squares
    quick = InvertingGradientsConfig.quick()
    assert quick == InvertingGradientsConfig() and quick.optimize.steps < ours.optimize.steps
    assert GradInversionConfig.quick(seeds=2).seeds == 2


def test_mean_total_variation_is_breachings():
    torch = pytest.importorskip("torch")
    pytest.importorskip("breaching")
    from breaching.attacks.auxiliaries.regularizers import TotalVariation

    x = np.random.default_rng(0).standard_normal((2, 3, 8, 9)).astype(np.float32)
    ref = TotalVariation({"dtype": torch.float, "device": torch.device("cpu")}, scale=1.0)
    want = float(ref(torch.as_tensor(x)))
    got = float(MeanTotalVariation().value(tf.constant(x)))
    assert got == pytest.approx(want, rel=1e-5)


# -- restarts, time budget, Ctrl-C --------------------------------------------------------------
def test_restarts_keep_the_trial_with_the_lowest_gradient_distance(lenet, batch):
    x, y, shared = batch
    cfg = InvertingGradientsConfig(restarts=3).with_(steps=3, **EAGER)
    r = inverting_gradients(lenet, shared, cfg, labels=y)
    assert len(r.extra["trials"]) == 3
    assert r.extra["gradient_distance"] == min(r.extra["trials"])
    assert r.extra["best_trial"] == int(np.argmin(r.extra["trials"]))
    assert len(set(r.extra["trials"])) == 3  # different starts
    assert r.best_image.shape == (2, 3, 32, 32) and 0 <= r.best_image.min() <= 1


def test_ctrl_c_ends_the_trials_and_keeps_what_was_reached(lenet, batch):
    x, y, shared = batch

    def interrupt(step, loss, terms, opt):
        if step == 2:
            raise KeyboardInterrupt

    cfg = InvertingGradientsConfig(restarts=3).with_(steps=5, **EAGER)
    r = inverting_gradients(lenet, shared, cfg, labels=y, callback=interrupt)
    assert r.interrupted and r.steps == 2 and len(r.extra["trials"]) == 1
    assert np.isfinite(r.extra["gradient_distance"]) and np.isfinite(r.best_image).all()


def test_a_time_budget_stops_early_and_keeps_the_best():
    target = tf.constant([[0.3, 0.7]])
    res = optimize(lambda x: {"mse": tf.reduce_sum((x - target) ** 2)}, tf.zeros([1, 2]),
                   OptimizeConfig(steps=10**7, learning_rate=0.01, progress=False,
                                  max_seconds=0.5))
    assert res.stopped == "time budget" and 0 < res.steps_done < 10**7
    assert "budget" in res.message and res.best_loss <= res.history["loss"][0]
    with pytest.raises(ValueError, match="max_seconds"):
        OptimizeConfig(max_seconds=0)


# -- checkpoints --------------------------------------------------------------------------------
def test_a_resumed_gradinversion_run_ends_where_an_uninterrupted_one_does(lenet, batch,
                                                                          tmp_path):
    x, y, shared = batch
    whole = grad_inversion(lenet, shared, _gi(steps=6), labels=y)

    def stop_at_3(step, loss, terms, opt):
        return step == 3

    ckpt = tmp_path / "gi.npz"
    first = grad_inversion(lenet, shared, _gi(steps=6), labels=y, callback=stop_at_3,
                           checkpoint=ckpt)
    assert first.steps == 3 and (tmp_path / "gi-trial0.npz").is_file()
    resumed = grad_inversion(lenet, shared, _gi(steps=6), labels=y, checkpoint=ckpt,
                             resume=True)
    assert resumed.steps == 6 and len(resumed.history["loss"]) == 6
    # Adam's moments, the consensus and the step-seeded Langevin noise all carry over
    np.testing.assert_allclose(resumed.extra["seeds"], whole.extra["seeds"], atol=1e-5)
    np.testing.assert_allclose(resumed.history["loss"], whole.history["loss"], rtol=1e-5)


def test_more_restarts_resume_the_finished_trials(lenet, batch, tmp_path):
    x, y, shared = batch
    ckpt = tmp_path / "ig.npz"
    cfg = InvertingGradientsConfig().with_(steps=3, **EAGER)
    one = inverting_gradients(lenet, shared, cfg, labels=y, checkpoint=ckpt)
    two = inverting_gradients(lenet, shared, cfg.with_(restarts=2), labels=y, checkpoint=ckpt,
                              resume=True)
    assert (tmp_path / "ig-trial1.npz").is_file()
    assert two.extra["trials"][0] == pytest.approx(one.extra["gradient_distance"], rel=1e-6)
    fresh = inverting_gradients(lenet, shared, cfg.with_(restarts=2), labels=y)
    np.testing.assert_allclose(two.extra["trials"], fresh.extra["trials"], rtol=1e-5)


def test_a_checkpoint_from_another_batch_or_model_is_refused(lenet, batch, tmp_path):
    x, y, shared = batch
    ckpt = tmp_path / "ig.npz"
    cfg = InvertingGradientsConfig().with_(steps=2, **EAGER)
    inverting_gradients(lenet, shared, cfg, labels=y, checkpoint=ckpt)
    x1, y1 = x[:1], y[:1]
    with pytest.raises(CheckpointError, match="batch"):
        inverting_gradients(lenet, client_gradient(lenet, x1, y1), cfg, labels=y1,
                            checkpoint=ckpt, resume=True)
    other = onnx_to_tf.load(model_zoo.load("lenet_dlg"))  # the same file, one weight changed
    w = other.onnx_variables["fc.weight"]
    w.assign(w * 1.01)
    with pytest.raises(CheckpointError, match="model"):
        inverting_gradients(other, shared, cfg, labels=y, checkpoint=ckpt, resume=True)
    with pytest.raises(CheckpointError, match="settings"):
        inverting_gradients(lenet, shared, cfg.with_(tv_weight=0.5), labels=y,
                            checkpoint=ckpt, resume=True)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        inverting_gradients(lenet, shared, cfg, labels=y, checkpoint=tmp_path / "none.npz",
                            resume=True)
    with pytest.raises(CheckpointError, match="checkpoint="):
        inverting_gradients(lenet, shared, cfg, labels=y, resume=True)


def test_resume_tolerates_round_off_in_the_shared_gradient(lenet, batch, tmp_path):
    # the same gradient from another thread count or device differs in the last bits only
    x, y, shared = batch
    ckpt = tmp_path / "ig.npz"
    cfg = InvertingGradientsConfig().with_(steps=3, **EAGER)
    inverting_gradients(lenet, shared, cfg, labels=y, checkpoint=ckpt,
                        callback=lambda step, *_: step == 1)
    rng = np.random.default_rng(0)

    def scaled(by):
        return dataclasses.replace(shared, grads={
            k: (g * (1 + by * rng.standard_normal(g.shape))).astype(np.float32)
            for k, g in shared.grads.items()})

    r = inverting_gradients(lenet, scaled(1e-7), cfg, labels=y, checkpoint=ckpt, resume=True)
    assert r.steps == 3 and len(r.history["loss"]) == 3
    with pytest.raises(CheckpointError, match=r"shared_gradient: file \[\[.*\.\.\., this"):
        inverting_gradients(lenet, scaled(1e-2), cfg, labels=y, checkpoint=ckpt, resume=True)


# -- command line -------------------------------------------------------------------------------
def test_cli_checkpoint_resume_and_budget(tmp_path, capsys):
    out, ckpt = tmp_path / "ig", tmp_path / "ig" / "run.npz"
    base = ["gradient-inversion", "--model", "lenet_dlg", "--attack", "inverting-gradients",
            "--batch", "1", "--labels", "true", "--no-compile", "--quiet", "--out", str(out),
            "--checkpoint", str(ckpt)]
    assert cli_main([*base, "--steps", "3", "--max-minutes", "5"]) == 0
    assert "budget" in capsys.readouterr().err
    assert (out / "run-trial0.npz").is_file()
    assert cli_main([*base, "--steps", "3", "--resume"]) == 0
    assert json.loads((out / "result.json").read_text())["steps"] == 3
    code = cli_main([*base, "--steps", "3", "--resume", "--batch", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "another run" in err and "batch" in err
    assert cli_main(["gradient-inversion", "--resume", "--out", str(out)]) == 2
    assert "--checkpoint" in capsys.readouterr().err


def test_breaching_missing_says_how_to_install_it(monkeypatch):
    import sys

    anchor = pytest.importorskip("converters.torch_reference.breaching_anchor")
    monkeypatch.setitem(sys.modules, "breaching", None)
    with pytest.raises(ImportError, match="pip install breaching==0.1.2"):
        anchor.attack_config("invertinggradients")
