"""Sweeps (``python -m tf_impl sweep``): the grid file is checked against the command line
before anything starts, jobs run on a local Ray cluster in their own folders, finished jobs are
skipped on rerun, failed ones retried once and reported, and a killed worker's job reruns."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from tf_impl.cli import build_parser, main
from tf_impl.sweep import GridError, Point, collect_rows, parse_grid, run_grid, write_table

pytest.importorskip("ray")

QUICK = {"model": "resnet20_cifar", "layer": "layer1", "image": "cifar10:0", "steps": 2,
         "no-lpips": True, "quiet": True, "size": 32}


@pytest.fixture(scope="module")
def parser():
    return build_parser()


@pytest.mark.parametrize("data, match", [
    ({"command": "feature-inversoin", "grid": {"lr": [0.1]}}, "did you mean 'feature-inversion'"),
    ({"command": "feature-inversion", "options": {"layer": "x"}, "grid": {"stpes": [1]}},
     "unknown option --stpes; did you mean --steps"),
    ({"command": "feature-inversion", "options": {"layer": "x"}, "grid": {"lr": [0.1, "abc"]}},
     "--lr: invalid float value: 'abc'"),
    ({"command": "feature-inversion", "options": {"layer": "x"}, "grid": {}}, "grid is empty"),
    ({"command": "feature-inversion", "options": {"layer": "x"}, "grid": {"lr": []}},
     "non-empty list"),
    ({"command": "feature-inversion", "options": {"layer": "x", "quiet": "yes"},
      "grid": {"lr": [0.1]}}, "--quiet is a flag: give true or false"),
    ({"command": "feature-inversion", "grid": {"out": ["a", "b"]}}, "--out is the runner's"),
    ({"command": "layers", "grid": {"model": ["lenet_dlg10"]}}, "no --out"),
    ({"command": "sweep", "grid": {"lr": [0.1]}}, "cannot run sweeps"),
    (["not", "a", "mapping"], "must hold a mapping"),
])
def test_bad_grids_are_one_line(parser, data, match):
    with pytest.raises(GridError, match=match) as err:
        parse_grid(data, parser)
    assert "\n" not in str(err.value)


def test_a_grid_expands_to_command_lines(parser):
    grid = parse_grid({"command": "feature-inversion",
                       "options": {"layer": ["conv1_1", "conv3_1"], "joint": True,
                                   "no_lpips": False},
                       "grid": {"lr": [0.01, 0.1], "tv-weight": [0, 1]}}, parser)
    assert len(grid.points) == 4
    first = grid.points[0]
    assert first.values == {"lr": 0.01, "tv-weight": 0}
    assert first.argv in [(
        "feature-inversion", *layers, "--joint", "--lr", "0.01", "--tv-weight", "0")
        for layers in (("--layer", "conv1_1,conv3_1"),
                       ("--layer", "conv1_1", "--layer", "conv3_1"))]
    assert len({p.name for p in grid.points}) == 4 and first.name.startswith("lr=0.01_tv-")
    # the name follows the whole command line: a shared option changes every job
    other = Point(first.values, (*first.argv, "--seed", "1"))
    assert other.name != first.name


def test_bundles_vary_several_options_together(parser, tmp_path):
    grid = parse_grid({"command": "gradient-inversion", "options": {"attack": "gradinversion"},
                       "grid": {"first": [0, 4], "terms": [
                           {"name": "gradient only", "bn-weight": 0, "group-weight": 0},
                           {"name": "+ BN prior", "group-weight": 0}]}}, parser)
    assert [p.values for p in grid.points][:2] == [{"first": 0, "terms": "gradient only"},
                                                   {"first": 0, "terms": "+ BN prior"}]
    assert grid.points[1].argv[-4:] == ("--first", "0", "--group-weight", "0")
    rows = [{**p.values, "status": "done", "psnr": float(k)} for k, p in enumerate(grid.points)]
    files = write_table(grid, rows, tmp_path)  # a plot per entry, bundles by their names
    assert {f.name for f in files} >= {"plot_first.png", "plot_terms.png", "sweep.md"}
    with pytest.raises(GridError, match="both fixed and varied"):
        parse_grid({"command": "gradient-inversion", "options": {"bn-weight": 1},
                    "grid": {"terms": [{"bn-weight": 0}]}}, parser)


def test_gradinversion_terms_on_the_command_line(tmp_path, capsys):
    out = tmp_path / "gi"
    assert main(["gradient-inversion", "--attack", "gradinversion", "--batch", "2", "--seeds",
                 "2", "--steps", "2", "--bn-weight", "0", "--group-weight", "0.5",
                 "--registration", "none", "--distance", "cosine", "--l2-weight", "0",
                 "--no-compile", "--quiet", "--out", str(out)]) == 0
    config = json.loads((out / "result.json").read_text())["config"]
    assert (config["bn_weight"], config["group_weight"], config["registration"],
            config["distance"], config["l2_weight"]) == (0.0, 0.5, "none", "cosine", 0.0)
    capsys.readouterr()
    assert main(["gradient-inversion", "--attack", "dlg", "--bn-weight", "0", "--out",
                 str(tmp_path / "dlg")]) == 2
    assert "GradInversion's terms, not dlg's" in capsys.readouterr().err
    assert not (tmp_path / "dlg").exists()


def test_grid_files_of_the_benchmarks_are_valid(parser):
    from pathlib import Path

    from tf_impl.sweep import load_grid

    files = sorted((Path(__file__).resolve().parents[1] / "benchmarks" / "grids").glob("*.yaml"))
    assert len(files) >= 3
    for f in files:
        assert load_grid(f, parser).points, f


def test_bad_input_exits_2_with_one_line_and_nothing_started(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("command: feature-inversion\noptions: {layer: layer1}\ngrid: {lr: [x]}\n")
    good = tmp_path / "good.yaml"
    good.write_text("command: feature-inversion\noptions: {layer: layer1}\ngrid: {lr: [0.1]}\n")
    cases = [[str(bad)], [str(tmp_path / "missing.yaml")],
             [str(good), "--address", "127.0.0.1:1"], [str(good), "--workers", "0"]]
    for argv in cases:
        out = tmp_path / "out"
        assert main(["sweep", *argv, "--out", str(out)]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err and err[-1].startswith("error: ") and "Traceback" not in "".join(err), argv
        assert not out.exists(), argv


def test_help_and_usage_errors_print_once(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    assert capsys.readouterr().out.count("usage: python -m tf_impl sweep") == 1
    with pytest.raises(SystemExit):
        main(["sweep"])
    assert capsys.readouterr().err.count("required: grid") == 1


def test_a_sweep_runs_resumes_and_reports(tmp_path, capsys):
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(json.dumps({"command": "feature-inversion", "options": QUICK,
                                     "grid": {"lr": [0.05, 0.1]}}))
    out = tmp_path / "sweep"
    assert main(["sweep", str(grid_file), "--out", str(out), "--workers", "2"]) == 0
    rows = list(csv_rows(out / "sweep.csv"))
    assert [r["status"] for r in rows] == ["done", "done"]
    assert all(float(r["layer1.psnr"]) > 5 for r in rows)  # the job's own metrics
    assert (out / "plot_lr.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "montage.png").read_bytes()[:4] == b"\x89PNG"  # every reconstruction
    jobs = sorted((out / "jobs").iterdir())
    stamps = [json.loads((j / "job.json").read_text()) for j in jobs]
    assert all(s["attempts"] == 1 and (j / "run" / "result.json").is_file()
               for s, j in zip(stamps, jobs, strict=True))
    # a rerun of the finished sweep runs nothing (and does not even load the command line)
    t0 = time.perf_counter()
    assert main(["sweep", str(grid_file), "--out", str(out)]) == 0
    assert time.perf_counter() - t0 < 5
    assert "nothing to run" in capsys.readouterr().err
    assert [json.loads((j / "job.json").read_text()) for j in jobs] == stamps
    # a new value runs one job only; a different command into the same folder is refused
    grid_file.write_text(json.dumps({"command": "feature-inversion", "options": QUICK,
                                     "grid": {"lr": [0.05, 0.1, 0.2]}}))
    assert main(["sweep", str(grid_file), "--out", str(out), "--workers", "1"]) == 0
    assert "2 finished before, 1 to run" in capsys.readouterr().err
    grid_file.write_text(json.dumps({"command": "saliency", "grid": {"model": ["lenet_dlg10"]}}))
    assert main(["sweep", str(grid_file), "--out", str(out)]) == 2
    assert "holds a sweep of 'feature-inversion'" in capsys.readouterr().err


def csv_rows(path):
    import csv

    with open(path, newline="") as fh:
        yield from csv.DictReader(fh)


def test_a_failing_job_is_retried_once_then_reported(tmp_path, parser):
    shared = {k: v for k, v in QUICK.items() if k != "layer"}
    grid = parse_grid({"command": "feature-inversion", "options": shared,
                       "grid": {"layer": ["layer1", "no_such_layer"]}}, parser)
    result = run_grid(grid, tmp_path, main, workers=2, retries=1, log=lambda s: None)
    by_status = {o.point.values["layer"]: o for o in result.jobs}
    assert by_status["layer1"].status == "done"
    bad = by_status["no_such_layer"]
    assert bad.status == "failed" and "exit status 2" in bad.error
    assert (bad.folder / "attempts").read_text() == "2"  # the first try and one retry
    rows = collect_rows(grid, {o.point.name: o for o in result.jobs}, tmp_path)
    write_table(grid, rows, tmp_path, plots=False)
    table = (tmp_path / "sweep.md").read_text()
    assert "| failed |" in table and "exit status 2" in table and "| done |" in table


def test_ctrl_c_keeps_the_finished_jobs_and_a_rerun_goes_on(tmp_path, parser):
    def probe(argv):
        from pathlib import Path

        time.sleep(0.2)
        folder = Path(argv[argv.index("--out") + 1])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.json").write_text(json.dumps({"metrics": {"ok": 1.0}}))
        return 0

    grid = parse_grid({"command": "feature-inversion", "options": {"layer": "x"},
                       "grid": {"lr": [float(i) for i in range(8)]}}, parser)

    def ctrl_c(outcome):
        raise KeyboardInterrupt

    first = run_grid(grid, tmp_path, probe, workers=1, on_done=ctrl_c, log=lambda s: None)
    assert first.interrupted
    statuses = sorted(o.status for o in first.jobs)
    assert statuses.count("done") == 1 and statuses.count("cancelled") == 7
    again = run_grid(grid, tmp_path, probe, workers=1, log=lambda s: None)
    assert sorted(o.status for o in again.jobs) == ["done"] * 7 + ["skipped"]


def test_200_jobs_survive_a_killed_worker(tmp_path):
    running = tmp_path / "running"
    running.mkdir()

    def probe(argv):
        """A quick job (defined here, so Ray ships it by value): marks itself running, then
        records the value it was given."""
        from pathlib import Path

        folder = Path(argv[argv.index("--out") + 1])
        folder.mkdir(parents=True, exist_ok=True)
        marker = running / str(os.getpid())
        marker.write_text(folder.parent.name)  # the job folder (folder is its run/)
        time.sleep(0.1)
        (folder / "result.json").write_text(json.dumps(
            {"metrics": {"value": float(argv[argv.index("--lr") + 1])}}))
        marker.unlink()
        return 0

    grid = parse_grid({"command": "feature-inversion", "options": {"layer": "x"},
                       "grid": {"lr": [float(i) for i in range(200)]}}, build_parser())
    killed = []

    def kill_one(outcome):
        markers = list(running.iterdir())
        if killed or len(list((tmp_path / "jobs").iterdir())) <= 20 or not markers:
            return
        try:
            job = markers[0].read_text()
        except FileNotFoundError:
            return  # that job just ended: try at the next one
        os.kill(int(markers[0].name), signal.SIGKILL)  # a worker in the middle of a job
        killed.append(job)

    result = run_grid(grid, tmp_path, probe, workers=2, retries=1, on_done=kill_one,
                      log=lambda s: None)
    assert killed and not result.failed, [o.error for o in result.failed][:3]
    assert sorted(o.status for o in result.jobs) == ["done"] * 200
    values = sorted(json.loads((o.folder / "run" / "result.json").read_text())["metrics"]["value"]
                    for o in result.jobs)
    assert values == [float(i) for i in range(200)]  # every result, once
    assert (tmp_path / "jobs" / killed[0] / "attempts").read_text() == "2"  # it ran again
    attempts = [int((o.folder / "attempts").read_text()) for o in result.jobs]
    assert attempts.count(1) >= 198


PROBE_MODULE = '''
import argparse, json, pathlib

def build_parser():
    p = argparse.ArgumentParser(prog="python -m sweepprobe.job")
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--out", type=pathlib.Path, required=True)
    return p

def main(argv=None):
    args = build_parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "result.json").write_text(json.dumps({"metrics": {"square": args.size ** 2}}))
    return 0
'''


@pytest.fixture
def probe_module(tmp_path, monkeypatch):
    """A module command ``sweepprobe.job`` importable here and in Ray's workers."""
    pkg = tmp_path / "modules" / "sweepprobe"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "job.py").write_text(PROBE_MODULE)
    monkeypatch.syspath_prepend(str(pkg.parent))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(pkg.parent), *filter(None, [os.environ.get("PYTHONPATH")])]))
    return "sweepprobe.job"


