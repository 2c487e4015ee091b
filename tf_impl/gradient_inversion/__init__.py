"""Gradient inversion: recover a private training batch and its labels from a shared gradient.

- :mod:`.victim` -- the client's shared gradient (:func:`client_gradient`), the FC layer.
- :mod:`.labels` -- label restoration: iDLG, GradInversion's column-wise minimum, and a
  duplicate-aware rule.
- :mod:`.dlg` -- DLG (Zhu et al. 2019) and the Inverting-Gradients cosine variant.
- :mod:`.gradinversion` -- GradInversion (Yin et al. 2021): gradient matching, fidelity
  priors (TV, L2, BatchNorm statistics), group consistency with registration, Langevin updates.
- :mod:`.evaluate` -- matching reconstructions to originals and scoring them.
"""

from .victim import (
    FCLayer,
    GradientInversionError,
    SharedGradient,
    check_gradient,
    client_gradient,
    fc_layer,
    parameter_names,
)

__all__ = [
    "FCLayer",
    "GradientInversionError",
    "SharedGradient",
    "check_gradient",
    "client_gradient",
    "fc_layer",
    "parameter_names",
]
