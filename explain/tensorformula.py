"""Formula answers over vectors and matrices (``"dE/dW2" = "delta2 @ h1.T"``), evaluated with NumPy.

The text is read by the safe walker of :mod:`explain.parse` (no eval, no sympify)
with :class:`_ArrayBuilder`, whose values are NumPy float arrays.  The names a
formula may use (docs/checking.md#formulas-over-vectors-and-matrices):

* the problem's tensors (``W1``, ``x``, ``z1``, ``h1``) with their numbers, and its
  scalar names (values, parameters, stages, entries such as ``W1_0_1``);
* ``delta_<name>`` for ∂loss/∂<name>, an array of the tensor's shape (its entries'
  gradients from the scalar derivation); for a stage named ``zK``, also ``deltaK``;
* the problem's functions elementwise, and ``sum``, ``mean`` (with an optional axis),
  ``outer``, ``softmax``, ``log_softmax``, ``logsumexp``, ``norm2``.

A vector is a column (m×1), as courses write δ xᵀ; a formula that only makes
sense with row vectors (``x @ W`` for a row x) is read with rows instead.  A
result of m×1 or 1×m is the vector of m entries.  In a data problem a formula
describes one sample, and for a parameter its values are summed (or averaged)
over the samples, as for scalar formulas.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .derivation import Derivation
from .diagnose import Outcome, Quantity
from .errors import ExplainError
from .graph import Graph
from .i18n import message
from .parse import CONSTANTS, _Builder, _walk
from .functions import USER_FUNCTIONS
from .tensors import broadcast_shape, entry_name, matmul_shape, shape_text

#: Functions of whole vectors and matrices in formula answers, with their (min, max) arguments.
ARRAY_FUNCTIONS: dict[str, tuple[int, int]] = {
    "sum": (1, 2), "mean": (1, 2), "outer": (2, 2), "softmax": (1, 1), "log_softmax": (1, 1),
    "logsumexp": (1, 1), "norm2": (1, 1),
}
#: At most this many entries in any value a formula computes (``outer(outer(x, x), outer(x, x))`` stops here).
MAX_RESULT = 1_000_000
_WORD = re.compile(r"[A-Za-z_]\w*")
_DELTA_K = re.compile(r"^z(\d+)$")


def delta_names(shapes: Mapping[str, tuple[int, ...]], graph: Graph) -> dict[str, str]:
    """``delta_<tensor>`` and, for a stage named ``zK``, ``deltaK`` → the tensor (∂loss/∂ it)."""
    found = {}
    for name, shape in shapes.items():
        if not all(entry_name(name, i) in graph.nodes for i in np.ndindex(shape)):
            continue
        found[f"delta_{name}"] = name
        if (k := _DELTA_K.match(name)) and f"delta{k.group(1)}" not in graph.nodes:
            found[f"delta{k.group(1)}"] = name
    return found


def _numeric_functions() -> dict[str, Any]:
    from .functions import OPS

    return {op.user: op.numpy for op in OPS.values() if op.user is not None}


class _ArrayBuilder(_Builder[np.ndarray]):
    """Values are float arrays; 1-D tensors are given as columns (or rows, see the module)."""

    def __init__(self, names: Mapping[str, np.ndarray]) -> None:
        self._names = names
        self.used: set[str] = set()

    def number(self, value: float | int) -> np.ndarray:
        return np.asarray(float(value))

    def name(self, name: str) -> np.ndarray | None:
        if name in CONSTANTS:
            return np.asarray(float(CONSTANTS[name]))
        found = self._names.get(name)
        if found is not None:
            self.used.add(name)
        return found

    def known_names(self) -> list[str]:
        return [*self._names, *CONSTANTS]

    def binary(self, op: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        shape = broadcast_shape(op, left.shape, right.shape)
        _bounded(shape)
        with np.errstate(all="ignore"):
            if op == "+":
                return np.asarray(left + right)
            if op == "-":
                return np.asarray(left - right)
            if op == "*":
                return np.asarray(left * right)
            if op == "/":
                return np.asarray(np.divide(left, right))
            return np.asarray(np.power(left, right))

    def negate(self, operand: np.ndarray) -> np.ndarray:
        return -operand

    def matmul(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        _bounded(matmul_shape(left.shape, right.shape))
        with np.errstate(all="ignore"):
            return np.asarray(left @ right)

    def transpose(self, operand: np.ndarray) -> np.ndarray:
        return operand.T

    def function_arity(self, func: str) -> tuple[int, int] | None:
        if func in ARRAY_FUNCTIONS:
            return ARRAY_FUNCTIONS[func]
        if func in USER_FUNCTIONS:
            n = USER_FUNCTIONS[func][1]
            return (n, n)
        return None

    def call(self, func: str, args: list[np.ndarray]) -> np.ndarray:
        with np.errstate(all="ignore"):
            if func in ("sum", "mean"):
                reduce = np.sum if func == "sum" else np.mean
                if len(args) == 1:
                    return np.asarray(reduce(args[0]))
                axis = args[1]
                last = args[0].ndim - 1
                if axis.ndim or float(axis) != int(axis) or not 0 <= int(axis) <= last:
                    raise ValueError(message("tensor_axis", func=func, last=last))
                return np.asarray(reduce(args[0], axis=int(axis), keepdims=True))
            if func == "outer":
                _bounded((args[0].size, args[1].size))
                return np.outer(args[0], args[1])
            if func == "norm2":
                return np.asarray(np.sum(args[0] ** 2))
            if func in ("softmax", "log_softmax", "logsumexp"):
                z = args[0]
                if z.ndim == 0 or (z.ndim == 2 and 1 not in z.shape):
                    raise ValueError(message("tensor_needs_vector", func=func, shape=shape_text(z.shape)))
                top = np.max(z)
                lse = top + np.log(np.sum(np.exp(z - top)))
                if func == "logsumexp":
                    return np.asarray(lse)
                return np.asarray(z - lse if func == "log_softmax" else np.exp(z - lse))
            return np.asarray(_NUMERIC[func](*args), dtype=float)


_NUMERIC = _numeric_functions()


def _bounded(shape: tuple[int, ...]) -> None:
    """Refuse a value too big to compute (before it is computed)."""
    if math.prod(shape) > MAX_RESULT:
        raise ValueError(message("check_formula_too_large", shape=shape_text(shape), limit=f"{MAX_RESULT:,}"))


@dataclass(frozen=True)
class Formula:
    """A formula answer, read once: its text, where it is, the names it may use and those it uses."""

    text: str
    where: str
    hidden: frozenset[str]
    used: frozenset[str]


class TensorFormulas:
    """Formula answers over vectors and matrices for one derivation."""

    def __init__(self, derivation: Derivation, shapes: Mapping[str, tuple[int, ...]]) -> None:
        self.derivation = derivation
        self.graph = g = derivation.graph
        self.shapes = {n: s for n, s in shapes.items()
                       if all(entry_name(n, i) in g.nodes for i in np.ndindex(s))}
        self.deltas = delta_names(self.shapes, g)
        entries = {entry_name(n, i) for n, s in self.shapes.items() for i in np.ndindex(s)}
        self.scalars = [n for n in g.nodes if n not in entries] + sorted(entries)
        self.scalar_deltas = {f"delta_{n}": n for n in g.nodes if n not in entries and f"delta_{n}" not in g.nodes}
        self.per_sample = {n for n in self.shapes if any(g.nodes[entry_name(n, i)].per_sample
                                                         for i in np.ndindex(self.shapes[n]))}
        self.per_sample |= {f"delta_{n}" for n in self.per_sample}
        self.per_sample |= {d for d, n in self.deltas.items() if n in self.per_sample}
        self.per_sample |= {n for n in g.nodes if g.nodes[n].per_sample}
        self.per_sample |= {d for d, n in self.scalar_deltas.items() if g.nodes[n].per_sample}
        self._words = {*self.shapes, *self.deltas}

    def uses_tensors(self, text: Any) -> bool:
        """Whether a formula is one over vectors and matrices (it names one, or uses @ or .T)."""
        return isinstance(text, str) and bool(self.shapes) and (
            "@" in text or ".T" in text or bool(set(_WORD.findall(text)) & self._words))

    # -- names and their numbers ------------------------------------------------------------
    def _hidden(self, q: Quantity) -> frozenset[str]:
        """The names a formula for ``q`` may not use: the quantity itself proves nothing."""
        if q.kind == "value":
            return frozenset({q.name})
        if q.kind == "grad":
            return frozenset({d for d, n in {**self.deltas, **self.scalar_deltas}.items() if n == q.name})
        return frozenset()

    def _numbers(self, values: Mapping[str, Any], adjoints: Mapping[str, Any],
                 hidden: frozenset[str]) -> dict[str, tuple[np.ndarray, bool, bool]]:
        """Every name's numbers (all samples), whether they are per sample, and whether a tensor's."""
        g = self.graph
        n = g.n_samples or 1
        # A per-sample delta is the derivative of that sample's own loss (the mean's 1/n taken out).
        scale = n if g.is_data_problem and g.reduction == "mean" else 1
        outcome = Outcome(values, adjoints, {}, None)
        found: dict[str, tuple[np.ndarray, bool, bool]] = {}
        for name in self.scalars:
            if name not in hidden:
                found[name] = (np.asarray(values[name], dtype=float), g.nodes[name].per_sample, False)
        for d, name in self.scalar_deltas.items():
            if d not in hidden:
                per = g.nodes[name].per_sample
                found[d] = (np.asarray(adjoints[name], dtype=float) * (scale if per else 1), per, False)
        for name, shape in self.shapes.items():
            if name not in hidden:
                found[name] = (np.asarray(outcome.get(Quantity("value", name, shape)), dtype=float),
                               name in self.per_sample, True)
        for d, name in self.deltas.items():
            if d not in hidden:
                per = name in self.per_sample
                grad = np.asarray(outcome.get(Quantity("grad", name, self.shapes[name])), dtype=float)
                found[d] = (grad * (scale if per else 1), per, True)
        return found

    def _environment(self, numbers: Mapping[str, tuple[np.ndarray, bool, bool]], sample: int,
                     rows: bool) -> dict[str, np.ndarray]:
        """One sample's numbers, each 1-D tensor as a column (or a row)."""
        env: dict[str, np.ndarray] = {}
        for name, (array, per_sample, tensor) in numbers.items():
            if per_sample and self.graph.is_data_problem:
                array = array[sample]
            if tensor and array.ndim == 1:
                array = array.reshape((1, -1) if rows else (-1, 1))
            env[name] = array
        return env

    # -- reading and evaluating ---------------------------------------------------------
    def parse(self, text: str, q: Quantity, where: str) -> Formula:
        """Read the formula (every name known, every shape fitting); errors name the answer."""
        hidden = self._hidden(q)
        ev = self.derivation.evaluation
        numbers = self._numbers(ev.values, ev.adjoints, hidden)
        builder = self._run(text, where, self._environment(numbers, 0, False),
                            self._environment(numbers, 0, True))[1]
        return Formula(text, where, hidden, frozenset(builder.used))

    def _run(self, text: str, where: str, columns: Mapping[str, np.ndarray],
             rows: Mapping[str, np.ndarray]) -> tuple[np.ndarray, _ArrayBuilder]:
        builder = _ArrayBuilder(columns)
        try:
            return _walk(text, builder, where), builder
        except ValueError as exc:
            first = exc
        builder = _ArrayBuilder(rows)
        try:
            return _walk(text, builder, where), builder
        except ValueError:
            raise ExplainError(where, str(first)) from None

    def value(self, formula: Formula, q: Quantity, target: tuple[int, ...], evaluation: Any = None) -> np.ndarray:
        """The formula's value for quantity ``q`` (of shape ``target``), at the problem's numbers or ``evaluation``'s."""
        g = self.graph
        ev = evaluation if evaluation is not None else self.derivation.evaluation
        n = g.n_samples or 1
        per_formula = g.is_data_problem and bool(formula.used & self.per_sample)
        q_per_sample = g.is_data_problem and len(target) == len(q.shape) + 1
        results = []
        numbers = self._numbers(ev.values, ev.adjoints, formula.hidden)
        for s in (range(n) if per_formula else [0]):
            columns = self._environment(numbers, s, False)
            rows = self._environment(numbers, s, True)
            results.append(_fit(self._run(formula.text, formula.where, columns, rows)[0], q.shape))
        if q_per_sample:
            value = np.stack(results) if per_formula else np.stack([results[0]] * n)
            if q.kind == "grad" and g.reduction == "mean":
                value = value / n
            return value
        if q.kind == "grad" and per_formula and all(r.shape == results[0].shape for r in results):
            total = np.sum(results, axis=0)
            return total / n if g.reduction == "mean" else total
        return results[0]

    def equivalent(self, formula: Formula, q: Quantity, target: tuple[int, ...], count: int = 3) -> bool:
        """Whether the formula also gives the quantity where the parameters are moved (random points)."""
        if q.kind not in ("value", "grad"):
            return True  # after-the-step answers are judged at the problem's own point only
        g = self.graph
        rng = np.random.default_rng(0)
        kinds = ("parameter",) if g.parameters else ("value",)
        program = self.derivation.program
        for _ in range(count):
            point = {k: (v * rng.uniform(0.5, 1.5) if np.all(v) else rng.uniform(-1, 1))
                     for k, v in g.leaf_values.items() if g.nodes[k].kind in kinds}
            ev = program.evaluate(point)
            truth = Outcome(ev.values, ev.adjoints, {}, None).get(q)
            try:
                got = self.value(formula, q, target, ev)
            except ExplainError:
                return False
            truth = np.asarray(truth, dtype=float)
            if got.shape != truth.shape or not np.all(np.isfinite(got)):
                return False
            scale = max(1e-300, float(np.max(np.abs(truth))) if truth.size else 0.0)
            if not np.allclose(got, truth, rtol=1e-7, atol=1e-10 * scale):
                return False
        return True


def _fit(value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A column or row of m entries is the vector of m entries; a 1×1 is a number."""
    value = np.asarray(value, dtype=float)
    if value.shape == shape:
        return value
    if value.size == math.prod(shape) and value.ndim == 2 and 1 in value.shape and len(shape) <= 1:
        return value.reshape(shape)
    return value


__all__ = ["ARRAY_FUNCTIONS", "Formula", "TensorFormulas", "delta_names"]
