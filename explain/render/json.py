"""JSON output: the stable contract of SPEC §3.

Numbers are full float64 values (Python's shortest repr that round-trips);
per-sample quantities are lists; expressions are SymPy's plain string form.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from ..derivation import Derivation
from .steps import StepWriter, shown_edges, shown_nodes


def _number(value: Any) -> Any:
    """A JSON number (or list of numbers); non-finite values become strings."""
    if isinstance(value, np.ndarray):
        return [_number(v) for v in value.tolist()]
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def derivation_dict(d: Derivation) -> dict[str, Any]:
    """Forward values, loss, gradients with paths, and every node's value and gradient."""
    g = d.graph
    result: dict[str, Any] = {
        "title": g.title,
        "forward": [{"name": s.name, "expr": str(s.expr), "value": _number(s.value)} for s in d.forward],
        "loss": {"name": g.loss, "value": _number(d.loss_value)},
        "gradients": {
            name: {
                "value": _number(gr.value),
                "expr": str(gr.expr),
                "paths": [list(p.nodes) for p in gr.paths],
                "path_count": gr.path_count,
            }
            for name, gr in d.gradients.items()
        },
        "nodes": {
            name: {"kind": node.kind, "value": _number(d.value(name)), "grad": _number(d.grad(name))}
            for name, node in g.nodes.items()
        },
        "locals": [
            {"of": s.dst, "wrt": s.src, "expr": str(s.expr), "value": _number(s.value)} for s in shown_edges(d)
        ],
    }
    if g.description:
        result["description"] = g.description
    if g.is_data_problem:
        result["n_samples"] = g.n_samples
        result["reduction"] = g.reduction
    return result


def solution_dict(solution: Any) -> dict[str, Any]:
    """The ``explain solve --format json`` object."""
    v = solution.verification
    # First, so that a reader of the JSON meets it before any number: null when not verified.
    result: dict[str, Any] = {"verified": None if v is None else v.passed}
    if v is not None and not v.passed:
        from ..i18n import Messages

        result["warning"] = v.banner(Messages("en"))
    result.update(derivation_dict(solution.derivation))
    matrix = matrix_form_dict(solution)
    if matrix is not None:
        result["matrix_form"] = matrix
    if v is not None:
        result["verification"] = v.to_dict()
    if solution.training is not None:
        result["training"] = solution.training.to_dict()
    return result


def _tensor(value: Any, shape: Any, batched: bool) -> dict[str, Any]:
    """A tensor's numbers as nested lists, with its shape (one list per sample when ``batched``)."""
    return {"shape": list(shape), "per_sample": batched, "value": _nested(value)}


def _nested(value: Any) -> Any:
    """Nested lists of JSON numbers, any depth (non-finite values as strings, as everywhere)."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        return _number(float(array))
    return [_nested(row) for row in array]


def matrix_form_dict(solution: Any) -> dict[str, Any] | None:
    """The matrix-form derivation of a problem with vectors or matrices (None for a scalar problem).

    ``shape`` is one sample's shape; a ``per_sample`` value has one entry per sample first.
    Formulas are in the plain-text form of explain.tensorgraph (``dL/dz1 x^T``).
    """
    from .document import _matrix

    md = _matrix(solution)
    if md is None:
        return None

    def value(record: Any) -> Any:
        return record.value if record.batched else record.value[0]

    def adjoint(record: Any) -> dict[str, Any]:
        return {"name": record.name, **_tensor(value(record), record.shape, record.batched),
                "terms": [{"via": t.via, "formula": t.formula.text(), "shape": list(t.formula.shape),
                           "value": _nested(t.value if t.formula.batched else t.value[0])}
                          for t in record.terms]}

    program = md.program
    return {
        "loss": md.loss,
        "n_samples": program.n_samples,
        "leaves": {name: {"kind": kind, **_tensor(program.values[name] if program.leaves[name].batched
                                                  else program.values[name][0], program.leaves[name].shape,
                                                  program.leaves[name].batched)}
                   for name, kind in program.kinds.items()},
        "forward": [{"name": f.name, "formula": f.formula.text(), "text": f.text,
                     **_tensor(f.value if f.batched else f.value[0], f.shape, f.batched)} for f in md.forward],
        "adjoints": [adjoint(a) for a in md.adjoints],
        "gradients": {g.name: adjoint(g) for g in md.gradients},
    }


def grad_dict(d: Derivation) -> dict[str, Any]:
    """The ``explain grad --format json`` object: expr, value, gradients, steps."""
    from .mathprint import TextMath

    writer = StepWriter(d, TextMath(precision=17))
    steps: list[dict[str, Any]] = []
    for s in d.forward:
        steps.append({"kind": "forward", "target": s.name, "formula": str(s.expr), "value": _number(s.value)})
    for s in shown_edges(d):
        steps.append({"kind": "local", "target": f"d{s.dst}/d{s.src}", "formula": str(s.expr), "value": _number(s.value)})
    for name in shown_nodes(d):
        eq = writer.adjoint(d.adjoints[name])
        steps.append({"kind": "adjoint", "target": f"d{d.loss}/d{name}", "formula": eq.rhs[0] if eq.rhs else "",
                      "value": _number(d.grad(name))})
    return {
        "expr": d.graph.title,
        "value": _number(d.loss_value),
        "gradients": {
            name: {"value": _number(gr.value), "expr": str(expr)}
            for (name, gr), expr in zip(d.gradients.items(), closed_forms(d))
        },
        "steps": steps,
    }


#: Seconds for SymPy to tidy the closed forms; past it the stages are substituted as written.
CLOSED_FORM_BUDGET = 1.0


def closed_forms(d: Derivation) -> list[Any]:
    """The gradients written in the original variables (stages substituted back), in order.

    ``subs`` lets SymPy evaluate as it goes, which for a Max over ``log(x)**100``
    expands a polynomial for minutes (found by benchmarks/fuzz.py); past a short
    budget the substitution is redone without evaluation, the same formula untidied.
    """
    import sympy as sp

    from ..budget import OutOfTime, within

    def substitute() -> list[Any]:
        forms = []
        for gradient in d.gradients.values():
            expr = gradient.expr
            for node in reversed(d.graph.stages):
                expr = expr.subs(node.symbol, node.expr)
            forms.append(expr)
        return forms

    def as_written() -> list[Any]:
        # Each stage in the leaves' terms once, in forward order, then one pass over each
        # gradient: linear in the formulas' size (stage by stage it was quadratic, seconds
        # for 40 nested max).
        with sp.evaluate(False):
            written: dict[Any, Any] = {}
            for node in d.graph.stages:
                written[node.symbol] = node.expr.xreplace(written)
            return [gradient.expr.xreplace(written) for gradient in d.gradients.values()]

    try:
        return within(CLOSED_FORM_BUDGET, substitute)
    except OutOfTime:
        return as_written()


def dumps(obj: dict[str, Any]) -> str:
    """Indented JSON for people; compact when it is large (a big network), for programs."""
    compact = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    if len(compact) > 1_000_000:
        return compact
    return json.dumps(obj, indent=2, ensure_ascii=False)
