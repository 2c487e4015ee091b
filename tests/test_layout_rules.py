"""Project rules that keep the layout honest: tf_impl stays free of PyTorch, CI runs the
README's test command."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_tf_impl_never_imports_torch():
    files = list((ROOT / "tf_impl").rglob("*.py"))
    assert files
    for f in files:
        bad = _imports(f) & {"torch", "torchvision", "onnx2torch", "captum", "lpips"}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}: move that code to converters/"


def test_importer_never_imports_torch():
    for f in (ROOT / "converters" / "onnx_to_tf").rglob("*.py"):
        assert not _imports(f) & {"torch", "torchvision", "onnx2torch"}, f


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci


# -- the import direction: model_zoo -> converters -> tf_impl -> (cli, demo, benchmarks) --------
ROOMS = ("model_zoo", "converters", "tf_impl", "demo", "benchmarks")  # each imports earlier ones
# lazy (function-level) imports against the direction, each for a reason
LAZY_UPSTREAM = {
    # building a Keras model's ONNX file needs the tf2onnx wrapper
    ("model_zoo/export.py", "converters.tf_to_onnx"),
    ("model_zoo/third_party/keras_apps.py", "converters.tf_to_onnx"),
    # the third-party catalogue records whether our importer takes each file
    ("model_zoo/third_party/checks.py", "converters.onnx_to_tf"),
}
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
TORCH_SIDE = ("converters.onnx_to_torch", "converters.torch_reference", "converters.crosscheck")


def _module_of(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking(node) -> bool:
    """``if TYPE_CHECKING:`` (imports for annotations only, never run)."""
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _our_imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module of ours, at module level?) for every import in ``path``; relative
    imports resolved, ``from pkg import mod`` read as ``pkg.mod`` when that is a module; imports
    in functions and under ``if TYPE_CHECKING:`` count as not at module level."""
    tree = ast.parse(path.read_text())
    me = _module_of(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    lazy = {id(n) for f in ast.walk(tree) if isinstance(f, FUNCTIONS) or _type_checking(f)
            for n in ast.walk(f) if n is not f}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            names = []
            for a in node.names:
                sub = f"{base}.{a.name}"
                is_mod = (ROOT / sub.replace(".", "/")).with_suffix(".py").is_file() or (
                    ROOT / sub.replace(".", "/") / "__init__.py").is_file()
                names.append(sub if is_mod else base)
        else:
            continue
        out += [(n, id(node) not in lazy) for n in names if n.split(".")[0] in ROOMS]
    return out


def _room(module: str) -> str:
    if module.startswith("tf_impl.cli") or module in ("tf_impl.__main__", "model_zoo.__main__"):
        return "cli"  # command lines sit downstream of what they run
    return module.split(".")[0]


def _files(room: str):
    return sorted((ROOT / room).rglob("*.py"))


def test_imports_run_one_way():
    rank = {r: i for i, r in enumerate(ROOMS)} | {"cli": ROOMS.index("tf_impl") + 0.5}
    bad = []
    for room in ROOMS:
        for f in _files(room):
            me = _room(_module_of(f))
            rel = str(f.relative_to(ROOT))
            for mod, top in _our_imports(f):
                them = _room(mod)
                if rank[them] <= rank[me] or them == me:
                    continue
                if not top and (rel, mod) in LAZY_UPSTREAM:
                    continue
                bad.append(f"{rel} imports {mod} ({me} may import only "
                           f"{', '.join(r for r in ROOMS if rank[r] < rank[me]) or 'nothing'} "
                           "of ours)")
    assert not bad, "\n".join(bad)


def test_tf_impl_imports_only_the_tensorflow_side_of_converters():
    for f in _files("tf_impl"):
        for mod, _ in _our_imports(f):
            assert not mod.startswith(TORCH_SIDE), f"{f.relative_to(ROOT)} imports {mod}"


def test_the_direction_check_sees_what_it_should():
    # a module-level import against the direction, a relative one and a lazy one
    mods = dict(_our_imports(ROOT / "converters/torch_reference/breaching_anchor.py"))
    assert mods.get("converters.onnx_to_torch") is True
    lazy = dict(_our_imports(ROOT / "model_zoo/export.py"))
    assert lazy.get("converters.tf_to_onnx") is False
    assert _room("tf_impl.cli.common") == "cli" and _room("tf_impl.priors") == "tf_impl"


# Techniques ask the model (converters/onnx_to_tf/graph_queries.py, receptive_field.py) instead
# of walking its graph: classifier(), bias_terms(), receptive_field(tap), conv_kernels().
WALKS_THE_GRAPH: set[str] = set()


def test_techniques_ask_the_model_rather_than_walk_its_nodes():
    walking = set()
    for path in (ROOT / "tf_impl").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("tf_impl/cli/"):
            continue  # `python -m tf_impl layers` lists the graph on purpose
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "nodes":
                walking.add(rel)
    assert walking <= WALKS_THE_GRAPH, f"walks model.nodes: {sorted(walking - WALKS_THE_GRAPH)}"


# -- no cycles, no private names across modules --------------------------------------------------
def _module_imports() -> dict[str, set[str]]:
    """Module-level imports between our modules (function-level ones run later, by design)."""
    graph = {}
    for room in ROOMS:
        for f in _files(room):
            me = _module_of(f)
            graph[me] = {m for m, top in _our_imports(f) if top and m != me}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    cycles = _cycles(_module_imports())
    assert not cycles, "modules that import each other: " + "; ".join(map(str, cycles))


def _private_imports(path: Path) -> list[str]:
    """``from x import _name`` or ``import x._mod`` where x is one of our modules."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and module.split(".")[0] not in ROOMS:
                continue  # third-party internals are their business
            names = [a.name for a in node.names] + module.split(".")
        elif isinstance(node, ast.Import):
            names = [p for a in node.names if a.name.split(".")[0] in ROOMS
                     for p in a.name.split(".")]
        else:
            continue
        bad += [f"{path.relative_to(ROOT)}:{node.lineno} imports {n}" for n in names
                if n.startswith("_") and not n.startswith("__")]
    return bad


def test_no_private_name_is_imported_across_modules():
    assert _private_imports(ROOT / "tests" / "test_layout_rules.py") == []
    bad = [line for room in ROOMS for f in _files(room) for line in _private_imports(f)]
    assert not bad, "\n".join(bad)
