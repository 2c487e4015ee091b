"""Adversarial examples: FGSM and the iterative attack (BIM / PGD) under an L-inf budget.

- FGSM, Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR
  2015, eq. 3: ``x_adv = x + eps * sign(grad_x J(theta, x, y))``.
- The basic iterative method, Kurakin, Goodfellow & Bengio, "Adversarial Examples in the
  Physical World", ICLR workshop 2017, eq. 1:
  ``x_{t+1} = Clip_{x, eps}(x_t + alpha * sign(grad_x J(x_t, y)))``; with a uniform random
  start in the eps-ball it is the PGD attack of Madry et al., "Towards Deep Learning Models
  Resistant to Adversarial Attacks", ICLR 2018.
- Targeted ("fooling images", CS231n assignment 3): gradient ascent on a target class's
  log-probability (Kurakin's iterative least-likely-class method) or its unnormalised score,
  from a real image.

Everything happens in PIXEL space [0, 1]: the budget ``eps`` is in pixel units (8/255 is the
usual CIFAR-10 budget), the model's normalisation is applied inside the objective. The
projection is exact: every adversarial pixel lies in ``[x - eps, x + eps] ∩ [0, 1]`` in real
arithmetic, not only up to float32 rounding (the float32 bounds are rounded inwards, see
:func:`linf_bounds`). The iterative attack runs in the shared loop
(:class:`tf_impl.optimize.Optimization`: SGD on the signed gradient, the box = the eps-ball).

Example:
    >>> import model_zoo
    >>> from converters import onnx_to_tf
    >>> model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))             # doctest: +SKIP
    >>> x, y = model_zoo.data.cifar10("test", n=4, normalize=False)             # doctest: +SKIP
    >>> result = pgd(model, x, y)                                                # doctest: +SKIP
    >>> result.metrics["success_rate"], result.metrics["linf_max"] <= 8 / 255   # doctest: +SKIP
    (1.0, True)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from .. import images as imgs
from .. import memory
from ..optimize import Optimization, OptimizeConfig
from ..result import Result
from . import checks
from .checks import VisualizationConfig

_TARGETED_LOSSES = ("log_prob", "score")
_METHODS = ("pgd", "fgsm")


@dataclass(frozen=True)
class AdversarialConfig(VisualizationConfig):
    """Defaults of the L-inf attacks (the common CIFAR-10 setting of Madry et al. 2018 and
    the robustness literature: eps 8/255, step 2/255, 10 steps).

    Attributes:
        eps: the L-inf budget in pixel units, in (0, 1] (8/255). FGSM's single step is eps.
        random_start: start PGD from a uniform random point of the eps-ball (Madry et al.);
            off: start at the image (Kurakin's BIM).
        targeted_loss: for targeted attacks, ascend the target's ``"log_prob"`` (log-softmax,
            the cross-entropy to the target) or its unnormalised ``"score"`` (the logit).
        early_stop: stop the iterative attack once every image is misclassified (untargeted)
            or classified as its target (targeted), as CS231n's fooling images do.
        seed: seed of the random start.
        optimize: the shared loop: SGD on ``sign(gradient)`` with the step size as learning
            rate (2/255), 10 steps. ``config.with_(steps=20, learning_rate=1/255)``.
    """

    eps: float = 8 / 255
    random_start: bool = False
    targeted_loss: str = "log_prob"
    early_stop: bool = False
    seed: int = 0
    optimize: OptimizeConfig = field(
        default_factory=lambda: OptimizeConfig(
            steps=10, optimizer="sgd", learning_rate=2 / 255, signed_gradients=True)
    )

    def validate(self) -> None:
        check_eps(self.eps)
        if self.targeted_loss not in _TARGETED_LOSSES:
            raise checks.VisualizationError(
                f"targeted_loss must be one of {_TARGETED_LOSSES}; got {self.targeted_loss!r}")
        if self.optimize.optimizer == "lbfgs":
            raise checks.VisualizationError(
                "the iterative attack takes signed first-order steps: use optimizer 'sgd'")

    @property
    def step_size(self) -> float:
        """alpha, the iterative attack's step in pixel units (``optimize.learning_rate``)."""
        return self.optimize.learning_rate


def check_eps(eps) -> float:
    """``eps`` as a float in (0, 1], or an error giving the valid range."""
    try:
        e = float(eps)
    except (TypeError, ValueError):
        raise checks.VisualizationError(f"eps must be a number in (0, 1]; got {eps!r}") from None
    if not 0 < e <= 1:
        raise checks.VisualizationError(
            f"eps {eps!r} is out of range: the L-inf budget is in pixel units and must lie in "
            "(0, 1] (8/255 = 0.0314 is the usual CIFAR-10 budget)")
    return e


