"""Graded answers as text, Markdown, rich tables, JSON or CSV (``explain check`` and notebooks).

One report prints item by item with diagnoses; several print one row per
student, then the class summary of :mod:`explain.classreport`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from ..check import Report
from ..classreport import render_summary, summarize
from ..i18n import Messages
from ..sanitize import csv_cell, printable
from .mathprint import TextMath
from .text import wrap_prose

_COLORS = {"correct": "green", "consistent": "green", "imprecise": "yellow", "incorrect": "red",
           "unknown_key": "yellow", "unparseable": "yellow", "unreadable": "red"}


def render_json(reports: Sequence[Report]) -> str:
    """The class as JSON: ``{"students": [{student, file, items, score}], "summary": {...}}``."""
    # One student per line: json's C encoder does a line in microseconds, while indenting a class of
    # 1000 (12,000 items) goes through the pure-Python encoder and takes a second.
    students = [json.dumps({"student": r.student, "file": r.source, **r.to_dict(), "percent": round(r.percent, 2)},
                           ensure_ascii=False) for r in reports]
    summary = json.dumps(summarize(reports), indent=2, ensure_ascii=False).replace("\n", "\n  ")
    return '{\n  "students": [\n    ' + ",\n    ".join(students) + '\n  ],\n  "summary": ' + summary + "\n}"


def _score(r: Report, m: Messages) -> str:
    """``Score: 4/8 — 5.5/10 points (55%)``."""
    score = r.score
    return m("check_score", correct=score["correct"], total=score["total"]) + " — " + _points(r, m)


def _points(r: Report, m: Messages) -> str:
    score = r.score
    return m("check_points", points=score["points"], max_points=score["max_points"], percent=f"{r.percent:.0f}")


def _number(value: Any, precision: int) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    tm = TextMath(precision=precision)
    if isinstance(value, (list, tuple)) or hasattr(value, "__len__"):
        # A matrix prints row by row: [[a, b], [c, d]].
        return "[" + ", ".join(_number(v, precision) if hasattr(v, "__len__") else tm.number(v) for v in value) + "]"
    return tm.number(value)


def _wrong_entries(item: Any, precision: int, m: Messages) -> list[tuple[str, str, str, str]]:
    """The entries of a vector or matrix answer that are not right: (entry, given, expected, verdict)."""
    if item.verdict == "correct":
        return []
    tm = TextMath(precision=precision)
    return [(e.key, e.written if e.written is not None else tm.number(e.given), tm.number(e.expected),
             m(f"check_verdict_{e.verdict}")) for e in item.entries if e.verdict != "correct"]


def _entries_text(item: Any, precision: int, m: Messages) -> str:
    """The wrong entries in one line (Markdown and rich cells): ``W1[0,1] 0.5 (0.0008771: incorrect)``."""
    return "; ".join(f"{key} {given} ({m('check_col_expected')} {expected}: {verdict})"
                     for key, given, expected, verdict in _wrong_entries(item, precision, m))


def _given(item: Any) -> str:
    """The value as the student wrote it."""
    return "" if item.verdict == "unreadable" else item.shown


def _explanation(item: Any, m: Messages) -> str:
    parts = []
    if item.diagnosis:
        parts.append(f"[{item.diagnosis.code}] {item.diagnosis.message} "
                     f"({m('check_look_at', step=item.diagnosis.suggested_step)})")
    if item.note:
        parts.append(item.note)
    return " ".join(parts)


def _summary_rows(reports: Sequence[Report], m: Messages) -> list[tuple[str, str, str]]:
    rows = []
    for r in reports:
        if any(i.verdict == "unreadable" for i in r.items):
            line = next(i.line for i in r.items)
            rows.append((r.student, m("check_verdict_unreadable"),
                         (f"line {line}: " if line is not None else "") + (r.items[0].note or "")))
            continue
        wrong = [f"{i.key} ({i.diagnosis.code})" if i.diagnosis else
                 (i.key if i.verdict == "incorrect" else f"{i.key} ({i.verdict})")
                 for i in r.items if i.verdict != "correct"]
        score = r.score
        rows.append((r.student, f"{score['correct']}/{score['total']}, {_points(r, m)}", ", ".join(wrong)))
    return rows


def render_text(reports: Sequence[Report], precision: int = 6, lang: str = "en", color: bool = False) -> str:
    """Plain text, or a rich table when ``color``."""
    m = Messages(lang)
    if len(reports) == 1:
        r = reports[0]
        header = [m("check_col_key"), m("check_col_given"), m("check_col_expected"), m("check_col_verdict")]
        rows = [[i.key, _given(i), _number(i.expected, precision), m(f"check_verdict_{i.verdict}"),
                 _explanation(i, m)] for i in r.items]
        title = m("check_title", source=r.source)
        footer = _score(r, m)
        if color:
            cells = [[*row[:4], " ".join(x for x in (row[4], _entries_text(i, precision, m)) if x)]
                     for row, i in zip(rows, r.items)]
            return _rich_table(title, [*header, m("check_col_diagnosis")], cells, footer,
                               [i.verdict for i in r.items])
        lines = [title, ""]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *(row[:4] for row in rows))]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        for row, item in zip(rows, r.items):
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(row[:4], widths)).rstrip())
            if row[4]:
                lines += wrap_prose(row[4], "    → ", "      ")
            wrong = _wrong_entries(item, precision, m)
            if wrong:  # a vector or matrix answer: its wrong entries, one per line, aligned
                entry_widths = [max(len(x[k]) for x in wrong) for k in range(3)]
                lines += ["    " + "  ".join(c.ljust(w) for c, w in zip(x, [*entry_widths, 0])).rstrip()
                          for x in wrong]
        return "\n".join([*lines, "", footer])
    header = [m("check_col_student"), m("check_col_score"), m("check_col_wrong")]
    rows = [list(r) for r in _summary_rows(reports, m)]
    total = m("check_class_total", students=len(reports), passed=sum(r.passed for r in reports))
    summary = render_summary(summarize(reports), lang)
    if color:
        return _rich_table(m("check_class_title"), header, rows, total,
                           ["correct" if r.passed else "incorrect" for r in reports]) + "\n" + summary
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    lines = [m("check_class_title"), "", "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join([*lines, "", total, "", summary]).rstrip()


def _rich_table(title: str, header: list[str], rows: list[list[str]], footer: str, verdicts: list[str]) -> str:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(printable(title)), caption=Text(printable(footer)))
    for h in header:
        table.add_column(h)
    for row, verdict in zip(rows, verdicts):
        # Text, not markup: a key such as "[red]x" or an ESC from an answers file is shown as written.
        table.add_row(*(Text(printable(str(c))) for c in row), style=_COLORS.get(verdict))
    console = Console(file=io.StringIO(), force_terminal=True, width=max(100, Console().width))
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined, no-any-return]


def render_markdown(reports: Sequence[Report], precision: int = 6, lang: str = "en") -> str:
    """A Markdown table: item by item for one report, one row per student for several."""
    m = Messages(lang)

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    if len(reports) == 1:
        r = reports[0]
        head = [m("check_col_key"), m("check_col_given"), m("check_col_expected"), m("check_col_verdict"),
                m("check_col_diagnosis")]
        lines = [f"### {cell(m('check_title', source=r.source))}", "", "| " + " | ".join(head) + " |",
                 "|" + "---|" * len(head)]
        for i in r.items:
            row = [f"`{i.key}`", _given(i), _number(i.expected, precision), m(f"check_verdict_{i.verdict}"),
                   " ".join(x for x in (_explanation(i, m), _entries_text(i, precision, m)) if x)]
            lines.append("| " + " | ".join(cell(c) for c in row) + " |")
        return "\n".join([*lines, "", f"**{_score(r, m)}**"])
    head = [m("check_col_student"), m("check_col_score"), m("check_col_wrong")]
    lines = [f"### {m('check_class_title')}", "", "| " + " | ".join(head) + " |", "|---|---|---|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in _summary_rows(reports, m)]
    return "\n".join([*lines, "", render_summary(summarize(reports), lang, markdown=True)]).rstrip()


def render_csv(reports: Sequence[Report]) -> str:
    """One row per student and item (``--report``).

    Every cell goes through :func:`~explain.sanitize.csv_cell`: text that a
    spreadsheet would run as a formula (``=HYPERLINK(…)``, ``-x*w``) gets a
    leading single quote; numbers such as ``-0.25`` stay numbers.  Rows end
    with CRLF, as RFC 4180 says.
    """
    out = io.StringIO()
    # CRLF rows (RFC 4180): then the csv module also quotes a lone CR inside a cell,
    # which with "\n" rows it writes bare, and a spreadsheet would start a new row there.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["student", "file", "key", "given", "expected", "verdict", "code", "message", "suggested_step",
                     "line", "points", "max_points"])
    for r in reports:
        for i in r.items:
            d = i.diagnosis
            expected = i.to_dict()["expected"]
            row = [r.student, r.source, i.key, _given(i),
                   json.dumps(expected) if isinstance(expected, list) else ("" if expected is None else repr(expected)),
                   i.verdict, d.code if d else "", d.message if d else (i.note or ""),
                   d.suggested_step if d else "", "" if i.line is None else str(i.line),
                   str(i.to_dict()["points"]), str(i.to_dict()["max_points"])]
            writer.writerow([csv_cell(c) for c in row])
            # A vector or matrix answer: one more row per entry, with its own verdict and no points
            # (the item's row carries them; docs/checking.md#vectors-and-matrices).
            for e in i.entries:
                given = e.written if e.written is not None else repr(e.given)
                writer.writerow([csv_cell(c) for c in [r.student, r.source, e.key, given, repr(e.expected), e.verdict,
                                                       "", "", "", "" if i.line is None else str(i.line), "", ""]])
    return out.getvalue()
