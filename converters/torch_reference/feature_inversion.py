"""The reference for ``tf_impl.feature_inversion``: the same inversion in plain PyTorch.

Mahendran & Vedaldi, "Understanding Deep Image Representations by Inverting Them", CVPR 2015:

    x* = argmin_x  sum_l w_l ||phi_l(x) - phi_l(x0)||^2 / ||phi_l(x0)||^2
                   + lambda_TV * TV^beta(x) + lambda_alpha * ||x||_alpha^alpha

run on the onnx2torch copy of the same ONNX file, with ``torch.optim`` (Adam, SGD or L-BFGS),
the same learning-rate schedule, the same projection onto the valid pixel box after each step
and the same loss-term names, so that a TF run and this one can be compared step by step.
Nothing here imports TensorFlow: the configuration is read by attribute (a
``tf_impl.feature_inversion.FeatureInversionConfig``, or the dict its ``to_dict()`` gives).

The activations ("taps") are read by converting a copy of the ONNX graph whose outputs are
the wanted tensors, pruned to the nodes they depend on. Layer names are the model's aliases
(``"conv3_1"``, from the ``model_zoo.layer_aliases`` metadata) or raw ONNX tensor names.

Example:
    >>> import model_zoo
    >>> from model_zoo.data import image
    >>> from tf_impl.feature_inversion import FeatureInversionConfig      # doctest: +SKIP
    >>> cfg = FeatureInversionConfig().with_(steps=50, progress=False)      # doctest: +SKIP
    >>> out = invert_features_torch(model_zoo.load("vgg16_features"),
    ...     image("astronaut", size=64, normalize=False), ["conv3_1"], cfg)  # doctest: +SKIP
    >>> out["image"].shape, sorted(out["history"])                        # doctest: +SKIP
    ((1, 3, 64, 64), ['feature:conv3_1', 'loss', 'lr', 'tv'])
"""

from __future__ import annotations

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import json
import os
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper

from .optim import as_config, learning_rate_at, run_loop
from .pixels import denormalize, gaussian_blur, normalize, pixel_box, preprocessing_of

__all__ = [
    "TorchTaps",
    "invert_features_torch",
    "learning_rate_at",
    "total_variation",
    "alpha_norm",
]

ALIAS_KEY = "model_zoo.layer_aliases"


# -- the model's activations ------------------------------------------------------------------
def _proto(model: str | os.PathLike[str] | onnx.ModelProto) -> onnx.ModelProto:
    return model if isinstance(model, onnx.ModelProto) else onnx.load(os.fspath(model))


def _aliases(proto: onnx.ModelProto) -> dict[str, str]:
    meta = {p.key: p.value for p in proto.metadata_props}
    aliases = {"output": proto.graph.output[0].name} if proto.graph.output else {}
    if ALIAS_KEY in meta:
        aliases.update(json.loads(meta[ALIAS_KEY]))
    elif meta.get("model_zoo.name"):
        import model_zoo

        aliases.update(model_zoo.info(meta["model_zoo.name"]).layer_aliases)
    return aliases


