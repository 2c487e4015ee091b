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

import contextlib
import copy
import functools
import io
import logging
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..onnx_to_torch import initializer_parameters, load

__all__ = ["ATTACKS", "LABEL_STRATEGIES", "BreachingRun", "attack_config", "breaching_module",
           "payload", "reconstruct", "restore_labels"]

ATTACKS = ("invertinggradients", "seethroughgradients")
# breaching's label strategies (``attack.label_strategy``) that read the last layer's gradient
LABEL_STRATEGIES = ("bias-corrected", "wainakh-simple", "wainakh-whitebox", "analytic", "yin",
                    "iDLG")


def _breaching():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # hydra/omegaconf deprecation chatter at import
        try:
            import breaching
        except ImportError as err:
            raise ImportError(
                "breaching is not installed (the PyTorch anchor for gradient inversion): "
                "pip install breaching==0.1.2 hydra-core==1.3.8 (both pinned in "
                f"requirements.txt; `make venv` installs them) -- {err}") from None
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


@functools.lru_cache(maxsize=1)
def _base_config():
    """One attack configuration to carry a label strategy (hydra's composition is slow)."""
    return attack_config("invertinggradients")


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


def _class_index_loss(outputs, targets):
    """Mean cross-entropy that also takes class indices held as floats: breaching's
    ``wainakh-whitebox`` builds its dummy labels with the attack's float dtype, which
    ``torch.nn.CrossEntropyLoss`` refuses ("expected target dtype to be Long") on the pinned
    torch; the indices are cast to integers and nothing else changes."""
    if targets.is_floating_point() and targets.dim() == 1:
        targets = targets.long()
    return torch.nn.functional.cross_entropy(outputs, targets)


def restore_labels(strategy: str, weight_grad, bias_grad, num_data_points: int, *,
                   module: torch.nn.Module | None = None, image_shape=None,
                   seed: int = 0) -> np.ndarray:
    """breaching's label strategy ``strategy`` on the last layer's shared gradient.

    ``weight_grad``: (classes, features), PyTorch's Linear orientation; ``bias_grad``:
    (classes,). ``wainakh-whitebox`` also runs ``module`` (the onnx2torch victim, in the
    client's BN mode; its last two parameters must be the classifier's weight and bias) on
    random data of ``image_shape``. Returns ``num_data_points`` labels in breaching's sorted
    order: breaching pads with random labels when a strategy finds fewer, and when its first
    stage finds more negative classes than that, the first ``num_data_points`` are kept.

    ``wainakh-whitebox`` does not run in breaching 0.1.2 on any torch (it differentiates with
    respect to ``weight[class]``, a tensor made after the forward pass, which autograd refuses)
    and its float dummy labels are refused by the pinned torch's cross-entropy:
    :func:`_wainakh_whitebox` transcribes it with those two lines mended.
    """
    if strategy not in LABEL_STRATEGIES:
        raise ValueError(f"strategy must be one of {LABEL_STRATEGIES}; got {strategy!r}")
    _breaching()  # breaching missing: an ImportError that says how to install it
    w = torch.as_tensor(np.asarray(weight_grad, np.float32))
    b = torch.as_tensor(np.asarray(bias_grad, np.float32))
    if w.dim() != 2 or b.shape != (w.shape[0],):
        raise ValueError(f"weight_grad must be (classes, features) and bias_grad (classes,); "
                         f"got {tuple(w.shape)} and {tuple(b.shape)}")
    if strategy == "wainakh-whitebox":
        if module is None or image_shape is None:
            raise ValueError("wainakh-whitebox runs the model: pass module= and image_shape=")
        last = list(module.parameters())[-2:]
        if [tuple(p.shape) for p in last] != [tuple(w.shape), tuple(b.shape)]:
            raise ValueError("the module's last two parameters are not the classifier's "
                             f"weight {tuple(w.shape)} and bias {tuple(b.shape)}")
    if strategy == "wainakh-whitebox":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # onnx2torch's slicing notes, once per forward
            return _wainakh_whitebox(w, int(num_data_points), module, tuple(image_shape),
                                     seed)
    model, attacker = _label_attacker(strategy, module, tuple(w.shape))
    attacker.data_shape = tuple(image_shape) if image_shape is not None else None
    user = [{"gradients": [w, b], "metadata": {"num_data_points": int(num_data_points)}}]
    torch.manual_seed(seed)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        labels = attacker._recover_label_information(user, None, [model])
    return labels.detach().numpy().astype(np.int64)[:num_data_points]


