"""The attacker's terms: gradient distance and the BatchNorm statistics prior.

The attacker runs the victim's loss on dummy images (and labels) and differentiates it with
respect to the weights *inside* the optimisation loop's tape, so the distance between that
gradient and the shared one can be differentiated with respect to the images (a
double backward).

- L2 distance (DLG, Zhu et al. 2019): sum over weights of ||g - g*||^2.
- Cosine distance (Geiping et al. 2020, "Inverting Gradients"): 1 - <g, g*> / (||g|| ||g*||),
  with the inner product and norms taken over all weights at once.
- BN prior (DeepInversion, Yin et al. 2020; GradInversion eq. 4): for the input of each
  BatchNormalization layer, the batch mean over N, H, W and the *biased* variance;
  sum over layers of ||mu - running_mean||_2 + ||var - running_var||_2 (norms, not squared).
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from converters.onnx_to_tf import contract_model

from .victim import GradientInversionError, SharedGradient, check_gradient, cross_entropy

DISTANCES = ("l2", "cosine")


class GradientMatcher:
    """Computes the attacker's gradient for dummy data and its distance to the shared one.

    Args:
        model: the victim model (:class:`converters.onnx_to_tf.TFModel`).
        shared: the client's :class:`SharedGradient` (checked against the model).
        distance: ``"l2"`` or ``"cosine"``.
        taps: extra tensors (e.g. BN inputs) to return from the same forward pass.
    """

    def __init__(self, model, shared: SharedGradient, distance: str = "l2",
                 taps: Sequence[str] = ()):
        model = contract_model(model)
        if distance not in DISTANCES:
            raise GradientInversionError(f"distance must be one of {DISTANCES}; got {distance!r}")
        shared = check_gradient(model, shared)
        self.model, self.shared, self.distance = model, shared, distance
        self.names = [k for k in model.onnx_variables if k in shared.grads]
        self.variables = [model.onnx_variables[k] for k in self.names]
        self.targets = [tf.constant(model.from_onnx_layout(k, shared.grads[k]), tf.float32)
                        for k in self.names]
        self._target_norm = tf.sqrt(tf.add_n([tf.reduce_sum(t * t) for t in self.targets]))
        self.output = model.logits_name  # a final Softmax's input: the loss takes logits
        self.taps = [self.output, *dict.fromkeys(t for t in taps if t != self.output)]

    def gradients(self, x, labels):
        """The victim loss's weight gradients at ``(x, labels)`` and the tapped tensors."""
        with tf.GradientTape() as tape:
            outs = self.model(x, taps=self.taps, bn_mode=self.shared.bn_mode)
            logits = self.model.as_logits(outs[self.output])
            loss = cross_entropy(logits, labels, self.shared.reduction)
        grads = tape.gradient(loss, self.variables)
        grads = [tf.zeros_like(v) if g is None else g for g, v in zip(grads, self.variables)]
        return grads, outs

    def distance_of(self, grads) -> tf.Tensor:
        if self.distance == "l2":
            return tf.add_n([tf.reduce_sum(tf.square(g - t)) for g, t in zip(grads, self.targets)])
        dot = tf.add_n([tf.reduce_sum(g * t) for g, t in zip(grads, self.targets)])
        norm = tf.sqrt(tf.add_n([tf.reduce_sum(g * g) for g in grads]) + 1e-20)
        return 1.0 - dot / (norm * self._target_norm + 1e-20)

    def __call__(self, x, labels):
        """(distance, tapped tensors)."""
        grads, outs = self.gradients(x, labels)
        return self.distance_of(grads), outs


def bn_inputs(model) -> list[str]:
    """The input tensor of every BatchNormalization layer (raises if there are none)."""
    model = contract_model(model)
    if not model.bn_layers:
        raise GradientInversionError(
            "this model has no BatchNormalization layers, so the BN prior has nothing to match "
            "(set bn_weight=0). Keras exports fold BN away; use a PyTorch-exported victim"
        )
    return [layer.input for layer in model.bn_layers]


def safe_norm(v) -> tf.Tensor:
    """||v||_2 with a finite gradient at v = 0 (``tf.norm``'s is NaN there; PyTorch's is 0)."""
    return tf.sqrt(tf.reduce_sum(tf.square(v)) + 1e-30)


def bn_prior(model, tapped: dict, first_weight: float = 1.0) -> tf.Tensor:
    """sum_l w_l (||mean_l - running_mean_l||_2 + ||var_l - running_var_l||_2) (biased var);
    w is ``first_weight`` for the first BatchNorm layer (10 in DeepInversion's code and
    breaching's), 1 for the others."""
    model = contract_model(model)
    total = []
    for i, layer in enumerate(model.bn_layers):
        a = tf.cast(tapped[layer.input], tf.float32)
        mean, var = tf.nn.moments(a, axes=[0, 2, 3])  # biased variance, as BN uses
        term = safe_norm(mean - layer.running_mean) + safe_norm(var - layer.running_var)
        total.append(first_weight * term if i == 0 and first_weight != 1.0 else term)
    return tf.add_n(total)