def linf_bounds(x: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """float32 (lo, hi) with ``max(x - eps, 0) <= lo <= x <= hi <= min(x + eps, 1)`` exactly.

    The bounds are computed in float64 and rounded *inwards* to float32, so clipping a float32
    image to them keeps every pixel inside the real interval ``[x - eps, x + eps] ∩ [0, 1]``.
    """
    x = np.asarray(x, np.float32)
    x64 = x.astype(np.float64)
    lo64, hi64 = np.maximum(x64 - eps, 0.0), np.minimum(x64 + eps, 1.0)
    lo, hi = lo64.astype(np.float32), hi64.astype(np.float32)
    lo = np.where(lo.astype(np.float64) < lo64, np.nextafter(lo, np.float32(np.inf)), lo)
    hi = np.where(hi.astype(np.float64) > hi64, np.nextafter(hi, np.float32(-np.inf)), hi)
    return lo.astype(np.float32), hi.astype(np.float32)


def perturbation_norms(original, adversarial) -> tuple[np.ndarray, np.ndarray]:
    """Per image: the L-inf and L2 norms of ``adversarial - original`` (pixel space, float64)."""
    d = np.asarray(adversarial, np.float64) - np.asarray(original, np.float64)
    flat = d.reshape(len(d), -1)
    return np.abs(flat).max(axis=1), np.sqrt((flat**2).sum(axis=1))


# -- the loss -------------------------------------------------------------------------------
def attack_terms(model, pixels, labels, targets, config: AdversarialConfig, mean, std) -> dict:
    """The terms the attack MINIMISES at ``pixels`` (summed over the batch):

    untargeted ``{"neg_ce": -CE(f(x), y)}``; targeted ``{"target_ce": CE(f(x), t)}`` (ascent on
    log p_t) or ``{"neg_target_score": -S_t(x)}``.
    """
    model = contract_model(model)
    m = tf.constant(np.asarray(mean, np.float32).reshape(1, -1, 1, 1))
    s = tf.constant(np.asarray(std, np.float32).reshape(1, -1, 1, 1))
    logits = model((pixels - m) / s)
    if targets is None:
        return {"neg_ce": -_cross_entropy(logits, labels)}
    if config.targeted_loss == "log_prob":
        return {"target_ce": _cross_entropy(logits, targets)}
    idx = tf.stack([tf.range(tf.shape(logits)[0]), tf.constant(targets, tf.int32)], axis=1)
    return {"neg_target_score": -tf.reduce_sum(tf.gather_nd(logits, idx))}


def _cross_entropy(logits, labels) -> tf.Tensor:
    """Summed cross-entropy, computed in float64 from the float32 logits.

    Its gradient with respect to the logits is ``softmax - onehot``; for a confidently
    classified image (``1 - p_y`` below float32's 6e-8 resolution near 1) float32 loses that
    difference to cancellation and the input gradient becomes rounding noise, whose signs
    FGSM / PGD would follow. In float64 the gradient keeps its direction; the network's own
    backward pass stays float32.
    """
    logits64 = tf.cast(logits, tf.float64)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant(labels), logits64)
    return tf.cast(tf.reduce_sum(ce), logits.dtype)


def _prepare(model, images, labels, target, preprocessing):
    model = contract_model(model)
    pixels, x_norm = checks.model_input(model, images, preprocessing=preprocessing)
    n = checks.num_classes(model)
    probs = tf.nn.softmax(model(x_norm), axis=-1).numpy()
    if labels is None:
        labels = probs.argmax(axis=1)
    labels = np.atleast_1d(np.asarray(labels))
    if labels.shape != (len(pixels),):
        raise checks.VisualizationError(
            f"give one label per image: {len(pixels)} images, labels of shape {labels.shape}")
    labels = np.array([checks.check_class(model, v, classes=n) for v in labels], np.int64)
    targets = None
    if target is not None:
        t = np.atleast_1d(np.asarray(target))
        if t.size == 1:
            t = np.repeat(t, len(pixels))
        if t.shape != (len(pixels),):
            raise checks.VisualizationError(
                f"give one target class, or one per image ({len(pixels)}); got shape {t.shape}")
        targets = np.array([checks.check_class(model, v, classes=n) for v in t], np.int64)
    return pixels, labels, targets, probs


