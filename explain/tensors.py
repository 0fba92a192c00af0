"""Vectors and matrices in problem files, computed through the scalar engine (issue 12, the scalar view).

A parameter or value written as a nested list (``W1 = [[0.15, 0.20], [0.25, 0.30]]``)
is a tensor *leaf*: each entry becomes a scalar leaf of its own, named
``W1_0_1`` inside (a plain identifier that every printer, the compiler and
``check`` accept) and labelled ``W1[0,1]`` where people write it (answer keys).
A ``[forward]`` stage whose value is a tensor expands into one scalar stage per
entry (``z1 = W1 @ x + b1`` gives ``z1_0`` and ``z1_1``), each an ordinary small
SymPy expression of earlier entries; so the derivation, the verifier, training,
``check`` and every output format work on the expansion unchanged.

:class:`TensorBuilder` reads the user's text through the safe walker of
:mod:`explain.parse` (no eval, no sympify), with NumPy object arrays of SymPy
expressions as values: NumPy's own broadcasting gives the shapes, and every
shape is checked as the stage is built, before anything runs.  The shapes of
tensor leaves and stages are kept (``Problem.shapes``) for the matrix-form
derivation that comes later (``OPS[...].vjp``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np
import sympy as sp

from .errors import ExplainError
from .i18n import message
from .parse import Prebuilt, _SymbolicBuilder, _walk

#: At most this many entries in one vector or matrix: each is a node of the scalar graph.
MAX_ENTRIES = 4096

#: Functions of whole vectors and matrices, with their (min, max) number of arguments.
TENSOR_FUNCTIONS: dict[str, tuple[int, int]] = {
    "sum": (1, 2), "mean": (1, 2), "softmax": (1, 1), "log_softmax": (1, 1), "logsumexp": (1, 1),
    "cross_entropy": (2, 2), "mse": (2, 2), "bce": (2, 2), "norm2": (1, 1),
}

#: Tensor functions that also take plain numbers: ``bce(p, y)`` of a scalar output, ``norm2(w)`` of a scalar weight.
SCALAR_TOO = frozenset({"bce", "mse", "norm2"})


#: Functions whose every output entry reads every entry of the (first) argument.  Written
#: inline, a composite argument (``cross_entropy(W2 @ relu(W1 @ x + b1) + b2, y)``) would be
#: copied into each entry's scalar expression n + 1 times, and SymPy would differentiate the
#: whole network once per parameter: the reader makes the argument a stage of its own first.
WHOLE_VECTOR_FUNCTIONS = frozenset({"softmax", "log_softmax", "logsumexp", "cross_entropy"})


def composite_arguments(text: str, names: Collection[str]) -> list[tuple[int, int, str]]:
    """The first arguments of the outermost :data:`WHOLE_VECTOR_FUNCTIONS` calls in ``text`` that are
    more than a name: (start, end, source text), with start and end as offsets into ``text.strip()``.

    A file's own name ``softmax`` stays a name.  A text Python cannot read gives no arguments
    (the expression reader reports it).
    """
    import ast

    source = text.strip()
    try:
        tree = ast.parse(source, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    encoded = source.encode("utf-8")
    starts = [0]  # byte offset of each line: ast counts columns in UTF-8 bytes
    for line in encoded.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    found: list[tuple[int, int, str]] = []

    def visit(node: ast.AST) -> None:
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args
                and node.func.id in WHOLE_VECTOR_FUNCTIONS and node.func.id not in names
                and not isinstance(node.args[0], ast.Name)):
            arg = node.args[0]
            assert arg.end_lineno is not None and arg.end_col_offset is not None
            start = starts[arg.lineno - 1] + arg.col_offset
            end = starts[arg.end_lineno - 1] + arg.end_col_offset
            found.append((start, end, encoded[start:end].decode("utf-8")))
            for other in node.args[1:]:
                visit(other)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def with_names(text: str, parts: list[tuple[int, int, str]], names: list[str]) -> str:
    """``text.strip()`` with each part (from :func:`composite_arguments`) replaced by its name."""
    encoded = text.strip().encode("utf-8")
    for (start, end, _), name in sorted(zip(parts, names), reverse=True):
        encoded = encoded[:start] + name.encode("utf-8") + encoded[end:]
    return encoded.decode("utf-8")


Shape = tuple[int, ...]


def entry_name(name: str, index: tuple[int, ...]) -> str:
    """The internal name of one entry: ``W1_0_1`` (an identifier every format can print)."""
    return "_".join([name, *map(str, index)])


def entries_of(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Each entry's internal name (``W1_0_1``) → (its tensor, its index)."""
    return {entry_name(name, index): (name, index) for name, shape in shapes.items() for index in np.ndindex(shape)}


