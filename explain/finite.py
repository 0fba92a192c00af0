"""Numbers that are not finite are errors, never results.

A derivation whose numbers include inf or nan explains nothing: ``log(x - 1)``
at x = 1 is −inf, and every step after it is inf or nan too.  :func:`check`
reads an evaluation in the order a student would write it — the forward pass,
then the local partial derivatives, then the adjoints from the loss back — and
raises :class:`~explain.errors.ExplainError` at the *first* number that is not
finite, naming the step, the value, the numbers it was computed from and why
(``log of 0``, ``division by zero``, ``overflow``).

The why is found by re-evaluating that one step's formula bottom-up with NumPy
and reporting the innermost operation whose operands are finite but whose result
is not.  This costs nothing when every number is finite: the scan over the
evaluation is a few ``np.isfinite`` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any

import numpy as np
import sympy as sp

from .errors import ExplainError, located
from .functions import numpy_functions, stable_form
from .i18n import message

#: At most this many input values are listed in a message.
SHOWN_INPUTS = 6

_FUNCTIONS: dict[str, Callable[..., Any]] = numpy_functions()


def is_finite(value: Any) -> bool:
    """True when every entry of ``value`` (a number or an array) is a finite real number."""
    try:
        return bool(np.all(np.isfinite(np.asarray(value, dtype=float))))
    except (TypeError, ValueError):  # complex, or not a number at all
        return False


def check(graph: Any, evaluation: Any) -> None:
    """Raise :class:`ExplainError` at the first number of ``evaluation`` that is not finite.

    Forward values in the Graph's order first, then the local partials on the
    edges that reach the loss, then the adjoints in backward order, then the
    reduced loss.  ``graph`` is an :class:`~explain.graph.Graph` and
    ``evaluation`` an :class:`~explain.compile.Evaluation` of it.
    """
    values = evaluation.values
    for name, node in graph.nodes.items():
        bad = _first_bad(values.get(name, 0.0))
        if bad is None:
            continue
        value, sample = bad
        if node.expr is None:
            raise ExplainError(_where(graph, name), message("finite_leaf", name=name, value=_show(value)))
        env = _env(node.expr, values, sample)
        raise ExplainError(_where(graph, name), message(
            "finite_stage", stage=f"{name} = {node.text or node.expr}", value=_show(value),
            at=_at(env, sample), reason=reason(node.expr, env)))
    for edge in graph.edges:
        if edge.dst not in graph.reaches_loss:
            continue
        bad = _first_bad(evaluation.locals[(edge.src, edge.dst)])
        if bad is None:
            continue
        value, sample = bad
        env = _env(edge.local, values, sample)
        raise ExplainError(_where(graph, edge.dst), message(
            "finite_local", dst=edge.dst, src=edge.src, expr=edge.local, value=_show(value),
            at=_at(env, sample), reason=reason(edge.local, env)))
    for name in graph.backward_order:
        bad = _first_bad(evaluation.adjoints[name])
        if bad is not None:
            raise ExplainError(_where(graph, name), message(
                "finite_adjoint", loss=graph.loss, name=name, value=_show(bad[0]), at=_at({}, bad[1])))
    if not is_finite(evaluation.loss):
        raise ExplainError(_where(graph, graph.loss), message("finite_loss", value=_show(float(evaluation.loss))))


def _where(graph: Any, name: str) -> str:
    if graph.source == "expression":
        return repr(graph.title)
    node = graph.nodes.get(name)
    return located(graph.source, f"[forward] {name}" if node is not None and node.kind == "stage" else name)


def _first_bad(value: Any) -> tuple[float, int | None] | None:
    """The first value that is not finite, and its sample (None for a scalar); None if all are finite."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return float("nan"), None
    finite = np.isfinite(array)
    if finite.all():
        return None
    if array.ndim == 0:
        return float(array), None
    index = int(np.flatnonzero(~finite.reshape(-1))[0])
    return float(array.reshape(-1)[index]), index


