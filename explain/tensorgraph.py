"""The tensor view: a problem as a program over vectors and matrices, and its matrix-form derivation.

The scalar view (:mod:`explain.tensors`) expands every tensor into one scalar node
per entry, which is what a path sum needs.  Courses teach the other view too:
δ⁽ˡ⁾ = (W⁽ˡ⁺¹⁾)ᵀ δ⁽ˡ⁺¹⁾ ⊙ σ′(z⁽ˡ⁾), ∂L/∂W = δ xᵀ.  This module is that view.

The tree (:mod:`explain.tensornodes`), the rules (:mod:`explain.tensorrules`) and the
numbers (:mod:`explain.tensoreval`) have modules of their own; this one reads a problem
into a program and derives it.

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
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from .errors import ExplainError
from .functions import OPS, USER_FUNCTIONS, reduction_kind
from .i18n import message
from .parse import _Builder, _walk, invalid_name_reason, is_valid_name
from .tensoreval import _compile, evaluate
from .tensornodes import _BINARY_OPS, TNode, binary, const, matmul, transpose
from .tensorrules import fit, vjp
from .tensors import TENSOR_FUNCTIONS, Shape, broadcast_shape, entries_of, entry_name, shape_text

if TYPE_CHECKING:
    from .problem import Problem

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
        if func in TENSOR_FUNCTIONS and func not in self._names:
            return TENSOR_FUNCTIONS[func]
        if func in USER_FUNCTIONS:
            n = USER_FUNCTIONS[func][1]
            return (n, n)
        return None

    def call(self, func: str, args: list[TNode]) -> TNode:
        if func not in TENSOR_FUNCTIONS:
            op = next(o for o in OPS.values() if o.user == func)
            shape: Shape = ()
            for arg in args:
                shape = broadcast_shape(f"{func}(,)", shape, arg.shape)
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
                raise ValueError(message("tensor_label", last=v.shape[0] - 1))
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
        taken: set[str] = set()
        for kind, table in (("value", values or {}), ("data", data), ("parameter", parameters),
                            ("stage", forward)):
            for name in table:
                # the names a problem file allows: each is written in formulas, and in the compiled
                # plan only as a quoted dictionary key (tensoreval._compile)
                where = f"{source}: {kind} {name!r}"
                if not isinstance(name, str) or not is_valid_name(name):
                    raise ExplainError(where, invalid_name_reason(str(name)))
                if name in taken:
                    raise ExplainError(where, "is defined twice (names must be unique)")
                taken.add(name)
        for kind, table in (("value", values or {}), ("data", data), ("parameter", parameters)):
            for name, value in table.items():
                array = np.asarray(value, dtype=float)
                if kind == "data" and (array.ndim == 0 or len(array) != program.n_samples):
                    raise ExplainError(f"{source}: data {name!r}", f"must hold {program.n_samples} samples (one row each), "
                                                                   f"as the first data column does")
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
    # Each tensor's entries by name, with the tensor they belong to (a stage's text is read once, whole).
    owner = {entry: tensor for entry, (tensor, _) in entries_of(problem.shapes).items()}
    owner.update({t: t for t in problem.tensor_texts})
    tensor_entries = owner.keys() - problem.tensor_texts.keys()
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
        tensor = owner.get(stage.name)
        if tensor in problem.tensor_texts:
            if tensor not in done:
                program.add_stage(tensor, problem.tensor_texts[tensor], constants, f"{problem.source}: {tensor}")
                done.add(tensor)
            continue
        names = {**program.leaves, **{s.name: program.node(s.name) for s in program.stages}}
        program.stages.append(TensorStage(stage.name, _from_sympy(stage.expr, names), str(stage.text)))
    program.finish(problem.loss, problem.reduction)
    return program


def matrix_program(problem: Problem) -> TensorProgram | None:
    """The tensor program of a problem with vectors or matrices, or None: a scalar problem, or one
    whose scalar stages use single entries (``a = "W_0_1 * 3"``), which has no matrix form and is
    derived, verified and trained in the scalar view alone."""
    if not problem.shapes:
        return None
    try:
        return program_of(problem)
    except ExplainError:
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


__all__ = ["TNode", "TensorProgram", "MatrixDerivation", "BackwardPlan", "derive_matrix", "program_of", "matrix_program",
           "evaluate", "vjp"]
