"""The reference for the path attributions of ``tf_impl.attribution``: Captum's Integrated
Gradients, and plain PyTorch transcriptions of IDGI, Guided IG and Blur IG, on the onnx2torch
copy of the same ONNX file.

- Integrated Gradients *is* Captum 0.9: ``IntegratedGradients(net).attribute(x, baselines,
  target, n_steps, method, internal_batch_size, return_convergence_delta=True)``, with the
  quadrature named as Captum names it.
- IDGI (Yang et al., CVPR 2023, Algorithm 1): the path's points, the target logit and its
  gradient at each by autograd, then sum_j g_j^2 / ||g_j||^2 (F(x_{j+1}) - F(x_j)) in float64
  (steps with an exactly zero gradient are skipped and their change returned as ``skipped``).
- Guided IG (Kapishnikov et al., CVPR 2021): the reference implementation's loop (PAIR-code
  ``saliency/core/guided_ig.py``: per step, pull the features behind the window up to its
  lower edge, stop when the L1 distance reached the step's target, else move the ``fraction``
  quantile of smallest |gradient| towards the window's upper edge), in torch float64 per input.
- Blur IG (Xu et al., CVPR 2020): the Gaussian blurs by ``torch.nn.functional.conv2d``
  (separable, zero padding, radius int(truncate sigma + 0.5), weights normalised to 1: the
  kernel of ``scipy.ndimage.gaussian_filter``), sigma_m = m max_sigma / steps, the integrand at
  sigma_0..sigma_{steps-1} with a forward difference of ``grad_step`` for dz/dsigma.

``x`` is the model's normalised input (NCHW float32), ``targets`` one class per image. Nothing
here imports TensorFlow.

Example:
    >>> import model_zoo
    >>> net = load_module(model_zoo.load("resnet20_cifar"))                  # doctest: +SKIP
    >>> out = integrated_gradients_captum(net, x, [3, 8], steps=16,
    ...                                   method="riemann_middle")          # doctest: +SKIP
    >>> out["attribution"].shape, out["delta"].shape                         # doctest: +SKIP
    ((2, 3, 32, 32), (2,))
"""

from __future__ import annotations

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import math

import numpy as np
import torch

from .saliency import load_module

__all__ = [
    "load_module",
    "integrated_gradients_captum",
    "idgi_torch",
    "idgi_from_path_torch",
    "path_torch",
    "guided_ig_torch",
    "blur_ig_torch",
    "gaussian_blur_torch",
]


def _inputs(x, targets, baseline=None):
    xt = torch.from_numpy(np.ascontiguousarray(np.asarray(x, np.float32)))
    t = torch.as_tensor(np.asarray(targets, np.int64).reshape(-1))
    if len(t) != xt.shape[0]:
        raise ValueError(f"one target per image: {xt.shape[0]} images, {len(t)} targets")
    if baseline is None:
        bt = torch.zeros_like(xt)
    else:
        bt = torch.from_numpy(np.ascontiguousarray(
            np.broadcast_to(np.asarray(baseline, np.float32), xt.shape)))
    return xt, t, bt


def _forward(net):
    """``net`` taking float32 inputs whatever its own dtype (a ``.double()`` copy computes in
    float64 and returns float32-input gradients, as the TF importer's ``dtype="float64"``)."""
    dtype = next(net.parameters()).dtype
    return net if dtype == torch.float32 else (lambda inp: net(inp.to(dtype)))


def _score_and_grad(net, points: torch.Tensor, t: torch.Tensor):
    """(target logits float64, d logit / d input float32) at ``points`` (one row per image)."""
    p = points.detach().to(torch.float32).requires_grad_(True)
    out = _forward(net)(p)
    s = out[torch.arange(len(t)), t]
    (g,) = torch.autograd.grad(s.sum(), p)
    return s.detach().to(torch.float64), g.detach()


# -- Integrated Gradients (Captum) --------------------------------------------------------------
def integrated_gradients_captum(model, x, targets, baseline=None, *, steps: int = 50,
                                method: str = "gausslegendre",
                                batch_size: int | None = None) -> dict:
    """Captum's ``IntegratedGradients``: ``{"attribution": (N, C, H, W), "delta": (N,)}``."""
    from captum.attr import IntegratedGradients

    net = load_module(model)
    xt, t, bt = _inputs(x, targets, baseline)
    attr, delta = IntegratedGradients(_forward(net)).attribute(
        xt, baselines=bt, target=t.tolist(), n_steps=int(steps), method=method,
        internal_batch_size=batch_size, return_convergence_delta=True)
    return {"attribution": attr.detach().numpy(), "delta": delta.detach().numpy()}


