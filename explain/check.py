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
import functools
import math
import os
import re
import sys
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from . import finite
from .budget import OutOfTime
from .derivation import Derivation, derive
from .diagnose import Diagnoser, Hints, Mistake, Quantity, Student, describe
from .followthrough import follow_through, warm_follow_through
from .errors import ExplainError
from .i18n import Messages
from .later_steps import LaterSteps, is_later_key
from .parse import parse_expression
from .problem import CheckConfig, Problem, load

#: Every verdict an item can carry (docs/checking.md#verdicts).  ``consistent`` is a later answer
#: computed rightly from the student's own wrong earlier answer (follow-through); it earns
#: ``[check] consistent_fraction`` of its points.  ``unreadable`` is a whole answers file.
VERDICTS = ("correct", "imprecise", "consistent", "incorrect", "unknown_key", "unparseable", "unreadable")
#: The verdicts that earn points, and the share of them (``consistent``'s comes from the problem).
CREDIT = {"correct": 1.0}
#: A true value this small is a zero (float64 round-off of an exact 0): only then is ``0`` right.
ZERO = 1e-15
#: An answer written with fewer significant digits than this is a guess: it gets no diagnosis.
DIAGNOSIS_DIGITS = 2
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
_DELTA_KEY = re.compile(r"^\s*(?:delta|δ)_([A-Za-z]\w*)\s*$")
_TOML_LINE = re.compile(r"at line (\d+)")


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
    written: str | None = None  # the number as the file writes it (``0.5370``, not 0.537)

    #: Each number as written, in row-major order (a matrix's entries: ``0.5370`` keeps its zero).
    literals: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        """``number``, ``list``, ``matrix`` (a list of rows), ``symbolic`` or ``invalid``."""
        if isinstance(self.value, float) and math.isfinite(self.value):
            return "number"
        if isinstance(self.value, list) and self.value and all(
                isinstance(v, float) and math.isfinite(v) for v in self.value):
            return "list"
        if _rows(self.value) is not None and all(math.isfinite(v) for row in self.value for v in row):
            return "matrix"
        return "symbolic" if isinstance(self.value, str) else "invalid"

    @property
    def numbers(self) -> list[Any]:
        """The numbers written, flat, in row-major order."""
        if _rows(self.value) is not None:
            return [v for row in self.value for v in row]
        return self.value if isinstance(self.value, list) else [self.value]

    @property
    def digits(self) -> int:
        """The fewest significant digits among the numbers written."""
        found = [_significant(v, p) for v, p in zip(self.numbers, self.places)]
        return min(found) if found else 0

    @property
    def entry_digits(self) -> int:
        """How many significant digits a vector or matrix carries: its coarsest last digit's place,
        counted against its largest entry.  Written to 6 decimals, [[-0.173711, 5e-06]] has 6: its
        small entry is as precise as the rest, only small (its own significant digits, 1, would say
        that nothing can be told from the matrix).  Exact zeros are not guesses and are left out.
        """
        written = [(abs(v), p) for v, p in zip(self.numbers, self.places) if v != 0]
        if not written:
            return self.digits
        return _significant(max(v for v, _ in written), max(p for _, p in written))


def _rows(value: Any) -> int | None:
    """The row length of a rectangular, non-empty list of lists of numbers, else None."""
    if not (isinstance(value, list) and value and all(isinstance(r, list) and r for r in value)):
        return None
    width = len(value[0])
    ok = all(len(r) == width and all(isinstance(v, float) for v in r) for r in value)
    return width if ok else None


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
        error = ExplainError(source, f"not valid TOML: {exc}")
        found = _TOML_LINE.search(str(exc))
        error.line = int(found.group(1)) if found else None  # type: ignore[attr-defined]  # the class report's row
        raise error from None
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
        return Answer(key, value, (_place(found[0]),), line, found[0], (found[0],))
    if isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        found = _NUMBER.findall(literal or "")
        if len(found) != len(value):
            found = [repr(float(v)) for v in value]
        return Answer(key, [_float(v) for v in value], tuple(_place(f) for f in found), line,
                      "[" + ", ".join(found) + "]", tuple(found))
    if isinstance(value, list) and value and all(
            isinstance(r, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)
            for r in value):
        # A matrix, one list per row: its numbers as written, row by row (docs/checking.md#matrices).
        rows = [[_float(v) for v in r] for r in value]
        flat = [v for r in rows for v in r]
        found = _NUMBER.findall(literal or "")
        if len(found) != len(flat):
            found = [repr(v) for v in flat]
        written, k = [], 0
        for r in rows:
            written.append("[" + ", ".join(found[k:k + len(r)]) + "]")
            k += len(r)
        return Answer(key, rows, tuple(_place(f) for f in found), line, "[" + ", ".join(written) + "]", tuple(found))
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
class Entry:
    """The verdict on one entry of a vector or matrix answer (``dE/dW1[0,1]``)."""

    key: str
    index: tuple[int, ...]
    given: float | None
    expected: float
    verdict: str
    written: str | None = None

    def to_dict(self) -> dict[str, Any]:
        result = {"key": self.key, "index": list(self.index), "given": self.given, "expected": self.expected,
                  "verdict": self.verdict}
        if self.written is not None:
            result["written"] = self.written
        return result


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
    written: str | None = None
    points: float = 0.0
    max_points: float = 1.0
    question: str | None = None  # the quantity in one spelling (``∂E/∂w5`` → ``dE/dw5``), for class statistics
    #: A vector or matrix quantity: its shape (samples first in a data problem), and each entry's verdict
    #: when the answer has that shape.
    shape: tuple[int, ...] | None = None
    entries: tuple[Entry, ...] = ()

    @property
    def shown(self) -> str:
        """The given value as the student wrote it (``0.5370`` stays ``0.5370``)."""
        if self.written is not None:
            return self.written
        if isinstance(self.given, list):
            return "[" + ", ".join(repr(v) if isinstance(v, float) else str(v) for v in self.given) + "]"
        return repr(self.given) if isinstance(self.given, float) else str(self.given)

    def to_dict(self) -> dict[str, Any]:
        result = {"key": self.key, "given": _jsonable(self.given), "expected": _jsonable(self.expected),
                  "verdict": self.verdict, "diagnosis": self.diagnosis.to_dict() if self.diagnosis else None,
                  "points": _points(self.points), "max_points": _points(self.max_points)}
        if self.written is not None:
            result["written"] = self.written
        if self.note:
            result["note"] = self.note
        if self.line is not None:
            result["line"] = self.line
        if self.shape is not None:
            result["shape"] = list(self.shape)
        if self.entries:
            result["entries"] = [e.to_dict() for e in self.entries]
        return result


