"""Feature inversion: it reconstructs, keeps pixels valid, and refuses bad input clearly.

Small settings (48x48 images, tens of steps); the quality targets at 224x224 are measured in
benchmarks/feature_inversion.py. Parity with the PyTorch reference is in
test_feature_inversion_parity.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import model_zoo
from converters import onnx_to_tf
from converters.onnx_to_tf import UnknownTapError
from tf_impl import images as imgs
from tf_impl import memory
from tf_impl.cli import main as cli_main
from tf_impl.feature_inversion import FeatureInversionConfig, gaussian_blur, invert_features
from tf_impl.metrics import psnr

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def vgg():
    return onnx_to_tf.load(model_zoo.load("vgg16_features"))


@pytest.fixture(scope="module")
def photo():
    return model_zoo.data.image("astronaut", size=48, normalize=False)


def _cfg(steps=30, **kw):
    return FeatureInversionConfig(**kw).with_(steps=steps, progress=False)


def test_conv1_2_inversion_approaches_the_photo(vgg, photo):
    result = invert_features(vgg, photo, "conv1_2", _cfg(60), lpips=False)
    h = result.history
    assert len(h["loss"]) == len(h["feature:conv1_2"]) == len(h["tv"]) == 60
    assert h["loss"][-1] < 0.2 * h["loss"][0]
    gray = np.full_like(photo, 0.5)
    assert result.metrics["psnr"] > float(psnr(photo, gray)[0]) + 5
    assert result.image.shape == photo.shape
    assert 0.0 <= result.image.min() and result.image.max() <= 1.0
    assert result.extra["layers"] == ["conv1_2"] and result.steps == 60


def test_multi_layer_objective_records_each_layer(vgg, photo):
    result = invert_features(
        vgg, photo, ["conv1_2", "conv3_1"], _cfg(3), weights={"conv3_1": 2.0}, metrics=False
    )
    assert {"feature:conv1_2", "feature:conv3_1", "tv", "loss"} <= set(result.history)
    assert result.metrics == {}


def test_pixels_stay_in_the_valid_box_during_the_run(vgg, photo):
    mean, std = imgs.preprocessing_of(vgg)
    seen = []

    def watch(step, loss, terms, opt):
        seen.append(imgs.denormalize(opt.value(), mean, std))

    invert_features(vgg, photo, "conv2_1", _cfg(5, init="noise", init_std=2.0),
                    callback=watch, metrics=False)
    px = np.stack(seen)
    assert px.min() >= -1e-5 and px.max() <= 1 + 1e-5


def test_inits_noise_blur_gray_and_explicit(vgg, photo):
    blur = gaussian_blur(photo, 2.0)
    assert blur.shape == photo.shape and np.abs(blur - photo).mean() > 1e-3
    for init in ("noise", "blur", "gray"):
        r = invert_features(vgg, photo, "conv1_1", _cfg(1, init=init), metrics=False)
        assert np.all(np.isfinite(r.image))
    r = invert_features(vgg, photo, "conv1_1", _cfg(1), init=blur, metrics=False)
    assert r.history["loss"][0] < invert_features(
        vgg, photo, "conv1_1", _cfg(1, init="gray"), metrics=False).history["loss"][0]
    with pytest.raises(ValueError, match="init has shape"):
        invert_features(vgg, photo, "conv1_1", _cfg(1), init=photo[:, :, :20], metrics=False)


def test_same_seed_same_result_other_seed_other_result(vgg, photo):
    a = invert_features(vgg, photo, "conv2_1", _cfg(3, seed=1), metrics=False)
    b = invert_features(vgg, photo, "conv2_1", _cfg(3, seed=1), metrics=False)
    c = invert_features(vgg, photo, "conv2_1", _cfg(3, seed=2), metrics=False)
    np.testing.assert_array_equal(a.image, b.image)
    assert np.abs(a.image - c.image).max() > 1e-3


def test_interrupt_keeps_the_steps_done(vgg, photo):
    def stop_at_4(step, *_):
        if step == 4:
            raise KeyboardInterrupt

    r = invert_features(vgg, photo, "conv1_2", _cfg(50), callback=stop_at_4, metrics=False)
    assert r.interrupted and r.steps == 4 and len(r.history["loss"]) == 4
    assert "interrupted" in r.message and np.all(np.isfinite(r.image))


def test_nan_loss_stops_with_a_message_and_keeps_the_last_finite_image(vgg, photo):
    cfg = FeatureInversionConfig(clip_to_pixels=False).with_(
        steps=20, learning_rate=1e38, progress=False)
    r = invert_features(vgg, photo, "conv1_2", cfg, metrics=False)
    assert r.stopped == "non-finite" and "NaN" in r.message
    assert r.steps < 20 and np.all(np.isfinite(r.best_image))


# -- bad input --------------------------------------------------------------------------------
def test_unknown_layer_lists_valid_names_and_aliases(vgg, photo):
    with pytest.raises(UnknownTapError) as info:
        invert_features(vgg, photo, "conv9_9", _cfg(1))
    assert "conv9_9" in str(info.value) and "conv3_1" in str(info.value)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((1, 1, 3, 48, 48), np.float32), "2-D .* 3-D .* or 4-D"),
        (np.zeros((1, 2, 48, 48), np.float32), "1, 3 or 4 channels"),
        (np.full((1, 3, 48, 48), -2.0, np.float32), "normalised"),
        (np.full((1, 3, 48, 48), np.nan, np.float32), "NaN"),
        (np.zeros((48, 48, 3), np.int32), "uint8"),
    ],
)
def test_bad_images_are_refused_with_the_fix(vgg, bad, match):
    with pytest.raises(imgs.ImageError, match=match):
        invert_features(vgg, bad, "conv1_1", _cfg(1))


def test_grayscale_and_rgba_are_converted_with_a_note(vgg, photo):
    gray = (photo[0].mean(0) * 255).astype(np.uint8)  # (H, W) uint8
    with pytest.warns(UserWarning, match="grayscale"):
        r = invert_features(vgg, gray, "conv1_1", _cfg(1), metrics=False)
    assert r.original.shape == (1, 3, 48, 48) and "grayscale" in r.extra["notes"][0]
    rgba = np.concatenate([photo[0], np.ones((1, 48, 48), np.float32)], 0).transpose(1, 2, 0)
    with pytest.warns(UserWarning, match="RGBA"):
        r = invert_features(vgg, rgba, "conv1_1", _cfg(1), metrics=False)
    np.testing.assert_allclose(r.original, photo, atol=1e-6)


def test_an_input_too_large_for_memory_is_refused_with_its_size(vgg):
    with pytest.raises(memory.MemoryPreflightError,
                       match=r"1x3x4000x4000 needs about .* GiB .*--size \d+ or less"):
        memory.check_memory(vgg, (1, 3, 4000, 4000), ["conv3_1"], available=2**30)
    assert memory.check_memory(vgg, (1, 3, 64, 64), ["conv3_1"], available=2**30) > 0


# -- command line -----------------------------------------------------------------------------
def test_cli_writes_every_output(tmp_path, capsys):
    out = tmp_path / "fi"
    code = cli_main(["feature-inversion", "--layer", "conv1_2,conv3_1", "--steps", "3",
                     "--size", "48", "--no-lpips", "--quiet", "--snapshot-every", "2",
                     "--out", str(out)])
    assert code == 0
    for name in ("reconstruction.png", "reconstruction_conv1_2.png", "comparison.png",
                 "history.png", "history.csv", "result.json",
                 "snapshots/conv3_1_step00002.png"):
        assert (out / name).is_file(), name
    res = json.loads((out / "result.json").read_text())
    assert set(res["runs"]) == {"conv1_2", "conv3_1"}
    assert np.isfinite(res["metrics"]["conv1_2"]["psnr"]) and res["steps"]["conv3_1"] == 3
    assert res["config"]["optimize"]["steps"] == 3
    rows = (out / "history.csv").read_text().strip().splitlines()
    assert rows[0].startswith("run,step,loss") and len(rows) == 1 + 2 * 3
    assert not list(out.glob("**/.*.tmp"))


def test_cli_help_lists_models_layers_and_images(capsys):
    with pytest.raises(SystemExit):
        cli_main(["feature-inversion", "--help"])
    text = capsys.readouterr().out
    assert "vgg16_features" in text and "conv3_1" in text and "layer4" in text
    assert "astronaut" in text and "cat_dog" in text


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--layer", "conv9_9"], "conv9_9"),
        (["--layer", "conv1_1", "--image", "no_such_picture"], "no_such_picture"),
        (["--layer", "conv1_1", "--model", "vgg17"], "unknown model"),
        (["--layer", "conv1_1", "--size", "100000"], "GiB"),
    ],
)
def test_cli_bad_input_exits_2_with_a_message(argv, match, tmp_path, capsys):
    code = cli_main(["feature-inversion", "--steps", "1", "--quiet", "--out",
                     str(tmp_path / "o"), *argv])
    assert code == 2
    assert match in capsys.readouterr().err


def test_cli_refuses_an_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code = cli_main(["feature-inversion", "--layer", "conv1_1", "--steps", "1",
                     "--out", str(blocker / "out")])
    assert code == 2 and "cannot write to the output folder" in capsys.readouterr().err


def test_ctrl_c_writes_what_was_reached(tmp_path):
    out = tmp_path / "fi"
    log = tmp_path / "stderr.txt"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    with open(log, "wb") as err:  # a file, not a pipe: the child can never block on output
        proc = subprocess.Popen(
            [sys.executable, "-m", "tf_impl", "feature-inversion", "--layer", "conv2_1",
             "--size", "32", "--steps", "100000", "--snapshot-every", "1", "--no-lpips",
             "--quiet", "--out", str(out)], cwd=ROOT, env=env, stdout=err, stderr=err,
            # a shell running the suite in the background (nohup, `&`) ignores SIGINT and the
            # child would inherit that: give it the default disposition, as a terminal would
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.time() + 300  # generous: CI machines may be busy
            # the run writes into its staging folder beside --out until it ends
            staged = ".fi.partial-*/snapshots/*step00003.png"
            while not list(tmp_path.glob(staged)) and time.time() < deadline:
                assert proc.poll() is None, log.read_text()[-2000:]
                time.sleep(0.2)
            assert list(tmp_path.glob(staged)), log.read_text()[-2000:]
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, log.read_text()[-2000:]
    res = json.loads((out / "result.json").read_text())
    assert res["runs"]["conv2_1"]["stopped"] == "interrupted"
    assert 3 <= res["steps"]["conv2_1"] < 100000
    assert (out / "reconstruction.png").is_file() and (out / "history.csv").is_file()


def test_lbfgs_is_an_option(vgg, photo):
    cfg = FeatureInversionConfig().with_(steps=2, optimizer="lbfgs", learning_rate=1.0,
                                         lbfgs_max_iter=5, progress=False)
    r = invert_features(vgg, photo, "conv1_2", cfg, metrics=False)
    assert r.steps == 2 and r.history["loss"][1] < r.history["loss"][0]
