"""Small tables for reports: aligned plain text, Markdown, or a rich table on a colour terminal.

Shared by the verification, training, grading and broadcast reports (and their
commands).  They live in the render layer so that domain objects and commands can
both use them without an import running back up (see docs/architecture.md).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from typing import Any


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