@pytest.mark.parametrize("data, match", [
    ({"command": "sweepprobe.nothing", "grid": {"size": [1]}}, "no module 'sweepprobe.nothing'"),
    ({"command": "json.decoder", "grid": {"size": [1]}}, "has no build_parser"),
    ({"command": "sweepprobe.job", "grid": {"sise": [1]}}, "did you mean --size"),
    ({"command": "sweepprobe.job", "grid": {"size": ["big"]}}, "invalid int value: 'big'"),
])
def test_bad_module_commands_are_one_line(probe_module, parser, data, match):
    with pytest.raises(GridError, match=match) as err:
        parse_grid(data, parser)
    assert "\n" not in str(err.value)


def test_a_module_command_runs_as_jobs(probe_module, tmp_path, capsys):
    grid_file = tmp_path / "grid.yaml"
    grid_file.write_text(f"command: {probe_module}\ngrid: {{size: [2, 3]}}\n")
    out = tmp_path / "sweep"
    assert main(["sweep", str(grid_file), "--out", str(out), "--workers", "2"]) == 0
    rows = list(csv_rows(out / "sweep.csv"))
    assert [(r["size"], r["status"], float(r["square"])) for r in rows] == [
        ("2", "done", 4.0), ("3", "done", 9.0)]
    assert (out / "sweep.md").read_text().startswith(f"# Sweep: python -m {probe_module}")
    log = next((out / "jobs").iterdir()) / "log.txt"
    assert f"$ python -m {probe_module} --size" in log.read_text()