@dataclass
class Report:
    """A graded answers file: one :class:`Item` per answer, and the score."""

    items: list[Item]
    source: str = "<answers>"
    lang: str = "en"
    #: Points of the questions in ``[marks]`` that this file does not answer (they count in max_points).
    unanswered: dict[str, float] = field(default_factory=dict)

    @property
    def student(self) -> str:
        return Path(self.source).stem

    @property
    def score(self) -> dict[str, Any]:
        """``{correct, total, points, max_points}``: points are whole numbers when they are whole."""
        points = sum(i.points for i in self.items)
        most = sum(i.max_points for i in self.items) + sum(self.unanswered.values())
        return {"correct": sum(i.verdict == "correct" for i in self.items), "total": len(self.items),
                "points": _points(points), "max_points": _points(most)}

    @property
    def percent(self) -> float:
        """The points as a percentage of max_points (0 when nothing can be earned)."""
        score = self.score
        return 100.0 * score["points"] / score["max_points"] if score["max_points"] else 0.0

    @property
    def passed(self) -> bool:
        """True when every answer is correct."""
        return all(i.verdict == "correct" for i in self.items)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of SPEC §4."""
        return {"items": [i.to_dict() for i in self.items], "score": self.score}

    def _repr_markdown_(self) -> str | None:
        from .render.notebook import display  # the render layer's one door, late (see there)

        return display(self, "markdown")


def _points(value: float) -> float | int:
    value = round(float(value), 6)  # 1/3 + 1/3 + 1/3 of a point is 1
    return int(value) if value.is_integer() else value


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return np.asarray(value, dtype=float).tolist()  # nested lists for a matrix
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
    precision-as-written rule by a relative tolerance.  ``sigfigs`` (default:
    the problem's ``[check] sigfigs``, else 3) is how many significant digits
    a number needs for credit; the problem's ``[marks]`` and ``[check]
    consistent_fraction`` give the points (docs/checking.md#marks).
    """

    def __init__(self, source: Problem | Derivation | str | Path, *, rtol: float | None = None, lang: str = "en",
                 learning_rate: float | None = None, sigfigs: int | None = None) -> None:
        if isinstance(source, (str, Path)):
            source = load(source)
        batch = None
        config = source.check if isinstance(source, Problem) else CheckConfig()
        self.problem_source = source.source if isinstance(source, Problem) else "<problem>"
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
        # Vectors and matrices (issue 12): their shapes and texts, for whole-tensor answer keys.
        self.shapes: dict[str, tuple[int, ...]] = dict(source.shapes) if isinstance(source, Problem) else {}
        self.tensor_texts: dict[str, str] = dict(source.tensor_texts) if isinstance(source, Problem) else {}
        self.rtol = rtol
        self.lang = lang
        self.messages = Messages(lang)
        if sigfigs is not None and (isinstance(sigfigs, bool) or not 1 <= sigfigs <= 12):
            raise ExplainError("--sigfigs", f"must be a whole number from 1 to 12, got {sigfigs}")
        self.sigfigs = sigfigs if sigfigs is not None else config.sigfigs
        self.learning_rate = learning_rate
        self.student = Student(self.graph, learning_rate, batch, program=self.derivation.program)
        self.diagnoser = Diagnoser(self.student, learning_rate, self.shapes)
        self._words: dict[tuple[Mistake, Quantity], tuple[str, str]] = {}
        self._symbolic = _Symbolic(self.derivation, self.student)
        self.credit = {**CREDIT, "consistent": config.consistent_fraction}
        # Answers about later steps (w5@3, m_w5@2) need the problem's [train] run: explain.later_steps.
        self.later = LaterSteps(source) if isinstance(source, Problem) and source.train is not None else None
        self.marks = self._resolve_marks(config.marks)

    def _resolve_marks(self, marks: Mapping[str, float]) -> dict[Quantity, tuple[str, float]]:
        """``[marks]`` by quantity (``dE/dw5`` and ``∂E/∂w5`` are one question); unknown keys are errors."""
        resolved: dict[Quantity, tuple[str, float]] = {}
        for key, points in marks.items():
            q = self.quantity(key)
            if q is None:
                raise ExplainError(f"{self.problem_source}: [marks] {key}",
                                   f"is not a quantity of this problem{self._did_you_mean(key)}")
            resolved[q] = (key, points)
        return resolved
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
        cache = self.__dict__.setdefault("_quantities", {})  # a class asks the same dozen keys a thousand times
        if key not in cache:
            cache[key] = self._quantity(key)
        return cache[key]  # type: ignore[no-any-return]

    def _quantity(self, key: str) -> Quantity | None:
        from .tensors import internal_key

        g = self.graph
        key = internal_key(key.strip())  # dL/dW1[0,1]: an entry of a matrix, named W1_0_1 inside
        if match := _GRAD_KEY.match(key):
            of, wrt = match.groups()
            if of in self.loss_names and wrt in self.shapes:  # a whole vector or matrix: dE/dW1
                return self._tensor_quantity("grad", wrt)
            return Quantity("grad", wrt) if of in self.loss_names and wrt in g.reaches_loss else None
        if (tensor := self._tensor_delta(key)) is not None:
            return self._tensor_quantity("grad", tensor)
        if match := _DELTA_KEY.match(key):
            # delta_o1 (δ_o1) is the delta of unit o1, ∂loss/∂in_o1, as the formulas' delta_ names it.
            node = self._symbolic.deltas.get(f"delta_{match.group(1)}")
            return Quantity("grad", node) if node is not None and node in g.reaches_loss else None
        if key in (f"{n}+" for n in self.loss_names):
            return Quantity("loss_after", g.loss)
        if key.endswith("+") and key[:-1] in self.shapes:
            q = self._tensor_quantity("after", key[:-1])
            return q if q is not None and all(e in g.parameters for e in self._entries(q)) else None
        if key.endswith("+") and key[:-1] in g.parameters:
            return Quantity("after", key[:-1])
        if key in self.shapes:
            return self._tensor_quantity("value", key)
        if key in g.nodes:
            return Quantity("value", key)
        if self.later is not None and is_later_key(key) and self.later.resolve(key) is not None:
            return Quantity("later", key)  # w5@3, m_w5@2, E@3: graded by explain.later_steps' run
        return None

    def _stage_names(self) -> list[str]:
        """The stages by the names the file gives them: a vector stage once (``z1``), not entry by entry."""
        from .tensors import entries_of

        entries = entries_of(self.shapes) if self.shapes else {}
        names = [entries[n.name][0] if n.name in entries else n.name for n in self.graph.stages]
        return list(dict.fromkeys(names))

    def _tensor_delta(self, key: str) -> str | None:
        """The tensor a delta key names: ``delta_z2`` (δ_z2), or ``delta2`` for a stage named ``z2``."""
        from .tensorformula import delta_names

        return delta_names(self.shapes, self.graph).get(key.strip().replace("δ", "delta"))

    def _tensor_quantity(self, kind: str, name: str) -> Quantity | None:
        """A whole vector or matrix as one quantity; None when none of its entries is part of the problem."""
        q = Quantity(kind, name, self.shapes[name])
        entries = self._entries(q)
        known = self.graph.reaches_loss if kind == "grad" else self.graph.nodes
        return q if any(e in known for e in entries) and all(e in self.graph.nodes for e in entries) else None

    @staticmethod
    def _entries(q: Quantity) -> list[str]:
        from .tensors import entry_name

        return [entry_name(q.name, index) for index in np.ndindex(q.shape)]

    def name_of(self, q: Quantity) -> str:
        """One spelling of a quantity: the ``[marks]`` key when it has one, else ``dE/dw5``, ``w5+``, ``E+``,
        ``out_o1``; an entry of a vector or matrix as people write it, ``dL/dW1[0,1]``."""
        if q in self.marks:
            return self.marks[q][0]
        name = self._entry_labels.get(q.name, q.name)
        if q.kind == "grad":
            return f"d{self.graph.loss}/d{name}"
        if q.kind in ("after", "loss_after"):
            return f"{name}+"
        return name

    def _labelled(self, text: str) -> str:
        """``text`` with every entry's internal name as people write it: ``dJ/dW1_0_1`` → ``dJ/dW1[0,1]``."""
        if not self._entry_labels:
            return text
        return self._entry_pattern.sub(lambda match: self._entry_labels[match.group(0)], text)

    @functools.cached_property
    def _entry_pattern(self) -> re.Pattern[str]:
        names = sorted(self._entry_labels, key=len, reverse=True)
        # A name stands alone or after the d of a derivative (dJ/dW1_0_1), never inside another word.
        return re.compile(r"(?:(?<![\w.])|(?<=/d)|(?<=/∂))(?:" + "|".join(map(re.escape, names)) + r")(?![\w\[])")

    @functools.cached_property
    def _entry_labels(self) -> dict[str, str]:
        from .tensors import entries_of, entry_label

        return {entry: entry_label(t, index) for entry, (t, index) in entries_of(self.shapes).items()}

    def unreadable(self, graded: Graded) -> Report:
        """The report of a file that could not be read: one ``unreadable`` row, worth the problem's marks."""
        item = Item("", None, None, "unreadable", note=graded.reason or graded.error, line=graded.line,
                    max_points=0.0)
        return Report([item], graded.path, self.lang, {key: points for key, points in self.marks.values()})

    def keys(self) -> list[str]:
        """Every answer key this problem has, one spelling each (for "did you mean")."""
        g = self.graph
        keys = [n for n in g.nodes]
        keys += [f"d{g.loss}/d{n}" for n in g.nodes if n in g.reaches_loss]
        keys += [d for d, n in self._symbolic.deltas.items() if n in g.reaches_loss and d[6:] not in g.nodes]
        keys += [*self.shapes, *(f"d{g.loss}/d{n}" for n in self.shapes)]
        if self.learning_rate is not None:
            keys += [f"{p}+" for p in g.parameters] + [f"{g.loss}+"]
        return keys

    def _did_you_mean(self, key: str) -> str:
        """`` (did you mean 'dE/dw1'?)`` for a key close to one of the problem's, else ``""``."""
        import difflib

        keys = self.keys()
        folded = {k.lower().replace("∂", "d"): k for k in keys}
        found = difflib.get_close_matches(key.strip().lower().replace("∂", "d"), list(folded), n=1, cutoff=0.6)
        return self.messages("check_did_you_mean", key=folded[found[0]]) if found else ""

    def grade(self, answers: Answers) -> Report:
        """Grade one student's answers, reading them together as a careful marker would.

        A student holds a wrong rule consistently: a mistake that would change
        an answer they got right comes last; when two mistakes give the same
        number, the one seen in their other answers wins; a pair of mistakes is
        only reported when the student's other answers show it (one of its two
        mistakes, or the same pair again).  Values after the update step are
        graded last, preferring the mistakes already seen and then the update's
        own.  Finally an answer computed correctly from the student's own wrong
        earlier values is ``consistent`` (see :mod:`explain.followthrough`).
        """
        src = answers.source
        hints = Hints()
        items = {id(a): self.grade_one(a, src, hints=hints) for a in answers.items}
        for a in answers.items:
            if items[id(a)].verdict == "correct" and id(a) in hints.matchers:
                q, matches, _ = hints.matchers[id(a)]
                hints.reject |= self.diagnoser.contradicted(q, matches)
        after = {id(a) for a in answers.items if (q := self.quantity(a.key)) and q.kind in ("after", "loss_after")}
        # The update's own answers do not vote: sign_error and update_sign give the same w+.
        counts = Counter(items[id(a)].diagnosis.code for a in answers.items  # type: ignore[union-attr]
                         if items[id(a)].diagnosis and id(a) not in after)
        hints.seen = set(counts)
        unexplained = [hints.matchers[id(a)] for a in answers.items if id(a) in hints.matchers
                       and items[id(a)].verdict == "incorrect" and items[id(a)].diagnosis is None]
        if len(unexplained) > 1 or (counts and unexplained):  # else no pair can be shown twice
            hints.count_pairs(self.diagnoser, unexplained)
        prefer = tuple(code for code, _ in counts.most_common())
        for a in answers.items:
            if items[id(a)].verdict == "incorrect" and id(a) in hints.matchers:
                wanted = (*prefer, "update_sign", "stale_parameters") if id(a) in after else prefer
                items[id(a)] = self.grade_one(a, src, wanted, hints=hints)
        graded = [items[id(a)] for a in answers.items]
        return self.mark(Report(follow_through(self, answers.items, graded), src, self.lang))

    def mark(self, report: Report) -> Report:
        """Give every item its points, from its final verdict (so run it after any change of verdict).

        An item earns its question's points (``[marks]``, default 1) times the
        credit of its verdict: 1 for ``correct``, ``[check] consistent_fraction``
        for ``consistent``, 0 otherwise.  With ``[marks]``, the questions are the
        ones it lists: an unknown key weighs nothing and a marked question left
        unanswered counts in max_points.
        """
        answered = set()
        items = []
        for item in report.items:
            q = self.quantity(item.key) if item.verdict != "unknown_key" else None
            if q is not None:
                answered.add(q)
            weight = self.marks[q][1] if q in self.marks else (0.0 if self.marks and q is None else 1.0)
            items.append(replace(item, points=weight * self.credit.get(item.verdict, 0.0), max_points=weight,
                                 question=self.name_of(q) if q is not None else None))
        unanswered = {key: points for q, (key, points) in self.marks.items() if q not in answered}
        return Report(items, report.source, report.lang, unanswered)

    def grade_one(self, answer: Answer, source: str = "<answers>", prefer: Sequence[str] = (),
                  hints: Hints | None = None) -> Item:
        """The verdict on one answer (its points are given by :meth:`mark`)."""
        return replace(self._judge(answer, source, prefer, hints), written=answer.written)

    def _judge(self, answer: Answer, source: str, prefer: Sequence[str], hints: Hints | None) -> Item:
        m, g = self.messages, self.graph
        if self.later is not None and is_later_key(answer.key):
            return self._grade_later(answer)
        q = self.quantity(answer.key)
        if q is None:
            stages = ", ".join(self._stage_names())
            note = m("check_unknown_key", answer=answer.key, stages=stages, loss=g.loss) + self._did_you_mean(answer.key)
            return Item(answer.key, answer.value, None, "unknown_key", note=note, line=answer.line)
        if q.kind in ("after", "loss_after") and self.learning_rate is None:
            return Item(answer.key, answer.value, None, "unknown_key",
                        note=m("check_needs_learning_rate", answer=answer.key), line=answer.line)
        expected = self.student.correct.get(q)
        if answer.kind == "symbolic" and (q.shape or (self.shapes and self._formulas.uses_tensors(answer.value))):
            return self._grade_tensor_formula(answer, q, expected, source, prefer, hints)
        if answer.kind == "symbolic":
            return self._grade_symbolic(answer, q, expected, source, prefer, hints)
        if q.shape and answer.kind in ("number", "list", "matrix"):
            return self._grade_tensor(answer, q, expected, prefer, hints)
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
        matches, pairs = self._written_matcher(answer, q, given, shape, answer.digits, hints)
        verdict = self._number_verdict(answer, given, expected, shape)
        if verdict == "correct":
            return Item(answer.key, answer.value, expected, "correct", line=answer.line)
        if verdict == "imprecise":
            note = m("check_imprecise", digits=answer.digits, needed=self.sigfigs)
            return Item(answer.key, answer.value, expected, "imprecise", note=note, line=answer.line)
        if self.rtol is None and answer.digits < DIAGNOSIS_DIGITS:
            # A one-digit number (0, 0.0007) matches some mistake by chance: no diagnosis for a guess.
            note = m("check_too_few_digits_to_diagnose", needed=DIAGNOSIS_DIGITS)
            return Item(answer.key, answer.value, expected, "incorrect", note=note, line=answer.line)
        return self._incorrect(answer, q, expected, matches, pairs, prefer=prefer, hints=hints)

    # -- vectors and matrices (issue 12; docs/checking.md#vectors-and-matrices) -------------
    @property
    def _forms(self) -> Any:
        """The matrix-form candidates (transposes, broadcast sums) of :mod:`explain.matrixforms`, made once."""
        if "_answer_forms" not in self.__dict__:
            from .matrixforms import AnswerForms

            self.__dict__["_answer_forms"] = AnswerForms(self.graph, self.derivation.evaluation, self.shapes,
                                                         self.tensor_texts)
        return self.__dict__["_answer_forms"]

    @property
    def _formulas(self) -> Any:
        """Formulas over vectors and matrices (:mod:`explain.tensorformula`), made once."""
        if "_tensor_formulas" not in self.__dict__:
            from .tensorformula import TensorFormulas

            self.__dict__["_tensor_formulas"] = TensorFormulas(self.derivation, self.shapes)
        return self.__dict__["_tensor_formulas"]

    def _entry_items(self, answer: Answer, q: Quantity, given: np.ndarray, expected: np.ndarray,
                     verdicts: Sequence[str] | None = None) -> tuple[Entry, ...]:
        """Each entry's verdict: judged as one number written with that entry's digits (or as given)."""
        from .matrixforms import entry_key

        entries = []
        flat_given, flat_expected = given.reshape(-1), expected.reshape(-1)
        for k, index in enumerate(np.ndindex(expected.shape)):
            if verdicts is not None:
                verdict = verdicts[k]
                written = None
            else:
                one = replace(answer, value=float(flat_given[k]), places=(answer.places[k],),
                              literals=answer.literals[k:k + 1])
                verdict = self._number_verdict(one, np.asarray(flat_given[k]), float(flat_expected[k]), ())
                written = answer.literals[k] if k < len(answer.literals) else None
            entries.append(Entry(entry_key(answer.key, index), tuple(int(i) for i in index), float(flat_given[k]),
                                 float(flat_expected[k]), verdict, written))
        return tuple(entries)

    def _grade_tensor(self, answer: Answer, q: Quantity, expected: Any, prefer: Sequence[str],
                      hints: Hints | None) -> Item:
        """A vector or matrix answer: judged entry by entry; the item is right when every entry is."""
        m = self.messages
        given = np.asarray(answer.value, dtype=float)
        truth = np.asarray(expected, dtype=float)
        shape = truth.shape
        if len(shape) == 1 and given.ndim == 2 and 1 in given.shape and given.size == shape[0]:
            given = given.reshape(shape)  # a vector written as a column [[a], [b]] (or a row [[a, b]])
        item = Item(answer.key, answer.value, truth, "incorrect", line=answer.line, shape=shape)
        if given.shape != shape:
            return replace(item, diagnosis=self._shape_diagnosis(answer, q, given, truth))
        entries = self._entry_items(answer, q, given, truth)
        item = replace(item, entries=entries)
        matches, pairs = self._written_matcher(answer, q, given, shape, answer.entry_digits, hints)
        verdict = self._number_verdict(answer, given, truth, shape)
        if verdict == "correct":
            return replace(item, verdict="correct")
        if verdict == "imprecise":
            return replace(item, verdict="imprecise", note=m("check_imprecise", digits=answer.digits,
                                                               needed=self.sigfigs))
        wrong = sum(e.verdict == "incorrect" for e in entries)
        note = m("check_entries_wrong", wrong=wrong, total=len(entries))
        if self.rtol is None and answer.entry_digits < DIAGNOSIS_DIGITS:
            return replace(item, note=note + " " + m("check_too_few_digits_to_diagnose", needed=DIAGNOSIS_DIGITS))
        form = self._matching_form(answer, q, given, truth)
        if form is not None:
            return replace(item, diagnosis=form, note=note)
        found = self._incorrect(answer, q, expected, matches, pairs, note=note, prefer=prefer, hints=hints)
        return replace(found, given=answer.value, expected=truth, shape=shape, entries=entries)

    def _matching_form(self, answer: Answer | None, q: Quantity, given: np.ndarray, truth: np.ndarray,
                       rtol: float | None = None) -> Diagnosis | None:
        """The matrix-form mistake (a transpose, a broadcast sum) whose numbers are the answer's, if any.

        A number is compared at the precision written (``answer``); a formula's value at ``rtol``.
        """
        from .matrixforms import describe_form

        for form in self._forms.forms(q, truth):
            if form.value.shape != given.shape:
                continue
            if rtol is not None or answer is None:
                close = np.abs(given - form.value) <= (rtol or SYMBOLIC_RTOL) * np.abs(form.value) + 1e-15
            else:
                close = np.abs(given - form.value) <= self._tolerance(answer, form.value, given.shape)
            if np.all(close):
                message, step = describe_form(form, q, given.shape, truth.shape, self.graph, self.messages)
                return Diagnosis(form.code, message, step)
        return None

    def _shape_diagnosis(self, answer: Answer | None, q: Quantity, given: np.ndarray, truth: np.ndarray,
                         rtol: float | None = None) -> Diagnosis:
        """Why the answer has another shape: a matrix-form mistake that gives it, else ``wrong_shape``."""
        from .matrixforms import describe_shape

        found = None
        if rtol is not None:
            found = self._matching_form(None, q, given, truth, rtol)
        elif answer is not None and len(answer.places) == given.size:
            found = self._matching_form(answer, q, given, truth)
        if found is not None:
            return found
        samples = self.graph.is_data_problem and truth.ndim == len(q.shape) + 1
        message, step = describe_shape(q, given.shape, truth.shape, self.graph, self.messages, samples)
        return Diagnosis("wrong_shape", message, step)

    def _grade_tensor_formula(self, answer: Answer, q: Quantity, expected: Any, source: str,
                              prefer: Sequence[str], hints: Hints | None) -> Item:
        """A formula over vectors and matrices (``"delta2 @ h1.T"``), evaluated with NumPy and judged per entry."""
        m = self.messages
        where = f"{source}: [answers] {answer.key}" + (f" (line {answer.line})" if answer.line else "")
        truth = np.asarray(expected, dtype=float)
        shape = truth.shape if q.shape else None
        item = Item(answer.key, answer.value, truth if truth.ndim else float(truth), "incorrect", line=answer.line,
                    shape=shape)
        try:
            formula = self._formulas.parse(answer.value, q, where)
            value = self._formulas.value(formula, q, truth.shape)
        except ExplainError as exc:
            return replace(item, verdict="unparseable", note=m("check_unparseable", reason=exc.reason))
        if not finite.is_finite(value):
            return replace(item, note=m("finite_answer_value", value=_short(value), reason=m("finite_answer_not_finite")))
        if value.shape != truth.shape:
            if shape is None:
                return replace(item, note=m("check_symbolic_not_a_value"))
            return replace(item, note=m("check_symbolic_value", value=_short(value)),
                           diagnosis=self._shape_diagnosis(None, q, value, truth, SYMBOLIC_RTOL * 1000))
        close = np.abs(value - truth) <= SYMBOLIC_RTOL * np.abs(truth) + 1e-15
        verdicts = ["correct" if c else "incorrect" for c in close.reshape(-1)]
        entries = self._entry_items(answer, q, value, truth, verdicts) if shape else ()
        item = replace(item, entries=entries)
        if bool(np.all(close)) and self._formulas.equivalent(formula, q, truth.shape):
            return replace(item, verdict="correct")
        note = m("check_symbolic_value", value=_short(value))
        if bool(np.all(close)):
            return replace(item, note=m("check_formula_point_only"))
        form = self._matching_form(answer, q, value, truth, SYMBOLIC_RTOL * 1000) if shape else None
        if form is not None:
            return replace(item, diagnosis=form, note=note)
        matches = _near(value)
        if hints is not None:
            hints.matchers[id(answer)] = (q, matches, True)
        found = self._incorrect(answer, q, expected, matches, True, note, prefer, hints)
        return replace(found, expected=item.expected, shape=shape, entries=entries)

    def _grade_later(self, answer: Answer) -> Item:
        """The Item for an answer about a later step (w5@3, m_w5@2): explain.later_steps has the run."""
        later = self.later
        assert later is not None
        m = self.messages
        expected = later.value(answer.key)
        if expected is None:
            note = m("later_unknown_key", answer=answer.key)
            return Item(answer.key, answer.value, None, "unknown_key", note=note, line=answer.line)
        if answer.kind != "number":
            return Item(answer.key, answer.value, expected, "unparseable",
                        note=m("check_unparseable", reason=m("check_not_a_number")), line=answer.line)
        given = np.asarray(answer.value, dtype=float)
        verdict = self._number_verdict(answer, given, expected, ())
        if verdict == "correct":
            return Item(answer.key, answer.value, expected, "correct", line=answer.line)
        if verdict == "imprecise":
            note = m("check_imprecise", digits=answer.digits, needed=self.sigfigs)
            return Item(answer.key, answer.value, expected, "imprecise", note=note, line=answer.line)

        def close(value: float) -> bool:
            return bool(abs(float(given) - value) <= self._tolerance(answer, np.asarray(value), ()))

        code = later.diagnose(answer.key, close)
        if code is None:
            return Item(answer.key, answer.value, expected, "incorrect", line=answer.line)
        diagnosis = Diagnosis(code, m(f"diagnosis_{code}"), m("later_step_to_check",
                                                               update=m(f"optim_update_{later.problem.train.update.update}")))
        return Item(answer.key, answer.value, expected, "incorrect", diagnosis=diagnosis, line=answer.line)

    def _describe(self, found: Mistake, q: Quantity) -> tuple[str, str]:
        """The words of a catalogue mistake; for a whole tensor, those of an entry it changes."""
        if not q.shape:
            return describe(found, q, self.graph, self.messages)
        from .matrixforms import tensor_step

        if dict(found.info).get("tensor") == q.name:  # made in every entry of this tensor: told of the whole
            return describe(found, q, self.graph, self.messages)[0], tensor_step(q, self.graph, self.messages)
        outcome = self.student.outcome(found)
        correct = self.student.correct
        entry = None
        for name in self._entries(q):
            one = Quantity(q.kind, name)
            a, b = outcome.get(one), correct.get(one)
            if a is not None and b is not None and not np.allclose(a, b, rtol=1e-10, atol=1e-300):
                entry = one
                break
        message, step = describe(found, entry or Quantity(q.kind, self._entries(q)[0]), self.graph, self.messages)
        if not found.edits or found.parts:
            step = tensor_step(q, self.graph, self.messages)
        return message, step

    def _written_matcher(self, answer: Answer, q: Quantity, given: np.ndarray, shape: tuple[int, ...],
                         digits: int, hints: Hints | None) -> tuple[Callable[[np.ndarray], np.ndarray], bool]:
        """Which candidate values a number (or matrix) as written matches, each within half its last digit,
        and whether pairs of mistakes may explain it.  With enough ``digits`` to be diagnosed, the
        matcher is offered to follow-through (``hints``)."""
        pairs = self.rtol is not None or digits >= PAIR_DIGITS

        def matches(values: np.ndarray) -> np.ndarray:
            close = np.abs(given - values) <= self._tolerance(answer, values, shape)
            return np.all(close, axis=tuple(range(1, values.ndim)))

        if hints is not None and (self.rtol is not None or digits >= DIAGNOSIS_DIGITS):
            hints.matchers[id(answer)] = (q, matches, pairs)
        return matches, pairs

    def _number_verdict(self, answer: Answer, given: np.ndarray, expected: Any, shape: tuple[int, ...]) -> str:
        """``correct``, ``imprecise`` or ``incorrect`` for a number (or a list of numbers).

        Significant-figure judging, after PrairieLearn's ``is_correct_scalar_sf``
        (correct within half a unit of the required digit of the true value):
        an answer must (1) not be wrong at the precision it was written (the true
        value rounds to it), (2) match the true value to ``sigfigs`` significant
        digits, and (3) be written with at least ``sigfigs`` of them, else it is
        ``imprecise`` (right as far as it goes) — unless the digits left out are
        zeros of the true value (``2`` for a true 2.000).  ``0`` is right only for a true 0:
        it has no significant digit.  ``--rtol`` replaces all this.
        """
        if not _within(given, expected, self._tolerance(answer, expected, shape)):
            return "incorrect"
        if self.rtol is not None:
            return "correct"
        truth = np.asarray(expected, dtype=float).reshape(-1)  # a matrix's entries, row by row
        values = np.asarray(given, dtype=float).reshape(-1)
        imprecise = False
        for v, t, place in zip(values, truth, answer.places):
            if abs(t) <= ZERO:
                continue  # within half a written unit of a true 0: right at any number of digits
            if v == 0:
                return "incorrect"
            unit = 10.0 ** (math.floor(math.log10(abs(t)) + 1e-12) - self.sigfigs + 1)
            matches = abs(v - t) <= 0.5 * unit * (1 + 1e-9) + NOISE * abs(t)
            if _significant(v, place) < self.sigfigs:
                # Short, but the digits left out are zeros of the true value (2 for 2.000, 0.3 for 0.30004):
                # right, as PrairieLearn's value-based comparison has it; otherwise imprecise.
                imprecise = imprecise or not matches
                continue
            if not matches:
                return "incorrect"  # 0.100 for 0.0999: the true value to 3 digits is 0.0999
        return "imprecise" if imprecise else "correct"

    def _tolerance(self, answer: Answer, reference: Any, shape: tuple[int, ...]) -> Any:
        """How far from ``reference`` (the truth, or stacked candidates) an answer may be."""
        scale = np.abs(np.asarray(reference, dtype=float))
        if self.rtol is not None:
            return self.rtol * scale + 1e-15
        places = np.asarray(answer.places, dtype=float).reshape(shape)
        return 0.5 * places * (1 + 1e-9) + NOISE * scale

    def _incorrect(self, answer: Answer, q: Quantity, expected: Any, matches: Callable[[np.ndarray], np.ndarray],
                   pairs: bool, note: str | None = None, prefer: Sequence[str] = (),
                   hints: Hints | None = None) -> Item:
        hints = hints or Hints()
        found = self.diagnoser.find(q, matches, pairs, prefer, hints.reject, hints.pair_ok)
        diagnosis = None
        if found is not None:
            if (found, q) not in self._words:
                self._words[(found, q)] = tuple(map(self._labelled, self._describe(found, q)))
            message, step = self._words[(found, q)]
            diagnosis = Diagnosis(found.code, message, step, found.codes)
        else:
            note = (note + " " if note else "") + self.messages("check_no_diagnosis")
        return Item(answer.key, answer.value, expected, "incorrect", diagnosis, note, answer.line)

    def _grade_symbolic(self, answer: Answer, q: Quantity, expected: Any, source: str,
                        prefer: Sequence[str] = (), hints: Hints | None = None) -> Item:
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
        matches = _near(value)
        if hints is not None:
            hints.matchers[id(answer)] = (q, matches, True)
        return self._incorrect(answer, q, expected, matches, True, note, prefer, hints)


