"""tf_impl.torch_optimizers (Adam, SGD, L-BFGS with PyTorch's update rules) against torch.optim, and
the behaviours of tf_impl.optimize.Optimization (split steps, box, schedules, NaN/Inf, Ctrl-C,
snapshots, history, dict starts, compile, Keras optimizers).

Parity is measured as max |TF - PyTorch| / max |PyTorch| on the final iterate. In float64 the
two implementations must agree to rounding (1e-10 after 50 Adam/SGD steps, 1e-8 after 5
L-BFGS steps of 20 iterations); in float32 to 1e-5 (float32 rounding, summation order).
"""

import converters  # noqa: F401  (before torch: it blocks the triton import)

# isort: split
import math
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
from compare import rel_error as rel

from tf_impl.optimize import (
    Optimization,
    OptimizeConfig,
    learning_rate_at,
    optimize,
    pixel_box,
)
from tf_impl.torch_optimizers import LBFGS, SGD, Adam

F64_TOL = 1e-10
LBFGS64_TOL = 1e-8
F32_TOL = 1e-5


# -- problems: the same function written twice ---------------------------------------------------
_rng = np.random.default_rng(0)
A = _rng.standard_normal((12, 8))
B = _rng.standard_normal(12)
X0 = _rng.standard_normal(8)
TARGET = _rng.random((1, 3, 16, 16)).astype(np.float32)
IMG0 = _rng.random((1, 3, 16, 16)).astype(np.float32)


def lsq_tf(x):
    return tf.reduce_sum((tf.linalg.matvec(tf.constant(A, x.dtype), x) - B) ** 2)


def lsq_torch(x):
    return ((torch.from_numpy(A).to(x.dtype) @ x - torch.from_numpy(B)) ** 2).sum()


def logreg_tf(x):  # smooth and non-quadratic: softplus loss with an L2 term
    z = tf.linalg.matvec(tf.constant(A, x.dtype), x)
    return tf.reduce_sum(tf.math.softplus(z) - B * z) + 0.1 * tf.reduce_sum(x * x)


def logreg_torch(x):
    z = torch.from_numpy(A).to(x.dtype) @ x
    return (torch.nn.functional.softplus(z) - torch.from_numpy(B) * z).sum() + 0.1 * (x * x).sum()


def image_tf(x):  # denoising with a smooth (Charbonnier) total variation, float32 NCHW
    dx = x[:, :, :, 1:] - x[:, :, :, :-1]
    dy = x[:, :, 1:, :] - x[:, :, :-1, :]
    tv = tf.reduce_sum(tf.sqrt(dx * dx + 1e-2)) + tf.reduce_sum(tf.sqrt(dy * dy + 1e-2))
    return tf.reduce_sum((x - TARGET) ** 2) + 0.1 * tv


def image_torch(x):
    dx = x[:, :, :, 1:] - x[:, :, :, :-1]
    dy = x[:, :, 1:, :] - x[:, :, :-1, :]
    tv = torch.sqrt(dx * dx + 1e-2).sum() + torch.sqrt(dy * dy + 1e-2).sum()
    return ((x - torch.from_numpy(TARGET)) ** 2).sum() + 0.1 * tv


PROBLEMS = {
    "lsq": (lsq_tf, lsq_torch),
    "logreg": (logreg_tf, logreg_torch),
    "image": (image_tf, image_torch),
}


def run_tf(opt, f, x0, steps, *, lbfgs=False, lr_change=None):
    """``steps`` optimizer steps from ``x0``; ``lr_change=(step, lr)`` assigns a new rate."""
    v = tf.Variable(x0)
    losses = []
    for k in range(steps):
        if lr_change and k == lr_change[0]:
            opt.learning_rate.assign(lr_change[1])
        if lbfgs:

            def closure():
                with tf.GradientTape() as tape:
                    loss = f(v)
                return loss, tape.gradient(loss, [v])

            losses.append(float(opt.minimize_step(closure, [v])))
        else:
            with tf.GradientTape() as tape:
                loss = f(v)
            opt.apply_gradients(zip(tape.gradient(loss, [v]), [v]))
            losses.append(float(loss))
    return v.numpy(), losses


