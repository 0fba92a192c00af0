"""The worked solution as Typst source (``--format typst``, and the source of the PDF).

A printer of the blocks of :func:`explain.render.pdf.outline`: math comes from
:class:`~explain.render.mathprint.TypstMath`; words — the catalog's and, above
all, titles, descriptions and names from problem files — are written as Typst
string literals (``#"…"``), which Typst shows as text and never runs, whatever
they hold (``#read(…)``, ``$``, ``]``, quotes).  The layout (page, headings,
tables, equations that break between terms to fit the column) is the template
``solution.typ``, inlined so that the source compiles on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from importlib import resources
from typing import Any

from .fonts import CjkFont, find_cjk_font
from .mathprint import TypstMath, typst_string
from .document import (Block, Cell, Document, Eq, Equations, Facts, Figure, Heading, Inline, Math, Paragraph, Plot, Table,
                  Text, axis, outline)

#: Latin text and math: the fonts Typst brings with it, so English needs no system font.
LATIN_FONT = "New Computer Modern"
#: Asked for in Chinese source when no CJK font is found here (the PDF then refuses).
DEFAULT_CJK = CjkFont((), "Noto Serif CJK SC", "Noto Sans CJK SC")

_PARAGRAPHS = {"note": "ex-note", "label": "ex-label", "result": "ex-result", "alert": "ex-alert"}
_ALIGN = {"l": "left", "c": "center", "r": "right"}


def template() -> str:
    """The layout functions every generated document starts with."""
    return resources.files(__package__).joinpath("solution.typ").read_text(encoding="utf-8")


def typst_document(
    solution: Any,
    lang: str = "en",
    precision: int = 4,
    graph_path: str | None = None,
    plot_path: str | None = None,
    *,
    cjk: CjkFont | None = None,
) -> str:
    """The worked solution as a complete Typst document.

    ``graph_path`` and ``plot_path`` are image files (relative to the document)
    of the computation graph and the loss curve; their figures are left out
    when not given.  For Chinese, ``cjk`` names the CJK font families (found on
    this machine when not given).
    """
    g = solution.derivation.graph
    sample_symbols = frozenset(n.name for n in g.nodes.values() if n.per_sample)
    style = TypstMath(precision=precision, sample_symbols=sample_symbols)
    figures = {k: v for k, v in (("graph", graph_path), ("plot", plot_path)) if v}
    doc = outline(solution, style, lang, figures=tuple(figures))
    return render(doc, figures, style, cjk=cjk)


def render(doc: Document, figures: dict[str, str], style: TypstMath, cjk: CjkFont | None = None) -> str:
    """Print a :class:`~explain.render.pdf.Document` as Typst source (``style`` prints plot ticks)."""
    if doc.lang == "zh":
        cjk = cjk or find_cjk_font() or DEFAULT_CJK
        fonts: Sequence[str] = (LATIN_FONT, cjk.serif)
        heading_fonts: Sequence[str] = (LATIN_FONT, cjk.sans)
        region = '"cn"'
    else:
        fonts = heading_fonts = (LATIN_FONT,)
        region = "none"
    out = [
        f"// {_comment(doc.subtitle)}: {_comment(doc.title)}",
        f"// {_comment(doc.meta)}",
        "// Compile with: typst compile <this file> (the images it names must lie beside it).",
        "",
        template(),
        f"#show: ex-setup.with(title: {typst_string(doc.title)}, subtitle: {typst_string(doc.subtitle)}, "
        f"lang: {typst_string(doc.lang)}, region: {region}, fonts: {_array(fonts)}, "
        f"heading-fonts: {_array(heading_fonts)})",
        "",
        f"#ex-title({typst_string(doc.title)}, {typst_string(doc.subtitle)}, {typst_string(doc.meta)})",
    ]
    # A failed verification comes before anything else, the contents included.
    alerts = [b for b in doc.blocks if isinstance(b, Paragraph) and b.kind == "alert"]
    out += [_block(b, figures, style) for b in alerts]
    out += ["#ex-contents()", ""]
    for block in doc.blocks:
        if block not in alerts:
            out.append(_block(block, figures, style))
    return "\n".join(out) + "\n"


def _comment(text: str) -> str:
    """Text for a ``//`` comment: one line, whatever line breaks it held (else the rest would be code)."""
    return " ".join(text.split())


def _array(items: Sequence[str]) -> str:
    return "(" + ", ".join(typst_string(i) for i in items) + ("," if len(items) == 1 else "") + ")"


# -- inline --------------------------------------------------------------------------
def _inline(parts: Sequence[Inline], unbroken: bool = False) -> str:
    """Markup for words and math; every word is a string literal, so nothing runs.

    ``unbroken`` keeps each piece of math on one line (``w_7 = -0.3`` in a list)."""
    out = []
    for p in parts:
        if isinstance(p, Math):
            out.append(f"#box({_math(p.src)})" if unbroken else _math(p.src))
        elif p.text:
            out.append(f"#strong({typst_string(p.text)})" if p.strong else f"#{typst_string(p.text)}")
    return "".join(out)