def _near(value: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Which candidate values a formula's value matches (to SYMBOLIC_RTOL·1000: it is computed, not written)."""
    def matches(values: np.ndarray) -> np.ndarray:
        rtol = SYMBOLIC_RTOL * 1000
        return np.all(np.abs(np.asarray(value) - values) <= rtol * np.abs(values) + 1e-15,
                      axis=tuple(range(1, values.ndim)))
    return matches


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
    array = np.asarray(value, dtype=float)
    if array.ndim == 2:  # a matrix, row by row
        return "[" + ", ".join("[" + ", ".join(f"{v:.6g}" for v in row) + "]" for row in array) + "]"
    return ", ".join(f"{v:.6g}" for v in np.atleast_1d(array))


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
        # Only the parameters move (the forward pass is recomputed from them): targets and constants
        # keep their values, so that identities they satisfy (one-hot targets, Σy = 1) still hold.
        # A problem without parameters has only values to vary.
        kinds = ("parameter",) if g.parameters else ("value",)
        for _ in range(count):
            point = {k: (v * rng.uniform(0.5, 1.5) if v else rng.uniform(-1, 1))
                     for k, v in g.leaf_values.items() if g.nodes[k].kind in kinds}
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
          rtol: float | None = None, lang: str = "en", learning_rate: float | None = None,
          sigfigs: int | None = None) -> Report:
    """Grade one set of answers against a problem (see :class:`Grader`).

    >>> import explain.check as c
    >>> c.check("examples/seed003_network.toml", {"dE/dw5": 0.0346}).score
    {'correct': 1, 'total': 1, 'points': 1, 'max_points': 1}
    """
    if isinstance(answers, (str, Path)):
        answers = read_answers(answers)
    elif not isinstance(answers, Answers):
        answers = answers_from_mapping(answers)
    return Grader(source, rtol=rtol, lang=lang, learning_rate=learning_rate, sigfigs=sigfigs).grade(answers)


