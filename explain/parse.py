"""A safe parser for the expressions users write.

Problem files and the command line hold text written by anyone.  That text is
read with :func:`ast.parse` and then walked node by node against a whitelist:
numbers, names, ``+ - * / **``, unary minus, parentheses and calls of the
functions of :mod:`explain.functions`.  Each accepted node is *built* directly
(as a SymPy object, or as a NumPy value for initial values and data columns), so
no user text ever reaches ``eval``, ``exec``, ``sympify`` or ``parse_expr``.
"""

from __future__ import annotations

import ast
import difflib
import math
import warnings
from collections.abc import Callable, Collection, Mapping
from typing import Any, Generic, TypeVar

import numpy as np
import sympy as sp

from .errors import ExplainError
from .functions import CONSTANTS, REDUCTIONS, USER_FUNCTIONS
from .i18n import message

# Size limits of one expression (docs/limits.md).  A chain of ``+``/``-`` or of
# ``*``/``/`` counts as one level of nesting, whatever its length, so that a
# long sum is limited by MAX_LENGTH and MAX_NODES rather than by MAX_DEPTH.
MAX_LENGTH = 5000
MAX_NODES = 3000
MAX_DEPTH = 60
MAX_EXPONENT = 100
# At most this many values in one data column or generated list (80 MB of floats).
MAX_VALUES = 10_000_000
NAME_PATTERN = "[A-Za-z][A-Za-z0-9_]*"

T = TypeVar("T")

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_CHAINS = {ast.Add: "sum", ast.Sub: "sum", ast.Mult: "product", ast.Div: "product"}


class _Builder(Generic[T]):
    """What to make of each accepted piece of syntax."""

    def number(self, value: float | int) -> T:
        raise NotImplementedError

    def name(self, name: str) -> T | None:
        raise NotImplementedError

    def binary(self, op: str, left: T, right: T) -> T:
        raise NotImplementedError

    def negate(self, operand: T) -> T:
        raise NotImplementedError

    def grouped(self, operand: T) -> T:
        """The left operand of a binary operator, written in parentheses: ``(a + b) + c``.

        The AST drops parentheses; a builder that keeps the user's grouping
        (:mod:`explain.stage`) needs to know where they were.
        """
        return operand

    def chain(self, terms: list[tuple[str, T]]) -> T:
        """``t0 op1 t1 op2 t2 …`` for a chain of + and - (or * and /), left to right."""
        result = terms[0][1]
        for op, term in terms[1:]:
            result = self.binary(op, result, term)
        return result

    def call(self, func: str, args: list[T]) -> T:
        raise NotImplementedError

    def matmul(self, left: T, right: T) -> T:
        """``a @ b``: only where values may be vectors or matrices (:mod:`explain.tensors`)."""
        raise ValueError(message("tensor_matmul_scalar"))

    def transpose(self, operand: T) -> T:
        """``a.T``: only where values may be vectors or matrices (:mod:`explain.tensors`)."""
        raise ValueError(message("tensor_transpose_scalar"))

    def function_arity(self, func: str) -> tuple[int, int] | None:
        """(min, max) number of arguments of an allowed function, or None."""
        raise NotImplementedError

    def known_names(self) -> list[str]:
        return []


def is_valid_name(name: str) -> bool:
    """True for the names a problem may define: identifiers, no leading underscore."""
    return (
        name.isidentifier()
        and name.isascii()
        and not name.startswith("_")
        and name not in USER_FUNCTIONS
        and name not in CONSTANTS
        and name not in {"True", "False", "None", "lambda", "i"}
        and not _is_keyword(name)
    )


def invalid_name_reason(name: str) -> str:
    """Why a problem may not define ``name`` (for a name is_valid_name refuses)."""
    reason = "is not a valid name (letters, digits and '_', starting with a letter; not a function or constant name)"
    if name == "e":
        return f"{reason}: {message('parse_euler')}"
    return reason


def _is_keyword(name: str) -> bool:
    import keyword

    return keyword.iskeyword(name)


