"""Compiling a Graph into one straight-line Python function (NumPy or torch).

*Symbolic for explaining, compiled for numbers*: the formulas shown to users are
SymPy expressions, but their numbers come from a function generated once from
the Graph — forward values, local partials and adjoints as a flat sequence of
assignments, like a hand-written backward pass — and then called as often as
needed, vectorized over samples.  The generated source is built by walking
SymPy trees that the safe parser produced (never from user text), with every
node renamed to a positional variable, and is compiled once with :func:`exec`
in a namespace that holds only the numeric functions of the chosen backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .functions import SAMPLE_COUNT, numpy_functions, reduction_kind, stable_form, torch_functions
from .graph import Graph
from .interrupts import import_torch


def _np_sum_samples(x: Any, n: int) -> Any:
    """Σ over the samples; a value that is the same for every sample counts n times."""
    return np.sum(x) if np.ndim(x) else x * n


def _numpy_namespace() -> dict[str, Any]:
    """The operations of :data:`explain.functions.OPS` in NumPy, and the compiled code's own helpers."""
    names: dict[str, Any] = {
        "sum_samples": _np_sum_samples,
        "as_array": np.asarray,
        # A stage that is a constant (p = "0") is a NumPy number like the leaves, so that 1/p is inf
        # (reported by explain.finite) instead of Python's ZeroDivisionError (found by tests/test_fuzz.py).
        "constant": np.float64,
    }
    names.update(numpy_functions())
    return names


def _torch_namespace() -> dict[str, Any]:
    """The operations of :data:`explain.functions.OPS` in torch, and the compiled code's own helpers."""
    torch = import_torch()

    names: dict[str, Any] = {
        "sum_samples": lambda x, n: x.sum() if isinstance(x, torch.Tensor) and x.dim() else x * n,
        "as_array": torch.as_tensor,
        "constant": lambda value: value,  # tensors around it divide by zero without raising
    }
    names.update(torch_functions())
    return names


class CodePrinter:
    """Prints a SymPy expression as a fully parenthesised Python expression."""

    def __init__(self, variables: Mapping[sp.Symbol, str], functions: Mapping[str, Any]) -> None:
        self.variables = variables
        self.functions = functions

    def __call__(self, expr: sp.Expr) -> str:
        if expr.is_Symbol:
            return self.variables[expr]
        if expr.is_Number or expr in (sp.pi, sp.E):
            return _number(expr)
        if expr.is_Add:
            return "(" + " + ".join(self(a) for a in expr.args) + ")"
        if expr.is_Mul:
            return "(" + " * ".join(self(a) for a in expr.args) + ")"
        if expr.is_Pow:
            base, exponent = expr.args
            if base.is_Number:
                # A literal base is a NumPy number, like the leaves: 1/0.0 is inf (reported by
                # explain.finite), not Python's ZeroDivisionError (found by benchmarks/fuzz.py).
                number = f"constant({self(base)})"
                if exponent == -1:
                    return f"(1.0 / {number})"
                return f"({number} ** {self(exponent)})"
            if exponent == sp.Rational(1, 2):
                return f"sqrt({self(base)})"
            if exponent == -1:
                return f"(1.0 / {self(base)})"
            if exponent.is_Integer and 2 <= exponent <= 4 and base.is_Symbol:
                # NumPy computes x ** 3 with the general pow, 30× slower than x * x * x.
                return "(" + " * ".join([self(base)] * int(exponent)) + ")"
            if exponent.is_Integer and exponent > 0:
                return f"({self(base)} ** {int(exponent)})"
            return f"({self(base)} ** {self(exponent)})"
        kind = reduction_kind(expr)
        if kind:
            total = f"sum_samples({self(expr.args[0])}, n_samples)"
            return total if kind == "sum" else f"({total} / n_samples)"
        if isinstance(expr, (sp.Function, sp.Max, sp.Min)):  # Max and Min are not Functions in SymPy
            name = type(expr).__name__
            stable = stable_form(expr)
            if stable is not None:
                return f"{stable[0]}({self(stable[1])})"
            if name in ("Max", "Min") and len(expr.args) > 2:
                # np.maximum(a, b, c) would take c as its output array: fold pairwise.
                inner = type(expr)(*expr.args[1:], evaluate=False)
                return f"{name}({self(expr.args[0])}, {self(inner)})"
            if name not in self.functions:
                raise ValueError(f"no numeric implementation of {name}")
            return f"{name}(" + ", ".join(self(a) for a in expr.args) + ")"
        raise ValueError(f"cannot compile {type(expr).__name__}: {expr}")


