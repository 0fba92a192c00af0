"""The tensor view: a problem as a program over vectors and matrices, and its matrix-form derivation.

The scalar view (:mod:`explain.tensors`) expands every tensor into one scalar node
per entry, which is what a path sum needs.  Courses teach the other view too:
δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾)ᵀ δ⁽ˡ⁺¹⁾ ⊙ σ′(z⁽ˡ⁾), ∂L/∂W = δ xᵀ.  This module is that view.

* A :class:`TensorProgram` is the problem's stages at tensor level, like a jaxpr: each
  stage is ``name = tree`` where the tree is made of :class:`TNode` s, every node
  carrying its shape and whether it has one value per sample (``batched``).
* The backward pass is a rewrite, like tinygrad's table of gradient rules: for each
  operation, :func:`vjp` turns the cotangent of its output (a formula) into a formula
  for each argument's cotangent — ``δ xᵀ``, ``Wᵀ δ``, ``δ ⊙ σ′(z)``, a sum over a
  broadcast axis.  Formulas are trees of the same :class:`TNode` s, so they have
  shapes, print in every format, and get their numbers from the one evaluator
  (:func:`evaluate`).  Nothing is expanded into entries, so a 784×128 matrix costs
  one matrix product, not 100 000 SymPy expressions.
* :func:`derive_matrix` gives a :class:`MatrixDerivation`: the forward values, and
  for each stage (loss first) and parameter its adjoint as a sum of terms, one per
  consumer, each a formula with its number.  Any entry of it is the scalar view's
  gradient of that entry (``MatrixDerivation.entry``; tests hold them equal).

Values carry a leading axis for the samples: size n for a node that depends on
``[data]``, size 1 otherwise; so one evaluation covers every sample, and a
parameter's gradient is the sum over that axis (``Σᵢ``), written as a step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from .errors import ExplainError
from .functions import OPS, REDUCTIONS, USER_FUNCTIONS, numpy_functions, reduction_kind
from .i18n import message
from .parse import _Builder, _walk
from .tensors import TENSOR_FUNCTIONS, Shape, _clash, entry_name, shape_text

if TYPE_CHECKING:
    from .problem import Problem

#: Functions of whole tensors, by the name a file writes, with their (min, max) arguments.
WHOLE_FUNCTIONS: dict[str, tuple[int, int]] = {**TENSOR_FUNCTIONS, "bce": (2, 2)}


# -- the tree ------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TNode:
    """One operation of a tensor program, or of a formula of its derivation.

    ``op`` is one of :data:`FORWARD_OPS` (what a file can write) or of the ops only
    derivations make (``adjoint``, ``outer``, ``df``, ``spread``, ``unbroadcast``,
    ``onehot``, ``sample_sum``).  ``name`` is the referenced name (``name``,
    ``adjoint``) or the function (``f``, ``df``); ``axis`` the axis of a reduction
    (``df``: which argument); ``number`` a constant's value; ``shape`` the shape of
    one sample's value; ``batched`` whether it has one value per sample.
    """

    op: str
    args: tuple[TNode, ...] = ()
    shape: Shape = ()
    batched: bool = False
    name: str | None = None
    number: float | None = None
    axis: int | None = None
    #: How a constant is written where its number is not the point (``1/n``).
    label: str | None = None

    def names(self) -> set[str]:
        """Every name the tree refers to."""
        found: set[str] = set()
        stack = [self]
        while stack:
            node = stack.pop()
            if node.op in ("name", "adjoint") and node.name:
                found.add(node.name)
            stack.extend(node.args)
        return found

    def text(self, loss: str = "L") -> str:
        """The formula in plain text (``dL/dz1 x^T``): :mod:`explain.render` prints it in other formats."""
        return print_text(self, loss)

    def __repr__(self) -> str:
        return f"TNode({self.text()!r}, shape={self.shape}{', batched' if self.batched else ''})"


FORWARD_OPS = ("name", "const", "add", "sub", "mul", "div", "pow", "neg", "matmul", "T", "f",
               "sum", "mean", "softmax", "log_softmax", "logsumexp", "cross_entropy", "mse", "norm2", "bce",
               "sample_sum", "sample_mean")

_BINARY_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow"}


def const(value: float, label: str | None = None) -> TNode:
    return TNode("const", number=float(value), label=label)


def _broadcast_shape(op: str, a: TNode, b: TNode) -> Shape:
    try:
        return tuple(np.broadcast_shapes(a.shape, b.shape))
    except ValueError:
        x, y = _clash(a.shape, b.shape)
        raise ValueError(message("tensor_broadcast", left=shape_text(a.shape), op=op,
                                 right=shape_text(b.shape), a=x, b=y)) from None


def binary(op: str, a: TNode, b: TNode, symbol: str | None = None) -> TNode:
    """An elementwise operation with NumPy's broadcasting (``symbol`` names it in errors)."""
    shape = _broadcast_shape(symbol or op, a, b)
    return TNode(op, (a, b), shape, a.batched or b.batched)


def matmul(a: TNode, b: TNode) -> TNode:
    if not a.shape or not b.shape:
        raise ValueError(message("tensor_matmul_number", left=shape_text(a.shape), right=shape_text(b.shape)))
    if a.shape[-1] != b.shape[0]:
        raise ValueError(message("tensor_matmul_inner", left=shape_text(a.shape), right=shape_text(b.shape),
                                 a=a.shape[-1], b=b.shape[0]))
    shape = (*a.shape[:-1], *b.shape[1:])
    return TNode("matmul", (a, b), shape, a.batched or b.batched)


def transpose(a: TNode) -> TNode:
    return TNode("T", (a,), tuple(reversed(a.shape)), a.batched)


