"""The one optimisation loop every technique uses.

A technique supplies an *objective* (a callable returning named loss terms, usually built from
:mod:`tf_impl.priors`), a start point and a :class:`OptimizeConfig`; this module owns the rest:

- ``tf.GradientTape`` and the optimizer's ``apply_gradients``, as two steps a user can split
  (:meth:`Optimization.compute_gradients`, edit the gradients, :meth:`apply_gradients`), the
  TF2 form of TF1's ``compute_gradients`` / ``apply_gradients``;
- the step compiled with ``tf.function``;
- projection onto a box of valid values after each step (e.g. pixels in [0, 1], expressed in
  the model's normalised input space by :func:`pixel_box`);
- learning-rate schedules (constant, steps at fractions of the run, cosine with warm-up);
- a progress bar with the current loss, a history of every loss term, snapshots every N steps;
- NaN/Inf detection: the run stops before a non-finite update is applied, with a message, and
  keeps the last finite iterate and the best one;
- Ctrl-C: the run stops and returns what it reached (``result.interrupted``);
- a time budget (``max_seconds``): the run stops when it is spent and keeps the best iterate;
- checkpoints: :meth:`Optimization.run` with ``checkpoint=path`` writes the iterate, the best
  one, the optimizer's moments and the history every ``checkpoint_every`` steps and when the
  run stops; :meth:`Optimization.restore` continues from such a file, refusing one written for
  another problem (``meta``);
- seeds: :func:`seeded_noise` gives the same start in TF and in the PyTorch references.

Example:
    >>> import tensorflow as tf
    >>> target = tf.constant([[0.3, 0.7]])
    >>> objective = lambda x: {"mse": tf.reduce_sum((x - target) ** 2)}
    >>> result = optimize(objective, tf.zeros([1, 2]), OptimizeConfig(
    ...     steps=200, learning_rate=0.05, progress=False))
    >>> [round(float(v), 2) for v in result.x[0]]
    [0.3, 0.7]
"""

from __future__ import annotations

from .optimization import (  # noqa: F401
    Optimization,
    optimize,
)
from .outcome import (  # noqa: F401
    CheckpointError,
    NonFiniteLossError,
    OptimizeResult,
)
from .settings import (  # noqa: F401
    Objective,
    OptimizeConfig,
    learning_rate_at,
    pixel_box,
    seeded_noise,
)
