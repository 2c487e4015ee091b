"""Project rules that keep the layout honest: tf_impl stays free of PyTorch, CI runs the
README's test command."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_tf_impl_never_imports_torch():
    files = list((ROOT / "tf_impl").rglob("*.py"))
    assert files
    for f in files:
        bad = _imports(f) & {"torch", "torchvision", "onnx2torch", "captum", "lpips"}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}: move that code to converters/"


def test_importer_never_imports_torch():
    for f in (ROOT / "converters" / "onnx_to_tf").rglob("*.py"):
        assert not _imports(f) & {"torch", "torchvision", "onnx2torch"}, f


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
