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
import random
from collections.abc import Callable, Mapping
import dataclasses
from dataclasses import dataclass, field
from functools import reduce
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from .derivation import Derivation
from .errors import ExplainError
from .functions import OPS, stable_form
from .graph import Graph
from .highprecision import HighPrecision, Unsupported, is_finite_real
from .i18n import message
from .interrupts import import_torch

#: Default tolerance on the mixed error, by dtype of the PyTorch run.
TOLERANCES = {"float64": 1e-10, "float32": 1e-4}
#: Relative step of the high-precision central differences (absolute at p = 0).
FD_RELATIVE_STEP = 1e-20
#: Relative step of the one-sided differences that look for a kink.
KINK_STEP = 1e-8
#: High-precision operations the finite-difference check may spend (about 4 µs each, so
#: about 2 s); beyond it an evenly spaced subset of parameters is checked, never fewer
#: than FD_MINIMUM.
FD_BUDGET = 400_000
FD_MINIMUM = 8
EPS64 = float(np.finfo(np.float64).eps)
DEVICES = ("auto", "cpu", "cuda")
#: Unit roundoff of each dtype: the largest relative error of one correctly rounded operation.
UNIT_ROUNDOFF = {"float64": 2.0 ** -53, "float32": 2.0 ** -24}
#: Runs with random rounding-sized perturbations used to estimate each quantity's rounding error.
ROUNDING_RUNS = 4
#: A quantity may differ by this many times the largest spread of those runs.
SAFETY = 10.0


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
    tolerance: float = math.inf  # this row's allowed error: the base tolerance or its rounding estimate

    @property
    def passed(self) -> bool:
        return self.error <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {
            "quantity": self.quantity, "node": self.node, "kind": self.kind,
            "symbolic": _json_float(self.symbolic), "torch": _json_float(self.torch),
            "abs_error": _json_float(self.abs_error), "error": _json_float(self.error), "sample": self.sample,
            "tolerance": _json_float(self.tolerance),
        }


