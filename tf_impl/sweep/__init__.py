"""Sweeps: a grid of ``python -m tf_impl`` runs as jobs on Ray (``python -m tf_impl sweep``).

- :mod:`.grid`: the grid file (a sub-command, shared options, options to vary), checked
  against the command line's own parser before anything starts;
- :mod:`.engine`: one Ray task per job, each in its own folder, resumable (finished jobs are
  skipped), failed jobs retried, Ctrl-C keeps what finished;
- :mod:`.table`: every job's metrics in one table (CSV and markdown) and a plot per varied
  option.
"""

from .engine import (
    JobOutcome,
    SweepOutcome,
    is_finished,
    job_result,
    run_dir,
    run_grid,
    run_job,
    stored_grid,
)
from .grid import Grid, GridError, Point, load_grid, parse_grid
from .table import collect_rows, write_table

__all__ = ["Grid", "GridError", "JobOutcome", "Point", "SweepOutcome", "collect_rows",
           "is_finished", "job_result", "load_grid", "parse_grid", "run_dir", "run_grid",
           "run_job", "stored_grid", "write_table"]