def _env(expr: sp.Expr, values: Mapping[str, Any], sample: int | None) -> dict[str, float]:
    """The value of each symbol of ``expr`` (at one sample), in the order of the Graph."""
    env = {}
    for symbol in sorted(expr.free_symbols, key=lambda s: s.name):
        if symbol.name in values:
            value = np.asarray(values[symbol.name], dtype=float)
            env[symbol.name] = float(value.reshape(-1)[sample or 0] if value.ndim else value)
    return env


def _at(env: Mapping[str, float], sample: int | None) -> str:
    shown = [f"{k} = {_show(v)}" for k, v in list(env.items())[:SHOWN_INPUTS]]
    if len(env) > SHOWN_INPUTS:
        shown.append("…")
    text = ", ".join(shown)
    if sample is not None:
        where = message("finite_sample", sample=sample + 1)
        text = f"{where} ({text})" if text else where
    return " " + message("finite_at", values=text) if text else ""


def _show(value: float) -> str:
    if np.isnan(value):
        return "nan"
    if np.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


# -- why ------------------------------------------------------------------------
def reason(expr: sp.Expr, env: Mapping[str, float]) -> str:
    """Why ``expr`` is not finite at ``env``: the innermost operation that broke, in words."""
    found: list[str] = []

    def visit(e: sp.Expr) -> np.float64:
        if e.is_Symbol:
            return np.float64(env.get(e.name, np.nan))
        if e.is_Number or e in (sp.pi, sp.E):
            try:
                value = np.float64(float(e))
            except TypeError:  # zoo
                value = np.float64(np.nan)
            if not np.isfinite(value) and not found:
                found.append(message("finite_why_constant", expr=e))
            return value
        stable = stable_form(e)
        args = [visit(stable[1])] if stable is not None else [visit(a) for a in e.args]
        if found:
            return np.float64(np.nan)
        with np.errstate(all="ignore"):
            value = _apply(e, args, stable[0] if stable else None)
        if not np.isfinite(value) and all(np.isfinite(a) for a in args):
            found.append(_why(e, args))
        return value

    visit(expr)
    return found[0] if found else message("finite_why_unknown")


def _apply(e: sp.Expr, args: list[np.float64], stable: str | None) -> np.float64:
    if stable is not None:
        return np.float64(_FUNCTIONS[stable](args[0]))
    if e.is_Add:
        return np.float64(sum(args[1:], args[0]))
    if e.is_Mul:
        return np.float64(reduce(lambda a, b: a * b, args))
    if e.is_Pow:
        return np.float64(np.sqrt(args[0]) if e.exp == sp.Rational(1, 2) else np.power(args[0], args[1]))
    name = type(e).__name__
    if name in _FUNCTIONS:
        if name in ("Max", "Min"):
            return np.float64(reduce(_FUNCTIONS[name], args))
        return np.float64(_FUNCTIONS[name](*args))
    return np.float64(np.nan)


def _why(e: sp.Expr, args: list[np.float64]) -> str:
    """The reason an operation with finite operands gave inf or nan."""
    if e.is_Pow:
        base, power = float(args[0]), float(args[1])
        if base == 0 and power < 0:
            return message("finite_why_division", expr=e.base)
        if base < 0 and power != int(power):
            if power == 0.5:
                return message("finite_why_sqrt", expr=e.base, value=_show(base))
            return message("finite_why_power", expr=e.base, value=_show(base), power=_show(power))
        return message("finite_why_overflow", expr=e)
    if isinstance(e, sp.log):
        value = float(args[0])
        if value == 0:
            return message("finite_why_log0", expr=e.args[0])
        if value < 0:
            return message("finite_why_log", expr=e.args[0], value=_show(value))
    if isinstance(e, sp.exp):
        return message("finite_why_exp", value=_show(float(args[0])))
    if e.is_Add or e.is_Mul or isinstance(e, sp.Function):
        return message("finite_why_overflow", expr=e)
    return message("finite_why_unknown")


__all__ = ["check", "is_finite", "reason"]
