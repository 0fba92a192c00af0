"""Checking answers: grading a student's numbers and formulas, and saying what went wrong.

An answers file (SPEC §4) is a TOML ``[answers]`` table.  Each key names a
quantity of the problem:

* a stage name (``out_o1``): its forward value;
* ``dE/dw5`` or ``∂E/∂w5``: the gradient of the loss with respect to any node;
* ``w5+``: a parameter after one update step; ``E+``: the loss after it.

Numbers are judged at the precision they were *written* with — ``0.0346`` has
its last digit in the 4th decimal place, so it is correct when the true value
is within half a unit of that place (it rounds to 0.0346).  tomllib returns
floats, which forget trailing zeros, so the digits are read from the file's
own text.  Formulas (strings) are parsed by the safe parser and judged by
equivalence.  A wrong answer gets a diagnosis from :mod:`explain.diagnose`.

:class:`Grader` derives a problem once and grades any number of answer sets;
:func:`grade_files` grades a whole class in parallel processes.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from . import finite
from .budget import OutOfTime
from .derivation import Derivation, derive
from .diagnose import Diagnoser, Mistake, Quantity, Student, describe
from .errors import ExplainError
from .i18n import Messages
from .parse import parse_expression
from .problem import Problem, load

VERDICTS = ("correct", "incorrect", "unknown_key", "unparseable")
#: Digits beyond this are float64 noise: no answer is judged finer than 12 significant digits.
NOISE = 1e-12
#: Tolerance for symbolic answers, compared numerically (relative).
SYMBOLIC_RTOL = 1e-9
# Symbolic equivalence (docs/limits.md): simplify only a difference of at most
# this many operations, and for at most this many seconds.
SIMPLIFY_MAX_OPS = 200
SIMPLIFY_SECONDS = 5
#: Pairs of mistakes are only tried for answers written with at least this many significant digits.
PAIR_DIGITS = 3
_NUMBER = re.compile(r"[+-]?(?:\d[\d_]*)(?:\.\d[\d_]*)?(?:[eE][+-]?\d[\d_]*)?")
_KEY = re.compile(r"""^\s*("(?:[^"\\]|\\.)*"|'[^']*'|[A-Za-z0-9_+\-]+)\s*=\s*(.*)$""")
_GRAD_KEY = re.compile(r"^\s*[d∂]\s*([A-Za-z]\w*)\s*/\s*[d∂]\s*([A-Za-z]\w*)\s*$")


# -- reading answer files -------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """One answer as written: ``value`` is a float, a list of floats, a formula (str) or anything else TOML holds.

    ``places`` gives, for each number, the unit of its last written digit
    (``0.0346`` → 0.0001); ``line`` is its line in the file when known.
    """

    key: str
    value: Any
    places: tuple[float, ...] = ()
    line: int | None = None

    @property
    def kind(self) -> str:
        """``number``, ``list``, ``symbolic`` or ``invalid``."""
        if isinstance(self.value, float) and math.isfinite(self.value):
            return "number"
        if isinstance(self.value, list) and self.value and all(
                isinstance(v, float) and math.isfinite(v) for v in self.value):
            return "list"
        return "symbolic" if isinstance(self.value, str) else "invalid"

    @property
    def digits(self) -> int:
        """The fewest significant digits among the numbers written."""
        values = self.value if isinstance(self.value, list) else [self.value]
        found = [_significant(v, p) for v, p in zip(values, self.places)]
        return min(found) if found else 0


@dataclass
class Answers:
    """The answers of one student (one file)."""

    items: list[Answer]
    source: str = "<answers>"

    @property
    def student(self) -> str:
        """The student's name: the answers file's name without its extension."""
        return Path(self.source).stem


def read_answers(path: str | Path) -> Answers:
    """Read an answers file; an unreadable one raises :class:`ExplainError` naming the file and line."""
    from .files import read_input  # a FIFO or a device is refused, not waited on

    return parse_answers(read_input(path), str(path))


def parse_answers(text: str, source: str = "<answers>") -> Answers:
    """Parse the text of an answers file (see :func:`read_answers`)."""
    try:
        raw = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as exc:  # ValueError: an integer of more than 4,300 digits
        raise ExplainError(source, f"not valid TOML: {exc}") from None
    for key in raw:
        if key != "answers":
            raise ExplainError(source, f"unknown key {key!r}: an answers file holds one [answers] table")
    table = raw.get("answers")
    if not isinstance(table, Mapping):
        raise ExplainError(source, "no [answers] table (write [answers] and then one line per answer)")
    literals = _literals(text)
    items = []
    for key, value in table.items():
        literal, line = literals.get(key, (None, None))
        items.append(_answer(key, value, literal, line))
    return Answers(items, source)


def answers_from_mapping(values: Mapping[str, Any], source: str = "<answers>") -> Answers:
    """Answers given as a dict (library use); a float's precision is that of its shortest repr."""
    return Answers([_answer(k, float(v) if isinstance(v, int) and not isinstance(v, bool) else v, None, None)
                    for k, v in values.items()], source)