def run_torch(make_opt, f, x0, steps, *, lbfgs=False, lr_change=None):
    p = torch.tensor(x0, requires_grad=True)
    opt = make_opt([p])
    losses = []
    for k in range(steps):
        if lr_change and k == lr_change[0]:
            for group in opt.param_groups:
                group["lr"] = lr_change[1]

        def closure():
            opt.zero_grad()
            loss = f(p)
            loss.backward()
            return loss

        if lbfgs:
            losses.append(opt.step(closure).item())
        else:
            losses.append(closure().item())
            opt.step()
    return p.detach().numpy(), losses


def compare(tf_opt, torch_opt, problem, x0, steps, **kw):
    f_tf, f_torch = PROBLEMS[problem]
    got, loss_tf = run_tf(tf_opt, f_tf, x0, steps, **kw)
    ref, loss_torch = run_torch(torch_opt, f_torch, x0, steps, **kw)
    assert np.abs(ref - x0).max() > 0.1, "the problem should move the iterate"
    return rel(got, ref), rel(loss_tf, loss_torch)


# -- (a) float64: the update rules themselves ----------------------------------------------------
# learning rates are powers of two here: tf_impl keeps the learning rate in a float32 variable
# (see test_float64_learning_rate_is_not_rounded), which would otherwise add a 1e-8 error.
SGD_CASES = {
    "plain": ({}, {}),
    "momentum": ({"momentum": 0.9}, {"momentum": 0.9}),
    "nesterov": ({"momentum": 0.9, "nesterov": True}, {"momentum": 0.9, "nesterov": True}),
}


@pytest.mark.parametrize("case", list(SGD_CASES))
@pytest.mark.parametrize("problem", ["lsq", "logreg"])
def test_sgd_float64_matches_torch(case, problem):
    kw_tf, kw_torch = SGD_CASES[case]
    lr = 2.0**-6
    err_x, err_loss = compare(
        SGD(lr, **kw_tf),
        lambda p: torch.optim.SGD(p, lr=lr, **kw_torch),
        problem,
        X0.copy(),
        50,
    )
    assert err_x < F64_TOL and err_loss < F64_TOL, (err_x, err_loss)


@pytest.mark.parametrize("problem", ["lsq", "logreg"])
def test_adam_float64_matches_torch(problem):
    lr = 2.0**-3
    err_x, err_loss = compare(
        Adam(lr), lambda p: torch.optim.Adam(p, lr=lr), problem, X0.copy(), 50
    )
    assert err_x < F64_TOL and err_loss < F64_TOL, (err_x, err_loss)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_float64_learning_rate_is_not_rounded(name):
    lr = 0.01
    if name == "sgd":
        tf_opt, torch_opt = SGD(lr), (lambda p: torch.optim.SGD(p, lr=lr))
    else:
        tf_opt, torch_opt = Adam(lr), (lambda p: torch.optim.Adam(p, lr=lr))
    err_x, err_loss = compare(tf_opt, torch_opt, "lsq", X0.copy(), 50)
    assert err_x < F64_TOL and err_loss < F64_TOL, (err_x, err_loss)


LBFGS64_CASES = [
    (problem, lr, history_size, None)
    for problem in ("lsq", "logreg")
    for lr in (1.0, 0.5)
    for history_size in (100, 3)
] + [("logreg", 1.0, 100, (3, 0.25))]  # the last one changes the learning rate mid-run


def test_lbfgs_float64_matches_torch():
    """5 steps of 20 iterations (torch's defaults otherwise) on each problem, learning rate and
    history size; the returned loss is the one at the start of each step, as torch returns."""
    errors = {}
    for problem, lr, history_size, lr_change in LBFGS64_CASES:
        steps, max_iter = (6, 4) if lr_change else (5, 20)
        errors[(problem, lr, history_size, lr_change)] = compare(
            LBFGS(lr, max_iter=max_iter, history_size=history_size),
            lambda p, lr=lr, m=max_iter, h=history_size: torch.optim.LBFGS(
                p, lr=lr, max_iter=m, history_size=h
            ),
            problem,
            X0.copy(),
            steps,
            lbfgs=True,
            lr_change=lr_change,
        )
    bad = {k: v for k, v in errors.items() if not max(v) < LBFGS64_TOL}
    assert not bad, f"(x, loss) relative errors above {LBFGS64_TOL}: {bad}"


