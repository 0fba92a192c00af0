"""Staging a single expression: one node per operation, with readable names.

``explain grad "sigmoid(w*x + b)"`` has no stages written by the user, so the
expression is cut into the operations it is made of, in evaluation order::

    mul1 = w·x
    add1 = mul1 + b
    f    = sigmoid(add1)

A quotient ``a/b`` stays one operation (``div1``), as a student would write it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import sympy as sp

from .errors import ExplainError
from .functions import sigmoid, stable_form
from .parse import evaluate_value, is_valid_name, parse_expression
from .problem import Problem, Stage

RESULT = "f"
#: The ``source`` of a problem made from one expression (its result is not a "loss").
EXPRESSION_SOURCE = "expression"


class _AnyName(Mapping[str, sp.Expr]):
    """Every valid name is a symbol: an expression on its own defines its names."""

    def __init__(self) -> None:
        self.used: list[str] = []

    def __getitem__(self, name: str) -> sp.Expr:
        if not is_valid_name(name):
            raise KeyError(name)
        if name not in self.used:
            self.used.append(name)
        return sp.Symbol(name, real=True)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _op_name(expr: sp.Expr) -> str:
    if expr.is_Add:
        return "add"
    if expr.is_Mul:
        return "div" if any(_is_reciprocal(a) for a in expr.args) else "mul"
    if expr.is_Pow:
        return "sqrt" if expr.exp == sp.Rational(1, 2) else "pow"
    name = type(expr).__name__.lower()
    return {"abs": "abs", "max": "max", "min": "min"}.get(name, name)


def _is_reciprocal(expr: sp.Expr) -> bool:
    return bool(expr.is_Pow and expr.exp.is_negative)


def stage(expr: sp.Expr) -> list[Stage]:
    """Cut an expression into one stage per operation; the last stage is ``f``."""
    stages: list[Stage] = []
    counters: dict[str, int] = {}
    seen: dict[sp.Expr, sp.Symbol] = {}

    def visit(e: sp.Expr) -> sp.Expr:
        if e.is_Atom:
            return e
        if e in seen:  # a repeated subexpression is one node used twice
            return seen[e]
        if stable_form(e) is not None:
            # log(sigmoid(z)) and log(1 - sigmoid(z)) stay one operation, computed
            # stably: staged, σ(z) underflows to 0 below z ≈ −745 and its log is −inf.
            inner = e.args[0]
            sig = inner if isinstance(inner, sigmoid) else next(
                a for t in inner.args if t.is_Mul for a in t.args if isinstance(a, sigmoid))
            args = [inner.xreplace({sig: sigmoid(visit(sig.args[0]))})]
        elif e.is_Mul:
            args = [sp.Pow(visit(a.base), a.exp) if _is_reciprocal(a) else visit(a) for a in e.args]
        else:
            args = [visit(a) for a in e.args]
        rebuilt = e.func(*args)
        op = _op_name(e)
        counters[op] = counters.get(op, 0) + 1
        name = f"{op}{counters[op]}"
        stages.append(Stage(name, rebuilt, str(rebuilt)))
        seen[e] = sp.Symbol(name, real=True)
        return seen[e]

    top = visit(expr)
    if not stages or top != sp.Symbol(stages[-1].name, real=True):
        stages.append(Stage(RESULT, top, str(top)))
    else:
        last = stages.pop()
        stages.append(Stage(RESULT, last.expr, last.text))
    return stages


def expression_problem(
    text: str, wrt: list[str] | None = None, at: Mapping[str, Any] | None = None, where: str = EXPRESSION_SOURCE,
) -> Problem:
    """A Problem for one expression: ``wrt`` are its parameters, ``at`` gives every value."""
    # The names the user wrote, even those SymPy cancels (a - a): their gradient is 0.
    written = _AnyName()
    expr = parse_expression(text, written, where)
    names = sorted(written.used)
    if not names:
        raise ExplainError(where, f"{text!r} has no variables to differentiate with respect to")
    wrt = list(wrt) if wrt else names
    for w in wrt:
        if w not in names:
            raise ExplainError("--wrt", f"{w!r} does not appear in {text!r} (its names: {', '.join(names)})")
    at = dict(at or {})
    for name in at:
        if name not in names:
            raise ExplainError("--at", f"{name!r} does not appear in {text!r} (its names: {', '.join(names)})")
    numbers: dict[str, float] = {}
    for name in names:
        if name not in at:
            raise ExplainError("--at", f"no value for {name!r}; give one, as in --at {name}=1")
        value = at[name]
        if isinstance(value, str):
            value = evaluate_value(value, {}, f"--at {name}", _no_random)
        numbers[name] = float(value)
    stages = stage(expr)
    for s in stages:
        if s.name in numbers:
            raise ExplainError(where, f"the name {s.name!r} is used for a stage; rename that variable")
    return Problem(
        title=text, stages=stages,
        parameters={n: numbers[n] for n in names if n in wrt},
        values={n: numbers[n] for n in names if n not in wrt},
        loss=RESULT, source=EXPRESSION_SOURCE,
    )


def _no_random() -> Any:
    raise ExplainError("--at", "random values are not allowed here")


def parse_assignments(text: str, where: str = "--at") -> dict[str, Any]:
    """Read ``a=1,b=2,x=pi/2`` into ``{"a": "1", ...}`` (values parsed later, safely)."""
    result: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ExplainError(where, f"expected name=value, got {part!r}")
        name, value = (s.strip() for s in part.split("=", 1))
        if not is_valid_name(name):
            raise ExplainError(where, f"{name!r} is not a valid name")
        result[name] = value
    return result
