"""A Graph evaluated in high precision (mpmath, shipped with SymPy), for the finite-difference check.

The float64 program answers "what does the derivation print"; this module
answers "what is the exact value", to about :data:`DIGITS` significant digits,
so that a finite difference taken here has no rounding error worth speaking of
and the float64 derivation can be judged against it.

Each node expression (and each local partial) is turned once into a tree of
Python closures over ``mpmath`` operations, walked node by node in graph order,
once per sample for per-sample nodes.  Only the SymPy trees the safe parser
built are walked: no generated source, no user text.

The reduction over samples is handled generically, so that it survives a Graph
in which the reduction is a node of its own: a scalar node computed from a
per-sample node is a reduction, ``sum`` or ``mean`` by the name of its function
(``SampleSum``/``SampleMean``, or anything whose name says sum or mean).  An
expression that cannot be evaluated here raises :class:`Unsupported`, and the
caller says so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from .functions import mpmath_functions
from .graph import Graph

#: Significant decimal digits of the high-precision evaluation.
DIGITS = 50

Value = Any  # an mpf, or a list of mpf (one per sample)
Closure = Callable[[Sequence[Any]], Any]


class Unsupported(Exception):
    """An expression this module cannot evaluate in high precision."""


#: mpmath implementations, by SymPy function name; the same names as the NumPy
#: namespace of :mod:`explain.compile` and with the same values at kinks.
FUNCTIONS: dict[str, Callable[..., Any]] = mpmath_functions()


def closure(expr: sp.Expr, slots: Mapping[sp.Symbol, int]) -> Closure:
    """A function of the slot values computing ``expr`` with mpmath (raises :class:`Unsupported`)."""
    if expr.is_Symbol:
        if expr not in slots:
            raise Unsupported(str(expr))
        i = slots[expr]
        return lambda v: v[i]
    if expr.is_Number or expr in (sp.pi, sp.E):
        constant = _constant(expr)
        return lambda v: constant
    if expr.is_Add or expr.is_Mul:
        parts = [closure(a, slots) for a in expr.args]
        if expr.is_Add:
            return lambda v: mpmath.fsum(p(v) for p in parts)
        return lambda v: mpmath.fprod(p(v) for p in parts)
    if expr.is_Pow:
        base, exponent = expr.args
        b = closure(base, slots)
        if exponent == sp.Rational(1, 2):
            return lambda v: mpmath.sqrt(b(v))
        if exponent.is_Integer:
            k = int(exponent)
            return lambda v: _power(b(v), k)
        e = closure(exponent, slots)
        return lambda v: _power(b(v), e(v))
    if isinstance(expr, (sp.Function, sp.Max, sp.Min)):
        name = type(expr).__name__
        if name not in FUNCTIONS:
            raise Unsupported(name)
        f = FUNCTIONS[name]
        args = [closure(a, slots) for a in expr.args]
        if len(args) == 1:
            (a,) = args
            return lambda v: f(a(v))
        return lambda v: f(*(a(v) for a in args))
    raise Unsupported(type(expr).__name__)


def _power(base: Any, exponent: Any) -> Any:
    """base ** exponent; NaN where float64 would give ±inf for 0 ** negative (mpmath raises)."""
    try:
        return mpmath.power(base, exponent)
    except ZeroDivisionError:
        return mpmath.nan


def _constant(expr: sp.Expr) -> Any:
    if expr is sp.pi:
        return +mpmath.pi
    if expr is sp.E:
        return +mpmath.e
    if expr.is_Rational:
        return mpmath.mpf(int(expr.p)) / int(expr.q)
    return mpmath.mpf(expr._mpf_)  # a SymPy Float, bit for bit


def reduction_of(graph: Graph, name: str) -> str | None:
    """``"sum"`` or ``"mean"`` when node ``name`` reduces a per-sample node to a scalar, else None.

    Today no stage does this (the loss is reduced after the last node); once the
    reduction is a node of its own it is a scalar node with a per-sample input.
    """
    node = graph.nodes[name]
    if node.reduction:
        return node.reduction
    if node.is_leaf or node.per_sample or not any(graph.nodes[i].per_sample for i in node.inputs):
        return None
    kind = type(node.expr).__name__.lower()
    if "mean" in kind:
        return "mean"
    if "sum" in kind:
        return "sum"
    raise Unsupported(type(node.expr).__name__)


class HighPrecision:
    """The forward pass (and the derivation's own formulas) of a Graph in mpmath."""

    def __init__(self, graph: Graph, digits: int = DIGITS) -> None:
        self.graph = graph
        self.digits = digits
        self.names = list(graph.nodes)
        self.slots = {graph.nodes[n].symbol: i for i, n in enumerate(self.names)}
        self.n = graph.n_samples or 1
        self.per_sample = [graph.nodes[n].per_sample for n in self.names]
        self.reductions: dict[int, tuple[str, int]] = {}
        self.forward: dict[int, Closure] = {}
        for i, name in enumerate(self.names):
            node = graph.nodes[name]
            if node.is_leaf or name not in graph.reaches_loss:  # a side stage cannot change the loss
                continue
            kind = reduction_of(graph, name)
            if kind is not None:
                (arg,) = [a for a in node.expr.args if a.is_Symbol]
                self.reductions[i] = (kind, self.slots[arg])
            else:
                self.forward[i] = closure(node.expr, self.slots)
        self.loss = self.names.index(graph.loss)

    # -- the forward pass ------------------------------------------------
    def leaves(self, overrides: Mapping[str, float] | None = None) -> list[Value]:
        """Leaf values as exact mpf (per-sample leaves as lists); other slots None."""
        values: list[Value] = [None] * len(self.names)
        with mpmath.workdps(self.digits):
            for i, name in enumerate(self.names):
                if self.graph.nodes[name].is_leaf:
                    values[i] = _exact(self.graph.leaf_values[name], self.per_sample[i], self.n)
            for name, value in (overrides or {}).items():
                values[self.names.index(name)] = value
        return values

    def run(self, values: list[Value], only: Iterable[int] | None = None) -> list[Value]:
        """Fill in the stage slots of ``values`` (those in ``only``, if given) in graph order."""
        todo = sorted(self.forward.keys() | self.reductions.keys()) if only is None else sorted(only)
        with mpmath.workdps(self.digits):
            for i in todo:
                if i in self.reductions:
                    kind, arg = self.reductions[i]
                    total = mpmath.fsum(values[arg])
                    values[i] = total / self.n if kind == "mean" else total
                elif self.per_sample[i]:
                    values[i] = [self.forward[i](row) for row in _rows(values, self.per_sample, self.n)]
                else:
                    values[i] = self.forward[i](values)
        return values

    def reduced_loss(self, values: Sequence[Value]) -> Any:
        """The loss as the derivation defines it (a per-sample loss reduced by ``graph.reduction``)."""
        loss = values[self.loss]
        if isinstance(loss, list):
            with mpmath.workdps(self.digits):
                total = mpmath.fsum(loss)
                return total / self.n if self.graph.reduction == "mean" else total
        return loss

    def downstream(self, name: str) -> list[int]:
        """Slots of the stages that depend on leaf ``name``: the only ones to redo when it changes."""
        reached = self.graph.descendants(name)
        return [i for i, n in enumerate(self.names) if n in reached and (i in self.forward or i in self.reductions)]

    # -- the derivation's own formulas -------------------------------------
    def gradients(self, values: Sequence[Value], float_locals: Mapping[tuple[str, str], Any]) -> dict[str, Any]:
        """The parameter gradients the derivation's local partials give, evaluated in high precision.

        The same chain rule as the compiled program (adjoint = Σ consumer adjoint ×
        local partial, summed over samples into scalar nodes), so comparing it with
        the float64 derivation measures float64's own rounding and nothing else.  A
        local partial that cannot be evaluated here uses its float64 value.
        """
        g = self.graph
        with mpmath.workdps(self.digits):
            locals_: dict[tuple[str, str], Value] = {}
            for e in g.edges:
                if e.dst not in g.reaches_loss:
                    continue
                dst = self.names.index(e.dst)
                if dst in self.reductions:  # ∂L/∂l_i: exactly 1, or 1/n for a mean
                    kind, _ = self.reductions[dst]
                    locals_[(e.src, e.dst)] = mpmath.mpf(1) / self.n if kind == "mean" else mpmath.mpf(1)
                    continue
                try:
                    f = closure(e.local, self.slots)
                    if self.per_sample[dst]:
                        locals_[(e.src, e.dst)] = [f(row) for row in _rows(values, self.per_sample, self.n)]
                    else:
                        locals_[(e.src, e.dst)] = f(values)
                except (Unsupported, TypeError):  # e.g. a reduction's local, written with a per-sample symbol
                    locals_[(e.src, e.dst)] = _exact(float_locals[(e.src, e.dst)], self.per_sample[dst], self.n)
            loss = g.nodes[g.loss]
            seed = mpmath.mpf(1) / self.n if loss.per_sample and g.reduction == "mean" else mpmath.mpf(1)
            adjoint: dict[str, Value] = {g.loss: [seed] * self.n if loss.per_sample else seed}
            for name in g.backward_order[1:]:
                node = g.nodes[name]
                terms = []
                for e in g.edges_out_of(name):
                    a, local = adjoint[e.dst], locals_[(e.src, e.dst)]
                    if isinstance(a, list) or isinstance(local, list):
                        term = [x * y for x, y in zip(_spread(a, self.n), _spread(local, self.n))]
                        terms.append(term if node.per_sample else mpmath.fsum(term))
                    else:
                        terms.append(a * local)
                if node.per_sample:
                    adjoint[name] = [mpmath.fsum(ts) for ts in zip(*(_spread(t, self.n) for t in terms))] \
                        if terms else [mpmath.mpf(0)] * self.n
                else:
                    adjoint[name] = mpmath.fsum(terms)
            return {p: adjoint.get(p, mpmath.mpf(0)) for p in g.parameters}


def _exact(value: Any, per_sample: bool, n: int) -> Value:
    """A float64 number (or column) as exact mpf: the binary value, not its decimal reading."""
    array = np.asarray(value, dtype=float)
    if per_sample or array.ndim > 0:
        return [mpmath.mpf(float(x)) for x in np.broadcast_to(array, (n,))]
    return mpmath.mpf(float(array))


def _spread(value: Value, n: int) -> list[Any]:
    return value if isinstance(value, list) else [value] * n


def _rows(values: Sequence[Value], per_sample: Sequence[bool], n: int) -> Iterable[list[Any]]:
    """The slot values seen by each sample: per-sample slots indexed, scalar slots shared."""
    columns = [(i, v) for i, v in enumerate(values) if isinstance(v, list)]
    row = list(values)
    for k in range(n):
        for i, v in columns:
            row[i] = v[k]
        yield row


def is_finite_real(value: Any) -> bool:
    """True for a finite real mpf (mpmath answers log(−1) with a complex number, not an error)."""
    return isinstance(value, mpmath.mpf) and mpmath.isfinite(value)