def _answer(key: str, value: Any, literal: str | None, line: int | None) -> Answer:
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        literal, value = value.strip(), float(value.strip().replace("_", ""))
    if isinstance(value, int) and not isinstance(value, bool):
        value = _float(value)
    if isinstance(value, float):
        found = _NUMBER.findall(literal or "") or [repr(value)]
        return Answer(key, value, (_place(found[0]),), line)
    if isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        found = _NUMBER.findall(literal or "")
        if len(found) != len(value):
            found = [repr(float(v)) for v in value]
        return Answer(key, [_float(v) for v in value], tuple(_place(f) for f in found), line)
    return Answer(key, value, (), line)


def _float(value: float | int) -> float:
    """``value`` as a float; an integer beyond float64's range becomes ±inf, graded as a non-finite answer."""
    try:
        return float(value)
    except OverflowError:  # TOML integers of up to 4,300 digits: 10**400 is no float
        return math.inf if value > 0 else -math.inf


def _literals(text: str) -> dict[str, tuple[str, int]]:
    """The raw text of each value of the ``[answers]`` table, with its line number."""
    found: dict[str, tuple[str, int]] = {}
    inside = False
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("["):
            inside = re.fullmatch(r"\[\s*answers\s*\]\s*(#.*)?", stripped) is not None
        elif inside and (match := _KEY.match(line)):
            key_text, rest = match.groups()
            key = _decode_key(key_text)
            value = _strip_comment(rest)
            start = i
            if value.startswith("["):
                while value.count("[") > value.count("]") and i + 1 < len(lines):
                    i += 1
                    value += " " + _strip_comment(lines[i])
            if key is not None:
                found[key] = (value, start + 1)
        i += 1
    return found


def _decode_key(text: str) -> str | None:
    if text.startswith(("'", '"')):
        try:
            return str(next(iter(tomllib.loads(f"{text} = 0"))))
        except tomllib.TOMLDecodeError:
            return None
    return text


def _strip_comment(text: str) -> str:
    if text.lstrip().startswith(('"', "'")):
        return text.strip()
    return text.split("#", 1)[0].strip()


def _place(literal: str) -> float:
    """The unit of the last written digit of a number literal: ``0.0346`` → 1e-4, ``12`` → 1."""
    s = literal.replace("_", "").lstrip("+-").lower()
    mantissa, _, exponent = s.partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    # A 5,000-digit exponent is past int()'s digit limit and 10.0 ** 400 overflows:
    # such a number is not finite anyway (graded unparseable), so its place is inf.
    digits = exponent.lstrip("+-")
    if len(digits) > 6:
        return math.inf if not exponent.startswith("-") else 0.0
    power = (int(exponent) if exponent else 0) - decimals
    return 10.0 ** power if power < 300 else math.inf


def _significant(value: float, place: float) -> int:
    if value == 0:
        return 1
    if not 0 < place < math.inf:  # 1.1125369292536007e-308: its last digit's place underflows to 0
        return 17 if place == 0 else 1  # (found by tests/test_fuzz.py; float64 holds at most 17 digits)
    return max(1, math.floor(math.log10(abs(value)) + 1e-9) - round(math.log10(place)) + 1)


# -- reports --------------------------------------------------------------------------
@dataclass(frozen=True)
class Diagnosis:
    """The mistake that explains a wrong answer: its code(s), a message and the step to look at."""

    code: str
    message: str
    suggested_step: str
    codes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "suggested_step": self.suggested_step,
                "codes": list(self.codes or (self.code,))}


@dataclass(frozen=True)
class Item:
    """The verdict on one answer."""

    key: str
    given: Any
    expected: Any
    verdict: str
    diagnosis: Diagnosis | None = None
    note: str | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        result = {"key": self.key, "given": _jsonable(self.given), "expected": _jsonable(self.expected),
                  "verdict": self.verdict, "diagnosis": self.diagnosis.to_dict() if self.diagnosis else None}
        if self.note:
            result["note"] = self.note
        return result


