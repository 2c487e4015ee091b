"""The named builds (``CATALOGUE``, ``SMALL``), Keras/PyTorch twins, and building,
saving and loading a file with its ``Truth`` record."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

from .caffe import caffe_style
from .keras_apps import keras_application, keras_export, randomise_keras
from .torchvision_models import torch_export, torchvision_model
from .truth import FORMAT, Truth, height_width, param_count


# --------------------------------------------------------------------------- twins
def keras_torch_twins(input_size: int | Sequence[int] = 32, num_classes: int = 10, seed: int = 0
                      ) -> tuple[tuple[onnx.ModelProto, Truth], tuple[onnx.ModelProto, Truth]]:
    """One small CNN twice, with the same weights: as Keras exports it and as PyTorch does.

    Conv3x3(16, same)-BN-ReLU-MaxPool2-Conv3x3(32, same)-ReLU-GAP-Dense, built in Keras (NHWC
    input, Softmax head, BN folded by TensorFlow, Keras "tf" preprocessing: 0..255 pixels
    over 127.5 minus 1) and in PyTorch with the Keras weights copied (kernels HWIO -> OIHW,
    Dense (in, out) -> Linear (out, in); NCHW input in [0, 1] normalised by mean 0.5, std 0.5;
    logits out). Both files compute the same function of the pixels, to float rounding: what
    a technique returns through each file's contract must agree.

    Example:
        >>> (k, kt), (t, tt) = keras_torch_twins()                          # doctest: +SKIP
        >>> kt.layout, tt.layout, kt.output, tt.output                       # doctest: +SKIP
        ('NHWC', 'NCHW', 'probabilities', 'logits')
    """
    import os as _os

    _os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers

    from ..triton_guard import guard_triton

    h, w = height_width(input_size)
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    km = keras.Sequential([
        keras.Input((h, w, 3)),
        layers.Conv2D(16, 3, padding="same", name="conv1"),
        layers.BatchNormalization(epsilon=1e-3, name="bn1"),
        layers.ReLU(name="relu1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2D(32, 3, padding="same", name="conv2"),
        layers.ReLU(name="relu2"),
        layers.GlobalAveragePooling2D(name="gap"),
        layers.Dense(num_classes, activation="softmax", name="fc"),
    ], name="twin")
    randomise_keras(km, seed)
    keras_proto = keras_export(km, (None, h, w, 3))
    keras_truth = Truth("keras", "NHWC", "RGB", 255.0, (127.5,) * 3, (127.5,) * 3, (h, w),
                        "probabilities", num_classes, True, "twin of the PyTorch file")

    guard_triton()
    import torch
    from torch import nn

    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16, eps=1e-3), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes))
    get = {layer.name: layer.get_weights() for layer in km.layers}
    with torch.no_grad():
        for idx, name in ((0, "conv1"), (4, "conv2")):
            kernel, bias = get[name]
            net[idx].weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
            net[idx].bias.copy_(torch.from_numpy(bias))
        gamma, beta, mean, var = get["bn1"]
        for t, v in ((net[1].weight, gamma), (net[1].bias, beta), (net[1].running_mean, mean),
                     (net[1].running_var, var)):
            t.copy_(torch.from_numpy(v))
        kernel, bias = get["fc"]
        net[8].weight.copy_(torch.from_numpy(kernel.T.copy()))
        net[8].bias.copy_(torch.from_numpy(bias))
    torch_proto = torch_export(net, h, w, opset=17, legacy=False, batch=None)
    torch_truth = Truth("torchvision", "NCHW", "RGB", 1.0, (0.5,) * 3, (0.5,) * 3, (h, w),
                        "logits", num_classes, True, "twin of the Keras file")
    return (keras_proto, keras_truth), (torch_proto, torch_truth)


# --------------------------------------------------------------------------- catalogue
@dataclass(frozen=True)
class Config:
    """One named build: the builder's short name and its keyword arguments."""

    builder: str
    kwargs: dict[str, Any]


BUILDERS: dict[str, Callable[..., tuple[onnx.ModelProto, Truth]]] = {
    "keras": keras_application,
    "torchvision": torchvision_model,
    "caffe": caffe_style,
}

CATALOGUE: dict[str, Config] = {
    "keras_mobilenetv2": Config("keras", {"arch": "MobileNetV2"}),
    "keras_resnet50": Config("keras", {"arch": "ResNet50"}),
    "keras_vgg16": Config("keras", {"arch": "VGG16"}),
    "tv_mobilenet_v3_small": Config("torchvision", {"arch": "mobilenet_v3_small"}),
    "tv_shufflenet_v2": Config("torchvision", {"arch": "shufflenet_v2_x1_0"}),
    "tv_squeezenet1_1": Config("torchvision", {"arch": "squeezenet1_1"}),
    "tv_densenet121": Config("torchvision", {"arch": "densenet121"}),
    "tv_resnet50": Config("torchvision", {"arch": "resnet50"}),
    "tv_squeezenet1_1_legacy": Config("torchvision", {"arch": "squeezenet1_1", "legacy": True}),
    "tv_resnet50_legacy": Config("torchvision", {"arch": "resnet50", "legacy": True}),
    "tv_densenet121_legacy": Config("torchvision", {"arch": "densenet121", "legacy": True,
                                                    "head": "spatial_logits"}),
    "caffe_resnet18": Config("caffe", {"base": "resnet18"}),
}

