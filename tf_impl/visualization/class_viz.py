"""Class model visualization: the image a classifier finds most typical of a class.

Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks: Visualising Image
Classification Models and Saliency Maps", ICLR workshop 2014, section 2:

    I* = argmax_I  S_c(I) - lambda * ||I||_2^2

with S_c the class's *unnormalised* score (the logit, not the softmax probability, whose
maximisation would mostly push the other classes down), found by gradient ascent from the zero
image. Here ``I`` is the model's normalised input, so the zero image is the data mean, as in the
paper (which added the mean back for display).

The regularisers of the CS231n variant (Stanford CS231n, assignment 3, "Network
Visualization", after Yosinski et al. 2015) are options: a random circular shift of up to
``jitter`` pixels before each step (``tf.roll`` inside the objective, by a shift drawn in
advance from ``seed``, which is the same as CS231n's roll / step / roll back), a Gaussian blur
every ``blur_every`` steps (applied to the iterate by the run's callback), a total-variation
term, and a step along the gradient divided by its L2 norm (per image). The pixels stay in the
valid box [0, 1] (in normalised space: :func:`tf_impl.optimize.pixel_box`).

The optimisation is the shared loop :class:`tf_impl.optimize.Optimization`; the objective
returns ``{"score": -S_c, "l2": lambda ||I||^2, "tv": ...}``, which it minimises.

Example:
    >>> import model_zoo
    >>> from converters import onnx_to_tf
    >>> model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))          # doctest: +SKIP
    >>> result = class_visualization(model, 3, ClassVizConfig().with_(steps=50))  # doctest: +SKIP
    >>> result.image.shape, result.metrics["score_end"] > result.metrics["score_start"]
    ((1, 3, 32, 32), True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from .. import images as imgs
from .. import memory
from ..attribution.common import target_scores
from ..feature_inversion import gaussian_blur
from ..optimize import Optimization, OptimizeConfig, pixel_box, seeded_noise
from ..priors import TotalVariation
from ..result import Result
from ..torch_optimizers import make_optimizer
from . import checks
from .checks import VisualizationConfig

_INITS = ("noise", "zeros")
# CS231n's learning rate is for 224x224 images: with the step divided by the gradient's L2 norm,
# a pixel moves by about learning_rate / sqrt(3 * H * W)
REFERENCE_SIZE = 224


@dataclass(frozen=True)
class ClassVizConfig(VisualizationConfig):
    """Defaults of class model visualization.

    Simonyan et al. 2014 give the objective (S_c(I) - lambda ||I||^2, plain gradient ascent
    from the zero image) but no numbers; the numbers are those of the CS231n assignment
    (``create_class_visualization``: l2_reg 1e-3, learning rate 25, 100 iterations, jitter
    16, blur every 10 iterations with sigma 0.5, for 224x224 ImageNet images, start
    ``randn`` in normalised space, step ``lr * g / ||g||_2``).

    Attributes:
        l2_reg: lambda, on the sum of squares of the normalised image (CS231n: 1e-3).
        tv_weight: weight of TV^2 (mean over pixel values, :class:`tf_impl.priors.TotalVariation`);
            0 (off) in both sources.
        jitter: largest random circular shift in pixels per step, along each axis (CS231n 16;
            0 turns it off). Shifts are drawn uniformly from [-jitter, jitter] with ``seed``.
        blur_every, blur_sigma: Gaussian blur of the iterate after steps 1, 1 + k, 1 + 2k, ...
            (CS231n blurs at ``t % blur_every == 0``; 0 turns it off), sigma in pixels (0.5).
        normalize_gradient: divide each image's gradient by its L2 norm before the optimizer
            step (CS231n); with SGD this is the update ``I += lr * g / ||g||``.
        scale_with_size: adapt CS231n's 224x224 settings to the image size: the learning
            rate times sqrt(H * W) / 224, so that a pixel moves as far per step (with
            ``normalize_gradient``), and the jitter times max(H, W) / 224 (at least 1), so that
            it shifts the same share of the image. 32x32 CIFAR images get lr 25 / 7 and
            jitter 2 (a 16-pixel roll of a 32-pixel image gave visibly worse pictures and half
            the class score after 100 steps on resnet20_cifar).
        init: ``"noise"`` (CS231n: N(0, init_std^2) in normalised space, seeded) or
            ``"zeros"`` (Simonyan: the zero image, i.e. the data mean).
        init_std, seed: the noise scale and the seed of the noise and the jitter.
        clip_to_pixels: keep the image in the valid pixel box after each step.
        optimize: the shared loop's settings (SGD, lr 25, 100 steps).
    """

    l2_reg: float = 1e-3
    tv_weight: float = 0.0
    jitter: int = 16
    blur_every: int = 10
    blur_sigma: float = 0.5
    normalize_gradient: bool = True
    scale_with_size: bool = True
    init: str = "noise"
    init_std: float = 1.0
    seed: int = 0
    clip_to_pixels: bool = True
    optimize: OptimizeConfig = field(
        default_factory=lambda: OptimizeConfig(steps=100, optimizer="sgd", learning_rate=25.0)
    )

    def validate(self) -> None:
        if self.init not in _INITS:
            raise checks.VisualizationError(
                f"init must be one of {_INITS} (or pass init=array); got {self.init!r}")
        for name in ("l2_reg", "tv_weight", "jitter", "blur_every", "blur_sigma", "init_std"):
            if not getattr(self, name) >= 0:
                raise checks.VisualizationError(
                    f"{name} must be >= 0 (0 turns it off); got {getattr(self, name)}")
        if self.normalize_gradient and self.optimize.optimizer == "lbfgs":
            raise checks.VisualizationError(
                "normalize_gradient needs a first-order optimizer ('sgd' or 'adam'), not lbfgs")


# -- pieces shared with DeepDream ----------------------------------------------------------------
def normalize_per_image(g: tf.Tensor, norm: str) -> tf.Tensor:
    """Each image's gradient divided by its ``"l2"`` norm or its ``"mean_abs"`` value.

    The divisor is floored at 1e-30, so an all-zero gradient stays zero.
    """
    axes = list(range(1, g.shape.rank))
    if norm == "l2":
        d = tf.sqrt(tf.reduce_sum(tf.square(g), axis=axes, keepdims=True))
    elif norm == "mean_abs":
        d = tf.reduce_mean(tf.abs(g), axis=axes, keepdims=True)
    else:
        raise ValueError(f"norm must be 'l2' or 'mean_abs'; got {norm!r}")
    return g / tf.maximum(d, tf.constant(1e-30, g.dtype))


class NormalizedGradientOptimizer:
    """An optimizer that normalises each image's gradient (:func:`normalize_per_image`) and
    hands it to ``config``'s optimizer; pass it as ``Optimization(..., optimizer=...)``."""

    def __init__(self, config: OptimizeConfig, norm: str):
        kwargs: dict = {}
        if config.optimizer == "adam":
            kwargs = {"beta_1": config.betas[0], "beta_2": config.betas[1],
                      "epsilon": config.epsilon}
        elif config.optimizer == "sgd":
            kwargs = {"momentum": config.momentum}
        else:
            raise ValueError("gradient normalisation needs 'sgd' or 'adam', not "
                             f"{config.optimizer!r}")
        self.inner = make_optimizer(config.optimizer, config.learning_rate, **kwargs)
        self.learning_rate = self.inner.learning_rate  # the loop's schedule assigns to it
        self.norm = norm

    def apply_gradients(self, grads_and_vars) -> None:
        self.inner.apply_gradients(
            [(normalize_per_image(g, self.norm), v) for g, v in grads_and_vars])


