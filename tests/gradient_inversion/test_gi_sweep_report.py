"""The paper-budget GradInversion ablation runs as a sweep (benchmarks/grids/
gradinversion_ablation.yaml, hours per job: a cluster's work); the benchmark renders its
paired-difference tables from the sweep's folder. Checked here on a folder of job records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.gradient_inversion_report import (
    _ablation_section,
    ablation_from_sweep,
    paired_change,
)
from tf_impl.cli import build_parser
from tf_impl.sweep import load_grid
from tf_impl.sweep.engine import write_atomic

GRID = Path(__file__).resolve().parents[2] / "benchmarks" / "grids" / "gradinversion_ablation.yaml"


def test_the_ablation_tables_come_from_the_sweep_folder(tmp_path):
    grid = load_grid(GRID, build_parser())
    write_atomic(tmp_path / "grid.json", json.dumps(grid.to_record()))
    terms = [b["name"] for b in grid.grid["terms"]]
    rng = np.random.default_rng(0)
    for p in grid.points:
        if p.values["batch"] == 8 and p.values["first"] == 16 and p.values["terms"] == terms[-1]:
            continue  # one job did not finish
        job = tmp_path / "jobs" / p.name
        job.mkdir(parents=True)
        k = terms.index(p.values["terms"])
        psnr = (10 + k + rng.normal(0, 0.1, p.values["batch"])).tolist()  # each row +1 dB
        write_atomic(job / "result.json", json.dumps({
            "metrics": {"psnr": psnr, "ssim": [0.1] * len(psnr), "lpips": [0.7 - 0.01 * k] *
                        len(psnr)},
            "true_labels": list(range(p.values["batch"])),
            "restored_labels": list(range(p.values["batch"])), "seconds": 60.0}))
        write_atomic(job / "job.json", json.dumps({"status": "done"}))
    tables = ablation_from_sweep(tmp_path)
    assert [(t["batch"], t["n_batches"]) for t in tables] == [(4, 3), (8, 2)]
    four, eight = tables
    assert [r["config"] for r in four["rows"]] == terms and four["steps"] == 20_000
    assert len(four["rows"][0]["per_image"]["psnr"]) == 12  # 3 batches of 4, image by image
    assert eight["n_batches"] == 2 and eight["missing"] == ["the batch from image 16"]
    assert all(len(r["per_image"]["psnr"]) == 16 for r in eight["rows"])
    for before, after in zip(four["rows"], four["rows"][1:]):  # paired, image by image
        change, se = paired_change(before, after, "psnr")
        assert abs(change - 1.0) < 0.15 and 0 < se < 0.1
    text = "\n".join(_ablation_section(four))
    assert "From the sweep in" in text and text.count("+1.0") + text.count("+0.9") == 4
    assert "Not finished" in "\n".join(_ablation_section(eight))
