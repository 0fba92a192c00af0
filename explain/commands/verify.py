"""``explain verify``: the derivation checked against PyTorch autograd and finite differences.

Exit code 1 when any quantity disagrees.  The report's tables are printed by
:mod:`explain.render.verification` (its names are re-exported here for callers
of the command module).
"""

from __future__ import annotations

import argparse
import json

from ..errors import ExplainError
from ..i18n import Messages
from ..render.tables import error, markdown_table, number, rich_table, text_table, width
from ..render.verification import print_rich, render_markdown, render_text, verdict
from . import emit, use_color

TEXT_FORMATS = ("text", "markdown", "json")


def run(args: argparse.Namespace) -> int:
    """Load, derive, verify, print; 0 when everything agrees, 1 on a mismatch."""
    check_format(args.format, "verify")
    m = Messages(args.lang)
    from ..derivation import derive
    from ..problem import load
    from ..verify import verify

    problem = load(args.problem)
    derivation = derive(problem)
    result = verify(derivation, device=args.device, dtype=args.dtype, tolerance=args.tolerance)
    updates = _update_check(problem, derivation) if result.passed else None
    matrix = _matrix_check(problem, args)
    if args.format == "json":
        payload = result.to_dict()
        if updates is not None:
            payload["optimizer_check"] = updates.to_dict()
        if matrix is not None:
            payload["matrix_form"] = matrix.to_dict()
        emit(json.dumps(payload, indent=2, ensure_ascii=False), args.output)
    elif args.format == "markdown":
        tail = "" if matrix is None else f"\n\n**{m('verify_matrix_heading')}**\n\n" + render_markdown(
            matrix, m, args.precision)
        emit(render_markdown(result, m, args.precision) + _update_line(updates, m) + tail, args.output)
    elif use_color() and not args.output:
        print_rich(result, m, args.precision)
        if updates is not None:
            print(updates.message(m))
        if matrix is not None:
            print(f"\n{m('verify_matrix_heading')}")
            print_rich(matrix, m, args.precision)
    else:
        tail = "" if matrix is None else f"\n\n{m('verify_matrix_heading')}\n" + render_text(
            matrix, m, args.precision)
        emit(render_text(result, m, args.precision) + _update_line(updates, m) + tail, args.output)
    passed = result.passed and (updates is None or updates.passed) and (matrix is None or matrix.passed)
    return 0 if passed else 1


def _matrix_check(problem: Any, args: argparse.Namespace) -> Any:
    """A problem with vectors or matrices: its matrix-form derivation, checked per tensor node too."""
    from ..tensorgraph import derive_matrix, matrix_program

    program = matrix_program(problem)
    if program is None:
        return None
    from ..tensorverify import verify_matrix

    return verify_matrix(derive_matrix(program), device=args.device, dtype=args.dtype, tolerance=args.tolerance)


def _update_check(problem: Any, derivation: Any) -> Any:
    """A [train] update rule other than plain: its run, step by step against torch.optim (explain.optim_torch).

    Plain gradient descent (w − η·g) has nothing beyond the gradients to check, so
    verify does not train for it.
    """
    if problem.train is None or problem.train.update.update == "plain":
        return None
    from ..optim_torch import check
    from ..train import train

    return check(train(problem, program=derivation.program, explain_steps=()))


def _update_line(updates: Any, m: Messages) -> str:
    return "" if updates is None else "\n\n" + updates.message(m)


def check_format(fmt: str, command: str) -> None:
    """Verification and training reports are tables: no LaTeX or Typst of their own."""
    if fmt not in TEXT_FORMATS:
        raise ExplainError("--format", Messages("en")("verify_format_use_solve", format=fmt, command=command))


__all__ = ["run", "check_format", "number", "error", "width", "text_table", "markdown_table", "rich_table",
           "verdict", "render_text", "render_markdown", "print_rich"]
