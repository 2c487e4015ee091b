"""The sweep's table: one row per job (its varied options, status, seconds and the scalar
metrics of its ``result.json``), written as CSV and markdown, a plot per varied option and,
when the jobs draw a picture, ``montage.png``: every job's picture in one figure (laid out as
a table when two options vary, e.g. learning rate x TV weight)."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from .engine import JOB_FILE, RESULT_FILE, JobOutcome, run_dir, write_atomic
from .grid import Grid, is_module_command

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
        result = _read(run_dir(folder) / RESULT_FILE) or {}
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
    program = "python -m" if is_module_command(grid.command) else "python -m tf_impl"
    lines = [f"# Sweep: {program} {grid.command}", "",
             f"Grid `{grid.source}`: {len(rows)} jobs, {done} done; shared options "
             f"{json.dumps(grid.options)}.", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    write_atomic(out / "sweep.md", "\n".join(lines) + "\n")
    files = [out / "sweep.csv", out / "sweep.md"]
    if plots:
        files += _plots(grid, rows, out)
        files += _montage(grid, rows, out)
    return files


# the picture of a job, by the first of these names that every finished job folder holds
MONTAGE_IMAGES = ("reconstruction.png", "result.png", "stylized.png", "dream.png",
                  "class_viz.png", "adversarial.png", "overlay.png", "comparison.png")
MONTAGE_MAX = 64


def _montage(grid: Grid, rows: list[dict], out: Path) -> list[Path]:
    """``montage.png``: each finished job's picture, captioned with its varied values and first
    metric; rows x columns = the two varied options' values when exactly two vary."""
    done = [r for r in rows if r["status"] == "done"][:MONTAGE_MAX]
    name = next((n for n in MONTAGE_IMAGES
                 if done and all((run_dir(out / r.get("folder", "-")) / n).is_file()
                                 for r in done)), None)
    if name is None:
        return []
    from matplotlib.figure import Figure
    from matplotlib.image import imread

    options = list(grid.grid)
    metric = next((c for c in _columns(rows) if c not in options and c not in _BOOKKEEPING
                   and any(isinstance(r.get(c), float) for r in done)), None)
    if len(options) == 2:
        ys = list(dict.fromkeys(r[options[0]] for r in rows))
        xs = list(dict.fromkeys(r[options[1]] for r in rows))
        cells = {(ys.index(r[options[0]]), xs.index(r[options[1]])): r for r in done}
        nrows, ncols = len(ys), len(xs)
    else:
        ncols = min(len(done), 6)
        nrows = -(-len(done) // ncols)
        cells = {divmod(i, ncols): r for i, r in enumerate(done)}
    fig = Figure(figsize=(2.0 * ncols, 2.1 * nrows + 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for (i, j), ax in ((ij, axes[ij]) for ij in
                       ((i, j) for i in range(nrows) for j in range(ncols))):
        ax.axis("off")
        r = cells.get((i, j))
        if r is None:
            continue
        ax.imshow(imread(run_dir(out / r["folder"]) / name), interpolation="nearest")
        text = ", ".join(f"{o}={r[o]}" for o in options)
        if metric is not None and isinstance(r.get(metric), float):
            text += f"\n{metric} {r[metric]:.3g}"
        ax.set_title(text, fontsize=6)
    fig.suptitle(f"{grid.command}: {name} of {len(done)} jobs", fontsize=8)
    fig.tight_layout()
    path = out / "montage.png"
    tmp = path.with_name(".montage.tmp.png")
    fig.savefig(tmp, dpi=90)
    tmp.replace(path)
    return [path]


_BOOKKEEPING = ("status", "seconds", "attempts", "stopped", "error", "folder")


def _plots(grid: Grid, rows: list[dict], out: Path) -> list[Path]:
    fixed = set(grid.grid) | set(_BOOKKEEPING)
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
