"""The victim side of gradient inversion: what a federated-learning client shares.

A client computes the gradient of its training loss on a private batch with respect to the
model's weights and sends it to the server. :func:`client_gradient` computes exactly that on a
model imported from ONNX, keyed by ONNX initializer name in ONNX layout, and records how the
loss was reduced (mean or sum over the batch) and the BatchNorm mode, so the attacker can build
the same loss. :func:`fc_layer` finds the classifier's last fully connected layer and reads the
orientation of its weight from the ONNX Gemm/MatMul node, which label restoration needs.

Example:
    >>> model = onnx_to_tf.load(model_zoo.load("resnet20_cifar"))        # doctest: +SKIP
    >>> x, y = model_zoo.data.cifar10("test", n=4)                         # doctest: +SKIP
    >>> shared = client_gradient(model, x, y)                              # doctest: +SKIP
    >>> shared.grads["linear.weight"].shape                               # doctest: +SKIP
    (10, 64)
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import tensorflow as tf

from converters.onnx_to_tf import FCLayer, contract_model

_REDUCTIONS = ("mean", "sum")


class GradientInversionError(ValueError):
    """Input the attack cannot use; the message says what is wrong and what to do."""


@dataclass
class SharedGradient:
    """What the client sends: the weight gradients and how the loss was formed.

    Attributes:
        grads: ONNX initializer name -> gradient (numpy, ONNX layout).
        reduction: ``"mean"`` or ``"sum"`` of the per-sample cross-entropy.
        batch_size: number of samples in the private batch.
        bn_mode: ``"eval"`` (running statistics) or ``"train"`` (batch statistics).
        loss: the client's loss value.
    """

    grads: dict[str, np.ndarray]
    reduction: str = "mean"
    batch_size: int = 1
    bn_mode: str = "eval"
    loss: float = float("nan")
    meta: dict = field(default_factory=dict)
    # (the model, the grads dict) this copy was checked against by check_gradient, so that
    # the attack's parts (labels, matcher) do not check it again
    _checked: Any = field(default=None, repr=False, compare=False)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.grads[name]


def parameter_names(model) -> list[str]:
    """Trainable weights of the model: float initializers except BN running statistics."""
    model = contract_model(model)
    stats = {id(layer.running_mean) for layer in model.bn_layers} | {
        id(layer.running_var) for layer in model.bn_layers
    }
    return [k for k, v in model.onnx_variables.items() if id(v) not in stats]


def _check_batch(model, images, labels, num_classes: int | None):
    model = contract_model(model)
    x = tf.convert_to_tensor(np.asarray(images, np.float32))
    if x.shape.rank != 4:
        raise GradientInversionError(
            f"images must be a normalised NCHW batch (4-D); got shape {tuple(x.shape)}. Use "
            "model_zoo.data.cifar10(...) or add a batch axis with x[None]"
        )
    return x, tf.constant(check_labels(labels, int(x.shape[0]), num_classes))


def check_labels(labels, n: int, num_classes: int | None) -> np.ndarray:
    """``labels`` as int64, checked: ``n`` integer class indices in ``0..num_classes - 1``."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n or y.dtype.kind not in "iu":
        raise GradientInversionError(
            f"labels must be {n} integer class indices (one per image); got "
            f"shape {y.shape}, dtype {y.dtype}"
        )
    if num_classes is not None and (y.min() < 0 or y.max() >= num_classes):
        raise GradientInversionError(
            f"labels must lie in 0..{num_classes - 1} (the model has {num_classes} classes); "
            f"got {sorted(set(y.tolist()))}"
        )
    return y.astype(np.int64)


def image_shape_of(model, image_shape=None) -> tuple[int, ...]:
    """(C, H, W) of one image: ``image_shape`` if given, else the model's fixed input size."""
    model = contract_model(model)
    shape = tuple(image_shape or model.input_shape[1:])
    if not image_shape and shape and shape[0] is None:  # a grayscale model: it takes RGB too
        shape = (3, *shape[1:])
    if any(d is None for d in shape):
        raise GradientInversionError(f"the model's input size is not fixed ({shape}); pass "
                                     "image_shape=(C, H, W)")
    return shape


