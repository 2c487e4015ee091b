"""One policy for every command's ``--out``: a run folder holds exactly one run, complete or
clearly marked partial, and a refused run leaves nothing behind.

- **Staged.** :class:`RunFolder` writes every file of the run into a hidden sibling
  (``.NAME.partial-PID-XXXX``) and :meth:`RunFolder.finish` moves it into place at the end,
  with ``run.json`` (the command, how it ended, its files). A run refused for bad input is
  :meth:`RunFolder.discard`-ed: nothing is created. A run killed outright (SIGKILL, the
  out-of-memory killer) leaves only the hidden folder, which the next run into the same
  ``--out`` removes.
- **Never mixed.** A folder that already holds a run (``run.json``, or the ``result.json`` of
  a run made before ``run.json`` existed) is refused unless ``--overwrite``, which replaces
  the whole folder when the new run ends. A folder with other files in it is refused even
  then (it is not ours to empty).
- **Partial runs are marked.** ``run.json``'s ``status`` is ``complete``, ``interrupted``
  (Ctrl-C or SIGTERM: what was reached is kept), ``failed`` (e.g. a NaN loss stopped it) or
  ``crashed`` (an unexpected error after some files were written).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .report import OutputDir, OutputError, missing_folders, remove_empty, unwritable

__all__ = ["MANIFEST", "RunFolder", "finish_args", "finishing", "holds_run"]

MANIFEST = "run.json"
STATUSES = ("complete", "interrupted", "failed", "crashed")


def holds_run(folder: Path) -> bool:
    """``folder`` holds a run of this tool (its ``run.json``, or an older run's
    ``result.json``)."""
    return (folder / MANIFEST).is_file() or (folder / "result.json").is_file()


def _describe(folder: Path) -> str:
    try:
        run = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return f"a {run.get('status', '?')} run of `{' '.join(run.get('command', []))}`"
    except (OSError, ValueError, AttributeError):
        return "a run"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunFolder(OutputDir):
    """The ``--out`` of one command run: writes go to a hidden staging folder (``path``), the
    run lands in ``target`` at :meth:`finish`. ``command``: the command line, for
    ``run.json``."""

    def __init__(self, target, *, overwrite: bool = False, command: Sequence[str] = ()):
        self._target = Path(target)
        self.command = [str(a) for a in command]
        self.overwrite = overwrite
        self.started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        self._check_target()
        parent = self.target.parent
        created = missing_folders(parent)  # made for the staging folder: removed if refused
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale(parent)
            staging = tempfile.mkdtemp(dir=parent, prefix=f".{self.target.name}.partial-"
                                       f"{os.getpid()}-")
        except OSError as err:
            remove_empty(created)
            raise unwritable(self.target, err) from err
        self._created = created
        self.done = False
        super().__init__(staging)

    @property
    def target(self) -> Path:
        return self._target

    # -- the checks at the door ------------------------------------------------------------
    def _check_target(self) -> None:
        t = self.target
        if t.exists() and not t.is_dir():
            raise OutputError(f"--out {t} is a file, not a folder; give a folder (it is created "
                              "if missing)")
        if not t.is_dir() or not any(t.iterdir()):
            return
        if not holds_run(t):
            raise OutputError(f"--out {t} is not empty and holds no run of this tool; give a "
                              "new or empty folder (nothing in it is replaced)")
        if not self.overwrite:
            raise OutputError(f"--out {t} already holds {_describe(t)}; give another folder, "
                              "or --overwrite to replace it when this run ends")

    def _remove_stale(self, parent: Path) -> None:
        """Staging folders of runs into the same target whose process is gone (killed)."""
        for p in parent.glob(f".{self.target.name}.partial-*"):
            try:
                pid = int(p.name.rsplit(".partial-", 1)[1].split("-")[0])
            except (IndexError, ValueError):
                continue
            if not _alive(pid) and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)

    # -- the end ---------------------------------------------------------------------------
    def files(self) -> list[str]:
        """The run's files so far (relative to the folder), without ``run.json``."""
        return sorted(str(p.relative_to(self.path)) for p in self.path.rglob("*")
                      if p.is_file() and p.name != MANIFEST and not p.name.startswith("."))

    def discard(self) -> None:
        """The run was refused: remove the staging folder and any parent made for it."""
        if self.done:
            return
        self.done = True
        shutil.rmtree(self.path, ignore_errors=True)
        remove_empty(self._created)

    def finish(self, status: str, *, exit_code: int = 0, message: str = "") -> Path | None:
        """Move the run into ``target`` with its ``run.json``; returns ``target`` (None, and
        nothing left, when no file was written)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}; got {status!r}")
        if self.done:
            return self.target
        files = self.files()
        if not files:
            self.discard()
            return None
        record = {"command": self.command, "status": status, "exit_code": exit_code,
                  "message": message, "started": self.started,
                  "finished": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                  "files": files}
        self.write_json(MANIFEST, record)
        t = self.target
        old = None
        if t.is_dir() and any(t.iterdir()):
            if not (self.overwrite and holds_run(t)):  # it changed while the run ran
                raise OutputError(f"--out {t} was filled while this run ran; the run is kept "
                                  f"in {self.path}")
            old = t.with_name(f".{t.name}.replaced-{os.getpid()}")
            os.replace(t, old)
        elif t.is_dir():
            t.rmdir()
        os.replace(self.path, t)
        self.done = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self.path = t
        return t


def finish_args(args, state: str, code: int) -> str:
    """Finish the run folder a command opened (``args.run_folder``, if any) with ``state``
    and exit ``code``; what was kept, in words."""
    folder = getattr(args, "run_folder", None)
    kept = None if folder is None else folder.finish(state, exit_code=code)
    if kept is None:
        return "nothing was written"
    return (f"wrote {kept}/" if state == "complete"
            else f"kept the {state} run in {kept}/ (marked so in its run.json)")


def finishing(run, *, bad_input, states: dict, failed: int):
    """``run(args)`` (a command) with its run folder finished when it returns: moved into
    place with the state ``states`` gives its exit status (else "failed"), discarded when it
    raises one of ``bad_input()``, kept as "crashed" on any other error, as "interrupted" on
    :class:`tf_impl.interrupts.StopNow`. So any caller of ``args.run(args)`` (the command line,
    a test, a notebook) gets the folder complete; ``args.kept`` says what was kept."""
    from . import interrupts

    @functools.wraps(run)
    def finishing_run(args):
        try:
            status = run(args)
        except interrupts.StopNow as stop:
            args.kept = f"{stop.stage}: " + finish_args(args, "interrupted",
                                                        interrupts.exit_code(stop.signum))
            raise
        except bad_input():
            folder = getattr(args, "run_folder", None)
            if folder is not None:
                folder.discard()
            args.kept = "nothing was written"
            raise
        except BaseException:  # a second signal can surface as any error from TensorFlow
            stopped = interrupts.at_once()
            finish_args(args, "interrupted" if stopped else "crashed",
                        interrupts.exit_code(interrupts.requested()) if stopped else failed)
            raise
        asked = interrupts.requested()  # the exit status the command line gives (130 or 143)
        args.kept = finish_args(args, states.get(status, "failed"),
                                status if asked is None else interrupts.exit_code(asked))
        return status

    return finishing_run
