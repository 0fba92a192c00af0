"""The operations a problem may use: one row per operation in :data:`OPS`.

A row holds everything explain knows about a function (like tinygrad's one table
of gradient rules, or micrograd's op written beside its derivative): its SymPy
class, its local derivative, its NumPy, PyTorch and mpmath implementations, the
name users write, and how it is printed in text (and the graph), LaTeX and Typst.
Every other module reads the table: the compiler's namespaces, the verifier, the
high-precision evaluator, the parser's numbers and the math printers.

The activations explain adds to SymPy take their ``fdiff`` from their row, so that
differentiating a node's expression gives the textbook rule (``σ'(z) = σ(z)(1 − σ(z))``)
and not an unreadable expansion.  A row has room for a vector-Jacobian rule
(``vjp``) for when a node's value is a tensor (issue 12).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from .interrupts import import_torch


class _Numeric(sp.Function):
    """A function SymPy can evaluate at numbers, through its closed form.

    Without it ``relu(0.3)`` is not "comparable", so ``max(w, relu(0.3))`` is refused
    and ``float(softplus(0.0))`` fails.
    """

    def closed_form(self) -> sp.Expr:
        raise NotImplementedError

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        if not all(a.is_number for a in self.args):
            return None
        return self.closed_form()._eval_evalf(prec)


class sigmoid(_Numeric):  # noqa: N801 - named as users write it
    """The logistic function σ(z) = 1 / (1 + e^(−z))."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return _local(self, argindex)

    def _eval_rewrite_as_exp(self, z: sp.Expr, **kwargs: Any) -> sp.Expr:
        return 1 / (1 + sp.exp(-z))

    def closed_form(self) -> sp.Expr:
        return 1 / (1 + sp.exp(-self.args[0]))

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


class step(_Numeric):  # noqa: N801
    """The unit step used as the derivative of ReLU: 1 for z > 0, else 0."""

    nargs = 1

    def closed_form(self) -> sp.Expr:
        return sp.Piecewise((1, self.args[0] > 0), (0, True))

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return _local(self, argindex)

    def _eval_is_real(self) -> bool | None:
        return True


class relu(_Numeric):  # noqa: N801
    """max(0, z); its derivative is :class:`step` (0 at z = 0, as in PyTorch)."""

    nargs = 1

    def closed_form(self) -> sp.Expr:
        return sp.Max(0, self.args[0])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return _local(self, argindex)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


class leaky_step(_Numeric):  # noqa: N801
    """The derivative of leaky ReLU: 1 for z > 0, else the slope a."""

    nargs = 2

    def closed_form(self) -> sp.Expr:
        return sp.Piecewise((1, self.args[0] > 0), (self.args[1], True))

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return _local(self, argindex)

    def _eval_is_real(self) -> bool | None:
        return True


class leaky_relu(_Numeric):  # noqa: N801
    """z for z > 0, a·z otherwise."""

    nargs = 2

    def closed_form(self) -> sp.Expr:
        return sp.Piecewise((self.args[0], self.args[0] > 0), (self.args[1] * self.args[0], True))

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return _local(self, argindex)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


class softplus(_Numeric):  # noqa: N801
    """log(1 + e^z); its derivative is σ(z)."""

    nargs = 1

    def closed_form(self) -> sp.Expr:
        return sp.log(1 + sp.exp(self.args[0]))

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return _local(self, argindex)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


def _local(f: sp.Function, argindex: int) -> sp.Expr:
    """∂f/∂(argument ``argindex``), from the operation's row of :data:`OPS`."""
    rule = OPS[type(f).__name__].derivative
    assert rule is not None
    return rule(*f.args)[argindex - 1]


class SampleSum(sp.Function):
    """Σᵢ s_i: the sum of a per-sample stage over the samples (``sum(s)`` in ``[cost]``).

    Its local derivative with respect to each s_i is 1 (see :func:`reduction_local`);
    SymPy never differentiates it, so it has no ``fdiff``.
    """

    nargs = 1

    def _eval_is_real(self) -> bool | None:
        return True


