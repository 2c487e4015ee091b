"""Memory preflight of gradient inversion: refuse a batch that would not fit, naming the
largest that does, before anything big is allocated.

The attack differentiates the weight gradient with respect to the images (a double
backward), so its peak grows with the batch (times GradInversion's seeds, optimised together)
by about :data:`tf_impl.memory.GRADIENT_INVERSION` times the activations of one forward pass.
Scoring the result keeps each reconstruction's LPIPS features
(:data:`.scoring.LPIPS_FEATURE_BYTES_PER_PIXEL`); the command line adds that part.
Set ``TF_IMPL_MEMORY_LIMIT`` (e.g. ``2G``) to plan for less memory than the machine has.
"""

from __future__ import annotations

from converters.onnx_to_tf import contract_model

from .. import memory
from .scoring import LPIPS_FEATURE_BYTES_PER_PIXEL
from .victim import image_shape_of

__all__ = ["check_batch_memory", "bytes_per_image"]


def bytes_per_image(model, image_shape=None, *, copies: int = 1, scored: bool = False) -> float:
    """The estimated peak memory per private image: the attack's double backward (``copies``
    optimised together: GradInversion's seeds) and, with ``scored``, the LPIPS features kept
    to match the reconstructions to the originals."""
    model = contract_model(model)
    c, h, w = image_shape_of(model, image_shape)
    per = memory.GRADIENT_INVERSION * memory.activation_bytes(model, (1, c, h, w)) * copies
    if scored:  # measured 632 bytes a pixel with the temporaries: 1.3 times the features
        per += 1.5 * LPIPS_FEATURE_BYTES_PER_PIXEL * h * w
    return per


def check_batch_memory(model, batch: int, image_shape=None, *, copies: int = 1,
                       scored: bool = False, name: str | None = None,
                       available: int | None = None) -> float:
    """Refuse (:class:`tf_impl.memory.MemoryPreflightError`) a private batch of ``batch``
    images whose attack would not fit in memory; the message names the largest batch that
    fits. Returns the estimate in bytes."""
    model = contract_model(model)
    c, h, w = image_shape_of(model, image_shape)
    per = bytes_per_image(model, (c, h, w), copies=copies, scored=scored)
    seeds = f", {copies} seeds" if copies > 1 else ""
    through = f" through {name}" if name else ""
    return memory.check_batch(per, batch, available=available,
                              what=f"gradient inversion{through} at {h}x{w}{seeds}")