@dataclass(frozen=True)
class FiniteDifference:
    """A parameter's float64 gradient against a central difference of the loss taken in high precision.

    ``status`` is ``"checked"`` (judged against ``tolerance``), ``"kink"`` (the
    parameter sits at a kink: the one-sided derivatives ``left`` and ``right``
    differ, the symbolic value follows the convention and lies between them; not
    a failure) or ``"skipped"`` (``note`` says why: a function with no
    high-precision implementation, or no step inside the domain).
    """

    parameter: str
    symbolic: float
    estimate: float
    step: float
    abs_error: float
    error: float
    tolerance: float
    status: str = "checked"
    note: str = ""
    exact: float = math.nan  # the derivation's own formulas evaluated in high precision
    left: float | None = None
    right: float | None = None

    @property
    def passed(self) -> bool:
        return self.status != "checked" or self.error <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter, "symbolic": _json_float(self.symbolic),
            "estimate": _json_float(self.estimate), "step": self.step,
            "abs_error": _json_float(self.abs_error), "error": _json_float(self.error),
            "tolerance": _json_float(self.tolerance), "passed": self.passed, "status": self.status,
            "note": self.note, "high_precision_symbolic": _json_float(self.exact),
            "left": None if self.left is None else _json_float(self.left),
            "right": None if self.right is None else _json_float(self.right),
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
    parameter_count: int = 0  # how many parameters the problem has (finite differences may check a subset)
    #: How the finite differences were taken: "mpmath" (the scalar view, in high precision) or
    #: "float64" (the tensor view's entries, explain.tensorverify).
    fd_method: str = "mpmath"

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
        """The largest error of the judged finite differences (kinks and skips are not judged)."""
        return max((f.error for f in self.finite_differences if f.status == "checked"), default=0.0)

    @property
    def failures(self) -> list[Row]:
        """Rows whose error exceeds the tolerance, in graph order.

        Values come in forward order and adjoints from the loss back, so the
        first failure is where the disagreement starts, not just where it is largest.
        """
        return [r for r in self.rows if not r.passed]

    @property
    def finite_difference_failures(self) -> list[FiniteDifference]:
        return [f for f in self.finite_differences if not f.passed]

    @property
    def kinks(self) -> list[FiniteDifference]:
        return [f for f in self.finite_differences if f.status == "kink"]

    @property
    def failed_checks(self) -> list[str]:
        """Which witnesses disagree: ``"autograd"``, ``"finite_differences"``, both or none."""
        return [name for name, bad in (("autograd", self.failures),
                                       ("finite_differences", self.finite_difference_failures)) if bad]

    @property
    def widened(self) -> list[Row]:
        """Rows allowed more than the base tolerance because rounding alone moves them further."""
        return [r for r in self.rows if r.tolerance > self.tolerance]

    def autograd_agreed(self, parameter: str) -> bool:
        """Whether PyTorch autograd agreed on this parameter's gradient."""
        return not any(r.kind == "gradient" and r.node == parameter for r in self.failures)

    @property
    def worst(self) -> str | None:
        """The quantity with the largest error (None when every error is exactly 0)."""
        if not self.rows or self.max_error == 0:
            return None
        return max(self.rows, key=lambda r: _sort_key(r.error)).quantity

    @property
    def passed(self) -> bool:
        return not self.failures and not self.finite_difference_failures

    def banner(self, m: Any) -> str:
        """The warning every output of a failed verification starts with (``m``: the message catalog)."""
        if self.failures:
            first = message_in(m, "verify_banner_autograd", quantity=self.failures[0].quantity)
        elif self.finite_difference_failures:
            first = message_in(m, "verify_banner_fd", quantity=self.finite_difference_failures[0].parameter)
        else:
            return ""
        count = len(self.failures) + len(self.finite_difference_failures)
        return message_in(m, "verify_banner", first=first, count=count)

    def to_dict(self) -> dict[str, Any]:
        """The ``verification`` object of SPEC §3, with every row."""
        return {
            "engine": self.engine, "device": self.device, "dtype": self.dtype,
            "tolerance": self.tolerance,
            "max_abs_error": _json_float(self.max_abs_error),
            "max_error": _json_float(self.max_error),
            "finite_difference_max_error": _json_float(self.finite_difference_max_error),
            "passed": self.passed, "failed_checks": self.failed_checks, "worst": self.worst,
            "parameter_count": self.parameter_count,
            "suspect_node": self.suspect_node, "suspects": self.suspects,
            "rows": [r.to_dict() for r in self.rows],
            "finite_differences": [f.to_dict() for f in self.finite_differences],
        }

    def _repr_markdown_(self) -> str | None:
        from .render.notebook import display  # the render layer's one door, late (see there)

        return display(self, "markdown")


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
    (default 1e-10 for float64, 1e-4 for float32).  A quantity that rounding in
    ``dtype`` alone can move by more (a saturated sigmoid's 1 − σ, a log near 0,
    a large sum that cancels) is allowed :data:`SAFETY` times the spread that
    :func:`rounding_spread` measures instead.  Raises
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
    spread = rounding_spread(graph, device, UNIT_ROUNDOFF[dtype])
    result = Verification("torch", device, dtype, tol, graph.loss)
    result.rows = _rows(derivation, values, grads, spread, tol)
    result.suspect_node, result.suspects = suspect_edges(graph, result)
    result.parameter_count = len(graph.parameters)
    if finite_differences:
        result.finite_differences = finite_difference_check(derivation)
    return result


def require_verified(derivation: Derivation, command: str, lang: str = "en") -> Verification | None:
    """Verify ``derivation`` before ``command`` (train, check) builds on it.

    Raises :class:`~explain.errors.VerificationFailed` (exit code 1) when a check
    fails, so that no training run or grade rests on numbers that disagree with
    PyTorch autograd or finite differences.  Returns None, checking nothing,
    when PyTorch is not installed (the verification's own message says how to get it).
    """
    import importlib.util

    from .errors import VerificationFailed
    from .i18n import Messages

    if importlib.util.find_spec("torch") is None:
        return None
    result = verify(derivation, device="cpu")
    if not result.passed:
        m = Messages(lang)
        raise VerificationFailed(derivation.graph.source, m(
            "verify_refused", banner=result.banner(m), action=m(f"verify_refused_{command}"), command=command))
    return result


# -- PyTorch ------------------------------------------------------------------
def _import_torch() -> Any:
    try:
        torch = import_torch()
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


