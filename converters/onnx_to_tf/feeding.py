"""Checking what a caller passes to a model (or to a frozen forward): which graph input is
which, each one's dtype and shape against the graph, and the keyword choices, with messages
that say how to fix a wrong one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from .building import InputSpec
from .contract import dims
from .errors import ModelInputError

LAYOUTS = ("NCHW", "NHWC", "ONNX")
BN_MODES = ("eval", "train")
RELU_MODES = ("standard", "guided", "deconvnet")


def feed_inputs(inputs: Sequence[InputSpec], x, named: Mapping) -> dict[str, tf.Tensor]:
    """Graph input name -> checked tensor, from a positional input (one array, a list or a
    dict) or from inputs passed by name."""
    if x is not None and named:
        raise ModelInputError("pass the input either positionally or by name, not both")
    if x is None:
        given = dict(named)
    elif isinstance(x, Mapping):
        given = dict(x)
    elif isinstance(x, (list, tuple)) and len(inputs) > 1:
        given = {spec.name: v for spec, v in zip(inputs, x, strict=False)}
    else:
        given = {inputs[0].name: x}
    feeds = {}
    for spec in inputs:
        if spec.name not in given:
            raise ModelInputError(
                f"missing input {spec.name!r}; the model takes {[s.name for s in inputs]}"
            )
        feeds[spec.name] = check_input(spec, given.pop(spec.name))
    if given:
        raise ModelInputError(
            f"unknown inputs {sorted(given)}; the model takes {[s.name for s in inputs]}"
        )
    return feeds

def check_input(spec: InputSpec, value) -> tf.Tensor:
    """``value`` as a tensor of the spec's dtype; a wrong dtype, rank or size is refused with
    a message that says how to fix it."""
    t = value if tf.is_tensor(value) else tf.convert_to_tensor(np.asarray(value))
    want = dims(spec.shape)
    if spec.dtype.is_floating:
        if not t.dtype.is_floating:
            raise ModelInputError(
                f"input {spec.name!r} must be floating point {want} (normalised as the model "
                f"expects, see model_zoo.info(...).preprocessing); got {t.dtype.name}. Convert "
                "uint8 images with model_zoo.data.image(...) or x.astype('float32') / 255 and "
                "normalise"
            )
        if t.dtype != spec.dtype:
            t = tf.cast(t, spec.dtype)
    shape = t.shape
    if shape.rank is not None and spec.shape:
        if shape.rank != len(spec.shape):
            hint = ""
            if shape.rank == len(spec.shape) - 1:
                hint = " Add a batch axis: x[None]."
            raise ModelInputError(
                f"input {spec.name!r} must be {len(spec.shape)}-D {want}; got shape "
                f"{dims(tuple(shape))}.{hint}"
            )
        for axis, (got, exp) in enumerate(zip(shape, spec.shape, strict=True)):
            if got is not None and exp is not None and got != exp:
                hint = ""
                if len(spec.shape) == 4 and axis == 1 and shape[-1] == spec.shape[1]:
                    hint = (
                        " It looks channels-last (NHWC): transpose to NCHW with "
                        "np.transpose(x, (0, 3, 1, 2))."
                    )
                raise ModelInputError(
                    f"input {spec.name!r} must have shape {want} (NCHW); got "
                    f"{dims(tuple(shape))}: axis {axis} is {got}, expected {exp}.{hint}"
                )
    return t


def check_choice(what: str, value: str, allowed: tuple[str, ...]) -> None:
    """A keyword argument that must be one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{what} must be one of {allowed}; got {value!r}")


class FrozenForward:
    """What ``freeze`` returns: ``frozen(x)`` gives what the model gave at freezing."""

    def __init__(self, concrete, input_shape, check, finish):
        self._fn, self._check, self._finish = concrete, check, finish
        self.input_shape = input_shape

    def __call__(self, x):
        t = self._check(x)
        if tuple(t.shape) != self.input_shape:
            raise ModelInputError(
                f"this frozen forward was built for input shape {dims(self.input_shape)}; "
                f"got {dims(tuple(t.shape))}. Freeze again with model.freeze("
                f"{tuple(t.shape)})"
            )
        return self._finish(self._fn(t))
