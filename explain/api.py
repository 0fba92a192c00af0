"""The library's front door: ``grad`` for one expression, ``solve`` for a problem.

Every command of the CLI is one of these calls followed by a renderer.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .derivation import Derivation, derive
from .errors import ExplainError
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

    wrt = _names(wrt)
    return derive(expression_problem(expr, wrt or None, _values(at)))


def _names(wrt: object) -> list[str]:
    """``wrt`` as a list of names; anything else is the caller's mistake, said as an ExplainError."""
    if wrt is None:
        return []
    if isinstance(wrt, str):
        return [w.strip() for w in wrt.split(",") if w.strip()]
    if not isinstance(wrt, (list, tuple)) or not all(isinstance(w, str) for w in wrt):
        raise ExplainError("wrt", f"expected names as text (\"w,b\" or [\"w\", \"b\"]), got {_short(wrt)}")
    return list(wrt)


def _values(at: object) -> dict[str, Any]:
    """``at`` as a mapping from names to real numbers or text such as ``"pi/4"``."""
    if at is None:
        return {}
    if not isinstance(at, Mapping):
        raise ExplainError("at", f"expected a mapping of names to values, such as {{'x': 1.5}}, got {_short(at)}")
    values: dict[str, Any] = {}
    for name, value in at.items():
        if not isinstance(name, str):
            raise ExplainError("at", f"names must be text, got {_short(name)}")
        where = f"at {name}"
        if isinstance(value, str):
            values[name] = value
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ExplainError(where, f"expected a real number or text such as \"pi/4\", got {_short(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise ExplainError(where, f"the number is too large for a float (about 1.8e308 at most): {_short(value)}") from None
        if not math.isfinite(number):
            raise ExplainError(where, f"must be a finite number, got {number}")
        values[name] = number
    return values


def _short(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


@dataclass
class Solution:
    """A worked solution: the derivation, and verification and training when asked for."""

    problem: Problem
    derivation: Derivation
    verification: Any | None = None
    training: Any | None = None
    #: The parts of the worked solution its documents show (None: all; see
    #: explain.render.document.SECTIONS), and whether they are the problem sheet only.
    sections: tuple[str, ...] | None = None
    handout: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of SPEC §3."""
        from .render.json import solution_dict

        return solution_dict(self)

    def _repr_markdown_(self) -> str | None:
        from .render.notebook import display

        return display(self, "markdown")


def solve(
    problem: Problem | str | Path,
    *,
    verify: bool = False,
    train: bool = True,
    device: str = "auto",
    dtype: str = "float64",
    sections: str | Sequence[str] | None = None,
    handout: bool = False,
) -> Solution:
    """Derive a problem; verify it with PyTorch if ``verify``; train it if it has ``[train]``.

    ``sections`` (``"forward,delta"`` or a list; default all: forward, local, backward,
    paths, delta, verification, training) and ``handout`` (the problem sheet without the
    solution) choose what the solution's documents show: its notebook display, its PDF,
    and the text and Markdown printers; ``to_dict()`` is always the whole solution.
    """
    from .render.document import parse_sections

    chosen = parse_sections(sections) if sections is not None else None
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
        if verification is not None:  # the update rule, step by step against torch.optim
            from .optim_torch import check

            training.optimizer_check = check(training)
    return Solution(problem, derivation, verification, training, chosen, bool(handout))