def test_a_running_two_node_cluster_and_its_gpus(tmp_path, parser):
    """--address joins a cluster the runner did not start (two nodes on this machine, one with a
    GPU declared): jobs ask for a GPU by default where the cluster has one, and run on that
    node with Ray's CUDA_VISIBLE_DEVICES; with --gpus-per-job 0 both nodes take jobs."""
    from ray.cluster_utils import Cluster

    def probe(argv):
        from pathlib import Path

        import ray

        time.sleep(0.3)
        folder = Path(argv[argv.index("--out") + 1])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "result.json").write_text(json.dumps({
            "metrics": {}, "node": ray.get_runtime_context().get_node_id(),
            "cuda": os.environ.get("CUDA_VISIBLE_DEVICES")}))
        return 0

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0})
    try:
        gpu_node = cluster.add_node(num_cpus=1, num_gpus=1)
        cluster.wait_for_nodes()
        runs = {}
        for gpus in (None, 0):
            grid = parse_grid({"command": "feature-inversion", "options": {"layer": "x"},
                               "grid": {"lr": [float(i) for i in range(6)]}}, parser)
            out = tmp_path / f"gpus_{gpus}"
            result = run_grid(grid, out, probe, address=cluster.address, gpus_per_job=gpus,
                              log=lambda s: None)
            assert [o.status for o in result.jobs] == ["done"] * 6
            runs[gpus] = [json.loads((o.folder / "run" / "result.json").read_text())
                          for o in result.jobs]
        assert {r["node"] for r in runs[None]} == {gpu_node.node_id}
        assert {r["cuda"] for r in runs[None]} == {"0"}
        assert len({r["node"] for r in runs[0]}) == 2
    finally:
        cluster.shutdown()
