"""Saliency, guided backprop, occlusion and saliency-seeded GrabCut
(tf_impl.visualization.saliency) against Captum on the same ONNX models, plus their checks and
command line.

Parity: TF (our importer) against Captum 0.9 on the onnx2torch copy of the same file
(converters/torch_reference/saliency.py), on two CIFAR-10 test images, for resnet20_cifar
(trained, BatchNorm, 19 Relu nodes, residual Adds), keras_cnn (a Keras graph through tf2onnx)
and lenet_dlg10 (sigmoids: no ReLU at all). Agreement is max |TF - Captum| / max |Captum| per
map, below 1e-4 (measured: 3e-7 to 8e-7 for the gradients, 1e-6 to 3e-5 for occlusion, whose
score differences lose a few digits of the logits).
"""

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import argparse
import json

import numpy as np
import pytest
from compare import rel_error as rel
from onnx import helper
from onnx_builders import make_model

import model_zoo
from converters import onnx_to_tf
from converters.torch_reference import saliency as ref
from tf_impl import images as imgs
from tf_impl.attribution.occlusion import window_starts
from tf_impl.cli import saliency as cli_saliency
from tf_impl.images import ImageError
from tf_impl.visualization.checks import VisualizationError
from tf_impl.visualization.saliency import (
    GrabCutConfig,
    OcclusionConfig,
    SaliencyConfig,
    draw_segmentation,
    grabcut_seeds,
    grabcut_segmentation,
    gradient_image,
    guided_backprop,
    occlusion,
    saliency,
)

TOL = 1e-4

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU:UserWarning"),
    pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning"),
]


class Zoo:
    """Each model loaded once: (path, TF model, onnx2torch module)."""

    def __init__(self):
        self._models = {}

    def __call__(self, name):
        if name not in self._models:
            path = model_zoo.load(name)
            self._models[name] = (path, onnx_to_tf.load(path), ref.load_module(path))
        return self._models[name]


@pytest.fixture(scope="module")
def zoo():
    return Zoo()


@pytest.fixture(scope="module")
def cifar():
    pixels, labels = model_zoo.data.cifar10("test", n=2, normalize=False)
    return pixels, labels


def normalised(model, pixels):
    return imgs.normalize(pixels, *imgs.preprocessing_of(model))


# -- parity with Captum ---------------------------------------------------------------------
@pytest.mark.parametrize("name, target", [("resnet20_cifar", None), ("keras_cnn", [3, 8]),
                                          ("lenet_dlg10", 5)])
def test_saliency_matches_captum(zoo, cifar, name, target):
    path, model, net = zoo(name)
    pixels, _ = cifar
    s = saliency(model, pixels, target)
    assert s.map.shape == (2, 32, 32) and s.attribution.shape == (2, 3, 32, 32)
    if target is None:
        np.testing.assert_array_equal(s.target, s.predicted)
    else:
        np.testing.assert_array_equal(s.target, np.broadcast_to(target, (2,)))
    want = ref.saliency_torch(net, normalised(model, pixels), s.target)
    assert rel(s.map, want["map"]) < TOL
    assert rel(np.abs(s.attribution), want["attribution"]) < TOL
    assert np.all(s.map >= 0) and s.map.max() > 0