class RandomShift:
    """Per-step circular shifts (dy, dx) drawn uniformly from [-jitter, jitter] with ``seed``.

    ``shift(x)`` rolls an NCHW batch by the current shift (a ``tf.Variable``, so a compiled
    objective sees each new value); ``advance(step)`` selects the shift of 0-based ``step``.
    """

    def __init__(self, jitter: int, steps: int, seed: int):
        self.jitter = int(jitter)
        rng = np.random.default_rng(seed)
        self.shifts = rng.integers(-self.jitter, self.jitter + 1, size=(steps + 1, 2))
        self.variable = tf.Variable(self.shifts[0].astype(np.int32), trainable=False,
                                    name="shift")

    def advance(self, step: int) -> None:
        self.variable.assign(self.shifts[min(step, len(self.shifts) - 1)].astype(np.int32))

    def shift(self, x):
        if not self.jitter:
            return x
        return tf.roll(x, shift=self.variable, axis=[2, 3])


# -- the objective --------------------------------------------------------------------------------
def build_objective(model, targets: Sequence[int], config: ClassVizConfig,
                    shift: RandomShift | None = None) -> Callable:
    """``x -> {"score": -sum S_c, "l2": lambda ||x||^2, "tv": ...}`` on normalised input ``x``
    (the score is read at the shifted image when ``shift`` is given)."""
    model = contract_model(model)
    targets = [int(t) for t in targets]
    tv = TotalVariation(2.0, normalize=True) if config.tv_weight else None

    def objective(x):
        seen = shift.shift(x) if shift is not None else x
        terms = {"score": -tf.reduce_sum(target_scores(model, seen, targets)),
                 "l2": config.l2_reg * tf.reduce_sum(tf.square(x))}
        if tv is not None:
            terms["tv"] = config.tv_weight * tv.value(x)
        return terms

    return objective