def torch_values_and_grads(
    graph: Graph, device: str, dtype: Any, noise: float = 0.0, seed: int = 0, pins: _Pins | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the Graph's forward expressions in PyTorch and backpropagate the reduced loss.

    Returns each node's value and ``.grad`` as float64 NumPy arrays (0-d for
    scalar nodes).  The expressions are walked directly (no generated code), so
    this is an implementation independent of :mod:`explain.compile`.

    With ``noise`` > 0 every operation's result, every leaf and every adjoint
    is multiplied by ``1 + δ`` with ``δ`` uniform in ``[−noise, noise]`` (seeded by
    ``seed``): Monte Carlo arithmetic, which makes the run wander as far as
    rounding with unit roundoff ``noise`` could.  A sum over n samples rounds
    about log2(n) times, so its terms get ``noise·log2(n)``.  ``pins`` records
    (or, once recorded, replays) the branches of relu, abs, max and min.
    """
    torch = import_torch()

    from .compile import _torch_namespace

    generator = torch.Generator(device=device).manual_seed(seed) if noise else None
    scalars = random.Random(seed)
    per_sum = noise * max(1.0, math.log2(graph.n_samples or 1))

    def jitter(t: Any, size: float) -> Any:
        if not size:
            return t
        if t.dim() == 0:  # one Python random number: a network has thousands of scalar operations
            return t * (1.0 + size * scalars.uniform(-1.0, 1.0))
        u = torch.rand(t.shape, generator=generator, dtype=t.dtype, device=t.device) * 2 - 1
        return t + t * (size * u)

    env: dict[str, Any] = {}
    for node in graph:
        if node.is_leaf:
            start = torch.tensor(np.asarray(graph.leaf_values[node.name], dtype=float), dtype=dtype, device=device)
            env[node.name] = jitter(start, noise).detach().requires_grad_(True)
    n = graph.n_samples or 1

    def sample_sum(x: Any) -> Any:
        # A stage that does not depend on the data is the same in every sample: n times it.
        # A sum over n samples rounds about log2(n) times: its terms get that much noise.
        return jitter(x, per_sum).sum() if x.dim() else x * n

    functions = {**_torch_namespace(), "SampleSum": sample_sum, "SampleMean": lambda x: sample_sum(x) / n}
    interpret = _Interpreter(torch, functions, env, dtype, device, lambda t: jitter(t, noise), pins)
    for node in graph.stages:
        value = interpret(node.expr)
        if any(value is t for t in env.values()):
            value = value.clone()  # an identity stage (out = in) needs a tensor of its own
        if value.requires_grad:
            value.retain_grad()
        else:
            value = value.detach().requires_grad_(True)  # a constant stage still has an adjoint
        env[node.name] = value
    if noise:
        for name, tensor in env.items():
            size = per_sum if graph.nodes[name].per_sample else noise
            tensor.register_hook(lambda g, size=size: jitter(g, size))
    loss = env[graph.loss]  # a data problem's loss is its reduction node: one number
    if loss.requires_grad:
        loss.backward()
    values = {n: _numpy(t) for n, t in env.items()}
    grads = {n: (_numpy(t.grad) if t.grad is not None else np.zeros_like(values[n])) for n, t in env.items()}
    return values, grads


def rounding_spread(graph: Graph, device: str, unit: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """How far rounding with unit roundoff ``unit`` can move each value and each gradient.

    The float64 run is repeated :data:`ROUNDING_RUNS` times with random relative
    perturbations of size ``unit`` on every operation (see
    :func:`torch_values_and_grads`); the largest distance from the unperturbed
    run, per node and per sample, estimates the rounding error that a run in that
    precision makes.  Well-conditioned quantities move by a few units in the last
    place; 1 − σ(z) at z = 12 moves by 10⁵ of them, and so may the answer.  A
    quantity that stops being finite under the perturbation gets an infinite
    spread: that precision cannot compute it at all.  Branches of relu, abs, max
    and min are kept as in the unperturbed run (see ``_Interpreter._pinned``).
    """
    torch = import_torch()

    pins = _Pins()
    values, grads = torch_values_and_grads(graph, device, torch.float64, pins=pins)
    pins.recording = False
    spread_v = {n: np.zeros_like(v) for n, v in values.items()}
    spread_g = {n: np.zeros_like(g) for n, g in grads.items()}
    for run in range(ROUNDING_RUNS):
        pins.next = 0
        v, g = torch_values_and_grads(graph, device, torch.float64, noise=unit, seed=run + 1, pins=pins)
        widen(spread_v, v, values)
        widen(spread_g, g, grads)
    return spread_v, spread_g


def widen(spread: dict[str, Any], now: Mapping[str, Any], ref: Mapping[str, Any]) -> None:
    """Each quantity's spread grown to its distance from the unperturbed run in this perturbed one.

    A quantity that stops being finite under the perturbation gets an infinite spread;
    where the reference itself is not finite there is nothing to widen (judged as is).
    """
    for n in spread:
        with np.errstate(all="ignore"):
            gap = np.abs(now[n] - ref[n])
            gap = np.where(np.isfinite(gap) | (now[n] == ref[n]), gap, np.inf)
            gap = np.where(np.isfinite(ref[n]), np.nan_to_num(gap, nan=np.inf), 0.0)
        spread[n] = np.maximum(spread[n], gap)


def _numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.detach().to("cpu").double().numpy(), dtype=float)


class _Interpreter:
    """Evaluates a SymPy expression tree with torch operations, node by node."""

    def __init__(self, torch: Any, functions: Mapping[str, Callable[..., Any]], env: Mapping[str, Any],
                 dtype: Any, device: str, rounded: Callable[[Any], Any] = lambda t: t,
                 pins: _Pins | None = None) -> None:
        self.torch = torch
        self.functions = functions
        self.env = env
        self.dtype = dtype
        self.device = device
        self.rounded = rounded  # applied to every operation's result (rounding noise; identity normally)
        self.pins = pins

    def constant(self, value: float) -> Any:
        return self.torch.tensor(value, dtype=self.dtype, device=self.device)

    def __call__(self, expr: sp.Expr) -> Any:
        if expr.is_Symbol or expr.is_Number or expr in (sp.pi, sp.E):
            return self._evaluate(expr)
        return self.rounded(self._evaluate(expr))

    def _evaluate(self, expr: sp.Expr) -> Any:
        if expr.is_Symbol:
            return self.env[expr.name]
        if expr.is_Number or expr in (sp.pi, sp.E):
            return self.constant(float(expr))
        if expr.is_Add:
            return reduce(lambda a, b: self.rounded(a + b), map(self, expr.args))
        if expr.is_Mul:
            return reduce(lambda a, b: self.rounded(a * b), map(self, expr.args))
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
            function = self.functions[name]
            if self.pins is not None and name in PINNED:
                function = self._pinned(name, function)
            if name in ("Max", "Min") and len(args) > 2:
                return reduce(function, args)
            return function(*args)
        raise ExplainError(str(expr), message("verify_cannot_run", kind=type(expr).__name__))

    def _pinned(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` with its branch (the side of a kink, or a tie) fixed to the reference run's.

        A rounding-sized perturbation must not move a relu exactly at 0 to its
        other side: that would measure the kink, not rounding, and would excuse
        any wrong derivative there.  The reference run records each branch; the
        perturbed runs replay it as a linear function with the same derivative.
        """
        torch, pins = self.torch, self.pins
        assert pins is not None

        def selector(*args: Any) -> Any:
            a = args[0]
            if name in ("relu", "leaky_relu"):
                return (a > 0).to(a.dtype)
            if name == "Abs":
                return torch.sign(a)
            b = torch.as_tensor(args[1], dtype=a.dtype, device=a.device)
            first = (a > b) if name == "Max" else (a < b)
            return torch.where(first, 1.0, torch.where(a == b, 0.5, 0.0)).to(a.dtype)

        def apply(*args: Any) -> Any:
            if pins.recording:
                pins.items.append(selector(*args).detach())
                return function(*args)
            sel = pins.items[pins.next]
            pins.next += 1
            a = args[0]
            if name == "relu" or name == "Abs":
                return a * sel
            if name == "leaky_relu":
                return torch.where(sel > 0, a, args[1] * a)
            return sel * a + (1 - sel) * args[1]

        return apply


