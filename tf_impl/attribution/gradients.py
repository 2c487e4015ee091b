"""Single-gradient attributions in the one call shape: backprop saliency and guided backprop.

- :func:`saliency` -- Simonyan, Vedaldi & Zisserman 2014, section 3: the gradient of the
  target's logit with respect to the input, as Captum's ``Saliency`` (``abs=True`` by default,
  as there); the paper's map is its max over channels (:func:`channel_max`).
- :func:`guided_backprop` -- Springenberg et al. 2015, section 3.4: the same gradient with
  every ReLU passing back only positive gradients through positive inputs, as Captum's
  ``GuidedBackprop``; the importer applies the rule to every Relu node of the ONNX graph
  (``model(x, relu_mode="guided")``).

Both take the model's normalised NCHW input like every method of :mod:`tf_impl.attribution`
(``method(model, inputs, target=None, baseline=None, ..., return_delta=False)``) and return
attributions of the inputs' shape. They follow no path from a baseline, so ``baseline`` must be
None and there is no completeness gap to return (``return_delta=True`` is refused).
:func:`tf_impl.visualization.saliency.saliency` wraps them for pixels, maps and figures.
"""

from __future__ import annotations

import numpy as np

from converters.onnx_to_tf import contract_model

from . import common
from .common import AttributionError

__all__ = ["channel_max", "guided_backprop", "saliency"]


def _no_path(name: str, baseline, return_delta: bool) -> None:
    if baseline is not None:
        raise AttributionError(f"{name} takes the gradient at the input itself and has no "
                               "baseline; leave baseline=None (or use integrated_gradients)")
    if return_delta:
        raise AttributionError(f"{name} is one gradient, not a path integral, so it has no "
                               "completeness gap; leave return_delta=False")


def _input_gradients(model, inputs, target, batch_size: int, relu_mode: str) -> np.ndarray:
    model = contract_model(model)
    x = common.check_inputs(model, inputs)
    _, batch_size = common.check_steps(1, batch_size)
    targets = common.resolve_targets(model, x, target)  # refuses a model with no class scores
    return common.gradients(model, x, targets, batch_size, relu_mode=relu_mode)[1]


def saliency(model, inputs, target=None, baseline=None, *, abs: bool = True,  # noqa: A002
             batch_size: int = 32, return_delta: bool = False) -> np.ndarray:
    """d logit[target] / d input for each input (N, C, H, W); its absolute value when ``abs``
    (Captum's ``Saliency`` default). ``target``: None for each input's predicted class, one
    int for all, or one per input; ``batch_size`` inputs per forward pass."""
    _no_path("saliency", baseline, return_delta)
    g = _input_gradients(model, inputs, target, batch_size, "standard")
    return np.abs(g) if abs else g


def guided_backprop(model, inputs, target=None, baseline=None, *, batch_size: int = 32,
                    return_delta: bool = False) -> np.ndarray:
    """The guided-backprop gradient of logit[target] for each input (N, C, H, W), signed (as
    Captum's ``GuidedBackprop``). A model without ReLUs gives the plain gradient."""
    _no_path("guided_backprop", baseline, return_delta)
    return _input_gradients(model, inputs, target, batch_size, "guided")


def channel_max(attributions) -> np.ndarray:
    """(N, H, W): the max over channels of |attribution| (Simonyan et al. 2014, after eq. 3)."""
    return np.abs(np.asarray(attributions, np.float32)).max(axis=1)
