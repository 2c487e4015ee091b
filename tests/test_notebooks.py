"""The notebooks run top to bottom at their quick setting, and the feature-inversion experiments
script writes its summary.

Each notebook runs with ``TFMI_NOTEBOOK_QUICK=1`` in a temporary working folder (so it writes
nothing into the repository), on a kernel that is this interpreter (a kernelspec written to a
temporary ``JUPYTER_PATH``), so the notebook sees the project's virtual environment.
"""

import json
import math
import sys
from pathlib import Path

import pytest

import converters  # noqa: F401  (blocks triton before torch / TensorFlow are imported)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
KERNEL = "tfmi-test-python"
# files each notebook must leave in its working folder (relative paths)
EXPECTED_FILES = {
    "gradient_inversion.ipynb": [],  # shows its figures inline, writes no files
    "visualization.ipynb": [],  # draws into a temporary folder and shows the PNGs inline
    "attribution.ipynb": [],  # likewise
    "feature_inversion.ipynb": [
        "runs/feature_inversion/summary.md",
        "runs/feature_inversion/results.json",
        "runs/feature_inversion/lr_curves.png",
        "runs/feature_inversion/layers_vgg16.png",
    ],
}
# a word each notebook's printed results must contain (its numbers were computed and shown)
EXPECTED_TEXT = {"feature_inversion.ipynb": "PSNR", "gradient_inversion.ipynb": "PSNR",
                 "visualization.ipynb": "fooled", "attribution.ipynb": "IDGI completeness"}
PROBE = "import sys; print('KERNEL-PREFIX', sys.prefix); print('KERNEL-EXE', sys.executable)"


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    """A kernelspec that runs this interpreter, and the notebooks' quick setting."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "tf-model-inversion (tests)",
        "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("TFMI_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    work = tmp_path / "work"
    work.mkdir()
    return work


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return output.get("data", {}).get("text/plain", "")


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/*.ipynb found"
    for path in NOTEBOOKS:
        assert path.name in EXPECTED_FILES, f"add {path.name} to EXPECTED_FILES"
        assert path.name in EXPECTED_TEXT, f"add {path.name} to EXPECTED_TEXT"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_env):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    assert all(c.get("outputs", []) == [] for c in nb.cells if c.cell_type == "code"), (
        f"{path.name} is committed with outputs; clear them"
    )
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
    client = NotebookClient(nb, timeout=300, kernel_name=KERNEL,
                            resources={"metadata": {"path": str(kernel_env)}})
    client.execute()  # raises CellExecutionError, naming the cell, if one fails

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(_text(o) for o in outputs)
    assert f"KERNEL-PREFIX {sys.prefix}" in text, "the kernel is not this virtual environment"
    assert "QUICK=True" in text, "the notebook ignored TFMI_NOTEBOOK_QUICK"
    assert EXPECTED_TEXT[path.name] in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure was shown"
    for rel in EXPECTED_FILES[path.name]:
        assert (kernel_env / rel).is_file(), f"{path.name} did not write {rel}"
    if path.name == "feature_inversion.ipynb":
        runs = json.loads((kernel_env / "runs/feature_inversion/results.json").read_text())["runs"]
        assert runs and all(math.isfinite(r["psnr"]) for r in runs)


def test_feature_inversion_experiments_quick(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))  # benchmarks/ is not an installed package
    from benchmarks import feature_inversion_experiments as fie

    assert fie.main(["--quick", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    runs = record["runs"]
    assert {r["experiment"] for r in runs} == {"lr", "tv", "ratio", "layers"}
    assert {r["model"] for r in runs} == {"vgg16_features", "resnet18", "resnet20_cifar"}
    for r in runs:
        for key in ("psnr", "ssim", "lpips_vgg", "seconds", "data_term", "tv_term"):
            assert isinstance(r[key], float) and math.isfinite(r[key]), (r["run"], key)
        assert r["steps"] == fie.QUICK.steps
    # scaling both weights by the same factor leaves Adam's path (almost) unchanged
    ratio = [r for r in runs if r["experiment"] == "ratio"]
    assert abs(ratio[-1]["psnr"] - ratio[len(fie.QUICK.ratios) // 2]["psnr"]) < 0.05
    summary = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert summary.count("\n| ") >= len(runs) and "random" in summary
    for name in record["figures"].values():
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