def _short(text: str, limit: int = 60) -> str:
    """The text as it goes into a message: quoted, and cut when long."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _walk(text: str, builder: _Builder[T], where: str) -> T:
    if not isinstance(text, str):
        raise ExplainError(where, f"expected an expression as text, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExplainError(where, f"expression is too long ({len(text)} characters; at most {MAX_LENGTH})")
    if not text.strip():
        raise ExplainError(where, "expression is empty")
    try:
        with warnings.catch_warnings():
            # "2if x else 1" makes Python's tokenizer warn ("invalid decimal literal") on
            # stderr before the error we report; the user gets our message only.
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExplainError(where, f"not a valid expression: {exc.msg} in {_short(text)}{_syntax_hint(text)}") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExplainError(where, "expression is too deeply nested") from None

    nodes = [0]

    def visit(node: ast.AST, depth: int) -> T:
        if depth > MAX_DEPTH:
            raise ExplainError(where, message("parse_too_deep", limit=MAX_DEPTH))
        nodes[0] += 1
        if nodes[0] > MAX_NODES:
            raise ExplainError(where, message("parse_too_many_nodes", limit=MAX_NODES))
        if isinstance(node, ast.BinOp) and type(node.op) in _CHAINS:
            return visit_chain(node, depth)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ExplainError(where, f"only numbers are allowed as constants, not {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise ExplainError(where, f"number {_short(text)} is not finite")
            if isinstance(value, int) and abs(value) > 10**15:
                raise ExplainError(where, f"integer {value} is too large")
            return builder.number(value)
        if isinstance(node, ast.Name):
            return visit_name(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            op = _BINARY[type(node.op)]
            if op == "**":
                check_exponent(node.right)
            left = visit(node.left, depth + 1)
            # The whole BinOp starts where its left operand does, unless that operand is in parentheses.
            if (node.left.lineno, node.left.col_offset) != (node.lineno, node.col_offset):
                left = builder.grouped(left)
            return builder.binary(op, left, visit(node.right, depth + 1))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = visit(node.operand, depth + 1)
            return builder.negate(operand) if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Call):
            return visit_call(node, depth)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
            left = visit(node.left, depth + 1)
            return builder.matmul(left, visit(node.right, depth + 1))
        if isinstance(node, ast.Attribute) and node.attr == "T":
            # .T (transpose) is the one attribute there is; every other stays refused below.
            return builder.transpose(visit(node.value, depth + 1))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitXor):
            raise ExplainError(where, f"{message('parse_caret')} ({_short(text)})")
        raise ExplainError(where, f"{_describe(node)} is not allowed in an expression ({_short(text)})")

    def visit_chain(node: ast.BinOp, depth: int) -> T:
        # a - b + c is BinOp(BinOp(a, -, b), +, c): walk down the left spine
        # without recursion, then build left to right, so that a sum of
        # thousands of terms neither counts as deep nor overflows the stack.
        # A left operand in parentheses, (a + b) + c, ends the chain: the user grouped it
        # (a node starts where its left operand does, unless that operand is in parentheses).
        level = _CHAINS[type(node.op)]
        spine: list[tuple[str, ast.AST]] = []
        parent: ast.BinOp = node
        while True:
            spine.append((_BINARY[type(parent.op)], parent.right))
            left = parent.left
            starts_with_parent = (left.lineno, left.col_offset) == (parent.lineno, parent.col_offset)
            if isinstance(left, ast.BinOp) and _CHAINS.get(type(left.op)) == level and starts_with_parent:
                parent = left
                continue
            break
        first = visit(left, depth + 1)
        if not starts_with_parent:
            first = builder.grouped(first)
        terms = [("+" if level == "sum" else "*", first)]
        for op, right in reversed(spine):
            nodes[0] += 1
            terms.append((op, visit(right, depth + 1)))
        return builder.chain(terms)

    def visit_name(name: str) -> T:
        if name.startswith("_"):
            raise ExplainError(where, f"names starting with '_' are not allowed: {name!r}")
        if builder.function_arity(name) is not None:
            raise ExplainError(where, f"{name!r} is a function: call it, as in {name}(x)")
        result = builder.name(name)
        if result is None:
            hint = difflib.get_close_matches(name, builder.known_names(), n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ExplainError(where, f"unknown name {name!r}{suggestion}")
        return result

    def visit_call(node: ast.Call, depth: int) -> T:
        if not isinstance(node.func, ast.Name):
            raise ExplainError(where, f"only plain function calls are allowed, not {_describe(node.func)}")
        func = node.func.id
        arity = builder.function_arity(func)
        if arity is None:
            known = [f for f in [*USER_FUNCTIONS, *_NumericBuilder._GENERATORS] if builder.function_arity(f)]
            hint = difflib.get_close_matches(func, known, n=1)
            suggestion = f" ({message('parse_did_you_mean', name=hint[0])})" if hint else ""
            if func == "e":
                suggestion = f" ({message('parse_euler')})"
            raise ExplainError(where, f"unknown function {func!r}{suggestion}")
        if node.keywords:
            raise ExplainError(where, f"keyword arguments are not allowed in {func}(...)")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise ExplainError(where, f"starred arguments are not allowed in {func}(...)")
        low, high = arity
        if not low <= len(node.args) <= high:
            expected = str(low) if low == high else f"{low} to {high}"
            raise ExplainError(where, f"{func}() takes {expected} argument(s), got {len(node.args)}")
        return builder.call(func, [visit(a, depth + 1) for a in node.args])

    def check_exponent(node: ast.AST) -> None:
        # An exponent that is a literal number (possibly negated) is bounded so
        # that 9**9**9 cannot make the process hang or eat memory.
        inner = node.operand if isinstance(node, ast.UnaryOp) else node
        if isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float)):
            if abs(inner.value) > MAX_EXPONENT:
                raise ExplainError(where, f"exponent {inner.value} is too large (at most {MAX_EXPONENT})")

    return visit(tree.body, 0)


def _syntax_hint(text: str) -> str:
    """A likely fix for a syntax error: two operands side by side want a '*'."""
    import re

    if re.search(r"(?:[A-Za-z0-9_.)])\s+[A-Za-z_(]|\d[A-Za-z_]", text):
        return f" ({message('parse_missing_star')})"
    return ""


def _describe(node: ast.AST) -> str:
    names = {
        ast.Attribute: "attribute access",
        ast.Subscript: "subscripting",
        ast.Lambda: "a lambda",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a generator expression",
        ast.DictComp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.Compare: "a comparison",
        ast.BoolOp: "a boolean operator",
        ast.IfExp: "a conditional expression",
        ast.List: "a list",
        ast.Tuple: "a tuple",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.JoinedStr: "an f-string",
        ast.NamedExpr: "an assignment expression",
        ast.Await: "await",
        ast.Starred: "a starred expression",
        ast.Slice: "a slice",
    }
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    if isinstance(node, ast.UnaryOp):
        return f"the unary operator {type(node.op).__name__}"
    return names.get(type(node), type(node).__name__)


class _SymbolicBuilder(_Builder[sp.Expr]):
    def __init__(self, names: Mapping[str, sp.Expr], reducible: Collection[str] = ()) -> None:
        self._names = names
        # Names that sum(...) and mean(...) may reduce over the samples ([cost] only).
        self._reducible = frozenset(reducible)
        # No float forecast of constants is needed: SymPy folds even exp(1e30) in a
        # millisecond, and _in_range refuses it before any further operation (the
        # cos of it, which would run for minutes in mpmath) is built on it.

    def number(self, value: float | int) -> sp.Expr:
        return sp.Integer(value) if isinstance(value, int) else sp.Float(value)

    def name(self, name: str) -> sp.Expr | None:
        if name in CONSTANTS:
            return CONSTANTS[name]
        return self._names.get(name)

    def binary(self, op: str, left: sp.Expr, right: sp.Expr) -> sp.Expr:
        if op == "/" and right == 0:
            raise ZeroDivisionError
        if op == "**" and right.is_Number and abs(right) > MAX_EXPONENT:
            # 9**9**9: the inner power is folded to a number, and SymPy would
            # then compute the outer one exactly, hanging the process.
            raise ValueError(f"exponent {right} is too large (at most {MAX_EXPONENT})")
        if op == "**" and not left.free_symbols and left.is_negative and not _whole(right):
            # (-8)**(2/3), (-2)**x: complex in SymPy's principal branch; refused
            # here, before Abs() or another function turns them into atan2 and im().
            raise ValueError(message("finite_not_real", expr=sp.Pow(left, right, evaluate=False)))
        if op == "+":
            result = left + right
        elif op == "-":
            result = left - right
        elif op == "*":
            result = left * right
        elif op == "/":
            result = left / right
        elif left.is_Pow and left.exp.is_integer is not True and right.is_integer:
            # SymPy folds sqrt(x)**2 to x, defined at x < 0 where sqrt(x) is not: keep it as written.
            result = sp.Pow(left, right, evaluate=False)
        else:
            result = left**right
        return _in_range(result)

    def chain(self, terms: list[tuple[str, sp.Expr]]) -> sp.Expr:
        if len(terms) < 3 or terms[1][0] not in "+-":
            return super().chain(terms)
        # One Add of all the terms: adding them one by one re-flattens the
        # growing sum each time (quadratic in the number of terms).
        return _in_range(sp.Add(*(term if op == "+" else -term for op, term in terms)))

    def negate(self, operand: sp.Expr) -> sp.Expr:
        return -operand

    def call(self, func: str, args: list[sp.Expr]) -> sp.Expr:
        if self._reducible and func in REDUCTIONS:
            (arg,) = args
            if not (arg.is_Symbol and arg.name in self._reducible):
                choices = ", ".join(sorted(self._reducible))
                raise ValueError(f"{func}() reduces a per-sample stage over the samples: write {func}(NAME) "
                                 f"with one of {choices}")
            return REDUCTIONS[func](arg)
        if func == "exp" and isinstance(args[0], sp.log):
            # SymPy folds exp(log(x)) to x, defined at x < 0 where log(x) is not: keep it as written.
            return sp.exp(args[0], evaluate=False)
        if func == "abs" and not args[0].is_number:
            # SymPy's Abs asks whether its argument is real or positive, which for
            # a deep nest of functions takes seconds (found by benchmarks/fuzz.py): kept as
            # written instead (a number still folds: abs(-3) is 3).
            return sp.Abs(args[0], evaluate=False)
        return _in_range(USER_FUNCTIONS[func][0](*args))

    def function_arity(self, func: str) -> tuple[int, int] | None:
        if self._reducible and func in REDUCTIONS:
            return (1, 1)
        if func in USER_FUNCTIONS:
            n = USER_FUNCTIONS[func][1]
            return (n, n)
        return None

    def known_names(self) -> list[str]:
        return list(self._names) + list(CONSTANTS)


def _in_range(result: sp.Expr) -> sp.Expr:
    """``result``, unless SymPy folded it into a number beyond float64's range or a complex one.

    Checked as each operation is built: SymPy carries on with such a number
    (sigmoid(-exp(1e308))) into arithmetic that overflows inside mpmath.
    """
    if result.has(sp.I):  # sqrt(-1), log(-2): caught before SymPy turns cos(I*y) into a real cosh(y)
        from .i18n import message

        raise ValueError(message("finite_not_real", expr=result))
    if result.is_Number:
        try:
            finite = math.isfinite(float(result))
        except (OverflowError, TypeError, ValueError):
            finite = False
        if not finite:
            from .i18n import message

            raise ValueError(message("finite_out_of_range", number=_magnitude(result)))
    return result


class Prebuilt(str):
    """Expression text that explain itself wrote, with the SymPy expression it stands for.

    The ``[network]`` expansion writes sums of up to 1,000 terms: built
    directly (one ``sp.Add``) they skip the parser, whose limits are for what
    people type.  The text is what renderers show; ``make(names)`` builds the
    expression from the symbols of the names it uses.
    """

    make: Callable[[Mapping[str, sp.Expr]], sp.Expr]

    def __new__(cls, text: str, make: Callable[[Mapping[str, sp.Expr]], sp.Expr]) -> Prebuilt:
        obj = super().__new__(cls, text)
        obj.make = make
        return obj


def parse_expression(
    text: str, names: Mapping[str, sp.Expr], where: str = "", reducible: Collection[str] = (),
) -> sp.Expr:
    """Parse ``text`` into a SymPy expression over the given ``names``.

    ``names`` maps each name the expression may use to its symbol; ``reducible``
    names the per-sample stages that ``sum(s)`` and ``mean(s)`` may reduce (the
    ``[cost]`` table), and without it those are not functions.  Anything
    else (unknown names, attributes, subscripts, lambdas, keywords, strings,
    comprehensions, huge exponents, deep nesting) raises :class:`ExplainError`
    naming ``where`` and the reason.
    """
    if isinstance(text, Prebuilt):
        try:
            return text.make(names)
        except KeyError as exc:
            raise ExplainError(where, f"unknown name {exc.args[0]!r}") from None
    try:
        result = _walk(text, _SymbolicBuilder(names, reducible), where)
    except ZeroDivisionError:
        raise ExplainError(where, f"division by zero in {_short(text)}") from None
    except ValueError as exc:
        raise ExplainError(where, str(exc)) from None
    if result.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise ExplainError(where, f"{_short(text)} is not finite")
    _check_real(result, where)
    return result


def _check_real(expr: sp.Expr, where: str) -> None:
    """Refuse numbers that float64 cannot hold and constants that are not real.

    ``exp(710.0)`` and ``1e308*10`` are folded by SymPy into numbers beyond
    float64's range; ``(-8)**(2/3)`` is complex in SymPy's principal branch
    (4·(−1)^(2/3)), and ``(-2)**x`` has the derivative ``(-2)**x·log(-2)``.
    """
    from .i18n import message

    if expr.has(sp.I):
        raise ExplainError(where, message("finite_not_real", expr="I"))
    powers = expr.atoms(sp.Pow)
    for power in powers:
        if not power.base.free_symbols and power.base.is_negative and not _whole(power.exp):
            raise ExplainError(where, message("finite_not_real", expr=power))
    # A power of two numbers that SymPy leaves unevaluated (1e308**pi) would be
    # computed with Python floats, which raise OverflowError instead of giving inf.
    constant = [p for p in powers if not p.free_symbols]
    for number in [*expr.atoms(sp.Number), *constant]:
        try:
            finite = math.isfinite(float(number))
        except TypeError:
            # softplus(0.0)**2: a function SymPy does not evaluate, so not a number to
            # check here; its value is checked for finiteness when it is computed.
            continue
        except (OverflowError, ValueError):
            finite = False
        if not finite:
            raise ExplainError(where, message("finite_out_of_range", number=_magnitude(number)))


def _whole(exponent: sp.Expr) -> bool:
    """An exponent that is a whole number, written 2 or 2.0: a negative base to it is real."""
    return bool(exponent.is_integer or (exponent.is_Number and float(exponent).is_integer()))


def _magnitude(number: sp.Expr) -> str:
    """A number too large for float64, written with 4 significant digits."""
    try:
        text = str(sp.Float(sp.N(number, 4), 4))
    except (ArithmeticError, ValueError, TypeError):  # beyond even what Decimal formats
        return _short(str(number))
    mantissa, _, exponent = text.partition("e")
    if len(exponent) > 8:
        return f"{mantissa}e{exponent[:6]}… (an exponent of {len(exponent.lstrip('+-'))} digits)"
    return text


def symbols_for(names: list[str]) -> dict[str, sp.Symbol]:
    """Real SymPy symbols for the given names."""
    return {n: sp.Symbol(n, real=True) for n in names}


class _NumericBuilder(_Builder[Any]):
    """Evaluates value expressions (initial values, data columns) with NumPy."""

    def __init__(self, names: Mapping[str, Any], rng: Callable[[], np.random.Generator], size: int | None) -> None:
        self._names = names
        self._rng = rng
        self._size = size

    def number(self, value: float | int) -> Any:
        return float(value)

    def name(self, name: str) -> Any:
        if name in CONSTANTS:
            return float(CONSTANTS[name])
        return self._names.get(name)

    def binary(self, op: str, left: Any, right: Any) -> Any:
        with np.errstate(all="ignore"):
            if op == "+":
                return left + right
            if op == "-":
                return left - right
            if op == "*":
                return left * right
            if op == "/":
                return np.divide(left, right)
            return np.power(left, right)

    def negate(self, operand: Any) -> Any:
        return -operand

    _GENERATORS = {"linspace": (3, 3), "randn": (0, 1), "rand": (0, 1), "uniform": (2, 3), "arange": (2, 3)}

    def function_arity(self, func: str) -> tuple[int, int] | None:
        if func in USER_FUNCTIONS:
            n = USER_FUNCTIONS[func][1]
            return (n, n)
        return self._GENERATORS.get(func)

    def known_names(self) -> list[str]:
        return list(self._names) + list(CONSTANTS)

    def call(self, func: str, args: list[Any]) -> Any:
        if func in ("randn", "rand"):
            size = _count(args[0], func) if args else None
            draw = self._rng().standard_normal if func == "randn" else self._rng().random
            return draw(size) if size is not None else float(draw())
        if func == "uniform":
            low, high = float(args[0]), float(args[1])
            size = _count(args[2], func) if len(args) == 3 else None
            value = self._rng().uniform(low, high, size)
            return value if size is not None else float(value)
        if func == "linspace":
            return np.linspace(_real(args[0], func), _real(args[1], func), _count(args[2], func))
        if func == "arange":
            start, stop = _real(args[0], func), _real(args[1], func)
            step = _real(args[2], func) if len(args) == 3 else 1.0
            if step == 0:
                raise ValueError(message("arange_zero_step"))
            # The length first: arange(0, 1, 1e-9) would allocate 8 GB before any check.
            length = math.ceil((stop - start) / step)
            if not length <= MAX_VALUES:
                raise ValueError(message("too_many_values", func="arange()", limit=f"{MAX_VALUES:,}"))
            return np.arange(start, stop, step)
        numeric = _NUMERIC[func]
        with np.errstate(all="ignore"):
            return numeric(*args)


def _real(value: Any, func: str) -> float:
    if np.ndim(value) != 0 or not math.isfinite(float(value)):
        raise ValueError(message("needs_finite_number", func=f"{func}()"))
    return float(value)


def _count(value: Any, func: str) -> int:
    number = _real(value, func)
    if number != int(number) or not 0 < int(number) <= MAX_VALUES:
        raise ValueError(f"{func}() needs a whole number of values between 1 and {MAX_VALUES:,}")
    return int(number)


def _numeric_functions() -> dict[str, Callable[..., Any]]:
    """NumPy's version of each function a user may write, by the name they write."""
    from .functions import OPS

    return {op.user: op.numpy for op in OPS.values() if op.user is not None}


_NUMERIC = _numeric_functions()


def evaluate_value(
    text: str,
    names: Mapping[str, Any],
    where: str,
    rng: Callable[[], np.random.Generator],
) -> Any:
    """Evaluate a value expression such as ``"0.1*randn()"`` or ``"sin(x)"``.

    Besides the functions of problem expressions, value expressions may call
    ``randn()``, ``rand()``, ``uniform(lo, hi)`` (each with an optional count),
    ``linspace(a, b, n)`` and ``arange(a, b[, step])``.  ``rng`` returns the
    problem's seeded generator, so that results repeat.  The result is a float
    or a 1-D NumPy array, and must be finite.
    """
    try:
        value = _walk(text, _NumericBuilder(names, rng, None), where)
    except ValueError as exc:
        raise ExplainError(where, str(exc)) from None
    array = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(array)):
        raise ExplainError(where, f"{_short(text)} gives a value that is not finite")
    if array.ndim > 1:
        raise ExplainError(where, f"{_short(text)} must give a number or a list of numbers")
    return float(array) if array.ndim == 0 else array