@functools.lru_cache(maxsize=16)
def _label_attacker(strategy: str, module, weight_shape: tuple[int, int]):
    """breaching's attacker for ``strategy`` on ``module`` (a Linear layer of
    ``weight_shape`` when ``None``), built once and reused: a label benchmark asks it
    thousands of times."""
    cfg = copy.deepcopy(_base_config())
    cfg.label_strategy = strategy
    setup = {"dtype": torch.float, "device": torch.device("cpu")}
    model = module if module is not None else torch.nn.Linear(weight_shape[1], weight_shape[0])
    return model, _breaching().attacks.prepare_attack(model, _class_index_loss, cfg, setup)


def _wainakh_whitebox(weight_grad: torch.Tensor, n: int, module, image_shape,
                      seed: int) -> np.ndarray:
    """breaching's ``wainakh-whitebox`` (``_BaseAttacker._recover_label_information``),
    transcribed. The impact m of one sample is estimated from the classifier-weight gradient
    of ``module`` on random data labelled with each class, the offset s of each class from
    random data holding every other class; the recovery stages are breaching's, line for line
    (including its second stage, which lowers the entry of the *last* class after each
    pick). Mended: the offset reads row ``c`` of the whole weight's gradient, and the dummy
    labels are integers."""
    m_impact, s_offset = _whitebox_estimates(module, n, image_shape, seed)
    k = s_offset.shape[0]
    g_i = weight_grad.sum(dim=1).clone()
    labels: list[int] = []
    idx = 0
    for idx in range(k):  # stage 1: classes with a negative row sum
        if g_i[idx] < 0:
            labels.append(idx)
            g_i[idx] -= m_impact
    g_i = g_i - s_offset
    while len(labels) < n:  # stage 2
        labels.append(int(g_i.argmin()))
        g_i[idx] -= m_impact
    return np.sort(np.asarray(labels, np.int64))[:n]


_WHITEBOX: dict = {}


def _whitebox_estimates(module, n: int, image_shape, seed: int):
    """(m, s) of ``wainakh-whitebox`` for ``module`` and batch size ``n``. They depend on the
    model, ``n``, the image shape and the seeded dummy data only, not on the shared gradient,
    so they are computed once per such key (the same numbers a fresh computation gives)."""
    key = (id(module), module.training, n, tuple(image_shape), seed)
    if key in _WHITEBOX:
        return _WHITEBOX[key]
    weight = list(module.parameters())[-2]
    k = weight.shape[0]
    torch.manual_seed(seed)
    m_impact = torch.zeros(())
    for c in range(k):
        fake = torch.randn([n, *image_shape])
        loss = torch.nn.functional.cross_entropy(module(fake), torch.full((n,), c))
        (w_cls,) = torch.autograd.grad(loss, (weight,))
        m_impact = m_impact + w_cls.sum(dim=1).sum() * (1 + 1 / k) / n / k
    s_offset = torch.zeros(k)
    others = torch.arange(k)
    for c in range(k):
        fake = torch.randn([k - 1, *image_shape])
        loss = torch.nn.functional.cross_entropy(module(fake), others[others != c])
        (w_cls,) = torch.autograd.grad(loss, (weight,))
        s_offset[c] += w_cls[c].sum().detach() / (k - 1)
    _WHITEBOX[key] = (m_impact.detach(), s_offset)
    return _WHITEBOX[key]


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