def initial_input(config: ClassVizConfig, shape, box=None) -> np.ndarray:
    """The start in normalised space: seeded N(0, init_std^2) noise or zeros, inside ``box``."""
    if config.init == "noise":
        x = seeded_noise(shape, config.seed, config.init_std)
    else:
        x = np.zeros(shape, np.float32)
    if box is not None:
        x = np.clip(x, box[0], box[1])
    return x.astype(np.float32)


def effective_learning_rate(config: ClassVizConfig, size: tuple[int, int]) -> float:
    """The learning rate used at image ``size`` (see ``scale_with_size``)."""
    lr = config.optimize.learning_rate
    if config.normalize_gradient and config.scale_with_size:
        lr *= float(np.sqrt(size[0] * size[1])) / REFERENCE_SIZE
    return lr


def effective_jitter(config: ClassVizConfig, size: tuple[int, int]) -> int:
    """The largest shift used at image ``size`` (see ``scale_with_size``)."""
    if not config.jitter or not config.scale_with_size:
        return int(config.jitter)
    return max(1, round(config.jitter * max(size) / REFERENCE_SIZE))


def _targets(model, target) -> list[int]:
    model = contract_model(model)
    targets = [target] if np.isscalar(target) else list(target)
    if not targets:
        raise checks.VisualizationError("give at least one class index, e.g. target=3")
    n = checks.num_classes(model)
    return [checks.check_class(model, t, classes=n) for t in targets]


