"""``explain verify``: the derivation checked against PyTorch autograd and finite differences.

Also home of the small table helpers the verify, train and broadcast commands
share: a rich table on a colour terminal, aligned plain text otherwise, or a
Markdown table.  Exit code 1 when any quantity disagrees.
"""

from __future__ import annotations

import argparse
import json
import math
import unicodedata
from collections.abc import Sequence
from typing import Any

from ..errors import ExplainError
from ..i18n import Messages
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
    if args.format == "json":
        payload = result.to_dict()
        if updates is not None:
            payload["optimizer_check"] = updates.to_dict()
        emit(json.dumps(payload, indent=2, ensure_ascii=False), args.output)
    elif args.format == "markdown":
        emit(render_markdown(result, m, args.precision) + _update_line(updates, m), args.output)
    elif use_color() and not args.output:
        print_rich(result, m, args.precision)
        if updates is not None:
            print(updates.message(m))
    else:
        emit(render_text(result, m, args.precision) + _update_line(updates, m), args.output)
    return 0 if result.passed and (updates is None or updates.passed) else 1


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


# -- numbers and tables -------------------------------------------------------
def number(value: float | None, precision: int = 6) -> str:
    """``precision`` significant digits, keeping ``1.0`` looking like a float as Python prints it."""
    if value is None:
        return "nan"
    value = float(value)
    if not math.isfinite(value):
        return repr(value)
    text = f"{value:.{precision}g}"
    if text.lstrip("-").isdigit():
        text += ".0"
    return text


def error(value: float) -> str:
    """Errors need two digits, not twelve."""
    return "0" if value == 0 else number(value, 2)


def _numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return cell in ("—", "-")
    return True


def width(text: str) -> int:
    """Columns a string takes on a terminal: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Aligned columns for a pipe or a file: numeric columns right-aligned, text left-aligned."""
    widths = [max(width(h), *(width(r[i]) for r in rows)) if rows else width(h) for i, h in enumerate(headers)]
    right = [i > 0 and bool(rows) and all(_numeric(r[i]) for r in rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        pads = [" " * (w - width(c)) for c, w in zip(cells, widths)]
        parts = [p + c if r else c + p for c, p, r in zip(cells, pads, right)]
        return (indent + "  ".join(parts)).rstrip()

    rule = indent + "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(map(esc, headers)) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(map(esc, r)) + " |" for r in rows]
    return "\n".join(lines)


def rich_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]],
               bad: Sequence[bool] | None = None) -> Any:
    """A rich Table; rows flagged in ``bad`` are shown in red."""
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, h in enumerate(headers):
        table.add_column(h, justify="left" if i == 0 else "right")
    for i, r in enumerate(rows):
        table.add_row(*r, style="red" if bad and bad[i] else None)
    return table


# -- the verification report --------------------------------------------------
def _row_cells(row: Any, precision: int) -> list[str]:
    name = row.quantity if row.sample is None else f"{row.quantity}[{row.sample}]"
    return [name, number(row.symbolic, precision), number(row.torch, precision), error(row.abs_error), error(row.error),
            error(row.tolerance)]


def _fd_cells(fd: Any, precision: int, m: Messages) -> list[str]:
    return [fd.parameter, number(fd.symbolic, precision), number(fd.estimate, precision), error(fd.error),
            error(fd.tolerance), m(f"verify_status_{_fd_status(fd)}")]


def _fd_status(fd: Any) -> str:
    if fd.status == "checked":
        return "ok" if fd.passed else "failed"
    return str(fd.status)


def _headers(m: Messages) -> tuple[list[str], list[str]]:
    rows = [m("verify_quantity"), m("verify_symbolic"), m("verify_torch"), m("verify_abs_error"), m("verify_error"),
            m("verify_allowed")]
    fds = [m("parameter"), m("verify_symbolic"), m("verify_fd"), m("verify_error"), m("verify_fd_budget"),
           m("verify_fd_status")]
    return rows, fds


def _heading(v: Any, m: Messages) -> str:
    return m("verify_heading", engine=v.engine, device=v.device, dtype=v.dtype, tolerance=error(v.tolerance))


def _fd_heading(m: Messages) -> str:
    from ..highprecision import DIGITS

    return m("verify_fd_heading", digits=DIGITS)


def _count(v: Any) -> int:
    return len(v.rows) + len(v.finite_differences)


def verdict(v: Any, m: Messages | None = None) -> str:
    """One line that says first whether verification passed and, if not, which check failed."""
    m = m or Messages("en")
    if v.passed:
        return m("verify_verdict_passed", count=_count(v))
    checks = []
    if v.failures:
        checks.append(m("verify_check_autograd", count=len(v.failures)))
    if v.finite_difference_failures:
        checks.append(m("verify_check_fd", count=len(v.finite_difference_failures)))
    return m("verify_verdict_failed", checks="; ".join(checks))


