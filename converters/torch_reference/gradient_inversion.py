"""The reference for ``tf_impl.gradient_inversion``: the client's gradient and GradInversion in
plain PyTorch, on the onnx2torch copy of the same ONNX file.

- :func:`client_gradient_torch`: the weight gradient a federated-learning client shares
  (``tf_impl.gradient_inversion.victim.client_gradient``), keyed by ONNX initializer name.
- :class:`GradientMatcherTorch`: the attacker's gradient at dummy data and its L2 or cosine
  distance to the shared one (``tf_impl.gradient_inversion.matching.GradientMatcher``), with
  the BatchNorm inputs of the same forward pass; soft labels (DLG) are logits, softmaxed.
- :func:`gradinversion_torch`: GradInversion (Yin et al., CVPR 2021) step for step as
  ``tf_impl.gradient_inversion.gradinversion.grad_inversion``: per seed the gradient distance
  (a double backward, ``torch.autograd.grad(..., create_graph=True)``), anisotropic TV, L2,
  the BN statistics prior and the group term; ``torch.optim.Adam`` with the cosine/warm-up
  schedule, the pixel box after each step, then the Langevin update (the same numpy noise per
  step as the TF side) and the box again, then the consensus refresh on the same schedule.

The module weights stay in eval mode and are not optimised (they only get gradients inside
the objective's double backward). Nothing here imports TensorFlow or ``tf_impl`` (references
sit upstream of it): a run that registers seeds (``registration="ecc"``) is handed the
registration as a function, ``register=`` (the TF side's own is
``tf_impl.gradient_inversion.registration.consensus``: numpy and OpenCV).

Example:
    >>> import model_zoo
    >>> x, y = model_zoo.data.cifar10("test", n=4)                           # doctest: +SKIP
    >>> path = model_zoo.load("resnet20_cifar")                              # doctest: +SKIP
    >>> grads = client_gradient_torch(path, x, y)                            # doctest: +SKIP
    >>> grads["linear.weight"].shape                                         # doctest: +SKIP
    (10, 64)
"""

from __future__ import annotations

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from .feature_inversion import TorchTaps, total_variation
from .optim import as_config, learning_rate_at
from .pixels import denormalize, normalize, pixel_box, preprocessing_of

__all__ = [
    "GradInversionTorch",
    "GradientMatcherTorch",
    "bn_prior",
    "client_gradient_torch",
    "cross_entropy",
    "gradinversion_torch",
    "langevin_noise",
]

_REDUCTIONS = ("mean", "sum")


def _proto(model) -> onnx.ModelProto:
    return model if isinstance(model, onnx.ModelProto) else onnx.load(os.fspath(model))


def _bn_nodes(proto: onnx.ModelProto) -> list[onnx.NodeProto]:
    """BatchNormalization nodes whose scale, bias and statistics are initializers (the TF
    importer's ``model.bn_layers``), in graph order."""
    inits = {t.name for t in proto.graph.initializer}
    return [n for n in proto.graph.node if n.op_type == "BatchNormalization"
            and len(n.input) >= 5 and all(i in inits for i in n.input[1:5])]


def _bn_statistics(proto: onnx.ModelProto) -> set[str]:
    return {i for n in _bn_nodes(proto) for i in n.input[3:5]}


def _set_bn_mode(module: torch.nn.Module, bn_mode: str) -> None:
    """``"eval"``: running statistics. ``"train"``: batch statistics, with momentum 0 so the
    running statistics are not updated (the TF importer's ``bn_mode="train"``)."""
    if bn_mode not in ("eval", "train"):
        raise ValueError(f"bn_mode must be 'eval' or 'train'; got {bn_mode!r}")
    module.eval()
    if bn_mode == "train":
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.train()
                m.momentum = 0.0


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean"):
    """``tf_impl.gradient_inversion.victim.cross_entropy``: integer labels, or soft labels as
    (N, K) logits (softmaxed), written with ``log_softmax`` (differentiable twice in both)."""
    logp = torch.log_softmax(logits, dim=-1)
    if labels.dtype.is_floating_point:
        per = -(torch.softmax(labels, dim=-1) * logp).sum(dim=-1)
    else:
        per = -logp.gather(1, labels.view(-1, 1)).squeeze(1)
    return per.mean() if reduction == "mean" else per.sum()


