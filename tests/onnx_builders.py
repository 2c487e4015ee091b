"""Helpers for op-level parity tests: tiny ONNX graphs built with onnx.helper, run by
onnxruntime (the reference) and by our importer."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

# Tolerances used by the field for operator tests (see ARCHITECTURE.md)
OP_RTOL, OP_ATOL = 1e-3, 1e-5


def make_model(
    nodes,
    inputs: dict,
    outputs: list[str],
    initializers: dict | None = None,
    opset: int = 17,
    output_types: dict | None = None,
) -> onnx.ModelProto:
    """inputs: name -> numpy array (shape/dtype taken from it); initializers: name -> array."""

    def vi(name, arr):
        return helper.make_tensor_value_info(
            name, helper.np_dtype_to_tensor_dtype(np.asarray(arr).dtype), list(np.shape(arr))
        )

    graph = helper.make_graph(
        nodes,
        "test",
        [vi(k, v) for k, v in inputs.items()],
        [
            helper.make_tensor_value_info(o, (output_types or {}).get(o, TensorProto.FLOAT), None)
            for o in outputs
        ],
        initializer=[
            numpy_helper.from_array(np.asarray(v), k) for k, v in (initializers or {}).items()
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def run_ort(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def run_tf(model: onnx.ModelProto, feeds: dict, compiled: bool = True) -> list[np.ndarray]:
    from converters.onnx_to_tf import load

    m = load(model)
    out = m(feeds if len(feeds) > 1 else next(iter(feeds.values())), compiled=compiled)
    outs = out if isinstance(out, tuple) else (out,)
    return [np.asarray(o) for o in outs]


def assert_parity(model: onnx.ModelProto, feeds: dict, rtol=OP_RTOL, atol=OP_ATOL, compiled=True):
    """Compare our importer with onnxruntime on ``feeds``; returns the outputs."""
    ref = run_ort(model, feeds)
    got = run_tf(model, feeds, compiled=compiled)
    assert len(ref) == len(got)
    for r, g in zip(ref, got):
        assert r.shape == g.shape, f"shape {g.shape} != onnxruntime {r.shape}"
        np.testing.assert_allclose(g, r, rtol=rtol, atol=atol)
    return got


CHAIN_RTOL, CHAIN_ATOL = 1e-3, 1e-4  # multi-op chains: values grow through several convs
COMPILED = pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])


class G:
    """A tiny ONNX graph builder: random inputs and weights from one seeded generator."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inputs: dict[str, np.ndarray] = {}
        self.inits: dict[str, np.ndarray] = {}
        self._count = 0

    def _name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def rand(self, *shape, scale: float = 1.0) -> np.ndarray:
        return (self.rng.standard_normal(shape) * scale).astype(np.float32)

    def input(self, *shape, name: str | None = None) -> str:
        name = name or self._name("x")
        self.inputs[name] = self.rand(*shape)
        return name

    def const(self, value, dtype=None, name: str | None = None) -> str:
        """An initializer (float ones become tf.Variables, int ones stay static)."""
        name = name or self._name("c")
        self.inits[name] = np.asarray(value, dtype=dtype)
        return name

    def ints(self, values) -> str:
        return self.const(values, np.int64)

    def floats(self, values) -> str:
        return self.const(values, np.float32)

    def weight(self, *shape, scale: float = 0.3) -> str:
        return self.const(self.rand(*shape, scale=scale))

    def op(self, op_type: str, inputs, n_out: int = 1, name: str | None = None, **attrs):
        outs = (
            [name or self._name(op_type.lower())]
            if n_out == 1
            else [self._name(op_type.lower()) for _ in range(n_out)]
        )
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(self, x: str, cin: int, cout: int, k: int = 3, bias: bool = True, name=None, **attrs):
        attrs.setdefault("pads", [k // 2] * 4)
        ins = [x, self.weight(cout, cin, k, k)] + ([self.weight(cout, scale=0.1)] if bias else [])
        return self.op("Conv", ins, name=name, **attrs)

    def bn(self, x: str, c: int) -> str:
        scale, bias = self.floats(1 + 0.1 * self.rand(c)), self.floats(0.1 * self.rand(c))
        mean = self.floats(0.1 * self.rand(c))
        var = self.floats(np.abs(self.rand(c)) + 0.5)
        return self.op("BatchNormalization", [x, scale, bias, mean, var], epsilon=1e-5)

    def model(self, outputs, opset: int = 17, output_types=None) -> onnx.ModelProto:
        outputs = [outputs] if isinstance(outputs, str) else list(outputs)
        return make_model(
            self.nodes, self.inputs, outputs, self.inits, opset=opset, output_types=output_types
        )

    def check(
        self,
        outputs,
        opset: int = 17,
        compiled: bool = False,
        rtol=OP_RTOL,
        atol=OP_ATOL,
        output_types=None,
    ):
        model = self.model(outputs, opset, output_types)
        return assert_parity(model, self.inputs, rtol=rtol, atol=atol, compiled=compiled)


def single(op_type, x_shape, *, opset=17, inits=(), compiled=False, seed=0, **attrs):
    """One op on a graph input (plus float initializers given as shapes or arrays)."""
    g = G(seed)
    x = g.input(*x_shape)
    names = []
    for init in inits:
        if init is None:
            names.append("")
        elif isinstance(init, tuple):
            names.append(g.weight(*init))
        else:
            names.append(g.const(init))
    y = g.op(op_type, [x, *names], **attrs)
    return g.check(y, opset=opset, compiled=compiled)