def entry_label(name: str, index: tuple[int, ...]) -> str:
    """How people write one entry: ``W1[0,1]``."""
    return f"{name}[{','.join(map(str, index))}]"


def shape_text(shape: Shape) -> str:
    """``(2, 3)``, ``(2,)`` or ``()``, as NumPy writes shapes."""
    return str(tuple(shape))


def read_nested(value: list[Any], where: str, limit: int = MAX_ENTRIES) -> np.ndarray:
    """A nested list of numbers as a float array of 1 or 2 dimensions (exit 2 otherwise), at most ``limit`` entries."""
    if not value:
        raise ExplainError(where, message("tensor_list_empty"))
    if all(isinstance(v, list) for v in value):
        width = len(value[0])
        rows = []
        for i, row in enumerate(value):
            if any(isinstance(v, list) for v in row):
                raise ExplainError(where, message("tensor_list_depth"))
            if len(row) != width:
                raise ExplainError(where, message("tensor_list_ragged", row=i, got=len(row), expected=width))
            rows.append([_entry(v, where, f"[{i}][{j}]") for j, v in enumerate(row)])
        if width == 0:
            raise ExplainError(where, message("tensor_list_empty"))
        array = np.array(rows, dtype=float)
    elif any(isinstance(v, list) for v in value):
        raise ExplainError(where, message("tensor_list_mixed"))
    else:
        array = np.array([_entry(v, where, f"[{i}]") for i, v in enumerate(value)], dtype=float)
    if array.size > limit:
        raise ExplainError(where, message("tensor_too_many", count=array.size, limit=limit))
    return array


#: ``randn(...)`` or ``rand(...)``, optionally scaled by a number: read by a regular expression, never evaluated.
RANDOM_CALL = re.compile(r"\s*(?:(?P<scale>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*\*\s*)?"
                     r"(?P<func>randn|rand)\s*\((?P<args>[^()]*)\)\s*")


def random_shape(text: str, where: str, limit: int = MAX_ENTRIES) -> tuple[float, str, Shape] | None:
    """``"randn(3, 4)"``, ``"0.1*rand(4)"``: (scale, function, shape) of a random vector or matrix, else None.

    Read with a small regular expression, never evaluated; ``randn()`` without a
    count is a single number and stays with the value expressions (None here).
    """
    match = RANDOM_CALL.fullmatch(text)
    if match is None or not match["args"].strip():
        return None
    counts = [c.strip() for c in match["args"].split(",")]
    func = match["func"]
    if not all(c.isdigit() for c in counts):
        return None  # randn(n) of a name: a value expression, as before
    if len(counts) > 2 or not all(int(c) > 0 for c in counts):
        raise ExplainError(where, message("tensor_random_shape", func=func, text=text.strip()))
    shape = tuple(int(c) for c in counts)
    size = math.prod(shape)
    if size > limit:
        raise ExplainError(where, message("tensor_too_many", count=size, limit=limit))
    scale = float(match["scale"]) if match["scale"] else 1.0
    if not math.isfinite(scale):
        raise ExplainError(where, message("tensor_random_shape", func=func, text=text.strip()))
    return scale, func, shape


