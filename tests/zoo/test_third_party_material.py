"""Third-party-style ONNX victims (model_zoo.third_party, SMALL variants): each file is valid,
runs, has the input layout, head and format its Truth claims, and our importer reproduces
onnxruntime on it (raw graph semantics: fed in the graph's own input layout)."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest

from model_zoo import third_party as tp

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAMES = list(tp.SMALL)
# Importer failures on these files: name -> reason (strict xfail). None at present.
IMPORTER_XFAIL: dict[str, str] = {}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("third_party")


@pytest.fixture(scope="module", params=NAMES)
def material(request, folder):
    """(name, path, proto, truth, input batch, onnxruntime output) for one SMALL build."""
    import onnxruntime as ort

    name = request.param
    path = tp.save(name, folder, small=True)
    proto = onnx.load(os.fspath(path))
    truth = tp.load_truth(path)
    pixels = np.random.default_rng(1).uniform(0, 1, (2, 3, *truth.input_size))
    x = truth.model_input(pixels.astype(np.float32))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    sess = ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    ref = sess.run(None, {tp.data_input(proto).name: x})[0]
    return name, path, proto, truth, x, ref


def _dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_checker_and_onnxruntime(material):
    name, path, proto, truth, x, ref = material
    onnx.checker.check_model(os.fspath(path), full_check=True)
    assert np.all(np.isfinite(ref))
    if truth.output == "spatial_logits" or "4-D" in truth.notes:
        assert ref.shape == (2, truth.num_classes, 1, 1)
    else:
        assert ref.shape == (2, truth.num_classes)
    if truth.output == "probabilities":
        np.testing.assert_allclose(ref.reshape(2, -1).sum(axis=1), 1.0, atol=1e-5)
        assert ref.min() >= 0.0


def test_input_layout_matches_truth(material):
    name, path, proto, truth, x, ref = material
    dims = _dims(tp.data_input(proto))
    assert dims[1:] == list(truth.input_shape()[1:])
    assert isinstance(dims[0], str)  # dynamic batch
    if truth.origin in ("keras", "caffe-style"):
        assert truth.layout == "NHWC" and dims[3] == 3
    else:
        assert truth.layout == "NCHW" and dims[1] == 3
    assert truth.origin in tp.ORIGINS and truth.output in tp.OUTPUTS


def test_head_matches_truth(material):
    name, path, proto, truth, x, ref = material
    producer = {o: n for n in proto.graph.node for o in n.output}
    last = producer[proto.graph.output[0].name]
    if truth.origin in ("keras", "caffe-style"):
        assert last.op_type == "Softmax"
    assert (last.op_type == "Softmax") == (truth.output == "probabilities")
    if truth.output == "spatial_logits":
        assert len(_dims(proto.graph.output[0])) == 4


def test_legacy_format(material):
    name, path, proto, truth, x, ref = material
    opset = {o.domain or "ai.onnx": o.version for o in proto.opset_import}["ai.onnx"]
    dropouts = [n for n in proto.graph.node if n.op_type == "Dropout"]
    if truth.origin != "torchvision-legacy":
        assert opset == 17
        return
    assert opset <= 9
    inputs = {i.name for i in proto.graph.input}
    assert {t.name for t in proto.graph.initializer} <= inputs
    assert len(inputs) == len(proto.graph.initializer) + 1
    assert len(dropouts) == 1 and len(dropouts[0].output) == 2  # output and mask
    consumer = [n for n in proto.graph.node if dropouts[0].output[0] in n.input]
    assert [n.op_type for n in consumer] in (["Gemm"], ["Conv"])  # right before the classifier


def test_caffe_style_equals_softmax_of_base(folder):
    import onnxruntime as ort

    import model_zoo

    name = "caffe_resnet18"
    path = tp.save(name, folder, small=True)
    proto, truth = onnx.load(os.fspath(path)), tp.load_truth(path)
    base = tp.config(name, small=True).kwargs["base"]
    prep = model_zoo.info(base).preprocessing
    assert truth.mean == tuple(round(255 * m, 6) for m in prep.mean[::-1]) == tp.CAFFE_MEAN_BGR
    assert (truth.layout, truth.channel_order, truth.scale, truth.std) == (
        "NHWC", "BGR", 255.0, (1.0, 1.0, 1.0))
    # softmax(base((x - mean) / std)) == file(caffe_input(x)), both by onnxruntime
    x = np.random.default_rng(2).uniform(0, 1, (3, 3, *truth.input_size)).astype(np.float32)
    norm = (x - np.reshape(prep.mean, (1, 3, 1, 1))) / np.reshape(prep.std, (1, 3, 1, 1))
    base_sess = ort.InferenceSession(os.fspath(model_zoo.load(base)),
                                     providers=["CPUExecutionProvider"])
    logits = base_sess.run(None, {"input": norm.astype(np.float32)})[0].astype(np.float64)
    want = np.exp(logits - logits.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    sess = ort.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"data": tp.caffe_input(x)})[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(tp.caffe_input(x), truth.model_input(x))
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Cast") >= 50 and ops.count("Transpose") >= 100
    assert ops[0] == "Transpose" and ops[-1] == "Softmax"
    assert all(n.attribute[0].i == onnx.TensorProto.FLOAT for n in proto.graph.node
               if n.op_type == "Cast")


def test_onnx2torch_as_truth_says(material):
    name, path, proto, truth, x, ref = material
    from converters.triton_guard import guard_triton

    guard_triton()
    from onnx2torch import convert

    try:
        convert(proto)
        ok, why = True, ""
    except NotImplementedError as err:
        ok, why = False, str(err)
    assert ok == truth.onnx2torch_ok, why
    if not ok:
        assert "Dropout" in why and "version=7" in why


# Eager calls for every file; the default (tf.function) path too on the files with depthwise
# convolutions followed by BatchNormalization, an NHWC Keras graph, long Cast/Transpose chains
# and an opset-7 Dropout. Tracing the others (958-node ShuffleNet: 7 s, Keras MobileNetV2:
# 11 s) would double the module's time.
COMPILED = ("tv_mobilenet_v3_small", "keras_vgg16", "caffe_resnet18", "tv_squeezenet1_1_legacy")


def test_importer_matches_onnxruntime(material, request):
    name, path, proto, truth, x, ref = material
    if name in IMPORTER_XFAIL:
        request.applymarker(pytest.mark.xfail(strict=True, reason=IMPORTER_XFAIL[name]))
    from converters import onnx_to_tf

    model = onnx_to_tf.load(path)
    for compiled in (False, True) if name in COMPILED else (False,):
        got = np.asarray(model(x, compiled=compiled))
        assert got.shape == ref.shape
        rel = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
        assert rel <= 1e-5, f"{name} (compiled={compiled}): max|tf - ort| / max|ort| = {rel:.2e}"


def test_save_writes_two_files_and_caches(folder):
    name = "tv_squeezenet1_1_legacy"
    path = tp.save(name, folder, small=True)
    record = json.loads(tp.truth_path(path).read_text())
    assert record["params"]["name"] == name and record["params"]["small"] is True
    assert tp.Truth.from_dict(record["truth"]) == tp.load_truth(path)
    stamp = path.stat().st_mtime_ns
    assert tp.save(name, folder, small=True) == path
    assert path.stat().st_mtime_ns == stamp  # cached: not rebuilt
    names = {p.name for p in folder.iterdir()}
    assert names <= {f"{n}.onnx" for n in NAMES} | {f"{n}.truth.json" for n in NAMES}
    path.write_bytes(path.read_bytes() + b"\0")  # a changed file is rebuilt
    tp.save(name, folder, small=True)
    onnx.checker.check_model(os.fspath(path))


@pytest.mark.parametrize("name", ["tv_squeezenet1_1_legacy", "keras_resnet50"])
def test_builds_are_deterministic(name, folder):
    """A rebuild is the same model: byte for byte from torch; from Keras the same weights and
    the same function (tf2onnx's graph optimiser may write a global average pool as a
    GlobalAveragePool or as a Reshape + ReduceMean depending on the state of the process, as
    seen in a full test run, so bytes are not compared there)."""
    path = tp.save(name, folder, small=True)  # usually already built by `material`
    proto, truth = tp.build(name, small=True)
    assert truth == tp.load_truth(path)
    if truth.origin != "keras":
        assert proto.SerializeToString() == path.read_bytes()
        return
    saved = onnx.load(path)

    def weights(p):
        return sorted(onnx.numpy_helper.to_array(t).tobytes() for t in p.graph.initializer
                      if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) >= 2)

    assert weights(saved) == weights(proto)
    x = tp.Truth.model_input(truth, np.random.default_rng(0).uniform(
        0, 1, (2, 3, *truth.input_size)).astype(np.float32))
    a = run_ort_bytes(saved.SerializeToString(), x)
    b = run_ort_bytes(proto.SerializeToString(), x)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def run_ort_bytes(data: bytes, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_truth_model_input_and_catalogues():
    t = tp.Truth("keras", "NHWC", "BGR", 255.0, tp.KERAS_CAFFE_MEAN_BGR, (1.0,) * 3, (2, 2),
                 "probabilities", 10, True)
    pixels = np.zeros((1, 3, 2, 2), np.float32)
    pixels[:, 0] = 1.0  # pure red
    x = t.model_input(pixels)
    assert x.shape == (1, 2, 2, 3)
    np.testing.assert_allclose(x[0, 0, 0], [-103.939, -116.779, 255 - 123.68], rtol=1e-6)
    assert set(tp.SMALL) == set(tp.CATALOGUE)
    with pytest.raises(KeyError, match="unknown third-party model"):
        tp.config("nope")
    with pytest.raises(ValueError, match="arch"):
        tp.torchvision_model("vgg99")