def _gradient(model, pixels, labels, targets, config, mean, std) -> np.ndarray:
    model = contract_model(model)
    p = tf.constant(pixels)
    with tf.GradientTape() as tape:
        tape.watch(p)
        loss = tf.add_n(list(attack_terms(model, p, labels, targets, config, mean, std).values()))
    return tape.gradient(loss, p).numpy()


def fgsm(
    model,
    images,
    labels=None,
    config: AdversarialConfig | None = None,
    *,
    target=None,
    preprocessing=None,
) -> Result:
    """The fast gradient sign method (Goodfellow et al. 2015): one step of size ``eps``.

    Untargeted: ``x + eps sign(grad CE(x, y))``; targeted: ``x - eps sign(grad CE(x, t))``
    (or along the target score's gradient), then clipped to [0, 1].

    Args:
        model: a classifier returning logits.
        images: pixels in [0, 1] (N, 3, H, W) (or a bundled name / file, loaded at the model's
            size); fixed-size models refuse other sizes.
        labels: the true classes (default: the model's predictions on the clean images).
        config: :class:`AdversarialConfig` (``eps`` is used).
        target: a target class, or one per image, for a targeted attack.
        preprocessing: (mean, std) of the model input; the zoo's record by default.

    Returns:
        a :class:`tf_impl.result.Result` (see :func:`pgd`).
    """
    model = contract_model(model)
    config = config or AdversarialConfig()
    t0 = time.perf_counter()
    pixels, labels, targets, probs = _prepare(model, images, labels, target, preprocessing)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    grad = _gradient(model, pixels, labels, targets, config, mean, std)
    lo, hi = linf_bounds(pixels, config.eps)
    adv = np.clip(pixels - np.float32(config.eps) * np.sign(grad), lo, hi).astype(np.float32)
    loss = float(tf.add_n(list(attack_terms(model, tf.constant(pixels), labels, targets, config,
                                            mean, std).values())))
    history = {"loss": [loss], _term_name(targets, config): [loss]}
    return _finish("fgsm", model, pixels, adv, labels, targets, probs, config, mean, std,
                   history, time.perf_counter() - t0, 1, None, "")


def pgd(
    model,
    images,
    labels=None,
    config: AdversarialConfig | None = None,
    *,
    target=None,
    preprocessing=None,
    callback: Callable | None = None,
) -> Result:
    """The iterative attack (Kurakin et al. 2017; Madry et al. 2018 with ``random_start``).

    ``steps`` signed-gradient steps of ``step_size``, each followed by the exact projection
    onto ``[x - eps, x + eps] ∩ [0, 1]``; arguments as :func:`fgsm`, plus ``callback(step,
    loss, terms, optimization)`` after each step (return True to stop). Ctrl-C stops and
    keeps the current (valid) adversarial images.

    Returns:
        a :class:`tf_impl.result.Result`: ``image`` the adversarial pixels, ``original`` the
        clean ones, ``history`` the attack loss per step; ``extra`` per image: ``labels``,
        ``targets``, ``pred_before``/``prob_before`` and ``pred_after``/``prob_after`` (the
        predicted class and its softmax probability), ``success``, ``linf`` and ``l2`` (pixel
        space); ``metrics``: ``success_rate``, ``accuracy_before``/``after``, the mean and max
        L-inf and the mean L2.
    """
    model = contract_model(model)
    config = config or AdversarialConfig()
    pixels, labels, targets, probs = _prepare(model, images, labels, target, preprocessing)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    lo, hi = linf_bounds(pixels, config.eps)
    start = pixels
    if config.random_start:
        noise = np.random.default_rng(config.seed).uniform(-config.eps, config.eps, pixels.shape)
        start = np.clip(pixels + noise.astype(np.float32), lo, hi).astype(np.float32)

    def objective(p):
        return attack_terms(model, p, labels, targets, config, mean, std)

    opt = Optimization(objective, start, config.optimize, box=(lo, hi))

    def each_step(step, loss, terms, o):
        if callback is not None and callback(step, loss, terms, o):
            return True
        if config.early_stop:
            ok = _success(_predict(model, o.value(), mean, std).argmax(1), labels, targets)
            return bool(ok.all())
        return False

    run = opt.run(callback=each_step)
    adv = np.clip(run.x, lo, hi).astype(np.float32)  # a no-op after a step; kept as a guarantee
    return _finish("pgd", model, pixels, adv, labels, targets, probs, config, mean, std,
                   run.history, run.seconds, run.steps_done, run.stopped, run.message)


