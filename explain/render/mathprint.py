"""Math in three output languages: plain text, LaTeX and Typst.

Each language is a SymPy printer subclass (one ``_print_X`` method per type), the way
SymPy itself adds an output language.  What every renderer needs beyond printing an
expression (a partial derivative, a product of chain-rule factors, an equation with
several lines) is the small :class:`MathStyle` interface, written once here.

The "numbers substituted" line of a step (handcalcs style) is printed, not computed:
SymPy evaluates on construction, so ``subs`` would fold ``0.2*0.5`` into ``0.1``.  The
printer instead prints each Symbol found in ``numbers`` as its value, and decides from
the expression around it whether a negative number needs parentheses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np
import sympy as sp
from sympy.core.mul import _keep_coeff
from sympy.printing.conventions import split_super_sub
from sympy.printing.latex import LatexPrinter, greek_letters_set, tex_greek_dictionary
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.printer import Printer
from sympy.printing.str import StrPrinter

from ..functions import display_names
from ..written import WrittenAdd

_TEXT_FUNCTIONS = display_names("text")  # also the graph's labels (explain.render.dot prints with TextMath)
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
_HALVES = (sp.S.Half, -sp.S.Half)


def _as_expr(e: Any) -> sp.Basic:
    """A SymPy object, or a Python number made into one; text is refused (never parsed)."""
    if isinstance(e, sp.Basic):
        return e
    if isinstance(e, (int, float, np.number)) and not isinstance(e, bool):
        return sp.Integer(int(e)) if isinstance(e, (int, np.integer)) else sp.Float(float(e))
    raise TypeError(f"cannot print {type(e).__name__} as math")


class MathStyle:
    """The interface shared by all math printers; mixed in before a SymPy printer."""

    _settings_for_printer: dict[str, Any] = {}
    _mul: str = "·"            # separator inside printed products
    _product_sep: str = " · "  # separator for product() of chain-rule factors
    _wrap_scientific_base = True  # LaTeX's printer already wraps a base holding '^'
    _partial = "∂{of}/∂{wrt}"  # a local partial: the other inputs held fixed
    _total = "d{of}/d{wrt}"    # a total derivative: the loss's gradient, an adjoint
    _sigma, _mean = "Σᵢ ", "(1/n) "
    _aligned = ("", "\n", "")  # start, line break, end of a multi-line equation
    _scientific, _nan, _inf = "{m}e{e:+03d}", "nan", "inf"

    def __init__(self, precision: int = 4, sample_symbols: frozenset[str] = frozenset()) -> None:
        super().__init__(dict(self._settings_for_printer))  # type: ignore[call-arg]
        if precision < 1:
            raise ValueError(f"precision must be at least 1, not {precision}")
        self.precision = precision
        self.sample_symbols = frozenset(sample_symbols)
        self._numbers: dict[str, Any] = {}
        self._stack: list[Any] = []

    def _as_ordered_terms(self, expr: Any, order: str | None = None) -> list[Any]:
        """A written sum's own order; else SymPy's, with subtracted terms last: y_pred - y, not -y + y_pred."""
        if isinstance(expr, WrittenAdd):
            return list(expr.args)
        terms = super()._as_ordered_terms(expr, order=order)  # type: ignore[misc]
        return sorted(terms, key=lambda t: bool(t.could_extract_minus_sign()))

    def _print_WrittenMul(self, expr: sp.Mul, **kwargs: Any) -> str:
        """A written product, factors in the user's order: x·w stays x·w."""
        prec = PRECEDENCE["Mul"]
        return self._mul.join(self.parenthesize(a, prec) for a in expr.args)  # type: ignore[attr-defined]

    # -- the public interface -------------------------------------------------------
    def expr(self, e: sp.Expr, numbers: Mapping[sp.Symbol | str, Any] | None = None) -> str:
        """Print ``e``; Symbols with a scalar value in ``numbers`` print as that value.

        Values that are not scalars (a data column) are ignored: such a symbol keeps
        its name, with the sample index when it is a sample symbol.
        """
        self._numbers = self._scalars(numbers)
        self._stack = []
        try:
            return str(self.doprint(_as_expr(e)))  # type: ignore[attr-defined]
        finally:
            self._numbers = {}

    def _scalars(self, numbers: Mapping[sp.Symbol | str, Any] | None) -> dict[str, Any]:
        """The scalar values of ``numbers`` by name, kept while the same mapping comes back.

        A derivation prints every step with one mapping of all its values; rebuilding
        it for each of a thousand steps made a product of 200 factors take over
        10 s (found by benchmarks/fuzz.py).
        """
        if not numbers:
            return {}
        cache = self.__dict__.setdefault("_scalars_of", {})
        cached = cache.get(id(numbers))
        if cached is not None and cached[0] is numbers and len(cached[1]) == len(numbers):
            return cached[2]
        scalars = {getattr(k, "name", str(k)): v for k, v in numbers.items() if np.ndim(v) == 0}
        if len(cache) > 16:
            cache.clear()
        cache[id(numbers)] = (numbers, dict(numbers), scalars)  # the mapping is kept: its id is not reused
        return scalars

    def factor(self, e: sp.Expr, numbers: Mapping[sp.Symbol | str, Any] | None = None) -> str:
        """Like :meth:`expr`, parenthesised when needed to stand inside a product."""
        s = self.expr(e, numbers)
        return self._paren(s) if _as_expr(e).is_Add or s.startswith("-") else s

    def number(self, x: float) -> str:
        """``precision`` significant digits; scientific only outside 1e-4 <= |x| < 1e6."""
        x = float(x)
        if not math.isfinite(x):
            return self._nan if math.isnan(x) else ("" if x > 0 else "-") + self._inf
        if x == 0:
            return "0"
        p = self.precision
        while p < 17 and _rounds_to_a_lie(x, p):
            p += 1
        if 1e-4 <= abs(x) < 1e6:
            d = Decimal(repr(x))
            d = d.quantize(Decimal(1).scaleb(d.adjusted() - p + 1), rounding=ROUND_HALF_EVEN)
            s = format(d, "f")
            return s.rstrip("0").rstrip(".") if "." in s else s
        mantissa, exponent = f"{x:.{p - 1}e}".split("e")
        if "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        return self._scientific.format(m=mantissa, e=int(exponent))

    def name(self, n: str) -> str:
        """A node name as a symbol (with the sample index when it is a sample symbol)."""
        return self._symbol(n, n in self.sample_symbols)

    def partial(self, of: str, wrt: str) -> str:
        """The partial derivative ∂of/∂wrt."""
        return self._partial.format(of=self.name(of), wrt=self.name(wrt))

    def total(self, of: str, wrt: str) -> str:
        """The total derivative d of/d wrt (an adjoint, or a gradient of the loss).

        Written with d, not ∂, so that it is never confused with the local partial
        on an edge: for J = mean(l) + λ/2·w², dJ/dw = Σᵢ(…) + ∂J/∂w.
        """
        return self._total.format(of=self.name(of), wrt=self.name(wrt))

    def product(self, factors: list[str]) -> str:
        """Join already printed factors (see :meth:`factor`)."""
        return self._product_sep.join(factors) if factors else "1"

    def sum(self, terms: list[str]) -> str:
        """Join printed terms; a term's leading minus becomes the operator (a - b)."""
        out = terms[0] if terms else "0"
        for t in terms[1:]:
            out += f" - {t[1:].lstrip()}" if t.startswith("-") else f" + {t}"
        return out

    def sample_sum(self, body: str, mean: bool) -> str:
        """Σ over samples i of ``body``; with ``mean`` divided by n."""
        return (self._mean if mean else "") + self._sigma + self._paren(body)

    def equation(self, lhs: str, rhs_lines: list[str]) -> str:
        """``lhs = line₁ = line₂ …`` one right-hand side per line, aligned at '='."""
        if len(rhs_lines) <= 1:
            return f"{lhs} = {rhs_lines[0]}" if rhs_lines else lhs
        start, newline, end = self._aligned
        return start + newline.join(f"{lhs if i == 0 else ''} &= {r}" for i, r in enumerate(rhs_lines)) + end

    # -- hooks each language fills in -------------------------------------------------
    def _paren(self, s: str) -> str:
        return f"({s})"

    def _symbol(self, name: str, sample: bool) -> str:
        """Name, subscripts (trailing digits and '_' parts) and superscripts ('__')."""
        base, sups, subs = split_super_sub(name)
        subs = subs + ["i"] if sample else subs
        return self._word(base) + self._script("_", subs) + self._script("^", sups)

    def _word(self, w: str) -> str:
        return w

    def _script(self, mark: str, parts: list[str]) -> str:
        return mark + "{" + ",".join(map(self._word, parts)) + "}" if parts else ""

    # -- printing shared by all languages ---------------------------------------------
    def _print(self, expr: Any, **kwargs: Any) -> str:
        """Dispatch as SymPy does, keeping the chain of parents for context decisions."""
        self._stack.append(expr)
        try:
            return super()._print(expr, **kwargs)  # type: ignore[misc]
        finally:
            self._stack.pop()

    def _print_Symbol(self, expr: sp.Symbol, **kwargs: Any) -> str:
        value = self._numbers.get(expr.name)
        if value is None:
            return self._symbol(expr.name, expr.name in self.sample_symbols)
        s = self.number(value)
        return self._paren(s) if self._number_needs_parens(float(value), s) else s

    def _print_Float(self, expr: sp.Float, **kwargs: Any) -> str:
        return self.number(float(expr))

    def _print_SampleSum(self, expr: Any, **kwargs: Any) -> str:
        return self._sigma + self._print(expr.args[0])

    def _print_SampleMean(self, expr: Any, **kwargs: Any) -> str:
        return self._mean + self._sigma + self._print(expr.args[0])

    def _number_needs_parens(self, value: float, printed: str) -> bool:
        """A substituted number needs parentheses where its parent would misread it.

        Negative: inside a product, a power, or a sum where it is not the first term
        (``0.1·(-0.5)``, ``(-0.5)²``, ``a + (-0.5)``).  Scientific: as base or exponent.
        """
        if len(self._stack) < 2:
            return False
        me, parent = self._stack[-1], self._stack[-2]
        negative = value < 0 or printed.startswith("-")
        scientific = "e" in printed or "10^" in printed
        if parent.is_Pow:  # an exponent is delimited by the power's own printing
            return (me == parent.base and parent.exp not in _HALVES
                    and (negative or (scientific and self._wrap_scientific_base)))
        if not negative:
            return False
        if parent.is_Mul:
            return True
        if parent.is_Add:
            return self._as_ordered_terms(parent)[0] != me  # type: ignore[attr-defined]
        return False


