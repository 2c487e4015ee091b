"""The model contract (converters/onnx_to_tf/contract.py): read from metadata, the graph, a
sidecar and overrides; the contract view maps the working input (NCHW, RGB, normalised) to
the model's own input inside the graph and returns logits.

The models are tiny graphs built here: one network in three dresses, an NCHW RGB file
normalised by a mean/std, the same weights as a Caffe-style file (NHWC input, BGR, 0..255 minus
a mean, Cast and Transpose nodes, a final Softmax) and as an (N, C, 1, 1) spatial-logits file.
The same pixels must give the same logits through each file's contract (to float rounding),
and each file's output must equal onnxruntime's on the input made by hand.
"""

import json

import numpy as np
import onnx
import pytest
import tensorflow as tf
from compare import rel_error as rel
from onnx import helper
from onnx_builders import make_model, run_ort

from converters.onnx_to_tf import ContractError, ModelContract, contract_model, load
from tf_impl import images as imgs

MEAN = np.array([0.4, 0.5, 0.6], np.float32)  # RGB, pixel units
STD = np.array([0.2, 0.25, 0.3], np.float32)
CAFFE_MEAN = tuple(float(v) for v in (255 * MEAN)[::-1])  # BGR, 0..255 units
TOL = 1e-5


@pytest.fixture(scope="module")
def weights():
    rng = np.random.default_rng(0)
    return {
        "w1": rng.standard_normal((6, 3, 3, 3)).astype(np.float32),
        "b1": rng.standard_normal(6).astype(np.float32) * 0.1,
        "w2": rng.standard_normal((5, 6)).astype(np.float32),
        "b2": rng.standard_normal(5).astype(np.float32) * 0.1,
    }


def _set_meta(proto, entries):
    for k, v in entries.items():
        p = proto.metadata_props.add()
        p.key, p.value = k, v
    return proto


