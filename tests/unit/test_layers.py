"""The package's layering (shared/DESIGN.md, "Layers"), checked statically from the source.

Every module of `telephony_bridge` is parsed with `ast` (nothing is imported, so no import side
effects) and every import of another `telephony_bridge` module is an edge: module-level and
function-level imports alike, relative ones resolved. Two rules:

1. No upward import: a module may import modules of its own layer or of lower layers only.
2. No import cycle between modules (function-level imports included: they still tie the two
   modules together). Imports under `if TYPE_CHECKING:` never run, so they do not count for
   cycles; they do count for the layer rule (a type is knowledge of the outer layer too).

Layers (a module takes the layer of its longest matching prefix in `LAYERS`):

    0  top-level helpers: naming, tasks, logs (and the package's __init__)
    1  audio/                      pure DSP on bytes
    2  carriers/                   carrier codecs, answer documents, control APIs
       webrtc/                     peer connections with the ICE policy, audio frames <-> PCM16
       realtime/ protocol modules  events, dialect, conversation mirror, stall policy, typed
                                   observer events, statistics
    3  realtime/playback           the playout ledger (call-side state machine, I/O-free)
    4  realtime/connection, realtime/uplink   the model connection and its caller-audio hot path
       voxengine/                  Call, scenario runtime, client shapes, playout channels
    5  server/, testing/, local_engine/, cli, cli_calls, demo   the edges

A new subpackage or top-level module must be given a layer here before the test passes.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import telephony_bridge

PACKAGE = "telephony_bridge"
ROOT = Path(telephony_bridge.__file__).parent

LAYERS: dict[str, int] = {
    PACKAGE: 0,  # telephony_bridge/__init__.py
    f"{PACKAGE}.naming": 0,
    f"{PACKAGE}.tasks": 0,
    f"{PACKAGE}.logs": 0,
    f"{PACKAGE}.audio": 1,
    f"{PACKAGE}.carriers": 2,
    f"{PACKAGE}.webrtc": 2,  # aiortc peer connections (ICE policy) and audio frames <-> PCM16
    f"{PACKAGE}.realtime": 2,  # the protocol modules; the runtime ones are named below
    f"{PACKAGE}.realtime.playback": 3,
    f"{PACKAGE}.realtime.connection": 4,
    f"{PACKAGE}.realtime.connection_dispatch": 4,  # ModelConnection's event intake (a base class of it)
    f"{PACKAGE}.realtime.uplink": 4,
    f"{PACKAGE}.realtime.live_connection": 4,  # GPT-Live runtime (live_wire is the protocol, layer 2)
    f"{PACKAGE}.realtime.live_uplink": 4,
    f"{PACKAGE}.realtime.webrtc_connection": 4,  # the model connection over WebRTC (aiortc)
    f"{PACKAGE}.realtime.webrtc_live_connection": 4,
    f"{PACKAGE}.voxengine": 4,
    f"{PACKAGE}.server": 5,
    f"{PACKAGE}.testing": 5,
    f"{PACKAGE}.local_engine": 5,
    f"{PACKAGE}.cli": 5,
    f"{PACKAGE}.cli_calls": 5,
    f"{PACKAGE}.demo": 5,
}

# Upward imports tolerated for now, (importer, imported) → why. Keep this empty if at all possible.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


class Edge(NamedTuple):
    importer: str
    imported: str
    line: int
    type_only: bool  # under `if TYPE_CHECKING:`

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported} (line {self.line}{', TYPE_CHECKING' if self.type_only else ''})"


def package_modules(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _type_checking_lines(tree: ast.AST) -> set[int]:
    """Line numbers of the statements under `if TYPE_CHECKING:` / `if typing.TYPE_CHECKING:`."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
            if name == "TYPE_CHECKING":
                for statement in node.body:
                    lines.update(range(statement.lineno, (statement.end_lineno or statement.lineno) + 1))
    return lines


def import_edges(modules: Mapping[str, Path], package: str = PACKAGE) -> list[Edge]:
    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges = []
    for importer, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        type_only = _type_checking_lines(tree)
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = importer.split(".") if is_package else importer.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base]) if base else ".".join(anchor)
                # `from pkg import module` imports the module; `from module import name`, the module.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            for target in targets:
                if target != package and not target.startswith(package + "."):
                    continue
                imported = resolve(target)
                if imported is not None and imported != importer:
                    edges.append(Edge(importer, imported, node.lineno, node.lineno in type_only))
    return list(dict.fromkeys(edges))  # `from m import a, b` is one edge


