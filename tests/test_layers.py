"""Imports point one way: cli → commands → api/render → analysis → notation → core → base.

Every module of explain/ is parsed with ``ast`` (never imported): every import at any
depth counts, lazy imports inside functions included, relative imports resolved.
Each module has a layer (the table below, explained in docs/architecture.md); a
module may import its own layer and the layers under it, never one above, and the
module graph has no cycle.  The one door upward is :mod:`explain.render.notebook`,
imported late (inside a function) by the domain objects' ``_repr_*_`` methods.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "explain"
DOCS = PACKAGE.parent / "docs" / "architecture.md"

#: The layers, lowest first.  A module may import only from its own layer or lower ones.
LAYERS = ("base", "core", "notation", "analysis", "api/render", "commands", "cli")

#: Which layer each module is in: an exact module name, or a package with ``.*`` for all its
#: modules.  An exact name wins over a package (render.mathprint is not render's layer).
LAYER_OF = {
    # io, errors and words: underneath everything
    "explain.errors": "base", "explain.i18n": "base", "explain.files": "base", "explain.sanitize": "base",
    "explain.budget": "base", "explain.interrupts": "base",
    # the problem, its Graph, the operations table, the derivation
    "explain.written": "core", "explain.functions": "core", "explain.parse": "core",
    "explain.placement": "core", "explain.networks": "core", "explain.problem": "core", "explain.stage": "core",
    "explain.tensors": "core", "explain.tensorgraph": "core",
    "explain.tensornodes": "core", "explain.tensorrules": "core", "explain.tensoreval": "core",
    "explain.graph": "core", "explain.compile": "core", "explain.finite": "core", "explain.highprecision": "core",
    "explain.derivation": "core", "explain.optimizers": "core",
    # SymPy printers of math: the renderers print with them, and a diagnosis prints a formula
    "explain.render.mathprint": "notation",
    # what is done with a derivation: verified, trained, graded, diagnosed
    "explain.verify": "analysis", "explain.train": "analysis", "explain.diagnose": "analysis",
    "explain.followthrough": "analysis", "explain.check": "analysis", "explain.classreport": "analysis",
    "explain.variants": "analysis", "explain.broadcast": "analysis", "explain.roster": "analysis",
    "explain.optim_torch": "analysis", "explain.later_steps": "analysis", "explain.trajectory": "analysis",
    "explain.tensorverify": "analysis",
    "explain.matrixforms": "analysis", "explain.tensorformula": "analysis",
    # what users call and what prints results
    "explain": "api/render", "explain.api": "api/render", "explain.render": "api/render",
    "explain.render.*": "api/render",
    "explain.commands": "commands", "explain.commands.*": "commands",
    "explain.cli": "cli", "explain.__main__": "cli",
}

#: The one module a lower layer may import, and only inside a function: notebook display.
DOOR = "explain.render.notebook"

#: Cycles that are known and owned by work in progress; the test fails when one is gone
#: (so that it is taken off this list) or when any other cycle appears.
#: (render.pdf ↔ render.typst was the last: the document model now lives in render.document.)
KNOWN_CYCLES: set[frozenset[str]] = set()


@dataclass(frozen=True)
class Import:
    src: str
    dst: str
    line: int
    in_function: bool
    type_checking: bool


def module_sources(root: Path = PACKAGE) -> dict[str, str]:
    """Every module of the package by dotted name (a package by its own name), with its source."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path.read_text(encoding="utf-8")
    return out


def _is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()


def imports(sources: dict[str, str]) -> list[Import]:
    """Every import of an explain module by an explain module, wherever it is written."""
    names = frozenset(sources)
    return [i for module, text in sources.items() for i in _module_imports(module, text, names)]


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


@functools.lru_cache(maxsize=None)  # each module is parsed once; a planted copy is parsed on its own
def _module_imports(module: str, text: str, names: frozenset[str]) -> tuple[Import, ...]:
    found = []
    package = module if _is_package(module) else module.rpartition(".")[0]

    def visit(node: ast.AST, in_function: bool, type_checking: bool) -> None:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # One dot is this package, each more dot its parent; dots beyond explain/ (an
                # ImportError when run) are read as explain/ itself, so the layers still judge them.
                base = package.split(".")[: max(1, len(package.split(".")) - (node.level - 1))]
                origin = ".".join(base + ([node.module] if node.module else []))
            else:
                origin = node.module or ""
            # ``from . import verify`` imports the module explain.verify; ``from .x import f`` imports x.
            targets = [f"{origin}.{a.name}" if f"{origin}.{a.name}" in names else origin for a in node.names]
        for t in targets:
            while t and t not in names:  # import explain.render.dot.x → the module that exists
                t = t.rpartition(".")[0]
            if t and t != module:
                found.append(Import(module, t, node.lineno, in_function, type_checking))
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        guarded_body = isinstance(node, ast.If) and _type_checking(node.test)
        for child in ast.iter_child_nodes(node):
            visit(child, inner, type_checking or (guarded_body and child in node.body))

    visit(ast.parse(text), False, False)
    return tuple(found)


def layer(module: str) -> str:
    if module in LAYER_OF:
        return LAYER_OF[module]
    package = module.rpartition(".")[0]
    while package:
        if package + ".*" in LAYER_OF:
            return LAYER_OF[package + ".*"]
        package = package.rpartition(".")[0]
    raise KeyError(module)