class TorchTaps:
    """Intermediate activations of an ONNX model, through onnx2torch.

    ``TorchTaps(model, ["conv3_1", "/features/features.2/Conv_output_0"])(x)`` returns
    ``{name: tensor}`` (NCHW, differentiable) for the names as given. The module is converted
    from a copy of the graph whose outputs are the wanted tensors, keeping only the nodes they
    depend on.
    """

    def __init__(self, model: str | os.PathLike[str] | onnx.ModelProto, layers: Sequence[str]):
        from converters.onnx_to_torch import load

        proto = _proto(model)
        graph = proto.graph
        self.metadata = {p.key: p.value for p in proto.metadata_props}
        self.aliases = _aliases(proto)
        init_names = {t.name for t in graph.initializer}
        inputs = [i for i in graph.input if i.name not in init_names]
        self.input_names = [i.name for i in inputs]
        producer = {o: k for k, n in enumerate(graph.node) for o in n.output if o}
        self.layers = list(layers)
        self.tensor_of = {name: self.resolve(name, producer) for name in self.layers}
        # unique tensors computed by the graph (graph inputs are passed through)
        outputs = list(dict.fromkeys(t for t in self.tensor_of.values() if t in producer))
        self._outputs = outputs
        self.module = None
        if outputs:
            needed: set[int] = set()
            stack = [producer[t] for t in outputs]
            while stack:
                k = stack.pop()
                if k in needed:
                    continue
                needed.add(k)
                stack += [producer[i] for i in graph.node[k].input if i in producer]
            nodes = [n for k, n in enumerate(graph.node) if k in needed]
            used = {i for n in nodes for i in n.input}
            sub = helper.make_graph(
                nodes,
                graph.name or "taps",
                inputs,
                [helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in outputs],
                [t for t in graph.initializer if t.name in used],
            )
            sub_model = helper.make_model(
                sub, opset_imports=list(proto.opset_import), ir_version=proto.ir_version
            )
            self.module = load(sub_model)

    def resolve(self, name: str, producer: Mapping[str, int]) -> str:
        if name in self.aliases:
            return self.aliases[name]
        if name in producer or name in self.input_names:
            return name
        raise KeyError(
            f"no tensor or alias named {name!r} in this model. Aliases: "
            f"{', '.join(sorted(self.aliases))}"
        )

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        values: dict[str, torch.Tensor] = {n: x for n in self.input_names}
        if self.module is not None:
            out = self.module(x)
            if isinstance(out, torch.Tensor):
                out = [out]
            values.update(zip(self._outputs, out))
        return {name: values[t] for name, t in self.tensor_of.items()}


# -- the terms (tf_impl.priors in PyTorch) ------------------------------------------------------
def total_variation(x: torch.Tensor, beta: float | None, normalize: bool) -> torch.Tensor:
    """``tf_impl.priors.TotalVariation``: anisotropic L1 TV (``beta=None``) or TV^beta, NCHW."""
    if beta is None:  # tf.image.total_variation, summed over the batch
        tv = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().sum() + (
            x[:, :, :, 1:] - x[:, :, :, :-1]
        ).abs().sum()
    else:
        dx = x[:, :, :-1, 1:] - x[:, :, :-1, :-1]
        dy = x[:, :, 1:, :-1] - x[:, :, :-1, :-1]
        sq = dx * dx + dy * dy
        tv = sq.sum() if beta == 2 else torch.pow(sq + 1e-12, beta / 2).sum()
    if normalize:
        tv = tv / float(np.prod(x.shape[1:]))
    return tv


def alpha_norm(x: torch.Tensor, alpha: float, normalize: bool) -> torch.Tensor:
    """``tf_impl.priors.AlphaNorm``: sum |x|^alpha (optionally over C*H*W)."""
    v = (x * x).sum() if alpha == 2 else torch.pow(x.abs(), alpha).sum()
    if normalize:
        v = v / float(np.prod(x.shape[1:]))
    return v


def _alpha_name(alpha: float) -> str:
    return "l2" if alpha == 2 else f"alpha{alpha:g}"


# -- the start ---------------------------------------------------------------------------------


def _initial_pixels(config, original: np.ndarray) -> np.ndarray:
    """``tf_impl.feature_inversion.initial_pixels`` (numpy PCG64 noise with the same seed)."""
    if config.init == "noise":
        noise = np.random.default_rng(config.seed).standard_normal(original.shape)
        x = 0.5 + (noise * config.init_std).astype(np.float32)
    elif config.init == "blur":
        x = gaussian_blur(original, config.blur_sigma)
    else:
        x = np.full(original.shape, 0.5, np.float32)
    return np.clip(x, 0.0, 1.0).astype(np.float32)