def _parameters(module, proto, exclude: set[str]) -> dict[str, torch.nn.Parameter]:
    from converters.onnx_to_torch import initializer_parameters

    params = initializer_parameters(module, proto)
    # keep ONNX initializer order (the TF importer's onnx_variables order)
    order = [t.name for t in proto.graph.initializer]
    return {k: params[k] for k in order if k in params and k not in exclude}


def client_gradient_torch(onnx_path, images, labels, reduction: str = "mean", *,
                          bn_mode: str = "eval") -> dict[str, np.ndarray]:
    """The client's weight gradient, ``{ONNX initializer name: gradient}`` (ONNX layout).

    The loss is the cross-entropy of the model's output on ``images`` (normalised NCHW)
    with integer ``labels``, reduced by ``"mean"`` or ``"sum"``; BatchNorm running
    statistics are buffers, not weights, and are not in the result.
    """
    from converters.onnx_to_torch import load

    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean' or 'sum'; got {reduction!r}")
    proto = _proto(onnx_path)
    module = load(proto)
    _set_bn_mode(module, bn_mode)
    params = _parameters(module, proto, _bn_statistics(proto))
    x = torch.from_numpy(np.ascontiguousarray(images, np.float32))
    y = torch.from_numpy(np.asarray(labels, np.int64))
    out = module(x)
    logits = out[0] if isinstance(out, (tuple, list)) else out
    loss = cross_entropy(logits, y, reduction)
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return {k: g.detach().numpy().copy() for k, g in zip(params, grads) if g is not None}


def langevin_noise(config, shape, step: int) -> np.ndarray:
    """``tf_impl.gradient_inversion.gradinversion.langevin_noise``: N(0, I) for 0-based
    ``step``, numpy PCG64 seeded with ``seed * 100_003 + 7919 + step`` (float32)."""
    seed = config.seed * 100_003 + 7919 + step
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


