"""The importer in float64 (``load(..., dtype="float64")``): Cast and float constants follow
the model's float type, and grouped/depthwise convolutions and LRN, whose TF kernels have no
float64 (or no CPU) gradient, take composite paths. Each path is checked against onnxruntime
(forward), against the float32 path (gradient), against central finite differences in
float64 (gradient, independent of any other framework) and, through the cross-check, against
PyTorch in float64."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tensorflow as tf
from compare import rel_error as _rel
from onnx import TensorProto, helper, numpy_helper
from onnx_builders import make_model, run_ort

from converters import onnx_to_tf
from converters.crosscheck import crosscheck

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# -- graph helpers ------------------------------------------------------------------------------
class Net:
    """A small graph on one input ``x``, built node by node with seeded weights."""

    def __init__(self, x_shape, seed: int = 0, opset: int = 17):
        self.rng = np.random.default_rng(seed)
        self.x = self.rng.standard_normal(x_shape).astype(np.float32)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: dict[str, np.ndarray] = {}
        self.opset = opset
        self.last = "x"

    def weight(self, *shape, scale=0.4) -> str:
        name = f"w{len(self.inits)}"
        self.inits[name] = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        return name

    def op(self, op_type, inputs=None, out=None, **attrs) -> str:
        out = out or f"{op_type.lower()}{len(self.nodes)}"
        inputs = [self.last] if inputs is None else inputs
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        self.last = out
        return out

    def conv(self, cin, cout, k=3, group=1, bias=True, **attrs) -> str:
        n = len(self.x.shape) - 2
        attrs.setdefault("pads", [k // 2] * (2 * n))
        ins = [self.last, self.weight(cout, cin // group, *[k] * n)]
        if bias:
            ins.append(self.weight(cout, scale=0.1))
        return self.op("Conv", ins, group=group, **attrs)

    def const(self, value, dtype=np.float32) -> str:
        name = f"k{len(self.nodes)}"
        tensor = numpy_helper.from_array(np.asarray(value, dtype), name)
        self.nodes.append(helper.make_node("Constant", [], [name], value=tensor))
        return name

    def model(self) -> onnx.ModelProto:
        return make_model(self.nodes, {"x": self.x}, [self.last], self.inits, opset=self.opset)


def _value_and_grad(model, x, w):
    """(y, d<w, y>/dx) of an imported model, eagerly, in the graph's layout."""
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = model(xt, layout="ONNX", compiled=False)
        s = tf.reduce_sum(y * tf.constant(w, y.dtype))
    return y.numpy(), tape.gradient(s, xt).numpy()


def _directional_fd(model, x, w, v, eps=1e-5) -> float:
    """Central difference of <w, y(x)> along ``v``, float64."""

    def f(z):
        return float(np.sum(model(tf.constant(z), layout="ONNX", compiled=False).numpy() * w))

    return (f(x + eps * v) - f(x - eps * v)) / (2 * eps)


def _check_float64(net: Net, reference=None, fd_rel=1e-7):
    """float64 vs onnxruntime (or ``reference``), vs the float32 path, vs finite differences."""
    model_proto, x = net.model(), net.x
    ref = reference if reference is not None else run_ort(model_proto, {"x": x})[0]
    m32 = onnx_to_tf.load(model_proto)
    m64 = onnx_to_tf.load(model_proto, dtype="float64")
    rng = np.random.default_rng(1)
    w = rng.standard_normal(ref.shape)
    y32, g32 = _value_and_grad(m32, x, w.astype(np.float32))
    y64, g64 = _value_and_grad(m64, x.astype(np.float64), w)
    assert y64.dtype == np.float64 and g64.dtype == np.float64
    assert y32.shape == ref.shape == y64.shape
    assert _rel(y32, ref) < 1e-5 and _rel(y64, ref) < 1e-5
    assert _rel(g32, g64) < 1e-4
    for _ in range(2):
        v = rng.standard_normal(x.shape)
        fd = _directional_fd(m64, x.astype(np.float64), w, v)
        exact = float(np.sum(g64 * v))
        assert abs(fd - exact) <= fd_rel * max(1.0, abs(exact)), (fd, exact)
    return m32, m64


