"""Optimizers with PyTorch's update rules, written in TensorFlow.

Every result of this project is cross-checked against a PyTorch reference that runs the same
number of steps from the same start. Keras' Adam adds epsilon to ``sqrt(v)`` *before* the
bias correction, PyTorch after it; at step 1 that is a 30x difference in the effective
epsilon, enough to separate the two runs after a few steps when gradients are small. These
classes follow ``torch.optim.Adam``, ``torch.optim.SGD`` and ``torch.optim.LBFGS`` line for
line, so a TF run and its PyTorch reference agree step for step.

They expose the TF2 optimizer interface: ``apply_gradients(grads_and_vars)``, with the
learning rate in a ``tf.Variable`` (``optimizer.learning_rate``) that schedules assign to.
L-BFGS is different by nature: it evaluates the objective several times per step, so it
offers ``minimize_step(closure, variables)`` as ``torch.optim.LBFGS.step(closure)`` does.

Example:
    >>> import tensorflow as tf
    >>> x = tf.Variable([1.0, -2.0])
    >>> opt = Adam(learning_rate=0.1)
    >>> with tf.GradientTape() as tape:
    ...     loss = tf.reduce_sum(x**2)
    >>> opt.apply_gradients(zip(tape.gradient(loss, [x]), [x]))
    >>> [round(float(v), 3) for v in x.numpy()]
    [0.9, -1.9]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import tensorflow as tf


class _Base:
    def __init__(self, learning_rate: float):
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; got {learning_rate}")
        self.learning_rate = tf.Variable(
            float(learning_rate), dtype=tf.float64, trainable=False, name="lr"
        )
        self._slots: dict[int, dict[str, tf.Variable]] = {}

    def _slot(self, var: tf.Variable, name: str) -> tf.Variable:
        slots = self._slots.setdefault(id(var), {})
        if name not in slots:
            with tf.init_scope():  # created once, outside any tf.function being traced
                slots[name] = tf.Variable(tf.zeros_like(var), trainable=False, name=name)
        return slots[name]

    def reset(self) -> None:
        """Forget the moment estimates (as a fresh PyTorch optimizer would)."""
        for slots in self._slots.values():
            for v in slots.values():
                v.assign(tf.zeros_like(v))

    def get_state(self, variables: Sequence[tf.Variable]) -> dict[str, np.ndarray]:
        """The moment estimates of ``variables`` and the step count, as numpy (to save)."""
        state = {"iterations": np.asarray(self.iterations.numpy())}
        for i, var in enumerate(variables):
            for name, slot in self._slots.get(id(var), {}).items():
                state[f"{i}/{name}"] = slot.numpy()
        return state

    def set_state(self, variables: Sequence[tf.Variable], state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`get_state` returned (the same variables, in the same order)."""
        self.iterations.assign(int(state["iterations"]))
        for key, value in state.items():
            if key == "iterations":
                continue
            i, name = key.split("/", 1)
            self._slot(variables[int(i)], name).assign(value)


class Adam(_Base):
    """Adam (Kingma & Ba 2015) with ``torch.optim.Adam``'s arithmetic.

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    x -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
    """

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(learning_rate)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.weight_decay = weight_decay
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")

    def apply_gradients(self, grads_and_vars: Iterable[tuple[tf.Tensor, tf.Variable]]) -> None:
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        self.iterations.assign_add(1)
        # bias corrections in float64, as PyTorch computes them (Python floats): in float32,
        # 1 - 0.999 ** t loses 1e-5 of relative accuracy to cancellation
        t = tf.cast(self.iterations, tf.float64)
        bc1 = 1 - tf.pow(tf.constant(self.beta_1, tf.float64), t)
        bc2 = 1 - tf.pow(tf.constant(self.beta_2, tf.float64), t)
        step_size = tf.cast(self.learning_rate, tf.float64) / bc1
        bc2_sqrt = tf.sqrt(bc2)
        for g, v in pairs:
            g = tf.cast(g, v.dtype)
            if self.weight_decay:
                g = g + self.weight_decay * v
            m, s = self._slot(v, "m"), self._slot(v, "v")
            m.assign(self.beta_1 * m + (1 - self.beta_1) * g)
            s.assign(self.beta_2 * s + (1 - self.beta_2) * g * g)
            denom = tf.sqrt(s) / tf.cast(bc2_sqrt, v.dtype) + self.epsilon
            v.assign_sub(tf.cast(step_size, v.dtype) * (m / denom))

    def reset(self) -> None:
        super().reset()
        self.iterations.assign(0)


class SGD(_Base):
    """Stochastic gradient descent with ``torch.optim.SGD``'s momentum (buffer = grad at t=1)."""

    def __init__(self, learning_rate: float = 1e-2, momentum: float = 0.0, nesterov: bool = False):
        super().__init__(learning_rate)
        if nesterov and momentum <= 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.momentum, self.nesterov = momentum, nesterov
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")

    def apply_gradients(self, grads_and_vars: Iterable[tuple[tf.Tensor, tf.Variable]]) -> None:
        first = tf.equal(self.iterations, 0)
        self.iterations.assign_add(1)
        for g, v in grads_and_vars:
            if g is None:
                continue
            g = tf.cast(g, v.dtype)
            if self.momentum:
                buf = self._slot(v, "momentum")
                buf.assign(tf.where(first, g, self.momentum * buf + g))
                g = g + self.momentum * buf if self.nesterov else tf.identity(buf)
            v.assign_sub(tf.cast(self.learning_rate, v.dtype) * g)

    def reset(self) -> None:
        super().reset()
        self.iterations.assign(0)


