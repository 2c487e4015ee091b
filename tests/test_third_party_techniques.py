"""Every technique's command on victims we did not export, through their contracts.

The files are the small third-party-style builds of ``model_zoo.third_party``: a Caffe-style
wrapper of the trained resnet20_cifar (NHWC input, BGR, 0..255 minus a mean, no-op Cast and
Transpose nodes, a Softmax head), an old-exporter SqueezeNet (opset 9, weights listed as
graph inputs, an opset-7 Dropout that onnx2torch cannot convert, an (N, C, 1, 1) Softmax
output) and a Keras model with its PyTorch twin (the same weights exported NCHW). Each file
gets its contract as a sidecar written from the builder's ground truth, as a user would.

The full matrix (every command on every third-party model, full size) is
``benchmarks/third_party.py``; here, the commands on the two most foreign files, and the
Keras/PyTorch agreement target at 1e-4.
"""

import contextlib
import io
import json

import numpy as np
import onnx
import pytest
from compare import rel_error as rel
from onnx_builders import run_ort

from converters import crosscheck, onnx_to_tf
from model_zoo import data
from model_zoo import third_party as tp
from tf_impl.cli import main as cli
from tf_impl.feature_inversion import FeatureInversionConfig, invert_features
from tf_impl.visualization import saliency as sal


def sidecar(path, truth) -> None:
    """What a user writes next to a file they were handed: how it wants its pixels."""
    path.with_name(path.stem + ".contract.json").write_text(json.dumps({
        "layout": truth.layout, "channel_order": truth.channel_order, "scale": truth.scale,
        "mean": list(truth.mean), "std": list(truth.std)}))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("third_party")
    out = {}
    for name in ("caffe_resnet18", "tv_squeezenet1_1_legacy"):
        path = tp.save(name, folder, small=True)
        truth = tp.load_truth(path)
        sidecar(path, truth)
        out[name] = (path, truth)
    return out