class SampleMean(sp.Function):
    """(1/n) Σᵢ s_i: the mean of a per-sample stage (``mean(s)`` in ``[cost]``)."""

    nargs = 1

    def _eval_is_real(self) -> bool | None:
        return True


#: The number of samples n, as it appears in the local derivative 1/n of a mean.
#: Its assumptions make it a symbol of its own, distinct from a user's ``n``;
#: compiled code reads it from the batch being evaluated, so a minibatch's mean
#: divides by the batch size.
SAMPLE_COUNT = sp.Symbol("n", positive=True, integer=True)

#: How each reduction is written in a problem file.
REDUCTIONS: dict[str, type[sp.Function]] = {"sum": SampleSum, "mean": SampleMean}


def reduction_kind(expr: sp.Expr | None) -> str | None:
    """``"sum"`` or ``"mean"`` when ``expr`` is a reduction over samples, else None."""
    for kind, cls in REDUCTIONS.items():
        if isinstance(expr, cls):
            return kind
    return None


def reduction_local(kind: str) -> sp.Expr:
    """∂(reduction)/∂s_i: 1 for a sum, 1/n for a mean."""
    return sp.S.One if kind == "sum" else 1 / SAMPLE_COUNT


#: Named constants.  Only lower-case ``e`` is Euler's number: ``E`` is a name
#: students use for the error.
CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "e": sp.E}


def _np_sigmoid(z: Any) -> Any:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def _np_step(z: Any) -> Any:
    return np.where(np.asarray(z) > 0, 1.0, 0.0)


def _np_relu(z: Any) -> Any:
    return np.maximum(z, 0.0)


def _np_leaky_relu(z: Any, a: Any) -> Any:
    return np.where(np.asarray(z) > 0, z, a * np.asarray(z))


def _np_leaky_step(z: Any, a: Any) -> Any:
    return np.where(np.asarray(z) > 0, 1.0, a * np.ones_like(np.asarray(z, dtype=float)))


def _np_softplus(z: Any) -> Any:
    return np.logaddexp(0.0, z)


def _np_log_sigmoid(z: Any) -> Any:
    # log σ(z) = −log(1 + e^(−z)): finite wherever z is (log(sigmoid(-800)) is −800, not log(0)).
    return -np.logaddexp(0.0, -np.asarray(z, dtype=float))


def stable_form(expr: sp.Expr) -> tuple[str, sp.Expr] | None:
    """``(name, z)`` when ``expr`` is computed as ``name(z)`` by a numerically stable function.

    ``log(sigmoid(z))`` is ``log_sigmoid(z)`` and ``log(1 − sigmoid(z))`` is
    ``log_sigmoid(−z)``: computed as written, σ(z) underflows to 0 for z below
    about −745 and the log gives −inf where the true value is about z.
    (``softplus`` is already computed stably.)
    """
    if not isinstance(expr, sp.log):
        return None
    inner = expr.args[0]
    if isinstance(inner, sigmoid):
        return "log_sigmoid", inner.args[0]
    if inner.is_Add and len(inner.args) == 2 and sp.S.One in inner.args:
        rest = inner.args[0] if inner.args[1] == 1 else inner.args[1]
        if rest.is_Mul and len(rest.args) == 2 and sp.S.NegativeOne in rest.args:
            other = rest.args[0] if rest.args[1] == -1 else rest.args[1]
            if isinstance(other, sigmoid):
                return "log_sigmoid", -other.args[0]
    return None


# -- mpmath versions, for high-precision finite differences (same values at kinks as NumPy's) --
def _mp_relu(z: Any) -> Any:
    return z if z > 0 else mpmath.mpf(0)


def _mp_leaky_relu(z: Any, a: Any) -> Any:
    return z if z > 0 else a * z


def _mp_step(z: Any) -> Any:
    return mpmath.mpf(1) if z > 0 else mpmath.mpf(0)


def _mp_leaky_step(z: Any, a: Any) -> Any:
    return mpmath.mpf(1) if z > 0 else a


def _mp_heaviside(z: Any, at_zero: Any = mpmath.mpf(0.5)) -> Any:
    return mpmath.mpf(1) if z > 0 else (mpmath.mpf(0) if z < 0 else at_zero)


