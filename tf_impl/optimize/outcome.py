"""What an optimisation returns (``OptimizeResult``) and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class OptimizeResult:
    """What a run produced.

    Attributes:
        x: the last finite iterate (numpy, same structure as the start).
        best: the iterate with the lowest total loss seen, and ``best_loss``/``best_step``.
        history: ``{"loss": [...], "<term>": [...], "lr": [...]}``, one entry per step
            (the values *before* that step's update).
        snapshots: ``[(step, iterate), ...]`` every ``snapshot_every`` steps.
        steps_done: steps completed; ``stopped`` says why the run ended early, if it did:
            ``"interrupted"`` (Ctrl-C) or ``"non-finite"`` (NaN/Inf), with ``message``.
        seconds: wall time of the loop.
    """

    x: Any
    best: Any
    best_loss: float
    best_step: int
    history: dict[str, list[float]]
    snapshots: list[tuple[int, Any]] = field(default_factory=list)
    steps_done: int = 0
    stopped: str | None = None
    message: str = ""
    seconds: float = 0.0

    @property
    def interrupted(self) -> bool:
        return self.stopped == "interrupted"


class NonFiniteLossError(FloatingPointError):
    """Raised by :meth:`Optimization.step` when the loss or a gradient is NaN/Inf."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed here; the message says why and what to do."""