def test_saliency_wrt_pixels_is_the_input_gradient_over_std(zoo, cifar):
    _, model, _ = zoo("resnet20_cifar")
    a = saliency(model, cifar[0], 3)
    b = saliency(model, cifar[0], 3, SaliencyConfig(wrt="pixels"))
    std = np.asarray(imgs.preprocessing_of(model)[1], np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(b.attribution, a.attribution / std, rtol=1e-6)


@pytest.mark.parametrize("name", ["resnet20_cifar", "keras_cnn"])
def test_guided_backprop_matches_captum_which_hooks_every_relu(zoo, cifar, name):
    path, model, net = zoo(name)
    pixels, _ = cifar
    g = guided_backprop(model, pixels, [1, 7])
    x = normalised(model, pixels)
    captum = ref.guided_backprop_torch(net, x, g.target)
    assert rel(g.attribution, captum) < TOL
    # Captum only hooks nn.ReLU modules: onnx2torch made one per ONNX Relu node, none functional
    cov = ref.relu_coverage(path, net)
    assert cov["onnx_relu_nodes"] == cov["torch_relu_modules"] > 0
    assert cov["functional_relus"] == 0
    # ... and the hooks fire: Captum equals the rule written out on every ReLU module
    explicit = ref.guided_backprop_explicit(net, x, g.target)
    assert explicit["replaced"] == cov["onnx_relu_nodes"]
    assert rel(captum, explicit["attribution"]) < 1e-6
    # the guided rule changes the gradient (it is not the vanilla one)
    vanilla = saliency(model, pixels, [1, 7]).attribution
    assert rel(g.attribution, vanilla) > 0.1
    np.testing.assert_allclose(g.map, np.abs(g.attribution).max(1))
    shown = gradient_image(g.attribution)
    assert shown.shape == (2, 3, 32, 32) and 0 <= shown.min() and shown.max() <= 1


def test_guided_backprop_without_relus_is_the_gradient(zoo, cifar):
    path, model, net = zoo("lenet_dlg10")  # sigmoids only
    assert ref.relu_coverage(path, net)["onnx_relu_nodes"] == 0
    g = guided_backprop(model, cifar[0], 2)
    np.testing.assert_array_equal(g.attribution, saliency(model, cifar[0], 2).attribution)
    assert rel(g.attribution, ref.guided_backprop_torch(net, normalised(model, cifar[0]),
                                                        g.target)) < TOL


def _pixel_baseline(model, value):
    mean, std = imgs.preprocessing_of(model)
    return imgs.normalize(np.full((1, 3, 1, 1), value, np.float32), mean, std).reshape(-1)


def test_occlusion_matches_captum_with_cut_off_windows(zoo, cifar):
    """window 8, stride 5 on 32 pixels: starts 0..25, the last window cut off at the border;
    a mid-grey pixel baseline, normalised per channel for Captum."""
    _, model, net = zoo("resnet20_cifar")
    pixels, _ = cifar
    cfg = OcclusionConfig(window=8, stride=5, baseline=0.5, batch_size=16)
    o = occlusion(model, pixels, None, cfg)
    want = ref.occlusion_torch(net, normalised(model, pixels), o.target, 8, 5,
                               _pixel_baseline(model, 0.5), batch_size=16)
    assert np.array_equal(want[:, 0], want[:, 2])  # Captum's window spans every channel
    assert o.map.shape == (2, 32, 32) and o.attribution.shape == (2, 1, 32, 32)
    assert rel(o.map, want[:, 0]) < TOL
    assert o.map.max() > 0.1  # occluding the object lowers its logit somewhere


def test_occlusion_matches_captum_rectangles_input_baseline_probability(zoo, cifar):
    _, model, net = zoo("keras_cnn")
    pixels, _ = cifar
    cfg = OcclusionConfig(window=(5, 7), stride=(3, 4), baseline=0.0, baseline_space="input",
                          score="probability", batch_size=10)
    o = occlusion(model, pixels, [3, 8], cfg)
    want = ref.occlusion_torch(net, normalised(model, pixels), [3, 8], (5, 7), (3, 4), 0.0,
                               batch_size=10, score="probability")
    assert rel(o.map, want[:, 0]) < TOL


def test_batched_occlusion_equals_one_window_per_forward(zoo, cifar):
    _, model, _ = zoo("resnet20_cifar")
    cfg = OcclusionConfig(window=8, stride=5, batch_size=16)  # 36 windows: 3 chunks of 12
    batched = occlusion(model, cifar[0][:1], 3, cfg).map
    single = occlusion(model, cifar[0][:1], 3, cfg.with_(batch_size=1)).map
    assert rel(batched, single) < 1e-5


def test_window_starts_follow_captum():
    assert window_starts(32, 8, 5) == [0, 5, 10, 15, 20, 25]  # ceil(24 / 5) + 1 = 6
    assert window_starts(32, 8, 8) == [0, 8, 16, 24]
    assert window_starts(32, 32, 1) == [0]
    assert window_starts(7, 3, 2) == [0, 2, 4]


# -- GrabCut --------------------------------------------------------------------------------
def _synthetic(size=48, radius=11):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    disk = (yy - size / 2) ** 2 + (xx - size / 2 + 3) ** 2 < radius**2
    img = np.empty((3, size, size), np.float32)
    img[0] = 0.15 + 0.1 * xx / size  # blue-green textured background
    img[1] = 0.45 + 0.1 * yy / size
    img[2] = 0.6
    img += 0.05 * rng.standard_normal(img.shape).astype(np.float32)
    img[:, disk] = np.array([0.9, 0.15, 0.1])[:, None]  # a red disk
    sal = disk * 1.0 + 0.4 * rng.random((size, size))  # salient inside, noisy everywhere
    return np.clip(img, 0, 1)[None], sal.astype(np.float32), disk


def test_grabcut_segments_the_obvious_object(tmp_path):
    import cv2

    pixels, sal, disk = _synthetic()
    seeds = grabcut_seeds(sal)
    n = sal.size
    assert abs((seeds == cv2.GC_FGD).sum() - 0.05 * n) <= 2  # above the 95th percentile
    assert abs((seeds == cv2.GC_BGD).sum() - 0.30 * n) <= 2  # below the 30th
    assert disk[seeds == cv2.GC_FGD].all() and not disk[seeds == cv2.GC_BGD].any()
    mask = grabcut_segmentation(pixels, sal)
    assert mask.shape == (1, 48, 48) and mask.dtype == bool
    iou = (mask[0] & disk).sum() / (mask[0] | disk).sum()
    assert iou > 0.9, iou
    assert np.array_equal(mask, grabcut_segmentation(pixels, sal))  # seeded: reproducible
    draw_segmentation(tmp_path / "seg.png", pixels, mask[0], sal, title="synthetic")
    assert (tmp_path / "seg.png").stat().st_size > 1000


def test_grabcut_refuses_a_constant_map_and_bad_percentiles():
    pixels, sal, _ = _synthetic()
    with pytest.raises(VisualizationError, match="constant"):
        grabcut_segmentation(pixels, np.ones_like(sal))
    with pytest.raises(VisualizationError, match="one .* saliency map per image"):
        grabcut_segmentation(pixels, sal[:10])
    with pytest.raises(VisualizationError, match="bg_percentile < fg_percentile"):
        GrabCutConfig(fg_percentile=20, bg_percentile=30)


# -- bad input ------------------------------------------------------------------------------
def test_class_out_of_range_names_the_range(zoo, cifar):
    _, model, _ = zoo("resnet20_cifar")
    for fn in (saliency, guided_backprop, occlusion):
        with pytest.raises(VisualizationError, match="10 classes, so use 0 to 9"):
            fn(model, cifar[0], 10)
    with pytest.raises(VisualizationError, match="2 images, 3 targets"):
        saliency(model, cifar[0], [1, 2, 3])
    with pytest.raises(VisualizationError, match="0 to 9"):
        saliency(model, cifar[0], [1, -1])


def test_wrong_image_size_for_a_fixed_size_model(zoo):
    _, model, _ = zoo("resnet20_cifar")
    big = np.zeros((1, 3, 64, 64), np.float32)
    for fn in (saliency, guided_backprop, occlusion):
        with pytest.raises(VisualizationError, match="takes 32x32 images"):
            fn(model, big)


@pytest.mark.parametrize("kw, match", [
    ({"stride": 0}, "stride must be >= 1"),
    ({"window": 4, "stride": 5}, "larger than the window"),
    ({"window": 0}, "window must be >= 1"),
    ({"window": (3, 4, 5)}, "pair of ints"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1"),
    ({"baseline": 2.0}, r"pixel-space baseline must lie in \[0, 1\]"),
    ({"baseline_space": "lab"}, "baseline_space must be one of"),
    ({"score": "loss"}, "score must be one of"),
])
def test_bad_occlusion_settings_are_refused(kw, match):
    with pytest.raises(VisualizationError, match=match):
        OcclusionConfig(**kw)


def test_window_larger_than_the_image_is_refused(zoo, cifar):
    _, model, _ = zoo("resnet20_cifar")
    with pytest.raises(VisualizationError, match="larger than the image 32x32"):
        occlusion(model, cifar[0], None, OcclusionConfig(window=40, stride=4))


def test_a_feature_extractor_is_not_a_classifier(tmp_path):
    rng = np.random.default_rng(0)
    proto = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"])],
        {"x": np.zeros((1, 3, 8, 8), np.float32)}, ["y"],
        {"w": rng.standard_normal((4, 3, 3, 3)).astype(np.float32)})
    model = onnx_to_tf.load(proto)
    with pytest.raises(VisualizationError, match="no classifier output|is a feature map"):
        saliency(model, rng.random((1, 3, 8, 8)).astype(np.float32))


# -- command line ---------------------------------------------------------------------------
@pytest.fixture()
def cli(zoo, monkeypatch):
    monkeypatch.setattr(cli_saliency, "load_model", lambda args, **kw: zoo(args.model)[1])
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="technique", required=True)
    cli_saliency.add_parsers(sub)

    def run(*argv):
        args = parser.parse_args(list(argv))
        return args.run(args)

    return run