def test_sgd_float64_learning_rate_change_mid_run():
    lr = 2.0**-6
    err_x, err_loss = compare(
        SGD(lr, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=lr, momentum=0.9),
        "lsq",
        X0.copy(),
        50,
        lr_change=(20, lr / 4),
    )
    assert err_x < F64_TOL and err_loss < F64_TOL, (err_x, err_loss)


# -- (b) float32: an image problem ------------------------------------------------------------
F32_CASES = {
    "adam": (lambda: Adam(0.05), lambda p: torch.optim.Adam(p, lr=0.05), False, 50),
    "sgd": (lambda: SGD(0.05), lambda p: torch.optim.SGD(p, lr=0.05), False, 50),
    "sgd-momentum": (
        lambda: SGD(0.05, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
        False,
        50,
    ),
    "sgd-nesterov": (
        lambda: SGD(0.05, momentum=0.9, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
        False,
        50,
    ),
    "lbfgs": (lambda: LBFGS(1.0), lambda p: torch.optim.LBFGS(p, lr=1.0), True, 5),
}


@pytest.mark.parametrize("lr_change", [False, True], ids=["constant-lr", "lr-change"])
@pytest.mark.parametrize("case", list(F32_CASES))
def test_float32_image_problem_matches_torch(case, lr_change):
    make_tf, make_torch, lbfgs, steps = F32_CASES[case]
    change = (steps // 2, 0.02 if not lbfgs else 0.5) if lr_change else None
    err_x, err_loss = compare(
        make_tf(), make_torch, "image", IMG0.copy(), steps, lbfgs=lbfgs, lr_change=change
    )
    assert err_x < F32_TOL and err_loss < F32_TOL, (err_x, err_loss)


def test_optimizer_arguments_are_checked():
    with pytest.raises(ValueError, match="learning_rate"):
        Adam(0.0)
    with pytest.raises(ValueError, match="nesterov"):
        SGD(0.1, nesterov=True)
    with pytest.raises(ValueError, match="learning_rate"):
        LBFGS(-1.0)


# -- Optimization: the shared loop ------------------------------------------------------------
def _cfg(**kw) -> OptimizeConfig:
    kw.setdefault("progress", False)
    return OptimizeConfig(**kw)


def test_split_steps_equal_step():
    cfg = _cfg(steps=10, learning_rate=0.05)
    a = Optimization(lambda x: {"f": image_tf(x)}, IMG0, cfg)
    b = Optimization(lambda x: {"f": image_tf(x)}, IMG0, cfg)
    for _ in range(10):
        loss_a, _ = a.step()
        loss_b, terms, grads = b.compute_gradients()
        b.apply_gradients(grads)
        assert float(loss_b) == pytest.approx(loss_a, rel=1e-6)
        assert set(terms) == {"f"}
    assert rel(b.value(), a.value()) < 1e-6


def test_edited_gradients_are_applied():
    # halving the gradients with plain SGD is halving the learning rate
    a = Optimization(lambda x: {"f": image_tf(x)}, IMG0, _cfg(optimizer="sgd", learning_rate=0.1))
    b = Optimization(lambda x: {"f": image_tf(x)}, IMG0, _cfg(optimizer="sgd", learning_rate=0.05))
    for _ in range(5):
        _, _, grads = a.compute_gradients()
        a.apply_gradients([g * 0.5 for g in grads])
        b.step()
    assert rel(a.value(), b.value()) < 1e-6
    with pytest.raises(ValueError, match="expected 1 gradients"):
        a.apply_gradients([])


def test_lbfgs_refuses_apply_gradients():
    opt = Optimization(lambda x: {"f": image_tf(x)}, IMG0, _cfg(optimizer="lbfgs"))
    _, _, grads = opt.compute_gradients()
    with pytest.raises(TypeError, match="step"):
        opt.apply_gradients(grads)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "lbfgs"])
def test_box_projection_matches_torch_clamp(optimizer):
    # the target lies partly outside the pixel box: the projection is active
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    lo, hi = pixel_box(mean, std)
    target = (4.0 * (TARGET - 0.5) / np.asarray(std, np.float32).reshape(1, 3, 1, 1)).astype(
        np.float32
    )
    lr = {"adam": 0.1, "sgd": 0.1, "lbfgs": 1.0}[optimizer]
    steps = 5 if optimizer == "lbfgs" else 30
    cfg = _cfg(steps=steps, optimizer=optimizer, learning_rate=lr)
    res = optimize(lambda x: {"mse": tf.reduce_sum((x - target) ** 2)}, IMG0, cfg, box=(lo, hi))
    x = res.x
    assert np.all(x >= lo) and np.all(x <= hi)
    assert np.sum(x == np.broadcast_to(lo, x.shape)) > 0
    assert np.sum(x == np.broadcast_to(hi, x.shape)) > 0

    p = torch.tensor(IMG0, requires_grad=True)
    opt = {
        "adam": lambda: torch.optim.Adam([p], lr=lr),
        "sgd": lambda: torch.optim.SGD([p], lr=lr),
        "lbfgs": lambda: torch.optim.LBFGS([p], lr=lr, max_iter=20),
    }[optimizer]()
    tlo, thi, tt = torch.from_numpy(lo), torch.from_numpy(hi), torch.from_numpy(target)

    def closure():
        opt.zero_grad()
        loss = ((p - tt) ** 2).sum()
        loss.backward()
        return loss

    for _ in range(steps):
        if optimizer == "lbfgs":
            opt.step(closure)
        else:
            closure()
            opt.step()
        with torch.no_grad():
            p.copy_(torch.clamp(p, tlo, thi))
    assert rel(x, p.detach().numpy()) < F32_TOL


def _torch_lrs(make_scheduler, steps: int, lr: float) -> list[float]:
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_scheduler(opt)
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scheduler.step() without a loss.backward()
        for _ in range(steps):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return out


def test_step_schedule_matches_torch_multisteplr():
    n, lr = 20, 0.1
    cfg = _cfg(steps=n, learning_rate=lr, schedule="step", milestones=(0.25, 0.5, 0.8))
    ref = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [5, 10, 16], gamma=0.1), n, lr
    )
    got = [learning_rate_at(cfg, s) for s in range(n)]
    assert got == pytest.approx(ref, rel=1e-12)
    assert got[4] == pytest.approx(0.1) and got[5] == pytest.approx(0.01)
    assert got[-1] == pytest.approx(1e-4)


