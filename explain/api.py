"""The library's front door: ``grad`` for one expression, ``solve`` for a problem.

Every command of the CLI is one of these calls followed by a renderer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .derivation import Derivation, derive
from .problem import Problem, load


def grad(expr: str, wrt: Sequence[str] | str | None = None, at: Mapping[str, Any] | None = None) -> Derivation:
    """Step-by-step chain rule for one expression.

    The expression is cut into one node per operation, as written: operands in
    the user's order, no minus distributed (``mul1 = w·x``, ``add1 = mul1 + b``,
    ``f = sigmoid(add1)``; see :mod:`explain.stage`).  ``wrt`` names the variables
    to differentiate with respect to (default: all of them); ``at`` gives every
    variable's value (numbers, or text such as ``"pi/4"``).

    >>> d = grad("w*x + b", wrt="w,b", at={"w": 2, "x": 3, "b": 1})
    >>> d.gradients["w"].value
    3.0
    """
    from .stage import expression_problem

    if isinstance(wrt, str):
        wrt = [w.strip() for w in wrt.split(",") if w.strip()]
    return derive(expression_problem(expr, list(wrt) if wrt else None, at))


@dataclass
class Solution:
    """A worked solution: the derivation, and verification and training when asked for."""

    problem: Problem
    derivation: Derivation
    verification: Any | None = None
    training: Any | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of SPEC §3."""
        from .render.json import solution_dict

        return solution_dict(self)

    def _repr_markdown_(self) -> str:
        from .render.markdown import render_solution

        return render_solution(self)


def solve(
    problem: Problem | str | Path,
    *,
    verify: bool = False,
    train: bool = True,
    device: str = "auto",
    dtype: str = "float64",
) -> Solution:
    """Derive a problem; verify it with PyTorch if ``verify``; train it if it has ``[train]``."""
    if not isinstance(problem, Problem):
        problem = load(problem)
    derivation = derive(problem)
    verification = None
    if verify:
        from .verify import verify as run_verify

        verification = run_verify(derivation, device=device, dtype=dtype)
    training = None
    # Training would follow gradients that failed their checks: the solution says so instead.
    if verification is not None and not verification.passed:
        train = False
    if train and problem.train is not None:
        from .train import train as run_train

        training = run_train(problem, program=derivation.program)
    return Solution(problem, derivation, verification, training)