def run(argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli(argv)
    return code, err.getvalue()


def first_activation(path) -> str:
    model = onnx_to_tf.load(path)
    return next(n.outputs[0] for n in model.nodes if n.op_type in ("Relu", "Clip"))


def commands(path, layer):
    """Each command at toy settings (32x32 files, CIFAR-10 images)."""
    return {
        "feature-inversion": ["--layer", layer, "--steps", "3", "--size", "32", "--no-lpips"],
        "gradient-inversion": ["--batch", "1", "--steps", "2", "--labels", "true",
                               "--no-compile", "--seeds", "1"],
        "saliency": ["--segment"],
        "guided-backprop": [],
        "occlusion": ["--window", "8", "--stride", "8"],
        "class-viz": ["--class", "1", "--steps", "2", "--no-compile"],
        "adversarial": ["--n", "1", "--steps", "2", "--no-compile"],
        "deepdream": ["--layer", layer, "--steps", "2", "--octaves", "1", "--size", "32"],
        "integrated-gradients": ["--steps", "4"],
        "idgi": ["--steps", "4"],
        "fullgrad": [],
        "attribution-eval": ["--n", "2", "--methods", "ig,fullgrad", "--steps", "4",
                             "--all-images"],
    }


def test_contract_of_the_caffe_file_is_read_from_graph_and_sidecar(files):
    path, truth = files["caffe_resnet18"]
    c = onnx_to_tf.load(path).contract
    assert (c.layout, c.channel_order, c.scale, c.mean) == \
        (truth.layout, truth.channel_order, truth.scale, truth.mean)
    assert c.output == "probabilities" and c.logits and c.sources["output"] == "graph"
    assert c.sources["channel_order"].startswith("sidecar")


# guided backprop, IDGI and the insertion/deletion table take the same paths through the
# contract as saliency, IG and FullGrad; benchmarks/third_party.py runs them on every file
SKIPPED_HERE = ("guided-backprop", "idgi", "attribution-eval")


def test_the_commands_on_the_caffe_style_file(files, tmp_path):
    path, truth = files["caffe_resnet18"]
    layer = first_activation(path)
    for command, extra in commands(path, layer).items():
        if command in SKIPPED_HERE:
            continue
        out = tmp_path / command
        code, err = run([command, "--model", str(path), "--out", str(out), "--quiet", *extra])
        assert code == 0, f"{command}: {err[-2000:]}"
        assert (out / "result.json").is_file() and list(out.glob("*.png")), command
    # probabilities in reports come from the contract: the file's own Softmax output, never
    # a softmax of it (which would put the trained model's 1.0 at about 0.23)
    report = json.loads((tmp_path / "saliency" / "result.json").read_text())
    pixels, _ = data.cifar10("test", n=1, normalize=False)
    ref = run_ort(onnx.load(path), {"data": truth.model_input(pixels)})[0][0]
    assert report["predicted_class"] == int(np.argmax(ref))
    assert abs(report["probability"] - float(ref.max())) < 1e-5
    gi = json.loads((tmp_path / "gradient-inversion" / "result.json").read_text())
    assert gi["restored_labels"] == gi["true_labels"]  # from the FC gradient behind Softmax


def test_old_exporter_squeezenet(files, tmp_path):
    path, truth = files["tv_squeezenet1_1_legacy"]
    c = onnx_to_tf.load(path).contract
    assert c.output == "probabilities" and c.logits  # the 4-D Softmax's input
    for command in ("saliency", "fullgrad", "occlusion"):
        out = tmp_path / command
        code, err = run([command, "--model", str(path), "--out", str(out), "--quiet",
                         *commands(path, "")[command]])
        assert code == 0, f"{command}: {err[-2000:]}"
    # no fully connected layer: gradient inversion says so in one line
    code, err = run(["gradient-inversion", "--model", str(path), "--out",
                     str(tmp_path / "gi"), "--steps", "1"])
    assert code == 2 and "fully connected" in err and "Traceback" not in err
    assert not (tmp_path / "gi" / "result.json").exists()
    # onnx2torch cannot convert an opset-7 Dropout: the TF vs onnxruntime rows still run
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        code = crosscheck.main([str(path)])
    text = printed.getvalue()
    assert code == 3, text
    assert "forward TF vs onnxruntime" in text and "unavailable" in text


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    folder = tmp_path_factory.mktemp("twins")
    (k, kt), (t, tt) = tp.keras_torch_twins()
    paths = []
    for proto, truth, name in ((k, kt, "keras"), (t, tt, "torch")):
        path = folder / f"{name}.onnx"
        onnx.save(proto, path)
        sidecar(path, truth)
        paths.append(path)
    return [onnx_to_tf.load(p).with_contract() for p in paths]


def test_keras_and_pytorch_twins_agree(twins):
    """Target: a saliency map and a feature inversion of the Keras export (NHWC, Softmax head)
    match those of the NCHW PyTorch export of the same weights to 1e-4 relative."""
    keras, torch = twins
    assert keras.contract.layout == "NHWC" and keras.contract.output == "probabilities"
    assert torch.contract.layout == "NCHW" and torch.contract.output == "logits"
    pixels = np.random.default_rng(0).uniform(0, 1, (1, 3, 32, 32)).astype(np.float32)
    a, b = sal.saliency(keras, pixels), sal.saliency(torch, pixels)
    assert a.target == b.target and rel(a.map, b.map) < 1e-4
    layer_k = next(n.outputs[0] for n in keras.nodes if n.op_type == "Relu")
    layer_t = next(n.outputs[0] for n in torch.nodes if n.op_type == "Relu")
    cfg = FeatureInversionConfig().with_(steps=20, progress=False)
    fa = invert_features(keras, pixels, [layer_k], cfg, lpips=False)
    fb = invert_features(torch, pixels, [layer_t], cfg, lpips=False)
    assert rel(fa.image, fb.image) < 1e-4
    assert abs(fa.metrics["psnr"] - fb.metrics["psnr"]) < 1e-3


def test_a_caffe_conversion_gives_what_the_network_itself_gives(files):
    """The contract's promise: techniques see pixels, so the Caffe-style wrapper (NHWC, BGR,
    0..255 minus a mean, the std folded into its first convolution) of resnet20_cifar explains
    and inverts like resnet20_cifar itself, to float rounding."""
    import model_zoo

    path, _ = files["caffe_resnet18"]
    caffe = onnx_to_tf.load(path).with_contract()
    plain = onnx_to_tf.load(model_zoo.load("resnet20_cifar")).with_contract()
    np.testing.assert_allclose(caffe.preprocessing, plain.preprocessing, rtol=1e-5)
    pixels, _ = data.cifar10("test", n=2, normalize=False)
    a, b = sal.saliency(caffe, pixels), sal.saliency(plain, pixels)
    assert list(a.target) == list(b.target) and rel(a.map, b.map) < 1e-4
    layer_c = next(n.outputs[0] for n in caffe.nodes if n.op_type == "Relu")
    layer_p = next(n.outputs[0] for n in plain.nodes if n.op_type == "Relu")
    cfg = FeatureInversionConfig().with_(steps=20, progress=False)
    fa = invert_features(caffe, pixels[:1], [layer_c], cfg, lpips=False)
    fb = invert_features(plain, pixels[:1], [layer_p], cfg, lpips=False)
    assert rel(fa.image, fb.image) < 1e-4