#: Functions with a kink or a tie, whose branch the rounding runs keep fixed.
PINNED = tuple(op.name for op in OPS.values() if op.kink)


@dataclass
class _Pins:
    """The branches taken by the non-smooth functions of a reference run, in evaluation order."""

    recording: bool = True
    items: list[Any] = field(default_factory=list)
    next: int = 0


# -- comparison ---------------------------------------------------------------
def _rows(derivation: Derivation, values: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray],
          spread: tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]], tol: float) -> list[Row]:
    graph = derivation.graph
    loss = graph.loss
    spread_v, spread_g = spread
    rows = [_compare(n.name, n.name, "value", derivation.value(n.name), values[n.name], spread_v[n.name], tol)
            for n in graph.stages]
    parameters = set(graph.parameters)
    for name in graph.backward_order:
        if name not in parameters:
            rows.append(_compare(f"d{loss}/d{name}", name, "adjoint", derivation.grad(name), grads[name],
                                 spread_g[name], tol))
    for name, gradient in derivation.gradients.items():
        rows.append(_compare(f"d{loss}/d{name}", name, "gradient", gradient.value, grads[name], spread_g[name],
                             tol))
    return rows


def _compare(quantity: str, node: str, kind: str, symbolic: Any, torch_value: Any, spread: Any, tol: float) -> Row:
    """One row; for per-sample quantities the sample that comes closest to failing (or fails worst)."""
    sym = np.asarray(symbolic, dtype=float)
    tor = np.asarray(torch_value, dtype=float)
    sym, tor, spread = np.broadcast_arrays(sym, tor, np.asarray(spread, dtype=float))
    with np.errstate(all="ignore"):
        diff = np.abs(sym - tor)
        same = (sym == tor) | (np.isnan(sym) & np.isnan(tor))
        diff = np.where(same, 0.0, np.where(np.isfinite(diff), diff, np.inf))
        scale = np.maximum(1.0, np.where(np.isfinite(sym), np.abs(sym), 1.0))
        scaled = diff / scale
        allowed = np.maximum(tol, SAFETY * spread / scale)
        ratio = np.where(scaled == 0, 0.0, scaled / allowed)
    if scaled.ndim == 0:
        return Row(quantity, node, kind, float(sym), float(tor), float(diff), float(scaled), tolerance=float(allowed))
    i = int(np.argmax(np.nan_to_num(ratio, nan=np.inf)))
    return Row(quantity, node, kind, float(sym[i]), float(tor[i]), float(diff[i]), float(scaled[i]), sample=i,
               tolerance=float(allowed[i]))


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