def test_cosine_warmup_schedule_matches_torch():
    n, lr, w = 20, 0.1, 4
    cfg = _cfg(steps=n, learning_rate=lr, schedule="cosine", warmup=w)
    ref = _torch_lrs(
        lambda o: torch.optim.lr_scheduler.SequentialLR(
            o,
            [
                torch.optim.lr_scheduler.LinearLR(o, 1 / w, 1.0, total_iters=w - 1),
                torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=n - w),
            ],
            milestones=[w],
        ),
        n,
        lr,
    )
    got = [learning_rate_at(cfg, s) for s in range(n)]
    assert got == pytest.approx(ref, rel=1e-12)
    assert got[:w] == pytest.approx([lr * (k + 1) / w for k in range(w)])
    assert got[w] == pytest.approx(lr)
    assert got[-1] == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * (n - 1 - w) / (n - w))))


@pytest.mark.parametrize("schedule", ["step", "cosine"])
def test_schedule_reaches_the_optimizer(schedule):
    """A scheduled run equals torch with the learning rate set per step (SGD with momentum)."""
    n = 20
    cfg = _cfg(
        steps=n, optimizer="sgd", momentum=0.9, learning_rate=0.05, schedule=schedule, warmup=3
    )
    res = optimize(lambda x: {"f": image_tf(x)}, IMG0, cfg)
    lrs = [learning_rate_at(cfg, s) for s in range(n)]
    assert res.history["lr"] == lrs
    p = torch.tensor(IMG0, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.05, momentum=0.9)
    for lr in lrs:
        opt.param_groups[0]["lr"] = lr
        opt.zero_grad()
        image_torch(p).backward()
        opt.step()
    assert rel(res.x, p.detach().numpy()) < F32_TOL