@dataclass
class Report:
    """A graded answers file: one :class:`Item` per answer, and the score."""

    items: list[Item]
    source: str = "<answers>"
    lang: str = "en"

    @property
    def student(self) -> str:
        return Path(self.source).stem

    @property
    def score(self) -> dict[str, int]:
        return {"correct": sum(i.verdict == "correct" for i in self.items), "total": len(self.items)}

    @property
    def passed(self) -> bool:
        """True when every answer is correct."""
        return all(i.verdict == "correct" for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of SPEC §4."""
        return {"items": [i.to_dict() for i in self.items], "score": self.score}

    def _repr_markdown_(self) -> str:
        from .commands.check import render_markdown

        return render_markdown([self], precision=6)


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [float(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return float(value)
    if isinstance(value, (str, int, float, list, type(None), bool)):
        return value
    return str(value)


# -- grading --------------------------------------------------------------------------
class Grader:
    """A problem derived once, ready to grade any number of answer sets.

    ``source`` is a Problem (or a problem file) or an existing Derivation; with a
    Derivation, ``learning_rate`` must be given for the after-one-step answers
    (with a Problem it comes from ``[train]``; sgd and minibatch steps use the
    first sample, or the first batch, in order).  ``rtol`` replaces the
    precision-as-written rule by a relative tolerance.
    """

    def __init__(self, source: Problem | Derivation | str | Path, *, rtol: float | None = None, lang: str = "en",
                 learning_rate: float | None = None) -> None:
        if isinstance(source, (str, Path)):
            source = load(source)
        batch = None
        if isinstance(source, Problem):
            self.derivation = derive(source)
            if source.train is not None:
                learning_rate = learning_rate if learning_rate is not None else source.train.learning_rate
                batch = {"sgd": 1, "minibatch": source.train.batch_size}.get(source.train.optimizer)
        else:
            self.derivation = source
        if rtol is not None and not (math.isfinite(rtol) and rtol > 0):
            raise ExplainError("--rtol", f"must be a positive number, got {rtol}")
        self.graph = self.derivation.graph
        self.rtol = rtol
        self.lang = lang
        self.messages = Messages(lang)
        self.learning_rate = learning_rate
        self.student = Student(self.graph, learning_rate, batch, program=self.derivation.program)
        self.diagnoser = Diagnoser(self.student, learning_rate)
        self._words: dict[tuple[Mistake, Quantity], tuple[str, str]] = {}
        self._symbolic = _Symbolic(self.derivation, self.student)

    @property
    def singles(self) -> list[Mistake]:
        """The catalogue's mistakes for this problem, their results computed (once)."""
        self.diagnoser.warm()
        return self.diagnoser.singles

    @property
    def loss_names(self) -> tuple[str, ...]:
        """Names an answer key may give the loss: the loss, and for a data problem without
        [cost] the per-sample loss it reduces (``dl/dw`` for ∂L/∂w, as the file names it)."""
        g = self.graph
        node = g.nodes[g.loss]
        return (g.loss, *node.inputs) if node.reduction else (g.loss,)

    def quantity(self, key: str) -> Quantity | None:
        """What an answer key asks for, or None for a key this problem does not have."""
        g = self.graph
        key = key.strip()
        if match := _GRAD_KEY.match(key):
            of, wrt = match.groups()
            return Quantity("grad", wrt) if of in self.loss_names and wrt in g.reaches_loss else None
        if key in (f"{n}+" for n in self.loss_names):
            return Quantity("loss_after", g.loss)
        if key.endswith("+") and key[:-1] in g.parameters:
            return Quantity("after", key[:-1])
        if key in g.nodes:
            return Quantity("value", key)
        return None

    def grade(self, answers: Answers) -> Report:
        """Grade one student's answers.

        A student holds a wrong rule consistently, so when two mistakes give
        the same number, the one that explains most of this student's other
        answers is preferred.  Values after the update step are graded last,
        preferring the mistakes already seen and then the update's own.
        """
        after = [a for a in answers.items if (q := self.quantity(a.key)) and q.kind in ("after", "loss_after")]
        later = {id(a) for a in after}
        first = [a for a in answers.items if id(a) not in later]
        items = {id(a): self.grade_one(a, answers.source) for a in first}
        counts = Counter(i.diagnosis.code for i in items.values() if i.diagnosis)
        prefer = tuple(code for code, _ in counts.most_common())
        if len(counts) > 1:
            items.update({id(a): self.grade_one(a, answers.source, prefer) for a in first
                          if items[id(a)].diagnosis is not None})
        prefer = (*prefer, "update_sign", "stale_parameters")
        items.update({id(a): self.grade_one(a, answers.source, prefer) for a in after})
        return Report([items[id(a)] for a in answers.items], answers.source, self.lang)

    def grade_one(self, answer: Answer, source: str = "<answers>", prefer: Sequence[str] = ()) -> Item:
        m, g = self.messages, self.graph
        q = self.quantity(answer.key)
        if q is None:
            stages = ", ".join(n.name for n in g.stages)
            note = m("check_unknown_key", answer=answer.key, stages=stages, loss=g.loss)
            return Item(answer.key, answer.value, None, "unknown_key", note=note, line=answer.line)
        if q.kind in ("after", "loss_after") and self.learning_rate is None:
            return Item(answer.key, answer.value, None, "unknown_key",
                        note=m("check_needs_learning_rate", answer=answer.key), line=answer.line)
        expected = self.student.correct.get(q)
        if answer.kind == "symbolic":
            return self._grade_symbolic(answer, q, expected, source, prefer)
        if answer.kind == "invalid":
            reason = m("check_not_a_number")
            if isinstance(answer.value, (float, list)) and not finite.is_finite(answer.value):
                reason = m("finite_answer_not_finite")
            return Item(answer.key, answer.value, expected, "unparseable",
                        note=m("check_unparseable", reason=reason), line=answer.line)
        given = np.asarray(answer.value, dtype=float)
        shape = np.shape(expected)
        if given.shape != shape:
            note = m("check_expected_list", n=shape[0]) if shape else m("check_expected_number")
            return Item(answer.key, answer.value, expected, "incorrect", note=note, line=answer.line)
        if _within(given, expected, self._tolerance(answer, expected, shape)):
            return Item(answer.key, answer.value, expected, "correct", line=answer.line)
        pairs = self.rtol is not None or answer.digits >= PAIR_DIGITS

        def matches(values: np.ndarray) -> np.ndarray:
            close = np.abs(given - values) <= self._tolerance(answer, values, shape)
            return np.all(close, axis=tuple(range(1, values.ndim)))

        return self._incorrect(answer, q, expected, matches, pairs, prefer=prefer)

    def _tolerance(self, answer: Answer, reference: Any, shape: tuple[int, ...]) -> Any:
        """How far from ``reference`` (the truth, or stacked candidates) an answer may be."""
        scale = np.abs(np.asarray(reference, dtype=float))
        if self.rtol is not None:
            return self.rtol * scale + 1e-15
        places = np.asarray(answer.places, dtype=float).reshape(shape)
        return 0.5 * places * (1 + 1e-9) + NOISE * scale

    def _incorrect(self, answer: Answer, q: Quantity, expected: Any, matches: Callable[[np.ndarray], np.ndarray],
                   pairs: bool, note: str | None = None, prefer: Sequence[str] = ()) -> Item:
        found = self.diagnoser.find(q, matches, pairs, prefer)
        diagnosis = None
        if found is not None:
            if (found, q) not in self._words:
                self._words[(found, q)] = describe(found, q, self.graph, self.messages)
            message, step = self._words[(found, q)]
            diagnosis = Diagnosis(found.code, message, step, found.codes)
        else:
            note = (note + " " if note else "") + self.messages("check_no_diagnosis")
        return Item(answer.key, answer.value, expected, "incorrect", diagnosis, note, answer.line)

    def _grade_symbolic(self, answer: Answer, q: Quantity, expected: Any, source: str,
                        prefer: Sequence[str] = ()) -> Item:
        where = f"{source}: [answers] {answer.key}" + (f" (line {answer.line})" if answer.line else "")
        try:
            expr = self._symbolic.parse(answer.value, q, where)
        except ExplainError as exc:
            note = self.messages("check_unparseable", reason=exc.reason)
            return Item(answer.key, answer.value, expected, "unparseable", note=note, line=answer.line)
        value = self._symbolic.value(expr, q)
        if not finite.is_finite(value):
            note = self.messages("finite_answer_value", value=_short(value), reason=self._symbolic.why(expr))
            return Item(answer.key, answer.value, expected, "incorrect", note=note, line=answer.line)
        if value is None or np.shape(value) != np.shape(expected):
            note = self.messages("check_symbolic_not_a_value")
            return Item(answer.key, answer.value, expected, "incorrect", note=note, line=answer.line)
        try:
            same = self._symbolic.equivalent(expr, q, value, expected)
        except OutOfTime:  # too complex to decide: this answer alone, the class goes on
            reason = self.messages("check_too_complex", seconds=SIMPLIFY_SECONDS)
            note = self.messages("check_unparseable", reason=reason)
            return Item(answer.key, answer.value, expected, "unparseable", note=note, line=answer.line)
        if same:
            return Item(answer.key, answer.value, expected, "correct", line=answer.line)
        note = self.messages("check_symbolic_value", value=_short(value))
        def matches(values: np.ndarray) -> np.ndarray:
            rtol = SYMBOLIC_RTOL * 1000
            return np.all(np.abs(np.asarray(value) - values) <= rtol * np.abs(values) + 1e-15,
                          axis=tuple(range(1, values.ndim)))

        return self._incorrect(answer, q, expected, matches, True, note, prefer)


def _within(given: Any, expected: Any, tolerance: Any) -> bool:
    if expected is None:
        return False
    e = np.asarray(expected, dtype=float)
    return e.shape == np.shape(given) and bool(np.all(np.abs(np.asarray(given) - e) <= tolerance))


def _close(a: Any, b: Any, rtol: float) -> bool:
    if a is None or b is None or np.shape(a) != np.shape(b):
        return False
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = max(1e-300, float(np.max(np.abs(b))) if b.size else 0.0)
    return bool(np.all(np.isfinite(a)) and np.allclose(a, b, rtol=rtol, atol=rtol * scale * 1e-3))


def _short(value: Any) -> str:
    return ", ".join(f"{v:.6g}" for v in np.atleast_1d(np.asarray(value, dtype=float)))


class _Symbolic:
    """Symbolic answers: which names they may use, their value, and equivalence.

    A formula may use the problem's node names and ``delta_<node>`` for
    ∂loss/∂node; ``delta_o1`` also means the delta of neuron o1, ∂loss/∂in_o1
    (or net_o1), as textbooks write it.  It may not use the quantity it
    answers (``out_h1 = "out_h1"`` proves nothing).  In a data problem a
    formula describes one sample (the derivative of that sample's own loss);
    for a parameter, the checker sums (or averages) it over the samples.
    """

    def __init__(self, derivation: Derivation, student: Student) -> None:
        self.derivation = derivation
        self.student = student
        g = derivation.graph
        self.graph = g
        self.deltas: dict[str, str] = {f"delta_{n}": n for n in g.nodes}
        for n in g.nodes:
            for prefix in ("in_", "net_"):
                if n.startswith(prefix) and f"delta_{n[len(prefix):]}" not in self.deltas:
                    self.deltas[f"delta_{n[len(prefix):]}"] = n
        self.symbols = {n: node.symbol for n, node in g.nodes.items()}
        self.symbols.update({d: sp.Symbol(d, real=True) for d in self.deltas})
        self._functions: dict[sp.Expr, tuple[list[sp.Symbol], Callable[..., Any]]] = {}

    def parse(self, text: str, q: Quantity, where: str) -> sp.Expr:
        names = dict(self.symbols)
        if q.kind == "value":
            names.pop(q.name, None)
        if q.kind == "grad":
            for d in [d for d, n in self.deltas.items() if n == q.name]:
                names.pop(d)
        return parse_expression(text, names, where)

    def _numbers(self, values: Mapping[str, Any], adjoints: Mapping[str, Any]) -> dict[sp.Symbol, Any]:
        g = self.graph
        n = g.n_samples or 1
        scale = n if g.is_data_problem and g.reduction == "mean" else 1
        numbers: dict[sp.Symbol, Any] = {g.nodes[k].symbol: v for k, v in values.items()}
        for d, node in self.deltas.items():
            a = adjoints[node]
            numbers[self.symbols[d]] = a * scale if g.nodes[node].per_sample else a
        return numbers

    def _evaluate(self, expr: sp.Expr, numbers: Mapping[sp.Symbol, Any], q: Quantity) -> Any:
        from .functions import NUMPY_FUNCTIONS

        if expr not in self._functions:
            symbols = sorted(expr.free_symbols, key=lambda s: s.name)
            self._functions[expr] = (symbols, sp.lambdify(symbols, expr, modules=[NUMPY_FUNCTIONS, "numpy"]))
        symbols, f = self._functions[expr]
        with np.errstate(all="ignore"):
            # NumPy values, not Python floats: 1/0 is inf and (-8)**(1/3) nan, not an exception.
            value = np.asarray(f(*(np.asarray(numbers[s], dtype=float) for s in symbols)), dtype=float)
        g = self.graph
        if q.kind == "grad" and g.is_data_problem and not g.nodes[q.name].per_sample and value.ndim == 1:
            value = value.sum() if g.reduction == "sum" else value.mean()
        elif q.kind in ("value", "grad") and g.nodes[q.name].per_sample and value.ndim == 0:
            value = np.full(g.n_samples or 1, float(value))
        if q.kind == "grad" and g.is_data_problem and g.reduction == "mean" and g.nodes[q.name].per_sample:
            value = value / (g.n_samples or 1)
        return float(value) if value.ndim == 0 else value

    def why(self, expr: sp.Expr) -> str:
        """Why the formula is not finite at the problem's numbers (first sample of a data problem)."""
        ev = self.derivation.evaluation
        numbers = self._numbers(ev.values, ev.adjoints)
        env = {s.name: float(np.asarray(numbers[s], dtype=float).reshape(-1)[0]) for s in expr.free_symbols
               if s in numbers}
        return finite.reason(expr, env)

    def value(self, expr: sp.Expr, q: Quantity) -> Any:
        """The formula's value at the problem's own numbers."""
        ev = self.derivation.evaluation
        return self._evaluate(expr, self._numbers(ev.values, ev.adjoints), q)

    def equivalent(self, expr: sp.Expr, q: Quantity, value: Any, expected: Any) -> bool:
        """Simplification first, then random points: see docs/checking.md."""
        if not _close(value, expected, SYMBOLIC_RTOL):
            return False  # they differ at the problem's own point: not equivalent
        if q.kind in ("after", "loss_after"):
            return True  # judged at the problem's own point only
        truth = self._expression(q)
        if truth is not None:
            deltas = {self.symbols[d]: self._adjoint_expr(n) for d, n in self.deltas.items()
                      if self.symbols[d] in expr.free_symbols}
            if None not in deltas.values():
                difference = expr.xreplace(deltas) - truth
                # Simplification is for formulas of the size students write; a
                # bigger one goes straight to random points (docs/limits.md).
                if sp.count_ops(difference) <= SIMPLIFY_MAX_OPS and self._simplifies_to_zero(difference):
                    return True
        return self._random_points(expr, q)

    def _simplifies_to_zero(self, difference: sp.Expr) -> bool:
        from .budget import within

        return bool(within(SIMPLIFY_SECONDS, lambda: sp.simplify(difference) == 0))

    def _random_points(self, expr: sp.Expr, q: Quantity, count: int = 5) -> bool:
        g = self.graph
        rng = np.random.default_rng(0)
        program = self.derivation.program
        for _ in range(count):
            point = {k: (v * rng.uniform(0.5, 1.5) if v else rng.uniform(-1, 1))
                     for k, v in g.leaf_values.items() if g.nodes[k].kind in ("parameter", "value")}
            ev = program.evaluate(point)
            truth = ev.values[q.name] if q.kind == "value" else ev.adjoints[q.name]
            if not _close(self._evaluate(expr, self._numbers(ev.values, ev.adjoints), q), truth, 1e-7):
                return False
        return True

    def _expression(self, q: Quantity) -> sp.Expr | None:
        if q.kind == "value":
            node = self.graph.nodes[q.name]
            return node.expr if node.expr is not None else node.symbol
        return self._adjoint_expr(q.name)

    def _adjoint_expr(self, name: str, limit: int = 64) -> sp.Expr | None:
        """∂loss/∂name (of one sample) in node symbols, or None when it has too many paths."""
        g = self.graph
        if g.path_count(name) > limit:
            return None
        if name == g.loss or g.nodes[name].reduction:
            return sp.S.One
        terms = []
        for e in g.edges_out_of(name):
            if g.nodes[e.dst].reduction:
                # A formula describes one sample's own loss; _evaluate reduces it.
                terms.append(sp.S.One)
                continue
            rest = self._adjoint_expr(e.dst, limit)
            if rest is None:
                return None
            terms.append(e.local * rest)
        return sp.Add(*terms)


def check(source: Problem | Derivation | str | Path, answers: Answers | Mapping[str, Any] | str | Path,
          rtol: float | None = None, lang: str = "en", learning_rate: float | None = None) -> Report:
    """Grade one set of answers against a problem (see :class:`Grader`).

    >>> import explain.check as c
    >>> c.check("examples/seed003_network.toml", {"dE/dw5": 0.0346}).score
    {'correct': 1, 'total': 1}
    """
    if isinstance(answers, (str, Path)):
        answers = read_answers(answers)
    elif not isinstance(answers, Answers):
        answers = answers_from_mapping(answers)
    return Grader(source, rtol=rtol, lang=lang, learning_rate=learning_rate).grade(answers)


# -- many answer files ------------------------------------------------------------------
@dataclass
class Graded:
    """The outcome for one answers file: its report, or why it could not be read."""

    path: str
    report: Report | None = None
    error: str | None = None


_GRADER: Grader | None = None
_GRADER_KEY: tuple[Any, ...] | None = None


def _start_worker(problem: str, rtol: float | None, lang: str) -> None:
    """Process initializer: derive the problem once per process (inherited when forked)."""
    global _GRADER, _GRADER_KEY
    key = (problem, rtol, lang)
    if _GRADER is None or _GRADER_KEY != key:
        _GRADER, _GRADER_KEY = Grader(problem, rtol=rtol, lang=lang), key


def _start_child(parent: int, problem: str, rtol: float | None, lang: str) -> None:
    """Worker initializer: die with the parent, leave Ctrl-C to it, then derive as usual.

    A forked worker inherits the parent's SIGTERM handler (which raises in the
    CLI); it gets the default back.  SIGINT reaches the whole process group on
    Ctrl-C: workers ignore it and the parent stops them.  On Linux the kernel
    also sends SIGTERM when the parent dies for any reason (even SIGKILL).
    """
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent)
    _start_worker(problem, rtol, lang)


