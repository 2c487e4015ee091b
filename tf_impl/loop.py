"""The one loop skeleton every iterative technique runs in: :func:`run_steps`.

The image optimisation (:class:`tf_impl.optimize.Optimization`), fast style transfer's training
and HDR-GAN's training each supply one step; the skeleton gives them the same behaviour
around it:

- a progress bar (tqdm on stderr) with the step's terms, off with ``progress=False``;
- Ctrl-C stops the loop and keeps what was reached (``stopped="interrupted"``); under
  :func:`tf_impl.interrupts.graceful_stop` (the command line) Ctrl-C and SIGTERM only ask for
  a stop, and the loop ends before its next step (a second signal raises
  :class:`tf_impl.interrupts.StopNow` through it);
- a step that raises ``FloatingPointError`` (a NaN/Inf loss or gradient; the step must not
  have applied the update) stops it with ``stopped="non-finite"``;
- ``max_seconds`` stops it when the wall-clock budget is spent (``"time budget"``);
- ``callback(step, terms)`` after each step, returning True, stops it (``"callback"``);
- ``every`` / ``on_every``: a hook every N steps (checkpoints, log lines).

Loops that are not optimisations (occlusion's windows, the patches' images) use the same
:func:`progress_bar`.

What a run keeps (history, best iterate, weights) is the step's business: the skeleton
returns a :class:`LoopOutcome` that says how many steps ran and why it stopped.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import interrupts

__all__ = ["LoopOutcome", "progress_bar", "run_steps"]


@dataclass
class LoopOutcome:
    """How a loop ended: ``steps_done`` (counting a resumed run's earlier steps), ``stopped``
    (None when it ran to the end; ``"interrupted"``, ``"non-finite"``, ``"time budget"`` or
    ``"callback"``), ``message`` (empty when it ran to the end) and ``seconds``."""

    steps_done: int
    stopped: str | None
    message: str
    seconds: float


def progress_bar(total: int, *, desc: str | None = None, unit: str = "step", done: int = 0,
                 enabled: bool = True):
    """The house progress bar (tqdm on stderr, cleared when closed), or None when
    ``enabled`` is False; ``done`` units already counted (a resumed run)."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is in requirements.txt
        return None
    bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False,
               file=sys.stderr)
    if done:
        bar.update(min(done, total))
    return bar


def _postfix(terms: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in list(terms.items())[:5])


def run_steps(step: Callable[[int], Mapping[str, float]], total: int, *, start: int = 0,
              desc: str | None = None, progress: bool = True,
              postfix: Callable[[Mapping[str, float]], str] = _postfix,
              callback: Callable[[int, Mapping[str, float]], bool] | None = None,
              max_seconds: float | None = None, every: int = 0,
              on_every: Callable[[int], None] | None = None,
              kept: str = "keeping the result", log: str | None = None) -> LoopOutcome:
    """Run ``step(k)`` for k = ``start`` + 1 .. ``total`` (1-based step numbers) and say how it
    ended (see the module docstring). ``step`` returns the step's terms (floats) for the bar
    and the callback. ``kept`` ends the interruption and budget messages (what the caller
    keeps); ``log``: a prefix under which those messages are also printed to stderr (as
    ``"optimize"`` does), None to leave printing to the caller.
    """
    bar = progress_bar(total, desc=desc, done=start, enabled=progress)
    done, stopped, message = start, None, ""
    t0 = time.perf_counter()

    def say(text: str) -> None:
        if log is not None:
            print(f"\n{log}: {text}", file=sys.stderr)

    try:
        while done < total:
            interrupts.stop_point()  # Ctrl-C/SIGTERM under graceful_stop
            terms = step(done + 1)
            done += 1
            interrupts.step_done()
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(postfix(terms), refresh=False)
            if every and on_every is not None and done % every == 0:
                on_every(done)
            if callback is not None and callback(done, terms):
                stopped, message = "callback", f"stopped by the callback at step {done}"
                break
            if max_seconds is not None and time.perf_counter() - t0 > max_seconds \
                    and done < total:
                stopped = "time budget"
                message = (f"the time budget ({max_seconds:.0f} s) ran out after {done} of "
                           f"{total} steps; {kept}")
                say(message)
                break
    except FloatingPointError as err:
        stopped, message = "non-finite", str(err)
        say(message)
    except interrupts.StopNow:
        raise  # a second signal: no time to keep anything
    except KeyboardInterrupt:
        asked = interrupts.requested()  # None: a plain KeyboardInterrupt (a library call)
        how = "" if asked is None else f" by {interrupts.signal_name(asked)}"
        stopped, message = "interrupted", f"interrupted{how} after {done} of {total} steps; {kept}"
        say(message)
    finally:
        if bar is not None:
            bar.close()
    return LoopOutcome(done, stopped, message, time.perf_counter() - t0)
