"""DeepDream: amplify what a layer already sees in a picture.

Mordvintsev, Olah & Tyka, "Inceptionism: Going Deeper into Neural Networks", Google Research
blog, 2015, and their ``deepdream.ipynb``: gradient *ascent* on the input to maximise a
layer's activations, "whatever you see there, I want more of it":

- objective: ``mean(a^2)`` over the layer's activations ``a`` (the notebook's ``objective_L2``,
  0.5 sum a^2, has the same normalised gradient) or ``||a||_2``; several layers add up;
- normalised step: ``x += step_size * g / mean(|g|)`` (per image), then clip to valid pixels;
- random circular shifts (``np.roll``) of up to ``jitter`` pixels before each step, undone
  after it (here: ``tf.roll`` inside the objective, which is the same thing);
- octaves: the picture is processed from small to large, ``octave_scale`` (1.4) apart; after
  each octave the *detail* it added (result minus the octave's base image) is upscaled and
  added to the next octave's base, so the detail lost by resizing comes back.

The image lives in pixel space [0, 1] (the step size is in pixel units: the notebook's 1.5 on
0..255 is 1.5/255); the model's normalisation is applied inside the objective. Each octave is
one run of the shared loop (:class:`tf_impl.optimize.Optimization`, SGD on the normalised
gradient); one progress bar counts octaves x steps, and Ctrl-C keeps the detail produced so
far (added to the full-size picture).

Fixed-size models (resnet20_cifar takes only 32x32) cannot see other sizes: they run one
octave, with a note.

Example:
    >>> import model_zoo
    >>> from converters import onnx_to_tf
    >>> model = onnx_to_tf.load(model_zoo.load("vgg16_features"))       # doctest: +SKIP
    >>> result = deepdream(model, "tubingen", "relu4_3")                  # doctest: +SKIP
    >>> result.image.shape                                                 # doctest: +SKIP
    (1, 3, 224, 224)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import contract_model

from .. import images as imgs
from .. import memory
from ..loop import run_steps
from ..optimize import Optimization, OptimizeConfig
from ..result import Result
from . import checks
from .checks import VisualizationConfig
from .class_viz import NormalizedGradientOptimizer, RandomShift

_OBJECTIVES = ("mean_square", "l2_norm")


@dataclass(frozen=True)
class DeepDreamConfig(VisualizationConfig):
    """Defaults of DeepDream, from Mordvintsev et al.'s ``deepdream.ipynb`` (``make_step``:
    step_size 1.5 on 0..255 pixels, jitter 32; ``deepdream``: iter_n 10 per octave, octave_n
    4, octave_scale 1.4). The TF tutorial uses octave scale 1.3 and a step of 0.01 on [-1, 1]
    pixels with the gradient divided by its standard deviation instead.

    Attributes:
        objective: ``"mean_square"`` (mean of a^2 over the layer; the notebook's L2
            objective up to a constant) or ``"l2_norm"`` (||a||_2).
        octaves: number of octaves (4); the smallest is ``octave_scale ** (octaves - 1)``
            times smaller than the picture.
        octave_scale: size ratio between octaves (1.4).
        jitter: largest random circular shift in pixels per step and axis (32; 0: off).
        min_size: octaves whose shorter side would fall below this are skipped (with a note).
        clip_to_pixels: keep the picture in [0, 1] after each step (the notebook's ``clip``).
        seed: seed of the shifts.
        optimize: the shared loop: SGD with learning rate = the step size (1.5/255) on the
            gradient divided by its mean absolute value; ``steps`` per octave (10). Eager
            (``compile=False``): every octave has its own image size, so a compiled step would
            be traced anew for each octave's 10 steps, which costs more than it saves
            (measured on vgg16_features at 224: 49 s compiled, 30 s eager).
    """

    objective: str = "mean_square"
    octaves: int = 4
    octave_scale: float = 1.4
    jitter: int = 32
    min_size: int = 32
    clip_to_pixels: bool = True
    seed: int = 0
    optimize: OptimizeConfig = field(
        default_factory=lambda: OptimizeConfig(
            steps=10, optimizer="sgd", learning_rate=1.5 / 255, compile=False)
    )

    def validate(self) -> None:
        if self.objective not in _OBJECTIVES:
            raise checks.VisualizationError(
                f"objective must be one of {_OBJECTIVES}; got {self.objective!r}")
        if self.octaves < 1:
            raise checks.VisualizationError(f"octaves must be >= 1; got {self.octaves}")
        if not self.octave_scale > 1:
            raise checks.VisualizationError(
                f"octave_scale must be > 1 (1.4 in the paper's notebook); got {self.octave_scale}")
        if self.jitter < 0 or self.min_size < 1:
            raise checks.VisualizationError("jitter must be >= 0 and min_size >= 1")
        if self.optimize.optimizer == "lbfgs":
            raise checks.VisualizationError("DeepDream takes normalised first-order steps: use "
                                            "optimizer 'sgd' (or 'adam')")


def layer_objective(model, layers: Sequence[str], config: DeepDreamConfig, mean, std,
                    shift: RandomShift | None = None) -> Callable:
    """``pixels -> {"dream": -sum over layers of mean(a^2) (or ||a||_2)}`` (minimised), read at
    the shifted picture when ``shift`` is given."""
    model = contract_model(model)
    m = tf.constant(np.asarray(mean, np.float32).reshape(1, -1, 1, 1))
    s = tf.constant(np.asarray(std, np.float32).reshape(1, -1, 1, 1))
    layers = list(layers)

    def objective(p):
        seen = shift.shift(p) if shift is not None else p
        feats = model((seen - m) / s, taps=layers)
        total = []
        for layer in layers:
            a = feats[layer]
            if config.objective == "mean_square":
                total.append(tf.reduce_mean(tf.square(a)))
            else:
                total.append(tf.sqrt(tf.reduce_sum(tf.square(a))))
        return {"dream": -tf.add_n(total)}

    return objective


def octave_sizes(height: int, width: int, config: DeepDreamConfig) -> tuple[list, list[str]]:
    """The octaves' (H, W), smallest first, and notes about octaves skipped as too small."""
    sizes, notes = [], []
    for k in reversed(range(config.octaves)):
        f = config.octave_scale ** k
        hw = (max(1, round(height / f)), max(1, round(width / f)))
        if min(hw) < config.min_size and k > 0:
            notes.append(f"octave {config.octaves - k} of {config.octaves} ({hw[0]}x{hw[1]}) "
                         f"skipped: smaller than min_size {config.min_size}")
            continue
        sizes.append(hw)
    return sizes, notes


def resize(pixels: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an NCHW batch (antialiased when shrinking)."""
    if tuple(pixels.shape[-2:]) == tuple(hw):
        return np.asarray(pixels, np.float32)
    shrink = hw[0] < pixels.shape[-2]
    x = tf.transpose(tf.constant(pixels, tf.float32), [0, 2, 3, 1])
    x = tf.image.resize(x, hw, method="bilinear", antialias=shrink)
    return tf.transpose(x, [0, 3, 1, 2]).numpy()


class _Octaves:
    """The octaves run as one loop of global steps: the first step of an octave resizes the
    detail added so far to the octave's size and starts the octave's optimisation."""

    def __init__(self, original, sizes, objective, config: DeepDreamConfig, shift):
        self.original, self.sizes, self.objective = original, sizes, objective
        self.config, self.shift = config, shift
        self.history: dict[str, list[float]] = {}
        self.detail = np.zeros((*original.shape[:2], *sizes[0]), np.float32)
        self.done: list[int] = []  # steps done per finished octave
        self.octave, self.opt, self.base, self.loss = -1, None, None, float("nan")

    def step(self, step: int) -> dict[str, float]:
        """Global step ``step`` (1-based, over all octaves)."""
        steps, cfg = self.config.optimize.steps, self.config
        k = (step - 1) // steps
        if k != self.octave:
            self.finish()
            self.base = resize(self.original, self.sizes[k])
            self.detail = resize(self.detail, self.sizes[k])
            start = self.base + self.detail
            start = np.clip(start, 0.0, 1.0) if cfg.clip_to_pixels else start
            self.octave, self.opt = k, Optimization(
                self.objective, start, cfg.optimize,
                box=(0.0, 1.0) if cfg.clip_to_pixels else None,
                optimizer=NormalizedGradientOptimizer(cfg.optimize, "mean_abs"))
            if self.shift is not None:
                self.shift.advance(k * steps)
        self.loss, terms = self.opt.step()
        if self.shift is not None:
            self.shift.advance(step)
        return terms

    def finish(self) -> None:
        """End the octave being run: keep its history, steps and detail."""
        if self.opt is None:
            return
        for key, values in self.opt.history.items():
            self.history.setdefault(key, []).extend(values)
        self.done.append(self.opt.steps_done)
        self.detail = self.opt.value() - self.base
        self.opt = None


def deepdream(
    model,
    image,
    layers: str | Sequence[str],
    config: DeepDreamConfig | None = None,
    *,
    size: int = 224,
    preprocessing=None,
    callback: Callable | None = None,
    progress: bool | None = None,
) -> Result:
    """Dream on ``image``: amplify ``layers``' activations over octaves (Mordvintsev 2015).

    Args:
        model: any model with taps (e.g. ``vgg16_features``, ``resnet20_cifar``).
        image: pixels in [0, 1] (N, 3, H, W), a bundled name or a file (loaded at ``size``, or
            at the model's own size when it is fixed; fixed-size models refuse other sizes).
        layers: one layer alias / ONNX tensor name, or several (their objectives add up).
        config: :class:`DeepDreamConfig`.
        preprocessing: (mean, std); the zoo's record by default.
        callback: ``callback(global_step, loss, terms, optimization)`` after each step;
            return True to stop.
        progress: show the progress bar over octaves x steps (default:
            ``config.optimize.progress``).

    Returns:
        a :class:`tf_impl.result.Result`: ``image`` the dream at the picture's size,
        ``original``, ``history`` (``dream`` = -objective, per step over all octaves);
        ``extra``: layers, octave sizes, steps per octave done, notes.
    """
    model = contract_model(model)
    config = config or DeepDreamConfig()
    layers = [layers] if isinstance(layers, str) else list(layers)
    if not layers:
        raise checks.VisualizationError("give at least one layer, e.g. 'relu4_3'")
    for layer in layers:
        checks.check_layer(model, layer)
    original, name, notes, sizes = _picture_and_octaves(model, image, size, layers, config)
    mean, std = preprocessing or imgs.preprocessing_of(model)
    h, w = original.shape[-2:]
    steps = config.optimize.steps
    shift = RandomShift(config.jitter, steps * len(sizes), config.seed) if config.jitter else None
    objective = layer_objective(model, layers, config, mean, std, shift)
    show = config.optimize.progress if progress is None else progress
    run = _Octaves(original, sizes, objective, config, shift)
    # one loop over octaves x steps: one bar, one time budget, Ctrl-C keeps the detail so far
    out = run_steps(
        run.step, steps * len(sizes), desc="deepdream", progress=show,
        postfix=lambda _t: f"octave {run.octave + 1}/{len(sizes)} {-run.loss:.4g}",
        callback=None if callback is None else (
            lambda k, t: bool(callback(k, run.loss, t, run.opt))),
        max_seconds=config.optimize.max_seconds, kept="keeping the result", log="deepdream")
    run.finish()
    history, done_per_octave, detail = run.history, run.done, run.detail
    stopped, message, seconds = out.stopped, out.message, out.seconds
    if detail.shape[-2:] != original.shape[-2:] and not done_per_octave:
        detail = np.zeros_like(original)  # interrupted before the first step
    dream = resize(detail, (h, w)) + original
    dream = np.clip(dream, 0.0, 1.0).astype(np.float32)
    plain = layer_objective(model, layers, config, mean, std)  # unshifted, at full size
    if stopped and len(done_per_octave) < len(sizes):
        message += f" (at octave {len(done_per_octave)} of {len(sizes)}; its detail was upscaled)"
    return Result(
        technique="deepdream",
        image=dream,
        best_image=dream,
        original=original,
        history=history,
        config=config.to_dict(),
        seconds=seconds,
        steps=sum(done_per_octave),
        stopped=stopped,
        message=message,
        metrics={"objective_original": _objective_value(plain, original),
                 "objective_dream": _objective_value(plain, dream)},
        extra={"layers": layers, "image": name, "notes": notes,
               "octave_sizes": [list(s) for s in sizes], "steps_per_octave": done_per_octave},
    )


def _picture_and_octaves(model, image, size: int, layers, config: DeepDreamConfig):
    """The picture (pixels, name, notes) checked against the model and its memory, and the
    octave sizes (one octave for a fixed-size model, with a note saying so)."""
    if isinstance(image, str) or hasattr(image, "__fspath__"):
        fixed = checks.fixed_size(model)
        picture = imgs.load_image(image, fixed[0] if fixed else size)
        imgs.warn_notes(picture)
    else:
        picture = imgs.as_pixels(image)
    original, name, notes = picture.pixels, picture.name, list(picture.notes)
    checks.check_image_size(model, original)
    memory.check_memory(model, original.shape, layers)
    h, w = original.shape[-2:]
    if checks.fixed_size(model) is not None and config.octaves > 1:
        note = (f"this model takes only {h}x{w} inputs, so the {config.octaves} octaves "
                "(other sizes) are not possible: ran one octave")
        warnings.warn(note, stacklevel=3)
        notes.append(note)
        return original, name, notes, [(h, w)]
    sizes, skipped = octave_sizes(h, w, config)
    return original, name, notes + skipped, sizes


def _objective_value(objective, pixels) -> float:
    """The layer objective (mean a^2 or ||a||) at ``pixels``, summed over layers."""
    return float(-objective(tf.constant(pixels))["dream"])


def draw_deepdream(path, result: Result, *, title: str = "") -> None:
    """The picture beside its dream."""
    from ..report import image_grid_figure

    layers = ", ".join(result.extra["layers"])
    panels = []
    for i in range(len(result.image)):
        panels += [("original", result.original[i:i + 1]), (f"dream: {layers}",
                                                            result.image[i:i + 1])]
    image_grid_figure(path, panels, ncols=2, size=3.2, title=title or (
        f"DeepDream, {len(result.extra['octave_sizes'])} octaves x "
        f"{result.config['optimize']['steps']} steps"))
