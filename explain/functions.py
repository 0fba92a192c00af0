"""The functions a problem may use, as SymPy functions with their derivatives.

Each activation is defined the way micrograd defines an operation: its local
derivative sits right beside it (``fdiff``), so that differentiating a node's
expression gives the textbook rule (``σ'(z) = σ(z)(1 − σ(z))``) and not an
unreadable expansion.  The numeric implementations used when a Graph is compiled
live in :data:`NUMPY_FUNCTIONS` and :func:`torch_functions`, keyed by the same names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp


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
        return sigmoid(self.args[0]) * (1 - sigmoid(self.args[0]))

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
        return sp.S.Zero

    def _eval_is_real(self) -> bool | None:
        return True


class relu(_Numeric):  # noqa: N801
    """max(0, z); its derivative is :class:`step` (0 at z = 0, as in PyTorch)."""

    nargs = 1

    def closed_form(self) -> sp.Expr:
        return sp.Max(0, self.args[0])

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return step(self.args[0])

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


class leaky_step(_Numeric):  # noqa: N801
    """The derivative of leaky ReLU: 1 for z > 0, else the slope a."""

    nargs = 2

    def closed_form(self) -> sp.Expr:
        return sp.Piecewise((1, self.args[0] > 0), (self.args[1], True))

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        if argindex == 1:
            return sp.S.Zero
        return 1 - step(self.args[0])

    def _eval_is_real(self) -> bool | None:
        return True


class leaky_relu(_Numeric):  # noqa: N801
    """z for z > 0, a·z otherwise."""

    nargs = 2

    def closed_form(self) -> sp.Expr:
        return sp.Piecewise((self.args[0], self.args[0] > 0), (self.args[1] * self.args[0], True))

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        z, a = self.args
        if argindex == 1:
            return leaky_step(z, a)
        return sp.Min(z, 0)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


class softplus(_Numeric):  # noqa: N801
    """log(1 + e^z); its derivative is σ(z)."""

    nargs = 1

    def closed_form(self) -> sp.Expr:
        return sp.log(1 + sp.exp(self.args[0]))

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sigmoid(self.args[0])

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


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


#: Functions a user may call in a problem file, by the name they write, and
#: how many arguments each takes.
USER_FUNCTIONS: dict[str, tuple[Callable[..., sp.Expr], int]] = {
    "sigmoid": (sigmoid, 1),
    "tanh": (sp.tanh, 1),
    "relu": (relu, 1),
    "leaky_relu": (leaky_relu, 2),
    "softplus": (softplus, 1),
    "exp": (sp.exp, 1),
    "log": (sp.log, 1),
    "sqrt": (sp.sqrt, 1),
    "abs": (sp.Abs, 1),
    "max": (sp.Max, 2),
    "min": (sp.Min, 2),
    "sin": (sp.sin, 1),
    "cos": (sp.cos, 1),
}

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


#: NumPy implementations of the custom functions, by SymPy function name.
NUMPY_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "log_sigmoid": _np_log_sigmoid,
    "sigmoid": _np_sigmoid,
    "step": _np_step,
    "relu": _np_relu,
    "leaky_relu": _np_leaky_relu,
    "leaky_step": _np_leaky_step,
    "softplus": _np_softplus,
}


def torch_functions() -> dict[str, Callable[..., Any]]:
    """Torch implementations of the custom functions (imports torch lazily)."""
    import torch

    def leaky_relu_(z: Any, a: Any) -> Any:
        return torch.where(z > 0, z, a * z)

    def leaky_step_(z: Any, a: Any) -> Any:
        return torch.where(z > 0, torch.ones_like(z), a * torch.ones_like(z))

    return {
        "log_sigmoid": torch.nn.functional.logsigmoid,
        "sigmoid": torch.sigmoid,
        "step": lambda z: (z > 0).to(z.dtype),
        "relu": torch.relu,
        "leaky_relu": leaky_relu_,
        "leaky_step": leaky_step_,
        "softplus": torch.nn.functional.softplus,
    }