def _rounds_to_a_lie(x: float, digits: int) -> bool:
    """Whether ``x`` shown with ``digits`` significant digits reads as a whole number it is not.

    A saturated sigmoid a = 0.99999989 shown as 1 makes σ'(z) = a·(1 − a) read
    1·(1 − 1) = 0 next to a value that is not 0, and 1/(1 − a) a division by zero.
    Differences at the level of float rounding (14.000000000000002) are not lies.
    """
    mantissa_exponent = f"{x:.{digits - 1}e}"
    rounded = float(mantissa_exponent)
    # Only where the digits shown reach below the units (123456.7 shown as 123500 is honest).
    reaches_fraction = int(mantissa_exponent.split("e")[1]) - (digits - 1) < 0
    return reaches_fraction and rounded == round(rounded) and abs(x - rounded) > 1e-12 * max(1.0, abs(x))


def _is_group(s: str) -> bool:
    """Whether ``s`` is one parenthesised group: '(a + b)' but not '(a) + (b)'."""
    depth = 0
    for i, c in enumerate(s):
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth == 0 and i < len(s) - 1:
            return False
    return s.startswith("(") and s.endswith(")")


class _InfixMath(MathStyle):
    """Sums, products and powers for the two languages that write fractions with '/'."""

    _frac_bare = False  # Typst strips the parentheses around fraction operands

    def parenthesize(self, item: Any, level: int, strict: bool = False) -> str:
        s = self._print(item)
        p = precedence(item)
        return self._paren(s) if p < level or (not strict and p <= level) else s

    def _print_Add(self, expr: sp.Add, order: str | None = None) -> str:
        return self.sum([self._print(t) for t in self._as_ordered_terms(expr, order=order)])  # type: ignore[attr-defined]

    def _print_Mul(self, expr: sp.Expr) -> str:
        prec = PRECEDENCE["Mul"]
        coeff, rest = expr.as_coeff_Mul()
        sign = ""
        if coeff.is_negative:
            expr, sign = _keep_coeff(-coeff, rest), "-"
        num: list[sp.Expr] = []
        den: list[sp.Expr] = []
        for f in expr.as_ordered_factors():
            if f.is_Pow and f.exp.could_extract_minus_sign():
                den.append(f.base if f.exp is sp.S.NegativeOne else sp.Pow(f.base, -f.exp, evaluate=False))
            elif f.is_Rational and not f.is_Integer:
                if f.p != 1:
                    num.append(sp.Integer(f.p))
                den.append(sp.Integer(f.q))
            else:
                num.append(f)

        def side(items: list[sp.Expr], alone_bare: bool) -> str:
            if len(items) == 1 and alone_bare:
                s = self._print(items[0])
                return s[1:-1] if _is_group(s) else s
            return self._mul.join(self.parenthesize(a, prec) for a in items) or "1"

        if not den:
            return sign + side(num, False)
        return sign + self._frac(side(num, self._frac_bare), side(den, self._frac_bare), len(den))

    def _print_Pow(self, expr: sp.Pow, **kwargs: Any) -> str:
        if expr.exp is sp.S.Half:
            return f"{self._fname('sqrt')}({self._print(expr.base)})"
        if expr.exp.could_extract_minus_sign():
            return self._print_Mul(expr)
        base = self.parenthesize(expr.base, PRECEDENCE["Pow"])
        return base + self._power(expr.exp, self._print(expr.exp))

    def _print_Function(self, expr: Any, **kwargs: Any) -> str:
        args = ", ".join(self._print(a) for a in expr.args)
        return f"{self._fname(expr.func.__name__)}({args})"

    _print_MinMaxBase = _print_Function

    def _print_Heaviside(self, expr: Any, **kwargs: Any) -> str:
        return f"{self._fname('Heaviside')}({self._print(expr.args[0])})"  # not the H(0) argument

    def _fname(self, name: str) -> str:
        return _TEXT_FUNCTIONS.get(name, name)

    def _frac(self, num: str, den: str, n_den: int) -> str:
        return f"{num}/{den}" if n_den == 1 else f"{num}/({den})"

    def _power(self, exp: sp.Expr, printed: str) -> str:
        if exp.is_Integer and exp > 0:
            return printed.translate(_SUPERSCRIPT)
        bare = re.fullmatch(r"[A-Za-z0-9_.]+", printed) or _is_group(printed)
        return "^" + (printed if bare else f"({printed})")


