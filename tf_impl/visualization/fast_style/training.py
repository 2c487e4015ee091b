"""Training the network: the perceptual losses, the content photos, the training loop."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from ... import images as imgs
from ...loop import run_steps
from ...torch_optimizers import Adam
from ..perceptual import content_loss, gram_matrix, style_loss
from .network import FastStyleConfig, FastStyleError, FastStyleNet


# -- losses -----------------------------------------------------------------------------------
class PerceptualLoss:
    """Johnson et al.'s losses on a pretrained VGG with the styles' Gram matrices precomputed.

    ``loss(net, content, style_index)`` -> {"content", "style", "tv", "loss"} (weighted sum),
    averaged over the batch; differentiable with respect to the network's weights.
    """

    def __init__(self, config: FastStyleConfig, vgg=None, style_pixels=None):
        self.config = config
        if vgg is None:
            import model_zoo
            from converters import onnx_to_tf

            vgg = onnx_to_tf.load(model_zoo.load(config.loss_model))
        self.vgg = vgg
        for layer in (config.content_layer, *config.style_layers):
            try:
                vgg.resolve(layer)
            except KeyError as err:
                raise FastStyleError(err.args[0] if err.args else str(err)) from None
        mean, std = imgs.preprocessing_of(vgg)
        self.mean = tf.constant(np.asarray(mean, np.float32).reshape(1, -1, 1, 1))
        self.std = tf.constant(np.asarray(std, np.float32).reshape(1, -1, 1, 1))
        if style_pixels is None:
            style_pixels = [load_style(s, config.style_size) for s in config.styles]
        if len(style_pixels) != len(config.styles):
            raise FastStyleError(f"{len(style_pixels)} style images for "
                                 f"{len(config.styles)} styles")
        per_style = [self.features(tf.constant(p), config.style_layers) for p in style_pixels]
        self.grams = {layer: tf.constant(np.concatenate(
            [gram_matrix(f[layer]).numpy() for f in per_style])) for layer in config.style_layers}

    def features(self, pixels, layers):
        return self.vgg((pixels - self.mean) / self.std, taps=list(layers))

    def __call__(self, net: FastStyleNet, content, style_index):
        cfg = self.config
        target = tf.stop_gradient(self.features(content, [cfg.content_layer])[cfg.content_layer])
        w = tf.one_hot(style_index, net.num_styles, dtype=tf.float32)
        y = net(content, w)
        layers = list(dict.fromkeys([cfg.content_layer, *cfg.style_layers]))
        feats = self.features(y, layers)
        c = content_loss({cfg.content_layer: feats[cfg.content_layer]},
                         {cfg.content_layer: target})
        grams = {layer: tf.gather(self.grams[layer], style_index) for layer in cfg.style_layers}
        s = style_loss(feats, grams)
        dx = y[:, :, :, 1:] - y[:, :, :, :-1]
        dy = y[:, :, 1:, :] - y[:, :, :-1, :]
        tv = tf.reduce_mean(tf.square(dx)) + tf.reduce_mean(tf.square(dy))
        loss = cfg.content_weight * c + cfg.style_weight * s + cfg.tv_weight * tv
        return {"loss": loss, "content": c, "style": s, "tv": tv}


def load_style(style: str, size: int) -> np.ndarray:
    """A style image (bundled name or path) as (1, 3, size, size) pixels."""
    try:
        return imgs.load_image(style, size).pixels[:1]
    except imgs.ImageError as err:
        raise FastStyleError(f"style image {style!r}: {err}") from None


def losses_on(model: FastStyleNet, loss: PerceptualLoss, content) -> dict[str, dict[str, float]]:
    """The losses of every style on a fixed content batch: {style name: {term: value}}."""
    px = tf.constant(np.asarray(content, np.float32))
    out = {}
    for i, name in enumerate(model.styles):
        terms = loss(model, px, tf.constant(i))
        out[name] = {k: float(v) for k, v in terms.items()}
    return out


# -- training data ----------------------------------------------------------------------------
HELD_OUT = ("tubingen", "astronaut")  # never trained on: the evaluation and demo pictures


def training_photos(size: int = 256) -> np.ndarray:
    """The bundled photos (not the style images, not :data:`HELD_OUT`) at ``size``, NCHW."""
    import model_zoo.data as data

    names = [n for n in data.list_images() if n not in data.SKIMAGE_NAMES
             and n not in HELD_OUT and data.image_path(n).parent.name != "style"]
    return np.concatenate([data.image(n, size=size, normalize=False) for n in names])


def _resize(px: np.ndarray, size: int) -> np.ndarray:
    x = tf.image.resize(np.transpose(px, (0, 2, 3, 1)), (size, size), method="bilinear",
                        antialias=True)
    return np.clip(np.transpose(x.numpy(), (0, 3, 1, 2)), 0, 1).astype(np.float32)


class ContentSampler:
    """Random training batches: crops (random position and flip) of the photos, and CIFAR-10
    training images upsampled to the crop size, mixed by ``cifar_fraction``."""

    def __init__(self, config: FastStyleConfig, photos: np.ndarray | None = None,
                 cifar: np.ndarray | None = None, seed: int | None = None):
        self.size = config.image_size
        self.fraction = config.cifar_fraction
        self.rng = np.random.default_rng(config.seed if seed is None else seed)
        if photos is None and config.cifar_fraction < 1:
            photos = training_photos(max(256, 2 * self.size))
        if cifar is None and config.cifar_fraction > 0:
            import model_zoo.data as data

            cifar = data.cifar10("train", normalize=False)[0]
        self.photos = photos
        self.cifar = cifar
        if photos is not None and min(photos.shape[2:]) < self.size:
            raise FastStyleError(f"content photos of {photos.shape[2]}x{photos.shape[3]} are "
                                 f"smaller than the {self.size}x{self.size} crops")

    def batch(self, n: int) -> np.ndarray:
        out = np.empty((n, 3, self.size, self.size), np.float32)
        from_cifar = self.rng.random(n) < self.fraction
        if self.photos is None:
            from_cifar[:] = True
        if self.cifar is None:
            from_cifar[:] = False
        k = int(from_cifar.sum())
        if k:
            idx = self.rng.integers(0, len(self.cifar), k)
            out[from_cifar] = _resize(self.cifar[idx], self.size)
        for i in np.flatnonzero(~from_cifar):
            img = self.photos[self.rng.integers(0, len(self.photos))]
            top = self.rng.integers(0, img.shape[1] - self.size + 1)
            left = self.rng.integers(0, img.shape[2] - self.size + 1)
            out[i] = img[:, top:top + self.size, left:left + self.size]
        flip = self.rng.random(n) < 0.5
        out[flip] = out[flip][:, :, :, ::-1]
        return out


def evaluation_batch(size: int) -> np.ndarray:
    """A fixed content batch never trained on: the held-out photos and 2 CIFAR-10 test images."""
    import model_zoo.data as data

    photos = np.concatenate([data.image(n, size=size, normalize=False) for n in HELD_OUT])
    cifar = _resize(data.cifar10("test", n=2, normalize=False)[0], size)
    return np.concatenate([photos, cifar])


# -- training ---------------------------------------------------------------------------------
@dataclass
class TrainResult:
    """What :func:`train` returns: the network, the per-step history and the losses of every
    style on a fixed held-out batch before and after training."""

    model: FastStyleNet
    history: dict[str, list[float]]
    steps: int
    seconds: float
    stopped: str | None = None  # None, "interrupted", "non-finite", "callback"
    message: str = ""
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        return self.stopped == "interrupted"

    def summary(self) -> dict:
        return {"steps": self.steps, "seconds": round(self.seconds, 2), "stopped": self.stopped,
                "message": self.message, "before": self.before, "after": self.after}


class _Step:
    """The compiled training step, split in two so that a non-finite loss is never applied."""

    def __init__(self, net: FastStyleNet, loss: PerceptualLoss, learning_rate: float):
        self.net, self.loss = net, loss
        self.variables = list(net.trainable_variables)
        self.optimizer = Adam(learning_rate=learning_rate)
        self.gradients = tf.function(self._gradients, reduce_retracing=True)
        self.apply = tf.function(self._apply, reduce_retracing=True)

    def _gradients(self, content, style_index):
        with tf.GradientTape() as tape:
            terms = self.loss(self.net, content, style_index)
        return terms, tape.gradient(terms["loss"], self.variables)

    def _apply(self, grads):
        self.optimizer.apply_gradients(zip(grads, self.variables))


def train(config: FastStyleConfig | None = None, *, model: FastStyleNet | None = None,
          vgg=None, sampler: ContentSampler | None = None, style_pixels=None,
          eval_content: np.ndarray | None = None, progress: bool = True,
          callback: Callable | None = None) -> TrainResult:
    """Train (or go on training) a multi-style network with Johnson et al.'s losses.

    Every step draws a content batch from ``sampler`` and one style index (uniformly, seeded)
    and takes one Adam step on the weighted sum of content, style and TV losses.

    Args:
        config: :class:`FastStyleConfig` (defaults when omitted).
        model: a network to train further (default: a fresh one from ``config``).
        vgg: the loss network (default: the zoo's ``config.loss_model``).
        sampler: the content batches (default :class:`ContentSampler` from ``config``).
        style_pixels: the style images as pixel arrays (default: loaded from
            ``config.styles`` at ``config.style_size``).
        eval_content: a fixed batch for the before/after losses (default
            :func:`evaluation_batch`; an empty array skips them).
        progress: tqdm progress bar and a log line every ``config.log_every`` steps.
        callback: ``callback(step, terms, model)`` after every step; return True to stop.

    Returns:
        a :class:`TrainResult`; on Ctrl-C (or a non-finite loss, which is not applied) it
        holds what was trained so far, with ``stopped`` saying why.
    """
    config = config or FastStyleConfig()
    net = model or FastStyleNet(config)
    if tuple(net.styles) != tuple(config.styles):
        raise FastStyleError(f"the model holds styles {list(net.styles)}, the config "
                             f"{list(config.styles)}: train it with its own styles")
    loss = PerceptualLoss(config, vgg, style_pixels)
    sampler = sampler or ContentSampler(config)
    if eval_content is None:
        eval_content = evaluation_batch(config.image_size)
    before = losses_on(net, loss, eval_content) if len(eval_content) else {}
    step_fn = _Step(net, loss, config.learning_rate)
    rng = np.random.default_rng(config.seed + 1)
    history: dict[str, list[float]] = {"loss": [], "content": [], "style": [], "tv": [],
                                       "style_index": []}

    def one(step: int) -> dict[str, float]:
        s = int(rng.integers(0, net.num_styles))
        content = tf.constant(sampler.batch(config.batch_size))
        terms, grads = step_fn.gradients(content, tf.constant(s))
        terms = {k: float(v) for k, v in terms.items()}
        if not all(math.isfinite(v) for v in terms.values()):
            raise FloatingPointError(f"stopped at step {step}: the loss became NaN/Inf "
                                     f"({terms}); the update was not applied. Lower "
                                     "learning_rate")
        step_fn.apply(grads)
        for k, v in terms.items():
            history[k].append(v)
        history["style_index"].append(s)
        return terms

    def log_line(step: int) -> None:
        from tqdm.auto import tqdm

        recent = {k: float(np.mean(history[k][-config.log_every:]))
                  for k in ("loss", "content", "style", "tv")}
        tqdm.write(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in recent.items()),
                   file=sys.stderr)

    out = run_steps(
        one, config.steps, desc="fast-style", progress=progress,
        postfix=lambda t: f"loss={t['loss']:.4g} style={net.styles[history['style_index'][-1]]}",
        callback=None if callback is None else (lambda k, t: callback(k, t, net)),
        every=config.log_every if progress else 0, on_every=log_line,
        kept="the weights trained so far are kept")
    after = losses_on(net, loss, eval_content) if len(eval_content) else {}
    return TrainResult(net, history, out.steps_done, out.seconds, out.stopped, out.message or
                       f"{out.steps_done} steps in {out.seconds:.1f} s", before, after)