def _number(expr: sp.Expr) -> str:
    """A number as Python source: negatives in parentheses, inf and nan spelled out."""
    if expr.is_Integer and abs(expr) < 2**53:
        text = f"{int(expr)}.0"
    else:
        try:
            text = repr(float(expr))
        except TypeError:  # zoo, SymPy's complex infinity, from a derivative such as log(0)
            text = "nan"
    if text in ("inf", "-inf", "nan"):
        # Without the quotes these would be names, unknown in the generated code.
        text = f'float("{text}")'
    # (-1.0 ** 0.5) would be read as -(1.0 ** 0.5).
    return f"({text})" if text.startswith("-") else text


@dataclass
class Evaluation:
    """Numbers of a Graph at one point: node values, local partials, adjoints.

    For a data problem, per-sample nodes hold arrays (one entry per sample) and
    their adjoints are per-sample too; parameters and other scalar nodes hold the
    gradient of the reduced loss.  ``loss`` is the reduced loss.
    """

    values: dict[str, Any]
    locals: dict[tuple[str, str], Any]
    adjoints: dict[str, Any]
    loss: float


class Program:
    """A Graph compiled once into a function of its leaf values."""

    def __init__(
        self, graph: Graph, backend: str = "numpy", intermediate: Callable[[Any], Any] | None = None,
    ) -> None:
        """Compile ``graph``; ``intermediate``, if given, is applied to every intermediate value.

        Intermediate values are stage values, local partials and adjoints; the
        given leaves, the reduced loss and the parameters' gradients are not.
        Rounding there simulates a student who rounds each number written down.
        """
        self.graph = graph
        self.backend = backend
        functions = _numpy_namespace() if backend == "numpy" else _torch_namespace()
        names = list(graph.nodes)
        self._variables = {graph.nodes[n].symbol: f"n{i}" for i, n in enumerate(names)}
        self._printer = CodePrinter({**self._variables, SAMPLE_COUNT: "n_samples"}, functions)
        self._namespace = functions
        self._hooked = intermediate is not None
        if intermediate is not None:
            self._namespace = {**functions, "intermediate": intermediate}
        self._evaluate = self._compile_full()
        self._train: Callable[..., Any] | None = None

    # -- generated code -------------------------------------------------
    def _intermediate(self, source: str) -> str:
        return f"intermediate({source})" if self._hooked else source

    def _forward_lines(self) -> list[str]:
        g = self.graph
        lines = []
        for i, node in enumerate(g.nodes.values()):
            if node.is_leaf:
                lines.append(f"n{i} = leaves[{i}]")
            elif not node.expr.free_symbols:
                lines.append(f"n{i} = {self._intermediate('constant(' + self._printer(node.expr) + ')')}")
            else:
                lines.append(f"n{i} = {self._intermediate(self._printer(node.expr))}")
        # A data problem's loss is its reduction node (see Graph.from_problem): one number.
        lines.append(f"loss = {self._variables[g.nodes[g.loss].symbol]}")
        return lines

    def _backward_lines(self, local_names: Mapping[tuple[str, str], str], only_parameters: bool = False) -> list[str]:
        """Adjoints from the loss back, each the sum over consumers of adjoint × local.

        With ``only_parameters``, nodes that no parameter influences (inputs,
        targets, data) get no adjoint: a training step does not need them.
        """
        g = self.graph
        wanted = {*g.parameters, *g.descendants(*g.parameters)} if only_parameters else set(g.nodes)
        lines = []
        adjoint = {g.loss: "g_" + self._variables[g.nodes[g.loss].symbol]}
        lines.append(f"{adjoint[g.loss]} = 1.0")
        for name in g.backward_order[1:]:
            if name not in wanted:
                continue
            node = g.nodes[name]
            terms = []
            for edge in g.edges_out_of(name):
                term = f"{adjoint[edge.dst]} * {local_names[(edge.src, edge.dst)]}"
                if g.nodes[edge.dst].per_sample and not node.per_sample:
                    # Every sample's l_i uses this one number: n terms, even when
                    # adjoint and local happen to be the same for all samples.
                    term = f"sum_samples({term}, n_samples)"
                terms.append(term)
            var = "g_" + self._variables[node.symbol]
            total = " + ".join(terms) if terms else "0.0"
            lines.append(f"{var} = " + (total if node.kind == "parameter" else self._intermediate(total)))
            adjoint[name] = var
        return lines

    def _compile(self, name: str, lines: list[str], returns: str) -> Callable[..., Any]:
        source = f"def {name}(leaves, n_samples):\n" + "".join(f"    {line}\n" for line in lines)
        source += f"    return {returns}\n"
        namespace = dict(self._namespace)
        # The source is generated from SymPy trees built by the safe parser,
        # with every name replaced by a positional variable: no user text.
        exec(compile(source, f"<explain:{name}>", "exec"), namespace)  # noqa: S102
        self.source = source
        return namespace[name]  # type: ignore[no-any-return]

    def _compile_full(self) -> Callable[..., Any]:
        g = self.graph
        lines = self._forward_lines()
        local_names = {}
        for k, edge in enumerate(g.edges):
            local_names[(edge.src, edge.dst)] = f"l{k}"
            lines.append(f"l{k} = {self._intermediate(self._printer(edge.local))}")
        lines += self._backward_lines(local_names)
        values = _tuple(f"n{i}" for i in range(len(g.nodes)))
        locals_ = _tuple(f"l{k}" for k in range(len(g.edges)))
        adjoints = _tuple(f"g_{self._variables[g.nodes[n].symbol]}" for n in g.backward_order)
        return self._compile("evaluate", lines, f"loss, {values}, {locals_}, {adjoints}")

    def _compile_train(self) -> Callable[..., Any]:
        g = self.graph
        lines = self._forward_lines()
        needed = [e for e in g.edges if e.dst in g.reaches_loss]
        local_names = {}
        for k, edge in enumerate(needed):
            local_names[(edge.src, edge.dst)] = f"({self._printer(edge.local)})"
        lines += self._backward_lines(local_names, only_parameters=True)
        grads = _tuple(
            (f"g_{self._variables[g.nodes[p].symbol]}" if p in g.reaches_loss else "0.0") for p in g.parameters
        )
        return self._compile("loss_and_grad", lines, f"loss, {grads}")

    # -- calling --------------------------------------------------------
    def leaves(self, values: Mapping[str, Any] | None = None) -> list[Any]:
        merged = {**self.graph.leaf_values, **(values or {})}
        return [merged.get(n) for n in self.graph.nodes]

    def evaluate(self, values: Mapping[str, Any] | None = None) -> Evaluation:
        """All numbers of the Graph at its leaf values, overridden by ``values``."""
        g = self.graph
        # NumPy scalars, not Python floats: 1/0 gives inf (reported by explain.finite), not ZeroDivisionError.
        leaves = [np.float64(v) if isinstance(v, (int, float)) else v for v in self.leaves(values)]
        with np.errstate(all="ignore"):
            loss, node_values, local_values, adjoint_values = self._evaluate(leaves, g.n_samples or 1)
        values_out = {n: _plain(v, g.n_samples if g.nodes[n].per_sample else None) for n, v in zip(g.nodes, node_values)}
        locals_out = {(e.src, e.dst): _plain(v, g.n_samples if g.nodes[e.dst].per_sample else None)
                      for e, v in zip(g.edges, local_values)}
        adjoints_out = {n: _plain(v, g.n_samples if g.nodes[n].per_sample else None)
                        for n, v in zip(g.backward_order, adjoint_values)}
        for name in g.nodes:
            adjoints_out.setdefault(name, 0.0 if not g.nodes[name].per_sample else np.zeros(g.n_samples or 1))
        return Evaluation(values_out, locals_out, adjoints_out, float(loss))

    def loss_and_grad(self, leaves: list[Any], n_samples: int) -> tuple[Any, tuple[Any, ...]]:
        """The reduced loss and the parameter gradients, for training loops.

        ``leaves`` are the leaf values in node order (see :meth:`leaves`).
        """
        if self._train is None:
            self._train = self._compile_train()
        return self._train(leaves, n_samples)  # type: ignore[no-any-return]


def _tuple(items: Iterable[str]) -> str:
    """Python source of a tuple of the given items (empty included)."""
    items = list(items)
    return "(" + ", ".join(items) + ",)" if items else "()"


def _plain(value: Any, n: int | None) -> Any:
    """A Python float, or a float64 array of length n for per-sample quantities."""
    if n is None:
        array = np.asarray(value, dtype=float)
        return float(array) if array.ndim == 0 else array
    return np.broadcast_to(np.asarray(value, dtype=float), (n,)).copy()


__all__ = ["Program", "Evaluation", "CodePrinter"]
