"""Helpers for op-level parity tests: tiny ONNX graphs built with onnx.helper, run by
onnxruntime (the reference) and by our importer."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
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