def _die_with_parent(parent: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _stop_workers(pool: Any) -> None:
    """Kill the workers now (an error or a signal in the parent) instead of waiting for their chunks."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(timeout=2)
            if process.is_alive():
                process.kill()


def _grade_chunk(paths: Sequence[str]) -> list[Graded]:
    assert _GRADER is not None
    results = []
    for path in paths:
        try:
            results.append(Graded(path, _GRADER.grade(read_answers(path))))
        except ExplainError as exc:
            results.append(Graded(path, error=str(exc)))
    return results


def grade_files(problem: str | Path, paths: Iterable[str | Path], *, rtol: float | None = None, lang: str = "en",
                jobs: int | None = None, progress: Callable[[int], None] | None = None) -> list[Graded]:
    """Grade many answers files against one problem, in parallel processes.

    The problem is derived once in this process; on systems that fork,
    the workers inherit it (and the table of the catalogue's results), else
    each worker derives it once.  ``progress(n)`` is called as files finish.
    Results come back in the order of ``paths``.
    """
    global _GRADER, _GRADER_KEY
    paths = [str(p) for p in paths]
    problem = str(problem)
    _start_worker(problem, rtol, lang)
    assert _GRADER is not None
    _GRADER.singles  # noqa: B018 - computed before forking, so that workers share it
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    if jobs == 1 or len(paths) < 8:
        results = []
        for path in paths:
            results += _grade_chunk([path])
            if progress:
                progress(1)
        return results
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    _GRADER.diagnoser.warm(pairs=True)  # once here rather than once per worker

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    size = max(1, min(50, len(paths) // (jobs * 8)))
    chunks = [paths[i:i + size] for i in range(0, len(paths), size)]
    by_path: dict[str, Graded] = {}
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_child,
                               initargs=(os.getpid(), problem, rtol, lang))
    try:
        futures = [pool.submit(_grade_chunk, chunk) for chunk in chunks]
        for future in as_completed(futures):
            done = future.result()
            by_path.update({g.path: g for g in done})
            if progress:
                progress(len(done))
    except BaseException:
        _stop_workers(pool)
        raise
    pool.shutdown()
    return [by_path[p] for p in paths]


__all__ = [
    "Answer", "Answers", "Diagnosis", "Grader", "Graded", "Item", "Report", "VERDICTS",
    "check", "grade_files", "parse_answers", "read_answers", "answers_from_mapping",
]
