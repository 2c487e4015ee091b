"""Layout tags: which permutation of the ONNX (logical) tensor a TF tensor holds.

Every value flowing through the imported graph is a :class:`Value`: a tensor plus ``perm``,
meaning ``actual = transpose(logical, perm)``. ONNX is NCHW; convolutions, pooling and
normalisation run channels-last on the CPU, so their outputs carry ``perm=(0, 2, 3, 1)``.
Element-wise ops propagate the tag, axis-dependent ops remap their axes through it, and
ops whose semantics need the logical order (Flatten, Reshape, Gemm, ...) ask for
:meth:`Value.logical`. A ``Transpose`` node becomes a tag change, so the NHWC<->NCHW
transposes that Keras exports contain cancel without moving data.

Statically known values (initializers of integer type, ``Constant`` nodes, shapes) are held
as numpy arrays so that shape arithmetic folds at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

__all__ = ["Value", "identity", "channels_last", "inverse", "compose_to", "is_identity"]


def identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


def is_identity(perm: tuple[int, ...] | None) -> bool:
    return perm is None or all(i == p for i, p in enumerate(perm))


def channels_last(rank: int) -> tuple[int, ...]:
    """Perm that moves axis 1 (channels) last: (0, 2, 3, 1) for rank 4."""
    if rank < 3:
        return identity(rank)
    return (0, *range(2, rank), 1)


def inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def compose_to(src: tuple[int, ...], dst: tuple[int, ...]) -> tuple[int, ...]:
    """The transpose that turns a tensor stored as ``src`` into one stored as ``dst``."""
    inv = inverse(src)
    return tuple(inv[d] for d in dst)


@dataclass(frozen=True, eq=False)
class Value:
    """A tensor (TF or numpy) and its layout tag (``actual = transpose(logical, perm)``)."""

    data: tf.Tensor | tf.Variable | np.ndarray
    perm: tuple[int, ...] | None = None

    def __post_init__(self):
        # numpy folds to scalars, not 0-d arrays, in places (np.take with a scalar index in
        # Gather, np.matmul of two vectors, ...). A numpy scalar is still a static value: hold
        # it as a 0-d array, or it would be taken for a tensor and the static shape
        # arithmetic downstream (Shape -> Gather -> Unsqueeze -> Concat -> Reshape) would stop
        # folding inside tf.function.
        if isinstance(self.data, np.generic):
            object.__setattr__(self, "data", np.asarray(self.data))

    @property
    def is_const(self) -> bool:
        return isinstance(self.data, np.ndarray)

    @property
    def rank(self) -> int:
        return len(self.data.shape)

    @property
    def perm_or_identity(self) -> tuple[int, ...]:
        return self.perm if self.perm is not None else identity(self.rank)

    @property
    def logical_shape(self) -> list[int | None]:
        """ONNX-order static shape (None for unknown dims)."""
        shape = list(self.data.shape)
        if is_identity(self.perm):
            return [None if d is None else int(d) for d in shape]
        out: list[int | None] = [None] * len(shape)
        for i, p in enumerate(self.perm):
            out[p] = None if shape[i] is None else int(shape[i])
        return out

    def as_perm(self, perm: tuple[int, ...]):
        """The data stored as ``perm`` (same rank), transposing only if needed."""
        step = compose_to(self.perm_or_identity, perm)
        if is_identity(step):
            return self.data
        if self.is_const:
            return np.ascontiguousarray(np.transpose(self.data, step))
        return tf.transpose(self.data, step)

    def logical(self):
        """The data in ONNX order."""
        return self.as_perm(identity(self.rank))

    def tensor(self, dtype=None) -> tf.Tensor:
        """The logical data as a TF tensor (constants converted)."""
        data = self.logical()
        if isinstance(data, np.ndarray):
            return tf.constant(data, dtype=dtype)
        if dtype is not None and data.dtype != dtype:
            return tf.cast(data, dtype)
        return data

    def actual_axis(self, axis: int) -> int:
        """Position in the stored tensor of logical ``axis``."""
        axis = axis % self.rank
        return self.perm_or_identity.index(axis)