def _result(out):
    return json.loads((out / "result.json").read_text())


def test_cli_saliency_with_segmentation(cli, tmp_path):
    out = tmp_path / "s"
    assert cli("saliency", "--image", "cifar10:1", "--segment", "--out", str(out)) == 0
    for f in ("input.png", "saliency.png", "saliency_color.png", "overlay.png", "mask.png",
              "segmentation.png"):
        assert (out / f).is_file(), f
    r = _result(out)
    assert r["technique"] == "saliency" and r["image"] == "cifar10:1" and r["true_label"] == 8
    assert r["target_class"] == r["predicted_class"] and 0 < r["probability"] <= 1
    assert r["config"] == {"wrt": "input"} and r["seconds"] > 0
    assert 0 < r["segmentation"]["foreground_fraction"] < 1


def test_cli_guided_backprop_and_occlusion(cli, tmp_path):
    g, o = tmp_path / "g", tmp_path / "o"
    assert cli("guided-backprop", "--target", "5", "--out", str(g)) == 0
    assert {"input.png", "guided_backprop.png", "guided_backprop_magnitude.png", "overlay.png",
            "result.json"} <= {p.name for p in g.iterdir()}
    r = _result(g)
    assert r["target_class"] == 5 and r["target_name"] == "dog"
    assert cli("occlusion", "--window", "8", "--stride", "5", "--batch-size", "16", "--quiet",
               "--out", str(o)) == 0
    assert (o / "occlusion.png").is_file() and (o / "overlay.png").is_file()
    r = _result(o)
    assert r["config"]["window"] == 8 and r["config"]["batch_size"] == 16
    assert r["map"]["max"] > 0


@pytest.mark.parametrize("argv, match", [
    (["saliency", "--target", "10"], "use 0 to 9"),
    (["occlusion", "--window", "40"], "larger than the image"),
    (["occlusion", "--window", "4", "--stride", "8"], "larger than the window"),
    (["saliency", "--image", "cifar10:5000"], r"\[0, 1000\)"),
])  # (a zero --stride is refused by the parser: tests/test_input_validation.py)
def test_cli_bad_input_is_a_visualization_error(cli, tmp_path, argv, match):
    # (the image spec is shared by every command: a bad one is an ImageError)
    with pytest.raises((VisualizationError, ImageError), match=match):
        cli(*argv, "--out", str(tmp_path / "bad"))