# -- the paths ----------------------------------------------------------------------------------
def _kernel(sigma: float, truncate: float) -> torch.Tensor:
    r = int(truncate * sigma + 0.5)
    k = torch.arange(-r, r + 1, dtype=torch.float64)
    w = torch.exp(-0.5 * (k / sigma) ** 2)
    return w / w.sum()


def gaussian_blur_torch(x: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Per-channel Gaussian blur of an NCHW batch (float64, zero padding); sigma 0: ``x``."""
    x = x.to(torch.float64)
    if sigma <= 0:
        return x.clone()
    w = _kernel(float(sigma), float(truncate))
    r = (len(w) - 1) // 2
    c = x.shape[1]
    kh = w.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    kw = w.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    y = torch.nn.functional.conv2d(x, kh, padding=(r, 0), groups=c)
    return torch.nn.functional.conv2d(y, kw, padding=(0, r), groups=c)


def _guided_path(net, xt, t, bt, steps: int, fraction: float, max_dist: float):
    """Guided IG's vertices, scores and gradients, the reference loop per input."""
    n = xt.shape[0]
    x_in = xt.reshape(n, -1).to(torch.float64)
    x_base = bt.reshape(n, -1).to(torch.float64)
    x = x_base.clone()
    l1_total = (x_in - x_base).abs().sum(1)
    points, scores, grads = [], [], []
    for step in range(steps + 1):
        s, g = _score_and_grad(net, x.reshape(xt.shape), t)
        points.append(x.reshape(xt.shape).to(torch.float32))
        scores.append(s)
        grads.append(g)
        if step == steps:
            break
        alpha = (step + 1.0) / steps
        a_min, a_max = max(alpha - max_dist, 0.0), min(alpha + max_dist, 1.0)
        new = []
        for i in range(n):
            xi = x[i].clone()
            diff = x_in[i] - x_base[i]
            x_min, x_max = x_base[i] + a_min * diff, x_base[i] + a_max * diff
            l1_target = float(l1_total[i]) * (1 - (step + 1) / steps)
            grad = g[i].reshape(-1).to(torch.float64).clone()
            gamma = math.inf
            while gamma > 1.0:
                x_alpha = torch.where(diff != 0, (xi - x_base[i]) / diff,
                                      torch.full_like(xi, a_max))
                behind = x_alpha < a_min
                xi[behind] = x_min[behind]
                l1_current = float((xi - x_in[i]).abs().sum())
                if math.isclose(l1_target, l1_current, rel_tol=1e-9, abs_tol=1e-9) or \
                        l1_current < l1_target:
                    break
                grad[xi == x_max] = math.inf
                threshold = torch.quantile(grad.abs(), fraction, interpolation="lower")
                sel = (grad.abs() <= threshold) & (grad != math.inf)
                l1_s = float(((xi - x_max).abs() * sel).sum())
                gamma = (l1_current - l1_target) / l1_s if l1_s > 0 else math.inf
                if gamma > 1.0:
                    xi[sel] = x_max[sel]
                else:
                    xi[sel] = (xi + gamma * (x_max - xi))[sel]
            new.append(xi)
        x = torch.stack(new)
        if step + 1 == steps:
            x = x_in.clone()  # the last vertex is the input itself
    return points, scores, grads


def path_torch(model, x, targets, baseline=None, *, base: str = "ig", steps: int = 16,
               fraction: float = 0.25, max_dist: float = 0.02, max_sigma: float = 50.0,
               truncate: float = 4.0) -> dict:
    """The ``base`` path's points x_0 (start) .. x_steps (the input) with the target logit and
    its gradient at each: ``{"points", "gradients": (steps+1, N, C, H, W), "scores":
    (steps+1, N) float64}``. ``base``: ``"ig"`` (uniform straight line), ``"guided_ig"``,
    ``"blur_ig"`` (most blurred first; no baseline)."""
    net = load_module(model)
    xt, t, bt = _inputs(x, targets, baseline)
    if base == "guided_ig":
        pts, sc, gr = _guided_path(net, xt, t, bt, steps, fraction, max_dist)
    else:
        if base == "ig":
            x64, b64 = xt.to(torch.float64), bt.to(torch.float64)
            pts = [(b64 + (j / steps) * (x64 - b64)).to(torch.float32) for j in range(steps + 1)]
        elif base == "blur_ig":
            sig = [m * max_sigma / steps for m in range(steps + 1)]
            pts = [gaussian_blur_torch(xt, sig[steps - j], truncate).to(torch.float32)
                   for j in range(steps + 1)]
        else:
            raise ValueError(f"unknown base {base!r}")
        sc, gr = zip(*(_score_and_grad(net, p, t) for p in pts))
    return {"points": torch.stack(list(pts)).numpy(), "scores": torch.stack(list(sc)).numpy(),
            "gradients": torch.stack(list(gr)).numpy()}


def idgi_from_path_torch(scores, gradients) -> dict:
    """IDGI from a path's samples (Yang et al. 2023, Algorithm 1), float64:
    ``{"attribution": (N, ...), "skipped": (N,)}``."""
    s = torch.as_tensor(np.asarray(scores, np.float64))
    g = torch.as_tensor(np.asarray(gradients)).to(torch.float64)
    attr = torch.zeros_like(g[0])
    skipped = torch.zeros(s.shape[1], dtype=torch.float64)
    for j in range(s.shape[0] - 1):
        d = s[j + 1] - s[j]
        sq = g[j] ** 2
        norm = sq.flatten(1).sum(1)
        for i in range(s.shape[1]):
            if norm[i] > 0:
                attr[i] += sq[i] * d[i] / norm[i]
            else:
                skipped[i] += d[i]
    return {"attribution": attr.numpy(), "skipped": skipped.numpy()}


def idgi_torch(model, x, targets, baseline=None, *, base: str = "ig", steps: int = 16,
               **path_options) -> dict:
    """IDGI on the ``base`` path: ``{"attribution", "skipped", "scores"}``."""
    p = path_torch(model, x, targets, baseline, base=base, steps=steps, **path_options)
    out = idgi_from_path_torch(p["scores"], p["gradients"])
    return {**out, "scores": p["scores"]}


def guided_ig_torch(model, x, targets, baseline=None, *, steps: int = 200,
                    fraction: float = 0.25, max_dist: float = 0.02) -> dict:
    """Guided IG: ``{"attribution": sum_s (x^(s+1) - x^(s)) g(x^(s)), "scores"}``."""
    p = path_torch(model, x, targets, baseline, base="guided_ig", steps=steps,
                   fraction=fraction, max_dist=max_dist)
    pts = p["points"].astype(np.float64)
    attr = ((pts[1:] - pts[:-1]) * p["gradients"][:-1].astype(np.float64)).sum(0)
    return {"attribution": attr, "scores": p["scores"]}


def blur_ig_torch(model, x, targets, *, steps: int = 100, max_sigma: float = 50.0,
                  grad_step: float = 0.01, truncate: float = 4.0) -> dict:
    """Blur IG (PAIR's discretisation): ``{"attribution", "delta"}`` with delta =
    sum(attr) - (F(x) - F(blur_max x))."""
    net = load_module(model)
    xt, t, _ = _inputs(x, targets)
    sig = [m * max_sigma / steps for m in range(steps + 1)]
    attr = torch.zeros(xt.shape, dtype=torch.float64)
    for m in range(steps):
        z = gaussian_blur_torch(xt, sig[m], truncate)
        dz = (gaussian_blur_torch(xt, sig[m] + grad_step, truncate) - z) / grad_step
        _, g = _score_and_grad(net, z.to(torch.float32), t)
        attr -= (sig[m + 1] - sig[m]) * g.to(torch.float64) * dz
    f_x, _ = _score_and_grad(net, xt, t)
    f_b, _ = _score_and_grad(net, gaussian_blur_torch(xt, sig[-1], truncate).to(torch.float32),
                             t)
    delta = attr.flatten(1).sum(1) - (f_x - f_b)
    return {"attribution": attr.numpy(), "delta": delta.numpy()}