class TextMath(_InfixMath, StrPrinter):
    """Unicode plain text for terminals: ASCII names and minus, '·' and '²' for clarity."""

    def _print_Exp1(self, expr: Any) -> str:
        return "e"  # StrPrinter says 'E', which students use for the error

    def _symbol(self, name: str, sample: bool) -> str:
        return name + "_i" if sample else name  # as the student wrote it, copy-pastable

    def equation(self, lhs: str, rhs_lines: list[str]) -> str:
        pad = " " * len(lhs)
        return "\n".join(f"{lhs if i == 0 else pad} = {r}" for i, r in enumerate(rhs_lines)) or lhs


_LATEX_ESCAPES = {c: "\\" + c for c in "_{}$&#%"} | {"\\": r"\backslash{}", "^": r"\hat{}", "~": r"\sim{}"}


class LatexMath(MathStyle, LatexPrinter):
    """LaTeX math (also for Markdown's $…$): SymPy's layout, students' names upright."""

    _settings_for_printer = {"mul_symbol": "dot", "ln_notation": True}
    _mul = r" \cdot "
    _product_sep = r" \cdot "
    _wrap_scientific_base = False
    _partial = r"\frac{{\partial {of}}}{{\partial {wrt}}}"
    _total = r"\frac{{\mathrm{{d}} {of}}}{{\mathrm{{d}} {wrt}}}"
    _sigma, _mean = r"\sum_{i} ", r"\frac{1}{n} "
    _aligned = ("\\begin{aligned}\n", " \\\\\n", "\n\\end{aligned}")
    _scientific, _nan, _inf = r"{m} \cdot 10^{{{e}}}", r"\mathrm{NaN}", r"\infty"
    _FUNCTIONS = display_names("latex")  # explain's own functions; SymPy's print as SymPy prints them

    def _paren(self, s: str) -> str:
        return rf"\left({s}\right)"

    def _word(self, w: str) -> str:
        """A name part: Greek letters as commands, words upright, single letters italic."""
        if w in tex_greek_dictionary:
            return tex_greek_dictionary[w]
        if w in greek_letters_set:
            return "\\" + w
        w = "".join(_LATEX_ESCAPES.get(c, c) for c in w)  # names are identifiers; be safe anyway
        return rf"\mathrm{{{w}}}" if len(w) > 1 and w.isalpha() else w

    def _print_Function(self, expr: Any, exp: str | None = None) -> str:
        cmd = self._FUNCTIONS.get(expr.func.__name__)
        if cmd is None:
            return super()._print_Function(expr, exp)  # type: ignore[misc]
        s = cmd + self._paren(", ".join(self._print(a) for a in expr.args))
        return f"{s}^{{{exp}}}" if exp is not None else s


