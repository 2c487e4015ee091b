"""A sweep's grid file: one sub-command of ``python -m tf_impl``, the options every job shares
and the options to vary, checked against the sub-command's own parser before anything runs.

.. code-block:: yaml

    command: feature-inversion        # any sub-command of python -m tf_impl, or a module
    options:                          # the same for every job
      model: vgg16_features
      steps: 200
    grid:                             # the product of these lists: one job per point
      lr: [0.01, 0.05, 0.1]
      tv-weight: [0.0, 0.5]

A grid entry whose values are mappings varies several options together, one bundle per value
(``name`` labels it in the table), e.g. the rows of an ablation:

.. code-block:: yaml

    grid:
      terms:
        - {name: gradient only, bn-weight: 0, group-weight: 0}
        - {name: + BN prior, group-weight: 0}

Option names are the command line's, with or without ``--`` (``tv_weight`` = ``tv-weight``);
a flag that takes no value is ``true`` (given) or ``false`` (left out); a list value of a
shared option is passed as the command line takes several (repeated, or comma-separated:
``layer: [conv1_1, conv3_1]``). ``--out`` belongs
to the runner (each job writes its own folder).

A command with a dot is a Python module with a command line of its own, for the benchmarks
that are grids but not techniques (``command: benchmarks.label_restoration``): it offers
``build_parser()`` (checked like a sub-command's) and ``main(argv)``, which the job calls with
``--out``; the module is imported by the runner (to check options) and by each worker.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Grid", "GridError", "Point", "is_module_command", "load_grid", "module_parser",
           "parse_grid", "read_grid_file", "run_module_command"]


class GridError(ValueError):
    """A grid that cannot run: the message names the problem and the fix."""


@dataclass(frozen=True)
class Point:
    """One job of the grid: the values of the varied options, and its command-line arguments
    (without ``--out``)."""

    values: dict[str, Any]
    argv: tuple[str, ...]

    @property
    def name(self) -> str:
        """A folder name: the varied values, readable, and a hash of the whole command line
        (so that changing a shared option makes new jobs, and reordering the grid does not)."""
        text = "_".join(f"{k}={_plain(v)}" for k, v in self.values.items()) or "job"
        text = re.sub(r"[^A-Za-z0-9.=_+-]", "-", text)[:80]
        digest = hashlib.sha256(json.dumps(self.argv).encode()).hexdigest()[:8]
        return f"{text}-{digest}"


@dataclass(frozen=True)
class Grid:
    """A checked grid: the command, the shared options, the varied ones and every point."""

    command: str
    options: dict[str, Any]
    grid: dict[str, list]
    points: list[Point] = field(repr=False)
    source: str = ""

    def spec(self) -> dict:
        """What the grid file said (command, options, grid): equal specs, equal grids."""
        return {"command": self.command, "options": self.options, "grid": self.grid}

    def to_record(self) -> dict:
        """The checked grid with its points, as JSON data (the sweep folder's ``grid.json``)."""
        return {**self.spec(), "points": [{"values": p.values, "argv": list(p.argv)}
                                          for p in self.points]}

    @classmethod
    def from_record(cls, record: dict, source: str = "") -> Grid:
        points = [Point(dict(p["values"]), tuple(p["argv"])) for p in record["points"]]
        return cls(record["command"], record["options"], record["grid"], points, source)


def _plain(v) -> str:
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def _flag(name: str) -> str:
    return "--" + str(name).lstrip("-").replace("_", "-")


def _args(options: Mapping[str, Any], flags: Mapping[str, Any]) -> list[str]:
    """Command-line arguments for ``options``; ``flags`` maps each option string of the
    sub-command to its argparse action (to tell value-less flags apart)."""
    argv: list[str] = []
    for name, value in options.items():
        flag = _flag(name)
        action = flags.get(flag)
        if action is None:
            import difflib

            close = difflib.get_close_matches(flag, [f for f in flags if f.startswith("--")], n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise GridError(f"unknown option {flag}{hint}")
        takes_no_value = action is not None and action.nargs == 0
        if takes_no_value:
            if not isinstance(value, bool):
                raise GridError(f"option {flag} is a flag: give true or false, not {value!r}")
            if value:
                argv.append(flag)
            continue
        if value is None:
            raise GridError(f"option {flag} needs a value; got {value!r}")
        if not isinstance(value, (list, tuple)):
            argv += [flag, _plain(value)]
            continue
        if not value:
            raise GridError(f"option {flag} has an empty list of values")
        if action.nargs in ("+", "*") or isinstance(action.nargs, int):
            argv += [flag, *[_plain(v) for v in value]]
        elif type(action).__name__ == "_AppendAction":
            argv += [a for v in value for a in (flag, _plain(v))]
        else:  # one value: the command line's comma-separated list
            argv += [flag, ",".join(_plain(v) for v in value)]
    return argv


def parse_grid(data: Any, parser, *, source: str = "the grid") -> Grid:
    """Check ``data`` (the grid file's mapping) against ``parser`` (``python -m tf_impl``'s)
    and expand it into its points. Raises :class:`GridError` with one line."""
    command, options, grid = _parts(data, source)
    if is_module_command(command):
        parser = sub_parser = module_parser(command, source)
        lead: tuple[str, ...] = ()
    else:
        sub = _subparsers(parser)
        if command not in sub:
            import difflib

            close = difflib.get_close_matches(str(command), list(sub), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise GridError(f"{source}: unknown sub-command {command!r}{hint}; one of "
                            f"{', '.join(c for c in sub if c != 'sweep')}, or a module with "
                            "build_parser() and main(argv) (e.g. benchmarks.label_restoration)")
        if command == "sweep":
            raise GridError(f"{source}: a sweep cannot run sweeps")
        sub_parser, lead = sub[command], (command,)
    flags = {s: a for a in sub_parser._actions for s in a.option_strings}
    if "--out" not in flags:
        raise GridError(f"{source}: {command!r} writes no run folder (no --out), so a sweep "
                        "has nothing to collect")
    points = []
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo, strict=True))
        chosen = {}
        for key, v in values.items():
            chosen.update({k: x for k, x in v.items() if k != "name"} if isinstance(v, dict)
                          else {key: v})
        values = {k: v.get("name", json.dumps(v, sort_keys=True)) if isinstance(v, dict) else v
                  for k, v in values.items()}
        try:
            args = [*_args(options, flags), *_args(chosen, flags)]
        except GridError as err:
            raise GridError(f"{source}: {command}: {err}") from None
        _check_argv(parser, sub_parser, [*lead, *args], source)
        points.append(Point(values, (command, *args)))
    return Grid(command, options, grid, points, source)


def _parts(data: Any, source: str) -> tuple[Any, dict, dict]:
    """(command, shared options, grid) of the file, their shapes checked: lists of values
    (or of option bundles), no option both shared and varied, no ``--out``."""
    if not isinstance(data, Mapping):
        raise GridError(f"{source} must hold a mapping with 'command', 'options' and 'grid'")
    unknown = set(data) - {"command", "options", "grid"}
    if unknown:
        raise GridError(f"{source}: unknown keys {sorted(unknown)}; use 'command', 'options' "
                        "and 'grid'")
    options, grid = data.get("options") or {}, data.get("grid") or {}
    if not isinstance(options, dict) or not isinstance(grid, dict):
        raise GridError(f"{source}: 'options' and 'grid' must be mappings of option: value")
    for name, values in grid.items():
        if not isinstance(values, list) or not values:
            raise GridError(f"{source}: grid option {_flag(name)} must be a non-empty list of "
                            f"values; got {values!r}")
        bundles = [isinstance(v, dict) for v in values]
        if any(bundles) and not all(bundles):
            raise GridError(f"{source}: grid entry {name!r} mixes option bundles (mappings) "
                            "and plain values")
    if not grid:
        raise GridError(f"{source}: the grid is empty; give at least one option with a list "
                        "of values under 'grid'")
    varied = {_flag(k) for k, vs in grid.items() if not isinstance(vs[0], dict)}
    varied |= {_flag(k) for vs in grid.values() if isinstance(vs[0], dict)
               for b in vs for k in b if k != "name"}
    both = {_flag(k) for k in options} & varied
    if both:
        raise GridError(f"{source}: {sorted(both)} both fixed and varied; keep one")
    runners = {"--out", "--overwrite"} & ({_flag(k) for k in options} | varied)
    if runners:
        raise GridError(f"{source}: {', '.join(sorted(runners))} is the runner's (each job "
                        "writes its own folder)")
    return data.get("command"), dict(options), dict(grid)


def is_module_command(command) -> bool:
    """A grid's command is a sub-command of ``python -m tf_impl`` (``feature-inversion``) or a
    Python module with a command line of its own (``benchmarks.label_restoration``)."""
    return isinstance(command, str) and "." in command


def module_parser(command: str, source: str = "the grid"):
    """The parser of a module command: the module must offer ``build_parser()`` (its
    ``argparse`` parser, with ``--out``) and ``main(argv) -> int``."""
    import importlib

    try:
        module = importlib.import_module(command)
    except ModuleNotFoundError as err:
        raise GridError(f"{source}: no module {command!r} ({err}); a grid's command is a "
                        "sub-command of python -m tf_impl or an importable module") from None
    if not (callable(getattr(module, "build_parser", None))
            and callable(getattr(module, "main", None))):
        raise GridError(f"{source}: module {command!r} has no build_parser() and main(argv); "
                        "a module command needs both (see benchmarks/label_restoration.py)")
    return module.build_parser()


def run_module_command(argv: Sequence[str]) -> int:
    """A job of a module command: ``argv[0]``'s ``main(argv[1:])`` (Ray runs this in its
    worker, so the module is imported there, not by the runner)."""
    import importlib

    return importlib.import_module(argv[0]).main(list(argv[1:]))


def read_grid_file(path) -> Any:
    """The grid file's data (YAML or JSON), unchecked."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise GridError(f"grid file {path} not found")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise GridError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None


def load_grid(path, parser) -> Grid:
    """Read and check a YAML (or JSON) grid file."""
    return parse_grid(read_grid_file(path), parser, source=str(path))


def _subparsers(parser) -> dict:
    for action in parser._actions:
        if action.choices is not None and hasattr(action, "_name_parser_map"):
            return dict(action.choices)
    raise GridError("the command line has no sub-commands")


class _Refused(Exception):
    pass


def _check_argv(parser, sub, argv: Sequence[str], source: str) -> None:
    """Parse ``argv`` as the command line would, turning argparse's exit into one line."""

    def refuse(message):
        raise _Refused(message)

    saved = parser.error, sub.error
    parser.error = sub.error = refuse
    try:
        parser.parse_args([*argv, "--out", "unused"])
    except _Refused as err:
        raise GridError(f"{source}: {' '.join(argv)}: {err}") from None
    finally:
        parser.error, sub.error = saved
