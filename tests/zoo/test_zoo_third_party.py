"""The zoo's third-party-style models (model_zoo.third_party files: Keras NHWC with a Softmax
head, torchvision exports, a Caffe-style wrapper): the model contract read from the zoo file,
and the contract's pixel mapping against onnxruntime fed the way the file's users feed it."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import model_zoo
from model_zoo.third_party import Truth

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# What each file wants, written out here (not read from the registry): layout, channel order,
# scale, mean, std (model units and channel order), output kind, working (mean, std) in RGB
# pixel units
EXPECTED = {
    "mobilenet_v3_small": ("NCHW", "RGB", 1.0, IMAGENET_MEAN, IMAGENET_STD, "logits",
                           (IMAGENET_MEAN, IMAGENET_STD)),
    "squeezenet1_1": ("NCHW", "RGB", 1.0, IMAGENET_MEAN, IMAGENET_STD, "logits",
                      (IMAGENET_MEAN, IMAGENET_STD)),
    "keras_mobilenetv2": ("NHWC", "RGB", 255.0, (127.5,) * 3, (127.5,) * 3, "probabilities",
                          ((0.5,) * 3, (0.5,) * 3)),
    "caffe_resnet18": ("NHWC", "BGR", 255.0, (103.53, 116.28, 123.675), (1.0,) * 3,
                       "probabilities", (IMAGENET_MEAN, IMAGENET_STD)),
}
METADATA_FIELDS = ("layout", "channel_order", "scale", "mean", "std", "input_size", "output",
                   "class_names")

pytestmark = pytest.mark.usefixtures("zoo_cache")


@pytest.fixture(scope="module")
def models():
    """name -> (ONNX path, imported TFModel), each loaded once."""
    from converters import onnx_to_tf

    cache = {}

    def get(name):
        if name not in cache:
            path = model_zoo.load(name)
            cache[name] = (path, onnx_to_tf.load(path))
        return cache[name]

    return get


def _softmax_input(path) -> str | None:
    graph = onnx.load(str(path), load_external_data=False).graph
    last = next(n for n in graph.node if graph.output[0].name in n.output)
    return last.input[0] if last.op_type == "Softmax" else None


def test_all_four_are_in_the_zoo():
    names = [n for n in model_zoo.available()
             if model_zoo.registry.get_spec(n).backend == "third_party"]
    assert names == list(EXPECTED)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_contract_read_from_zoo_file(models, name):
    layout, order, scale, mean, std, output, working = EXPECTED[name]
    path, model = models(name)
    victim = model.with_contract()
    c = victim.contract
    assert (c.layout, c.channel_order, c.scale, c.output) == (layout, order, scale, output)
    np.testing.assert_allclose(c.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(c.std, std, rtol=1e-12)
    assert c.input_size == (224, 224)
    assert c.class_names == model_zoo.registry.imagenet_class_names()
    logits = _softmax_input(path)
    assert (logits is None) == (output == "logits")
    assert c.logits == logits == (model.aliases["logits"] if logits else None)
    # every field comes from the file's metadata (tfmi.contract + model_zoo.*), none assumed
    assert {k: c.sources[k] for k in METADATA_FIELDS} == dict.fromkeys(METADATA_FIELDS,
                                                                        "metadata")
    assert c.sources["logits"] == ("metadata" if logits else "default")
    meta = json.loads(model.metadata["tfmi.contract"])
    assert meta["layout"] == layout and meta.get("logits") == logits
    # the working normalisation is the registry's preprocessing
    info = model_zoo.info(name)
    np.testing.assert_allclose(victim.preprocessing, working, rtol=1e-12)
    np.testing.assert_allclose(victim.preprocessing, (info.preprocessing.mean,
                                                      info.preprocessing.std), rtol=1e-12)
    assert info.input_shape == (1, 3, 224, 224) and victim.input_shape[1:] == (3, 224, 224)
    text = c.describe()
    assert f"layout        {layout}  [metadata]" in text
    assert f"output        {output}  [metadata]" in text


@pytest.mark.parametrize("name", list(EXPECTED))
def test_contract_maps_pixels(models, name):
    """victim(normalize(p)) are logits whose softmax is onnxruntime's output (its softmax for
    a logits file) on the input the file's users would compute from the same pixels."""
    import onnxruntime as ort

    from tf_impl import images as imgs

    layout, order, scale, mean, std, output, _ = EXPECTED[name]
    path, model = models(name)
    victim = model.with_contract()
    pixels = np.random.default_rng(1).uniform(0, 1, (2, 3, 224, 224)).astype(np.float32)
    logits = np.asarray(victim(imgs.normalize(pixels, *victim.preprocessing), compiled=False),
                        np.float64)
    assert logits.shape == (2, 1000)
    truth = Truth("zoo", layout, order, scale, mean, std, (224, 224), output, 1000, True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: truth.model_input(pixels)})[0]
    ref = ref.astype(np.float64)

    def softmax(z):
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    if output == "logits":
        np.testing.assert_allclose(logits, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
        ref = softmax(ref)
    got = softmax(logits)
    assert np.max(np.abs(got - ref)) <= 1e-5 * np.max(np.abs(ref))
    # log-softmax consistent: the logits are the Softmax's input up to a per-row constant
    shift = logits - np.log(ref)
    assert np.ptp(shift, axis=1).max() <= 1e-4