# -- reading a stage -----------------------------------------------------------------------------
class ProgramBuilder(_Builder[TNode]):
    """Builds a stage's tree from the user's text through the safe walker (no eval, no sympify).

    ``names`` maps every name the stage may use to a leaf node (shape and batching
    known); shapes are checked as the tree is built, with the scalar view's messages.
    ``constants`` are the numbers of ``[values]`` (an axis or a class may be one).
    """

    def __init__(self, names: Mapping[str, TNode], constants: Mapping[str, float]) -> None:
        self._names = names
        self._constants = constants

    def number(self, value: float | int) -> TNode:
        return const(value)

    def name(self, name: str) -> TNode | None:
        if name == "pi":
            return const(math.pi, "pi")
        if name == "e":
            return const(math.e, "e")
        return self._names.get(name)

    def known_names(self) -> list[str]:
        return list(self._names)

    def binary(self, op: str, left: TNode, right: TNode) -> TNode:
        if op == "/" and right.op == "const" and right.number == 0:
            raise ZeroDivisionError
        return binary(_BINARY_OPS[op], left, right, op)

    def negate(self, operand: TNode) -> TNode:
        return TNode("neg", (operand,), operand.shape, operand.batched)

    def matmul(self, left: TNode, right: TNode) -> TNode:
        return matmul(left, right)

    def transpose(self, operand: TNode) -> TNode:
        return transpose(operand)

    def function_arity(self, func: str) -> tuple[int, int] | None:
        if func in WHOLE_FUNCTIONS and func not in self._names:
            return WHOLE_FUNCTIONS[func]
        if func in USER_FUNCTIONS:
            n = USER_FUNCTIONS[func][1]
            return (n, n)
        return None

    def call(self, func: str, args: list[TNode]) -> TNode:
        if func not in WHOLE_FUNCTIONS:
            op = next(o for o in OPS.values() if o.user == func)
            shape: Shape = ()
            for arg in args:
                shape = _broadcast_shape(f"{func}(,)", TNode("const", shape=shape), arg)
            return TNode("f", tuple(args), shape, any(a.batched for a in args), name=op.name)
        v = args[0]
        if func in ("sum", "mean"):
            if not v.shape:
                if v.batched and len(args) == 1:  # mean(l) of a per-sample number: over the samples ([cost])
                    return TNode(f"sample_{func}", (v,), (), False)
                raise ValueError(message("tensor_reduce_number", func=func))
            if len(args) == 2:
                axis = self._whole(args[1], func, len(v.shape) - 1)
                shape = tuple(d for i, d in enumerate(v.shape) if i != axis)
                return TNode(func, (v,), shape, v.batched, axis=axis)
            return TNode(func, (v,), (), v.batched)
        if func == "norm2":
            return TNode(func, (v,), (), v.batched)
        if func in ("mse", "bce"):
            if v.shape != args[1].shape:
                raise ValueError(message("tensor_same_shape", func=func, left=shape_text(v.shape),
                                         right=shape_text(args[1].shape)))
            return TNode(func, tuple(args), (), v.batched or args[1].batched)
        if len(v.shape) != 1:
            raise ValueError(message("tensor_needs_vector", func=func, shape=shape_text(v.shape)))
        if func in ("softmax", "log_softmax"):
            return TNode(func, (v,), v.shape, v.batched)
        if func == "logsumexp":
            return TNode(func, (v,), (), v.batched)
        label = args[1]  # cross_entropy(z, label)
        if label.shape != v.shape:
            if label.shape or label.op not in ("const", "name"):
                raise ValueError(message("tensor_label", last=len(v) - 1 if False else v.shape[0] - 1))
            if label.op == "const":
                self._whole(label, func, v.shape[0] - 1, key="tensor_label")
        return TNode(func, (v, label), (), v.batched or label.batched)

    def _whole(self, value: TNode, func: str, last: int, key: str = "tensor_axis") -> int:
        number: float | None = value.number if value.op == "const" else None
        if value.op == "name" and value.name in self._constants:
            number = self._constants[value.name]
        if number is None or number != int(number) or not 0 <= number <= last:
            raise ValueError(message(key, func=func, last=last))
        return int(number)


# -- the program ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TensorStage:
    name: str
    tree: TNode
    text: str


@dataclass
class TensorProgram:
    """A problem at tensor level: leaves with their values, and stages in forward order.

    Leaf values carry the sample axis: ``(n, *shape)`` for ``[data]``, ``(1, *shape)``
    otherwise.  ``loss`` is the stage the derivation differentiates (one number).
    """

    leaves: dict[str, TNode]
    values: dict[str, np.ndarray]
    kinds: dict[str, str]                  # leaf name -> parameter | value | data
    stages: list[TensorStage]
    loss: str
    n_samples: int = 1

    @property
    def parameters(self) -> list[str]:
        return [n for n, k in self.kinds.items() if k == "parameter"]

    @property
    def shapes(self) -> dict[str, Shape]:
        out = {n: leaf.shape for n, leaf in self.leaves.items()}
        out.update({s.name: s.tree.shape for s in self.stages})
        return out

    def node(self, name: str) -> TNode:
        """The reference to a leaf or stage, as a later stage sees it."""
        if name in self.leaves:
            return self.leaves[name]
        stage = next(s for s in self.stages if s.name == name)
        return TNode("name", shape=stage.tree.shape, batched=stage.tree.batched, name=name)

    @classmethod
    def from_texts(cls, *, parameters: Mapping[str, Any], forward: Mapping[str, str],
                   values: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None,
                   loss: str | None = None, reduction: str = "mean", source: str = "<program>") -> TensorProgram:
        """A program written directly (the library's way for tensors too big for the scalar view).

        ``parameters`` and ``values`` map names to numbers or arrays; ``data`` to arrays
        with one row per sample; ``forward`` names to expressions, as in a problem file.
        A per-sample loss is reduced over the samples with ``reduction``.
        """
        program = cls(leaves={}, values={}, kinds={}, stages=[], loss="")
        data = dict(data or {})
        if data:
            program.n_samples = len(next(iter(data.values())))
        for kind, table in (("value", values or {}), ("data", data), ("parameter", parameters)):
            for name, value in table.items():
                array = np.asarray(value, dtype=float)
                batched = kind == "data"
                shape = array.shape[1:] if batched else array.shape
                program.leaves[name] = TNode("name", shape=tuple(shape), batched=batched, name=name)
                program.values[name] = array if batched else array[None]
                program.kinds[name] = kind
        constants = {n: float(np.asarray(v)) for n, v in (values or {}).items() if np.ndim(v) == 0}
        for name, text in forward.items():
            program.add_stage(name, text, constants, f"{source}: [forward] {name}")
        program.finish(loss or list(forward)[-1], reduction)
        return program

    def add_stage(self, name: str, text: str, constants: Mapping[str, float], where: str) -> None:
        names = {**self.leaves, **{s.name: self.node(s.name) for s in self.stages}}
        try:
            tree = _walk(text, ProgramBuilder(names, constants), where)
        except ZeroDivisionError:
            raise ExplainError(where, "division by zero") from None
        except ValueError as exc:
            raise ExplainError(where, str(exc)) from None
        self.stages.append(TensorStage(name, tree, text))

    def finish(self, loss: str, reduction: str) -> None:
        node = self.node(loss)
        if node.batched:
            from .graph import IMPLICIT_LOSS_NAMES

            taken = {*self.leaves, *(s.name for s in self.stages)}
            name = next((n for n in IMPLICIT_LOSS_NAMES if n not in taken), "L_total")
            self.stages.append(TensorStage(name, TNode(f"sample_{reduction}", (node,), node.shape), f"{reduction}({loss})"))
            loss = name
        self.loss = loss