class GradientMatcherTorch:
    """``tf_impl.gradient_inversion.matching.GradientMatcher`` in PyTorch.

    Args:
        onnx_path: the ONNX file (or ModelProto) the TF model was imported from.
        shared: ``{ONNX initializer name: gradient}`` or an object with ``.grads`` (a
            ``SharedGradient``); its ``reduction`` and ``bn_mode`` are used when present.
        distance: ``"l2"`` (sum of squared differences) or ``"cosine"``.
        bn_taps: also return the input of every BatchNormalization layer.
        reduction, bn_mode: override what ``shared`` says (default ``"mean"``, ``"eval"``).
        memory_format: ``torch.channels_last`` to run the module in that layout.
        dtype: ``torch.float64`` for a double-precision run (to tell rounding apart).
    """

    def __init__(self, onnx_path, shared, distance: str = "l2", *, bn_taps: bool = False,
                 reduction: str | None = None, bn_mode: str | None = None,
                 memory_format=None, dtype: torch.dtype = torch.float32):
        if distance not in ("l2", "cosine"):
            raise ValueError(f"distance must be 'l2' or 'cosine'; got {distance!r}")
        grads = getattr(shared, "grads", shared)
        self.reduction = reduction or getattr(shared, "reduction", "mean")
        self.bn_mode = bn_mode or getattr(shared, "bn_mode", "eval")
        if self.reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be 'mean' or 'sum'; got {self.reduction!r}")
        self.distance, self.dtype = distance, dtype
        proto = _proto(onnx_path)
        self.bn = _bn_nodes(proto) if bn_taps else []
        self.bn_inputs = list(dict.fromkeys(n.input[0] for n in self.bn))
        self.taps = TorchTaps(proto, ["output", *self.bn_inputs])
        self.metadata = self.taps.metadata
        module = self.taps.module.to(dtype)
        if memory_format is not None:
            module = module.to(memory_format=memory_format)
        self.taps.module = module
        _set_bn_mode(module, self.bn_mode)
        params = _parameters(module, proto, _bn_statistics(proto))
        missing = sorted(set(grads) - set(params))
        if missing:
            raise KeyError(f"shared gradient entries with no module parameter: {missing[:5]}")
        self.names = [k for k in params if k in grads]
        self.params = [params[k] for k in self.names]
        for p in module.parameters():  # weights are constants of the attack
            p.requires_grad_(False)
        for p in self.params:
            p.requires_grad_(True)
        self.targets = [torch.as_tensor(np.asarray(grads[k]), dtype=dtype) for k in self.names]
        for t, p in zip(self.targets, self.params):
            if tuple(t.shape) != tuple(p.shape):
                raise ValueError(f"gradient shape {tuple(t.shape)} != weight {tuple(p.shape)}")
        self._target_norm = torch.sqrt(sum((t * t).sum() for t in self.targets))
        inits = {t.name: t for t in proto.graph.initializer}

        def stat(name):
            return torch.as_tensor(numpy_helper.to_array(inits[name]).copy(), dtype=dtype)

        self.bn_stats = [(n.input[0], stat(n.input[3]), stat(n.input[4])) for n in self.bn]

    def gradients(self, x: torch.Tensor, labels: torch.Tensor, create_graph: bool = True):
        """The weight gradients at ``(x, labels)`` (differentiable when ``create_graph``)
        and ``{tensor name: value}`` of the BN inputs."""
        outs = self.taps(x)
        loss = cross_entropy(outs["output"], labels, self.reduction)
        grads = torch.autograd.grad(loss, self.params, create_graph=create_graph,
                                    allow_unused=True)
        grads = [torch.zeros_like(p) if g is None else g for g, p in zip(grads, self.params)]
        return grads, outs

    def distance_of(self, grads) -> torch.Tensor:
        if self.distance == "l2":
            return sum(((g - t) ** 2).sum() for g, t in zip(grads, self.targets))
        dot = sum((g * t).sum() for g, t in zip(grads, self.targets))
        norm = torch.sqrt(sum((g * g).sum() for g in grads) + 1e-20)
        return 1.0 - dot / (norm * self._target_norm + 1e-20)

    def __call__(self, x, labels, create_graph: bool = True):
        """(distance, tapped tensors)."""
        grads, outs = self.gradients(x, labels, create_graph)
        return self.distance_of(grads), outs

    def bn_prior(self, tapped) -> torch.Tensor:
        return bn_prior(tapped, self.bn_stats)


def bn_prior(tapped: Mapping[str, torch.Tensor], stats) -> torch.Tensor:
    """sum over BN layers of ||mean - running_mean||_2 + ||var - running_var||_2, the batch
    mean and *biased* variance over N, H, W of each BN layer's input (``tf.nn.moments``)."""
    total = []
    for name, running_mean, running_var in stats:
        a = tapped[name]
        mean = a.mean(dim=(0, 2, 3))
        var = ((a - mean.view(1, -1, 1, 1)) ** 2).mean(dim=(0, 2, 3))
        total.append(torch.linalg.vector_norm(mean - running_mean)
                     + torch.linalg.vector_norm(var - running_var))
    return sum(total)


def _consensus(x: np.ndarray, g: int, n: int, mean, std, register=None) -> np.ndarray:
    """The TF side's ``refresh``: seeds' pixels (clipped) -> consensus -> normalised;
    ``register(pixels, register=True)`` fuses registered seeds (``None``: the plain mean)."""
    shape = x.shape[1:]
    px = np.clip(denormalize(x, mean, std).reshape(g, n, *shape), 0, 1)
    if register is not None and g > 1:
        fused, _ = register(px, register=True)
    else:
        fused = np.asarray(px, np.float32).mean(axis=0)
    return normalize(fused, mean, std)