def _notes(v: Any, m: Messages, precision: int) -> list[str]:
    """Kinks, skipped parameters, a parameter subset and widened tolerances: said, never silent."""
    from ..verify import SAFETY

    lines = [m("verify_max_error", max_error=error(v.max_error), max_abs_error=error(v.max_abs_error),
               worst=v.worst or "-", fd_error=error(v.finite_difference_max_error), safety=f"{SAFETY:g}",
               dtype=v.dtype)]
    if v.widened:
        lines.append(m("verify_rounding_widened", count=len(v.widened), dtype=v.dtype))
    if v.finite_differences and len(v.finite_differences) < v.parameter_count:
        lines.append(m("verify_fd_subset", count=len(v.finite_differences), total=v.parameter_count))
    for fd in v.kinks:
        lines.append(m("verify_fd_kink", loss=v.loss, parameter=fd.parameter, left=number(fd.left, precision),
                       right=number(fd.right, precision), symbolic=number(fd.symbolic, precision)))
    for fd in v.finite_differences:
        if fd.status == "skipped":
            reason = m("verify_fd_domain") if fd.note == "domain" else m("verify_fd_unsupported", name=fd.note)
            lines.append(m("verify_fd_skipped", parameter=fd.parameter, reason=reason))
    return lines


def _summary(v: Any, m: Messages, precision: int) -> list[str]:
    lines = _notes(v, m, precision)
    if v.passed:
        lines.append(m("verify_passed", count=_count(v)))
        return lines
    for row in v.failures:
        where = row.node if row.sample is None else f"{row.node}[{row.sample}]"
        lines.append(m("verify_mismatch", kind=m(f"verify_kind_{row.kind}"), quantity=row.quantity, node=where,
                       symbolic=number(row.symbolic, precision), torch=number(row.torch, precision),
                       error=error(row.error), tolerance=error(row.tolerance)))
    for fd in v.finite_difference_failures:
        key = "verify_fd_mismatch_alone" if v.autograd_agreed(fd.parameter) else "verify_fd_mismatch"
        lines.append(m(key, loss=v.loss, parameter=fd.parameter, symbolic=number(fd.symbolic, precision),
                       estimate=number(fd.estimate, precision), error=error(fd.error), tolerance=error(fd.tolerance)))
    if v.suspects:
        lines.append(m("verify_suspect", node=v.suspect_node, edges=", ".join(v.suspects)))
    lines.append(m("verify_failed") if v.failures else m("verify_failed_fd"))
    return lines


def render_text(v: Any, m: Messages | None = None, precision: int = 6) -> str:
    m = m or Messages("en")
    heads, fd_heads = _headers(m)
    parts = [verdict(v, m), "", _heading(v, m), "", text_table(heads, [_row_cells(r, precision) for r in v.rows])]
    if v.finite_differences:
        parts += ["", _fd_heading(m), "",
                  text_table(fd_heads, [_fd_cells(f, precision, m) for f in v.finite_differences])]
    parts += ["", *_summary(v, m, precision)]
    return "\n".join(parts)


def render_markdown(v: Any, m: Messages | None = None, precision: int = 6) -> str:
    m = m or Messages("en")
    heads, fd_heads = _headers(m)
    first = f"**{verdict(v, m)}**" if v.passed else f"> **{verdict(v, m)}**"
    parts = [first, "", f"### {_heading(v, m)}", "",
             markdown_table(heads, [_row_cells(r, precision) for r in v.rows])]
    if v.finite_differences:
        parts += ["", f"**{_fd_heading(m)}**", "",
                  markdown_table(fd_heads, [_fd_cells(f, precision, m) for f in v.finite_differences])]
    parts += ["", *(f"- {line}" for line in _summary(v, m, precision))]
    return "\n".join(parts)


def print_rich(v: Any, m: Messages, precision: int) -> None:
    from rich.console import Console

    console = Console()
    heads, fd_heads = _headers(m)
    style = "green" if v.passed else "bold red"
    console.print(verdict(v, m), style=style, highlight=False, markup=False)
    bad = [not r.passed for r in v.rows]
    console.print(rich_table(_heading(v, m), heads, [_row_cells(r, precision) for r in v.rows], bad))
    if v.finite_differences:
        console.print(rich_table(_fd_heading(m), fd_heads,
                                 [_fd_cells(f, precision, m) for f in v.finite_differences],
                                 [not f.passed for f in v.finite_differences]))
    for line in _summary(v, m, precision):
        console.print(line, style=style, highlight=False, markup=False)
