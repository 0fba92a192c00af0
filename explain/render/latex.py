"""The worked solution as a complete LaTeX document (``--format latex``).

A printer of the blocks of :func:`explain.render.pdf.outline` — the same
sections, equations and tables as the PDF — with math from
:class:`~explain.render.mathprint.LatexMath`.  English compiles with pdfLaTeX
(or XeLaTeX/LuaLaTeX); Chinese uses ``ctexart`` and XeLaTeX.  The loss curve is
drawn by pgfplots, so the file needs no images.  Every word — the catalog's,
and titles, descriptions and names from problem files — goes through
:func:`latex_text`, so ``\\input{/etc/passwd}`` or ``$`` in a title is text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from .mathprint import LatexMath
from .document import (Block, Cell, Document, Eq, Equations, Facts, Figure, Heading, Inline, Math, Paragraph, Plot, Table,
                  outline)

_SPECIAL = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
    "^": r"\textasciicircum{}", "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", '"': r"\textquotedbl{}",
}
#: Symbols pdfLaTeX does not know as text, written as math.
_SYMBOLS = {
    "…": r"\ldots{}", "→": r"\ensuremath{\rightarrow}", "←": r"\ensuremath{\leftarrow}",
    "∂": r"\ensuremath{\partial}", "Σ": r"\ensuremath{\Sigma}", "·": r"\ensuremath{\cdot}",
    "−": "-", "×": r"\ensuremath{\times}", "≤": r"\ensuremath{\le}", "≥": r"\ensuremath{\ge}",
    "≈": r"\ensuremath{\approx}", "η": r"\ensuremath{\eta}", "δ": r"\ensuremath{\delta}",
    "σ": r"\ensuremath{\sigma}", "²": r"\textsuperscript{2}", "³": r"\textsuperscript{3}",
    "ᵢ": r"\ensuremath{_i}", "–": "--", "—": "---", "‘": "`", "’": "'", "“": "``", "”": "''",
}

#: A line of display math holds about this many characters of printed math.
LINE_WIDTH = 76
COLUMN_WIDTH = 36


def latex_text(text: str) -> str:
    """Text for LaTeX: every special character escaped, so it prints as itself.

    Unusual white space (tabs, line and paragraph separators) becomes a space and
    other control characters are dropped: TeX would stop on them."""
    out = []
    for c in text:
        if c in _SPECIAL or c in _SYMBOLS:
            out.append(_SPECIAL.get(c) or _SYMBOLS[c])
        elif c.isspace():
            out.append("\n" if c == "\n" else " ")
        elif unicodedata.category(c) != "Cc":
            out.append(c)
    return "".join(out)


def latex_document(solution: Any, lang: str = "en", precision: int = 4) -> str:
    """The worked solution as a complete LaTeX document."""
    g = solution.derivation.graph
    sample_symbols = frozenset(n.name for n in g.nodes.values() if n.per_sample)
    style = LatexMath(precision=precision, sample_symbols=sample_symbols)
    return render(outline(solution, style, lang, pages=True))


def render(doc: Document) -> str:
    """Print a :class:`~explain.render.pdf.Document` as LaTeX."""
    zh = doc.lang == "zh"
    out = [
        r"\documentclass[UTF8,a4paper,zihao=-4,fleqn]{ctexart}" if zh else r"\documentclass[11pt,a4paper,fleqn]{article}",
        "% !TEX program = xelatex" if zh else "% Compile with pdflatex (or xelatex, lualatex).",
        f"% {_comment(doc.subtitle)}: {_comment(doc.title)}",
        f"% {_comment(doc.meta)}",
    ]
    if not zh:
        # lmodern scales to any size: sub- and superscripts of the 11 pt text and of the
        # 10 pt (\small) tables at 8 pt, not 8 and 7 — no text under 8 pt, as in the PDF.
        out += [r"\usepackage[T1]{fontenc}", r"\usepackage{lmodern}",
                r"\DeclareMathSizes{10.95}{10.95}{8}{8}", r"\DeclareMathSizes{10}{10}{8}{8}"]
    out += [
        r"\usepackage[margin=2.1cm]{geometry}",
        r"\usepackage{amsmath,amssymb}",
        r"\usepackage{booktabs}",
        r"\usepackage{tabularx}",
        r"\usepackage{longtable}",
        r"\usepackage{multicol}",
        r"\usepackage{xcolor}",
        r"\usepackage{pgfplots}",
        r"\pgfplotsset{compat=1.16}",
        r"\definecolor{exink}{HTML}{1D3557}",
        r"\definecolor{exaccent}{HTML}{2A6F97}",
        r"\definecolor{exmuted}{HTML}{55606B}",
        r"\definecolor{exlight}{HTML}{EEF3F8}",
        r"\allowdisplaybreaks",
        r"\setlength{\mathindent}{1.2em}",
        r"\setcounter{tocdepth}{1}",
        r"\setlength{\parindent}{0pt}",
        r"\setlength{\parskip}{0.5em}",
        r"\newcommand{\exnote}[1]{{\small\color{exmuted}#1\par}}",
        r"\newcommand{\exlabel}[1]{\par\smallskip{\small\bfseries\color{exaccent}#1}\par\nopagebreak}",
        r"\newcommand{\exresult}[1]{\par\smallskip\fcolorbox{exaccent}{exlight}{#1}\par\smallskip}",
        r"\newcommand{\exalert}[1]{\par\medskip\fcolorbox{red}{red!8}{\parbox{\dimexpr\linewidth-2\fboxsep-2\fboxrule}{\bfseries\color{red!60!black}#1}}\par\medskip}",
        "",
        r"\begin{document}",
        "",
        r"{\small\color{exaccent}" + latex_text(doc.subtitle) + r"\par}",
        r"{\LARGE\bfseries\color{exink}" + latex_text(doc.title) + r"\par}",
        r"\smallskip{\small\color{exmuted}" + latex_text(doc.meta) + r"\par}",
        r"\noindent\rule{\linewidth}{0.8pt}",
        "",
        *(_block(b) for b in doc.blocks if _is_alert(b)),  # before anything else, the contents included
        r"{\small\tableofcontents}",
        "",
    ]
    out += [_block(b) for b in doc.blocks if not _is_alert(b)]
    out += [r"\end{document}", ""]
    return "\n".join(out)


def _is_alert(block: Block) -> bool:
    return isinstance(block, Paragraph) and block.kind == "alert"


def _comment(text: str) -> str:
    """Text for a % comment: one line, escaped like text (``^^M`` would end the comment)."""
    return latex_text(" ".join(text.split()))


# -- inline --------------------------------------------------------------------------
def _math(src: str) -> str:
    return "$" + _fix(src) + "$"


def _fix(src: str) -> str:
    """Unicode the math printers leave in value previews, as LaTeX."""
    return src.replace("…", r"\ldots").replace("·", r"\cdot ")


def _inline(parts: Sequence[Inline]) -> str:
    out = []
    for p in parts:
        if isinstance(p, Math):
            out.append(_math(p.src))
        elif p.text:
            out.append(r"\textbf{" + latex_text(p.text) + "}" if p.strong else latex_text(p.text))
    return "".join(out)


# -- blocks --------------------------------------------------------------------------
def _block(block: Block) -> str:
    if isinstance(block, Heading):
        command = {1: "section", 2: "subsection"}.get(block.level, "subsubsection")
        return f"\\{command}{{{_inline(block.parts)}}}\n"
    if isinstance(block, Paragraph):
        text = _inline(block.parts)
        if block.kind == "note":
            return f"\\exnote{{{text}}}\n"
        if block.kind == "label":
            return f"\\exlabel{{{text}}}\n"
        if block.kind == "result":
            return f"\\exresult{{{text}}}\n"
        if block.kind == "alert":
            return f"\\exalert{{{text}}}\n"
        return text + "\n"
    if isinstance(block, Equations):
        two = block.columns > 1 and len(block.items) > 1 and all(
            _width(t) <= COLUMN_WIDTH for e in block.items for row in e.rows for t in row)
        body = "\n".join(_align(e, COLUMN_WIDTH if two else LINE_WIDTH, breakable=not two) for e in block.items)
        return f"\\begin{{multicols}}{{2}}\n{body}\n\\end{{multicols}}\n" if two else body + "\n"
    if isinstance(block, Facts):
        rows = " \\\\[0.3em]\n".join(f"\\textbf{{{latex_text(label)}}} & {_inline(parts)}"
                                      for label, parts in block.rows)
        return ("\\begin{tabularx}{\\linewidth}{@{}l>{\\raggedright\\arraybackslash}X@{}}\n" + rows
                + "\n\\end{tabularx}\n")
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Plot):
        return _plot(block)
    if isinstance(block, Figure):
        return ""  # images are for the PDF; the LaTeX source stands alone
    raise TypeError(f"unknown block {block!r}")


def _width(src: str) -> float:
    """About how many characters wide printed LaTeX math is (fractions count their wider part)."""
    src = re.sub(r"\\(left|right)(?=[(\[|.)\]])", "", src)
    while True:
        m = _FRAC.search(src)
        if not m:
            break
        num, den = m.group(1), m.group(2)
        wide = num if _width(num) >= _width(den) else den
        src = src[:m.start()] + "{" + wide + "}" + src[m.end():]
    src = re.sub(r"_\{([^{}]*)\}", lambda x: "~" * max(1, int(len(x.group(1)) * 0.7)), src)
    src = re.sub(r"\\(mathrm|operatorname|text)\{([^{}]*)\}", r"\2", src)
    src = re.sub(r"\\[A-Za-z]+", "x", src)
    return len(re.sub(r"[{}\s]", "", src)) * 1.25


_FRAC = re.compile(r"\\frac\{((?:[^{}]|\{[^{}]*\}|\{(?:[^{}]|\{[^{}]*\})*\})*)\}"
                   r"\{((?:[^{}]|\{[^{}]*\}|\{(?:[^{}]|\{[^{}]*\})*\})*)\}")


def _align(eq: Eq, width: float, breakable: bool = True) -> str:
    """``lhs &= …`` one rhs per line; a row wider than ``width`` broken between terms.

    ``breakable`` equations may continue on the next page (``align*``); the others
    (in columns) stay whole (``aligned``)."""
    lines: list[str] = []
    lhs_width = _width(eq.lhs) + 2
    for r, row in enumerate(eq.rows):
        chunk: list[str] = []
        first = True
        # a term too wide for a line alone is broken between its factors (``\cdot``)
        pieces = [f for term in row for f in
                  (split_factors(term) if lhs_width + _width(term) > width else [term])]
        for term in pieces:
            if chunk and lhs_width + _width(" ".join(chunk + [term])) > width:
                lines.append(_line(eq.lhs if not lines else "", chunk, first))
                first = False
                chunk = []
            chunk.append(term)
        lines.append(_line(eq.lhs if not lines else "", chunk, first))
    body = " \\\\\n".join(lines)
    if breakable:
        return "\\begin{align*}\n" + body + "\n\\end{align*}"
    return "\\[\n\\begin{aligned}\n" + body + "\n\\end{aligned}\n\\]"


def split_factors(term: str) -> list[str]:
    """Cut printed LaTeX at its top-level products: ``a \\cdot \\left(b\\right) \\cdot c`` →
    ``a``, ``\\cdot \\left(b\\right)``, ``\\cdot c`` (braces and ``\\left … \\right`` kept whole)."""
    pieces: list[str] = []
    depth, start, i = 0, 0, 0
    while i < len(term):
        if term.startswith("\\left", i) and not term[i + 5:i + 6].isalpha():
            depth += 1
            i += 5
            continue
        if term.startswith("\\right", i) and not term[i + 6:i + 7].isalpha():
            depth -= 1
            i += 6
            continue
        c = term[i]
        if c == "\\" and term.startswith("\\cdot", i) and depth == 0 and i > 0 and not term[i + 5:i + 6].isalpha():
            pieces.append(term[start:i].rstrip())
            start = i
            i += 5
            continue
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        i += 1
    pieces.append(term[start:])
    return [piece for piece in pieces if piece.strip()]


def _line(lhs: str, terms: list[str], first: bool) -> str:
    body = _fix(" ".join(terms))
    return f"{lhs} &= {body}" if first else f"{lhs} &\\quad {{}} {body}"


#: A table row holds about this many characters of \small text (A4, 2.1 cm margins).
TABLE_WIDTH = 95


def _table(table: Table) -> str:
    """A ``longtable``: it continues on the next page with its header repeated.  A table
    wider than the page is printed as several, each with the first column (the row
    names) and the columns that fit, instead of being scaled or cut."""
    def cell(c: Cell) -> str:
        return _inline(c)

    def wide(c: Cell) -> float:
        return sum(_width(p.src) if isinstance(p, Math) else len(p.text) for p in c) + 2

    n = len(table.header)
    widths = [max([wide(table.header[j])] + [wide(r[j]) for r in table.rows]) for j in range(n)]
    groups: list[list[int]] = []
    group: list[int] = []
    used = widths[0] if n else 0
    for j in range(1, n):
        if group and used + widths[j] > TABLE_WIDTH:
            groups.append(group)
            group, used = [], widths[0]
        group.append(j)
        used += widths[j]
    groups.append(group)
    out = []
    for group in groups:
        cols = [0, *group] if n else []
        header = " & ".join(r"\textbf{" + cell(table.header[j]) + "}" for j in cols) + r" \\"
        lines = [r"{\small", r"\begin{longtable}{" + "".join(table.align[j] for j in cols) + "}", r"\toprule",
                 header, r"\midrule", r"\endfirsthead", r"\toprule", header, r"\midrule", r"\endhead",
                 r"\bottomrule", r"\endlastfoot"]
        lines += [" & ".join(cell(row[j]) for j in cols) + r" \\" for row in table.rows]
        lines += [r"\end{longtable}", "}", ""]
        out.append("\n".join(lines))
    return "\n".join(out)


def _plot(plot: Plot) -> str:
    colors = ["exaccent", "red!70!black", "orange!90!black", "teal", "green!50!black", "violet"]
    options = [r"width=0.8\linewidth", "height=6cm", f"xlabel={{{latex_text(plot.xlabel)}}}",
               f"ylabel={{{latex_text(plot.ylabel)}}}", "grid=major", "grid style={gray!25}",
               "ymin=0" if not plot.log else "ymode=log", "scaled y ticks=false",
               "every axis plot/.append style={thick, mark=none}", "legend pos=north east", "legend cell align=left"]
    lines = [r"\begin{figure}[htbp]", r"\centering", r"\begin{tikzpicture}",
             r"\begin{axis}[" + ", ".join(options) + "]"]
    for i, s in enumerate(plot.series):
        coords = " ".join(f"({x:.6g},{y:.6g})" for x, y in zip(s.x, s.y))
        lines.append(f"\\addplot[color={colors[i % len(colors)]}] coordinates {{{coords}}};")
        if len(plot.series) > 1:
            lines.append(f"\\addlegendentry{{{latex_text(s.label)}}}")
        if s.diverged and s.x:
            lines.append(f"\\addplot[only marks, mark=x, mark size=4pt, color={colors[i % len(colors)]}] "
                         f"coordinates {{({s.x[-1]:.6g},{s.y[-1]:.6g})}};")
    lines += [r"\end{axis}", r"\end{tikzpicture}", r"\caption{" + _inline(plot.caption) + "}", r"\end{figure}", ""]
    return "\n".join(lines)