@pytest.mark.parametrize("compile_", [True, False], ids=["compiled", "eager"])
@pytest.mark.parametrize("optimizer", ["sgd", "lbfgs"])
def test_non_finite_stops_the_run(optimizer, compile_):
    # sqrt of a negative number: the first (SGD) or second (L-BFGS) evaluation leaves x >= 0
    x0 = np.array([0.3, 1.0], np.float32)
    cfg = _cfg(steps=10, optimizer=optimizer, learning_rate=1.0, compile=compile_)
    res = optimize(lambda x: {"root": tf.reduce_sum(tf.sqrt(x))}, x0, cfg)
    assert res.stopped == "non-finite"
    assert "root" in res.message
    assert np.all(np.isfinite(res.x))
    if optimizer == "sgd":
        # one finite step x1 = x0 - 0.5 / sqrt(x0); the loss at x1 is NaN: x1 is kept
        assert res.steps_done == 1 and len(res.history["loss"]) == 1
        np.testing.assert_allclose(res.x, x0 - 0.5 / np.sqrt(x0), rtol=1e-6)
    else:
        # the NaN appears inside the first L-BFGS step: that step is undone
        assert res.steps_done == 0 and res.history == {}
        np.testing.assert_array_equal(res.x, x0)
    np.testing.assert_array_equal(res.best, x0)


def test_non_finite_gradient_is_named():
    # sqrt at 0: the loss is finite, its gradient is not
    res = optimize(
        lambda x: {"root": tf.reduce_sum(tf.sqrt(x))},
        np.array([0.0, 1.0], np.float32),
        _cfg(steps=5, optimizer="sgd", learning_rate=0.1),
    )
    assert res.stopped == "non-finite" and res.steps_done == 0
    assert "a gradient" in res.message
    np.testing.assert_array_equal(res.x, [0.0, 1.0])


def test_keyboard_interrupt_keeps_the_steps_done():
    def callback(step, loss, terms, opt):
        if step == 3:
            raise KeyboardInterrupt

    objective = lambda x: {"f": image_tf(x)}  # noqa: E731
    res = optimize(objective, IMG0, _cfg(steps=10, learning_rate=0.05), callback=callback)
    assert res.stopped == "interrupted" and res.interrupted
    assert res.steps_done == 3 and len(res.history["loss"]) == 3
    assert "3 of 10" in res.message
    three = optimize(objective, IMG0, _cfg(steps=3, learning_rate=0.05))
    np.testing.assert_array_equal(res.x, three.x)


def test_callback_returning_true_stops():
    res = optimize(
        lambda x: {"f": image_tf(x)},
        IMG0,
        _cfg(steps=10, learning_rate=0.05),
        callback=lambda step, *_: step == 4,
    )
    assert res.stopped == "callback" and res.steps_done == 4


def test_snapshots_every_n_steps():
    objective = lambda x: {"f": image_tf(x)}  # noqa: E731
    res = optimize(objective, IMG0, _cfg(steps=10, learning_rate=0.05, snapshot_every=3))
    assert [s for s, _ in res.snapshots] == [3, 6, 9]
    for step, snap in res.snapshots:
        ref = optimize(objective, IMG0, _cfg(steps=step, learning_rate=0.05))
        np.testing.assert_array_equal(snap, ref.x)
    assert not np.array_equal(res.snapshots[0][1], res.snapshots[1][1])


def test_history_has_one_entry_per_step_and_term():
    def objective(x):
        return {"f": image_tf(x), "l2": 0.01 * tf.reduce_sum(x * x), "tv": 0.1 * tf.reduce_sum(x)}

    res = optimize(objective, IMG0, _cfg(steps=7, learning_rate=0.05))
    assert set(res.history) == {"loss", "f", "l2", "tv", "lr"}
    assert all(len(v) == 7 for v in res.history.values())
    total = np.sum([res.history[k] for k in ("f", "l2", "tv")], axis=0)
    np.testing.assert_allclose(res.history["loss"], total, rtol=1e-6)
    # the values are those *before* each update: the first is the loss at the start
    start = {k: float(v) for k, v in objective(tf.constant(IMG0)).items()}
    for k, v in start.items():
        assert res.history[k][0] == pytest.approx(v, rel=1e-6)
    assert res.best_loss <= min(res.history["loss"])