def class_visualization(
    model,
    target: int | Sequence[int],
    config: ClassVizConfig | None = None,
    *,
    size: int | None = None,
    init: np.ndarray | None = None,
    preprocessing=None,
    callback: Callable | None = None,
    class_names: Sequence[str] | None = None,
) -> Result:
    """Synthesize an image that maximises class ``target``'s score (Simonyan et al. 2014).

    Args:
        model: a classifier (:class:`converters.onnx_to_tf.TFModel` returning logits).
        target: a class index, or several (one image each, optimised as one batch).
        config: :class:`ClassVizConfig` (CS231n's defaults when omitted).
        size: image side for models that take any size (default 224); fixed-size models use
            their own, and another ``size`` is refused.
        init: an explicit start in pixel space, (N, 3, H, W) in [0, 1].
        preprocessing: (mean, std) of the model input; the zoo's record by default.
        callback: ``callback(step, loss, terms, optimization)`` after each step (after the
            blur); return True to stop.
        class_names: names for ``result.extra``; the zoo's by default.

    Returns:
        a :class:`tf_impl.result.Result`: ``image`` in pixel space, the history of
        ``score`` (= -S_c summed over the batch), ``l2``, ``tv``; ``metrics`` with the mean
        score and softmax probability of the target at the start and the end; ``extra`` with
        the targets, their names and the per-image scores and probabilities.
    """
    model = contract_model(model)
    config = config or ClassVizConfig()
    targets = _targets(model, target)
    hw = _image_size(model, size)
    memory.check_memory(model, (len(targets), 3, *hw), None, items="classes")  # all at once
    mean, std = preprocessing or imgs.preprocessing_of(model)
    box = pixel_box(mean, std, channels=3)
    x0 = _start(init, config, (len(targets), 3, *hw), mean, std, box)
    steps = config.optimize.steps
    jitter = effective_jitter(config, hw)
    shift = RandomShift(jitter, steps, config.seed) if jitter else None
    objective = build_objective(model, targets, config, shift)
    lr = effective_learning_rate(config, hw)
    opt_cfg = replace(config.optimize, learning_rate=lr)  # the loop schedules from this lr
    optimizer = NormalizedGradientOptimizer(opt_cfg, "l2") if config.normalize_gradient else None
    opt = Optimization(objective, x0, opt_cfg, box=box if config.clip_to_pixels else None,
                       optimizer=optimizer)

    def each_step(step, loss, terms, o):
        if shift is not None:
            shift.advance(step)
        if config.blur_every and config.blur_sigma > 0 and (step - 1) % config.blur_every == 0:
            o.set_value(gaussian_blur(o.value(), config.blur_sigma))
        return bool(callback(step, loss, terms, o)) if callback is not None else False

    x0_scores, x0_probs = _scores_and_probs(model, x0, targets)
    run = opt.run(callback=each_step)
    final = run.x
    scores, probs = _scores_and_probs(model, final, targets)
    to_px = lambda v: np.clip(imgs.denormalize(v, mean, std), 0, 1)  # noqa: E731
    names = _class_names(model, class_names)
    return Result(
        technique="class_visualization",
        image=to_px(final),
        best_image=to_px(run.best),
        history=run.history,
        config={**config.to_dict(), "effective_learning_rate": lr, "effective_jitter": jitter},
        seconds=run.seconds,
        steps=run.steps_done,
        stopped=run.stopped,
        message=run.message,
        snapshots=[(s, to_px(v)) for s, v in run.snapshots],
        metrics={"score_start": float(np.mean(x0_scores)), "score_end": float(np.mean(scores)),
                 "prob_start": float(np.mean(x0_probs)), "prob_end": float(np.mean(probs))},
        extra={"targets": targets,
               "class_names": [names[t] if names else str(t) for t in targets],
               "scores": scores.tolist(), "probs": probs.tolist(),
               "scores_start": x0_scores.tolist(), "size": list(hw)},
    )


def _image_size(model, size: int | None) -> tuple[int, int]:
    """The model's fixed (H, W) (another ``size`` is refused), else ``size`` (224 default)."""
    fixed = checks.fixed_size(model)
    if fixed is not None:
        if size is not None and (size, size) != fixed:
            raise checks.VisualizationError(
                f"this model takes {fixed[0]}x{fixed[1]} images; got size={size}. Leave size out")
        return fixed
    side = 224 if size is None else int(size)
    if side < 16:
        raise checks.VisualizationError(f"size {side} is too small; use at least 16")
    return side, side


def _start(init, config: ClassVizConfig, shape, mean, std, box) -> np.ndarray:
    """The start in the model's input space: ``init`` (pixels) when given, else the config's."""
    if init is None:
        return initial_input(config, shape, box if config.clip_to_pixels else None)
    start_px = imgs.as_pixels(init, name="init").pixels
    if start_px.shape != shape:
        raise checks.VisualizationError(f"init has shape {start_px.shape}; expected {shape}")
    return imgs.normalize(start_px, mean, std)


def _scores_and_probs(model, x, targets) -> tuple[np.ndarray, np.ndarray]:
    model = contract_model(model)
    logits = model(tf.constant(x))
    idx = np.arange(len(targets))
    probs = tf.nn.softmax(logits, axis=-1).numpy()[idx, targets]
    return logits.numpy()[idx, targets], probs


def _class_names(model, given=None) -> list[str] | None:
    model = contract_model(model)
    if given is not None:
        return list(given)
    name = getattr(model, "metadata", {}).get("model_zoo.name")
    if name:
        import model_zoo

        names = model_zoo.info(name).class_names
        return list(names) if names else None
    return None


def draw_class_viz(path, result: Result, *, title: str = "") -> None:
    """The visualisation(s), each captioned with its class, score and probability."""
    from ..report import image_grid_figure

    ex = result.extra
    panels = [(f"{name}\nscore {s:.1f}, p {p:.3f}", result.image[i:i + 1])
              for i, (name, s, p) in enumerate(zip(ex["class_names"], ex["scores"], ex["probs"]))]
    image_grid_figure(path, panels, title=title or "class model visualization")
