"""Faults and bad input against every sub-command of ``python -m tf_impl``, as a new user would
try them: each case is one process, checked for its exit status, tracebacks, the number of
``error:`` lines and what it left in (or beside) its ``--out``.

    python -m benchmarks.faults            # every command x every case (about 10 min)
    python -m benchmarks.faults --only gradient-inversion,saliency

Cases (where the command has the option): a model name with a typo; a missing image file;
``--steps 0``; ``--out`` holding another command's run; ``--out`` that is a file; SIGTERM
while stepping (commands that optimise); Ctrl-C while loading; a batch or size too large for
memory (``TF_IMPL_MEMORY_LIMIT=1G``). Expected: exit 2 with one ``error:`` line and nothing
left behind for bad input (an existing folder untouched), exit 143 / 130 without a traceback
for the signals, the kept run marked in ``run.json`` when anything was kept.

Targets (issue 16): zero tracebacks, zero out-of-memory kills, zero mixed or silently replaced
run folders, nothing left behind by a refused input. Writes
``benchmarks/results/faults.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import write_results

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
LENET = ["--model", "lenet_dlg10"]
R20 = ["--model", "resnet20_cifar"]
PIC = ["--image", "cifar10:1"]

# a quick valid run of each command; "{steps}" marks the step count, None: no --steps
COMMANDS: dict[str, list[str]] = {
    "feature-inversion": [*R20, "--layer", "layer1", *PIC, "--steps", "{steps}", "--no-lpips",
                          "--quiet"],
    "gradient-inversion": [*LENET, "--attack", "dlg", "--batch", "1", "--steps", "{steps}",
                           "--quiet"],
    "saliency": [*LENET, *PIC, "--quiet"],
    "guided-backprop": [*LENET, *PIC],
    "occlusion": [*LENET, *PIC],
    "class-viz": [*LENET, "--class", "3", "--steps", "{steps}", "--quiet"],
    "adversarial": [*LENET, *PIC, "--steps", "{steps}"],
    "deepdream": [*R20, "--layer", "layer1", *PIC, "--octaves", "1", "--steps", "{steps}"],
    "texture": [*R20, "--layers", "layer1", *PIC, "--steps", "{steps}", "--quiet"],
    "style-transfer": [*R20, "--content", "cifar10:1", "--style", "cifar10:2",
                       "--content-layers", "layer2", "--style-layers", "layer1",
                       "--steps", "{steps}", "--quiet"],
    "integrated-gradients": [*LENET, *PIC, "--steps", "8"],
    "idgi": [*LENET, *PIC, "--steps", "8"],
    "fullgrad": [*R20, *PIC],
    "attribution-eval": [*LENET, "--n", "2", "--steps", "4", "--quiet"],
    "hdr-gan": ["--quick", "--steps", "{steps}", "--quiet"],
    "fast-style": [*PIC, "--size", "64", "--quiet"],
    "fast-style-train": ["--styles", "starry_night", "--steps", "{steps}", "--size", "32",
                         "--batch", "2", "--quiet"],
}
ITERATIVE = {c for c, a in COMMANDS.items() if "{steps}" in a}
MEMORY = {  # too large for a 1 GiB budget
    "gradient-inversion": [*LENET, "--attack", "idlg", "--batch", "1000", "--steps", "1"],
    "feature-inversion": ["--model", "vgg16_features", "--layer", "conv3_1", "--image",
                          "astronaut", "--size", "4000", "--steps", "1", "--no-lpips"],
    "class-viz": ["--model", "resnet18", "--class", ",".join(map(str, range(200))),
                  "--steps", "1", "--quiet"],
    "adversarial": ["--model", "resnet20_cifar", "--n", "1000", "--steps", "1"],
}


def _argv(command: str, steps: int | str, **swap) -> list[str]:
    out = [command]
    args = [str(steps) if a == "{steps}" else a for a in COMMANDS[command]]
    i = 0
    while i < len(args):
        flag = args[i]
        if flag.lstrip("-") in swap and i + 1 < len(args):
            out += [flag, swap[flag.lstrip("-")]]
            i += 2
            continue
        out.append(flag)
        i += 1
    return out


def _run(argv, out: Path, *, env=None, signal_at=None, wait_for=None) -> dict:
    """Run ``python -m tf_impl ARGV --out OUT``; send ``signal_at = (signum, seconds)`` after
    ``wait_for`` (a glob under OUT's parent) appears, or after the seconds from the start."""
    full = [sys.executable, "-m", "tf_impl", *argv, "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(full, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, **(env or {}),
                                            "PYTHONUNBUFFERED": "1"})
    if signal_at is not None:
        signum, seconds = signal_at
        if wait_for is not None:
            deadline = time.time() + 180
            while not any(out.parent.glob(wait_for)) and proc.poll() is None \
                    and time.time() < deadline:
                time.sleep(0.1)
        time.sleep(seconds)
        if proc.poll() is None:
            proc.send_signal(signum)
    try:
        _, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return {"argv": argv, "exit": proc.returncode, "stderr": err,
            "seconds": round(time.perf_counter() - t0, 1)}


def _snapshot(path: Path) -> dict:
    """The bytes of ``path`` (a file) or of every file under it (a folder)."""
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()} if path.exists() else {}


def _leftovers(parent: Path) -> list[str]:
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or ".replaced-" in p.name]