def _op_types(model, x) -> set[str]:
    """The TF op types of the traced forward and backward of ``model`` on ``x``."""

    @tf.function(autograph=False)
    def fwd_bwd(t):
        with tf.GradientTape() as tape:
            tape.watch(t)
            s = tf.reduce_sum(model(t, layout="ONNX", compiled=False))
        return tape.gradient(s, t)

    graph = fwd_bwd.get_concrete_function(tf.TensorSpec(x.shape, model.dtype)).graph
    return {op.type for op in graph.get_operations()}  # (the model runs inline: compiled=False)


# -- grouped and depthwise convolutions ---------------------------------------------------------
def _grouped():
    net = Net((1, 3, 9, 9), seed=1)
    net.conv(3, 4)
    net.op("Tanh")
    net.conv(4, 6, group=2, strides=[2, 2], pads=[1, 0, 1, 1])
    return net


def _depthwise():
    net = Net((2, 3, 8, 8), seed=2)
    net.conv(3, 4)
    net.op("Tanh")
    net.conv(4, 4, group=4)
    net.op("Sigmoid")
    net.conv(4, 8, group=4, strides=[2, 2], dilations=[2, 2], pads=[2, 1, 2, 2])
    return net


def _depthwise_1d():
    net = Net((1, 3, 16), seed=3)
    net.conv(3, 4, k=3)
    net.op("Tanh")
    net.conv(4, 4, k=5, group=4, strides=[2])
    return net


def _grouped_transpose():
    net = Net((1, 3, 5, 5), seed=9)
    net.conv(3, 4)
    net.op("Tanh")
    w = net.weight(4, 3, 3, 3)
    net.op("ConvTranspose", [net.last, w], group=2, strides=[2, 2], pads=[1, 1, 1, 1])
    return net


def _lrn():
    net = Net((1, 3, 6, 6), seed=4)
    net.conv(3, 7)
    net.op("LRN", size=5, alpha=1e-2, beta=0.75, bias=2.0)
    net.op("LRN", size=3, alpha=0.5, beta=0.6, bias=1.0)
    return net


@pytest.mark.parametrize(
    "build",
    [_grouped, _depthwise, _depthwise_1d, _grouped_transpose, _lrn],
    ids=["grouped", "depthwise_strided_dilated_mult2", "depthwise_1d", "grouped_transpose", "lrn"],
)
def test_float64_path_matches_onnxruntime_float32_and_finite_differences(build):
    _check_float64(build())


def test_float32_keeps_native_kernels_and_float64_takes_composites():
    net = Net((1, 3, 8, 8), seed=5)
    net.conv(3, 4)
    net.conv(4, 4, group=4)
    net.conv(4, 6, group=2)
    net.op("LRN", size=3)
    proto = net.model()
    ops32 = _op_types(onnx_to_tf.load(proto), net.x)
    ops64 = _op_types(onnx_to_tf.load(proto, dtype="float64"), net.x.astype(np.float64))
    assert {"DepthwiseConv2dNative", "LRN", "LRNGrad"} <= ops32
    assert not {"DepthwiseConv2dNative", "LRN", "LRNGrad"} & ops64
    # no grouped Conv2D kernel (no CPU gradient): in = C / group only through per-group splits
    assert "Conv2DBackpropInput" in ops32 and "Conv2DBackpropInput" in ops64


def _lrn_reference(x: np.ndarray, size: int, alpha: float, beta: float, bias: float):
    """The ONNX spec's LRN (window c - floor((size-1)/2) .. c + ceil((size-1)/2))."""
    c = x.shape[1]
    lo, hi = (size - 1) // 2, size - 1 - (size - 1) // 2
    sq = np.zeros_like(x, dtype=np.float64)
    for k in range(c):
        sq[:, k] = np.sum(x[:, max(0, k - lo) : min(c, k + hi + 1)].astype(np.float64) ** 2, 1)
    return x / (bias + alpha / size * sq) ** beta


def test_lrn_with_an_even_size_follows_the_spec():
    # onnxruntime refuses even sizes; the spec's window is asymmetric (one more channel after)
    for size in (2, 4):
        net = Net((2, 3, 3, 4), seed=6)
        net.op("LRN", size=size, alpha=0.3, beta=0.75, bias=1.5)
        ref = _lrn_reference(net.x, size, 0.3, 0.75, 1.5)
        _check_float64(net, reference=ref.astype(np.float32))


