"""The one loop skeleton (tf_impl/loop.py): how a loop ends, its hooks, and the image loop's
post-step hook."""

from __future__ import annotations

import time

import numpy as np
import pytest
import tensorflow as tf

from tf_impl.loop import run_steps
from tf_impl.optimize import Optimization, OptimizeConfig


def counting(fail_at=None, error=None, seen=None):
    def step(k):
        if k == fail_at:
            raise error
        if seen is not None:
            seen.append(k)
        return {"loss": 1.0 / k}
    return step


def test_runs_to_the_end_and_hooks_fire():
    seen, hooked = [], []
    out = run_steps(counting(seen=seen), 7, progress=False, every=3, on_every=hooked.append)
    assert (out.steps_done, out.stopped, out.message) == (7, None, "")
    assert seen == list(range(1, 8)) and hooked == [3, 6]


def test_a_resumed_loop_starts_after_the_steps_done():
    seen = []
    out = run_steps(counting(seen=seen), 5, start=3, progress=False)
    assert seen == [4, 5] and out.steps_done == 5


@pytest.mark.parametrize("error, stopped, text", [
    (KeyboardInterrupt(), "interrupted", "interrupted after 3 of 10 steps; kept it"),
    (FloatingPointError("the loss became NaN"), "non-finite", "the loss became NaN"),
])
def test_interrupt_and_nan_keep_the_steps_done(error, stopped, text):
    out = run_steps(counting(fail_at=4, error=error), 10, progress=False, kept="kept it")
    assert (out.steps_done, out.stopped, out.message) == (3, stopped, text)


def test_callback_and_time_budget_stop():
    out = run_steps(counting(), 10, progress=False, callback=lambda k, t: k == 2)
    assert (out.steps_done, out.stopped) == (2, "callback")

    def slow(k):
        time.sleep(0.02)
        return {"loss": 1.0}

    out = run_steps(slow, 1000, progress=False, max_seconds=0.05, kept="keeping the best")
    assert out.stopped == "time budget" and 1 <= out.steps_done < 1000
    assert out.message.endswith("keeping the best")


def test_optimization_post_step_changes_the_iterate_before_the_callback_sees_it():
    seen = []

    def nudge(step, o):
        o.variables["x"].assign_add(tf.ones_like(o.variables["x"]) * 100.0)

    opt = Optimization(lambda x: {"l2": tf.reduce_sum(x ** 2)}, np.zeros(2, np.float32),
                       OptimizeConfig(steps=2, progress=False, compile=False, learning_rate=0.1),
                       post_step=nudge)
    opt.run(callback=lambda step, loss, terms, o: seen.append(o.value().copy()))
    assert seen[0][0] == pytest.approx(100.0, abs=0.2)  # nudged after step 1's update
    assert seen[1][0] > 199.0
