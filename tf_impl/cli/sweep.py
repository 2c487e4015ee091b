"""``python -m tf_impl sweep GRID.yaml --out runs/sweep``: a grid of runs of one sub-command as
jobs on Ray (see :mod:`tf_impl.sweep`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK

GRID_HELP = """\
The grid file (YAML) names a sub-command, the options every job shares and the options to
vary; one job per point of the product of the lists:

  command: feature-inversion
  options: {model: vgg16_features, layer: conv3_1, steps: 200}
  grid: {lr: [0.01, 0.05, 0.1], tv-weight: [0.0, 0.5]}

Each job runs the command line's own code with --out OUT/jobs/<point>/run; OUT/sweep.csv,
OUT/sweep.md, OUT/plot_<option>.png and OUT/montage.png collect every finished job. A rerun
skips finished jobs (a complete result.json); a failed job is retried once, then reported
with its error.
Ctrl-C stops scheduling and keeps what finished. Grids of the benchmarks: benchmarks/grids/.
A command with a dot is a module with build_parser() and main(argv), run as
python -m MODULE (command: benchmarks.label_restoration).
"""


def add_parsers(sub) -> None:
    import argparse

    p = sub.add_parser("sweep", help="a grid of runs of one command, as jobs on Ray",
                       description=GRID_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("grid", help="the grid file (YAML)")
    p.add_argument("--out", default="runs/sweep", help="the sweep's folder (default: %(default)s)")
    p.add_argument("--address", help="join a running Ray cluster (HOST:PORT, or 'auto'); "
                   "default: start a local one")
    p.add_argument("--workers", type=int, help="local cluster: jobs at once (default: the CPU "
                   "count)")
    p.add_argument("--retries", type=int, default=1, help="retries of a failed job "
                   "(default: %(default)s)")
    p.add_argument("--gpus-per-job", type=float, help="GPUs each job asks for (default: 1 when "
                   "the cluster has GPUs, else 0)")
    p.add_argument("--no-plots", action="store_true", help="the table only")
    p.set_defaults(run=run_sweep)


def _parser():
    import argparse

    sub = argparse.ArgumentParser(prog="python -m tf_impl").add_subparsers()
    add_parsers(sub)
    return sub.choices["sweep"]


def _refuse(message):
    from ..sweep import GridError

    raise GridError(message)


def finished_sweep(argv: list[str]) -> int | None:
    """A rerun of a sweep whose jobs are all finished, answered from its folder before the
    command line (and TensorFlow) is loaded: the table is rewritten, no job runs. None when
    there is anything to run or check (the grid file changed, a job is not finished)."""
    from ..sweep import GridError, collect_rows, is_finished, stored_grid, write_table
    from ..sweep.grid import read_grid_file

    if any(a in ("-h", "--help") for a in argv):
        return None
    parser = _parser()
    parser.error = _refuse  # quietly: the full command line says what is wrong
    try:
        args = parser.parse_args(argv)
        data = read_grid_file(args.grid)
    except GridError:
        return None
    out = Path(args.out)
    grid = stored_grid(out)
    if grid is None or grid.spec() != data:
        return None
    if not all(is_finished(out / "jobs" / p.name) for p in grid.points):
        return None
    grid = type(grid)(grid.command, grid.options, grid.grid, grid.points, args.grid)
    write_table(grid, collect_rows(grid, None, out), out, plots=not args.no_plots)
    print(f"{len(grid.points)} jobs: every one finished before; nothing to run. "
          f"{out / 'sweep.md'}", file=sys.stderr)
    return EXIT_OK


def run_sweep(args) -> int:
    from ..sweep import GridError, collect_rows, load_grid, run_grid, stored_grid, write_table
    from ..sweep.engine import GRID_FILE, check_address
    from ..sweep.grid import is_module_command, run_module_command

    if args.workers is not None and args.workers < 1:
        raise GridError(f"--workers must be >= 1; got {args.workers}")
    if args.retries < 0:
        raise GridError(f"--retries must be >= 0; got {args.retries}")
    grid = load_grid(args.grid, args.command_parser)
    check_address(args.address)
    out = Path(args.out)
    old = stored_grid(out)
    if old is not None and old.command != grid.command:
        raise GridError(f"{out} holds a sweep of {old.command!r}, not {grid.command!r}: pick "
                        "another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / GRID_FILE).write_text(json.dumps(grid.to_record(), indent=1), encoding="utf-8")
    outcomes = {}

    def progress(o):
        outcomes[o.point.name] = o
        write_table(grid, collect_rows(grid, outcomes, out), out, plots=False)

    job = run_module_command if is_module_command(grid.command) else args.job
    result = run_grid(grid, out, job, address=args.address, workers=args.workers,
                      retries=args.retries, gpus_per_job=args.gpus_per_job, on_done=progress,
                      threads=None if args.address else 1,
                      log=lambda s: print(s, file=sys.stderr, flush=True))
    outcomes = {o.point.name: o for o in result.jobs}
    rows = collect_rows(grid, outcomes, out)
    write_table(grid, rows, out, plots=not args.no_plots)
    done = sum(r["status"] == "done" for r in rows)
    print(f"{done} of {len(rows)} jobs done, {len(result.failed)} failed, in "
          f"{result.seconds:.1f} s: {out / 'sweep.md'}", file=sys.stderr)
    for o in result.failed:
        print(f"failed: {o.point.name}: {o.error}", file=sys.stderr)
    if result.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if result.failed else EXIT_OK
