"""Staging a single expression: one node per operation, as the user wrote it.

``explain grad "sigmoid(w*x + b)"`` has no stages written by the user, so the
expression is cut into the operations of the user's own expression tree, in
evaluation order, with every operand where the user put it::

    mul1 = w·x
    add1 = mul1 + b
    f    = sigmoid(add1)

The tree is the one Python's parser reads from the text (through the safe
walker of :mod:`explain.parse`), not SymPy's canonical form, which would
distribute ``-(a + b)`` into ``-a - b`` and sort ``w*x + b`` into ``b + w*x``:

- ``a - b`` is one subtraction (``sub1 = a - b``), ``-a`` a negation node
  (``neg1 = -a``, the ×(−1) gate of CS231n), ``a/b`` one division (``div1``).
- A chain of ``+`` and ``-`` written without parentheses, ``w0*x0 + w1*x1 + w2``,
  is one sum node with one input per term, as courses draw it (CS231n's
  ``dot = w0*x0 + w1*x1 + w2``); the parser's left-nesting ``(a + b) + c`` is a
  reading artefact, not the user's grouping.  Parentheses the user writes,
  ``(a + b) + c``, are kept: two additions.
- A part without variables (``1/2``, ``2*pi``) is a number, not an operation.
- The same operation on the same operands, written twice, is one node used twice.

Each node's expression is an ordinary small SymPy expression of symbols and
numbers (sums and products are :mod:`explain.written`'s order-keeping ``Add`` and
``Mul``), so local derivatives, compiled code and PyTorch treat it as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Union

import sympy as sp

from .errors import ExplainError
from .functions import USER_FUNCTIONS, sigmoid, stable_form
from .parse import _Builder, _SymbolicBuilder, _walk, evaluate_value, is_valid_name, parse_expression
from .problem import Problem, Stage
from .written import written_add, written_mul

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


@dataclass(frozen=True)
class _Op:
    """One operation of the written tree: ``op`` is "sum", "*", "/", "**", "neg" or a function name."""

    op: str
    args: tuple[_Tree, ...]
    signs: tuple[int, ...] = ()  # for "sum": +1 or -1 per term, as written
    grouped: bool = False  # written in parentheses


#: A subtree: an operation, or a SymPy leaf (a symbol, or a number for a part without variables).
_Tree = Union[_Op, sp.Expr]


class _TreeBuilder(_SymbolicBuilder):
    """Builds the written tree; parts without variables are folded to numbers by SymPy."""

    def binary(self, op: str, left: Any, right: Any) -> Any:
        if _constant(left) and _constant(right):
            return super().binary(op, left, right)
        if op in "+-":
            sign = 1 if op == "+" else -1
            if isinstance(left, _Op) and left.op == "sum" and not left.grouped:
                return _Op("sum", (*left.args, right), (*left.signs, sign))
            return _Op("sum", (left, right), (1, sign))
        if op == "/" and right == 0:
            raise ZeroDivisionError
        return _Op(op, (left, right))

    def chain(self, terms: list[tuple[str, Any]]) -> Any:
        # Operation by operation (not the symbolic builder's one-Add shortcut): binary()
        # keeps the written order and the user's parentheses.
        return _Builder.chain(self, terms)

    def negate(self, operand: Any) -> Any:
        return super().negate(operand) if _constant(operand) else _Op("neg", (operand,))

    def grouped(self, operand: Any) -> Any:
        return _Op(operand.op, operand.args, operand.signs, True) if isinstance(operand, _Op) else operand

    def call(self, func: str, args: list[Any]) -> Any:
        if all(_constant(a) for a in args):
            return super().call(func, args)
        return _Op(func, tuple(args))


def _constant(tree: _Tree) -> bool:
    return not isinstance(tree, _Op) and not tree.free_symbols


def _node_expr(op: _Op, args: list[sp.Expr]) -> tuple[str, sp.Expr]:
    """The operation's short name and its expression over its operands' symbols."""
    if op.op == "sum":
        terms = [a if sign > 0 else -a for a, sign in zip(args, op.signs)]
        return ("sub" if all(s < 0 for s in op.signs[1:]) else "add"), written_add(*terms)
    if op.op == "*":
        return "mul", written_mul(*args)
    if op.op == "/":
        reciprocal = sp.Pow(args[1], -1, evaluate=False)
        return "div", reciprocal if args[0] == 1 else sp.Mul(args[0], reciprocal, evaluate=False)
    if op.op == "**":
        return "pow", sp.Pow(args[0], args[1], evaluate=False)
    if op.op == "neg":
        return "neg", -args[0]
    return op.op, USER_FUNCTIONS[op.op][0](*args, evaluate=False)


def _stable_log(op: _Op, visit: Any) -> sp.Expr | None:
    """``log(sigmoid(z))`` or ``log(1 - sigmoid(z))`` as one node, or None.

    They stay one operation, computed stably (:func:`explain.functions.stable_form`):
    cut in two, σ(z) underflows to 0 below z ≈ −745 and its log is −inf.
    """
    if op.op != "log" or not isinstance(op.args[0], _Op):
        return None
    inner = op.args[0]
    if inner.op == "sigmoid":
        expr = sp.log(sigmoid(visit(inner.args[0])), evaluate=False)
    elif (inner.op == "sum" and inner.signs == (1, -1) and inner.args[0] == 1
          and isinstance(inner.args[1], _Op) and inner.args[1].op == "sigmoid"):
        expr = sp.log(written_add(sp.S.One, -sigmoid(visit(inner.args[1].args[0]))), evaluate=False)
    else:
        return None
    return expr if stable_form(expr) is not None else None


def stage_text(text: str, where: str = EXPRESSION_SOURCE) -> list[Stage]:
    """Cut the expression ``text`` into one stage per written operation; the last is ``f``.

    ``text`` must already have been accepted by :func:`explain.parse.parse_expression`.
    """
    tree = _walk(text, _TreeBuilder(_AnyName()), where)
    stages: list[Stage] = []
    counters: dict[str, int] = {}
    seen: dict[sp.Expr, sp.Symbol] = {}

    def visit(t: _Tree) -> sp.Expr:
        if not isinstance(t, _Op):
            return t
        stable = _stable_log(t, visit)
        if stable is not None:
            name, expr = "log", stable
        else:
            name, expr = _node_expr(t, [visit(a) for a in t.args])  # operands first, left to right
        if expr not in seen:  # the same operation written twice is one node used twice
            counters[name] = counters.get(name, 0) + 1
            node = f"{name}{counters[name]}"
            stages.append(Stage(node, expr, str(expr)))
            seen[expr] = sp.Symbol(node, real=True)
        return seen[expr]

    top = visit(tree)
    if stages and top == sp.Symbol(stages[-1].name, real=True):
        last = stages.pop()
        stages.append(Stage(RESULT, last.expr, last.text))
    else:  # the expression is a bare variable
        stages.append(Stage(RESULT, top, str(top)))
    return stages


def expression_problem(
    text: str, wrt: list[str] | None = None, at: Mapping[str, Any] | None = None, where: str = EXPRESSION_SOURCE,
) -> Problem:
    """A Problem for one expression: ``wrt`` are its parameters, ``at`` gives every value."""
    # The names the user wrote, even those SymPy cancels (a - a): their gradient is 0.
    written = _AnyName()
    parse_expression(text, written, where)  # validates the text; the stages are cut from it as written
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
    stages = stage_text(text, where)
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
