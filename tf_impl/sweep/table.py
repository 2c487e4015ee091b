"""The sweep's table: one row per job (its varied options, status, seconds and the scalar
metrics of its ``result.json``), written as CSV and markdown, and a plot per varied option."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from .engine import JOB_FILE, RESULT_FILE, JobOutcome, write_atomic
from .grid import Grid

__all__ = ["collect_rows", "write_table"]


def _scalars(record: dict, prefix: str = "") -> dict[str, float]:
    """The numeric entries of ``record['metrics']`` (nested ones joined by '.')."""
    out = {}
    for k, v in (record or {}).items():
        if isinstance(v, bool):
            continue
        if isinstance(v, (int, float)):
            out[prefix + k] = float(v)
        elif isinstance(v, dict):
            out.update(_scalars(v, f"{prefix}{k}."))
    return out


def collect_rows(grid: Grid, outcomes: dict[str, JobOutcome] | None, out) -> list[dict]:
    """One row per point of ``grid``, read from the job folders under ``out/jobs``."""
    rows = []
    for p in grid.points:
        folder = Path(out) / "jobs" / p.name
        job = _read(folder / JOB_FILE) or {}
        result = _read(folder / RESULT_FILE) or {}
        outcome = (outcomes or {}).get(p.name)
        status = job.get("status") if job.get("status") == "done" and result else None
        if status is None:
            status = outcome.status if outcome is not None and outcome.status != "skipped" \
                else "not run"
        row = {**p.values, "status": status, "seconds": job.get("seconds", ""),
               "attempts": job.get("attempts", ""), "stopped": result.get("stopped") or "",
               "error": outcome.error if outcome is not None and status == "failed" else "",
               "folder": f"jobs/{p.name}"}
        row.update(_scalars(result.get("metrics")))
        rows.append(row)
    return rows


def _read(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _columns(rows: list[dict]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    return cols


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v).replace("|", "/")


def write_table(grid: Grid, rows: list[dict], out, *, plots: bool = True) -> list[Path]:
    """``sweep.csv``, ``sweep.md`` and ``plot_<option>.png`` (each numeric metric against the
    option, the mean over the other options' values) in ``out``; returns the files."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cols = _columns(rows)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(out / "sweep.csv", buf.getvalue())
    done = sum(r["status"] == "done" for r in rows)
    lines = [f"# Sweep: python -m tf_impl {grid.command}", "",
             f"Grid `{grid.source}`: {len(rows)} jobs, {done} done; shared options "
             f"{json.dumps(grid.options)}.", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    write_atomic(out / "sweep.md", "\n".join(lines) + "\n")
    files = [out / "sweep.csv", out / "sweep.md"]
    if plots:
        files += _plots(grid, rows, out)
    return files


def _plots(grid: Grid, rows: list[dict], out: Path) -> list[Path]:
    fixed = set(grid.grid) | {"status", "seconds", "attempts", "stopped", "error", "folder"}
    metrics = [c for c in _columns(rows) if c not in fixed
               and any(isinstance(r.get(c), float) for r in rows)][:6]
    done = [r for r in rows if r["status"] == "done"]
    if not metrics or not done:
        return []
    from ..report import headless_pyplot

    plt = headless_pyplot()
    files = []
    for option in grid.grid:
        values = list(dict.fromkeys(r[option] for r in rows))  # bundles: their names
        fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 2.8),
                                 squeeze=False)
        for ax, metric in zip(axes[0], metrics, strict=True):
            means = []
            for v in values:
                got = [r[metric] for r in done if r.get(option) == v
                       and isinstance(r.get(metric), float)]
                means.append(sum(got) / len(got) if got else math.nan)
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool)
                          for v in values)
            xs = values if numeric else list(range(len(values)))
            ax.plot(xs, means, "o-")
            if not numeric:
                ax.set_xticks(xs, [str(v) for v in values], rotation=30, fontsize=7)
            ax.set_xlabel(option, fontsize=8)
            ax.set_title(metric, fontsize=8)
        fig.suptitle(f"{grid.command}: mean over the other options", fontsize=9)
        fig.tight_layout()
        path = out / f"plot_{option.replace('/', '-')}.png"
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp, dpi=90)
        plt.close(fig)
        tmp.replace(path)
        files.append(path)
    return files