_TYPST_GREEK = {g: g for g in greek_letters_set} | {g.capitalize(): g.capitalize() for g in greek_letters_set}
_TYPST_GREEK |= {"lamda": "lambda", "Lamda": "Lambda"}
_TYPST_OPS = {"sin", "cos", "tan", "sinh", "cosh", "tanh", "exp", "ln", "max", "min", "sqrt", "abs"}
_TYPST_FUNCTIONS = display_names("typst")


def typst_string(text: str) -> str:
    """``text`` as a Typst string literal: whatever it holds, it stays text, never code."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class TypstMath(_InfixMath, Printer):
    """Typst math-mode content (what goes between ``$ … $``).

    Built on the bare :class:`Printer` so that only types handled here print as math;
    anything else becomes a quoted string, so no output can turn into Typst code.
    """

    _default_settings = {"order": None}
    _mul = " dot "
    _product_sep = " dot "
    _frac_bare = True
    _partial = "(partial {of})/(partial {wrt})"
    _total = "(dif {of})/(dif {wrt})"
    _sigma, _mean = "sum_i ", "1/n "
    _aligned = ("", " \\\n", "")
    _scientific, _nan, _inf = "{m} dot 10^({e})", '"NaN"', "infinity"

    def emptyPrinter(self, expr: Any) -> str:  # noqa: N802 - SymPy's name
        return typst_string(str(expr))

    def _word(self, w: str) -> str:
        """Greek names and single letters are math; every other word is a quoted string."""
        if w in _TYPST_GREEK:
            return _TYPST_GREEK[w]
        return w if w.isdigit() or (len(w) == 1 and w.isascii() and w.isalpha()) else typst_string(w)

    def _script(self, mark: str, parts: list[str]) -> str:
        s = ",".join(map(self._word, parts))
        return "" if not parts else mark + (s if len(s) == 1 else f"({s})")

    def _print_Integer(self, expr: sp.Integer) -> str:
        return str(expr.p)

    def _print_Rational(self, expr: sp.Rational) -> str:
        return f"{expr.p}/{expr.q}"

    def _print_NumberSymbol(self, expr: Any) -> str:  # e, pi (and rarer constants, quoted)
        return {"E": "e", "pi": "pi"}.get(str(expr)) or typst_string(str(expr))

    def _print_Number(self, expr: Any) -> str:  # what Integer, Rational, Float leave: ±oo, nan
        return self.number(float(expr))

    def _fname(self, name: str) -> str:
        name = _TYPST_FUNCTIONS.get(name, name)
        return name if name in _TYPST_OPS or name == "sigma" else typst_string(name)

    def _frac(self, num: str, den: str, n_den: int) -> str:
        return f"({num})/({den})"

    def _power(self, exp: sp.Expr, printed: str) -> str:
        bare = len(printed) == 1 or printed.isdigit() or _is_group(printed)
        return "^" + (printed if bare else f"({printed})")


_STYLES: dict[str, type[MathStyle]] = {"text": TextMath, "markdown": LatexMath,
                                       "latex": LatexMath, "typst": TypstMath}


def math_style(fmt: str, precision: int = 4, sample_symbols: frozenset[str] = frozenset()) -> MathStyle:
    """The math printer for an output format (Markdown math is LaTeX)."""
    try:
        cls = _STYLES[fmt]
    except KeyError:
        raise ValueError(f"no math style for format {fmt!r}; choose one of {sorted(_STYLES)}") from None
    return cls(precision, frozenset(sample_symbols))