def draw_random(spec: tuple[float, str, Shape], rng: np.random.Generator) -> np.ndarray:
    """The entries of a random tensor, row by row: randn standard normal, rand uniform on [0, 1)."""
    scale, func, shape = spec
    draw = rng.standard_normal if func == "randn" else rng.random
    return scale * draw(shape)


def _entry(value: Any, where: str, index: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ExplainError(where, message("tensor_list_entry", index=index, value=repr(value)))
    return float(value)


def symbol_array(name: str, shape: Shape) -> np.ndarray:
    """The tensor ``name`` as an object array of its entries' symbols."""
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        out[index] = sp.Symbol(entry_name(name, index), real=True)
    return out


def _array(value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    out = np.empty((), dtype=object)
    out[()] = value
    return out


class TensorBuilder(_SymbolicBuilder):
    """Builds NumPy object arrays of SymPy expressions, one per entry; a number is a 0-d array.

    ``tensors`` maps each tensor name to its array of entry symbols; ``constants``
    holds the numbers of ``[values]`` (a class label must be known when the stage is built).
    """

    def __init__(self, names: Mapping[str, sp.Expr], tensors: Mapping[str, np.ndarray],
                 constants: Mapping[str, float], reducible: Collection[str] = (),
                 onehot: Callable[[str, int], np.ndarray | None] | None = None) -> None:
        super().__init__(names, reducible)
        self._tensors = tensors
        self._constants = constants
        # cross_entropy(z, label) of a [data] column of class numbers: its one-hot columns (the reader makes them).
        self._onehot = onehot

    # -- leaves ---------------------------------------------------------------------
    def number(self, value: float | int) -> Any:
        return _array(super().number(value))

    def name(self, name: str) -> Any:
        if name in self._tensors:
            return self._tensors[name]
        found = super().name(name)
        return None if found is None else _array(found)

    def known_names(self) -> list[str]:
        return [*super().known_names(), *self._tensors]

    # -- elementwise ----------------------------------------------------------------
    def _broadcast(self, op: str, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape = broadcast_shape(op, left.shape, right.shape)
        return np.broadcast_to(left, shape), np.broadcast_to(right, shape)

    def binary(self, op: str, left: Any, right: Any) -> Any:
        left, right = self._broadcast(op, left, right)
        scalar = super().binary
        return _map(lambda a, b: scalar(op, a, b), left, right)

    def chain(self, terms: list[tuple[str, Any]]) -> Any:
        result = terms[0][1]
        for op, term in terms[1:]:
            result = self.binary(op, result, term)
        return result

    def negate(self, operand: Any) -> Any:
        return _map(lambda a: -a, operand)

    # -- matrices -------------------------------------------------------------------
    def matmul(self, left: Any, right: Any) -> Any:
        matmul_shape(left.shape, right.shape)
        rows = left if left.ndim == 2 else left.reshape(1, -1)
        cols = right if right.ndim == 2 else right.reshape(-1, 1)
        out = np.empty((rows.shape[0], cols.shape[1]), dtype=object)
        for i in range(rows.shape[0]):
            for j in range(cols.shape[1]):
                out[i, j] = sp.Add(*(rows[i, k] * cols[k, j] for k in range(rows.shape[1])))
        # NumPy's rule: a vector operand's dimension is dropped from the result.
        if left.ndim == 1:
            out = out[0]
        if right.ndim == 1:
            out = out[..., 0]
        return _array(out) if out.ndim == 0 else out

    def transpose(self, operand: Any) -> Any:
        return operand.T

    # -- functions ------------------------------------------------------------------
    def function_arity(self, func: str) -> tuple[int, int] | None:
        if func in TENSOR_FUNCTIONS and func not in self._names:  # a file's own name "mean" stays a name
            return TENSOR_FUNCTIONS[func]
        return super().function_arity(func)

    def call(self, func: str, args: list[Any]) -> Any:
        if func not in TENSOR_FUNCTIONS:
            scalar = super().call
            return _map(lambda *entries: scalar(func, list(entries)), *self._broadcast_all(func, args))
        if func in ("sum", "mean"):
            v = args[0]
            if self._reducible and len(args) == 1 and v.ndim == 0:
                # [cost]: mean(l) of a per-sample stage l is the reduction over the samples.
                return _array(super().call(func, [v[()]]))
            if v.ndim == 0:
                raise ValueError(message("tensor_reduce_number", func=func))
            if len(args) == 2:
                if v.ndim == 0:
                    raise ValueError(message("tensor_axis", func=func, last=-1))
                axis = self._whole(args[1], func, v.ndim - 1)
                moved = np.moveaxis(v, axis, 0)
                out = np.empty(moved.shape[1:], dtype=object)
                for index in np.ndindex(out.shape):
                    column = moved[(slice(None), *index)]
                    total = sp.Add(*column)
                    out[index] = total / len(column) if func == "mean" else total
                return out
            total = sp.Add(*v.flat)
            return _array(total / v.size if func == "mean" else total)
        if func == "norm2":
            return _array(sp.Add(*(e**2 for e in args[0].flat)))
        if func in ("mse", "bce"):
            a, b = args
            if a.shape != b.shape:
                raise ValueError(message("tensor_same_shape", func=func, left=shape_text(a.shape),
                                         right=shape_text(b.shape)))
            if func == "mse":
                return _array(sp.Add(*((x - y) ** 2 for x, y in zip(a.flat, b.flat))) / a.size)
            # torch.nn.functional.binary_cross_entropy(p, y), reduction="mean":
            # −(1/n) Σ [y·log p + (1 − y)·log(1 − p)] (torch's clamp of log at −100 is not modelled).
            return _array(-sp.Add(*(y * sp.log(p) + (1 - y) * sp.log(1 - p) for p, y in zip(a.flat, b.flat)))
                          / a.size)
        z = args[0]
        if z.ndim != 1:
            raise ValueError(message("tensor_needs_vector", func=func, shape=shape_text(z.shape)))
        lse = sp.log(sp.Add(*(sp.exp(e) for e in z)))
        if func == "logsumexp":
            return _array(lse)
        if func == "log_softmax":
            return np.array([e - lse for e in z], dtype=object)
        if func == "softmax":
            total = sp.Add(*(sp.exp(e) for e in z))
            return np.array([sp.exp(e) / total for e in z], dtype=object)
        # cross_entropy(z, label): −log softmax(z)[label], or −Σ y_k log softmax(z)_k for a one-hot y.
        label = args[1]
        if label.ndim == 0 and isinstance(label[()], sp.Symbol) and self._onehot is not None:
            hot = self._onehot(label[()].name, len(z))
            if hot is not None:
                label = hot
        if label.shape == z.shape:
            return _array(-sp.Add(*(y * (e - lse) for y, e in zip(label, z))))
        k = self._whole(label, func, len(z) - 1, key="tensor_label")
        return _array(lse - z[k])

    def _broadcast_all(self, func: str, args: list[Any]) -> list[np.ndarray]:
        if len(args) == 1:
            return args
        left, right = self._broadcast(f"{func}(,)", args[0], args[1])
        return [left, right]

    def _whole(self, value: np.ndarray, func: str, last: int, key: str = "tensor_axis") -> int:
        number: Any = value[()] if value.ndim == 0 else None
        if isinstance(number, sp.Symbol) and number.name in self._constants:
            number = self._constants[number.name]
        try:
            whole = float(number)
        except (TypeError, ValueError):
            raise ValueError(message(key, func=func, last=last)) from None
        if whole != int(whole) or not 0 <= whole <= last:
            raise ValueError(message(key, func=func, last=last))
        return int(whole)


def _map(f: Any, *arrays: np.ndarray) -> np.ndarray:
    shape = arrays[0].shape
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(shape):
        out[index] = f(*(a[index] for a in arrays))
    return out


def broadcast_shape(op: str, left: Shape, right: Shape) -> Shape:
    """NumPy's broadcast of two shapes, or ValueError saying which dimensions clash (``op`` names the operation).

    The one rule of the scalar view, the tensor view and formula answers alike.
    """
    try:
        return tuple(np.broadcast_shapes(left, right))
    except ValueError:
        a, b = _clash(left, right)
        raise ValueError(message("tensor_broadcast", left=shape_text(left), op=op,
                                 right=shape_text(right), a=a, b=b)) from None


def matmul_shape(left: Shape, right: Shape) -> Shape:
    """The shape of ``left @ right`` by NumPy's rule (a vector operand's dimension is dropped), or ValueError."""
    if not left or not right:
        raise ValueError(message("tensor_matmul_number", left=shape_text(left), right=shape_text(right)))
    if left[-1] != right[0]:
        raise ValueError(message("tensor_matmul_inner", left=shape_text(left), right=shape_text(right),
                                 a=left[-1], b=right[0]))
    return (*left[:-1], *right[1:])


def _clash(a: Shape, b: Shape) -> tuple[int, int]:
    """The first pair of dimensions, matched from the right, that broadcasting cannot join."""
    for x, y in zip(reversed(a), reversed(b)):
        if x != y and 1 not in (x, y):
            return x, y
    return a[-1] if a else 1, b[-1] if b else 1


def uses_tensors(text: str, tensors: Mapping[str, Any], words: frozenset[str], names: Collection[str]) -> bool:
    """True when a stage must be built by :class:`TensorBuilder`: it names a tensor, uses @ or .T, or a tensor function.

    A file without vectors reads as it did before them: its own name ``mean`` is a name.
    """
    if isinstance(text, Prebuilt):  # [network]'s own sums of scalars
        return False
    # sum(), mean() … alone do not make a stage a tensor one: in a scalar file mean(l) in
    # [forward] stays "unknown function" (reductions over the samples belong in [cost]).
    # bce(p, y), mse(a, b) and norm2(w) of plain numbers are tensor stages too (0-d), unless the file names one.
    return (bool(words & set(tensors)) or "@" in text or ".T" in text
            or any(f in words and f not in names for f in SCALAR_TOO))


def build(text: str, symbols: Mapping[str, sp.Expr], tensors: Mapping[str, np.ndarray],
          constants: Mapping[str, float], where: str, reducible: Collection[str] = (),
          onehot: Callable[[str, int], np.ndarray | None] | None = None) -> np.ndarray:
    """The value of a [forward] (or [cost]) expression as an object array of SymPy expressions (shapes checked).

    ``reducible``: in [cost], the per-sample names that ``mean(l)`` and ``sum(l)`` reduce over the samples.
    """
    try:
        value = _walk(text, TensorBuilder(symbols, tensors, constants, reducible, onehot), where)
    except ZeroDivisionError:
        raise ExplainError(where, "division by zero") from None
    except ValueError as exc:
        raise ExplainError(where, str(exc)) from None
    if value.ndim > 2:
        raise ExplainError(where, message("tensor_three_dims", ndim=value.ndim))
    if value.size > MAX_ENTRIES:
        raise ExplainError(where, message("tensor_too_many", count=value.size, limit=MAX_ENTRIES))
    for entry in value.flat:
        if entry.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
            raise ExplainError(where, f"{text!r} is not finite")
    return value


_ENTRY_LABEL = re.compile(r"([A-Za-z]\w*)\s*((?:\[\s*\d+\s*(?:,\s*\d+\s*)*\])+)")


def internal_key(text: str) -> str:
    """An answer key with entries written as people write them, in internal names: ``dL/dW1[0,1]`` → ``dL/dW1_0_1``.

    ``W1[0][1]`` is read as ``W1[0,1]``.
    """
    def name(match: re.Match[str]) -> str:
        return entry_name(match.group(1), tuple(int(i) for i in re.findall(r"\d+", match.group(2))))

    return _ENTRY_LABEL.sub(name, text)
