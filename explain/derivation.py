"""The Derivation: every step of the chain rule, with its numbers.

Reading a Graph evaluated at one point, this module writes the steps a teacher
would write on the board, as plain records that every renderer walks:

1. the forward pass — each stage, its formula and its value;
2. the local partial derivative on every edge — formula and value;
3. the adjoints ("deltas") from the loss back — each the sum over consumers of
   adjoint × local partial, which is what backpropagation computes;
4. for every parameter, the chain rule as a sum over paths of products of local
   partials (capped at :data:`~explain.graph.PATH_LIMIT` paths), and the same
   gradient in delta form.

All numbers come from one compiled :class:`~explain.compile.Program`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp

from . import finite
from .compile import Evaluation, Program
from .graph import PATH_LIMIT, Graph
from .problem import Problem


@dataclass(frozen=True)
class ForwardStep:
    """``name = expr`` and its value (an array for per-sample stages)."""

    name: str
    expr: sp.Expr
    value: Any
    per_sample: bool


@dataclass(frozen=True)
class LocalStep:
    """The local partial ``∂dst/∂src`` on one edge."""

    src: str
    dst: str
    expr: sp.Expr
    value: Any


@dataclass(frozen=True)
class Term:
    """One term ``∂L/∂consumer · ∂consumer/∂node`` of an adjoint."""

    consumer: str
    local: LocalStep
    consumer_adjoint: Any


@dataclass(frozen=True)
class AdjointStep:
    """``∂L/∂name`` as the sum of its terms (empty for the loss itself)."""

    name: str
    terms: tuple[Term, ...]
    value: Any
    per_sample: bool
    reduced: bool = False  # True when per-sample terms are summed into a scalar


@dataclass(frozen=True)
class Path:
    """One path from a parameter to the loss, with its local partials."""

    nodes: tuple[str, ...]
    factors: tuple[LocalStep, ...]
    value: Any  # the product of the factors (per sample for data problems)


@dataclass(frozen=True)
class Gradient:
    """The gradient of the (reduced) loss with respect to one parameter."""

    name: str
    value: float
    paths: tuple[Path, ...]
    path_count: int
    delta: AdjointStep
    loss: str = "L"

    @cached_property
    def expr(self) -> sp.Expr:
        """The gradient as one formula of node symbols (per sample for data problems).

        The sum over paths of the products of local partials when every path is
        listed; otherwise the delta form with ∂loss/∂consumer symbols.  Built on
        first use: composing formulas costs more than deriving the numbers.
        """
        if self.paths and self.paths_complete:
            return sp.Add(*(sp.Mul(*(f.expr for f in p.factors)) for p in self.paths))
        return sp.Add(*(
            sp.Symbol(f"d{self.loss}/d{t.consumer}", real=True) * t.local.expr for t in self.delta.terms
        ))

    @property
    def paths_complete(self) -> bool:
        return len(self.paths) == self.path_count


@dataclass
class Derivation:
    """Every step of the derivation of a Graph at its leaf values."""

    graph: Graph
    evaluation: Evaluation
    forward: list[ForwardStep]
    locals: dict[tuple[str, str], LocalStep]
    adjoints: dict[str, AdjointStep]
    gradients: dict[str, Gradient]
    program: Program = field(repr=False)

    @property
    def loss(self) -> str:
        return self.graph.loss

    @property
    def loss_value(self) -> float:
        return self.evaluation.loss

    @property
    def values(self) -> dict[str, Any]:
        return self.evaluation.values

    def value(self, name: str) -> Any:
        """The forward value of a node."""
        return self.evaluation.values[name]

    def grad(self, name: str) -> Any:
        """∂loss/∂name for any node (per-sample for per-sample nodes)."""
        return self.evaluation.adjoints[name]

    def numbers(self, sample: int | None = None) -> dict[sp.Symbol, Any]:
        """Each node symbol and its value; for one sample of a data problem if given."""
        values = self.evaluation.values
        if sample is not None:
            values = {k: (v[sample] if isinstance(v, np.ndarray) else v) for k, v in values.items()}
        return self.graph.symbol_values(values)

    def __repr__(self) -> str:
        # Short: the whole derivation is what str(), print() and the renderers are for.
        params = list(self.gradients)
        shown = ", ".join(params[:6]) + (", …" if len(params) > 6 else "")
        return (f"<Derivation {self.graph.title!r}: loss {self.loss} = {self.loss_value:.6g}, "
                f"{len(self.graph.nodes)} nodes, gradients of {len(params)} parameter(s) ({shown})>")

    # Notebook display goes through the render layer's one door (late: the core
    # imports no renderer at load time; tests/test_layers.py allows only this).
    def _repr_markdown_(self) -> str | None:
        from .render.notebook import display

        return display(self, "markdown")

    def graph_view(self, **options: Any) -> Any:
        """The annotated computation graph (displays as SVG in Jupyter); see :mod:`explain.render.dot`."""
        from .render.notebook import graph_view

        return graph_view(self, **options)

    def _repr_svg_(self) -> str | None:
        from .render.notebook import display

        return display(self, "svg")


def derive(source: Problem | Graph, program: Program | None = None) -> Derivation:
    """Derive every chain-rule step of a problem (or Graph) at its current values."""
    graph = source if isinstance(source, Graph) else Graph.from_problem(source)
    program = program or Program(graph)
    ev = program.evaluate()
    finite.check(graph, ev)  # inf or nan is an error naming its first step, never a result
    forward = [
        ForwardStep(n.name, n.expr, ev.values[n.name], n.per_sample) for n in graph.stages if n.expr is not None
    ]
    locals_ = {(e.src, e.dst): LocalStep(e.src, e.dst, e.local, ev.locals[(e.src, e.dst)]) for e in graph.edges}
    adjoints: dict[str, AdjointStep] = {}
    for name in graph.backward_order:
        node = graph.nodes[name]
        terms = tuple(
            Term(e.dst, locals_[(e.src, e.dst)], ev.adjoints[e.dst]) for e in graph.edges_out_of(name)
        )
        reduced = any(graph.nodes[t.consumer].per_sample for t in terms) and not node.per_sample
        adjoints[name] = AdjointStep(name, terms, ev.adjoints[name], node.per_sample, reduced)
    gradients = {p: _gradient(graph, p, locals_, adjoints, ev) for p in graph.parameters}
    return Derivation(graph, ev, forward, locals_, adjoints, gradients, program)


def _gradient(
    graph: Graph, name: str, locals_: Mapping[tuple[str, str], LocalStep],
    adjoints: Mapping[str, AdjointStep], ev: Evaluation,
) -> Gradient:
    count = graph.path_count(name)
    paths = []
    for nodes in graph.paths(name, PATH_LIMIT):
        factors = tuple(locals_[(a, b)] for a, b in zip(nodes, nodes[1:]))
        value: Any = 1.0
        for f in factors:
            value = value * f.value
        paths.append(Path(tuple(nodes), tuple(reversed(factors)), value))
    delta = adjoints.get(name, AdjointStep(name, (), 0.0, False))
    return Gradient(name, float(ev.adjoints[name]), tuple(paths), count, delta, graph.loss)