def through_the_door(i: Import) -> bool:
    return i.dst == DOOR and i.in_function


def upward(found: list[Import]) -> list[str]:
    """Imports from a lower layer into a higher one, other than the notebook door."""
    return [f"{i.src} (line {i.line}, {layer(i.src)}) imports {i.dst} ({layer(i.dst)})"
            for i in found
            if LAYERS.index(layer(i.dst)) > LAYERS.index(layer(i.src)) and not through_the_door(i)]


def cycles(found: list[Import]) -> list[frozenset[str]]:
    """Strongly connected components of more than one module (Tarjan), in the graph of the
    imports that run: those under ``if TYPE_CHECKING`` are for type checkers only, and the
    notebook door is late by design."""
    graph: dict[str, set[str]] = {}
    for i in found:
        graph.setdefault(i.src, set())
        graph.setdefault(i.dst, set())
        if not i.type_checking and not through_the_door(i):
            graph[i.src].add(i.dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return components


@pytest.fixture(scope="module")
def sources() -> dict[str, str]:
    return module_sources()


def test_every_module_has_a_layer(sources: dict[str, str]) -> None:
    missing = []
    for module in sources:
        try:
            layer(module)
        except KeyError:
            missing.append(module)
    assert not missing, f"give these modules a layer in LAYER_OF (and docs/architecture.md): {missing}"


def test_no_import_goes_up_a_layer(sources: dict[str, str]) -> None:
    assert upward(imports(sources)) == []


def test_the_core_imports_no_renderer_or_command(sources: dict[str, str]) -> None:
    low = {"base", "core"}
    bad = [i for i in imports(sources) if layer(i.src) in low and not through_the_door(i)
           and (i.dst.startswith(("explain.render.", "explain.commands")) or i.dst == "explain.render")]
    assert bad == []


def test_no_import_cycle(sources: dict[str, str]) -> None:
    found = set(cycles(imports(sources)))
    assert found - KNOWN_CYCLES == set(), "new import cycle(s)"
    assert KNOWN_CYCLES - found == set(), "a known cycle is gone: take it off KNOWN_CYCLES"


def test_the_door_is_never_opened_at_import_time(sources: dict[str, str]) -> None:
    # At a module's top the notebook door would load the renderers with the core.
    assert [i for i in imports(sources) if i.dst == DOOR and not i.in_function and layer(i.src) != "api/render"] == []


# -- the checker catches what it is for (planted imports, checked on a copy of the sources) --
def _planted(sources: dict[str, str], module: str, code: str) -> dict[str, str]:
    return {**sources, module: sources[module] + "\n\n" + code}


def test_a_lazy_renderer_import_in_the_core_is_caught(sources: dict[str, str]) -> None:
    planted = _planted(sources, "explain.derivation", "def _show(d):\n    from ..render import markdown\n    return markdown\n")
    violations = upward(imports(planted))
    assert any("explain.derivation" in v and "explain.render.markdown" in v for v in violations), violations
    planted = _planted(sources, "explain.derivation", "def _show(d):\n    from .render.dot import GraphView\n")
    assert any("explain.render.dot" in v for v in upward(imports(planted)))
    planted = _planted(sources, "explain.derivation", "def _show(d):\n    if d:\n        from .render import text\n")
    assert any("explain.render.text" in v for v in upward(imports(planted)))


def test_a_command_import_from_analysis_is_caught(sources: dict[str, str]) -> None:
    planted = _planted(sources, "explain.verify", "def _t():\n    import explain.commands.verify as c\n")
    assert any("explain.commands.verify" in v for v in upward(imports(planted)))


def test_a_new_cycle_is_caught(sources: dict[str, str]) -> None:
    # Same layer, so no upward import: only the cycle check sees it.
    planted = _planted(sources, "explain.graph", "def _d():\n    from . import derivation\n")
    assert frozenset({"explain.graph", "explain.derivation"}) <= set().union(*cycles(imports(planted)))
    # ... while the same import for type checkers only is no cycle.
    planted = _planted(sources, "explain.graph",
                       "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .derivation import Derivation\n")
    assert not any("explain.graph" in c for c in cycles(imports(planted)))


def test_the_door_at_module_top_is_caught(sources: dict[str, str]) -> None:
    planted = _planted(sources, "explain.derivation", "from .render.notebook import display\n")
    assert any("explain.render.notebook" in v for v in upward(imports(planted)))


def test_relative_imports_are_resolved(sources: dict[str, str]) -> None:
    found = {(i.src, i.dst) for i in imports(sources)}
    assert ("explain.render.markdown", "explain.derivation") in found  # from ..derivation import Derivation
    assert ("explain.commands.grad", "explain.render.json") in found  # from ..render import json as json_render
    assert ("explain.derivation", DOOR) in found  # a lazy import inside a method


def test_the_layer_table_is_documented() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for name in LAYERS:
        row = re.search(rf"^\| `{re.escape(name)}` \|(.*)$", text, re.M)
        assert row, f"docs/architecture.md has no row for layer {name}"
        for module, where in LAYER_OF.items():
            if where == name:
                assert f"`{module}`" in row.group(1), f"docs/architecture.md: {module} is missing from layer {name}"