def layer_of(module: str, layers: Mapping[str, int] = LAYERS) -> int | None:
    name = module
    while name:
        if name in layers:
            return layers[name]
        name = name.rpartition(".")[0]
    return None


def upward_imports(edges: Iterable[Edge], layers: Mapping[str, int] = LAYERS,
                   allowed: Mapping[tuple[str, str], str] = ALLOWED_UPWARD) -> list[str]:
    problems = []
    for edge in edges:
        low, high = layer_of(edge.importer, layers), layer_of(edge.imported, layers)
        if low is None or high is None:
            continue  # reported by unassigned_modules
        if high > low and (edge.importer, edge.imported) not in allowed:
            problems.append(f"layer {low} imports layer {high}: {edge}")
    return problems


def import_cycles(edges: Iterable[Edge]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), over edges that run."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        if not edge.type_only:
            graph.setdefault(edge.importer, set()).add(edge.imported)
            graph.setdefault(edge.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # the graph is a few hundred modules: recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def _describe_cycle(component: list[str], edges: Iterable[Edge]) -> str:
    inside = set(component)
    links = sorted({str(e) for e in edges if not e.type_only and e.importer in inside and e.imported in inside})
    return "cycle between " + ", ".join(component) + ":\n      " + "\n      ".join(links)


def test_every_module_has_a_layer() -> None:
    unassigned = [module for module in package_modules() if layer_of(module) is None]
    assert not unassigned, "give these modules a layer in LAYERS (tests/unit/test_layers.py):\n  " + "\n  ".join(unassigned)


def test_no_module_imports_an_outer_layer() -> None:
    problems = upward_imports(import_edges(package_modules()))
    assert not problems, "upward imports (inner layers must know nothing of outer ones):\n  " + "\n  ".join(problems)


def test_no_import_cycles() -> None:
    edges = import_edges(package_modules())
    cycles = import_cycles(edges)
    assert not cycles, "import cycles:\n  " + "\n  ".join(_describe_cycle(c, edges) for c in cycles)


def test_allowed_exceptions_are_still_needed() -> None:
    edges = {(e.importer, e.imported) for e in import_edges(package_modules())}
    stale = [f"{a} -> {b}" for a, b in ALLOWED_UPWARD if (a, b) not in edges]
    assert not stale, "remove these from ALLOWED_UPWARD, the import is gone:\n  " + "\n  ".join(stale)


def test_the_checker_sees_upward_imports_and_cycles(tmp_path: Path) -> None:
    """The rules themselves, on a made-up package: a function-level upward import, a relative
    import cycle, and a TYPE_CHECKING import that is upward but not a cycle."""
    package = tmp_path / "pkg"
    (package / "inner").mkdir(parents=True)
    (package / "outer").mkdir()
    for init in (package / "__init__.py", package / "inner" / "__init__.py", package / "outer" / "__init__.py"):
        init.write_text("")
    (package / "inner" / "a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "if TYPE_CHECKING:\n    from pkg.outer.c import C\n"
        "def f():\n    import pkg.outer.c\n"
    )
    (package / "inner" / "b.py").write_text("from .a import f\n")
    (package / "outer" / "c.py").write_text("from pkg.inner import a\nclass C: ...\n")
    modules = package_modules(package, "pkg")
    edges = import_edges(modules, "pkg")
    layers = {"pkg": 0, "pkg.inner": 1, "pkg.outer": 2}
    upward = upward_imports(edges, layers, {})
    assert len(upward) == 2 and all("pkg.inner.a -> pkg.outer.c" in line for line in upward)
    assert any("TYPE_CHECKING" in line for line in upward)
    # a ↔ b (relative imports), and a → c (in a function) → a; the TYPE_CHECKING edge alone would not be one
    assert import_cycles(edges) == [["pkg.inner.a", "pkg.inner.b", "pkg.outer.c"]]
    assert upward_imports(edges, layers, {("pkg.inner.a", "pkg.outer.c"): "because"}) == []
