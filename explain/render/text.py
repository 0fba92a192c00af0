"""Plain-text (terminal) rendering of derivations and solutions.

Sections are headed and equations aligned handcalcs-style.  Colour is a light
layer on top: headings and results are styled with ANSI codes only when asked
(a terminal, no ``NO_COLOR``), so piped output is clean text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..derivation import Derivation
from ..stage import EXPRESSION_SOURCE
from ..i18n import Messages
from ..sanitize import printable
from .mathprint import TextMath
from .steps import StepWriter, shown_edges, shown_nodes

_BOLD, _CYAN, _GREEN, _DIM, _RESET = "\033[1m", "\033[36m", "\033[32m", "\033[2m", "\033[0m"


class _Doc:
    def __init__(self, color: bool) -> None:
        self.color = color
        self.lines: list[str] = []

    def heading(self, text: str, level: int = 1) -> None:
        text = printable(text)  # user titles must not reach the terminal as escape sequences
        if self.lines:
            self.lines.append("")
        if level == 1:
            self.lines.append(self._style(text, _BOLD + _CYAN))
            self.lines.append(self._style("═" * _width(text), _CYAN))
        else:
            self.lines.append(self._style(text, _BOLD))
            self.lines.append("─" * _width(text))

    def note(self, text: str) -> None:
        self.lines.append(self._style(printable(text), _DIM))

    def line(self, text: str = "") -> None:
        self.lines.append(printable(text))

    def block(self, text: str) -> None:
        self.lines.extend(printable(text).splitlines())

    def _style(self, text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(_width(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths)).rstrip()

    return "\n".join([fmt(header), "  ".join("─" * w for w in widths), *(fmt(r) for r in rows)])


def render_derivation(
    d: Derivation, precision: int = 6, lang: str = "en", color: bool = False, title: str | None = None,
) -> str:
    """The whole derivation as text: givens, forward, locals, backward, chain rule."""
    m = Messages(lang)
    g = d.graph
    sample_symbols = frozenset(n.name for n in g.nodes.values() if n.per_sample)
    style = TextMath(precision=precision, sample_symbols=sample_symbols)
    w = StepWriter(d, style)
    doc = _Doc(color)

    doc.heading(title if title is not None else (g.title or m("problem")))
    if g.description:
        doc.line(g.description)
    _givens(doc, d, style, m)

    doc.heading(m("forward_pass"), 2)
    doc.note(m("forward_intro"))
    if g.is_data_problem:
        doc.note(m("per_sample_note", n=g.n_samples, loss=g.loss))
        doc.note(m("sample_shown", i=1))
    for step in d.forward:
        doc.block(w.forward(step).render(style))
    key = "result_is" if g.source == EXPRESSION_SOURCE else "loss_is"
    doc.line(_emph(doc, m(key, name=g.loss, value=style.number(d.loss_value))))

    doc.heading(m("local_partials"), 2)
    doc.note(m("local_intro"))
    for step in shown_edges(d):
        doc.block(w.local(step).render(style))

    doc.heading(m("backward_pass"), 2)
    doc.note(m("backward_intro"))
    for name in shown_nodes(d):
        if g.nodes[name].kind != "parameter":
            doc.block(w.adjoint(d.adjoints[name]).render(style))

    doc.heading(m("chain_rule"), 2)
    doc.note(m("chain_intro"))
    for name, gradient in d.gradients.items():
        doc.line()
        doc.line(_emph(doc, f"{name}: " + m("path_count", count=gradient.path_count, name=name)))
        if gradient.path_count == 0:
            doc.line(m("no_paths", name=name))
            continue
        chain = w.chain(gradient)
        if chain is None:
            doc.note(m("too_many_paths", count=gradient.path_count, name=name))
        else:
            doc.line(f"  {m('path_form')}:")
            doc.block(_indent(chain.render(style), 4))
        doc.line(f"  {m('delta_form')}:")
        doc.block(_indent(w.delta(gradient).render(style), 4))

    doc.heading(m("gradients"), 2)
    rows = [[name, style.number(d.graph.leaf_values[name]), style.number(gr.value)] for name, gr in d.gradients.items()]
    doc.block(_table(rows, [m("parameter"), m("value"), m("gradient")]))
    return doc.text()


def _emph(doc: _Doc, text: str) -> str:
    return doc._style(text, _BOLD + _GREEN)


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def _givens(doc: _Doc, d: Derivation, style: TextMath, m: Messages) -> None:
    g = d.graph
    kinds = [("parameters", "parameter"), ("values", "value")]
    for title, kind in kinds:
        names = [n.name for n in g.nodes.values() if n.kind == kind]
        if names:
            doc.line(f"{m(title)}: " + ", ".join(f"{n} = {style.number(g.leaf_values[n])}" for n in names))
    data = [n.name for n in g.nodes.values() if n.kind == "data"]
    if data:
        doc.line(f"{m('data')} ({m('samples', n=g.n_samples)}): " + ", ".join(
            f"{n} = {_preview(g.leaf_values[n], style)}" for n in data))


def _preview(values: Any, style: TextMath) -> str:
    array = np.asarray(values)
    shown = ", ".join(style.number(v) for v in array[:5])
    return f"[{shown}{', …' if len(array) > 5 else ''}]"