_TINY = {"input_size": 32, "num_classes": 10}
SMALL: dict[str, Config] = {
    "keras_mobilenetv2": Config("keras", {"arch": "MobileNetV2", **_TINY, "alpha": 0.35}),
    "keras_resnet50": Config("keras", {"arch": "ResNet50", **_TINY, "width": 8,
                                       "blocks": (1, 1, 1, 1)}),
    "keras_vgg16": Config("keras", {"arch": "VGG16", **_TINY, "width": 8, "fc_units": 64}),
    "tv_mobilenet_v3_small": Config("torchvision", {"arch": "mobilenet_v3_small", **_TINY,
                                                    "width_mult": 0.5}),
    "tv_shufflenet_v2": Config("torchvision", {"arch": "shufflenet_v2_x0_5", **_TINY}),
    "tv_squeezenet1_1": Config("torchvision", {"arch": "squeezenet1_1", **_TINY}),
    "tv_densenet121": Config("torchvision", {"arch": "densenet_small", **_TINY}),
    "tv_resnet50": Config("torchvision", {"arch": "resnet_small", **_TINY}),
    "tv_squeezenet1_1_legacy": Config("torchvision", {"arch": "squeezenet1_1", **_TINY,
                                                      "legacy": True}),
    "tv_resnet50_legacy": Config("torchvision", {"arch": "resnet_small", **_TINY,
                                                 "legacy": True}),
    "tv_densenet121_legacy": Config("torchvision", {"arch": "densenet_small", **_TINY,
                                                    "legacy": True, "head": "spatial_logits"}),
    "caffe_resnet18": Config("caffe", {"base": "resnet20_cifar"}),
}


def config(name: str, small: bool = False) -> Config:
    """The named configuration (``CATALOGUE`` or, with ``small``, ``SMALL``)."""
    table = SMALL if small else CATALOGUE
    if name not in table:
        raise KeyError(f"unknown third-party model {name!r}: expected one of {', '.join(table)}")
    return table[name]


def build(name: str, small: bool = False, **overrides: Any) -> tuple[onnx.ModelProto, Truth]:
    """Build a named configuration (``overrides`` replace its keyword arguments), or call a
    builder by its short name (``"keras"``, ``"torchvision"``, ``"caffe"``) with ``overrides``.

    Example:
        >>> proto, truth = build("caffe_resnet18", small=True)              # doctest: +SKIP
        >>> proto, truth = build("torchvision", arch="densenet_small", input_size=32,
        ...                      num_classes=10)                             # doctest: +SKIP
    """
    if name in BUILDERS:
        return BUILDERS[name](**overrides)
    cfg = config(name, small)
    return BUILDERS[cfg.builder](**{**cfg.kwargs, **overrides})


def _params_record(name: str, small: bool) -> dict[str, Any]:
    cfg = config(name, small)
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.kwargs.items()}
    return {"format": FORMAT, "name": name, "small": small, "builder": cfg.builder,
            "kwargs": kwargs}


def truth_path(onnx_path: str | os.PathLike[str]) -> Path:
    """Where :func:`save` records a file's Truth: ``<name>.truth.json`` beside it."""
    p = Path(onnx_path)
    return p.with_name(p.stem + ".truth.json")


def load_truth(onnx_path: str | os.PathLike[str]) -> Truth:
    """The Truth recorded beside a file written by :func:`save`."""
    with open(truth_path(onnx_path), encoding="utf-8") as fh:
        return Truth.from_dict(json.load(fh)["truth"])


def save(name: str, folder: str | os.PathLike[str], small: bool = False) -> Path:
    """Write ``<folder>/<name>.onnx`` (and ``<name>.truth.json``); returns the ONNX path.

    The JSON holds the Truth, the build parameters, the build time and the file's sha256:
    when both match, the file is not built again.

    Example:
        >>> save("tv_squeezenet1_1", "/tmp/tp", small=True).name         # doctest: +SKIP
        'tv_squeezenet1_1.onnx'
    """
    from ..cache import atomic_write, sha256_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path, record_path = folder / f"{name}.onnx", truth_path(folder / f"{name}.onnx")
    params = _params_record(name, small)
    if path.is_file() and record_path.is_file():
        try:
            with open(record_path, encoding="utf-8") as fh:
                record = json.load(fh)
            if record.get("params") == params and record.get("sha256") == sha256_file(path):
                return path
        except (OSError, ValueError):
            pass
    start = time.perf_counter()
    proto, truth = build(name, small)
    seconds = time.perf_counter() - start
    data = proto.SerializeToString()
    atomic_write(path, lambda fh: fh.write(data))
    record = {"params": params, "truth": truth.to_dict(), "sha256": sha256_file(path),
              "build_seconds": round(seconds, 2), "bytes": len(data),
              "params_count": param_count(proto)}
    text = json.dumps(record, indent=1, sort_keys=True).encode()
    atomic_write(record_path, lambda fh: fh.write(text))
    return path
