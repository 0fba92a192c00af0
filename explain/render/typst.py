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

from ..i18n import Messages
from .fonts import CjkFont, find_cjk_font
from .mathprint import TypstMath, typst_string
from .document import (Block, Cell, Document, Eq, Equations, Facts, Figure, Heading, Inline, Math, Paragraph, Plot,
                       Table, Text, axis, outline, split_terms, top_level)

#: Latin text and math: the fonts Typst brings with it, so English needs no system font.
LATIN_FONT = "New Computer Modern"
#: Asked for in Chinese source when no CJK font is found here (the PDF then refuses).
DEFAULT_CJK = CjkFont((), "Noto Serif CJK SC", "Noto Sans CJK SC")

#: The smallest type size anywhere in the PDF (pt); the template's sizes are chosen for it.
MIN_TEXT = 8.0
#: The smallest type size Graphviz uses in our drawings when nothing else is known (pt).
GRAPH_FONT = 10.0

#: Table cells with more printed math than this may break across lines (a formula with
#: many terms); shorter ones (numbers, names) never do.
LONG_CELL = 60

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
    graph_font: float = 10.0,
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
    doc = outline(solution, style, lang, figures=tuple(figures), pages=True)
    return render(doc, figures, style, cjk=cjk, graph_font=graph_font)


def render(doc: Document, figures: dict[str, str], style: TypstMath, cjk: CjkFont | None = None,
           graph_font: float = GRAPH_FONT) -> str:
    """Print a :class:`~explain.render.pdf.Document` as Typst source (``style`` prints plot ticks).

    ``graph_font`` is the smallest type size (pt) in the graph's drawing: the graph is
    shown in the text only where it keeps that text at :data:`MIN_TEXT` or more."""
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
    m = Messages(doc.lang)
    graph_options = f"min-scale: {min(1.0, MIN_TEXT / graph_font):.4f}"
    late: list[str] = []
    for block in doc.blocks:
        if block in alerts:
            continue
        if isinstance(block, Figure) and block.key == "graph" and figures.get("graph"):
            # Shown here when it fits legibly; otherwise on a page of its own at the end.
            path = typst_string(figures["graph"])
            out.append(f"#ex-graph({path}, {_content(block.caption)}, {graph_options}, "
                       f"elsewhere: {_content([Text(m('pdf_graph_last_page'))])})\n")
            late.append(f"#ex-graph-page({path}, {_content(block.caption)}, {graph_options})\n")
            continue
        out.append(_block(block, figures, style))
    return "\n".join(out + late) + "\n"


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
            src = p.src
            if "mat(" in src and "," not in _top_level(src):  # inline, a matrix's entries would shrink below 8 pt
                src = f"display({src.strip()})"
            out.append(f"#box({_math(src)})" if unbroken else _math(src))
        elif p.text:
            out.append(f"#strong({typst_string(p.text)})" if p.strong else f"#{typst_string(p.text)}")
    return "".join(out)


def _math(src: str) -> str:
    return "$" + src.strip() + "$"


def _content(parts: Sequence[Inline]) -> str:
    return "[" + _inline(parts) + "]"


def _cell(parts: Sequence[Inline]) -> str:
    """A table cell: math in display style (a fraction keeps full-size type, not the
    70 % of inline math), each piece kept on one line (a number never wraps)."""
    out = []
    for p in parts:
        if isinstance(p, Math):
            src = p.src.strip()
            # a long formula may break between its terms, each kept whole
            terms = split_terms(src) if len(src) > LONG_CELL else (src,)
            out.append(" ".join(_display_box(term, i > 0) for i, term in enumerate(terms)))
        elif p.text:
            out.append(f"#strong({typst_string(p.text)})" if p.strong else f"#{typst_string(p.text)}")
    return "[" + "".join(out) + "]"


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
    """``ex-eq(lhs, rows)``: each row a list of terms, each term a list of its factors
    (the template breaks a line between terms, and inside a term too wide for a line)."""
    def term(t: str) -> str:
        factors = split_factors(t)
        return "(" + ", ".join(_math(f) for f in factors) + ("," if len(factors) == 1 else "") + ")"

    rows = ", ".join("(" + ", ".join(term(t) for t in row) + ("," if len(row) == 1 else "") + ")"
                     for row in eq.rows)
    if len(eq.rows) == 1:
        rows += ","
    return f"ex-eq({_math(eq.lhs)}, ({rows}))"


def _display_box(src: str, after: bool = False) -> str:
    """Math in display style (full-size fractions and matrices), on one line.  ``after``: a term that
    continues a sum (``+ b``), given an empty left operand so that its sign keeps the
    spacing of a binary operator."""
    if "," in _top_level(src) or ("/" not in src and "mat(" not in src):  # display(a, b) would read two arguments
        return f"#box({_math(src)})"  # and without a fraction, display style changes nothing
    lead = '"" ' if after else ""
    # The line grows to the fraction's bounds: with the text's default edges (cap height,
    # baseline) a display fraction ran into the table rows above and below.
    return f'#text(top-edge: "bounds", bottom-edge: "bounds", box($display({lead}{src})$))'


def _top_level(src: str) -> str:
    """The characters of printed math outside brackets and strings."""
    return "".join(src[i] for i in top_level(src))


def split_factors(term: str) -> list[str]:
    """Cut a printed Typst term at its top-level products: ``a dot (b + c) dot d`` →
    ``a``, ``dot (b + c)``, ``dot d``.  Brackets and quoted strings are kept whole."""
    pieces: list[str] = []
    start = 0
    for i in top_level(term):
        if i > 0 and term.startswith(" dot ", i):
            pieces.append(term[start:i])
            start = i + 1
    pieces.append(term[start:])
    return [p for p in pieces if p.strip()]


def _table(table: Table) -> str:
    n = len(table.header)
    trail = "," if n == 1 else ""
    align = "(" + ", ".join(_ALIGN[a] for a in table.align) + trail + ")"
    header = "(" + ", ".join(_cell(c) for c in table.header) + trail + ")"
    rows = ",\n  ".join("(" + ", ".join(_cell(c) for c in row) + trail + ")" for row in table.rows)
    rows = "(" + rows + ("," if len(table.rows) == 1 else "") + ")" if table.rows else "()"
    # the rows holding each column's longest cell: what the template measures
    probe = sorted({max(range(len(table.rows)), key=lambda i: _length(table.rows[i][j])) for j in range(n)}) \
        if table.rows else []
    probe_list = "(" + ", ".join(map(str, probe)) + ("," if len(probe) == 1 else "") + ")"
    return f"#ex-table(aligns: {align}, header: {header}, keep: 1, probe: {probe_list},\n  rows: {rows})\n"


def _length(cell: Cell) -> int:
    """About how wide a cell prints: the length of its source, without markup of names."""
    return sum(len(p.src.replace('"', "")) if isinstance(p, Math) else len(p.text) for p in cell)


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