def _judge(case: dict, expect: int, out: Path, before: dict | None) -> dict:
    err = case["stderr"]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    problems = []
    if case["exit"] != expect:
        problems.append(f"exit {case['exit']}, expected {expect}")
    if "Traceback" in err:
        problems.append("traceback")
    if case["exit"] in (-9, 137):
        problems.append("killed (out of memory?)")
    if expect == 2:
        n_err = sum("error:" in ln for ln in lines)
        if n_err != 1:
            problems.append(f"{n_err} error lines")
        if before is None and out.exists():
            problems.append("left a folder behind")
        if before is not None and _snapshot(out) != before:
            problems.append("changed what was in --out")
    if expect in (130, 143) and out.is_dir():
        run = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
        if run.get("status") != "interrupted":
            problems.append("kept files not marked interrupted")
    if _leftovers(out.parent):
        problems.append(f"staging left: {_leftovers(out.parent)}")
    last = next((ln for ln in reversed(lines) if "error:" in ln or "stopped" in ln), "")
    return {"command": case["argv"][0], "exit": case["exit"], "expected": expect,
            "seconds": case["seconds"], "ok": not problems, "problems": problems,
            "said": last[:200], "kept": out.is_dir() and (out / "run.json").is_file()}


def run_cases(commands, work: Path) -> list[dict]:
    rows = []
    for k, command in enumerate(commands):
        base = COMMANDS[command]
        cases = []
        if "--model" in base:
            cases.append(("model name typo", _argv(command, 2, model="lenet_dlg1O"), 2, {}))
        for flag in ("image", "content"):
            if f"--{flag}" in base:
                cases.append(("missing image file",
                              _argv(command, 2, **{flag: "/nonexistent/photo.png"}), 2, {}))
        if command in ITERATIVE:
            cases.append(("--steps 0", _argv(command, 0), 2, {}))
        cases.append(("--out holds another run", _argv(command, 2), 2, {"prepare": "run"}))
        cases.append(("--out is a file", _argv(command, 2), 2, {"prepare": "file"}))
        cases.append(("Ctrl-C while loading", _argv(command, 2), 130,
                      {"signal_at": (signal.SIGINT, 1.0)}))
        if command in ITERATIVE:
            cases.append(("SIGTERM while stepping", _argv(command, 100000), 143,
                          {"signal_at": (signal.SIGTERM, 6.0), "wait_for": ".out.partial-*"}))
        if command in MEMORY:
            cases.append(("too large for memory", [command, *MEMORY[command]], 2,
                          {"env": {"TF_IMPL_MEMORY_LIMIT": "1G"}}))
        for j, (name, argv, expect, how) in enumerate(cases):
            folder = work / f"{k}_{j}"
            folder.mkdir()
            out = folder / "out"
            before = None
            if how.get("prepare") == "run":
                out.mkdir()
                (out / "result.json").write_text("{}")
                (out / "run.json").write_text(json.dumps(
                    {"command": ["python -m tf_impl", "saliency"], "status": "complete"}))
                before = _snapshot(out)
            elif how.get("prepare") == "file":
                out.write_text("not a folder")
                before = _snapshot(out)
            case = _run(argv, out, env=how.get("env"), signal_at=how.get("signal_at"),
                        wait_for=how.get("wait_for"))
            row = _judge(case, expect, out, before)
            row["case"] = name
            rows.append(row)
            print(f"{'ok  ' if row['ok'] else 'FAIL'} {command:<22} {name:<26} exit "
                  f"{row['exit']:>4} {row['seconds']:>6.1f} s  {'; '.join(row['problems'])}",
                  flush=True)
    return rows


def markdown(res: dict) -> str:
    rows = res["rows"]
    ok = sum(r["ok"] for r in rows)
    tb = sum("traceback" in r["problems"] for r in rows)
    lines = [
        "# Faults and bad input against the command line", "",
        f"`python -m benchmarks.faults` ({res['meta']['seconds'] / 60:.1f} min, "
        f"{res['meta']['platform']}). Each case is one process. Expected: bad input exits 2 with "
        "one `error:` line and leaves nothing behind (an existing `--out` untouched); Ctrl-C "
        "while loading exits 130 with nothing written; SIGTERM 6 s after the model loaded "
        "exits 143 and keeps the run marked `interrupted` in `run.json` (or, when no step was "
        "done yet, writes nothing); no traceback, no staging folder left.", "",
        f"**{ok} of {len(rows)} cases as expected**; tracebacks: {tb}; out-of-memory kills: "
        f"{sum(any('killed' in p for p in r['problems']) for r in rows)}.", "",
        "| command | case | exit (expected) | s | as expected | what it said |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        said = r["said"].replace("|", "/")
        verdict = "yes" if r["ok"] else "**no**: " + "; ".join(r["problems"])
        lines.append(f"| {r['command']} | {r['case']} | {r['exit']} ({r['expected']}) | "
                     f"{r['seconds']:.1f} | {verdict} | {said} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", help="comma-separated commands (default: all)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    commands = args.only.split(",") if args.only else list(COMMANDS)
    unknown = [c for c in commands if c not in COMMANDS]
    if unknown:
        ap.error(f"unknown commands {unknown}; choose from {', '.join(COMMANDS)}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="faults-") as work:
        rows = run_cases(commands, Path(work))
    res = {"meta": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cores": os.cpu_count(), "seconds": time.perf_counter() - t0,
                    "commands": commands},
           "rows": rows}
    write_results(args.out, "faults", bool(args.only), res, markdown(res))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
