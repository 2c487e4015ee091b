"""Every zoo model through the cross-check (TF importer vs onnxruntime vs PyTorch), and the
trained CIFAR ResNets' accuracy computed by the imported TF model on real test images."""

from __future__ import annotations

import numpy as np
import pytest

import model_zoo
from converters import onnx_to_tf
from converters.crosscheck import crosscheck

# Small inputs where the architecture allows (dynamic H, W); the torchvision classifiers
# have fixed 224x224 heads.
SMALL = {"vgg16_features": 48, "alexnet_features": 67}


@pytest.mark.parametrize("name", model_zoo.available())
def test_zoo_model_parity(name):
    shape = list(model_zoo.info(name).input_shape)
    shape[0] = 2 if name not in ("vgg16", "vgg16_bn", "alexnet") else 1
    if name in SMALL:
        shape[2] = shape[3] = SMALL[name]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    report = crosscheck(name, x)
    print(report.table())
    assert report.ok, report.table()
    forward = [r for r in report.rows if r.what.startswith("forward")]
    assert all(r.max_rel <= 1e-5 for r in forward)


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
