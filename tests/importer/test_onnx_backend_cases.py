"""The ONNX operator test cases shipped in the onnx wheel, run through our importer.

Every case whose ops we register must either match the expected outputs (rtol 1e-3,
atol 1e-5: the field's operator-test tolerance) or be refused with a clear
``OnnxImportError`` naming the unsupported feature; wrong numbers fail. Inputs after the
first are frozen into initializers (the importer needs shapes, scales and pads at trace
time, as exported models provide them). Cases are limited to float32/int/bool tensors and
opsets are clamped to 18, the newest the importer supports.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases

from converters.onnx_to_tf import OnnxImportError, load, supported_ops

_OK_DTYPES = {np.dtype(t) for t in (np.float32, np.int64, np.int32, np.bool_)}
# Random training-mode behaviour cannot match a fixed expected output.
_NONDETERMINISTIC = ("test_training_dropout",)


def _cases():
    ops = set(supported_ops())
    out = []
    for case in collect_testcases():
        types = {n.op_type for n in case.model.graph.node}
        if not types or not types <= ops or case.name.startswith(_NONDETERMINISTIC):
            continue
        arrays = [np.asarray(a) for inputs, outputs in case.data_sets for a in (*inputs, *outputs)]
        if not all(a.dtype in _OK_DTYPES for a in arrays):
            continue
        out.append(case)
    return out


CASES = _cases()


def _prepare(case, inputs):
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and imp.version > 18:
            imp.version = 18
    names = [i.name for i in model.graph.input]
    feeds = {}
    for k, (name, value) in enumerate(zip(names, inputs)):
        if k == 0:
            feeds[name] = value
        else:
            model.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
    return model, feeds


def test_backend_cases_were_collected():
    assert len(CASES) > 300


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_backend_case(case):
    for inputs, expected in case.data_sets:
        model, feeds = _prepare(case, inputs)
        try:
            got = load(model)(feeds, compiled=False)
        except OnnxImportError as err:
            assert "support" in str(err), str(err)
            pytest.skip(f"refused cleanly: {err}")
        got = got if isinstance(got, tuple) else (got,)
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(np.asarray(g), e, rtol=1e-3, atol=1e-5)
