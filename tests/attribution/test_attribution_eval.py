"""Insertion and deletion (tf_impl.attribution.evaluation; Petsiuk et al. 2018, RISE).

The curves' end points are the probabilities of known images (the input, the baseline, the
blurred input); on a linear two-class model the ranking by contribution w_i x_i is the best
possible at every stage (deleting the largest contributions first lowers the logit most), so
it must beat every random ranking there; RISE's blur kernel is checked against scipy.
"""

import argparse
import json
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from scipy import ndimage

import model_zoo
from converters import onnx_to_tf
from tf_impl.attribution.common import AttributionError
from tf_impl.attribution.evaluation import (
    CausalMetricConfig,
    attribute,
    blur,
    deletion,
    draw_curves,
    insertion,
    insertion_deletion,
    rise_kernel,
    trapezoid_auc,
)

N = 3


@pytest.fixture(scope="module")
def cifar():
    x, _ = model_zoo.data.cifar10("test", n=N)
    return x


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def onnx_model(nodes, inits, out_shape):
    graph = helper.make_graph(
        nodes, "t", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
        initializer=[numpy_helper.from_array(np.asarray(v, np.float32), k)
                     for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return onnx_to_tf.load(proto)


def linear_model(w):
    """logits = [w . x, 0] on 1x4x4 inputs: class 0's probability is sigmoid(w . x)."""
    weights = np.stack([np.asarray(w, np.float32).reshape(-1), np.zeros(16, np.float32)])
    return onnx_model([helper.make_node("Flatten", ["input"], ["f"]),
                       helper.make_node("Gemm", ["f", "W"], ["output"], transB=1)],
                      {"W": weights}, ["N", 2])


# -- substrates --------------------------------------------------------------------------------
@pytest.mark.parametrize("size,sigma", [(11, 5.0), (5, 1.0), (7, 0.8)])
def test_rise_kernel_is_scipys(size, sigma):
    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1
    np.testing.assert_allclose(rise_kernel(size, sigma), ndimage.gaussian_filter(delta, sigma),
                               atol=1e-12)


def test_blur_is_zero_padded_convolution():
    x = np.random.RandomState(0).randn(2, 3, 9, 8).astype(np.float32)
    k = rise_kernel(5, 1.5)
    want = np.stack([[ndimage.correlate(c, k, mode="constant") for c in img] for img in x])
    np.testing.assert_allclose(blur(x, 5, 1.5), want, atol=1e-5)


# -- the curves on resnet20_cifar ---------------------------------------------------------------
def test_end_points(resnet20, cifar):
    a = np.random.RandomState(1).randn(N, 3, 32, 32)
    p_x = softmax(resnet20(cifar))
    t = p_x.argmax(1)
    res = insertion_deletion(resnet20, cifar, a, batch_size=16)
    dele, ins = res["deletion"], res["insertion"]
    steps = math.ceil(1024 / round(1024 * 8 / 224))
    assert dele.probabilities.shape == ins.probabilities.shape == (N, steps + 1)
    assert dele.fractions[0] == 0 and dele.fractions[-1] == 1
    assert np.all(np.diff(dele.fractions) > 0)
    assert np.array_equal(dele.targets, t)
    rows = np.arange(N)
    np.testing.assert_allclose(dele.probabilities[:, 0], p_x[rows, t], atol=1e-5)
    np.testing.assert_allclose(dele.probabilities[:, -1],
                               softmax(resnet20(np.zeros_like(cifar)))[rows, t], atol=1e-5)
    np.testing.assert_allclose(ins.probabilities[:, -1], p_x[rows, t], atol=1e-5)
    np.testing.assert_allclose(ins.probabilities[:, 0],
                               softmax(resnet20(blur(cifar)))[rows, t], atol=1e-5)
    # a given baseline: one image for all; the curve ends at its probability
    base = np.random.RandomState(2).randn(3, 32, 32).astype(np.float32)
    d2 = deletion(resnet20, cifar, a, baseline=base, batch_size=16)
    want = softmax(resnet20(np.repeat(base[None], N, 0)))[rows, t]
    np.testing.assert_allclose(d2.probabilities[:, -1], want, atol=1e-5)
    np.testing.assert_allclose(d2.probabilities[:, 0], dele.probabilities[:, 0], atol=1e-6)
    np.testing.assert_allclose(dele.auc, trapezoid_auc(dele.probabilities, dele.fractions))


def test_batch_size_invariance(resnet20, cifar):
    a = np.random.RandomState(3).rand(N, 32, 32)
    big = insertion(resnet20, cifar, a, batch_size=16)
    small = insertion(resnet20, cifar, a, batch_size=5, max_rows=40)  # several chunks, pads
    np.testing.assert_allclose(small.probabilities, big.probabilities, atol=1e-5)
    np.testing.assert_allclose(small.auc, big.auc, atol=1e-5)


def test_channel_sum_equals_map(resnet20, cifar):
    a = np.random.RandomState(4).randn(N, 3, 32, 32)
    cfg = CausalMetricConfig(steps=8)
    by_attr = deletion(resnet20, cifar[:1], a[:1], config=cfg, batch_size=16)
    by_map = deletion(resnet20, cifar[:1], a[:1].sum(1), config=cfg, batch_size=16)
    np.testing.assert_allclose(by_attr.probabilities, by_map.probabilities, atol=1e-6)
    assert by_attr.probabilities.shape == (1, 9) and by_attr.pixels_per_step == 128
    by_abs = deletion(resnet20, cifar[:1], a[:1], config=cfg.with_(ranking="abs"), batch_size=16)
    by_abs_map = deletion(resnet20, cifar[:1], np.abs(a[:1]).sum(1), config=cfg, batch_size=16)
    np.testing.assert_allclose(by_abs.probabilities, by_abs_map.probabilities, atol=1e-6)
    assert not np.allclose(by_abs.probabilities, by_attr.probabilities, atol=1e-3)


# -- the linear model: an exact oracle ----------------------------------------------------------
def test_oracle_beats_random_rankings():
    rng = np.random.RandomState(5)
    w = rng.randn(16)
    x = rng.randn(2, 1, 4, 4).astype(np.float32)
    model = linear_model(w)
    oracle = w.reshape(1, 1, 4, 4) * x  # each pixel's contribution to the logit
    cfg = CausalMetricConfig()  # 16 pixels: one per step
    d_best = deletion(model, x, oracle, target=0, config=cfg, batch_size=8)
    i_best = insertion(model, x, oracle, target=0, substrate=0.0, config=cfg, batch_size=8)
    assert d_best.pixels_per_step == 1 and d_best.probabilities.shape == (2, 17)
    for seed in range(10):
        r = np.random.RandomState(100 + seed).rand(2, 4, 4)
        d = deletion(model, x, r, target=0, config=cfg, batch_size=8)
        i = insertion(model, x, r, target=0, substrate=0.0, config=cfg, batch_size=8)
        assert np.all(d_best.probabilities <= d.probabilities + 1e-6)
        assert np.all(i_best.probabilities >= i.probabilities - 1e-6)
    worst = deletion(model, x, -oracle, target=0, config=cfg, batch_size=8)
    assert np.all(d_best.auc < worst.auc - 0.05)


def test_monotone_when_every_contribution_is_positive():
    rng = np.random.RandomState(6)
    model = linear_model(rng.rand(16) + 0.1)
    x = (rng.rand(2, 1, 4, 4) + 0.1).astype(np.float32)
    r = rng.rand(2, 4, 4)
    d = deletion(model, x, r, target=0, batch_size=8)
    i = insertion(model, x, r, target=0, substrate=0.0, batch_size=8)
    assert np.all(np.diff(d.probabilities, axis=1) <= 1e-7)
    assert np.all(np.diff(i.probabilities, axis=1) >= -1e-7)
    np.testing.assert_allclose(d.probabilities[:, -1], 0.5, atol=1e-6)  # logit 0 at x = 0


def test_trapezoid_auc_and_steps():
    f = np.linspace(0, 1, 11)
    np.testing.assert_allclose(trapezoid_auc(np.full((2, 11), 0.3), f), 0.3)
    np.testing.assert_allclose(trapezoid_auc(f[None], f), 0.5)
    assert CausalMetricConfig(steps=4).pixels_per_step(16) == 4
    assert CausalMetricConfig(steps=3).pixels_per_step(1024) == 342
    assert CausalMetricConfig().pixels_per_step(224 * 224) == 224 * 8
    assert CausalMetricConfig(step_fraction=1e-6).pixels_per_step(16) == 1


# -- bad input ---------------------------------------------------------------------------------
def test_bad_input(resnet20, cifar):
    a = np.ones((N, 32, 32))
    with pytest.raises(AttributionError, match="out of range.*0 to 9"):
        deletion(resnet20, cifar, a, target=10)
    with pytest.raises(AttributionError, match="baseline has shape"):
        deletion(resnet20, cifar, a, baseline=np.zeros((2, 2)))
    with pytest.raises(AttributionError, match="steps must be a positive integer"):
        CausalMetricConfig(steps=0)
    with pytest.raises(AttributionError, match="step_fraction must be in"):
        CausalMetricConfig(step_fraction=0)
    with pytest.raises(AttributionError, match="ranking must be one of"):
        CausalMetricConfig(ranking="max")
    with pytest.raises(AttributionError, match="blur_size must be an odd"):
        CausalMetricConfig(blur_size=10)
    with pytest.raises(AttributionError, match="attributions have shape"):
        insertion(resnet20, cifar, np.ones((N, 16, 16)))
    with pytest.raises(AttributionError, match="finite"):
        insertion(resnet20, cifar, np.full((N, 32, 32), np.nan))
    with pytest.raises(AttributionError, match="batch_size must be a positive integer"):
        insertion(resnet20, cifar, a, batch_size=0)
    with pytest.raises(AttributionError, match="unknown attribution method"):
        attribute("gradcam", resnet20, cifar)
    conv = onnx_model([helper.make_node("Conv", ["input", "w"], ["output"], pads=[1, 1, 1, 1])],
                      {"w": np.ones((2, 1, 3, 3))}, ["N", 2, 4, 4])
    with pytest.raises(AttributionError, match="no classifier output|is a feature map"):
        deletion(conv, np.zeros((1, 1, 4, 4), np.float32), np.ones((1, 4, 4)))


def test_draw_curves(tmp_path, resnet20, cifar):
    cfg = CausalMetricConfig(steps=4)
    res = insertion_deletion(resnet20, cifar[:1], np.ones((1, 32, 32)), config=cfg, batch_size=16)
    path = tmp_path / "c.png"
    draw_curves(path, {"ones": res, "again": {"deletion": res["deletion"]}}, title="t")
    assert path.stat().st_size > 1000


def test_cli(tmp_path):
    from tf_impl.cli.attribution_eval import add_parsers

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="technique", required=True)
    add_parsers(sub)
    out = tmp_path / "ev"
    args = p.parse_args(["attribution-eval", "--n", "3", "--methods", "saliency,fullgrad",
                         "--batch-size", "16", "--out", str(out), "--quiet"])
    assert args.run(args) == 0
    rec = json.loads((out / "result.json").read_text())
    assert set(rec["methods"]) == {"saliency", "fullgrad"}
    for m in rec["methods"].values():
        assert 0 <= m["insertion_auc"][0] <= 1 and 0 <= m["deletion_auc"][0] <= 1
        assert len(m["insertion_auc_per_image"]) == len(rec["images"]) >= 1
    # the scalars a sweep's table collects
    assert rec["metrics"]["fullgrad"]["insertion_auc"] == rec["methods"]["fullgrad"][
        "insertion_auc"][0]
    table = (out / "table.md").read_text()
    assert "FullGrad" in table and "insertion AUC" in table
    assert (out / "curves.png").stat().st_size > 1000
    args = p.parse_args(["attribution-eval", "--methods", "nope", "--out", str(out)])
    with pytest.raises(AttributionError, match="unknown attribution method"):
        args.run(args)
