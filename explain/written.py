"""Sums and products that keep the operands in the order the user wrote them.

SymPy stores ``w*x + b`` with its operands in a canonical order, and its printers
sort them again, so the student's ``w*x + b`` would be shown as ``b + w·x`` and
``x*w`` as ``w·x``.  :class:`WrittenAdd` and :class:`WrittenMul` are an ``Add``
and a ``Mul`` in every respect that computes (derivatives, substitution,
compiled code, PyTorch), built unevaluated with their operands as written; the
one thing they add is that the printers (:mod:`explain.render.mathprint`, and
``str`` for JSON) show the operands in that order.

Anything SymPy rebuilds from them (``subs``, ``diff``) is evaluated as usual.
"""

from __future__ import annotations

from typing import Any

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, precedence


class WrittenAdd(sp.Add):
    """``a + b - c`` with its terms in the written order (a subtracted term is ``-c``)."""

    def _sympystr(self, printer: Any) -> str:
        # StrPrinter (str(), the JSON output) and TextMath both honour order="none".
        return str(printer._print_Add(self, order="none"))


class WrittenMul(sp.Mul):
    """``a*b`` with its factors in the written order."""

    def _sympystr(self, printer: Any) -> str:
        own = getattr(printer, "_print_WrittenMul", None)  # the math printers' own layout
        if own is not None:
            return str(own(self))
        level = PRECEDENCE["Mul"]
        return "*".join(f"({printer._print(a)})" if precedence(a) <= level else printer._print(a) for a in self.args)


def written_add(*terms: sp.Expr) -> sp.Expr:
    return WrittenAdd(*terms, evaluate=False)


def written_mul(*factors: sp.Expr) -> sp.Expr:
    return WrittenMul(*factors, evaluate=False)