def test_dict_start_matches_torch():
    """An image and label logits optimised jointly (Adam), with a box on the image only."""
    rng = np.random.default_rng(1)
    m = rng.standard_normal((3, 5)).astype(np.float32)
    y = np.eye(5, dtype=np.float32)[[2]]
    x0 = {"image": IMG0, "label": rng.standard_normal((1, 5)).astype(np.float32)}
    box = {"image": (0.2, 0.8), "label": None}

    def objective(v):
        img, z = v["image"], v["label"]
        feat = tf.reduce_mean(img, axis=[2, 3]) @ m
        ce = -tf.reduce_sum(y * tf.nn.log_softmax(z))
        return {
            "mse": tf.reduce_sum((img - TARGET) ** 2),
            "ce": ce,
            "couple": tf.reduce_sum((z - 4 * feat) ** 2),
        }

    res = optimize(objective, x0, _cfg(steps=30, learning_rate=0.05), box=box)
    assert set(res.x) == {"image", "label"}
    assert res.x["image"].min() >= 0.2 and res.x["image"].max() <= 0.8

    img = torch.tensor(IMG0, requires_grad=True)
    z = torch.tensor(x0["label"], requires_grad=True)
    opt = torch.optim.Adam([img, z], lr=0.05)
    tm, ty, tt = torch.from_numpy(m), torch.from_numpy(y), torch.from_numpy(TARGET)
    for _ in range(30):
        opt.zero_grad()
        feat = img.mean(dim=(2, 3)) @ tm
        loss = (
            ((img - tt) ** 2).sum()
            - (ty * torch.log_softmax(z, dim=1)).sum()
            + ((z - 4 * feat) ** 2).sum()
        )
        loss.backward()
        opt.step()
        with torch.no_grad():
            img.clamp_(0.2, 0.8)
    assert rel(res.x["image"], img.detach().numpy()) < F32_TOL
    assert rel(res.x["label"], z.detach().numpy()) < F32_TOL


def test_box_for_unknown_variable_is_refused():
    with pytest.raises(ValueError, match="not optimised"):
        Optimization(
            lambda v: {"f": tf.reduce_sum(v["a"])},
            {"a": np.zeros(2, np.float32)},
            _cfg(),
            box={"b": (0, 1)},
        )


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "lbfgs"])
def test_compiled_and_eager_agree(optimizer):
    steps = 3 if optimizer == "lbfgs" else 20
    lr = 1.0 if optimizer == "lbfgs" else 0.05

    def run(compile_):
        cfg = _cfg(
            steps=steps, optimizer=optimizer, learning_rate=lr, momentum=0.9, compile=compile_
        )
        return optimize(lambda x: {"f": image_tf(x)}, IMG0, cfg, box=(0.0, 1.0))

    a, b = run(True), run(False)
    assert rel(a.x, b.x) < 1e-6
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-6)


def test_keras_optimizer_can_be_passed():
    """keras.optimizers.SGD with a step schedule: the schedule reaches it, and the run equals
    torch.optim.SGD with the same per-step learning rates."""
    n = 12
    cfg = _cfg(steps=n, learning_rate=0.05, schedule="step", milestones=(0.5,), gamma=0.5)
    keras_opt = keras.optimizers.SGD(learning_rate=0.05)
    res = optimize(lambda x: {"f": image_tf(x)}, IMG0, cfg, optimizer=keras_opt)
    assert res.steps_done == n and res.stopped is None
    assert float(keras_opt.learning_rate.numpy()) == pytest.approx(0.025)
    p = torch.tensor(IMG0, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.05)
    for s in range(n):
        opt.param_groups[0]["lr"] = learning_rate_at(cfg, s)
        opt.zero_grad()
        image_torch(p).backward()
        opt.step()
    assert rel(res.x, p.detach().numpy()) < F32_TOL