def program_of(problem: Problem) -> TensorProgram:
    """The tensor program of a problem (any problem: a scalar is a tensor of shape ())."""
    tensor_entries = {entry_name(t, idx) for t, shape in problem.shapes.items() for idx in np.ndindex(shape)}
    program = TensorProgram(leaves={}, values={}, kinds={}, stages=[], loss="", n_samples=problem.n_samples or 1)
    for kind, table in (("value", problem.values), ("data", problem.data), ("parameter", problem.parameters)):
        batched = kind == "data"
        for name, value in table.items():
            if name in tensor_entries:
                continue
            program.leaves[name] = TNode("name", shape=(), batched=batched, name=name)
            program.values[name] = np.asarray(value, dtype=float).reshape(-1) if batched else np.array([value], float)
            program.kinds[name] = kind
    # Tensor leaves: gathered back from their entries.
    for name, shape in problem.shapes.items():
        if name in problem.tensor_texts:
            continue
        first = entry_name(name, (0,) * len(shape))
        kind = "parameter" if first in problem.parameters else "data" if first in problem.data else "value"
        table = {"parameter": problem.parameters, "data": problem.data, "value": problem.values}[kind]
        if kind == "data":
            array = np.stack([np.asarray(table[entry_name(name, idx)], float) for idx in np.ndindex(shape)], axis=1)
            array = array.reshape(-1, *shape)
        else:
            array = np.array([table[entry_name(name, idx)] for idx in np.ndindex(shape)], float).reshape(1, *shape)
        program.leaves[name] = TNode("name", shape=tuple(shape), batched=kind == "data", name=name)
        program.values[name] = array
        program.kinds[name] = kind
    constants = {n: float(v) for n, v in problem.values.items()}
    done: set[str] = set()
    for stage in problem.stages:
        owner = _owner(stage.name, problem.tensor_texts, tensor_entries)
        if owner is not None:
            if owner not in done:
                program.add_stage(owner, problem.tensor_texts[owner], constants, f"{problem.source}: {owner}")
                done.add(owner)
            continue
        names = {**program.leaves, **{s.name: program.node(s.name) for s in program.stages}}
        program.stages.append(TensorStage(stage.name, _from_sympy(stage.expr, names), str(stage.text)))
    program.finish(problem.loss, problem.reduction)
    return program


def _owner(name: str, texts: Mapping[str, str], entries: set[str]) -> str | None:
    if name in texts:
        return name
    if name in entries:
        base = name.rsplit("_", 2)
        for cut in (1, 2):
            owner = "_".join(base[:-cut]) if len(base) > cut else None
            if owner in texts:
                return owner
    return None


def _from_sympy(expr: sp.Expr, names: Mapping[str, TNode]) -> TNode:
    """A scalar stage's SymPy expression as a tree (its symbols are names of the program)."""
    if expr.is_Symbol:
        if expr.name not in names:
            raise ExplainError(expr.name, "is an entry of a tensor used in a scalar stage; no matrix form")
        return names[expr.name]
    if expr.is_Number or expr.is_NumberSymbol:
        return const(float(expr))
    kind = reduction_kind(expr)
    if kind is not None:
        return TNode(f"sample_{kind}", (_from_sympy(expr.args[0], names),), ())
    if isinstance(expr, sp.Add):  # written with minus signs where SymPy keeps −1 factors
        terms = list(expr.as_ordered_terms())
        out = _from_sympy(terms[0], names)
        for term in terms[1:]:
            coeff, rest = term.as_coeff_Mul()
            if coeff.is_negative:
                out = binary("sub", out, _from_sympy(-coeff * rest, names))
            else:
                out = binary("add", out, _from_sympy(term, names))
        return out
    if isinstance(expr, sp.Mul):
        numerator, denominator = expr.as_numer_denom()
        if denominator != 1:
            return binary("div", _from_sympy(numerator, names), _from_sympy(denominator, names))
        coeff, rest = expr.as_coeff_Mul()
        if coeff == -1:
            inner = _from_sympy(rest, names)
            return TNode("neg", (inner,), inner.shape, inner.batched)
        factors = [_from_sympy(a, names) for a in expr.args]
        out = factors[0]
        for a in factors[1:]:
            out = binary("mul", out, a)
        return out
    args = [_from_sympy(a, names) for a in expr.args]
    if isinstance(expr, sp.Pow):
        return binary("pow", *args)
    op = OPS.get(type(expr).__name__)
    if op is not None:
        return TNode("f", tuple(args), (), any(a.batched for a in args), name=op.name)
    raise ExplainError(str(expr), f"{type(expr).__name__} has no matrix form")


