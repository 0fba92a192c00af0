"""Verification: the derivation's numbers checked by two independent witnesses.

Why two?  PyTorch autograd runs the *forward expressions* of the same Graph
(leaf tensors with ``requires_grad``, every stage kept with ``retain_grad``) and
differentiates them its own way; it never sees our local derivatives, so a
wrong edge in the Graph shows up as a mismatch on the node where it sits.
Central finite differences of the compiled NumPy program check the parameter
gradients against nothing but the forward pass, with no PyTorch at all.

Errors are judged on a mixed scale, ``|symbolic − torch| / max(1, |symbolic|)``:
absolute for quantities below one, relative above, so a 2000-sample sum of
size 1e5 is held to the same number of correct digits as a single sigmoid.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import numpy as np
import sympy as sp

from .derivation import Derivation
from .errors import ExplainError
from .functions import stable_form
from .graph import Graph
from .i18n import message

#: Default tolerance on the mixed error, by dtype of the PyTorch run.
TOLERANCES = {"float64": 1e-10, "float32": 1e-4}
#: Relative step of the central finite differences.
FD_STEP = 1e-6
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Row:
    """One compared quantity: a node's value, a node's adjoint or a parameter's gradient.

    For a per-sample node the row shows the sample with the largest error.
    """

    quantity: str
    node: str
    kind: str  # "value" | "adjoint" | "gradient"
    symbolic: float
    torch: float
    abs_error: float
    error: float
    sample: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity, "node": self.node, "kind": self.kind,
            "symbolic": _json_float(self.symbolic), "torch": _json_float(self.torch),
            "abs_error": _json_float(self.abs_error), "error": _json_float(self.error), "sample": self.sample,
        }


@dataclass(frozen=True)
class FiniteDifference:
    """A parameter's gradient against (L(p + h) − L(p − h)) / 2h of the compiled program."""

    parameter: str
    symbolic: float
    estimate: float
    step: float
    abs_error: float
    error: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter, "symbolic": _json_float(self.symbolic),
            "estimate": _json_float(self.estimate), "step": self.step,
            "abs_error": _json_float(self.abs_error), "error": _json_float(self.error),
            "tolerance": self.tolerance, "passed": self.passed,
        }


@dataclass
class Verification:
    """The outcome of :func:`verify`: every row, the worst one, and whether all passed."""

    engine: str
    device: str
    dtype: str
    tolerance: float
    loss: str
    rows: list[Row] = field(default_factory=list)
    finite_differences: list[FiniteDifference] = field(default_factory=list)
    suspect_node: str | None = None
    suspects: list[str] = field(default_factory=list)

    @property
    def max_abs_error(self) -> float:
        """The largest plain absolute difference (large sums make this large; see ``max_error``)."""
        return max((r.abs_error for r in self.rows), default=0.0)

    @property
    def max_error(self) -> float:
        """The largest mixed error, the one judged against ``tolerance``."""
        return max((r.error for r in self.rows), default=0.0)

    @property
    def finite_difference_max_error(self) -> float:
        return max((f.error for f in self.finite_differences), default=0.0)

    @property
    def failures(self) -> list[Row]:
        """Rows whose error exceeds the tolerance, in graph order.

        Values come in forward order and adjoints from the loss back, so the
        first failure is where the disagreement starts, not just where it is largest.
        """
        return [r for r in self.rows if not r.error <= self.tolerance]

    @property
    def finite_difference_failures(self) -> list[FiniteDifference]:
        return [f for f in self.finite_differences if not f.passed]

    @property
    def worst(self) -> str | None:
        """The quantity with the largest error (None when every error is exactly 0)."""
        if not self.rows or self.max_error == 0:
            return None
        return max(self.rows, key=lambda r: _sort_key(r.error)).quantity

    @property
    def passed(self) -> bool:
        return not self.failures and not self.finite_difference_failures

    def to_dict(self) -> dict[str, Any]:
        """The ``verification`` object of SPEC §3, with every row."""
        return {
            "engine": self.engine, "device": self.device, "dtype": self.dtype,
            "tolerance": self.tolerance,
            "max_abs_error": _json_float(self.max_abs_error),
            "max_error": _json_float(self.max_error),
            "finite_difference_max_error": _json_float(self.finite_difference_max_error),
            "passed": self.passed, "worst": self.worst,
            "suspect_node": self.suspect_node, "suspects": self.suspects,
            "rows": [r.to_dict() for r in self.rows],
            "finite_differences": [f.to_dict() for f in self.finite_differences],
        }

    def _repr_markdown_(self) -> str:
        from .commands.verify import render_markdown

        return render_markdown(self)


