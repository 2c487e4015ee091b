"""Every zoo model through the cross-check (TF importer vs onnxruntime vs PyTorch), and the
trained CIFAR ResNets' accuracy computed by the imported TF model on real test images."""

from __future__ import annotations

import numpy as np
import pytest

import model_zoo
from converters import onnx_to_tf
from converters.crosscheck import crosscheck
from model_zoo.registry import get_spec

# Small inputs where the architecture allows (dynamic H, W); the torchvision classifiers
# have fixed 224x224 heads.
SMALL = {"vgg16_features": 48, "alexnet_features": 67}
# batch 1 for the big ones (seconds per image at 224x224)
BATCH1 = ("vgg16", "vgg16_bn", "alexnet")
THIRD_PARTY = [n for n in model_zoo.available() if get_spec(n).backend == "third_party"]

def _graph_input(name: str, batch: int) -> np.ndarray:
    """The model's graph input: seeded noise for our own exports, and for a third-party-style
    file its own input (layout, channel order, scale, mean, std) of random pixels in [0, 1]."""
    shape = list(model_zoo.info(name).input_shape)
    shape[0] = batch
    if name in SMALL:
        shape[2] = shape[3] = SMALL[name]
    rng = np.random.default_rng(0)
    contract = get_spec(name).file_contract
    if contract is None:
        return rng.standard_normal(shape).astype(np.float32)
    return contract.model_input(rng.uniform(0.0, 1.0, shape).astype(np.float32))


@pytest.mark.parametrize("name", model_zoo.available())
def test_zoo_model_parity(name):
    batch = 1 if name in BATCH1 or name in THIRD_PARTY else 2
    x = _graph_input(name, batch)
    report = crosscheck(name, x)
    print(report.table())
    assert report.reference == "ok", report.table()
    # (keras_mobilenetv2's ReLU6 = Clip(0, 6) inputs at the kinks are counted like ReLU's)
    assert report.ok, report.table()
    # the output, and behind a final Softmax its input (the logits), to 1e-5
    compared = [r for r in report.rows if r.what.startswith(("forward", "logits"))]
    assert compared and all(r.max_rel <= 1e-5 for r in compared), report.table()
    if name in THIRD_PARTY:
        expected = model_zoo.info(name).layer_aliases["logits"]
        if get_spec(name).file_contract.output == "probabilities":
            assert report.output_kind == "probabilities" and report.logits == expected
            assert any(r.what.startswith("logits") for r in report.rows)
        else:
            assert report.output_kind == "logits" and report.logits is None


@pytest.mark.parametrize(
    "name,expected",
    [
        ("resnet20_cifar", 91.5),
        ("resnet32_cifar", 92.8),
        ("resnet44_cifar", 93.3),
        ("resnet56_cifar", 92.6),
    ],
)
def test_cifar_resnet_accuracy_in_tensorflow(name, expected):
    x, y = model_zoo.data.cifar10("test")
    assert len(y) == 1000
    model = onnx_to_tf.load(model_zoo.load(name))
    preds = np.concatenate(
        [np.argmax(model(x[i : i + 250]).numpy(), axis=1) for i in range(0, len(x), 250)]
    )
    top1 = 100.0 * float(np.mean(preds == y))
    assert abs(top1 - expected) <= 0.5, f"{name}: top-1 {top1:.1f} % vs {expected} %"
