"""The shape of the package, read from its source with `ast`: no import circles, nothing imports
upward, the CLI is the only place that knows argparse and exit codes, development tools stay out
of the shipped package, and reading a spec loads no framework.

The import graph has an edge for every `import` / `from ... import` anywhere in a module
(function-local ones too), relative or absolute; `from pkg import name` points at the submodule
`pkg.name` when there is one, else at `pkg` itself (its `__init__`). Imports under
`if TYPE_CHECKING:` are kept apart: they never run, so they cannot make a runtime circle, but a
circle through them still ties two modules into one unit and is reported too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "netspec"


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (a package stands for its __init__)
    line: int
    type_only: bool  # under `if TYPE_CHECKING:`


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """The lines of every statement inside an `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            t = node.test
            name = (
                t.id if isinstance(t, ast.Name) else t.attr if isinstance(t, ast.Attribute) else ""
            )
            if name == "TYPE_CHECKING":
                for stmt in node.body:
                    lines.update(range(stmt.lineno, (stmt.end_lineno or stmt.lineno) + 1))
    return lines


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        assert base, f"{module}: relative import above the top package"
        pkg = ".".join([*base, node.module] if node.module else base)
    else:
        pkg = node.module or ""
    known = modules()
    return [f"{pkg}.{a.name}" if f"{pkg}.{a.name}" in known else pkg for a in node.names]


@cache
def imports() -> tuple[Import, ...]:
    out = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        type_only = _type_checking_lines(tree)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(name, is_package, node):
                    out.append(Import(name, target, node.lineno, node.lineno in type_only))
    return tuple(out)


def internal(include_type_only: bool) -> dict[str, set[str]]:
    """The graph between netspec's own modules (self-edges dropped)."""
    known = modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    for i in imports():
        if i.target in known and i.target != i.source and (include_type_only or not i.type_only):
            graph[i.source].add(i.target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            w = next(children, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def describe(component: list[str], graph: dict[str, set[str]]) -> str:
    """One shortest circle through the component's first module, edge by edge with file:line."""
    start, inside = component[0], set(component)
    came: dict[str, str] = {}
    frontier = [start]
    while frontier and start not in came:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & inside):
                if w not in came:
                    came[w] = v
                    nxt.append(w)
        frontier = nxt
    path = [start]
    while len(path) == 1 or path[-1] != start:
        path.append(came[path[-1]])
    path.reverse()
    lines = [f"{len(component)} modules in a circle, for example:"]
    for a, b in zip(path, path[1:], strict=False):
        where = next(
            f"{modules()[i.source].relative_to(ROOT)}:{i.line}" + (" (TYPE_CHECKING)" * i.type_only)
            for i in imports()
            if i.source == a and i.target == b
        )
        lines.append(f"  {a} -> {b}  {where}")
    return "\n".join(lines)


# -- the checks of the checker itself ---------------------------------------------------------
def test_the_graph_sees_every_kind_of_import():
    found = {(i.source, i.target, i.type_only) for i in imports()}
    assert ("netspec.api", "netspec.targets", False) in found  # from . import targets
    assert ("netspec.cli.build", "netspec.build", False) in found  # function-local, relative
    assert ("netspec.targets.onnx", "netspec.targets.onnx.stream", False) in found  # submodule
    assert ("netspec.targets.torch", "netspec.targets.base", False) in found  # from ..base
    assert ("netspec.api", "netspec.weights", True) in found  # under TYPE_CHECKING
    assert len(modules()) > 40


def test_cycle_finder_finds_cycles():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert cycles(g) == [["a", "b", "c"]]
    assert cycles({"x": {"y"}, "y": {"x"}, "z": {"w"}, "w": {"z"}}) == [["w", "z"], ["x", "y"]]


# -- the architecture -------------------------------------------------------------------------
def test_no_import_cycles():
    graph = internal(include_type_only=False)
    found = cycles(graph)
    assert not found, "import circles:\n" + "\n".join(describe(c, graph) for c in found)


# A type-only import that closes a circle, known when this test was written: the PyTorch code
# generator's `Emit` context is defined in codegen.py and annotated in emitters.py, which
# codegen.py imports. Remove it from this list when it is gone (the test says so).
KNOWN_TYPE_ONLY_EDGES = [("netspec.targets.torch.emitters", "netspec.targets.torch.codegen")]


def test_no_import_cycles_through_type_only_imports():
    graph = internal(include_type_only=True)
    gone = [e for e in KNOWN_TYPE_ONLY_EDGES if e[1] not in graph[e[0]]]
    assert not gone, f"these imports are gone: remove them from KNOWN_TYPE_ONLY_EDGES: {gone}"
    for a, b in KNOWN_TYPE_ONLY_EDGES:
        graph[a].discard(b)
    found = cycles(graph)
    assert not found, "import circles (through type-only imports):\n" + "\n".join(
        describe(c, graph) for c in found
    )


def test_nothing_imports_upward():
    """No module imports the `__init__` of a package it belongs to (the root `netspec` above
    all): a package's `__init__` may import its modules, never the other way round. A package's
    `__main__` (`python -m netspec.cli`) is its script and runs its `main`."""
    up = [
        f"{modules()[i.source].relative_to(ROOT)}:{i.line}: {i.source} imports {i.target}"
        for i in imports()
        if i.source.startswith(i.target + ".") and i.source != f"{i.target}.__main__"
    ]
    assert not up, "upward imports:\n" + "\n".join(up)


def test_shipped_package_does_not_import_development_code():
    bad = [
        f"{modules()[i.source].relative_to(ROOT)}:{i.line}: imports {i.target}"
        for i in imports()
        if i.target.split(".")[0] in ("tools", "tests", "benchmarks", "scripts", "conftest")
    ]
    assert not bad, "\n".join(bad)


def test_only_the_cli_knows_argparse_and_exit_codes():
    def in_cli(m: str) -> bool:
        return m in ("netspec.cli", "netspec.__main__") or m.startswith("netspec.cli.")

    argparse_users = sorted({i.source for i in imports() if i.target == "argparse"})
    assert argparse_users and all(in_cli(m) for m in argparse_users), argparse_users
    exits = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "exit"
                and isinstance(node.value, ast.Name)
                and node.value.id == "sys"
            ) or (isinstance(node, ast.Name) and node.id == "SystemExit"):
                exits.append(name)
    assert exits and all(in_cli(m) for m in exits), exits


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


# Who may import what, from the top down: the CLI is on top (only `__main__` imports it), the
# library API and `build` under it; the targets and the pictures read the IR, never each other;
# the core (IR, lowering, ops, weights) knows neither. (source, must not import, unless source is)
CORE = ("netspec.ir", "netspec.lower", "netspec.ops", "netspec.weights", "netspec.errors")
FORBIDDEN = [
    ("netspec", "netspec.cli", ("netspec.cli", "netspec.__main__")),
    ("netspec", "netspec.api", ("netspec.cli", "netspec.api", "netspec.tune")),  # tune: a driver
    ("netspec", "netspec.build", ("netspec.cli", "netspec.build")),
    ("netspec.targets", "netspec.render", ()),
    ("netspec.render", "netspec.targets", ()),
    *((core, "netspec.targets", ()) for core in CORE),
    *((core, "netspec.render", ()) for core in CORE),
]


def test_layers_point_down():
    bad = []
    for i in imports():
        for sources, target, allowed in FORBIDDEN:
            if (
                _within(i.source, sources)
                and _within(i.target, target)
                and not any(_within(i.source, a) for a in allowed)
                and i.source != "netspec"  # the root re-exports the API
            ):
                bad.append(f"{modules()[i.source].relative_to(ROOT)}:{i.line}: imports {i.target}")
    assert not bad, "\n".join(sorted(set(bad)))


# -- the CLI: one module per command -----------------------------------------------------------
def test_every_command_module_is_in_the_command_table():
    from netspec import cli

    files = {p.stem for p in (PACKAGE / "cli").glob("*.py")} - {"__init__", "__main__", "common"}
    assert set(cli.COMMANDS) == files
    parser = cli.make_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert list(sub.choices) == list(cli.COMMANDS)


# -- frameworks stay unloaded ------------------------------------------------------------------
PROBE = """
import json, sys
from netspec.cli import main
rc = main(sys.argv[1:])
loaded = sorted({m.split(".")[0] for m in sys.modules} & {
    "numpy", "torch", "tensorflow", "keras", "onnx", "onnxruntime", "safetensors", "tools"})
sys.stderr.write("\\nPROBE " + json.dumps({"rc": rc, "loaded": loaded}) + "\\n")
"""


def probe(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    line = [x for x in proc.stderr.splitlines() if x.startswith("PROBE ")]
    assert line, proc.stderr[-2000:]
    return json.loads(line[-1][6:])


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["validate", "specs/mlp.yaml", "specs/char_lstm.yaml"], []),
        (["validate", "tests/invalid/unknown_op.yaml"], []),
        (["schema"], []),
        (["run"], []),  # a usage error, after every command's parser is built
        (["inspect", "specs/resnet18.yaml"], ["numpy"]),
    ],
    ids=["validate", "validate-error", "schema", "run-usage", "inspect"],
)
def test_reading_a_spec_loads_no_framework(args, allowed):
    """`validate` and `schema` load not even numpy (the parser of every command is built for
    them, so no command module may import one at the top); `inspect` loads no framework."""
    result = probe(*args)
    assert result["rc"] == (2 if "invalid" in " ".join(args) or args == ["run"] else 0)
    assert [m for m in result["loaded"] if m not in allowed] == []
