"""The cross-check command: table, JSON, exit codes."""

from __future__ import annotations

import json

from converters.crosscheck import main


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