def verify(
    derivation: Derivation,
    device: str = "auto",
    dtype: str = "float64",
    tolerance: float | None = None,
    finite_differences: bool = True,
) -> Verification:
    """Check every value, adjoint and gradient of ``derivation`` with PyTorch autograd.

    ``device`` is ``auto`` (CUDA when available), ``cpu`` or ``cuda``; ``dtype``
    is ``float64`` or ``float32``; ``tolerance`` bounds the mixed error
    (default 1e-10 for float64, 1e-4 for float32).  Raises
    :class:`~explain.errors.ExplainError` when PyTorch is missing or the
    device cannot be used.
    """
    torch = _import_torch()
    if dtype not in TOLERANCES:
        raise ExplainError("--dtype", message("verify_bad_dtype", dtype=dtype, choices=", ".join(TOLERANCES)))
    device = _resolve_device(torch, device)
    tol = TOLERANCES[dtype] if tolerance is None else float(tolerance)
    if not tol >= 0:
        raise ExplainError("--tolerance", message("verify_bad_tolerance", tolerance=tolerance))
    graph = derivation.graph
    values, grads = torch_values_and_grads(graph, device, getattr(torch, dtype))
    result = Verification("torch", device, dtype, tol, graph.loss)
    result.rows = _rows(derivation, values, grads)
    result.suspect_node, result.suspects = suspect_edges(graph, result)
    if finite_differences:
        result.finite_differences = finite_difference_check(derivation)
    return result


# -- PyTorch ------------------------------------------------------------------
def _import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ExplainError("verify", message("verify_no_torch")) from None
    return torch


def _resolve_device(torch: Any, device: str) -> str:
    if device not in DEVICES:
        raise ExplainError("--device", message("verify_bad_device", device=device, choices=", ".join(DEVICES)))
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ExplainError("--device cuda", message("verify_no_cuda"))
    return device


