"""What every technique returns: images in pixel space, the loss history, metrics, config."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Result:
    """The outcome of one technique run.

    Attributes:
        technique: e.g. ``"feature_inversion"``.
        image: the result in pixel space, float32 (N, 3, H, W) in [0, 1] (the last iterate).
        best_image: the iterate with the lowest loss (same shape).
        original: the picture the run started from or aimed at, when there is one.
        history: ``{"loss": [...], "<term>": [...], "lr": [...]}`` per step.
        metrics: scalar figures (PSNR, SSIM, LPIPS, ...).
        config: the technique's config as a dict (the paper defaults and any overrides).
        seconds, steps: wall time and steps done; ``stopped``/``message`` say why it ended
            early (``"interrupted"``, ``"non-finite"``), if it did.
        snapshots: ``[(step, image), ...]`` in pixel space.
        extra: technique-specific values (e.g. the layers, the target activations' shapes).
    """

    technique: str
    image: np.ndarray
    best_image: np.ndarray
    history: dict[str, list[float]]
    config: dict[str, Any]
    original: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    steps: int = 0
    stopped: str | None = None
    message: str = ""
    snapshots: list[tuple[int, np.ndarray]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def interrupted(self) -> bool:
        return self.stopped == "interrupted"

    def summary(self) -> dict[str, Any]:
        """JSON-ready record: config, metrics, seconds, steps, final losses."""
        final = {k: v[-1] for k, v in self.history.items() if v}
        return {
            "technique": self.technique,
            "config": _jsonable(self.config),
            "metrics": {k: _jsonable(v) for k, v in self.metrics.items()},
            "seconds": round(self.seconds, 3),
            "steps": self.steps,
            "stopped": self.stopped,
            "message": self.message,
            "final": {k: _jsonable(v) for k, v in final.items()},
            "extra": _jsonable(self.extra),
        }

    def to_json(self) -> str:
        return json.dumps(self.summary(), indent=2)


def _jsonable(v):
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if np.isfinite(f) else str(f)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.ndarray):  # images stay out of the JSON: they are saved as PNGs
        return _jsonable(v.tolist()) if v.size <= 64 else f"<array {list(v.shape)}>"
    return v