def _mp_sign(z: Any) -> Any:
    return mpmath.mpf(mpmath.sign(z))


def _mp_max(*args: Any) -> Any:
    return max(args)


def _mp_min(*args: Any) -> Any:
    return min(args)


# -- torch versions: each a function of the torch module, so that torch loads only when used --
def _t_pair(torch: Any, f: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(a: Any, b: Any) -> Any:
        like = a if isinstance(a, torch.Tensor) else b
        return f(torch.as_tensor(a, dtype=like.dtype, device=like.device),
                 torch.as_tensor(b, dtype=like.dtype, device=like.device))
    return apply


def _t_leaky_relu(torch: Any) -> Callable[..., Any]:
    return lambda z, a: torch.where(z > 0, z, a * z)


def _t_leaky_step(torch: Any) -> Callable[..., Any]:
    return lambda z, a: torch.where(z > 0, torch.ones_like(z), a * torch.ones_like(z))


def _t_heaviside(torch: Any) -> Callable[..., Any]:
    return lambda z, at_zero=0.5: torch.heaviside(z, torch.full_like(z, float(at_zero)))


@dataclass(frozen=True)
class Op:
    """One operation, everything explain knows about it.

    ``name`` is SymPy's name for it (``type(expr).__name__``) and the key of every
    namespace built from the table.  ``derivative(*args)`` gives ∂/∂ each argument;
    for explain's own functions it *is* their ``fdiff``; for SymPy's it states the
    textbook rule SymPy applies (a test holds the two equal), or is None where
    SymPy's rule is piecewise (abs, max, min, sign, the step H).  The display names
    are None where the printer's own spelling is right.  ``vjp`` is empty for now:
    when a node holds a tensor (issue 12) it takes the cotangent of the output and
    the arguments and gives each argument's cotangent.
    """

    name: str
    sympy: Any                                     # the SymPy class (None: a numeric form only)
    nargs: int
    numpy: Callable[..., Any]
    torch: Callable[[Any], Callable[..., Any]]     # torch module -> implementation
    mpmath: Callable[..., Any] | None = None
    user: str | None = None                        # the name a problem file writes; None: explain's own
    derivative: Callable[..., tuple[sp.Expr, ...]] | None = None
    text: str | None = None                        # plain text and the graph (DOT)
    latex: str | None = None
    typst: str | None = None
    kink: bool = False                             # a kink or a tie: verification pins its branch
    vjp: Callable[..., Any] | None = None          # reserved for tensors (issue 12)

    @property
    def own(self) -> bool:
        """Defined by explain (not SymPy): NumPy needs our implementation to evaluate it."""
        return self.sympy is None or getattr(self.sympy, "__module__", "") == __name__


def _row(*ops: Op) -> dict[str, Op]:
    return {op.name: op for op in ops}


#: Every operation, one row each.  Users' functions come in the order error messages list them.
OPS: dict[str, Op] = _row(
    Op("sigmoid", sigmoid, 1, _np_sigmoid, lambda t: t.sigmoid, lambda z: 1 / (1 + mpmath.exp(-z)),
       user="sigmoid", derivative=lambda z: (sigmoid(z) * (1 - sigmoid(z)),), latex=r"\sigma", typst="sigma"),
    Op("tanh", sp.tanh, 1, np.tanh, lambda t: t.tanh, mpmath.tanh, user="tanh",
       derivative=lambda z: (1 - sp.tanh(z) ** 2,)),
    Op("relu", relu, 1, _np_relu, lambda t: t.relu, _mp_relu, user="relu", derivative=lambda z: (step(z),),
       latex=r"\operatorname{ReLU}", typst="ReLU", kink=True),
    Op("leaky_relu", leaky_relu, 2, _np_leaky_relu, _t_leaky_relu, _mp_leaky_relu, user="leaky_relu",
       derivative=lambda z, a: (leaky_step(z, a), sp.Min(z, 0)), latex=r"\operatorname{leaky\_ReLU}",
       typst="leaky_ReLU", kink=True),
    Op("softplus", softplus, 1, _np_softplus, lambda t: t.nn.functional.softplus,
       lambda z: mpmath.log1p(mpmath.exp(z)), user="softplus", derivative=lambda z: (sigmoid(z),),
       latex=r"\operatorname{softplus}"),
    Op("exp", sp.exp, 1, np.exp, lambda t: t.exp, mpmath.exp, user="exp", derivative=lambda z: (sp.exp(z),)),
    Op("log", sp.log, 1, np.log, lambda t: t.log, mpmath.log, user="log", derivative=lambda z: (1 / z,),
       typst="ln"),
    Op("sqrt", sp.sqrt, 1, np.sqrt, lambda t: t.sqrt, mpmath.sqrt, user="sqrt",
       derivative=lambda z: (1 / (2 * sp.sqrt(z)),)),
    Op("Abs", sp.Abs, 1, np.abs, lambda t: t.abs, mpmath.fabs, user="abs", text="abs", typst="abs", kink=True),
    Op("Max", sp.Max, 2, np.maximum, lambda t: _t_pair(t, t.maximum), _mp_max, user="max", text="max",
       typst="max", kink=True),
    Op("Min", sp.Min, 2, np.minimum, lambda t: _t_pair(t, t.minimum), _mp_min, user="min", text="min",
       typst="min", kink=True),
    Op("sin", sp.sin, 1, np.sin, lambda t: t.sin, mpmath.sin, user="sin", derivative=lambda z: (sp.cos(z),)),
    Op("cos", sp.cos, 1, np.cos, lambda t: t.cos, mpmath.cos, user="cos", derivative=lambda z: (-sp.sin(z),)),
    # explain's own: derivatives of the above, and a numerically stable form
    Op("step", step, 1, _np_step, lambda t: (lambda z: (z > 0).to(z.dtype)), _mp_step,
       derivative=lambda z: (sp.S.Zero,), latex=r"\operatorname{step}"),
    Op("leaky_step", leaky_step, 2, _np_leaky_step, _t_leaky_step, _mp_leaky_step,
       derivative=lambda z, a: (sp.S.Zero, 1 - step(z)), latex=r"\operatorname{leaky\_step}"),
    Op("log_sigmoid", None, 1, _np_log_sigmoid, lambda t: t.nn.functional.logsigmoid),
    # SymPy's, as they appear in derivatives: |u|' = sign(u)·u', and SymPy's own step
    Op("sign", sp.sign, 1, np.sign, lambda t: t.sign, _mp_sign, typst="sgn"),
    Op("Heaviside", sp.Heaviside, 1, lambda z, at_zero=0.5: np.heaviside(z, at_zero), _t_heaviside, _mp_heaviside,
       typst="H"),
)

#: Functions a user may call in a problem file, by the name they write, and
#: how many arguments each takes.
USER_FUNCTIONS: dict[str, tuple[Callable[..., sp.Expr], int]] = {
    op.user: (op.sympy, op.nargs) for op in OPS.values() if op.user is not None
}

#: NumPy implementations of explain's own functions, by SymPy function name (for
#: ``sympy.lambdify``, which knows SymPy's own functions already).
NUMPY_FUNCTIONS: dict[str, Callable[..., Any]] = {op.name: op.numpy for op in OPS.values() if op.own}


def numpy_functions() -> dict[str, Callable[..., Any]]:
    """NumPy implementations of every operation, by SymPy function name."""
    return {op.name: op.numpy for op in OPS.values()}


def torch_functions() -> dict[str, Callable[..., Any]]:
    """Torch implementations of every operation, by SymPy function name (imports torch)."""
    torch = import_torch()

    return {op.name: op.torch(torch) for op in OPS.values()}


def mpmath_functions() -> dict[str, Callable[..., Any]]:
    """mpmath implementations, by SymPy function name (operations without one are left out)."""
    return {op.name: op.mpmath for op in OPS.values() if op.mpmath is not None}


def display_names(fmt: str) -> dict[str, str]:
    """How each operation is spelled in ``fmt`` (text, latex or typst) where the printer's default is not right."""
    return {op.name: name for op in OPS.values() if (name := getattr(op, fmt)) is not None}