# -- numbers -------------------------------------------------------------------------------------
def _align(value: np.ndarray, node: TNode, ndim: int) -> np.ndarray:
    """A value (samples, *shape) with axes added after the sample axis, for broadcasting to ``ndim`` dimensions."""
    missing = ndim - len(node.shape)
    return value.reshape(value.shape[0], *(1,) * missing, *value.shape[1:]) if missing else value


@cache
def _derivative(name: str, argindex: int) -> Callable[..., Any]:
    op = OPS[name]
    zs = sp.symbols(f"z0:{op.nargs}", real=True)
    rule = op.derivative(*zs)[argindex] if op.derivative else sp.diff(op.sympy(*zs), zs[argindex])
    return sp.lambdify(zs, rule, modules=[numpy_functions(), "numpy"])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def _onehot(label: np.ndarray, classes: int) -> np.ndarray:
    index = np.rint(label).astype(int)
    out = np.zeros((*index.shape, classes))
    np.put_along_axis(out, index[..., None], 1.0, axis=-1)
    return out


def _per_sample_axes(node: TNode) -> tuple[int, ...]:
    return tuple(range(1, len(node.shape) + 1))


def evaluate(node: TNode, env: Mapping[str, np.ndarray], cache: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """The value of a tree, with the sample axis first; ``env`` holds names' values and adjoints (``δ:name``)."""
    cache = {} if cache is None else cache
    key = id(node)
    if key in cache:
        return cache[key]
    op, args = node.op, node.args
    if op == "name":
        out = env[node.name]
    elif op == "adjoint":
        out = env[f"δ:{node.name}"]
    elif op == "const" and node.label == "1/n" and "#n" in env:
        out = 1.0 / env["#n"]  # the size of the batch being evaluated (a minibatch's mean)
    elif op == "const":
        out = np.array([node.number])
    elif op == "sample_sum" and args[0].op == "outer":
        # Σᵢ δᵢ xᵢᵀ as one product δᵀX: the n outer products are never stored (n×m×k numbers)
        a, b = (evaluate(x, env, cache) for x in args[0].args)
        out = (a.T @ b)[None] if len(a) == len(b) else np.einsum("si,tj->ij", a, b)[None]
    else:
        xs = [evaluate(a, env, cache) for a in args]
        out = _compute(node, xs)
    cache[key] = out
    return out


def _compute(node: TNode, xs: list[np.ndarray]) -> np.ndarray:  # noqa: C901 - one branch per operation
    op, args = node.op, node.args
    nd = len(node.shape)
    if op in ("add", "sub", "mul", "div", "pow", "f", "df"):
        a = [_align(x, arg, nd) for x, arg in zip(xs, args)]
        with np.errstate(all="ignore"):
            if op == "add":
                return a[0] + a[1]
            if op == "sub":
                return a[0] - a[1]
            if op == "mul":
                return a[0] * a[1]
            if op == "div":
                return a[0] / a[1]
            if op == "pow":
                return a[0] ** a[1]
            if op == "f":
                return np.asarray(numpy_functions()[node.name](*a), dtype=float)
            return np.asarray(_derivative(node.name, node.axis or 0)(*a), dtype=float) * np.ones(
                np.broadcast_shapes(*(x.shape for x in a)))
    x = xs[0]
    if op == "neg":
        return -x
    if op == "T":
        return x.swapaxes(1, 2) if len(args[0].shape) == 2 else x
    if op == "matmul":
        a, b = xs
        sa, sb = args[0].shape, args[1].shape
        if len(sa) == 2 and len(sb) == 1 and a.shape[0] == 1:  # W x for every sample: one product X Wᵀ
            return b @ a[0].T
        if len(sa) == 1 and len(sb) == 2 and b.shape[0] == 1:  # xᵀ W for every sample: X W
            return a @ b[0]
        left = a if len(sa) == 2 else a[:, None, :]
        right = b if len(sb) == 2 else b[:, :, None]
        out = left @ right
        if len(sa) == 1:
            out = out[:, 0]
        if len(sb) == 1:
            out = out[..., 0]
        return out
    if op == "outer":  # a bᵀ of two vectors
        return xs[0][:, :, None] * xs[1][:, None, :]
    if op in ("sum", "mean"):
        axes = _per_sample_axes(args[0]) if node.axis is None else (node.axis + 1,)
        out = x.sum(axis=axes)
        return out / math.prod(x.shape[i] for i in axes) if op == "mean" else out
    if op == "spread":  # the cotangent of a sum: the same number in every summed position
        target = (x.shape[0], *node.shape)
        if node.axis is not None:
            x = np.expand_dims(x, node.axis + 1)
        else:  # NumPy's broadcasting: a number, or a smaller shape matched from the right
            x = _align(x, args[0], nd)
        return np.broadcast_to(x, target).copy()
    if op == "unbroadcast":  # sum a cotangent back to the shape of a broadcast operand
        src = args[0].shape
        x = x.sum(axis=tuple(range(1, 1 + len(src) - nd))) if len(src) > nd else x
        axes = tuple(i + 1 for i, (d, s) in enumerate(zip(node.shape, x.shape[1:])) if d == 1 and s != 1)
        return x.sum(axis=axes, keepdims=True) if axes else x
    if op == "sample_sum":
        return x.sum(axis=0, keepdims=True)
    if op == "sample_mean":
        return x.mean(axis=0, keepdims=True)
    if op == "norm2":
        return (x**2).sum(axis=_per_sample_axes(args[0]))
    if op == "mse":
        a, b = _align(xs[0], args[0], nd), xs[1]
        return ((a - b) ** 2).mean(axis=_per_sample_axes(args[0]))
    if op == "bce":
        p, y = xs
        with np.errstate(all="ignore"):
            return (-(y * np.log(p) + (1 - y) * np.log(1 - p))).mean(axis=_per_sample_axes(args[0]))
    if op == "softmax":
        return _softmax(x)
    if op == "log_softmax":
        return _log_softmax(x)
    if op == "logsumexp":
        m = x.max(axis=-1)
        return m + np.log(np.exp(x - m[..., None]).sum(axis=-1))
    if op == "cross_entropy":
        z, label = xs
        logp = _log_softmax(z)
        if args[1].shape == args[0].shape:
            return -(label * logp).sum(axis=-1)
        onehot = _onehot(np.broadcast_to(label, (max(len(label), len(z)),)), args[0].shape[0])
        return -(onehot * logp).sum(axis=-1)
    if op == "onehot":
        return _onehot(x, node.shape[0])
    raise AssertionError(f"no numbers for {op}")


# -- the rules of the backward pass --------------------------------------------------------------
def _mul(a: TNode, b: TNode) -> TNode:
    """a·b, with numbers folded (½·2 is 1) so that a rule reads as a course writes it."""
    if a.op == "const" and b.op == "const" and not (a.label or b.label):
        return const(a.number * b.number)  # a labelled number (1/n) stays as written: it is read at run time
    if b.op == "const" and not (a.op == "const" and not a.label):
        a, b = b, a
    if a.op == "const":
        if a.number == 1:
            return b
        if b.op == "const" and b.number == 1:
            return a
        if b.op == "mul" and b.args[0].op == "const" and not (a.label or b.args[0].label):
            return _mul(_mul(a, b.args[0]), b.args[1])
        if b.op == "neg":
            return _neg(_mul(a, b.args[0]))
        if a.number == -1:
            return _neg(b)
        return binary("mul", a, b)
    # numbers first: 2 λ W, not λ 2 W
    if b.op == "mul" and b.args[0].op == "const":
        return _mul(b.args[0], _mul(a, b.args[1]))
    if a.op == "mul" and a.args[0].op == "const":
        return _mul(a.args[0], _mul(a.args[1], b))
    return binary("mul", a, b)


def _div(a: TNode, b: TNode) -> TNode:
    if a.op == "const" and b.op == "const" and b.number and not (a.label or b.label):
        return const(a.number / b.number)
    return binary("div", a, b)


def _neg(a: TNode) -> TNode:
    return a.args[0] if a.op == "neg" else TNode("neg", (a,), a.shape, a.batched)


def _spread(g: TNode, like: TNode, axis: int | None) -> TNode:
    return TNode("spread", (g,), like.shape, g.batched, axis=axis)


def vjp(node: TNode, g: TNode, n_samples: int = 1) -> list[tuple[int, TNode]]:  # noqa: C901 - one rule per operation
    """The cotangent of each argument of ``node`` as a formula, given the cotangent ``g`` of its output.

    Each rule is the textbook one, written as a formula of ``g`` and the node's
    arguments (which :func:`evaluate` gives numbers); the caller sums a result back to
    its argument's shape where broadcasting made it bigger (:func:`fit`).
    """
    op, args = node.op, node.args
    if op == "add":
        return [(0, g), (1, g)]
    if op == "sub":
        return [(0, g), (1, _neg(g))]
    if op == "neg":
        return [(0, _neg(g))]
    if op == "mul":
        a, b = args
        return [(0, _mul(g, b)), (1, _mul(g, a))]
    if op == "div":
        a, b = args
        return [(0, _div(g, b)), (1, _neg(_div(_mul(g, a), binary("pow", b, const(2)))))]
    if op == "pow":
        a, b = args
        if b.op == "const":
            rule = a if b.number == 2 else binary("pow", a, const(b.number - 1))
            return [(0, _mul(g, _mul(const(b.number), rule)))]
        return [(0, _mul(g, _mul(b, binary("pow", a, binary("sub", b, const(1)))))),
                (1, _mul(g, _mul(node, TNode("f", (a,), a.shape, a.batched, name="log"))))]
    if op == "T":
        return [(0, transpose(g))]
    if op == "matmul":
        a, b = args
        if g.shape != node.shape:  # the one number of a whole sum above: every entry gets it
            g = _spread(g, node, None)
        if len(a.shape) == 2 and len(b.shape) == 2:
            return [(0, matmul(g, transpose(b))), (1, matmul(transpose(a), g))]
        if len(a.shape) == 2:  # W x: ∂L/∂W = δ xᵀ, ∂L/∂x = Wᵀ δ
            return [(0, TNode("outer", (g, b), a.shape, g.batched or b.batched)), (1, matmul(transpose(a), g))]
        if len(b.shape) == 2:  # xᵀ W (x a vector): ∂L/∂x = W δ, ∂L/∂W = x δᵀ
            return [(0, matmul(b, g)), (1, TNode("outer", (a, g), b.shape, a.batched or g.batched))]
        return [(0, _mul(g, b)), (1, _mul(g, a))]  # a · b of two vectors
    if op == "f" and node.name == "log":  # δ/u reads better than δ·log′(u)
        return [(0, _div(g, args[0]))]
    if op == "f" and node.name == "exp":
        return [(0, _mul(g, node))]
    if op == "f":
        return [(i, _mul(g, TNode("df", args, node.shape, node.batched, name=node.name, axis=i)))
                for i in range(len(args))]
    if op in ("sum", "mean"):
        (v,) = args
        # A whole sum's cotangent is one number, the same for every entry: it broadcasts
        # through the rules above it, and fit() spreads it where it meets a name.
        if node.axis is not None and g.shape != node.shape:  # a whole sum's one number above: make it the row first
            g = _spread(g, node, None)
        spread = g if node.axis is None else _spread(g, v, node.axis)
        if op == "mean":
            count = math.prod(v.shape) if node.axis is None else v.shape[node.axis]
            spread = _mul(const(1 / count, f"1/{count}"), spread)
        return [(0, spread)]
    if op == "norm2":
        (w,) = args
        return [(0, _mul(g, _mul(const(2), w)))]
    if op == "mse":
        a, b = args
        n = math.prod(a.shape) if a.shape else 1
        rule = _mul(g, _mul(const(2 / n, f"2/{n}"), binary("sub", a, b)))
        return [(0, rule), (1, _neg(rule))]
    if op == "bce":
        p, y = args
        n = math.prod(p.shape) if p.shape else 1
        scale = const(1 / n, f"1/{n}")
        one = const(1)
        dp = binary("div", binary("sub", p, y), binary("mul", p, binary("sub", one, p)))
        logs = binary("sub", TNode("f", (binary("sub", one, p),), p.shape, p.batched, name="log"),
                      TNode("f", (p,), p.shape, p.batched, name="log"))
        return [(0, _mul(g, _mul(scale, dp))), (1, _mul(g, _mul(scale, logs)))]
    if op == "softmax":  # ∂L/∂z = p ⊙ (δ − (δ·p))
        p = node
        return [(0, _mul(p, binary("sub", g, TNode("sum", (_mul(g, p),), (), g.batched or p.batched))))]
    if op == "log_softmax":
        (z,) = args
        p = TNode("softmax", (z,), z.shape, z.batched)
        return [(0, binary("sub", g, _mul(p, TNode("sum", (g,), (), g.batched))))]
    if op == "logsumexp":
        (z,) = args
        return [(0, _mul(g, TNode("softmax", (z,), z.shape, z.batched)))]
    if op == "cross_entropy":  # softmax + cross-entropy: ∂L/∂z = p − onehot(y)
        z, label = args
        p = TNode("softmax", (z,), z.shape, z.batched)
        if label.shape == z.shape:  # a one-hot (or any) target vector: p·Σy − y, which is p − y for one-hot
            dz = binary("sub", _mul(p, TNode("sum", (label,), (), label.batched)), label)
            dy = _neg(TNode("log_softmax", (z,), z.shape, z.batched))
            return [(0, _mul(g, dz)), (1, _mul(g, dy))]
        onehot = TNode("onehot", (label,), z.shape, label.batched)
        return [(0, _mul(g, binary("sub", p, onehot)))]
    if op in ("sample_sum", "sample_mean"):
        if op == "sample_sum":  # Σᵢ l_i: every sample's l_i gets the whole δ
            return [(0, g)]
        return [(0, _mul(const(1 / n_samples, "1/n"), g))]
    raise AssertionError(f"no rule for {op}")


_ELEMENTWISE = ("add", "sub", "mul", "div", "pow", "neg", "f")


def fit(formula: TNode, target: TNode, parent: TNode) -> TNode:
    """A cotangent made the shape of its argument: summed over the samples, spread, summed over broadcast axes.

    A rule's formula may be smaller than the cotangent it stands for: the one number
    of a whole sum above stays one number while it passes elementwise operations
    (NumPy's broadcasting makes it the right size), and is spread only where it meets
    a name or must be summed.  ``parent`` is the node whose rule made the formula:
    an elementwise operation's cotangent has its output's shape, before broadcasting
    is undone.
    """
    if formula.batched and not target.batched:
        formula = TNode("sample_sum", (formula,), formula.shape, False)
    full = parent.shape if parent.op in _ELEMENTWISE else target.shape
    if formula.shape == target.shape == full:
        return formula
    if formula.shape != full:
        if target.shape == full and target.op != "name":
            return formula
        formula = _spread(formula, TNode("const", shape=full), None)
    if full != target.shape:
        formula = TNode("unbroadcast", (formula,), target.shape, formula.batched)
    return formula


# -- the derivation ------------------------------------------------------------------------------
@dataclass
class TensorForward:
    """``name = formula``, with its value: one array per sample when ``batched``."""

    name: str
    formula: TNode
    text: str
    shape: Shape
    value: np.ndarray
    batched: bool


@dataclass
class TensorTerm:
    """One consumer's share of an adjoint: ``via`` uses the node in ``formula``, worth ``value``."""

    via: str
    formula: TNode
    value: np.ndarray


@dataclass
class TensorAdjoint:
    """∂loss/∂name as a sum of terms, one per stage that uses it (``kind``: stage or parameter)."""

    name: str
    kind: str
    shape: Shape
    terms: list[TensorTerm]
    value: np.ndarray
    batched: bool


@dataclass
class MatrixDerivation:
    """The matrix-form derivation: forward values, adjoints of stages (loss first), gradients of parameters."""

    program: TensorProgram
    forward: list[TensorForward]
    adjoints: list[TensorAdjoint]
    gradients: list[TensorAdjoint]
    _values: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def loss(self) -> str:
        return self.program.loss

    @property
    def loss_value(self) -> float:
        return float(self.value(self.loss))

    def value(self, name: str) -> np.ndarray:
        """The value of a leaf or stage: shape ``(n, *shape)`` for a per-sample one, else ``shape``."""
        leaf = self.program.leaves.get(name)
        batched = leaf.batched if leaf is not None else self.program.node(name).batched
        value = self._values[name]
        return value if batched else value[0]

    def grad(self, name: str) -> np.ndarray:
        """∂loss/∂name: per sample (``(n, *shape)``) for a per-sample stage, else of the node's shape."""
        for record in (*self.gradients, *self.adjoints):
            if record.name == name:
                return record.value if record.batched else record.value[0]
        raise KeyError(name)

    def entry(self, name: str, index: tuple[int, ...], sample: int | None = None) -> float:
        """One entry of a gradient, the number the scalar view calls ∂loss/∂name[index]."""
        value = self.grad(name)
        return float(value[(sample, *index)] if sample is not None else value[index])


def derive_matrix(source: Problem | TensorProgram) -> MatrixDerivation:
    """The matrix-form derivation of a problem with vectors and matrices (or of any problem)."""
    program = source if isinstance(source, TensorProgram) else program_of(source)
    plan = BackwardPlan(program)
    env = plan.run(program.values)
    forward = [TensorForward(s.name, s.tree, s.text, s.tree.shape, env[s.name], s.tree.batched)
               for s in program.stages]
    records = {}
    for name, rules in plan.rules.items():
        records[name] = [TensorTerm(via, formula, env[f"δ:{via}→{name}#{k}"]) for k, (via, formula) in enumerate(rules)]
    adjoints = [TensorAdjoint(s.name, "stage", s.tree.shape, records.get(s.name, []), env[f"δ:{s.name}"],
                              s.tree.batched and s.name != program.loss)
                for s in reversed(program.stages) if s.name in plan.needs]
    gradients = [TensorAdjoint(name, "parameter", program.leaves[name].shape, records.get(name, []),
                               env[f"δ:{name}"], False) for name in program.parameters]
    return MatrixDerivation(program, forward, adjoints, gradients, env)


class BackwardPlan:
    """The backward pass of a program as formulas, built once; :meth:`run` gives every number.

    ``rules[name]`` lists, for each node whose adjoint is needed, the stages that use it
    with the formula of their share (a :class:`TensorTerm` without its value).  The
    derivation runs it once at the problem's values; training runs it at every step.
    """

    def __init__(self, program: TensorProgram) -> None:
        self.program = program
        self.needs = _needs_gradient(program)
        self.rules: dict[str, list[tuple[str, TNode]]] = {name: [] for name in self.needs}
        for stage in reversed(program.stages):
            if stage.name not in self.needs:
                continue
            node = program.node(stage.name)
            # The loss's own adjoint is 1: its rules start from the number, not from "∂L/∂L".
            seed = (const(1) if stage.name == program.loss
                    else TNode("adjoint", shape=node.shape, batched=node.batched, name=stage.name))
            for target, formula in _backward(stage.tree, seed, self.needs, program.n_samples):
                self.rules[target].append((stage.name, formula))
        self._compiled: Callable[[dict[str, np.ndarray]], None] | None = None

    def run(self, leaves: Mapping[str, np.ndarray], n_samples: int | None = None) -> dict[str, np.ndarray]:
        """Every value (``name``), adjoint (``δ:name``) and term (``δ:via→name#k``) at these leaf values.

        ``n_samples`` is the batch's size where it is not the program's (a minibatch):
        a mean's ``1/n`` follows it.  The plan is compiled on first use into one
        straight-line Python function of NumPy operations (see :func:`_compile`).
        """
        if self._compiled is None:
            self._compiled = _compile(self)
        env: dict[str, np.ndarray] = dict(leaves)
        env["#n"] = np.array([float(self.program.n_samples if n_samples is None else n_samples)])
        with np.errstate(all="ignore"):
            self._compiled(env)
        return env

    def order(self) -> list[str]:
        """The adjoints in the order they are computed: stages from the loss back, then parameters."""
        return [s.name for s in reversed(self.program.stages) if s.name in self.needs] + self.program.parameters

    def loss_and_gradients(self, leaves: Mapping[str, np.ndarray],
                           n_samples: int | None = None) -> tuple[float, dict[str, np.ndarray]]:
        """The loss and each parameter's gradient (without the sample axis)."""
        env = self.run(leaves, n_samples)
        loss = float(np.asarray(env[self.program.loss]).ravel()[0])
        return loss, {name: env[f"δ:{name}"][0] for name in self.program.parameters}


def _compile(plan: BackwardPlan) -> Callable[[dict[str, np.ndarray]], None]:
    """The plan as one generated Python function: a line per node, NumPy calls with static shapes.

    Walking the trees node by node costs a few microseconds per node and step; a
    training loop on a small network spends more time there than in arithmetic.  The
    generated function does the same operations as :func:`evaluate` (the derivation's
    numbers come from it, and tests hold both equal to torch), with the broadcasting
    reshapes and the matmul case chosen once.  No user text reaches the code: names
    are looked up as string literals made by ``repr``, operations from a fixed table.
    """
    program = plan.program
    lines = ["def _program(env):", "    n = int(env['#n'][0])", "    inv_n = 1.0 / env['#n']"]
    constants: dict[str, Any] = {"np": np, "_compute": _compute, "_onehot": _onehot, "_softmax": _softmax,
                                 "_log_softmax": _log_softmax}
    seen: dict[int, str] = {}

    def keep(value: Any) -> str:
        name = f"c{len(constants)}"
        constants[name] = value
        return name

    def aligned(var: str, node: TNode, ndim: int) -> str:
        missing = ndim - len(node.shape)
        return f"{var}.reshape((-1, {'1, ' * missing}{''.join(f'{d}, ' for d in node.shape)}))" if missing else var

    def emit(node: TNode) -> str:
        if id(node) in seen:
            return seen[id(node)]
        op = node.op
        if op == "name":
            code = f"env[{node.name!r}]"
        elif op == "adjoint":
            code = f"env[{'δ:' + str(node.name)!r}]"
        elif op == "const":
            code = "inv_n" if node.label == "1/n" else keep(np.array([node.number]))
        elif op == "sample_sum" and node.args[0].op == "outer":  # Σᵢ δᵢxᵢᵀ as one product δᵀX
            a, b = (emit(x) for x in node.args[0].args)
            code = f"(({a}.T @ {b}) if len({a}) == len({b}) else np.einsum('si,tj->ij', {a}, {b}))[None]"
        else:
            args = [emit(a) for a in node.args]
            nd = len(node.shape)
            if op in _INFIX:
                a, b = (aligned(v, n, nd) for v, n in zip(args, node.args))
                code = f"{a} {_INFIX[op]} {b}"
            elif op == "neg":
                code = f"-{args[0]}"
            elif op == "f":
                call = keep(numpy_functions()[node.name])
                code = f"{call}({', '.join(aligned(v, n, nd) for v, n in zip(args, node.args))})"
            else:
                code = f"_compute({keep(node)}, [{', '.join(args)}])"
        var = f"t{len(seen)}"
        lines.append(f"    {var} = {code}")
        seen[id(node)] = var
        return var

    for stage in program.stages:
        var = emit(stage.tree)
        shape = keep((*stage.tree.shape,))
        lines.append(f"    env[{stage.name!r}] = np.broadcast_to({var}, ({var}.shape[0], *{shape})).copy()")
    for name in plan.order():
        node = program.node(name)
        shape = keep((*node.shape,))
        if name == program.loss:
            lines.append(f"    env[{'δ:' + name!r}] = np.ones((1, *{shape}))")
            continue
        rows = "n" if node.batched else "1"
        total = [f"np.zeros(({rows}, *{shape}))"]
        for k, (via, formula) in enumerate(plan.rules.get(name, [])):
            var = emit(formula)
            lines.append(f"    env[{f'δ:{via}→{name}#{k}'!r}] = {var}")
            total.append(var)
        lines.append(f"    env[{'δ:' + name!r}] = {' + '.join(total)}")
    namespace = dict(constants)
    exec(compile("\n".join(lines), "<explain tensor program>", "exec"), namespace)  # noqa: S102 - our own code
    return namespace["_program"]  # type: ignore[no-any-return]


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}


