"""The verification report (autograd and finite differences) as text, Markdown or rich tables."""

from __future__ import annotations

from typing import Any

from ..i18n import Messages
from .tables import error, markdown_table, number, rich_table, text_table


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


def _fd_heading(m: Messages, v: Any = None) -> str:
    from ..highprecision import DIGITS

    if getattr(v, "fd_method", "") == "float64":  # the tensor view's differences of entries
        return m("verify_fd_heading_float64")
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
        parts += ["", _fd_heading(m, v), "",
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
        parts += ["", f"**{_fd_heading(m, v)}**", "",
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
        console.print(rich_table(_fd_heading(m, v), fd_heads,
                                 [_fd_cells(f, precision, m) for f in v.finite_differences],
                                 [not f.passed for f in v.finite_differences]))
    for line in _summary(v, m, precision):
        console.print(line, style=style, highlight=False, markup=False)