class LBFGS:
    """L-BFGS with ``torch.optim.LBFGS``'s algorithm (no line search, as DLG runs it).

    One :meth:`minimize_step` is one ``torch.optim.LBFGS.step(closure)``: up to ``max_iter``
    quasi-Newton iterations, each re-evaluating the closure, with the curvature history kept
    across steps. The step length is ``learning_rate`` (the first ever iteration takes
    ``min(1, 1 / |g|_1) * lr``), exactly as PyTorch does.

    Args:
        learning_rate: step length (PyTorch's ``lr``, default 1).
        max_iter: iterations per step (20).
        max_eval: closure evaluations per step (``max_iter * 5 // 4``).
        tolerance_grad, tolerance_change: PyTorch's stopping tolerances.
        history_size: curvature pairs kept (100).
    """

    def __init__(
        self,
        learning_rate: float = 1.0,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
    ):
        if not learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; got {learning_rate}")
        self.learning_rate = tf.Variable(
            float(learning_rate), dtype=tf.float64, trainable=False, name="lr"
        )
        self.max_iter = max_iter
        self.max_eval = max_eval if max_eval is not None else max_iter * 5 // 4
        self.tolerance_grad, self.tolerance_change = tolerance_grad, tolerance_change
        self.history_size = history_size
        self.reset()

    def reset(self) -> None:
        self._n_iter = 0
        self._d = self._t = self._prev_g = None
        self._dirs: list[tf.Tensor] = []
        self._steps: list[tf.Tensor] = []
        self._ro: list[tf.Tensor] = []
        self._h_diag = 1.0

    @staticmethod
    def _flat(tensors: Sequence[tf.Tensor]) -> np.ndarray:
        arrays = [np.asarray(t) for t in tensors]
        dtype = np.result_type(*arrays)  # the variables' precision, as PyTorch keeps it
        return np.concatenate([a.reshape(-1).astype(dtype, copy=False) for a in arrays])

    @staticmethod
    def _add(variables: Sequence[tf.Variable], step: np.ndarray) -> None:
        offset = 0
        for v in variables:
            n = int(np.prod(v.shape))
            v.assign_add(step[offset : offset + n].reshape(v.shape).astype(v.dtype.as_numpy_dtype))
            offset += n

    def minimize_step(
        self,
        closure: Callable[[], tuple[tf.Tensor, Sequence[tf.Tensor]]],
        variables: Sequence[tf.Variable],
    ) -> tf.Tensor:
        """One ``torch.optim.LBFGS.step``. ``closure()`` returns ``(loss, gradients)``.

        The quasi-Newton bookkeeping (a few hundred small dot products per iteration) runs
        in numpy at the variables' precision, as PyTorch runs it; only the closure runs in TF.
        Returns the loss at the start of the step (as PyTorch does).
        """
        lr = float(self.learning_rate.numpy())
        loss, grads = closure()
        orig_loss = loss
        loss = float(loss)
        g = self._flat(grads)
        evals = 1
        if np.abs(g).max() <= self.tolerance_grad:
            return orig_loss
        n_iter = 0
        while n_iter < self.max_iter:
            n_iter += 1
            self._n_iter += 1
            if self._n_iter == 1:
                d = -g
                self._dirs, self._steps, self._ro, self._h_diag = [], [], [], 1.0
            else:
                y = g - self._prev_g
                s = self._d * self._d.dtype.type(self._t)
                ys = float(np.dot(y, s))
                if ys > 1e-10:
                    if len(self._dirs) == self.history_size:
                        self._dirs.pop(0), self._steps.pop(0), self._ro.pop(0)
                    self._dirs.append(y)
                    self._steps.append(s)
                    self._ro.append(1.0 / ys)
                    self._h_diag = ys / float(np.dot(y, y))
                q = -g
                al = [0.0] * len(self._dirs)
                for i in range(len(self._dirs) - 1, -1, -1):
                    al[i] = float(np.dot(self._steps[i], q)) * self._ro[i]
                    q = q - q.dtype.type(al[i]) * self._dirs[i]
                r = q * q.dtype.type(self._h_diag)
                for i in range(len(self._dirs)):
                    be_i = float(np.dot(self._dirs[i], r)) * self._ro[i]
                    r = r + self._steps[i] * r.dtype.type(al[i] - be_i)
                d = r
            self._prev_g = g
            prev_loss = loss
            t = min(1.0, 1.0 / float(np.abs(g).sum())) * lr if self._n_iter == 1 else lr
            self._d, self._t = d, t
            gtd = float(np.dot(g, d))
            if gtd > -self.tolerance_change:
                break
            self._add(variables, d * d.dtype.type(t))
            opt_cond = False
            if n_iter != self.max_iter:
                loss_t, grads = closure()
                loss = float(loss_t)
                g = self._flat(grads)
                evals += 1
                opt_cond = np.abs(g).max() <= self.tolerance_grad
            if n_iter == self.max_iter or evals >= self.max_eval or opt_cond:
                break
            if np.abs(d * d.dtype.type(t)).max() <= self.tolerance_change:
                break
            if abs(loss - prev_loss) < self.tolerance_change:
                break
        return orig_loss


def make_optimizer(name: str, learning_rate: float, **kwargs):
    """``"adam"``, ``"sgd"`` or ``"lbfgs"`` with the given learning rate and options."""
    table = {"adam": Adam, "sgd": SGD, "lbfgs": LBFGS}
    if name not in table:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(table)}")
    return table[name](learning_rate=learning_rate, **kwargs)