class GradInversionTorch:
    """GradInversion's loop in PyTorch, one :meth:`step` at a time (see
    :func:`gradinversion_torch`; the benchmark times :meth:`step`)."""

    def __init__(self, onnx_path, shared, labels, config, start, *, consensus=None,
                 register=None, preprocessing=None, memory_format=None,
                 dtype: torch.dtype = torch.float32):
        self.config = c = as_config(config)
        self.opt_cfg = o = c.optimize
        if o.optimizer != "adam":
            raise ValueError(f"the reference runs Adam (GradInversion); got {o.optimizer!r}")
        start = np.asarray(start, np.float32)
        self.g = c.seeds
        if start.shape[0] % self.g:
            raise ValueError(f"start has {start.shape[0]} images, not a multiple of "
                             f"{self.g} seeds")
        self.n = start.shape[0] // self.g
        self.shape = start.shape[1:]
        self.dtype = dtype
        self.matcher = GradientMatcherTorch(onnx_path, shared, c.distance,
                                            bn_taps=bool(c.bn_weight),
                                            memory_format=memory_format, dtype=dtype)
        self.mean, self.std = preprocessing or preprocessing_of(self.matcher.metadata)
        self.labels = torch.as_tensor(np.asarray(labels, np.int64))
        if tuple(self.labels.shape) != (self.n,):
            raise ValueError(f"labels must be {self.n} class indices; got {labels!r}")
        self.group = bool(c.group_weight) and self.g > 1
        self.fixed_consensus = consensus is not None
        if self.group and not self.fixed_consensus and c.registration == "ecc" and not register:
            raise ValueError("this config registers seeds (registration='ecc'): pass register="
                             "tf_impl.gradient_inversion.registration.consensus (the TF side's "
                             "ECC registration) or set registration='none'")
        self.register = register if c.registration == "ecc" else None
        cons = (np.zeros((self.n, *self.shape), np.float32) if consensus is None
                else np.asarray(consensus, np.float32))
        self.consensus = torch.as_tensor(cons, dtype=dtype)
        self.group_on = 1.0 if self.fixed_consensus else 0.0
        x = torch.tensor(start, dtype=dtype)
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)
        self.x = x.requires_grad_(True)
        lo, hi = pixel_box(self.mean, self.std, self.shape[0])
        self.box = ((torch.as_tensor(lo, dtype=dtype), torch.as_tensor(hi, dtype=dtype))
                    if c.clip_to_pixels else None)
        self.optimizer = torch.optim.Adam([self.x], lr=o.learning_rate, betas=tuple(o.betas),
                                          eps=o.epsilon)
        self.history: dict[str, list[float]] = {}
        self.steps_done = 0
        self.refreshed: list[int] = []

    def objective(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``_Objective``: the terms summed over seeds (the consensus a constant)."""
        c, n = self.config, self.n
        parts: dict[str, list] = {"gradient": [], "tv": [], "l2": [], "bn": [], "group": []}
        for k in range(self.g):
            xg = x[k * n:(k + 1) * n]
            dist, tapped = self.matcher(xg, self.labels)
            parts["gradient"].append(dist)
            if c.tv_weight:
                parts["tv"].append(c.tv_weight * total_variation(xg, None, False))
            if c.l2_weight:
                parts["l2"].append(c.l2_weight * (xg * xg).sum())
            if c.bn_weight:
                parts["bn"].append(c.bn_weight * self.matcher.bn_prior(tapped))
            if self.group:
                diff = (xg - self.consensus).reshape(-1)
                parts["group"].append(self.group_on * c.group_weight
                                      * torch.linalg.vector_norm(diff))
        return {k: sum(v) for k, v in parts.items() if v}

    def _clip(self) -> None:
        if self.box is not None:
            lo, hi = self.box
            with torch.no_grad():
                self.x.copy_(torch.maximum(torch.minimum(self.x, hi), lo))

    def step(self) -> tuple[float, dict[str, float]] | None:
        """One step: Adam on the objective, box, Langevin, box, consensus refresh.
        Returns (loss, terms) before the update, or None when they were not finite (the
        iterate is then left unchanged, as the TF loop does)."""
        c, o = self.config, self.opt_cfg
        k = self.steps_done
        lr = learning_rate_at(o, k)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        terms = self.objective(self.x)
        loss = sum(terms.values())
        # only the images' gradient: loss.backward() would also accumulate the outer
        # gradient into every weight (they require grad for the inner autograd.grad)
        (grad,) = torch.autograd.grad(loss, [self.x])
        if not (bool(torch.isfinite(loss)) and bool(torch.isfinite(grad).all())):
            return None
        self.x.grad = grad
        self.optimizer.step()
        self._clip()
        loss_f = float(loss.detach())
        terms_f = {name: float(v.detach()) for name, v in terms.items()}
        self.history.setdefault("loss", []).append(loss_f)
        for name, v in terms_f.items():
            self.history.setdefault(name, []).append(v)
        self.history.setdefault("lr", []).append(lr)
        self.steps_done = step = k + 1
        # after_step of grad_inversion (1-based step)
        if c.langevin:
            lr_n = learning_rate_at(o, step - 1)
            noise = (lr_n * c.langevin) * langevin_noise(c, tuple(self.x.shape), step - 1)
            with torch.no_grad():
                self.x.add_(torch.as_tensor(noise, dtype=self.dtype))
            self._clip()
        if (self.group and not self.fixed_consensus and step >= c.group_start
                and (step - c.group_start) % c.group_every == 0):
            self.refresh(step)
        return loss_f, terms_f

    def refresh(self, step: int) -> None:
        x = self.x.detach().to(torch.float32).numpy()
        cons = _consensus(x, self.g, self.n, self.mean, self.std, self.register)
        self.consensus = torch.as_tensor(cons, dtype=self.dtype)
        self.group_on = 1.0
        self.refreshed.append(step)


def gradinversion_torch(onnx_path, shared_grads, labels, config, start, steps: int | None = None,
                        consensus=None, *, register=None, preprocessing=None,
                        memory_format=None, dtype: torch.dtype = torch.float32
                        ) -> dict[str, Any]:
    """GradInversion in PyTorch, step for step as ``tf_impl``'s ``grad_inversion``.

    Args:
        onnx_path: the ONNX file (or ModelProto) the TF model was imported from.
        shared_grads: the shared gradient, ``{ONNX initializer name: array}`` or a
            ``SharedGradient`` (its ``reduction`` / ``bn_mode`` are then used).
        labels: the N labels (the same for every seed).
        config: a ``GradInversionConfig`` (or its ``to_dict()``).
        start: the start, (G * N, C, H, W) in normalised space (the TF side draws
            ``seeded_noise((G * N, C, H, W), config.seed, config.init_std)``).
        steps: steps to run (default ``config.optimize.steps``; the schedule always uses
            ``config.optimize.steps``, as the TF loop does).
        consensus: a fixed consensus (N, C, H, W), normalised: the group term is then on
            from the first step with this constant and never refreshed. ``None``: the
            consensus is refreshed as ``grad_inversion`` does it (from ``group_start``
            every ``group_every`` steps; ECC registration or the plain mean).
        register: the seeds' registration, needed when the config registers
            (``registration="ecc"``): ``tf_impl.gradient_inversion.registration.consensus``.
        preprocessing: (mean, std); the zoo's record by default.
        memory_format: e.g. ``torch.channels_last`` for the module and the images.
        dtype: ``torch.float64`` to run in double precision.

    Returns:
        ``{"x": final normalised images (G*N, C, H, W), "history": {"loss", "gradient",
        "tv", "l2", "bn", "group", "lr": [...]} (values before each update), "steps": steps
        done, "stopped": None or "non-finite", "refreshed": steps where the consensus was
        refreshed, "consensus": the last consensus}``.
    """
    run = GradInversionTorch(onnx_path, shared_grads, labels, config, start,
                             consensus=consensus, register=register, preprocessing=preprocessing,
                             memory_format=memory_format, dtype=dtype)
    total = run.opt_cfg.steps if steps is None else steps
    stopped = None
    for _ in range(total):
        if run.step() is None:
            stopped = "non-finite"
            break
    return {
        "x": run.x.detach().to(torch.float32).contiguous().numpy().copy(),
        "history": {k: list(v) for k, v in run.history.items()},
        "steps": run.steps_done,
        "stopped": stopped,
        "refreshed": list(run.refreshed),
        "consensus": run.consensus.to(torch.float32).numpy().copy(),
    }

