"""Follow-through marking (error carried forward): credit for a step done right on a wrong number.

A careful marker penalises a mistake once.  When a student's ∂E/∂out_o1 is
wrong and their ∂E/∂w5 is what the chain rule gives *from their own*
∂E/∂out_o1, the second answer is ``consistent``: the step itself is right.

No authoring is needed: the Graph knows each node's inputs (forward) and
consumers with their local partials (backward).  The student's wrong answers
are substituted for the quantities they answer — forward values, adjoints,
parameters after the step — and the rest is recomputed around them, exactly
as the derivation does, from the given numbers.  An answer that matches this
recomputation (at the precision written, widened by the rounding of the
carried numbers as written) is consistent, unless a carried number used is
0, 1 or −1: it zeroes or copies the step, which then proves nothing.

Only problems without data (one sample) are followed through: per-sample
answers are lists, and a list carried forward is not what markers credit.
"""

from __future__ import annotations

import math

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from .diagnose import Quantity
from .graph import Graph

if TYPE_CHECKING:  # check imports this module
    from .check import Answer, Grader, Item

#: A carried number with this value makes the step trivial (it zeroes or copies what follows).
TRIVIAL = (0.0, 1.0, -1.0)
#: Relative step of the finite difference that finds which carried numbers an answer uses.
STEP = 1e-6
#: An answer further than this (relative) from what the carried numbers give is not looked at closer.
ROUGH = 0.02


class Recompute:
    """The Graph's numbers recomputed with some of them replaced by a student's own."""

    def __init__(self, graph: Graph, learning_rate: float | None) -> None:
        from .functions import NUMPY_FUNCTIONS

        self.graph = graph
        self.learning_rate = learning_rate

        def compile_(expr: sp.Expr) -> tuple[list[str], Callable[..., Any]]:
            symbols = sorted(expr.free_symbols, key=lambda s: s.name)
            return [s.name for s in symbols], sp.lambdify(symbols, expr, modules=[NUMPY_FUNCTIONS, "numpy"])

        self._nodes = {n.name: compile_(n.expr) for n in graph.stages if n.expr is not None}
        self._out: dict[str, list[tuple[str, list[str], Callable[..., Any]]]] = {}
        for e in graph.edges:
            self._out.setdefault(e.src, []).append((e.dst, *compile_(e.local)))

    def _forward(self, leaves: Mapping[str, float], carried: Mapping[Quantity, float]) -> dict[str, float]:
        values = dict(leaves)
        for name, (args, f) in self._nodes.items():
            given = carried.get(Quantity("value", name))
            values[name] = given if given is not None else float(f(*(values[a] for a in args)))
        return values

    def __call__(self, q: Quantity, carried: Mapping[Quantity, float]) -> float:
        """Quantity ``q`` computed from the given numbers and the ``carried`` ones."""
        g = self.graph
        with np.errstate(all="ignore"):
            values = self._forward(g.leaf_values, carried)
            if q.kind == "value":
                # A stage that does not reach the loss is not recomputed: nothing follows from it.
                return values.get(q.name, math.nan)
            adjoints: dict[str, float] = {}
            for name in g.backward_order:
                given = carried.get(Quantity("grad", name))
                if name == g.loss:
                    adjoints[name] = 1.0
                elif given is not None:
                    adjoints[name] = given
                else:
                    # Edges into stages that do not reach the loss carry nothing back.
                    adjoints[name] = sum(float(f(*(values[a] for a in args))) * adjoints[dst]
                                         for dst, args, f in self._out.get(name, ()) if dst in adjoints)
            if q.kind == "grad":
                return adjoints.get(q.name, 0.0)
            eta = self.learning_rate or 0.0
            after = {}
            for p in g.parameters:
                given = carried.get(Quantity("after", p))
                after[p] = given if given is not None else g.leaf_values[p] - eta * adjoints.get(p, 0.0)
            if q.kind == "after":
                return after[q.name]
            return self._forward({**g.leaf_values, **after}, {})[g.loss]


def follow_through(grader: Grader, answers: Sequence[Answer], items: list[Item]) -> list[Item]:
    """``items`` with each wrong answer that follows from the student's own wrong numbers made ``consistent``."""
    g = grader.graph
    if g.is_data_problem:
        return items
    carried: dict[Quantity, tuple[float, float]] = {}  # the student's wrong numbers, with their last place
    for answer, item in zip(answers, items):
        q = grader.quantity(answer.key)
        if item.verdict == "incorrect" and answer.kind == "number" and q is not None \
                and q.kind in ("value", "grad", "after") and not q.shape:  # a whole tensor is not carried
            carried[q] = (float(answer.value), answer.places[0])
    if not carried:
        return items
    recompute = _recompute(grader)
    out = []
    for answer, item in zip(answers, items):
        q = grader.quantity(answer.key)
        if item.verdict == "incorrect" and answer.kind == "number" and q is not None and q.kind != "later" \
                and not q.shape:
            found = _consistent(grader, recompute, answer, q, {k: v for k, v in carried.items() if k != q})
            if found is not None:
                item = replace(item, verdict="consistent", diagnosis=None, note=found)
        out.append(item)
    return out


def warm_follow_through(grader: Grader) -> None:
    """Compile the recomputation now (before worker processes are forked)."""
    if not grader.graph.is_data_problem:
        _recompute(grader)


def _recompute(grader: Grader) -> Recompute:
    cached = getattr(grader, "_follow_through", None)
    if cached is None:
        cached = Recompute(grader.graph, grader.learning_rate)
        grader._follow_through = cached  # type: ignore[attr-defined]
    return cached


def _consistent(grader: Grader, recompute: Recompute, answer: Answer, q: Quantity,
                carried: Mapping[Quantity, tuple[float, float]]) -> str | None:
    """The message when ``answer`` follows from the carried numbers, else None."""
    numbers = {k: v for k, (v, _) in carried.items()}
    value = recompute(q, numbers)
    truth = grader.student.correct.get(q)
    if truth is None or abs(value - float(truth)) <= 1e-12 * abs(value):
        return None  # none of the carried numbers is upstream of this answer
    given = float(answer.value)
    # Far from what the carried numbers give (more than their rounding could explain): not consistent.
    if not np.isfinite(value) or abs(given - value) > ROUGH * abs(value) + answer.places[0]:
        return None
    used: list[Quantity] = []
    spread = 0.0  # how far the carried numbers' own rounding may move the result
    for k, (v, place) in carried.items():
        h = max(abs(v), 1e-12) * STEP
        moved = recompute(q, {**numbers, k: v + h})
        if not np.isfinite(moved):
            return None
        slope = (moved - value) / h
        if abs(moved - value) > 1e-9 * max(abs(value), 1e-300):
            used.append(k)
            if v in TRIVIAL:
                return None  # an upstream 0 or ±1 zeroes or copies the step: nothing to credit
            scale = grader.rtol * abs(v) if grader.rtol is not None else 0.5 * place
            spread += abs(slope) * scale
    if not used:
        return None
    if grader.rtol is not None:
        tolerance = grader.rtol * abs(value) + spread + 1e-15
    else:
        tolerance = 0.5 * answer.places[0] * (1 + 1e-9) + 1e-12 * abs(value) + spread
    if abs(given - value) > tolerance:
        return None
    words = ", ".join(f"{_label(k, grader.graph)} = {carried[k][0]:.12g}" for k in used)
    return grader.messages("check_consistent", values=words)


def _label(q: Quantity, graph: Graph) -> str:
    if q.kind == "grad":
        return f"∂{graph.loss}/∂{q.name}"
    if q.kind == "after":
        return f"{q.name}+"
    return q.name
