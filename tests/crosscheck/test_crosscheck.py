"""The cross-check command: table, JSON, exit codes; third-party files built here with
onnx.helper (and a torchvision export) on which it must never crash."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, external_data_helper, helper, numpy_helper
from onnx_builders import make_model

from converters import crosscheck as cc
from converters import onnx_to_torch
from converters.crosscheck import crosscheck, main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_crosscheck_command_passes_and_writes_json(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["lenet_dlg10", "--batch", "2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "forward TF vs onnxruntime" in text and text.strip().endswith("OK")
    report = json.loads(out.read_text())
    assert report["ok"] and report["input_shape"] == [2, 3, 32, 32]
    assert {r["what"] for r in report["rows"]} >= {
        "forward TF vs onnxruntime",
        "input gradient TF vs PyTorch",
        "input gradient TF vs PyTorch (float64)",
    }


def test_crosscheck_command_exits_1_on_mismatch(capsys):
    # a tolerance of zero cannot be met by two float32 runtimes: the table must say so
    assert main(["lenet_dlg10", "--forward-tol", "0"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_crosscheck_command_reports_a_missing_file(tmp_path, capsys):
    assert main([str(tmp_path / "missing.onnx")]) == 2
    assert "no ONNX file" in capsys.readouterr().err


# -- third-party files --------------------------------------------------------------------------

_RNG = np.random.default_rng(0)
_X = _RNG.standard_normal((1, 3, 8, 8)).astype(np.float32)
_W = (_RNG.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32)


def _conv_model(tail, opset=17, inits=None, x=_X, out="y", ir_version=None):
    """x -> Conv(3 -> 4, pads 1) -> ``tail`` nodes (reading "c", writing ``out``)."""
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), *tail]
    model = make_model(nodes, {"x": x}, [out], {"w": _W, **(inits or {})}, opset=opset)
    if ir_version is not None:
        model.ir_version = ir_version
    return model


def _save(tmp_path, name, model) -> str:
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    return str(path)


def _one_error_line(capsys, code, *needles):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, captured.out + captured.err
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err and ";" in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def mobilenet_v3_path(tmp_path_factory):
    """torchvision's mobilenet_v3_small (10 classes) at 64x64, BatchNorm statistics calibrated
    on noise so activations stay O(1), exported at opset 17 (depthwise convs, HardSwish, SE)."""
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v3_small(num_classes=10)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn(16, 3, 64, 64))
    net.eval()
    path = tmp_path_factory.mktemp("mnv3") / "mobilenet_v3_small.onnx"
    torch.onnx.export(
        net,
        torch.randn(1, 3, 64, 64),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["input"],
        output_names=["logits"],
    )
    return str(path)


def test_mobilenet_v3_small_passes_in_float32_and_float64(mobilenet_v3_path, capsys):
    assert main([mobilenet_v3_path]) == cc.EXIT_OK
    out = capsys.readouterr().out
    assert "reference (PyTorch via onnx2torch): ok" in out and out.strip().endswith("OK")
    assert "(reference noise)" in out and "PyTorch vs onnxruntime:" in out
    row = next(line for line in out.splitlines() if "(float64)" in line)
    assert row.rstrip().endswith("yes")


@pytest.mark.parametrize(
    "name,model,why",
    [
        (
            "dropout_opset7",
            _conv_model([helper.make_node("Dropout", ["c"], ["y"])], opset=7, ir_version=3),
            "Dropout",
        ),
        (
            "avgpool_asymmetric_pads",
            _conv_model(
                [
                    helper.make_node(
                        "AveragePool",
                        ["c"],
                        ["y"],
                        kernel_shape=[3, 3],
                        pads=[0, 1, 1, 0],
                        strides=[2, 2],
                    )
                ]
            ),
            "non symmetrical padding",
        ),
    ],
    ids=["dropout_opset7", "avgpool_asymmetric_pads"],
)
def test_unconvertible_reference_exits_3_and_says_why(tmp_path, capsys, name, model, why):
    path, report_path = _save(tmp_path, name, model), tmp_path / "r.json"
    assert main([path, "--json", str(report_path)]) == cc.EXIT_REFERENCE_UNAVAILABLE
    out = capsys.readouterr().out
    assert "forward TF vs onnxruntime" in out and "REFERENCE UNAVAILABLE" in out
    report = json.loads(report_path.read_text())
    assert report["ok"] and report["exit_code"] == 3
    assert report["reference"].startswith("unavailable: onnx2torch conversion: NotImplementedError")
    assert why in report["reference"] and "\n" not in report["reference"]
    assert [r["what"] for r in report["rows"]] == ["forward TF vs onnxruntime"]
    # a TF vs onnxruntime mismatch still says mismatch
    assert main([path, "--forward-tol", "0"]) == cc.EXIT_MISMATCH


def test_weights_listed_as_graph_inputs_at_opset_9(tmp_path, capsys):
    bias = np.full(4, 0.1, np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c"], ["y"]),
        ],
        "weights_as_inputs",
        [
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, 3, 3]),  # before x
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, [4]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(_W, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 3
    assert main([_save(tmp_path, "weights_inputs", model)]) == cc.EXIT_OK
    assert "input gradient TF vs PyTorch (float64)" in capsys.readouterr().out


class _Broken(torch.nn.Module):
    def forward(self, x):
        raise RuntimeError("simulated PyTorch failure")


class _Perturbed(torch.nn.Module):
    """The real onnx2torch module with its float32 outputs scaled by (1 + rel): a noisy
    float32 reference (float64 stays exact)."""

    def __init__(self, inner, rel):
        super().__init__()
        self.inner, self.rel = inner, rel

    def forward(self, x):
        out = self.inner(x)
        if x.dtype != torch.float32:
            return out
        if isinstance(out, (tuple, list)):
            return tuple(o * (1 + self.rel) for o in out)
        return out * (1 + self.rel)


def test_pytorch_forward_failure_keeps_the_onnxruntime_rows(tmp_path, monkeypatch):
    path = _save(tmp_path, "relu", _conv_model([helper.make_node("Relu", ["c"], ["y"])]))
    monkeypatch.setattr(onnx_to_torch, "load", lambda *a, **k: _Broken())
    report = crosscheck(path)
    assert report.ok and report.exit_code == cc.EXIT_REFERENCE_UNAVAILABLE
    assert report.reference == (
        "unavailable: PyTorch forward: RuntimeError: simulated PyTorch failure"
    )
    assert [r.what for r in report.rows] == ["forward TF vs onnxruntime"]


def test_reference_noise_sets_the_tf_vs_pytorch_tolerance(tmp_path, monkeypatch):
    path = _save(tmp_path, "relu", _conv_model([helper.make_node("Relu", ["c"], ["y"])]))
    real = onnx_to_torch.load
    monkeypatch.setattr(onnx_to_torch, "load", lambda m: _Perturbed(real(m), 2e-4))
    report = crosscheck(path)
    rows = {r.what: r for r in report.rows}
    assert 1.9e-4 < report.noise < 2.1e-4
    assert rows["forward PyTorch vs onnxruntime"].role == cc.NOISE  # decides nothing
    tf_pt = rows["forward TF vs PyTorch"]
    assert tf_pt.max_rel > cc.FORWARD_TOL and tf_pt.tolerance == pytest.approx(4 * report.noise)
    assert report.ok and report.exit_code == cc.EXIT_OK
    assert "PyTorch vs onnxruntime: 2.0e-04 (reference noise)" in report.table()
    # a reference this far from onnxruntime is no reference
    monkeypatch.setattr(onnx_to_torch, "load", lambda m: _Perturbed(real(m), 0.05))
    report = crosscheck(path)
    assert report.exit_code == cc.EXIT_REFERENCE_UNAVAILABLE and "no reference" in report.reference
    assert {r.role for r in report.rows if "TF vs PyTorch" in r.what} == {cc.INFO}


def test_saturated_softmax_compares_the_logits(tmp_path, capsys):
    gemm_w = (_RNG.standard_normal((5, 4)) * 500).astype(np.float32)  # logits in the 100s
    tail = [
        helper.make_node("GlobalAveragePool", ["c"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc"], ["scores"], transB=1),
        helper.make_node("Softmax", ["scores"], ["y"], axis=1),
    ]
    x = _RNG.standard_normal((2, 3, 8, 8)).astype(np.float32) * 3
    path = _save(tmp_path, "softmax", _conv_model(tail, inits={"fc": gemm_w}, x=x))
    report = crosscheck(path, keep_arrays=True)
    assert report.output_kind == "probabilities" and report.logits == "scores"
    probs = report.arrays["output_onnxruntime"]
    assert np.all(probs.max(axis=1) == 1.0)  # saturated: the output alone would prove nothing
    whats = {r.what for r in report.rows}
    assert {"logits TF vs onnxruntime", "logits TF vs PyTorch", "forward TF vs onnxruntime"} <= (
        whats
    )
    assert report.arrays["logits_tf"].shape == (2, 5)
    assert np.abs(report.arrays["grad_tf"]).max() > 1.0  # the gradient of the logits, not ~0
    assert report.ok and report.reference_ok, report.table()


def test_nhwc_input_and_spatial_output_in_the_graphs_own_layout(tmp_path):
    x = _RNG.standard_normal((1, 8, 8, 3)).astype(np.float32)
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["y"]),
    ]
    path = _save(tmp_path, "nhwc", make_model(nodes, {"x": x}, ["y"], {"w": _W}))
    report = crosscheck(path)
    assert report.input_shape == (1, 8, 8, 3) and report.output_kind == "spatial_logits"
    assert report.ok and report.reference_ok, report.table()


def test_non_float_input_is_one_line_error(tmp_path, capsys):
    x = (_RNG.random((1, 3, 8, 8)) * 255).astype(np.uint8)
    nodes = [
        helper.make_node("Cast", ["x"], ["xf"], to=TensorProto.FLOAT),
        helper.make_node("Conv", ["xf", "w"], ["y"]),
    ]
    path = _save(tmp_path, "uint8_input", make_model(nodes, {"x": x}, ["y"], {"w": _W}))
    _one_error_line(capsys, main([path]), "uint8", "not float", path)


def test_bad_files_and_names_are_one_line_errors(tmp_path, capsys):
    _one_error_line(capsys, main(["resnet20_cifra"]), "did you mean resnet20_cifar")
    _one_error_line(capsys, main([str(tmp_path / "missing.onnx")]), "no ONNX file")
    whole = _conv_model([helper.make_node("Relu", ["c"], ["y"])]).SerializeToString()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(whole[: len(whole) // 2])
    _one_error_line(capsys, main([str(truncated)]), "truncated", str(truncated))
    # external data outside the model's folder
    model = _conv_model([helper.make_node("Relu", ["c"], ["y"])])
    w = next(t for t in model.graph.initializer if t.name == "w")
    (tmp_path / "w.bin").write_bytes(w.raw_data)
    external_data_helper.set_external_data(w, "../w.bin")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    (tmp_path / "sub").mkdir()
    outside = _save(tmp_path / "sub", "external", model)
    _one_error_line(capsys, main([outside]), "outside the model's folder")
    # onnxruntime refuses a file our importer takes (LRN with an even size)
    even = _save(tmp_path, "lrn_even", _conv_model([helper.make_node("LRN", ["c"], ["y"], size=4)]))
    _one_error_line(capsys, main([even]), "onnxruntime cannot load it")


def test_help_states_the_exit_codes(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "3  reference unavailable" in out and "2  bad input" in out and "1  mismatch" in out
    assert "reference unavailable" in cc.__doc__ and "3:" in cc.__doc__


def test_cast_to_float_runs_in_float64_on_both_sides(tmp_path, capsys):
    k = numpy_helper.from_array(np.array(0.5, np.float32), "k")
    tail = [
        helper.make_node("Cast", ["c"], ["half"], to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["half"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["k"], value=k),
        helper.make_node("Mul", ["f", "k"], ["y"]),
    ]
    assert main([_save(tmp_path, "casts", _conv_model(tail))]) == cc.EXIT_OK
    out = capsys.readouterr().out
    assert "reference (PyTorch via onnx2torch): ok" in out
    assert next(ln for ln in out.splitlines() if "(float64)" in ln).rstrip().endswith("yes")


def test_a_failing_tf_float64_path_is_a_failing_row(tmp_path, monkeypatch):
    path = _save(tmp_path, "relu", _conv_model([helper.make_node("Relu", ["c"], ["y"])]))
    from converters.crosscheck import parity

    real = parity.tf_input_gradient

    def flaky(model, x, *args, **kwargs):
        if x.dtype == np.float64:
            raise RuntimeError("simulated float64 failure")
        return real(model, x, *args, **kwargs)

    monkeypatch.setattr(parity, "tf_input_gradient", flaky)  # where the check looks it up
    report = crosscheck(path)
    row = next(r for r in report.rows if r.what == cc.GRAD64)
    assert not row.ok and "simulated float64 failure" in row.note
    assert report.exit_code == cc.EXIT_MISMATCH and "NO" in report.table()
