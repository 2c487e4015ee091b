"""The command line's run folders (tf_impl/run_folder.py) and its handling of Ctrl-C and
SIGTERM (tf_impl/interrupts.py): a folder holds exactly one run, complete or marked partial; a
refused run leaves nothing behind; both signals stop the run the same way at every stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tf_impl import interrupts
from tf_impl.cli import main
from tf_impl.loop import run_steps

ROOT = Path(__file__).resolve().parents[1]
SALIENCY = ["saliency", "--model", "lenet_dlg10", "--image", "cifar10:1", "--quiet"]


def _error_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("error: ")]


def _staging(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if ".partial-" in p.name or ".replaced-" in p.name]


def test_a_run_lands_whole_with_its_manifest(tmp_path):
    out = tmp_path / "a" / "b"
    assert main([*SALIENCY, "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["command"][1:3] == ["saliency", "--model"]
    assert sorted(run["files"]) == sorted(p.name for p in out.iterdir() if p.name != "run.json")
    assert "result.json" in run["files"] and not _staging(out.parent)


def test_a_folder_holding_a_run_is_refused_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*SALIENCY, "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["guided-backprop", "--model", "lenet_dlg10", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(_error_lines(err)) == 1 and "already holds a complete run" in err
    assert "--overwrite" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    # --overwrite: the new run replaces the whole folder (no saliency file is left over)
    assert main(["guided-backprop", "--model", "lenet_dlg10", "--out", str(out),
                 "--overwrite"]) == 0
    names = {p.name for p in out.iterdir()}
    assert "guided_backprop.png" in names and "saliency.png" not in names
    assert json.loads((out / "run.json").read_text())["command"][1] == "guided-backprop"
    assert not _staging(tmp_path)


def test_a_folder_of_other_files_is_never_used(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        assert main([*SALIENCY, "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err
        assert len(_error_lines(err)) == 1 and "holds no run of this tool" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me"
    (tmp_path / "file").write_text("x")
    assert main([*SALIENCY, "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_refused_input_leaves_nothing_behind(tmp_path, capsys):
    out = tmp_path / "new" / "deeper"
    assert main([*SALIENCY, "--target", "99", "--out", str(out)]) == 2  # checked after loading
    err = capsys.readouterr().err
    assert len(_error_lines(err)) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # neither the folder, its parents nor a staging one


def test_a_killed_runs_staging_folder_is_cleared_by_the_next_run(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f".run.partial-{dead}-abc"
    (stale / "snapshots").mkdir(parents=True)
    assert main([*SALIENCY, "--out", str(tmp_path / "run")]) == 0
    assert not stale.exists() and (tmp_path / "run" / "run.json").is_file()


def test_a_stop_is_asked_for_and_the_loop_ends_before_its_next_step():
    steps = []

    def step(k):
        steps.append(k)
        if k == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives between bytecodes: no exception
        return {"loss": float(k)}

    with interrupts.graceful_stop() as seen:
        out = run_steps(step, 100, progress=False)
        assert interrupts.requested() == signal.SIGTERM
    assert steps == [1, 2, 3] and out.stopped == "interrupted" and out.steps_done == 3
    assert "SIGTERM" in out.message and seen.signum == signal.SIGTERM
    assert interrupts.requested() is None  # forgotten after the block
    # before any step: nothing to keep, so the loop says so instead of keeping a start point
    with interrupts.graceful_stop(), pytest.raises(interrupts.StopNow) as stop:
        os.kill(os.getpid(), signal.SIGINT)
        run_steps(step, 100, progress=False)
    assert stop.value.signum == signal.SIGINT and stop.value.stage == "before the first step"
    # a second signal stops at once
    with interrupts.graceful_stop(), pytest.raises(interrupts.StopNow):
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)


def _start(argv, out: Path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-m", "tf_impl", *argv, "--out", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_stepping_keeps_the_result_marked_partial(tmp_path, signum, code):
    out = tmp_path / "fi"
    proc = _start(["feature-inversion", "--model", "resnet20_cifar", "--layer", "layer1",
                   "--image", "cifar10:0", "--steps", "100000", "--snapshot-every", "1",
                   "--no-lpips", "--quiet"], out)
    deadline = time.time() + 120
    while not any(tmp_path.glob(".fi.partial-*/snapshots/*.png")):  # the loop is stepping
        assert proc.poll() is None and time.time() < deadline, proc.communicate()
        time.sleep(0.1)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
    assert last.startswith(f"{name}: stopped after") and "kept the interrupted run" in last
    run = json.loads((out / "run.json").read_text())
    result = json.loads((out / "result.json").read_text())
    assert run["status"] == "interrupted" and run["exit_code"] == code
    layer = result["runs"]["layer1"]
    assert layer["stopped"] == "interrupted" and 1 <= layer["steps"] < 100000
    assert (out / "reconstruction.png").is_file() and not _staging(tmp_path)


def test_a_signal_while_loading_ends_the_run_with_nothing_written(tmp_path):
    out = tmp_path / "gi"
    proc = _start(["gradient-inversion", "--model", "lenet_dlg10", "--attack", "dlg",
                   "--steps", "5", "--quiet"], out)
    time.sleep(1.5)  # importing TensorFlow and loading the model take longer than this
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "nothing was written" in err.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_a_second_signal_stops_at_once_without_a_traceback(tmp_path):
    out = tmp_path / "gi"
    proc = _start(["gradient-inversion", "--model", "lenet_dlg10", "--attack", "dlg",
                   "--steps", "5", "--quiet"], out)
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err and "at once" in err.strip().splitlines()[-1]
    assert list(tmp_path.iterdir()) == []