# -- the inversion ----------------------------------------------------------------------------
def invert_features_torch(
    onnx_path: str | os.PathLike[str] | onnx.ModelProto,
    image_pixels: np.ndarray,
    layers: str | Sequence[str],
    config,
    *,
    weights: Mapping[str, float] | None = None,
    start_pixels: np.ndarray | None = None,
    preprocessing: tuple[Sequence[float], Sequence[float]] | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict:
    """Feature inversion in PyTorch, step for step as ``tf_impl.feature_inversion``.

    Args:
        onnx_path: the ONNX file (or ModelProto) the TF model was imported from.
        image_pixels: the original, NCHW float in [0, 1].
        layers: aliases (``"conv3_1"``) or ONNX tensor names; one data term each.
        config: a ``FeatureInversionConfig`` (or its ``to_dict()``).
        weights: per-layer weights of the data term (default 1).
        start_pixels: the start in pixel space; default ``config.init`` drawn as the TF side
            draws it.
        preprocessing: (mean, std); default the zoo's record for zoo models, else identity.
        dtype: ``torch.float64`` runs model and optimizer in double precision (the start,
            the box and the target image are the same float32 values), to tell float32
            rounding apart from differences of algorithm.

    Returns:
        ``{"image": pixels NCHW in [0, 1], "x": final iterate (normalised space),
        "history": {"loss": [...], "feature:<layer>": [...], "tv": [...], ..., "lr": [...]},
        "snapshots": [(step, pixels), ...] every ``config.optimize.snapshot_every`` steps,
        "steps": steps done, "stopped": None or "non-finite"}``; the history holds the values
        *before* each step's update, like ``tf_impl.optimize``.
    """
    config = as_config(config)
    layers, weights = _layers_and_weights(layers, weights)
    original = np.asarray(image_pixels, np.float32)
    if original.ndim != 4:
        raise ValueError(f"image_pixels must be NCHW; got shape {original.shape}")
    taps = TorchTaps(onnx_path, layers)
    if taps.module is not None:
        taps.module.to(dtype)
    mean, std = preprocessing or preprocessing_of(taps.metadata)
    objective = _objective(taps, config, weights, normalize(original, mean, std), dtype)
    if start_pixels is None:
        start = _initial_pixels(config, original)
    else:
        start = np.asarray(start_pixels, np.float32)
        if start.shape != original.shape:
            raise ValueError(f"start_pixels has shape {start.shape}; image is {original.shape}")
    x = torch.from_numpy(normalize(start, mean, std)).to(dtype).requires_grad_(True)
    box = (torch.from_numpy(b).to(dtype) for b in pixel_box(mean, std, original.shape[1]))
    run = run_loop(x, objective, config.optimize, box=tuple(box) if config.clip_to_pixels else None,
                   pixels=lambda v: np.clip(denormalize(v, mean, std), 0, 1))
    x_final = x.detach().numpy().copy()
    return {"image": np.clip(denormalize(x_final, mean, std), 0, 1), "x": x_final, **run}


def _layers_and_weights(layers, weights) -> tuple[list[str], dict[str, float]]:
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise ValueError("give at least one layer to invert, e.g. ['conv3_1']")
    weights = dict(weights or {})
    unknown = set(weights) - set(layers)
    if unknown:
        raise ValueError(f"weights given for layers without a target: {sorted(unknown)}")
    return layers, {layer: weights.get(layer, 1.0) for layer in layers}


def _objective(taps: TorchTaps, config, weights: Mapping[str, float], target_x: np.ndarray,
               dtype: torch.dtype):
    """The loss terms of ``tf_impl.feature_inversion``: each layer's squared distance to the
    original's activations over their squared norm, plus the TV and alpha-norm priors."""
    with torch.no_grad():
        feats = taps(torch.from_numpy(target_x).to(dtype))
    targets = {layer: feats[layer].detach().clone() for layer in weights}
    norms = {layer: float(t.square().sum()) for layer, t in targets.items()}
    for layer, norm in norms.items():
        if not norm > 0:
            raise ValueError(f"the target activations of {layer!r} are all zero")

    def objective(x: torch.Tensor) -> dict[str, torch.Tensor]:
        phi = taps(x)
        terms = {f"feature:{layer}": w * ((phi[layer] - targets[layer]).square().sum()
                                          / norms[layer]) for layer, w in weights.items()}
        if config.tv_weight:
            terms["tv"] = config.tv_weight * total_variation(x, config.tv_beta, True)
        if config.alpha_weight:
            terms[_alpha_name(config.alpha)] = config.alpha_weight * alpha_norm(
                x, config.alpha, True)
        return terms

    return objective
