"""``explain check PROBLEM.toml ANSWERS.toml...``: grade answers, print verdicts, write a class report.

One answers file prints one table (item by item, with diagnoses); several
print one row per student, then the class summary (mistakes by diagnosis,
per-question statistics).  ``--format json`` prints SPEC §4's object for one
file and ``{"students": [...], "summary": {...}}`` for several.  ``--report
FILE.csv`` writes one row per student and item, ``--report FILE.json`` the
JSON of the class; ``--chart FILE.png`` draws the summary.  ``--roster`` grades
each student against their own variant.  A file that cannot be read gets an
``unreadable`` row: the others are graded and the report written, and the
command exits 2.  Exit 1 when any answer is not correct.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..check import Graded, Grader, Report, grade_files, grade_roster
from ..classreport import chart, render_summary, summarize
from ..errors import ExplainError
from ..files import after_commit
from ..i18n import Messages
from ..render.mathprint import TextMath
from ..sanitize import csv_cell, printable
from . import emit, use_color, write_atomic

FORMATS = ("text", "markdown", "json")
_COLORS = {"correct": "green", "consistent": "green", "imprecise": "yellow", "incorrect": "red",
           "unknown_key": "yellow", "unparseable": "yellow", "unreadable": "red"}


def run(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise ExplainError("--format", f"check writes {', '.join(FORMATS)}, not {args.format}")
    if args.jobs is not None and args.jobs < 1:
        raise ExplainError("--jobs", "must be at least 1")
    if args.precision < 1:
        raise ExplainError("--precision", "must be at least 1")
    if args.sigfigs is not None and not 1 <= args.sigfigs <= 12:
        raise ExplainError("--sigfigs", f"must be a whole number from 1 to 12, got {args.sigfigs}")
    paths = [args.problem, *args.answers] if args.roster else list(args.answers)
    if not paths:
        raise ExplainError("check", "give the answers file(s) after the problem file")
    graded, problems = _grade(args, paths)
    reports = [g.report if g.report is not None else _unreadable(g, problems.get(g.path), args) for g in graded]
    if args.report:
        text = render_json(reports) if args.report.lower().endswith(".json") else render_csv(reports)
        write_atomic(args.report, text, option="--report")
    if args.chart:
        write_atomic(args.chart, chart(summarize(reports), args.lang), option="--chart")
    emit(render(reports, args.format, args.precision, args.lang), args.output,
         colored=args.format == "text" and use_color())
    unreadable = [g for g in graded if g.error]
    if unreadable:
        m = Messages(args.lang)
        lines = [m("check_unreadable_row", file=g.path, line=g.line if g.line is not None else "?",
                   reason=g.reason or g.error) for g in unreadable]
        lines.append(m("check_unreadable_total", n=len(unreadable)))
        after_commit(lambda: print("\n".join(printable(line) for line in lines), file=sys.stderr))
        return 2
    return 0 if all(r.passed for r in reports) else 1


def _grade(args: argparse.Namespace, paths: list[str]) -> tuple[list[Graded], dict[str, str]]:
    """Every file graded (against the problem, or each against their variant); for each, its problem."""
    if args.roster:
        from ..roster import read_roster

        variants = sorted(set(read_roster(args.roster).values()))
        problems_used = variants
    else:
        problems_used = [args.problem]
    if not args.no_verify:
        from ..derivation import derive
        from ..problem import load
        from ..verify import require_verified

        for problem in problems_used:
            require_verified(derive(load(problem)), "check", args.lang)
    with _progress(len(paths)) as advance:
        if args.roster:
            return grade_roster(args.roster, paths, rtol=args.rtol, lang=args.lang, jobs=args.jobs,
                                progress=advance, sigfigs=args.sigfigs)
        graded = grade_files(args.problem, paths, rtol=args.rtol, lang=args.lang, jobs=args.jobs,
                             progress=advance, sigfigs=args.sigfigs)
        return graded, {p: args.problem for p in paths}


def _unreadable(graded: Graded, problem: str | None, args: argparse.Namespace) -> Report:
    """The row of a file that could not be read (worth its problem's [marks], when there is a problem)."""
    if problem is None:
        from ..check import Item

        item = Item("", None, None, "unreadable", note=graded.reason or graded.error, line=graded.line, max_points=0.0)
        return Report([item], graded.path, args.lang)
    from ..check import _GRADER  # the grader of that problem is the last one grade_files made, or made again here

    grader = _GRADER if _GRADER is not None and _GRADER.problem_source == str(Path(problem)) else \
        Grader(problem, rtol=args.rtol, lang=args.lang, sigfigs=args.sigfigs)
    return grader.unreadable(graded)


def render(reports: Sequence[Report], fmt: str, precision: int = 6, lang: str = "en") -> str:
    """The reports in one output format."""
    if fmt == "json":
        if len(reports) == 1:
            return json.dumps(reports[0].to_dict(), indent=2, ensure_ascii=False)
        return render_json(reports)
    if fmt == "markdown":
        return render_markdown(reports, precision, lang)
    return render_text(reports, precision, lang, color=use_color())


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
        return "[" + ", ".join(tm.number(v) for v in value) + "]"
    return tm.number(value)


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
            return _rich_table(title, [*header, m("check_col_diagnosis")], rows, footer,
                               [i.verdict for i in r.items])
        lines = [title, ""]
        widths = [max(len(str(x)) for x in col) for col in zip(header, *(row[:4] for row in rows))]
        lines.append("  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip())
        for row in rows:
            lines.append("  ".join(str(c).ljust(w) for c, w in zip(row[:4], widths)).rstrip())
            if row[4]:
                lines.append("    → " + row[4])
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
                   _explanation(i, m)]
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
    return out.getvalue()


class _progress:
    """A progress bar on standard error when it is a terminal and there are several files."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._bar: Any = None

    def __enter__(self) -> Callable[[int], None] | None:
        if self.total < 2 or not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import Progress

        # No refresh thread: workers are forked while it runs, and forking a threaded process is unsafe.
        self._bar = Progress(console=Console(stderr=True), transient=True, auto_refresh=False)
        self._bar.start()
        task = self._bar.add_task("grading", total=self.total)

        def advance(n: int) -> None:
            self._bar.advance(task, n)
            self._bar.refresh()

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


__all__ = ["run", "render", "render_text", "render_markdown", "render_csv", "render_json", "Graded"]
