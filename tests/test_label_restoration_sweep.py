"""``benchmarks.label_restoration`` as a sweep's module command: one setting per job
(``--setting``), and the full tables assembled from the sweep folder (``--from-sweep``)."""

from __future__ import annotations

import json

import pytest

from tf_impl.sweep import parse_grid
from tf_impl.sweep.engine import run_job
from tf_impl.sweep.grid import run_module_command


def test_one_setting_per_job_and_the_tables_from_the_sweep(tmp_path):
    from benchmarks import label_restoration

    grid = parse_grid({"command": "benchmarks.label_restoration", "options": {"trials": 2},
                       "grid": {"setting": ["resnet20_train"]}}, None)
    (tmp_path / "grid.json").write_text(json.dumps(grid.to_record()))
    with pytest.raises(SystemExit, match="has not finished"):
        label_restoration.from_sweep(tmp_path)
    point = grid.points[0]
    run_job(run_module_command, point.argv, str(tmp_path / "jobs" / point.name))
    job = json.loads((tmp_path / "jobs" / point.name / "run" / "result.json").read_text())
    cells = job["setting"]["cells"]
    assert job["setting"]["bn_mode"] == "train" and job["setting"]["trials"] == 2
    # the table's metrics: each method's mean accuracy over its cells, from those cells
    for method, value in job["metrics"].items():
        accs = [c["accuracy"] for kind in cells[method].values() for c in kind.values()]
        assert value == pytest.approx(sum(accs) / len(accs))
    assert job["metrics"]["idlg"] == 100.0  # iDLG is exact at batch 1
    assert label_restoration.main(["--from-sweep", str(tmp_path), "--out",
                                   str(tmp_path / "tables")]) == 0
    tables = json.loads((tmp_path / "tables" / "label_restoration.json").read_text())
    assert tables["settings"] == [job["setting"]]
    md = (tmp_path / "tables" / "label_restoration.md").read_text()
    assert "## resnet20_cifar, BN train" in md and "resnet18 has seeded" not in md