# -- many answer files ------------------------------------------------------------------
@dataclass
class Graded:
    """The outcome for one answers file: its report, or why it could not be read."""

    path: str
    report: Report | None = None
    error: str | None = None
    line: int | None = None  # where the file could not be read, when known
    reason: str | None = None  # why, without the file's name


_GRADER: Grader | None = None
_GRADER_KEY: tuple[Any, ...] | None = None


def _start_worker(problem: str, rtol: float | None, lang: str, sigfigs: int | None = None) -> None:
    """Process initializer: derive the problem once per process (inherited when forked)."""
    global _GRADER, _GRADER_KEY
    key = (problem, rtol, lang, sigfigs)
    if _GRADER is None or _GRADER_KEY != key:
        _GRADER, _GRADER_KEY = Grader(problem, rtol=rtol, lang=lang, sigfigs=sigfigs), key


def _start_child(parent: int, problem: str, rtol: float | None, lang: str, sigfigs: int | None = None) -> None:
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
    _start_worker(problem, rtol, lang, sigfigs)


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
            results.append(Graded(path, error=str(exc), line=getattr(exc, "line", None), reason=exc.reason))
    return results


def grade_files(problem: str | Path, paths: Iterable[str | Path], *, rtol: float | None = None, lang: str = "en",
                jobs: int | None = None, progress: Callable[[int], None] | None = None,
                sigfigs: int | None = None) -> list[Graded]:
    """Grade many answers files against one problem, in parallel processes.

    The problem is derived once in this process; on systems that fork,
    the workers inherit it (and the table of the catalogue's results), else
    each worker derives it once.  ``progress(n)`` is called as files finish.
    Results come back in the order of ``paths``.
    """
    global _GRADER, _GRADER_KEY
    paths = [str(p) for p in paths]
    problem = str(problem)
    _start_worker(problem, rtol, lang, sigfigs)
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
    warm_follow_through(_GRADER)

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    size = max(1, min(50, len(paths) // (jobs * 8)))
    chunks = [paths[i:i + size] for i in range(0, len(paths), size)]
    by_path: dict[str, Graded] = {}
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_start_child,
                               initargs=(os.getpid(), problem, rtol, lang, sigfigs))
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


def grade_roster(roster: str | Path, paths: Iterable[str | Path], *, rtol: float | None = None, lang: str = "en",
                 jobs: int | None = None, progress: Callable[[int], None] | None = None,
                 sigfigs: int | None = None) -> tuple[list[Graded], dict[str, str]]:
    """Grade each student (the answers file's name) against their own variant, as the roster says.

    Returns the results in the order of ``paths`` and, for each path, the variant
    file it was graded against.  A student missing from the roster gets an
    unreadable row (graded against no problem), as a file that cannot be read does.
    """
    from .roster import read_roster

    students = read_roster(roster)
    paths = [str(p) for p in paths]
    groups: dict[str, list[str]] = {}
    results: dict[str, Graded] = {}
    problem_of: dict[str, str] = {}
    for path in paths:
        variant = students.get(Path(path).stem)
        if variant is None:
            reason = Messages(lang)("check_not_in_roster", student=Path(path).stem, roster=str(roster))
            results[path] = Graded(path, error=f"{path}: {reason}", reason=reason)
            continue
        groups.setdefault(variant, []).append(path)
        problem_of[path] = variant
    for variant, group in groups.items():
        for graded in grade_files(variant, group, rtol=rtol, lang=lang, jobs=jobs, progress=progress,
                                  sigfigs=sigfigs):
            results[graded.path] = graded
    return [results[p] for p in paths], problem_of


__all__ = [
    "Answer", "Answers", "Diagnosis", "Grader", "Graded", "Item", "Report", "VERDICTS",
    "check", "grade_files", "grade_roster", "parse_answers", "read_answers", "answers_from_mapping",
]