def nchw_file(weights, *, softmax=False, spatial=False, meta=None):
    """Conv-Relu-GAP then Flatten-Gemm (optionally Softmax), or a 1x1 conv classifier kept
    (N, 5, 1, 1). Input NCHW RGB normalised by MEAN/STD."""
    nodes = [helper.make_node("Conv", ["input", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("GlobalAveragePool", ["r1"], ["g"])]
    inits = dict(weights)
    if spatial:
        inits["w2"] = weights["w2"].reshape(5, 6, 1, 1)
        nodes.append(helper.make_node("Conv", ["g", "w2", "b2"], ["output"]))
    else:
        nodes += [helper.make_node("Flatten", ["g"], ["f"]),
                  helper.make_node("Gemm", ["f", "w2", "b2"], ["logits" if softmax else "output"],
                                   transB=1)]
        if softmax:
            nodes.append(helper.make_node("Softmax", ["logits"], ["output"], axis=1))
    proto = make_model(nodes, {"input": np.zeros((1, 3, 16, 16), np.float32)}, ["output"], inits)
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    return _set_meta(proto, meta or {})


def caffe_file(weights):
    """The same network as a Caffe conversion: NHWC input of BGR pixels 0..255 minus
    CAFFE_MEAN; the RGB order and the 1 / (255 std) factor folded into the first conv; no-op
    Casts and Transpose pairs; a final Softmax."""
    w1 = weights["w1"][:, ::-1] / (255.0 * STD[::-1]).reshape(1, 3, 1, 1)
    inits = dict(weights, w1=np.ascontiguousarray(w1, np.float32))
    nodes = [
        helper.make_node("Cast", ["input"], ["in_f"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Transpose", ["in_f"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
        helper.make_node("Transpose", ["c1"], ["c1_t"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["c1_t"], ["c1_tt"], perm=[0, 3, 1, 2]),
        helper.make_node("Cast", ["c1_tt"], ["c1_c"], to=onnx.TensorProto.FLOAT),
        helper.make_node("Relu", ["c1_c"], ["r1"]),
        helper.make_node("GlobalAveragePool", ["r1"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["fc"], transB=1),
        helper.make_node("Softmax", ["fc"], ["prob"], axis=1),
        helper.make_node("Identity", ["prob"], ["output"]),
    ]
    proto = make_model(nodes, {"input": np.zeros((1, 16, 16, 3), np.float32)}, ["output"], inits)
    proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    return proto


CAFFE_CONTRACT = {"layout": "NHWC", "channel_order": "BGR", "scale": 255,
                  "mean": list(CAFFE_MEAN), "std": [1, 1, 1]}


def caffe_input(pixels):
    """What a Caffe user feeds: NHWC, BGR, 0..255, minus the mean."""
    return (np.transpose(pixels[:, ::-1], (0, 2, 3, 1)) * 255.0
            - np.asarray(CAFFE_MEAN, np.float32)).astype(np.float32)


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(1).uniform(0, 1, (3, 3, 16, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def files(tmp_path_factory, weights):
    d = tmp_path_factory.mktemp("contract")
    prep = json.dumps({"mean": MEAN.tolist(), "std": STD.tolist(), "value_range": [0, 1]})
    paths = {}
    for name, proto in {
        "plain": nchw_file(weights, meta={"model_zoo.preprocessing": prep}),
        "softmax": nchw_file(weights, softmax=True, meta={"model_zoo.preprocessing": prep}),
        "spatial": nchw_file(weights, spatial=True, meta={"model_zoo.preprocessing": prep}),
        "caffe": caffe_file(weights),
    }.items():
        paths[name] = d / f"{name}.onnx"
        onnx.save(proto, paths[name])
    return paths


def logits_of(model, pixels):
    m = contract_model(model)
    mean, std = m.preprocessing
    return np.asarray(m(imgs.normalize(pixels, mean, std)))


# -- reading the contract -----------------------------------------------------------------------
def test_zoo_metadata_gives_mean_std_and_the_view_passes_the_input_through(files, pixels):
    model = load(files["plain"])
    c = model.contract
    assert c.layout == "NCHW" and c.channel_order == "RGB" and c.scale == 1
    np.testing.assert_allclose(c.mean, MEAN, rtol=1e-6)
    assert c.sources["mean"] == "metadata" and c.sources["layout"] == "graph"
    assert c.output == "logits" and c.logits is None and c.input_size == (16, 16)
    x = imgs.normalize(pixels, MEAN, STD)
    np.testing.assert_array_equal(model.with_contract()(x).numpy(), model(x).numpy())
    assert model.with_contract() is model.with_contract()  # cached


def test_caffe_file_from_a_sidecar_gives_the_same_logits_as_the_plain_file(files, pixels):
    side = files["caffe"].with_name("caffe.contract.json")
    side.write_text(json.dumps(CAFFE_CONTRACT))
    try:
        caffe = load(files["caffe"])
    finally:
        side.unlink()
    c = caffe.contract
    assert (c.layout, c.channel_order, c.scale, c.output) == ("NHWC", "BGR", 255, "probabilities")
    assert c.logits == "fc" and c.sources["channel_order"].startswith("sidecar")
    # a mean-only model at scale 255: the working input takes the ImageNet std (the space the
    # papers' step sizes and prior weights were tuned in), not 1/255 of a pixel
    mean, std = c.preprocessing
    np.testing.assert_allclose(mean, MEAN, rtol=1e-6)
    assert std == (0.229, 0.224, 0.225)
    assert c.gain == tuple(255 * s for s in (0.225, 0.224, 0.229))  # model (BGR) order
    got, want = logits_of(caffe, pixels), logits_of(load(files["plain"]), pixels)
    assert rel(got, want) < TOL
    # the file's own output, fed the Caffe input by hand, is the softmax of those logits
    ref = run_ort(onnx.load(files["caffe"]), {"input": caffe_input(pixels)})[0]
    prob = contract_model(caffe).probabilities(imgs.normalize(pixels, mean, std)).numpy()
    assert rel(prob, ref) < TOL
    assert rel(np.asarray(caffe(caffe_input(pixels))), ref) < TOL  # raw graph semantics


@pytest.mark.parametrize("how", ["yaml", "overrides", "winml"])
def test_other_ways_to_say_the_same_contract(files, pixels, how, tmp_path):
    want = logits_of(load(files["plain"]), pixels)
    if how == "yaml":
        path = tmp_path / "m.onnx"
        path.write_bytes(files["caffe"].read_bytes())
        mean = ", ".join(map(str, CAFFE_MEAN))
        (tmp_path / "m.contract.yaml").write_text(
            f"layout: NHWC\nbgr: true\nscale: 255\nmean: [{mean}]\nstd: 1\n")
        model = load(path)
    elif how == "overrides":
        model = load(files["caffe"], contract=dict(CAFFE_CONTRACT, std=None))
    else:  # Windows ML image metadata: BGR, 0..255 (no mean: add it as an override)
        proto = _set_meta(onnx.load(files["caffe"]), {
            "Image.BitmapPixelFormat": "Bgr8", "Image.NominalPixelRange": "NominalRange_0_255"})
        model = load(proto, contract={"mean": CAFFE_MEAN})
        assert model.contract.sources["channel_order"] == "metadata"
    assert rel(logits_of(model, pixels), want) < TOL


def test_softmax_head_gives_logits_and_probabilities_come_from_them(files, pixels):
    model = load(files["softmax"])
    c = model.contract
    assert c.output == "probabilities" and c.logits == "logits"
    view = model.with_contract()
    x = imgs.normalize(pixels, MEAN, STD)
    logits = view(x).numpy()
    assert rel(logits, logits_of(load(files["plain"]), pixels)) < TOL
    assert rel(view.probabilities(x).numpy(), model(x).numpy()) < 1e-6  # no double softmax
    assert view.num_classes == 5


def test_spatial_logits_are_squeezed(files, pixels):
    model = load(files["spatial"])
    assert model.contract.output == "spatial_logits"
    assert tuple(model(imgs.normalize(pixels, MEAN, STD)).shape) == (3, 5, 1, 1)
    got = logits_of(model, pixels)
    assert got.shape == (3, 5) and rel(got, logits_of(load(files["plain"]), pixels)) < TOL


def test_pixel_gradients_agree_across_dresses(files, pixels):
    """d logit / d pixel through each file's contract: the same function of the pixels."""
    def grad(model):
        m = contract_model(model)
        mean, std = m.preprocessing
        p = tf.constant(pixels)
        with tf.GradientTape() as tape:
            tape.watch(p)
            x = (p - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
            score = tf.reduce_sum(m(x)[:, 2])
        return tape.gradient(score, p).numpy()

    want = grad(load(files["plain"]))
    assert rel(grad(load(files["caffe"], contract=CAFFE_CONTRACT)), want) < 1e-4
    assert rel(grad(load(files["spatial"])), want) < 1e-4


def test_taps_of_a_channels_last_graph(files, pixels):
    model = load(files["caffe"], contract=CAFFE_CONTRACT)
    raw = caffe_input(pixels)
    assert model.tensor_layouts["input"] == "NHWC" and model.tensor_layouts["c1_t"] == "NHWC"
    # the input tapped channels-last is the input itself (it was transposed wrongly before)
    nhwc = model(raw, taps=["input", "c1_t", "r1"], layout="NHWC")
    np.testing.assert_array_equal(nhwc["input"].numpy(), raw)
    onnx_order = model(raw, taps=["c1_t", "r1"])  # the graph's own order
    np.testing.assert_array_equal(nhwc["c1_t"].numpy(), onnx_order["c1_t"].numpy())
    np.testing.assert_array_equal(nhwc["r1"].numpy(),
                                  np.transpose(onnx_order["r1"].numpy(), (0, 2, 3, 1)))
    nchw = model(raw, taps=["input", "c1_t"], layout="NCHW")
    assert nchw["input"].shape == (3, 3, 16, 16) and nchw["c1_t"].shape == (3, 6, 16, 16)
    # the view's taps are channels-first, as techniques index channels on axis 1
    view = model.with_contract()
    mean, std = view.preprocessing
    taps = view(imgs.normalize(pixels, mean, std), taps=["c1_t"])
    assert rel(taps["c1_t"].numpy(), nchw["c1_t"].numpy()) < 1e-6


def test_freeze_through_the_contract(files, pixels):
    view = load(files["caffe"], contract=CAFFE_CONTRACT).with_contract()
    mean, std = view.preprocessing
    x = imgs.normalize(pixels, mean, std)
    frozen = view.freeze((3, 3, 16, 16))
    assert rel(frozen(x).numpy(), view(x).numpy()) < 1e-6


def test_describe_names_every_field_and_its_source(files):
    text = load(files["caffe"], contract=CAFFE_CONTRACT).contract.describe()
    for word in ("layout", "NHWC", "BGR", "override", "graph", "probabilities", "fc"):
        assert word in text


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, message", [
    ({"layout": "NHWC"}, "graph's input .* is NCHW.*--layout nchw"),
    ({"mean": [0.1, 0.2]}, "mean has 2 values and std 3"),
    ({"mean": [0.1, 0.2], "std": [1, 1]}, "declares 2 channel.*has 3 on axis 1"),
    ({"std": [1, 0, 1]}, "std must be > 0"),
    ({"layout": "NCWH"}, "layout must be NCHW or NHWC"),
    ({"scale": "big"}, "scale must be numbers"),
    ({"output": "scores"}, "output must be one of"),
    ({"logits": "nope"}, "logits tensor 'nope' is not in the graph"),
    ({"input_size": [32, 32]}, "input_size .* differs from the graph's fixed input"),
    ({"colour": "RGB"}, "unknown field 'colour'"),
])
def test_a_contract_that_contradicts_the_graph_is_refused(files, overrides, message):
    with pytest.raises(ContractError, match=message):
        load(files["plain"], contract=overrides)


def test_a_one_channel_graph_takes_rgb_through_its_contract(weights, tmp_path):
    proto = make_model([helper.make_node("Conv", ["input", "w"], ["output"])],
                       {"input": np.zeros((1, 1, 8, 8), np.float32)}, ["output"],
                       {"w": np.ones((2, 1, 3, 3), np.float32)})
    model = load(proto, contract={"mean": [0.5], "std": [0.25]})
    assert model.contract.channels == 1 and model.contract.grayscale
    # techniques still work on RGB pixels: the view turns them to luma inside the graph
    view = model.with_contract()
    assert view.inputs[0].shape == (1, None, 8, 8) and view.preprocessing == ((0.5,) * 3,
                                                                             (0.25,) * 3)
    rgb = np.random.default_rng(0).uniform(0, 1, (1, 3, 8, 8)).astype(np.float32)
    gray = np.tensordot(rgb, [0.299, 0.587, 0.114], axes=([1], [0]))[:, None]
    want = model(((gray - 0.5) / 0.25).astype(np.float32)).numpy()
    got = view(imgs.normalize(rgb, *view.preprocessing)).numpy()
    assert rel(got, want) < 1e-5
    one = view(((gray - 0.5) / 0.25).astype(np.float32)).numpy()  # or its one channel
    np.testing.assert_array_equal(one, want)
    with pytest.raises(ContractError, match="declares 3 channel.*has 1 on axis 1"):
        load(proto, contract={"mean": [0.5, 0.5, 0.5]})


@pytest.mark.parametrize("text, suffix, message", [
    ("{not json", ".json", "is not valid JSON"),
    ("layout: [unclosed", ".yaml", "is not valid YAML"),
    ("[1, 2]", ".json", "must hold a mapping"),
])
def test_an_unreadable_sidecar_is_refused(files, tmp_path, text, suffix, message):
    path = tmp_path / "m.onnx"
    path.write_bytes(files["plain"].read_bytes())
    (tmp_path / f"m.contract{suffix}").write_text(text)
    with pytest.raises(ContractError, match=message):
        load(path)


def test_a_missing_contract_file_is_refused(files, tmp_path):
    with pytest.raises(ContractError, match="cannot read the contract file"):
        load(files["plain"], contract=str(tmp_path / "nothing.json"))


def test_a_feature_extractor_asked_for_a_class_score(weights):
    proto = make_model([helper.make_node("Conv", ["input", "w1", "b1"], ["output"])],
                       {"input": np.zeros((1, 3, 8, 8), np.float32)}, ["output"],
                       {"w1": weights["w1"], "b1": weights["b1"]})
    view = load(proto).with_contract()
    assert view.contract.output == "features"
    with pytest.raises(ContractError, match="no classifier output.*--output logits"):
        view.logits(np.zeros((1, 3, 8, 8), np.float32))


def test_the_view_refuses_channels_last_input_with_the_fix(files):
    view = load(files["caffe"], contract=CAFFE_CONTRACT).with_contract()
    with pytest.raises(ValueError, match="looks channels-last.*NCHW RGB"):
        view(np.zeros((1, 16, 16, 3), np.float32))


def test_contract_fields_normalise():
    c = ModelContract(layout="nhwc", channel_order="bgr", mean=[1], std=2, input_size="32x48")
    assert (c.layout, c.channel_order, c.mean, c.std, c.input_size) == \
        ("NHWC", "BGR", (1.0, 1.0, 1.0), (2.0, 2.0, 2.0), (32, 48))
    assert c.with_(scale=255).sources["scale"] == "override"
    assert ModelContract.from_dict(c.to_dict()) == c


def test_model_without_image_input_still_loads():
    proto = make_model([helper.make_node("Relu", ["x"], ["y"])],
                       {"x": np.zeros((2, 4), np.float32)}, ["y"])
    model = load(proto)
    x = np.array([[-1, 2, -3, 4], [5, -6, 7, -8]], np.float32)
    np.testing.assert_array_equal(contract_model(model)(x).numpy(), np.maximum(x, 0))


def test_sidecar_class_names_from_a_file(files, tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(files["plain"].read_bytes())
    (tmp_path / "names.txt").write_text("a\nb\nc\nd\ne\n")
    (tmp_path / "m.contract.json").write_text(json.dumps({"class_names": "names.txt"}))
    assert load(path).contract.class_names == ("a", "b", "c", "d", "e")
