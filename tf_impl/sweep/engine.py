"""Running a grid's jobs on Ray: one task per job, each in its own folder, resumable.

Every job runs the command line's own code (``tf_impl.cli.main``) in a Ray worker with
``--out`` at its folder's ``run/`` (the run folder, as the command line makes it), its output
in the job folder's ``log.txt``; when it returns the runner writes
``job.json`` (status, exit code, seconds, attempts) atomically. A job is finished when its
``job.json`` says ``done`` and its ``result.json`` is complete JSON: a rerun skips it, and a
rerun of a finished sweep starts no cluster at all. A job that fails (an exception or a
non-zero exit) or whose worker dies is retried ``retries`` times (Ray's ``max_retries`` with
``retry_exceptions``), then reported with its error; the other jobs go on. Ctrl-C (or SIGTERM)
stops scheduling, cancels what is running and keeps every finished job.

``ray.init()`` starts a local cluster with ``workers`` CPUs (one job per CPU); ``address``
joins a running one (``ray start --head`` on the head node). Jobs ask for ``gpus_per_job``
GPUs (default: one where the cluster has GPUs).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import interrupts
from .grid import Grid, GridError, Point, is_module_command

__all__ = ["GRID_FILE", "JobOutcome", "SweepOutcome", "is_finished", "job_result", "run_dir",
           "run_grid", "run_job", "stored_grid", "write_atomic"]

JOB_FILE, RESULT_FILE, LOG_FILE, ATTEMPTS_FILE = "job.json", "result.json", "log.txt", "attempts"
RUN_DIR = "run"  # the job's own run folder (its --out) inside the job's folder
GRID_FILE = "grid.json"  # the checked grid with its points, in the sweep's folder


def run_dir(folder) -> Path:
    """The run folder of the job in ``folder`` (``folder/run``; a sweep made before run
    folders were separate kept the run's files in ``folder`` itself)."""
    folder = Path(folder)
    legacy = (folder / RESULT_FILE).is_file() and not (folder / RUN_DIR).exists()
    return folder if legacy else folder / RUN_DIR


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: a reader sees the old
    file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_finished(folder: Path) -> bool:
    """A finished job: ``job.json`` says done and ``result.json`` is complete JSON."""
    job = _read_json(Path(folder) / JOB_FILE)
    return (isinstance(job, dict) and job.get("status") == "done"
            and _read_json(run_dir(folder) / RESULT_FILE) is not None)


def stored_grid(out) -> Grid | None:
    """The grid a sweep folder ``out`` ran (its ``grid.json``), or None when there is none."""
    try:
        return Grid.from_record(json.loads((Path(out) / GRID_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def job_result(out, point: Point) -> dict | None:
    """The ``result.json`` of ``point``'s job in the sweep folder ``out``, None when the job
    has not finished."""
    job = Path(out) / "jobs" / point.name
    return _read_json(run_dir(job) / RESULT_FILE) if is_finished(job) else None


class JobFailed(RuntimeError):
    """A job that returned a non-zero exit status (Ray retries it like an exception)."""


def run_job(job: Callable[[list[str]], int], argv: Sequence[str], folder: str,
            threads: int | None = None) -> dict:
    """Run ``job(argv + ["--out", folder/run])`` here (with ``--overwrite`` for a sub-command of
    ``python -m tf_impl``: a retry replaces the partial run of the attempt before), its output
    in ``folder/log.txt``, with
    ``threads`` threads (None: as the job likes); write ``job.json`` when it succeeds and
    return it; raise :class:`JobFailed` otherwise."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    attempts = 1 + int((folder / ATTEMPTS_FILE).read_text() or 0) \
        if (folder / ATTEMPTS_FILE).is_file() else 1
    write_atomic(folder / ATTEMPTS_FILE, str(attempts))
    _limit_threads(threads)
    t0 = time.perf_counter()
    with open(folder / LOG_FILE, "a", encoding="utf-8") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        module = is_module_command(argv[0] if argv else "")
        tail = ["--out", str(folder / RUN_DIR), *([] if module else ["--overwrite"])]
        print(f"$ {'python -m' if module else 'python -m tf_impl'} {' '.join(argv)} "
              f"{' '.join(tail)}  (attempt {attempts})", flush=True)
        try:
            status = job([*argv, *tail])
        except SystemExit as err:  # argparse and friends
            status = err.code if isinstance(err.code, int) else 1
    seconds = time.perf_counter() - t0
    if status != 0:
        raise JobFailed(f"exit status {status} (see {folder / LOG_FILE}: "
                        f"{_last_line(folder / LOG_FILE)})")
    record = {"status": "done", "exit": 0, "seconds": round(seconds, 3), "attempts": attempts,
              "argv": list(argv), "pid": os.getpid()}
    write_atomic(folder / JOB_FILE, json.dumps(record, indent=1))
    return record


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def _limit_threads(threads: int | None) -> None:
    """One job per CPU: the job's thread pools (OpenMP, TensorFlow's) sized to its share, set
    before TensorFlow starts its runtime in this worker (at the worker's first job)."""
    if not threads:
        return
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import tensorflow as tf

    with contextlib.suppress(RuntimeError):  # already running: keep what it has
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


@dataclass
class JobOutcome:
    """One job after the run: its point, folder, status (done, failed, skipped, cancelled)."""

    point: Point
    folder: Path
    status: str
    error: str = ""


@dataclass
class SweepOutcome:
    """Every job's outcome, the run's seconds and whether Ctrl-C/SIGTERM stopped it."""

    jobs: list[JobOutcome]
    seconds: float
    interrupted: bool = False

    @property
    def failed(self) -> list[JobOutcome]:
        return [j for j in self.jobs if j.status == "failed"]


def check_address(address: str | None, timeout: float = 3.0) -> None:
    """An unreachable cluster address is refused before anything starts."""
    if not address or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise GridError(f"--address must be HOST:PORT (e.g. 10.0.0.5:6379); got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise GridError(f"cannot reach the Ray cluster at {address} ({err.strerror or err}); "
                        "start it with `ray start --head` there, or leave --address out for a "
                        "local cluster") from None


def run_grid(grid: Grid, out, job: Callable[[list[str]], int], *, address: str | None = None,
             workers: int | None = None, retries: int = 1, gpus_per_job: float | None = None,
             threads: int | None = None,
             on_done: Callable[[JobOutcome], None] | None = None,
             log: Callable[[str], None] = print) -> SweepOutcome:
    """Run every unfinished job of ``grid`` under ``out/jobs/`` on Ray; see the module
    docstring. ``threads``: each job's thread count (None: the job's own choice); ``on_done``
    is called after each finished or failed job (the runner rewrites its table there)."""
    t0 = time.perf_counter()
    jobs_dir = Path(out) / "jobs"
    outcomes = {p.name: JobOutcome(p, jobs_dir / p.name, "pending") for p in grid.points}
    todo = []
    for o in outcomes.values():
        if is_finished(o.folder):
            o.status = "skipped"
        else:
            todo.append(o)
    log(f"{len(grid.points)} jobs: {len(grid.points) - len(todo)} finished before, "
        f"{len(todo)} to run")
    if not todo:
        return SweepOutcome(list(outcomes.values()), time.perf_counter() - t0)
    import ray

    remote, started = _connect(address, workers, gpus_per_job, retries)
    refs = {remote.remote(job, list(o.point.argv), str(o.folder), threads): o for o in todo}
    interrupted = False
    previous = signal.getsignal(signal.SIGTERM)
    with contextlib.suppress(ValueError):  # not the main thread: Ctrl-C only
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            if interrupts.requested() is not None:  # Ctrl-C/SIGTERM under graceful_stop
                raise KeyboardInterrupt
            if not ready:
                continue
            o = refs[ready[0]]
            try:
                ray.get(ready[0])
                o.status = "done"
            except Exception as err:  # noqa: BLE001 - the job's error, after its retries
                o.status, o.error = "failed", _job_error(err)
            log(f"[{sum(x.status in ('done', 'failed') for x in outcomes.values())}/"
                f"{len(todo)}] {o.status}: {o.point.name}{': ' + o.error if o.error else ''}")
            if on_done is not None:
                on_done(o)
    except KeyboardInterrupt:
        interrupted = True
        for ref in pending:
            ray.cancel(ref, force=True)
        for o in outcomes.values():
            if o.status == "pending":
                o.status = "cancelled"
        log("interrupted: scheduling stopped; every finished job is kept (rerun to go on)")
    finally:
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, previous)
        if started:
            ray.shutdown()
    return SweepOutcome(list(outcomes.values()), time.perf_counter() - t0, interrupted)


def _connect(address, workers, gpus_per_job, retries):
    """(``run_job`` as a Ray task with its resources and retries, whether a local cluster was
    started here): join ``address``, or start one with ``workers`` CPUs."""
    import ray

    check_address(address)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else (workers or os.cpu_count()),
                 include_dashboard=False, log_to_driver=False, configure_logging=False)
    gpus = gpus_per_job
    if gpus is None:
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    remote = ray.remote(run_job).options(num_cpus=1, num_gpus=gpus, max_retries=retries,
                                         retry_exceptions=True)
    return remote, started


def _interrupt(signum, frame):
    """SIGTERM (a scheduler, ``timeout``, a container stop) stops the sweep like Ctrl-C."""
    raise KeyboardInterrupt


def _job_error(err: BaseException) -> str:
    """The job's own message out of Ray's wrapping (a worker that died says so)."""
    cause = getattr(err, "cause", None)
    if cause is not None:
        err = cause
    text = str(err).strip().splitlines()
    if type(err).__name__ in ("WorkerCrashedError", "NodeDiedError"):
        return f"its worker died ({type(err).__name__}), after every retry"
    return (f"{type(err).__name__}: {text[-1]}" if text else type(err).__name__)[:300]