def test_second_order_gradients_through_the_float64_composites():
    """d/dx ||dL/dW||^2 (the gradient-inversion objective): float64 against float32 and
    against finite differences of the float64 first-order objective."""
    net = _depthwise()
    net.conv(8, 6, group=2)
    without_lrn = net.model()
    net.op("LRN", size=3, alpha=0.1)  # float32 LRN runs TF's kernel: LRNGrad has no gradient
    with_lrn = net.model()

    def objective_and_grad(model, x):
        x = tf.constant(x)
        with tf.GradientTape() as outer:
            outer.watch(x)
            with tf.GradientTape() as inner:
                loss = tf.reduce_sum(tf.square(model(x, layout="ONNX", compiled=False)))
            grads = inner.gradient(loss, model.trainable_variables)
            objective = tf.add_n([tf.reduce_sum(tf.square(g)) for g in grads])
        return float(objective), outer.gradient(objective, x).numpy()

    x64 = net.x.astype(np.float64)
    _, g32 = objective_and_grad(onnx_to_tf.load(without_lrn), net.x)
    _, g64 = objective_and_grad(onnx_to_tf.load(without_lrn, dtype="float64"), x64)
    assert _rel(g32, g64) < 1e-3
    model = onnx_to_tf.load(with_lrn, dtype="float64")
    _, g = objective_and_grad(model, x64)
    v, eps = np.random.default_rng(2).standard_normal(x64.shape), 1e-5
    fd = (
        objective_and_grad(model, x64 + eps * v)[0] - objective_and_grad(model, x64 - eps * v)[0]
    ) / (2 * eps)
    exact = float(np.sum(g * v))
    assert abs(fd - exact) <= 1e-6 * abs(exact), (fd, exact)


# -- Cast and float constants in a float64 model ------------------------------------------------
def _casts_and_constants():
    net = Net((1, 3, 6, 6), seed=7)
    c = net.conv(3, 4)
    half = net.op("Cast", [c], to=TensorProto.FLOAT16)
    f = net.op("Cast", [half], to=TensorProto.FLOAT)
    d = net.op("Cast", [c], to=TensorProto.DOUBLE)
    f2 = net.op("Cast", [d], to=TensorProto.FLOAT, out="cast_back")
    m = net.op("Mul", [net.const(0.7), f2])
    m = net.op("Add", [m, net.op("Mul", [f, net.const(1e-3)])])
    p = net.op("PRelu", [m, net.const(np.full((4, 1, 1), 0.1))])
    clip = net.op("Clip", [p, net.const(-0.3), net.const(0.9)])
    ones = net.op(
        "ConstantOfShape",
        [net.op("Shape", [clip])],
        value=numpy_helper.from_array(np.array([0.25], np.float32)),
    )
    a = net.op("Add", [ones, clip])
    r = net.op("Resize", [a, "", net.const([1, 1, 2, 2])], mode="linear")
    ap = net.op("AveragePool", [r], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2])
    net.op("Add", [net.op("Sigmoid", [net.const(0.3)]), ap])
    net.conv(4, 2)
    return net


def test_cast_and_float_constants_follow_the_float64_model():
    net = _casts_and_constants()
    proto = net.model()
    _, m64 = _check_float64(net)
    taps = m64(net.x.astype(np.float64), taps=["cast_back", "cast1"], layout="ONNX", compiled=False)
    assert {t.dtype for t in taps.values()} == {tf.float64}
    # float32 models keep the declared types
    m32 = onnx_to_tf.load(proto)
    assert m32(net.x, taps=["cast1"], layout="ONNX", compiled=False)["cast1"].dtype == tf.float16


# -- the cross-check in float64 against PyTorch -------------------------------------------------
def test_crosscheck_float64_rows_on_grouped_depthwise_and_lrn(tmp_path):
    net = Net((1, 3, 10, 10), seed=8)
    net.conv(3, 4)
    net.op("Relu")
    net.conv(4, 8, group=4, strides=[2, 2])
    net.op("HardSwish")
    net.conv(8, 8, group=2)
    net.op("LRN", size=5, alpha=1e-2, bias=2.0)
    path = tmp_path / "groups_lrn.onnx"
    onnx.save(net.model(), path)
    report = crosscheck(path)
    assert report.reference == "ok" and report.ok, report.table()
    g64 = next(r for r in report.rows if r.what.endswith("(float64)"))
    assert g64.max_rel < 1e-12, report.table()