def torch_values_and_grads(graph: Graph, device: str, dtype: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the Graph's forward expressions in PyTorch and backpropagate the reduced loss.

    Returns each node's value and ``.grad`` as float64 NumPy arrays (0-d for
    scalar nodes).  The expressions are walked directly (no generated code), so
    this is an implementation independent of :mod:`explain.compile`.
    """
    import torch

    from .compile import _torch_namespace

    env: dict[str, Any] = {}
    for node in graph:
        if node.is_leaf:
            env[node.name] = torch.tensor(np.asarray(graph.leaf_values[node.name], dtype=float),
                                          dtype=dtype, device=device, requires_grad=True)
    interpret = _Interpreter(torch, _torch_namespace(), env, dtype, device)
    for node in graph.stages:
        value = interpret(node.expr)
        if any(value is t for t in env.values()):
            value = value.clone()  # an identity stage (out = in) needs a tensor of its own
        if value.requires_grad:
            value.retain_grad()
        else:
            value = value.detach().requires_grad_(True)  # a constant stage still has an adjoint
        env[node.name] = value
    loss = env[graph.loss]
    if graph.is_data_problem and graph.nodes[graph.loss].per_sample:
        loss = loss.sum() / graph.n_samples if graph.reduction == "mean" else loss.sum()
    if loss.requires_grad:
        loss.backward()
    values = {n: _numpy(t) for n, t in env.items()}
    grads = {n: (_numpy(t.grad) if t.grad is not None else np.zeros_like(values[n])) for n, t in env.items()}
    return values, grads


def _numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.detach().to("cpu").double().numpy(), dtype=float)


class _Interpreter:
    """Evaluates a SymPy expression tree with torch operations, node by node."""

    def __init__(self, torch: Any, functions: Mapping[str, Callable[..., Any]], env: Mapping[str, Any],
                 dtype: Any, device: str) -> None:
        self.torch = torch
        self.functions = functions
        self.env = env
        self.dtype = dtype
        self.device = device

    def constant(self, value: float) -> Any:
        return self.torch.tensor(value, dtype=self.dtype, device=self.device)

    def __call__(self, expr: sp.Expr) -> Any:
        if expr.is_Symbol:
            return self.env[expr.name]
        if expr.is_Number or expr in (sp.pi, sp.E):
            return self.constant(float(expr))
        if expr.is_Add:
            return reduce(operator.add, map(self, expr.args))
        if expr.is_Mul:
            return reduce(operator.mul, map(self, expr.args))
        if expr.is_Pow:
            base, exponent = expr.args
            if exponent == sp.Rational(1, 2):
                return self.torch.sqrt(self(base))
            if exponent.is_Integer:
                return self(base) ** int(exponent)
            return self(base) ** self(exponent)
        if isinstance(expr, (sp.Function, sp.Max, sp.Min)):  # Max/Min are not sp.Function subclasses
            name = type(expr).__name__
            stable = stable_form(expr)
            if stable is not None:  # log(sigmoid(z)) as logsigmoid(z), as explain.compile computes it
                return self.functions[stable[0]](self(stable[1]))
            if name not in self.functions:
                raise ExplainError(name, message("verify_no_torch_function", name=name))
            args = [self(a) for a in expr.args]
            if name in ("Max", "Min") and len(args) > 2:
                return reduce(self.functions[name], args)
            return self.functions[name](*args)
        raise ExplainError(str(expr), message("verify_cannot_run", kind=type(expr).__name__))


# -- comparison ---------------------------------------------------------------
def _rows(derivation: Derivation, values: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> list[Row]:
    graph = derivation.graph
    loss = graph.loss
    rows = [_compare(n.name, n.name, "value", derivation.value(n.name), values[n.name]) for n in graph.stages]
    parameters = set(graph.parameters)
    for name in graph.backward_order:
        if name not in parameters:
            rows.append(_compare(f"∂{loss}/∂{name}", name, "adjoint", derivation.grad(name), grads[name]))
    for name, gradient in derivation.gradients.items():
        rows.append(_compare(f"∂{loss}/∂{name}", name, "gradient", gradient.value, grads[name]))
    return rows


def _compare(quantity: str, node: str, kind: str, symbolic: Any, torch_value: Any) -> Row:
    sym = np.asarray(symbolic, dtype=float)
    tor = np.asarray(torch_value, dtype=float)
    sym, tor = np.broadcast_arrays(sym, tor)
    with np.errstate(all="ignore"):
        diff = np.abs(sym - tor)
        same = (sym == tor) | (np.isnan(sym) & np.isnan(tor))
        diff = np.where(same, 0.0, np.where(np.isfinite(diff), diff, np.inf))
        scaled = diff / np.maximum(1.0, np.where(np.isfinite(sym), np.abs(sym), 1.0))
    if scaled.ndim == 0:
        return Row(quantity, node, kind, float(sym), float(tor), float(diff), float(scaled))
    i = int(np.argmax(scaled))
    return Row(quantity, node, kind, float(sym[i]), float(tor[i]), float(diff[i]), float(scaled[i]), sample=i)


def suspect_edges(graph: Graph, result: Verification) -> tuple[str | None, list[str]]:
    """The local derivatives to blame for the first backward mismatch.

    When a node's adjoint is wrong but the adjoints of all the nodes that use
    it are right, the error sits in a local derivative on an edge out of it.
    """
    failed = {r.node for r in result.failures if r.kind in ("adjoint", "gradient")}
    if not failed:
        return None, []
    first = next(n for n in graph.backward_order if n in failed)
    edges = graph.edges_out_of(first)
    if any(e.dst in failed for e in edges):
        return None, []
    return first, [f"∂{e.dst}/∂{e.src}" for e in edges]


def finite_difference_check(derivation: Derivation, step: float = FD_STEP) -> list[FiniteDifference]:
    """Central differences of the reduced loss, one parameter at a time, in float64.

    The tolerance of each estimate is its own error budget: 1e-6 for the
    truncation error plus the rounding error ``ε·|L| / h`` of the difference.
    """
    graph = derivation.graph
    program = derivation.program
    leaves = program.leaves(graph.leaf_values)
    names = list(graph.nodes)
    n = graph.n_samples or 1
    eps = float(np.finfo(float).eps)
    results = []
    for name in graph.parameters:
        slot = names.index(name)
        centre = float(leaves[slot])
        h = step * max(1.0, abs(centre))
        up, down = list(leaves), list(leaves)
        up[slot], down[slot] = centre + h, centre - h
        with np.errstate(all="ignore"):
            loss_up = float(program.loss_and_grad(up, n)[0])
            loss_down = float(program.loss_and_grad(down, n)[0])
            estimate = (loss_up - loss_down) / (2 * h)
        symbolic = float(derivation.gradients[name].value)
        scale = max(1.0, abs(symbolic)) if math.isfinite(symbolic) else 1.0
        abs_error = abs(estimate - symbolic) if math.isfinite(estimate - symbolic) else math.inf
        budget = 1e-6 + 100 * eps * max(1.0, abs(loss_up), abs(loss_down)) / h / scale
        results.append(FiniteDifference(name, symbolic, estimate, h, abs_error, abs_error / scale, budget))
    return results


def _sort_key(error: float) -> float:
    return math.inf if math.isnan(error) else error


def _json_float(value: float) -> float | None:
    """JSON has no inf or nan: they are written as null."""
    return float(value) if math.isfinite(value) else None
