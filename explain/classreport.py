"""A class's answers in one view: which mistakes were made by how many students, and how each question went.

:func:`summarize` turns the graded reports of a class into plain data (the
``summary`` of the JSON report); :func:`render_summary` prints it as text or
Markdown tables and :func:`chart` draws it (PNG, with matplotlib).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from .check import VERDICTS, Report, _points
from .i18n import Messages

#: Verdicts of an item that answers a question (unknown keys and unreadable files answer none).
_ANSWER_VERDICTS = tuple(v for v in VERDICTS if v not in ("unknown_key", "unreadable"))


def summarize(reports: Sequence[Report]) -> dict[str, Any]:
    """``{students, unreadable, mistakes, questions}`` for the class.

    ``mistakes``: one entry per diagnosis (a pair of mistakes is one entry,
    its codes joined by ``+``), most students first: how many students made it,
    how many answers it explains, and on which questions.  Wrong answers with no
    diagnosis are the entry whose ``code`` is null.  ``questions``: per question
    (in one spelling: ``∂E/∂w5`` is ``dE/dw5``), how many students answered it,
    the count of each verdict and the mean points earned of its maximum.
    """
    mistakes: dict[str | None, dict[str, Any]] = {}
    questions: dict[str, dict[str, Any]] = {}
    for r in reports:
        for i in r.items:
            if i.verdict == "incorrect":
                code = "+".join(i.diagnosis.codes or (i.diagnosis.code,)) if i.diagnosis else None
                entry = mistakes.setdefault(code, {"code": code, "students": set(), "answers": 0,
                                                   "questions": Counter()})
                entry["students"].add(r.source)
                entry["answers"] += 1
                entry["questions"][i.question or i.key] += 1
            if i.question is None or i.verdict not in _ANSWER_VERDICTS:
                continue
            q = questions.setdefault(i.question, {"key": i.question, "answered": 0,
                                                  **{v: 0 for v in _ANSWER_VERDICTS}, "points": 0.0,
                                                  "max_points": i.max_points})
            q["answered"] += 1
            q[i.verdict] += 1
            q["points"] += i.points
    listed = [{"code": e["code"], "students": len(e["students"]), "answers": e["answers"],
               "questions": dict(sorted(e["questions"].items(), key=lambda kv: (-kv[1], kv[0])))}
              for e in mistakes.values()]
    listed.sort(key=lambda e: (e["code"] is None, -e["students"], -e["answers"], e["code"] or ""))
    per_question = []
    for q in questions.values():
        points = q.pop("points")
        q["mean_points"] = _points(points / q["answered"]) if q["answered"] else 0
        q["max_points"] = _points(q["max_points"])
        per_question.append(q)
    return {"students": len(reports), "unreadable": sum(any(i.verdict == "unreadable" for i in r.items)
                                                        for r in reports),
            "mistakes": listed, "questions": per_question}


def _table(header: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        def cell(text: str) -> str:
            return text.replace("|", "\\|").replace("\n", " ")
        return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                *("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    return ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
            *("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows)]


def render_summary(summary: dict[str, Any], lang: str = "en", markdown: bool = False) -> str:
    """The two tables of the summary: mistakes by diagnosis, and questions."""
    m = Messages(lang)
    title = (lambda t: f"### {t}") if markdown else (lambda t: t)
    lines: list[str] = []
    if summary["mistakes"]:
        rows = [[e["code"] or m("check_no_mistake"), str(e["students"]),
                 ", ".join(f"{k} ({n})" for k, n in e["questions"].items())] for e in summary["mistakes"]]
        lines += [title(m("check_mistakes_title")), "",
                  *_table([m("check_col_mistake"), m("check_col_students"), m("check_col_questions")], rows, markdown),
                  ""]
    if summary["questions"]:
        shown = [v for v in _ANSWER_VERDICTS if v != "correct" and any(q[v] for q in summary["questions"])]
        header = [m("check_col_question"), m("check_col_answered"), m("check_col_right"),
                  *(m(f"check_verdict_{v}") for v in shown), m("check_col_mean")]
        rows = [[q["key"], str(q["answered"]), str(q["correct"]), *(str(q[v]) for v in shown),
                 f"{q['mean_points']:.3g}/{q['max_points']:g}"] for q in summary["questions"]]
        lines += [title(m("check_questions_title")), "", *_table(header, rows, markdown)]
    return "\n".join(lines).rstrip()


def chart(summary: dict[str, Any], lang: str = "en") -> bytes:
    """A PNG of the summary: students per diagnosed mistake, and the verdicts on each question (stacked)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    m = Messages(lang)
    diagnosed = [e for e in summary["mistakes"] if e["code"] is not None]
    questions = summary["questions"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, max(3.0, 0.35 * max(len(diagnosed), len(questions), 4))))
    try:
        names = [e["code"] for e in diagnosed][::-1]
        left.barh(names, [e["students"] for e in diagnosed][::-1], color="#c0504d")
        left.set_title(m("check_chart_mistakes"))
        left.set_xlabel(m("check_col_students"))
        keys = [q["key"] for q in questions][::-1]
        start = [0] * len(keys)
        colors = {"correct": "#4f9a4f", "imprecise": "#e0b040", "consistent": "#5b8fd0", "incorrect": "#c0504d",
                  "unparseable": "#999999"}
        for verdict in _ANSWER_VERDICTS:
            counts = [q[verdict] for q in questions][::-1]
            if any(counts):
                right.barh(keys, counts, left=start, label=m(f"check_verdict_{verdict}"), color=colors.get(verdict))
                start = [a + b for a, b in zip(start, counts)]
        right.set_title(m("check_chart_questions"))
        right.set_xlabel(m("check_col_students"))
        for axes in (left, right):
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # students are counted, not measured
        if keys:
            right.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=5, fontsize="small", frameon=False)
        fig.tight_layout()
        out = io.BytesIO()
        # No date or software version in the file: the same class gives the same bytes.
        fig.savefig(out, format="png", dpi=100, metadata={"Software": None})
        return out.getvalue()
    finally:
        plt.close(fig)


__all__ = ["chart", "render_summary", "summarize"]
