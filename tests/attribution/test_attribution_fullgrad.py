"""FullGrad (tf_impl.attribution.fullgrad): completeness, parity with pytorch-grad-cam and with
a PyTorch transcription (converters.torch_reference.fullgrad), post-processing, bad input, CLI.

Tolerances:
- completeness: |f(x) - sum of all terms| <= 1e-4 |f(x)| (the authors' ``checkCompleteness``
  uses ``isclose(rel_tol=1e-4)``) on ReLU networks; measured ~3e-7 on resnet20_cifar.
- the map against pytorch-grad-cam's ``FullGrad`` on the onnx2torch model, both in [0, 1]:
  max |TF - PyTorch| <= 1e-4 (measured ~4e-7).
- raw terms against the transcription: max |TF - PyTorch| / max |PyTorch| <= 1e-4 per term.
"""

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import argparse
import json

import numpy as np
import onnx
import pytest
import tensorflow as tf
from compare import rel_error as rel
from onnx import TensorProto, helper, numpy_helper

import model_zoo
from converters import onnx_to_tf
from converters.torch_reference import fullgrad as ref
from tf_impl.attribution.common import AttributionError
from tf_impl.attribution.fullgrad import (
    FullGradConfig,
    bias_layers,
    draw_fullgrad,
    fullgrad,
    fullgrad_decompose,
    fullgrad_map,
    resize_matrix,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N = 3  # images per call: one batch shape per model keeps tracing to one per model


@pytest.fixture(scope="module")
def resnet(resnet20_path, resnet20):
    return resnet20_path, resnet20


@pytest.fixture(scope="module")
def cifar():
    x, _ = model_zoo.data.cifar10("test", n=N)  # normalised for resnet20_cifar
    return x


@pytest.fixture(scope="module")
def decomposition(resnet, cifar):
    return fullgrad_decompose(resnet[1], cifar, batch_size=N)


@pytest.fixture(scope="module")
def torch_terms(resnet, cifar, decomposition):
    return ref.fullgrad_terms_torch(ref.load_module(resnet[0]), cifar, decomposition.targets)


def tiny_model(out_rank: int = 2):
    """A 1x4x4-input ONNX model: Conv(1->2, 3x3, bias) -> Relu -> (Flatten -> Gemm(10)) or the
    conv map itself (out_rank 4: not a classifier)."""
    rng = np.random.RandomState(0)
    inits = {"w": rng.randn(2, 1, 3, 3).astype(np.float32),
             "b": rng.randn(2).astype(np.float32),
             "fw": rng.randn(10, 32).astype(np.float32),
             "fb": rng.randn(10).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"])]
    out = "r"
    if out_rank == 2:
        nodes += [helper.make_node("Flatten", ["r"], ["f"]),
                  helper.make_node("Gemm", ["f", "fw", "fb"], ["output"], transB=1)]
        out = "output"
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                      ["N", 1, 4, 4])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT,
                                       ["N", 10] if out_rank == 2 else ["N", 2, 4, 4])],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return onnx_to_tf.load(proto)


# -- the decomposition -----------------------------------------------------------------------------
def test_bias_layers_found(resnet):
    layers = bias_layers(resnet[1])
    kinds = [la.op_type for la in layers]
    assert kinds.count("BatchNormalization") == 19 and kinds.count("Gemm") == 1
    assert len(layers) == 20  # its convolutions have no bias
    assert resnet[1].bias_terms() is resnet[1].bias_terms()  # found once, then kept


def test_completeness_resnet20(decomposition):
    d = decomposition
    assert d.input_term.shape == (N, 3, 32, 32)
    assert np.all(np.abs(d.gap) <= 1e-4 * np.abs(d.scores)), (d.gap, d.scores)
    # the bias terms matter: the input term alone is far from the score
    assert np.all(np.abs(d.bias_sums.sum(axis=1)) > 1e-2 * np.abs(d.scores))


def test_completeness_with_maxpool_and_constant_adds():
    """keras_cnn: Conv biases, a folded BatchNorm as Mul + Add(constant), MaxPool, a Dense bias
    as MatMul + Add(constant): all explicit, so completeness is exact."""
    model = onnx_to_tf.load(model_zoo.load("keras_cnn"))
    assert [la.op_type for la in bias_layers(model)] == ["Conv", "Add", "Conv", "Add"]
    x, _ = model_zoo.data.cifar10("test", n=N, normalize=False)
    d = fullgrad_decompose(model, x, batch_size=N)
    assert np.all(np.abs(d.gap) <= 1e-4 * np.abs(d.scores)), (d.gap, d.scores)


