"""breaching (Geiping et al., ``breaching==0.1.2``) as the PyTorch anchor for gradient inversion:
its attacks run on the onnx2torch copy of the same ONNX file, on the same shared gradient.

The field's reference hyper-parameters are breaching's own attack configurations
(``invertinggradients``, ``seethroughgradients``), read from the installed package
(:func:`attack_config`); nothing here restates them. What breaching needs from a "user" and a
"server" is built from our objects by one small adapter:

- :func:`breaching_module`: the onnx2torch module, with one change. breaching copies the
  server's buffers into its model after casting them to the attack's float dtype; onnx2torch
  keeps integer constants (a Slice's end of 2**63 - 1) as buffers, and the cast turns that
  end negative, so every slice comes back empty. The integer buffers are held as plain
  attributes instead: ``module.buffers()`` is then the BatchNorm running statistics only.
- :func:`payload`: the server payload (parameters, buffers, the data's shape, mean and std)
  and the user's shared data (the gradients in the module's parameter order, the labels),
  from a :class:`tf_impl.gradient_inversion.victim.SharedGradient` keyed by ONNX
  initializer name (``converters.onnx_to_torch.initializer_parameters`` maps the names).
  ``bn_mode="eval"`` sends the running statistics (breaching's model is then in eval mode);
  ``"train"`` sends none, and breaching runs its model in train mode (batch statistics).
- :func:`reconstruct`: one attack, labels given, ``iterations`` steps; the reconstruction in
  pixels [0, 1] (breaching optimises inside the normalisation).

breaching's loss is ``torch.nn.CrossEntropyLoss()`` (mean over the batch): the shared gradient
must have ``reduction="mean"``.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..onnx_to_torch import initializer_parameters, load

__all__ = ["ATTACKS", "BreachingRun", "attack_config", "breaching_module", "payload",
           "reconstruct"]

ATTACKS = ("invertinggradients", "seethroughgradients")


def _breaching():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hydra/omegaconf deprecation chatter at import
        import breaching
    logging.getLogger("breaching").setLevel(logging.WARNING)
    return breaching


def attack_config(attack: str, iterations: int | None = None, **optim):
    """breaching's configuration of ``attack`` (its ``attack/<attack>.yaml``), with the
    iteration budget and any ``optim`` entries replaced."""
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}; got {attack!r}")
    breaching = _breaching()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cfg = breaching.get_config(overrides=[f"attack={attack}"]).attack
    if iterations is not None:
        cfg.optim.max_iterations = int(iterations)
        cfg.optim.callback = max(1, int(iterations) // 10)
    for key, value in optim.items():
        cfg.optim[key] = value
    return cfg


def breaching_module(path: str | os.PathLike[str]) -> torch.nn.Module:
    """The onnx2torch module of ``path`` with its integer buffers held as plain attributes
    (see the module docstring)."""
    module = load(path)
    for sub in module.modules():
        for name, buf in list(sub._buffers.items()):
            if buf is not None and not buf.is_floating_point():
                del sub._buffers[name]
                object.__setattr__(sub, name, buf)
    return module


def payload(module: torch.nn.Module, path, shared, labels, *, mean, std, image_shape,
            num_classes: int):
    """(server_payload, shared_data) in breaching's format for ``shared`` (a SharedGradient)."""
    from omegaconf import OmegaConf

    if shared.reduction != "mean":
        raise ValueError("breaching's loss is the mean cross-entropy over the batch; compute the "
                         "shared gradient with reduction='mean'")
    by_param = {id(p): name for name, p in initializer_parameters(module, path).items()}
    grads = []
    for param in module.parameters():
        name = by_param.get(id(param))
        if name is None or name not in shared.grads:
            raise ValueError(f"no shared gradient for a parameter of shape {tuple(param.shape)} "
                             f"(ONNX initializer {name!r}); share every weight's gradient")
        g = torch.as_tensor(np.asarray(shared.grads[name], np.float32))
        if g.shape != param.shape:
            raise ValueError(f"shared gradient {name!r} has shape {tuple(g.shape)}, the "
                             f"parameter {tuple(param.shape)}")
        grads.append(g)
    meta = OmegaConf.create({"shape": [int(s) for s in image_shape],
                             "mean": [float(m) for m in mean], "std": [float(s) for s in std],
                             "modality": "vision", "classes": int(num_classes)})
    buffers = ([b.detach().clone() for b in module.buffers()] if shared.bn_mode == "eval"
               else None)
    server = [{"parameters": [p.detach().clone() for p in module.parameters()],
               "buffers": buffers, "metadata": meta}]
    user = [{"gradients": grads, "buffers": None,
             "metadata": {"num_data_points": int(shared.batch_size),
                          "labels": torch.as_tensor(np.asarray(labels), dtype=torch.long),
                          "local_hyperparams": None}}]
    return server, user


@dataclass
class BreachingRun:
    """One breaching attack: the reconstruction in pixels [0, 1] (N, C, H, W), its labels, the
    configuration that ran and the wall-clock seconds."""

    images: np.ndarray
    labels: np.ndarray
    attack: str
    iterations: int
    seconds: float

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(1, self.iterations)


def reconstruct(path, shared, labels, *, attack: str = "invertinggradients",
                iterations: int | None = None, mean, std, image_shape=(3, 32, 32),
                num_classes: int = 10, seed: int = 0, **optim) -> BreachingRun:
    """Run breaching's ``attack`` on the onnx2torch copy of ``path`` against ``shared``, the
    labels given (breaching's budget unless ``iterations`` is set)."""
    breaching = _breaching()
    cfg = attack_config(attack, iterations, **optim)
    module = breaching_module(path)
    server, user = payload(module, path, shared, labels, mean=mean, std=std,
                           image_shape=image_shape, num_classes=num_classes)
    setup = {"dtype": torch.float, "device": torch.device("cpu")}
    torch.manual_seed(seed)
    attacker = breaching.attacks.prepare_attack(module, torch.nn.CrossEntropyLoss(), cfg, setup)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec, _ = attacker.reconstruct(server, user, {}, dryrun=False)
    seconds = time.perf_counter() - t0
    dm = torch.as_tensor(mean, dtype=torch.float)[None, :, None, None]
    ds = torch.as_tensor(std, dtype=torch.float)[None, :, None, None]
    pixels = (rec["data"].detach() * ds + dm).clamp(0, 1).numpy()
    return BreachingRun(pixels, rec["labels"].detach().numpy(), attack,
                        int(cfg.optim.max_iterations), seconds)