def attack(model, images, labels=None, config: AdversarialConfig | None = None, *,
           method: str = "pgd", **kwargs) -> Result:
    """:func:`pgd` or :func:`fgsm` by name."""
    model = contract_model(model)
    if method not in _METHODS:
        raise checks.VisualizationError(f"method must be one of {_METHODS}; got {method!r}")
    if getattr(images, "ndim", 0) == 4:  # the whole batch is attacked at once
        memory.check_memory(model, tuple(images.shape), None, factor=memory.GRADIENT,
                            items="images")
    if method == "fgsm":
        kwargs.pop("callback", None)
        return fgsm(model, images, labels, config, **kwargs)
    return pgd(model, images, labels, config, **kwargs)


def _term_name(targets, config) -> str:
    if targets is None:
        return "neg_ce"
    return "target_ce" if config.targeted_loss == "log_prob" else "neg_target_score"


def _predict(model, pixels, mean, std) -> np.ndarray:
    model = contract_model(model)
    return tf.nn.softmax(model(imgs.normalize(pixels, mean, std)), axis=-1).numpy()


def _success(pred, labels, targets) -> np.ndarray:
    return pred == targets if targets is not None else pred != labels


def _finish(method, model, pixels, adv, labels, targets, probs, config, mean, std, history,
            seconds, steps, stopped, message) -> Result:
    model = contract_model(model)
    after = _predict(model, adv, mean, std)
    pred0, pred1 = probs.argmax(1), after.argmax(1)
    idx = np.arange(len(pixels))
    success = _success(pred1, labels, targets)
    linf, l2 = perturbation_norms(pixels, adv)
    extra = {
        "method": method,
        "eps": config.eps,
        "labels": labels.tolist(),
        "targets": None if targets is None else targets.tolist(),
        "pred_before": pred0.tolist(), "prob_before": probs[idx, pred0].tolist(),
        "pred_after": pred1.tolist(), "prob_after": after[idx, pred1].tolist(),
        "true_prob_before": probs[idx, labels].tolist(),
        "true_prob_after": after[idx, labels].tolist(),
        "success": success.tolist(),
        "linf": linf.tolist(), "l2": l2.tolist(),
    }
    if targets is not None:
        extra["target_prob_after"] = after[idx, targets].tolist()
    metrics = {
        "success_rate": float(success.mean()),
        "accuracy_before": float((pred0 == labels).mean()),
        "accuracy_after": float((pred1 == labels).mean()),
        "linf_mean": float(linf.mean()), "linf_max": float(linf.max()),
        "l2_mean": float(l2.mean()),
    }
    return Result(technique=f"adversarial_{method}", image=adv, best_image=adv, original=pixels,
                  history=history, config=config.to_dict(), metrics=metrics, seconds=seconds,
                  steps=steps, stopped=stopped, message=message, extra=extra)


def amplified_perturbation(result: Result) -> np.ndarray:
    """The perturbation mapped to [0, 1] for display: 0.5 + delta / (2 eps) (grey = none)."""
    eps = float(result.extra["eps"])
    return np.clip(0.5 + (result.image - result.original) / (2 * eps), 0, 1).astype(np.float32)


def draw_adversarial(path, result: Result, *, class_names: Sequence[str] | None = None,
                     max_images: int = 8, title: str = "") -> None:
    """One row per image: the original with its prediction, the perturbation (amplified to the
    full grey range, 0.5 + delta / 2 eps) and the adversarial image with its prediction."""
    from ..report import image_grid_figure

    ex = result.extra
    name = (lambda k: class_names[k]) if class_names else str  # noqa: E731
    amp = amplified_perturbation(result)
    panels = []
    for i in range(min(len(result.image), max_images)):
        mark = "fooled" if ex["success"][i] else "not fooled"
        panels += [
            (f"{name(ex['pred_before'][i])} ({ex['prob_before'][i]:.2f})\ntrue "
             f"{name(ex['labels'][i])}", result.original[i:i + 1]),
            (f"perturbation x{0.5 / ex['eps']:.0f}\nLinf {ex['linf'][i] * 255:.1f}/255, "
             f"L2 {ex['l2'][i]:.2f}", amp[i:i + 1]),
            (f"{name(ex['pred_after'][i])} ({ex['prob_after'][i]:.2f})\n{mark}",
             result.image[i:i + 1]),
        ]
    image_grid_figure(path, panels, ncols=3, size=2.2, title=title or (
        f"{ex['method'].upper()}, eps {ex['eps'] * 255:.1f}/255: "
        f"{result.metrics['success_rate']:.0%} fooled"))