def cross_entropy(logits, labels, reduction: str = "mean"):
    """Cross-entropy with integer labels, or with soft labels (a (N, K) float tensor of
    logits, softmaxed: DLG's jointly optimised labels).

    Written with ``log_softmax`` rather than TF's fused ``*_cross_entropy_with_logits`` ops:
    their gradient functions drop the second-order term with respect to the labels, which
    DLG's joint optimisation of soft labels needs (the gradient of the weight gradient with
    respect to the labels).
    """
    logp = tf.nn.log_softmax(logits, axis=-1)
    if labels.dtype.is_integer:
        per = -tf.gather(logp, labels, axis=1, batch_dims=1)
    else:
        per = -tf.reduce_sum(tf.nn.softmax(labels, axis=-1) * logp, axis=-1)
    return tf.reduce_mean(per) if reduction == "mean" else tf.reduce_sum(per)


def client_gradient(model, images, labels, *, reduction: str = "mean", bn_mode: str = "eval"
                    ) -> SharedGradient:
    """The gradient a client shares for its private batch (``images`` normalised NCHW).

    Args:
        model: a :class:`converters.onnx_to_tf.TFModel` classifier.
        images: the private batch, normalised as the model expects (NCHW float32).
        labels: integer class labels, one per image.
        reduction: ``"mean"`` (PyTorch's default) or ``"sum"`` over the batch.
        bn_mode: ``"eval"`` (running statistics, default) or ``"train"`` (batch statistics,
            as in a local training step; running statistics are not updated).
    """
    model = contract_model(model)
    if reduction not in _REDUCTIONS:
        raise GradientInversionError(f"reduction must be 'mean' or 'sum'; got {reduction!r}")
    if bn_mode not in ("eval", "train"):
        raise GradientInversionError(f"bn_mode must be 'eval' or 'train'; got {bn_mode!r}")
    fc = fc_layer(model)
    x, y = _check_batch(model, images, labels, fc.num_classes)
    names = parameter_names(model)
    variables = [model.onnx_variables[k] for k in names]
    with tf.GradientTape() as tape:
        loss = cross_entropy(model(x, bn_mode=bn_mode), y, reduction)
    grads = tape.gradient(loss, variables)
    out = {k: model.to_onnx_layout(k, g).numpy() for k, g in zip(names, grads) if g is not None}
    return SharedGradient(out, reduction, int(x.shape[0]), bn_mode, float(loss))


def check_gradient(model, shared: SharedGradient | Mapping[str, np.ndarray]) -> SharedGradient:
    """Validate a shared gradient against the model: keys, shapes (ONNX layout), finite
    values. Returns a checked copy; checking that copy against the same model again returns it
    at once (an attack checks at its door, its parts pass the copy on)."""
    model = contract_model(model)
    graph = getattr(model, "graph", model)
    if isinstance(shared, SharedGradient):
        if shared._checked is not None and shared._checked[0]() is graph \
                and shared._checked[1] is shared.grads:
            return shared
        shared = replace(shared, grads=dict(shared.grads))
    else:
        shared = SharedGradient({k: np.asarray(v) for k, v in shared.items()})
    _validate(model, shared)
    shared._checked = (weakref.ref(graph), shared.grads)
    return shared


def _validate(model, shared: SharedGradient) -> None:
    names = parameter_names(model)
    unknown = sorted(set(shared.grads) - set(names))
    if unknown:
        raise GradientInversionError(
            f"the gradient has entries the model does not have: {unknown[:5]}"
            f"{' ...' if len(unknown) > 5 else ''}; expected keys are the model's ONNX "
            f"initializer names, e.g. {names[:3]}. Was it computed on another model?"
        )
    if not shared.grads:
        raise GradientInversionError("the gradient is empty")
    for k, g in shared.grads.items():
        want = tuple(model.to_onnx_layout(k, model.onnx_variables[k]).shape)
        if tuple(np.shape(g)) != want:
            raise GradientInversionError(
                f"gradient {k!r} has shape {tuple(np.shape(g))} but the weight is {want} "
                "(ONNX layout); pass gradients in the layout of the ONNX initializers"
            )
        if not np.all(np.isfinite(g)):
            raise GradientInversionError(f"gradient {k!r} contains NaN or Inf")


def fc_layer(model) -> FCLayer:
    """The last Gemm/MatMul with an initializer weight feeding the model's output (the model
    finds it once: ``model.classifier()``); refused when the classifier is not one."""
    fc = contract_model(model).classifier()
    if fc is not None:
        return fc
    raise GradientInversionError(
        "no fully connected layer (Gemm/MatMul with a weight initializer) found: gradient "
        "inversion reads the labels from the last fully connected layer's gradient, and this "
        "model's classifier is not one (e.g. SqueezeNet's 1x1 convolution); attack a model "
        "with a fully connected head (resnet20_cifar, resnet18, vgg16, a Keras Dense head)"
    )