def finite_difference_check(derivation: Derivation, limit: int | None = None) -> list[FiniteDifference]:
    """Each parameter's float64 gradient against a central difference of the loss taken in high precision.

    The loss is evaluated with mpmath at :data:`~explain.highprecision.DIGITS`
    digits, so the difference quotient's own error is negligible; the step
    ``h = 1e-20·|p|`` (``1e-20`` at ``p = 0``) stays inside the function's domain
    however close ``p`` is to a boundary of ``log`` or ``sqrt``.  The allowed error
    is an error estimate, not a constant: the float64 rounding of the derivation
    itself (its own formulas re-evaluated in high precision), plus the difference
    between the steps ``h`` and ``2h`` (the quotient's truncation error), plus four
    units in the last place.  A parameter at a kink (the one-sided differences
    disagree) is reported with the convention used and is not a failure, as long
    as the symbolic value lies between the one-sided derivatives.  Kinks are
    looked for only where the Graph uses relu, leaky_relu, abs, max or min.

    Large problems check an evenly spaced subset of the parameters (see
    :func:`fd_subset`); ``limit`` overrides how many.
    """
    graph = derivation.graph
    try:
        hp = HighPrecision(graph)
    except Unsupported as exc:
        return [FiniteDifference(p, float(derivation.gradients[p].value), math.nan, 0.0, math.nan, math.nan,
                                 math.nan, "skipped", str(exc)) for p in graph.parameters]
    base = hp.run(hp.leaves())
    exact = hp.gradients(base, derivation.evaluation.locals)
    chosen = fd_subset(graph, hp, limit)
    kinks = has_kinks(graph)
    return [_difference(derivation, hp, base, exact[p], p, kinks) for p in chosen]


def has_kinks(graph: Graph) -> bool:
    """Whether some stage uses relu, leaky_relu, abs, max or min (only then are kinks looked for)."""
    return any(type(e).__name__ in PINNED for n in graph.stages for e in sp.preorder_traversal(n.expr))


def fd_subset(graph: Graph, hp: HighPrecision | None = None, limit: int | None = None) -> list[str]:
    """The parameters the finite-difference check covers: all, or an evenly spaced subset.

    The cost of one parameter is four high-precision passes (eight when kinks
    are looked for) over the nodes it
    influences, per sample, each node costing about one operation per input;
    the subset keeps the total within :data:`FD_BUDGET` operations (at least
    :data:`FD_MINIMUM` parameters).  Autograd still checks every parameter.
    """
    parameters = graph.parameters
    if limit is None:
        hp = hp or HighPrecision(graph)
        size = [len(graph.nodes[n].inputs) + 1 for n in hp.names]
        passes = 8 if has_kinks(graph) else 4
        cost = sum(passes * hp.n * sum(size[i] for i in hp.downstream(p)) for p in parameters)
        if cost <= FD_BUDGET:
            return parameters
        average = cost / len(parameters)
        limit = max(FD_MINIMUM, int(FD_BUDGET / average))
    if limit >= len(parameters):
        return parameters
    picks = sorted({round(i * (len(parameters) - 1) / max(1, limit - 1)) for i in range(limit)})
    return [parameters[i] for i in picks]


