"""Stopping a run with Ctrl-C or SIGTERM the same way at every stage (loading, tracing, stepping).

Python's default Ctrl-C raises ``KeyboardInterrupt`` wherever the interpreter happens to be.
Inside TensorFlow's tracing of a ``tf.function`` that surfaces as unrelated errors
(``SystemError``, "Concurrent access?", a shape that cannot be converted), and SIGTERM (what
``timeout``, a scheduler or a container stop sends) kills the process with nothing kept.

:func:`graceful_stop` (the command line runs every technique under it) handles both signals
alike: the first one only *asks* for a stop. The optimisation loop (:func:`tf_impl.loop.run_steps`)
and the other long loops look at :func:`requested` between steps and end there, keeping what
was reached; loading a model checks it too (:func:`check`), so a stop asked for while loading
ends the run before anything is computed. A second signal stops at once (:class:`StopNow`).

Library calls without :func:`graceful_stop` keep Python's behaviour: Ctrl-C raises
``KeyboardInterrupt``, which the loops also catch.

Exit codes: 130 for SIGINT, 143 for SIGTERM (128 + the signal's number, as shells report).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading

__all__ = ["Stop", "StopNow", "at_once", "check", "exit_code", "graceful_stop", "requested",
           "reset",
           "signal_name", "step_done", "stop_point"]

_state: dict = {"signum": None, "count": 0, "active": False}


class StopNow(KeyboardInterrupt):
    """A stop that cannot wait for the end of the step: a second signal, or a first one that
    came while the model was still loading (there is nothing to keep yet)."""

    def __init__(self, signum: int, stage: str = ""):
        super().__init__(signum)
        self.signum = signum
        self.stage = stage


def step_done() -> None:
    """A loop finished a step: from now on there is something to keep."""
    _state["steps"] = _state.get("steps", 0) + 1


def stop_point() -> None:
    """Where a loop may stop: raises ``KeyboardInterrupt`` when a stop was asked for (the loop
    keeps what it reached), or :class:`StopNow` when no loop has finished a step yet under
    :func:`graceful_stop` (there is nothing to keep)."""
    signum = _state["signum"]
    if signum is None:
        return
    if not _state.get("steps"):
        raise StopNow(signum, "before the first step")
    raise KeyboardInterrupt


def at_once() -> bool:
    """A second signal came: whatever error it caused on its way out is the stop's."""
    return _state["count"] >= 2


def requested() -> int | None:
    """The signal that asked for a stop (``signal.SIGINT`` or ``signal.SIGTERM``), else None."""
    return _state["signum"]


def check(stage: str) -> None:
    """Raise :class:`StopNow` if a stop was asked for (called where stopping loses nothing,
    e.g. after loading the model, before any work)."""
    if _state["signum"] is not None:
        raise StopNow(_state["signum"], stage)


def signal_name(signum: int | None) -> str:
    return {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}.get(signum, f"signal {signum}")


def exit_code(signum: int | None) -> int:
    """130 for SIGINT (and an unknown signal), 143 for SIGTERM."""
    return 128 + int(signum if signum in (signal.SIGINT, signal.SIGTERM) else signal.SIGINT)


def _handler(signum, frame) -> None:
    _state["count"] += 1
    if _state["count"] == 1:
        _state["signum"] = signum
        print(f"\n{signal_name(signum)}: stopping after the current step and keeping what was "
              "reached (again to stop at once)", file=sys.stderr, flush=True)
        return
    raise StopNow(_state["signum"], "at once")


class Stop:
    """What :func:`graceful_stop` saw: ``signum`` of the signal that asked for a stop (None:
    none came). Read it after the block (the block forgets the request when it ends)."""

    signum: int | None = None


@contextlib.contextmanager
def graceful_stop():
    """Within the block, SIGINT and SIGTERM ask for a stop (see the module docstring); the
    previous handlers come back after it. Yields a :class:`Stop`. Outside the main thread (a
    worker of a sweep) only the record is kept: the signals are the main thread's."""
    seen = Stop()
    if threading.current_thread() is not threading.main_thread() or _state["active"]:
        yield seen
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    _state.update(signum=None, count=0, active=True, steps=0)
    try:
        for s in previous:
            signal.signal(s, _handler)
        yield seen
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        seen.signum = _state["signum"]
        _state.update(signum=None, count=0, active=False)


def reset() -> None:
    """Forget a stop that was asked for (a test, or a caller that has answered it)."""
    _state.update(signum=None, count=0)
