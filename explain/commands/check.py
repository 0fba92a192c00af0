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
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..check import Graded, Grader, Report, grade_files, grade_roster
from ..classreport import chart, summarize
from ..errors import ExplainError
from ..files import after_commit, write_atomic
from ..i18n import Messages
from ..render.grading import render_csv, render_json, render_markdown, render_text
from ..sanitize import printable
from . import emit, use_color

FORMATS = ("text", "markdown", "json")


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
