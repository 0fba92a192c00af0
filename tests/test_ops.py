"""One row per operation (explain.functions.OPS): its derivative and its three numeric versions agree.

Independent references: SymPy's own differentiation of the closed form (for
explain's functions) or of SymPy's function (for SymPy's), and hand values
(σ(0) = 1/2, softplus(0) = ln 2, leaky_relu(−2, 0.1) = −0.2).  NumPy, PyTorch
and mpmath versions are three separate implementations of each row: they must
give the same number at points on both sides of every kink.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp

from explain.functions import OPS, USER_FUNCTIONS, mpmath_functions, numpy_functions
from explain.render.mathprint import LatexMath, TextMath, TypstMath

z, a = sp.symbols("z a", real=True)
POINTS = (-2.5, -0.3, 0.7, 1.9)  # both sides of every kink (at 0)
SLOPE = 0.1
POSITIVE = {"log", "sqrt", "log_sigmoid"}  # defined (or tested) for z > 0 only


def _points(op):
    return tuple(abs(x) for x in POINTS) if op.name in POSITIVE else POINTS


def _args(op):
    return (z,) if op.nargs == 1 else (z, a)


def _values(op, x):
    return (x,) if op.nargs == 1 else (x, SLOPE) if op.name.startswith("leaky") else (x, 0.4)


def _reference(op, i):
    """∂op/∂(argument i) by SymPy, from the closed form when the function is explain's own."""
    f = op.sympy(*_args(op))
    if op.own and hasattr(f, "closed_form"):
        return sp.diff(f.closed_form(), _args(op)[i])
    return sp.diff(f, _args(op)[i])


def _agree(rule, reference, op) -> bool:
    subs = [dict(zip(_args(op), _values(op, x))) for x in _points(op)]
    return all(math.isclose(float(rule.subs(s).evalf()), float(reference.subs(s).evalf()), rel_tol=1e-12, abs_tol=1e-15)
               for s in subs)


@pytest.mark.parametrize("name", [n for n, op in OPS.items() if op.derivative is not None])
def test_each_rule_is_the_derivative(name: str) -> None:
    op = OPS[name]
    rules = op.derivative(*_args(op))
    assert len(rules) == op.nargs
    for i, rule in enumerate(rules):
        assert _agree(rule, _reference(op, i), op), (name, i, rule)
        if op.own:  # explain's own functions differentiate by their row
            assert sp.diff(op.sympy(*_args(op)), _args(op)[i]) == rule


def test_a_wrong_rule_is_caught() -> None:
    op = OPS["sigmoid"]
    assert not _agree(op.sympy(z) * (1 + op.sympy(z)), _reference(op, 0), op)  # σ(1 + σ): a sign slip


@pytest.mark.parametrize("name", sorted(OPS))
def test_numpy_torch_and_mpmath_give_the_same_numbers(name: str) -> None:
    torch = pytest.importorskip("torch")
    op = OPS[name]
    implementation = op.torch(torch)
    for x in (*_points(op), *([] if op.name in POSITIVE else [0.0])):
        args = _values(op, x)
        expected = float(op.numpy(*args))
        got = implementation(*(torch.tensor(v, dtype=torch.float64) for v in args))
        assert float(got) == pytest.approx(expected, rel=1e-14, abs=1e-300), (name, x)
        if op.mpmath is not None:
            assert float(op.mpmath(*args)) == pytest.approx(expected, rel=1e-14, abs=1e-300), (name, x)


def test_hand_values() -> None:
    np_ = numpy_functions()
    mp = mpmath_functions()
    assert np_["sigmoid"](0.0) == 0.5 and float(mp["sigmoid"](0)) == 0.5
    assert np_["softplus"](0.0) == pytest.approx(math.log(2), rel=1e-15)
    assert np_["leaky_relu"](-2.0, 0.1) == pytest.approx(-0.2) and np_["relu"](-2.0) == 0.0
    assert np_["step"](0.0) == 0.0  # ReLU's derivative at its kink is 0, as in PyTorch


def test_every_user_function_has_a_row_and_every_row_a_sympy_name() -> None:
    for user, (cls, nargs) in USER_FUNCTIONS.items():
        op = next(o for o in OPS.values() if o.user == user)
        assert op.sympy is cls and op.nargs == nargs
        assert type(cls(*_args(op))).__name__ == op.name or cls in (sp.exp, sp.sqrt)  # exp(z), sqrt(z) print as Pow


def test_display_names_come_from_the_table() -> None:
    x = sp.Symbol("x", real=True)
    assert LatexMath().expr(OPS["sigmoid"].sympy(x)) == r"\sigma\left(x\right)"
    assert TypstMath().expr(OPS["relu"].sympy(x)) == "\"ReLU\"(x)"  # a name Typst does not know is quoted
    assert TextMath().expr(sp.Abs(x)) == "abs(x)"
    assert TypstMath().expr(sp.log(x)) == "ln(x)"