def _difference(derivation: Derivation, hp: HighPrecision, base: list[Any], exact: Any, name: str,
                kinks: bool) -> FiniteDifference:
    symbolic = float(derivation.gradients[name].value)
    slot = hp.names.index(name)
    centre = base[slot]
    redo = hp.downstream(name)

    def loss(step: Any) -> Any:
        values = list(base)
        with mpmath.workdps(hp.digits):
            values[slot] = centre + step
        return hp.reduced_loss(hp.run(values, redo))

    with mpmath.workdps(hp.digits):
        h = FD_RELATIVE_STEP * (abs(centre) if centre != 0 else mpmath.mpf(1))
        for _ in range(3):  # shrink the step until both sides lie inside the domain
            points = [loss(s) for s in (h, -h, 2 * h, -2 * h)]
            if all(is_finite_real(v) for v in points):
                break
            h = h * mpmath.mpf(10) ** -10
        else:
            return FiniteDifference(name, symbolic, math.nan, float(h), math.nan, math.nan, math.nan, "skipped",
                                    "domain")
        up, down, up2, down2 = points
        estimate = (up - down) / (2 * h)
        estimate2 = (up2 - down2) / (4 * h)
        truncation = abs(estimate - estimate2)
        rounding = 2 * abs(mpmath.mpf(symbolic) - exact) if is_finite_real(exact) else mpmath.inf
    value = float(estimate)
    scale = max(1.0, abs(symbolic)) if math.isfinite(symbolic) else 1.0
    abs_error = abs(value - symbolic) if math.isfinite(value - symbolic) else math.inf
    ulp = 4 * EPS64 * max(abs(symbolic), abs(value))
    allowed = (float(rounding) + float(truncation) + ulp) / scale
    fd = FiniteDifference(name, symbolic, value, float(h), abs_error, abs_error / scale, allowed,
                          exact=float(exact) if is_finite_real(exact) else math.nan)
    if not kinks:
        return fd
    one_sided = _kink(hp, base, centre, loss)
    if one_sided is None:
        return fd
    left, right = one_sided
    low, high = min(left, right), max(left, right)
    slack = allowed * scale
    if low - slack <= symbolic <= high + slack:
        return dataclasses.replace(fd, status="kink", left=left, right=right)
    return dataclasses.replace(fd, left=left, right=right)


def _kink(hp: HighPrecision, base: list[Any], centre: Any, loss: Callable[[Any], Any]) -> tuple[float, float] | None:
    """The one-sided derivatives (left, right) when the loss has a kink at the parameter, else None.

    Smooth, the gap between one-sided differences shrinks with the step (it is
    about h·L''); at a kink it does not.  So a kink is a gap that stays when the
    step is cut by 1000.
    """
    with mpmath.workdps(hp.digits):
        middle = hp.reduced_loss(base)
        size = abs(centre) if centre != 0 else mpmath.mpf(1)
        gaps = []
        for relative in (KINK_STEP, KINK_STEP / 1000):
            h = relative * size
            up, down = loss(h), loss(-h)
            if not (is_finite_real(up) and is_finite_real(down) and is_finite_real(middle)):
                return None
            right, left = (up - middle) / h, (middle - down) / h
            gaps.append((abs(right - left), left, right))
        (wide, _, _), (narrow, left, right) = gaps
        noise = mpmath.mpf(10) ** (8 - hp.digits) * max(abs(middle), 1) / (KINK_STEP / 1000 * size)
        if narrow > 0.5 * wide and narrow > noise:
            return float(left), float(right)
    return None


def message_in(m: Any, key: str, **fields: Any) -> str:
    """A message from catalog ``m`` (a Messages object), or in English when ``m`` is None."""
    return m(key, **fields) if m is not None else message(key, **fields)


def _sort_key(error: float) -> float:
    return math.inf if math.isnan(error) else error


def _json_float(value: float) -> float | None:
    """JSON has no inf or nan: they are written as null."""
    return float(value) if math.isfinite(value) else None