def _math(src: str) -> str:
    return "$" + src.strip() + "$"


def _content(parts: Sequence[Inline]) -> str:
    return "[" + _inline(parts) + "]"


# -- blocks --------------------------------------------------------------------------
def _block(block: Block, figures: dict[str, str], style: TypstMath) -> str:
    if isinstance(block, Heading):
        return "=" * block.level + " " + _inline(block.parts) + "\n"
    if isinstance(block, Paragraph):
        if block.kind in _PARAGRAPHS:
            return f"#{_PARAGRAPHS[block.kind]}{_content(block.parts)}\n"
        return _inline(block.parts) + "\n"
    if isinstance(block, Equations):
        if block.columns > 1 and len(block.items) > 1:
            # two by two, read left to right like a table; a page may end between rows
            pairs = [block.items[i:i + 2] for i in range(0, len(block.items), 2)]
            rows = ",\n  ".join("(" + ", ".join(_eq(e) for e in pair) + ("," if len(pair) == 1 else "") + ")"
                                for pair in pairs)
            return f"#ex-eqs((\n  {rows},\n))\n"
        return "\n".join("#" + _eq(e) for e in block.items) + "\n"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        path = figures.get(block.key)
        if not path:
            return ""
        function = "ex-graph" if block.key == "graph" else "ex-figure"
        options = ", max-height: 7.5cm" if block.key == "plot" else ""
        return f"#{function}({typst_string(path)}, {_content(block.caption)}{options})\n"
    if isinstance(block, Facts):
        cells = ", ".join(f"strong({typst_string(label)}), [{_inline(parts, unbroken=True)}]"
                          for label, parts in block.rows)
        return f"#ex-facts({cells})\n"
    if isinstance(block, Plot):
        return _plot(block, style)
    raise TypeError(f"unknown block {block!r}")


def _eq(eq: Eq) -> str:
    rows = ", ".join("(" + ", ".join(_math(t) for t in row) + ("," if len(row) == 1 else "") + ")"
                     for row in eq.rows)
    if len(eq.rows) == 1:
        rows += ","
    return f"ex-eq({_math(eq.lhs)}, ({rows}))"


def _table(table: Table) -> str:
    def cell(c: Cell) -> str:
        return _content(c)

    n = len(table.header)
    align = "(" + ", ".join(_ALIGN[a] for a in table.align) + ("," if n == 1 else "") + ")"
    header = "(" + ", ".join(cell(c) for c in table.header) + ("," if n == 1 else "") + ")"
    body = ",\n  ".join(", ".join(cell(c) for c in row) for row in table.rows)
    size = "8.5pt" if table.size == "small" else "9.5pt"
    columns = n if table.size == "small" else "(" + ", ".join("auto" for _ in range(n)) + ("," if n == 1 else "") + ")"
    return (f"#ex-table(columns: {columns}, aligns: {align}, size: {size}, header: {header},\n  "
            + body + (",\n" if body else "\n") + ")\n")


def _plot(plot: Plot, style: TypstMath) -> str:
    """The loss curve drawn by Typst itself: vector, in the document's fonts, no image file."""
    xs = [x for s in plot.series for x in s.x] or [0.0, 1.0]
    ys = [y for s in plot.series for y in s.y] or [0.0, 1.0]
    if plot.log:
        ys = [math.log10(y) for y in ys]
    x0, x1, xticks = axis(min(xs), max(xs))
    low = min(ys) if plot.log else min(0.0, min(ys))  # a loss axis starts at 0
    y0, y1, yticks = axis(low, max(ys), log=plot.log)

    def fx(x: float) -> float:
        return (x - x0) / (x1 - x0)

    def fy(y: float) -> float:
        return ((math.log10(y) if plot.log else y) - y0) / (y1 - y0)

    def label(v: float, log: bool = False) -> str:
        return _math(f"10^({int(v)})" if log else style.number(v))

    series = []
    for s in plot.series:
        points = ", ".join(f"({fx(x):.4f}, {fy(y):.4f})" for x, y in zip(s.x, s.y))
        series.append(f"(label: {_content([Text(s.label)])}, cross: {'true' if s.diverged else 'false'}, "
                      f"points: ({points}{',' if len(s.x) == 1 else ''}))")
    ticks_x = ", ".join(f"({fx(t):.4f}, {label(t)})" for t in xticks)
    ticks_y = ", ".join(f"({(t - y0) / (y1 - y0):.4f}, {label(t, plot.log)})" for t in yticks)
    return (f"#ex-plot(xticks: ({ticks_x},), yticks: ({ticks_y},), series: ({', '.join(series)},),\n"
            f"  xlabel: {_content([Text(plot.xlabel)])}, ylabel: {_content([Text(plot.ylabel)])}, "
            f"caption: {_content(plot.caption)})\n")