def shuffle_model():
    """A ShuffleNet-style 3x4x4-input classifier: Conv(bias) -> Relu -> channel shuffle
    (Reshape -> Transpose -> Reshape, so the tensor is held in ONNX order, not channels-last)
    -> Slice to its channel count (from Shape) -> Add(per-channel constant) -> 1x1 Conv(bias)
    -> Relu -> GlobalAveragePool -> Gemm."""
    rng = np.random.RandomState(1)
    inits = {"w": rng.randn(4, 3, 3, 3).astype(np.float32), "b": rng.randn(4).astype(np.float32),
             "s5": np.array([0, 2, 2, 4, 4], np.int64), "s4": np.array([0, 4, 4, 4], np.int64),
             "k": rng.randn(1, 4, 1, 1).astype(np.float32),
             "axis0": np.array([0], np.int64), "axis1": np.array([1], np.int64),
             "starts": np.array([0], np.int64),
             "w2": rng.randn(4, 4, 1, 1).astype(np.float32), "b2": rng.randn(4).astype(np.float32),
             "fw": rng.randn(10, 4).astype(np.float32), "fb": rng.randn(10).astype(np.float32)}
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Reshape", ["r", "s5"], ["g"]),
             helper.make_node("Transpose", ["g"], ["t"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Reshape", ["t", "s4"], ["shuffled"]),
             # a chunk's split point as torch exports it: shape arithmetic with an Add of a
             # constant, which is not a bias
             helper.make_node("Shape", ["shuffled"], ["shape"]),
             helper.make_node("Constant", [], ["one"],
                              value=numpy_helper.from_array(np.array(1, np.int64))),
             helper.make_node("Constant", [], ["zero"],
                              value=numpy_helper.from_array(np.array(0, np.int64))),
             helper.make_node("Gather", ["shape", "one"], ["channels"]),
             helper.make_node("Add", ["channels", "zero"], ["end"]),
             helper.make_node("Unsqueeze", ["end", "axis0"], ["ends"]),
             helper.make_node("Slice", ["shuffled", "starts", "ends", "axis1"], ["sliced"]),
             helper.make_node("Add", ["sliced", "k"], ["a"]),
             helper.make_node("Conv", ["a", "w2", "b2"], ["c2"]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["p"]),
             helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["output"], transB=1)]
    graph = helper.make_graph(
        nodes, "shuffle", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                         ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["N", 10])],
        initializer=[numpy_helper.from_array(v, k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    onnx.checker.check_model(proto)
    return onnx_to_tf.load(proto)


def test_completeness_through_a_channel_shuffle():
    """The Add after a channel shuffle is held in ONNX order (ShuffleNet's stage Adds): its
    tap must still be the tensor the forward pass uses, so d score / d z is the real one and
    the decomposition is complete; the Add in the chunk's shape arithmetic is no bias layer."""
    model = shuffle_model()
    assert [la.op_type for la in bias_layers(model)] == ["Conv", "Add", "Conv", "Gemm"]
    x = np.random.RandomState(2).rand(N, 3, 4, 4).astype(np.float32)
    d = fullgrad_decompose(model, x, batch_size=N)
    assert np.all(np.abs(d.gap) <= 1e-4 * np.abs(d.scores)), (d.gap, d.scores)
    assert np.all(np.abs(d.bias_terms[bias_layers(model)[1].name]).sum(axis=(1, 2, 3)) > 0)


def test_gap_reveals_implicit_biases():
    """lenet_dlg10 uses sigmoids, whose implicit biases the decomposition leaves out: the gap
    must say so rather than pass silently."""
    model = onnx_to_tf.load(model_zoo.load("lenet_dlg10"))
    x, _ = model_zoo.data.cifar10("test", n=N, normalize=False)
    d = fullgrad_decompose(model, x, batch_size=N)
    assert np.all(np.abs(d.gap) > 0.1 * np.abs(d.scores))


def test_terms_match_torch_transcription(decomposition, torch_terms):
    d, t = decomposition, torch_terms
    np.testing.assert_allclose(d.scores, t["scores"], rtol=1e-5)
    assert rel(d.input_term, t["input_term"]) <= 1e-4
    assert len(d.bias_terms) == len(t["bias_terms"]) == 20
    for (name, got), want, tname in zip(d.bias_terms.items(), t["bias_terms"], t["names"]):
        assert got.shape == want.shape, (name, tname)
        assert rel(got, want) <= 1e-4, (name, tname, rel(got, want))
    assert np.all(np.abs(t["gap"]) <= 1e-4 * np.abs(t["scores"]))


# -- the map ---------------------------------------------------------------------------------------
def test_map_matches_pytorch_grad_cam(resnet, cifar, decomposition):
    want = ref.fullgrad_grad_cam(ref.load_module(resnet[0]), cifar, decomposition.targets)
    got = fullgrad(resnet[1], cifar, batch_size=N, config=FullGradConfig.pytorch_grad_cam())
    assert got.shape == want.shape == (N, 32, 32)
    assert float(np.max(np.abs(got - want))) <= 1e-4


def test_map_matches_authors_post_processing(decomposition, torch_terms):
    """The default config is the authors' code: per-term normalisation, align_corners=True."""
    d = decomposition
    want = ref.fullgrad_map_paper(d.input_term, list(d.bias_terms.values()))
    assert rel(fullgrad_map(d), want) <= 1e-5  # same terms: post-processing alone
    want = ref.fullgrad_map_paper(torch_terms["input_term"], torch_terms["bias_terms"])
    assert rel(fullgrad_map(d), want) <= 1e-4  # end to end


def test_map_properties(resnet, cifar, decomposition):
    m, gap = fullgrad(resnet[1], cifar, batch_size=N, return_delta=True)
    np.testing.assert_allclose(gap, decomposition.gap, atol=1e-6)
    assert m.shape == (N, 32, 32) and np.all(m >= 0)
    # 1 input term + 19 BN terms, each normalised to [0, 1] then summed over its channels
    assert m.max() <= 3 + 16 * 7 + 32 * 6 + 64 * 6
    batch1 = fullgrad(resnet[1], cifar[:1], batch_size=N)
    np.testing.assert_allclose(batch1[0], m[0], rtol=1e-5, atol=1e-5)


def test_resize_matrix_matches_tf_and_align_corners():
    img = np.random.RandomState(1).rand(1, 5, 7, 1).astype(np.float32)
    want = tf.image.resize(img, (13, 9), method="bilinear").numpy()[0, :, :, 0]
    got = resize_matrix(5, 13, False) @ img[0, :, :, 0] @ resize_matrix(7, 9, False).T
    np.testing.assert_allclose(got, want, atol=1e-6)
    r = resize_matrix(4, 10, True)
    np.testing.assert_allclose(r.sum(1), 1.0)
    assert r[0, 0] == 1.0 and r[-1, -1] == 1.0
    np.testing.assert_allclose(resize_matrix(6, 6, False), np.eye(6))


def test_tiny_model_by_hand():
    """Conv -> Relu -> Gemm: the terms are x * grad, b_conv * dS/dz_conv and beta * C[target]."""
    model = tiny_model()
    x = np.random.RandomState(2).randn(2, 1, 4, 4).astype(np.float32)
    d = fullgrad_decompose(model, x, target=[3, 7])
    assert [la.op_type for la in d.layers] == ["Conv", "Gemm"]
    fb = model.onnx_weights()["fb"]
    gemm = list(d.bias_terms.values())[1]
    np.testing.assert_allclose(gemm.sum(1), fb[[3, 7]], rtol=1e-6)
    np.testing.assert_allclose(d.gap, 0, atol=1e-5)
    out = np.asarray(model(x))
    np.testing.assert_allclose(d.scores, out[[0, 1], [3, 7]], rtol=1e-6)


def test_draw(tmp_path, cifar):
    path = tmp_path / "fg.png"
    draw_fullgrad(path, np.clip(cifar[:1] * 0.25 + 0.5, 0, 1), np.random.rand(32, 32),
                  title="t")
    assert path.stat().st_size > 1000


# -- bad input -------------------------------------------------------------------------------------
def test_bad_input(resnet, cifar):
    model = resnet[1]
    with pytest.raises(AttributionError, match="out of range.*0 to 9"):
        fullgrad(model, cifar, target=10)
    with pytest.raises(AttributionError, match="batched"):
        fullgrad(model, cifar[0])
    with pytest.raises(AttributionError, match="batch_size must be a positive integer"):
        fullgrad(model, cifar, batch_size=0)
    with pytest.raises(AttributionError, match="normalize must be one of"):
        FullGradConfig(normalize="pixel")
    with pytest.raises(AttributionError, match="config must be a FullGradConfig"):
        fullgrad(model, cifar, config={"normalize": "term"})
    with pytest.raises(AttributionError, match="has no baseline"):  # the one call shape,
        fullgrad(model, cifar, baseline=0.0)  # but FullGrad has no baseline and no path
    with pytest.raises(AttributionError, match="no classifier output|is a feature map"):
        fullgrad(tiny_model(out_rank=4), np.zeros((1, 1, 4, 4), np.float32))


# -- command line ----------------------------------------------------------------------------------
def test_cli(tmp_path):
    from tf_impl.cli.attribution import add_parsers

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="technique", required=True)
    add_parsers(sub)
    out = tmp_path / "fg"
    args = p.parse_args(["fullgrad", "--model", "resnet20_cifar", "--image", "cifar10:1",
                         "--out", str(out), "--quiet"])
    assert args.run(args) == 0
    for name in ("input.png", "fullgrad.png", "fullgrad_color.png", "overlay.png",
                 "result.json"):
        assert (out / name).stat().st_size > 0, name
    rec = json.loads((out / "result.json").read_text())
    assert rec["completeness"]["exact"] and abs(rec["completeness"]["relative_gap"]) <= 1e-4
    assert len(rec["bias_layers"]) == 20
    args = p.parse_args(["fullgrad", "--image", "cifar10:1000", "--out", str(out)])
    with pytest.raises(ValueError, match="K must be in"):
        args.run(args)