def _needs_gradient(program: TensorProgram) -> set[str]:
    """Names whose adjoint is asked: on a path from a parameter to the loss."""
    reaches = set(program.parameters)
    for stage in program.stages:
        if stage.tree.names() & reaches:
            reaches.add(stage.name)
    wanted = {program.loss}
    for stage in reversed(program.stages):
        if stage.name in wanted:
            wanted |= stage.tree.names()
    return reaches & wanted


def _backward(tree: TNode, seed: TNode, needs: set[str], n: int) -> list[tuple[str, TNode]]:
    """Each name the stage uses, with the formula of its share of the adjoint (rules applied top-down)."""
    out: list[tuple[str, TNode]] = []
    stack = [(tree, seed)]
    while stack:
        node, g = stack.pop()
        if node.op == "name":
            if node.name in needs:
                out.append((node.name, g))
            continue
        if node.op == "const" or not (node.names() & needs):
            continue
        for index, formula in vjp(node, g, n):
            arg = node.args[index]
            if arg.op == "const" or not (arg.names() & needs):
                continue
            stack.append((arg, fit(formula, arg, node)))
    out.reverse()
    return out


# -- plain-text formulas -------------------------------------------------------------------------
_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 2, "matmul": 2, "outer": 2, "pow": 3}


def print_text(node: TNode, loss: str = "L") -> str:
    """A formula in plain text, as a course writes it: ``dL/dz1 x^T``, ``W2^T dL/dz2 * sigmoid'(z1)``."""

    def wrap(child: TNode, level: int) -> str:
        text = visit(child)
        return f"({text})" if _PRECEDENCE.get(child.op, 9) < level else text

    def visit(node: TNode) -> str:
        op, a = node.op, node.args
        if op == "name":
            return str(node.name)
        if op == "adjoint":
            return f"d{loss}/d{node.name}"
        if op == "const":
            return node.label or f"{node.number:g}"
        if op == "add":
            return f"{visit(a[0])} + {visit(a[1])}"
        if op == "sub":
            return f"{visit(a[0])} - {wrap(a[1], 2)}"
        if op == "mul":
            sign = " * " if a[0].shape and a[1].shape else " "
            return f"{wrap(a[0], 2)}{sign}{wrap(a[1], 2)}"
        if op == "div":
            return f"{wrap(a[0], 2)}/{wrap(a[1], 3)}"
        if op == "pow":
            return f"{wrap(a[0], 4)}^{wrap(a[1], 4)}"
        if op == "neg":
            return f"-{wrap(a[0], 3)}"
        if op == "matmul":
            return f"{wrap(a[0], 2)} @ {wrap(a[1], 3)}"
        if op == "outer":
            return f"{wrap(a[0], 3)} {wrap(a[1], 4)}^T"
        if op == "T":
            return f"{wrap(a[0], 4)}^T"
        if op == "f":
            return f"{_user(node.name)}({', '.join(visit(x) for x in a)})"
        if op == "df":
            return f"{_user(node.name)}'({', '.join(visit(x) for x in a)})"
        if op in ("sum", "mean") and node.axis is not None:
            return f"{op}({visit(a[0])}, {node.axis})"
        if op == "spread" and node.axis is None:
            return f"{wrap(a[0], 2)} ones{shape_text(node.shape)}"
        if op == "spread":
            return f"repeat({visit(a[0])}, axis={node.axis}, shape={shape_text(node.shape)})"
        if op == "unbroadcast":
            return f"sum_to{shape_text(node.shape)}({visit(a[0])})"
        if op == "sample_sum":
            return f"sum_i {wrap(a[0], 3)}"
        if op == "sample_mean":
            return f"mean_i {wrap(a[0], 3)}"
        return f"{op}({', '.join(visit(x) for x in a)})"

    return visit(node)


def _user(name: str | None) -> str:
    op = OPS.get(name or "")
    return (op.user or op.name) if op else str(name)


__all__ = ["TNode", "TensorProgram", "MatrixDerivation", "derive_matrix", "program_of", "evaluate", "vjp",
           "REDUCTIONS"]
