"""The Graph: a computation as a flat, ordered list of named nodes.

Like a jaxpr, a Graph is a list of equations ``name = small expression of
earlier names``.  Leaves (parameters, known values, data columns) come first,
then the forward stages in order.  Every edge ``src → dst`` carries its *local*
partial derivative ``∂dst/∂src``, written with node symbols, so it stays tiny
(``w5``, ``out_h1·(1 − out_h1)``) and costs one small ``diff`` — never the
derivative of an expanded loss.  The Graph is the single source of truth: the
derivation, the verifier, the trainer, the checker and every renderer read it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Literal

import sympy as sp

from .functions import REDUCTIONS, reduction_kind, reduction_local
from .problem import Problem, Stage

NodeKind = Literal["parameter", "value", "data", "stage"]

#: How many chain-rule paths are listed for one parameter (SPEC §3).
PATH_LIMIT = 32

#: How many leaves of a kind, and how many stages, ``repr(graph)`` lists before it says "… more".
REPR_LINES = 40


@dataclass(frozen=True)
class Node:
    """One named quantity: a leaf, or a stage ``name = expr``."""

    name: str
    kind: NodeKind
    symbol: sp.Symbol
    expr: sp.Expr | None = None
    text: str | None = None
    per_sample: bool = False
    inputs: tuple[str, ...] = ()

    @property
    def is_leaf(self) -> bool:
        return self.expr is None

    @property
    def reduction(self) -> str | None:
        """``"sum"`` or ``"mean"`` for a reduction over the samples, else None."""
        return reduction_kind(self.expr)


@dataclass(frozen=True)
class Edge:
    """``src → dst`` with the local partial derivative ``∂dst/∂src``."""

    src: str
    dst: str
    local: sp.Expr


@dataclass
class Graph:
    """The staged computation of a problem, with its local derivatives."""

    nodes: dict[str, Node]
    loss: str
    leaf_values: dict[str, Any]
    n_samples: int | None = None
    title: str = ""
    description: str = ""
    source: str = ""
    edges: list[Edge] = field(default_factory=list)

    def __str__(self) -> str:
        """A readable listing, like a jaxpr: the leaves by kind, then one line per stage."""
        return self._listing(limit=None)

    def __repr__(self) -> str:
        """The same listing, cut short for a large network (``print(graph)`` shows all of it)."""
        return self._listing(limit=REPR_LINES)

    def _listing(self, limit: int | None) -> str:
        def some(items: list[str]) -> list[str]:
            if limit is None or len(items) <= limit:
                return items
            return [*items[:limit], f"… {len(items) - limit} more"]

        lines = [f"Graph({self.title!r}, loss={self.loss}, {len(self.nodes)} nodes, {len(self.edges)} edges"
                 + (f", {self.n_samples} samples)" if self.n_samples else ")")]
        for kind, label in (("parameter", "parameters"), ("value", "values"), ("data", "data")):
            names = [n.name for n in self.nodes.values() if n.kind == kind]
            if names:
                lines.append(f"  {label}: {', '.join(some(names))}")
        stages = []
        for node in self.nodes.values():
            if node.expr is not None:
                index = "[i]" if node.per_sample else ""
                stages.append(f"  {node.name}{index} = {node.expr}")
        if limit is not None and len(stages) > limit:
            # The first stages and the last ones (the loss is the last): "… 40 more stages" between.
            head = limit - limit // 4
            stages = [*stages[:head], f"  … {len(stages) - limit} more stages (print() shows all)",
                      *stages[len(stages) - limit // 4:]]
        return "\n".join(lines + stages)

    # -- construction -----------------------------------------------------
    @classmethod
    def from_problem(cls, problem: Problem) -> Graph:
        """Build the Graph of a validated :class:`~explain.problem.Problem`."""
        nodes: dict[str, Node] = {}
        for name in problem.parameters:
            nodes[name] = Node(name, "parameter", sp.Symbol(name, real=True))
        for name in problem.values:
            nodes[name] = Node(name, "value", sp.Symbol(name, real=True))
        for name in problem.data:
            nodes[name] = Node(name, "data", sp.Symbol(name, real=True), per_sample=True)
        for stage in problem.stages:
            nodes[stage.name] = _stage_node(stage, nodes)
        loss = problem.loss
        if nodes[loss].per_sample:
            # The problem's reduction is a node of its own, L = Σᵢ l_i (or the mean):
            # one mechanism for every data problem, the same as a [cost] stage
            # mean(l), so that a per-sample adjoint is ∂L/∂l_i and a stage without
            # data that feeds l_i collects one term from every sample.
            kind = problem.reduction
            name = next((n for n in IMPLICIT_LOSS_NAMES if n not in nodes), None) or _numbered("L", nodes)
            reduced = Stage(name, REDUCTIONS[kind](nodes[loss].symbol), f"{kind}({loss})")
            nodes[name] = _stage_node(reduced, nodes)
            loss = name
        leaf_values: dict[str, Any] = {**problem.parameters, **problem.values, **problem.data}
        graph = cls(
            nodes=nodes, loss=loss, leaf_values=leaf_values,
            n_samples=problem.n_samples, title=problem.title, description=problem.description,
            source=problem.source,
        )
        graph.edges = [edge for node in nodes.values() for edge in _local_partials(node, nodes)]
        return graph

    def with_reduction(self, kind: str) -> Graph:
        """The same Graph with every reduction over samples made a ``kind`` (sum or mean)."""
        nodes = {
            name: (replace(node, expr=REDUCTIONS[kind](*node.expr.args)) if node.reduction else node)
            for name, node in self.nodes.items()
        }
        edges = [
            (replace(e, local=reduction_local(kind)) if nodes[e.dst].reduction else e) for e in self.edges
        ]
        return replace(self, nodes=nodes, edges=edges)

    def check(self) -> Graph:
        """Assert the invariants every part of explain relies on; the Graph itself when they hold.

        Nodes are in forward order (every input comes earlier, so the graph is
        acyclic); each stage has exactly one edge per input and nothing else has
        edges; parameters, values and data are leaves with a value; the loss is a
        stage, one number (not per sample); per-sample stages are exactly those
        with a per-sample input that are not a reduction.  Raises AssertionError
        listing every broken invariant (a bug of ours: no user input can do it).
        """
        broken: list[str] = []
        seen: set[str] = set()
        for key, node in self.nodes.items():
            if key != node.name:
                broken.append(f"node {node.name!r} is filed under {key!r}")
            leaf = node.kind in ("parameter", "value", "data")
            if leaf != node.is_leaf:
                broken.append(f"{node.name}: a {node.kind} " + ("with" if node.expr is not None else "without")
                              + " an expression")
            if leaf and node.name not in self.leaf_values:
                broken.append(f"{node.name}: a {node.kind} without a value")
            late = [i for i in node.inputs if i not in seen]
            if late:
                broken.append(f"{node.name}: inputs {late} are not computed before it (a cycle, or out of order)")
            if node.expr is not None:
                missing = [i for i in node.inputs if i in self.nodes and self.nodes[i].symbol not in node.expr.free_symbols]
                if missing:
                    broken.append(f"{node.name}: inputs {missing} do not appear in its expression")
                per_sample = any(self.nodes[i].per_sample for i in node.inputs if i in self.nodes) and not node.reduction
                if node.per_sample != per_sample:
                    broken.append(f"{node.name}: per_sample is {node.per_sample}, its inputs say {per_sample}")
            elif node.per_sample != (node.kind == "data"):
                broken.append(f"{node.name}: a {node.kind} with per_sample={node.per_sample}")
            seen.add(key)
        extra = set(self.leaf_values) - {n for n, node in self.nodes.items() if node.is_leaf}
        if extra:
            broken.append(f"values for nodes that are not leaves: {sorted(extra)}")
        pairs = [(e.src, e.dst) for e in self.edges]
        if len(set(pairs)) != len(pairs):
            broken.append("an edge is listed twice")
        for src, dst in pairs:
            if src not in self.nodes or dst not in self.nodes:
                broken.append(f"edge {src} → {dst}: an end is not a node")
            elif src not in self.nodes[dst].inputs:
                broken.append(f"edge {src} → {dst}: {src} is not an input of {dst}")
        wanted = {(i, n.name) for n in self.nodes.values() for i in n.inputs}
        if wanted - set(pairs):
            broken.append(f"inputs without an edge: {sorted(wanted - set(pairs))}")
        if self.loss not in self.nodes:
            broken.append(f"the loss {self.loss!r} is not a node")
        elif self.nodes[self.loss].per_sample:
            broken.append(f"the loss {self.loss} is per sample: it must be reduced to one number")
        if any(n.kind == "data" for n in self.nodes.values()) and self.n_samples is None:
            broken.append("data columns but no sample count")
        if broken:
            raise AssertionError("Graph invariants broken:\n  " + "\n  ".join(broken))
        return self

    # -- structure --------------------------------------------------------
    @property
    def parameters(self) -> list[str]:
        return [n.name for n in self.nodes.values() if n.kind == "parameter"]

    @property
    def stages(self) -> list[Node]:
        return [n for n in self.nodes.values() if not n.is_leaf]

    @property
    def is_data_problem(self) -> bool:
        return self.n_samples is not None

    @property
    def reductions(self) -> list[Node]:
        """The nodes that reduce a per-sample stage over the samples (sum or mean)."""
        return [n for n in self.nodes.values() if n.reduction]

    @property
    def reduction(self) -> str:
        """How the data loss is reduced over the samples: ``"sum"`` or ``"mean"``."""
        kinds = [n.reduction for n in self.reductions if n.name in self.reaches_loss]
        return kinds[0] if kinds else "sum"

    @cached_property
    def _edges_into(self) -> dict[str, list[Edge]]:
        table: dict[str, list[Edge]] = {n: [] for n in self.nodes}
        for edge in self.edges:
            table[edge.dst].append(edge)
        return table

    @cached_property
    def _edges_out(self) -> dict[str, list[Edge]]:
        table: dict[str, list[Edge]] = {n: [] for n in self.nodes}
        for edge in self.edges:
            table[edge.src].append(edge)
        return table

    def edges_into(self, name: str) -> list[Edge]:
        """Edges whose destination is ``name`` (its inputs)."""
        return self._edges_into[name]

    def edges_out_of(self, name: str) -> list[Edge]:
        """Edges whose source is ``name`` (its consumers), restricted to nodes that reach the loss."""
        return [e for e in self._edges_out[name] if e.dst in self.reaches_loss]

    def edge(self, src: str, dst: str) -> Edge:
        for e in self._edges_into[dst]:
            if e.src == src:
                return e
        raise KeyError((src, dst))

    # -- walks ------------------------------------------------------------
    # Every walk over the Graph is written here once: the nodes dict is in forward
    # (topological) order, so one pass forward or backward reaches everything.
    def consumers(self, name: str) -> list[str]:
        """The nodes that take ``name`` as an input, in forward order (whether or not they reach the loss)."""
        return [e.dst for e in self._edges_out[name]]

    def descendants(self, *names: str) -> set[str]:
        """The nodes computed from any of ``names``, directly or through other stages (``names``
        themselves only when one is computed from another)."""
        sources = set(names)
        found: set[str] = set()
        for node in self.nodes.values():
            if any(e.src in sources or e.src in found for e in self._edges_into[node.name]):
                found.add(node.name)
        return found

    def ancestors(self, *names: str) -> set[str]:
        """The nodes any of ``names`` depends on: its inputs, their inputs, down to the leaves."""
        targets = set(names)
        found: set[str] = set()
        for name in reversed(list(self.nodes)):
            if name in targets or name in found:
                found.update(e.src for e in self._edges_into[name])
        return found

    def influencing_loss(self) -> set[str]:
        """The nodes on some path to the loss, the loss included (the others get no gradient)."""
        return set(self.reaches_loss)

    def depth_to_loss(self) -> dict[str, int]:
        """For each node that reaches the loss, its longest distance to it (the loss: 0)."""
        return dict(self._depth)

    @cached_property
    def reaches_loss(self) -> frozenset[str]:
        """Names of the nodes on some path to the loss (the loss included)."""
        return frozenset(self.ancestors(self.loss) | {self.loss})

    @cached_property
    def _depth(self) -> dict[str, int]:
        depth = {self.loss: 0}
        for name in reversed(list(self.nodes)):
            if name in self.reaches_loss and name != self.loss:
                depth[name] = 1 + max(depth[e.dst] for e in self._edges_out[name] if e.dst in self.reaches_loss)
        return depth

    @cached_property
    def backward_order(self) -> list[str]:
        """Nodes that reach the loss, from the loss back to the leaves.

        Nodes are taken level by level (by their longest distance to the loss),
        and in forward order within a level, so out_o1 comes before out_o2 as a
        teacher would write them; any such order is a valid reverse topological one.
        """
        depth = self._depth
        position = {n: i for i, n in enumerate(self.nodes)}
        return sorted(depth, key=lambda n: (depth[n], position[n]))

    @cached_property
    def _path_counts(self) -> dict[str, int]:
        counts = {name: 0 for name in self.nodes}
        counts[self.loss] = 1
        for name in self.backward_order:
            if name != self.loss:
                counts[name] = sum(counts[e.dst] for e in self.edges_out_of(name))
        return counts

    def path_count(self, name: str) -> int:
        """How many distinct paths lead from ``name`` to the loss."""
        return self._path_counts.get(name, 0)

    def paths(self, name: str, limit: int | None = PATH_LIMIT) -> list[list[str]]:
        """The paths from ``name`` to the loss (at most ``limit``), each a list of node names."""
        found: list[list[str]] = []

        def walk(path: list[str]) -> None:
            if limit is not None and len(found) >= limit:
                return
            last = path[-1]
            if last == self.loss:
                found.append(path)
                return
            for e in self.edges_out_of(last):
                walk([*path, e.dst])

        if name in self.reaches_loss:
            walk([name])
        return found

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def symbol_values(self, values: Mapping[str, Any]) -> dict[sp.Symbol, Any]:
        """Map each node symbol to its value, for printing numbers in place of names."""
        return {self.nodes[n].symbol: v for n, v in values.items() if n in self.nodes}


#: Names for the reduced loss of a data problem without [cost], the first one free.
IMPLICIT_LOSS_NAMES = ("L", "J")


def _numbered(base: str, nodes: Mapping[str, Node]) -> str:
    k = 2
    while f"{base}_{k}" in nodes:
        k += 1
    return f"{base}_{k}"


def _stage_node(stage: Stage, nodes: Mapping[str, Node]) -> Node:
    used = {s.name for s in stage.expr.free_symbols}
    inputs = tuple(n for n in nodes if n in used)
    # A reduction over the samples is one number, whatever it reduces.
    per_sample = any(nodes[n].per_sample for n in inputs) and not reduction_kind(stage.expr)
    return Node(stage.name, "stage", sp.Symbol(stage.name, real=True), stage.expr, stage.text, per_sample, inputs)


#: Local derivatives with more operations than this are not tidied by ``factor_terms`` (see there).
MAX_FACTORED_OPS = 60


def _local_partials(node: Node, nodes: Mapping[str, Node]) -> list[Edge]:
    if node.expr is None:
        return []
    if node.reduction:
        # ∂L/∂l_i is 1 for a sum and 1/n for a mean, the same for every sample.
        return [Edge(src, node.name, reduction_local(node.reduction)) for src in node.inputs]
    edges = []
    # A weighted sum has many terms, but each input appears in one or two of them:
    # differentiate only those (sympy.diff would walk every term for every input).
    terms = node.expr.args if node.expr.is_Add else (node.expr,)
    holding: dict[sp.Symbol, list[sp.Expr]] = {}
    for t in terms:  # which terms hold each symbol, found once (a 1,000-term sum has 1,000 inputs)
        for symbol in t.free_symbols:
            holding.setdefault(symbol, []).append(t)
    for src in node.inputs:
        symbol = nodes[src].symbol
        local = sp.Add(*(_partial(t, symbol) for t in holding.get(symbol, ())))
        # factor_terms keeps 2·(ŷ − y) as written; SymPy would distribute it to 2ŷ − 2y.  On a
        # large local (a tensor function of a composite argument written inline, such as
        # cross_entropy(W2 @ relu(W1 @ x + b1) + b2, y): hundreds of operations per entry) it
        # costs seconds each and tidies nothing a reader follows: left as SymPy writes it.
        if sp.count_ops(local) <= MAX_FACTORED_OPS:
            local = sp.factor_terms(local)
        if isinstance(node.expr, sp.Function) or node.expr.is_Pow or _is_quotient(node.expr):
            # Write the derivative with the node's own name where its expression
            # reappears: σ'(z) = σ(z)(1 − σ(z)) reads out·(1 − out), the way it is taught.
            local = local.subs(node.expr, node.symbol)
        edges.append(Edge(src, node.name, local))
    return edges


def _partial(term: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    """∂term/∂symbol, with a shortcut for a product in which the symbol is a plain factor once."""
    if term.is_Mul:
        hits = [i for i, a in enumerate(term.args) if symbol in a.free_symbols]
        if len(hits) == 1 and term.args[hits[0]] == symbol:
            return sp.Mul(*(a for i, a in enumerate(term.args) if i != hits[0]))
    if isinstance(term, sp.Function) and term.args == (symbol,):
        # f(z) by z is f'(z): sympy.diff would build a Derivative first and ask
        # the assumptions system about it (11 ms for sigmoid, 0.4 ms this way;
        # a 1,000-unit layer has 1,000 of these).
        return term.fdiff(1)
    if term.is_Pow and term.exp.is_Number and not term.exp.is_Integer and symbol not in term.exp.free_symbols:
        # The power rule as taught, e·b^(e−1)·b′: SymPy writes d/dw (−w)^2.0 as
        # 2.0·(−w)^2.0/w, which divides by zero at w = 0 where the derivative is 0.
        base, exponent = term.base, term.exp
        return exponent * base ** (exponent - 1) * sp.diff(base, symbol)
    if term.has(sp.Abs):
        # Every value here is real, so |u|′ = sign(u)·u′; SymPy, not knowing that
        # sqrt(w) is real, writes |sqrt(w)|′ with re, im and atan2.
        real = term.replace(sp.Abs, _RealAbs)
        return sp.diff(real, symbol).replace(_RealAbs, sp.Abs)
    return sp.diff(term, symbol)


class _RealAbs(sp.Function):
    """|u| of a real u, only while differentiating (see :func:`_partial`)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sp.sign(self.args[0])


def _is_quotient(expr: sp.Expr) -> bool:
    return bool(expr.is_Mul and any(a.is_Pow and a.exp.is_negative for a in expr.args))
