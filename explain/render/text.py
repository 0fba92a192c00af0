"""Plain-text (terminal) printer of the solution document.

The blocks come from :func:`explain.render.document.build_document`; this
module only lays them out for a terminal: headings underlined, equations
aligned handcalcs-style, tables in columns.  Every line fits ``width``
terminal cells (:func:`terminal_width`): lines break at token boundaries —
between the terms of a sum, then between the factors of a product, then at
spaces — and widths are measured in cells (rich's ``cell_len``), so Chinese
text and tables align.  A table wider than the terminal is split into column
groups, each repeating the first column.

Colour is a light layer on top: headings and results are styled with ANSI codes
only when asked (a terminal, no ``NO_COLOR``), so piped output is clean text.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from typing import Any

from rich.cells import cell_len

from ..derivation import Derivation
from ..sanitize import printable
from .document import (Document, Eq, Equations, Facts, Figure, Heading, Inline, Math, Paragraph, Plot, Table, Text,
                       build_document, outline)
from .mathprint import TextMath

_BOLD, _CYAN, _GREEN, _DIM, _RESET = "\033[1m", "\033[36m", "\033[32m", "\033[2m", "\033[0m"
#: Narrower than this, nothing is readable: wrap at this width anyway.
MIN_WIDTH = 40
#: Separator between table columns.
_GAP = "  "


def terminal_width() -> int:
    """``COLUMNS`` when set, else the terminal's width, else 80 (a pipe, a file)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.strip().isdigit() and int(columns) > 0:
        return max(int(columns), MIN_WIDTH)
    return max(shutil.get_terminal_size((80, 24)).columns, MIN_WIDTH)


def style_for(d: Derivation, precision: int) -> TextMath:
    sample_symbols = frozenset(n.name for n in d.graph.nodes.values() if n.per_sample)
    return TextMath(precision=precision, sample_symbols=sample_symbols)


def render_derivation(
    d: Derivation, precision: int = 6, lang: str = "en", color: bool = False, title: str | None = None,
    sections: Any = None, handout: bool = False, width: int | None = None,
) -> str:
    """The derivation as text: givens, forward, locals, backward, chain rule, gradients."""
    doc = build_document(d, style_for(d, precision), lang, sections=sections, handout=handout, title=title)
    return render(doc, width=width, color=color)


def render_solution(
    solution: Any, precision: int = 6, lang: str = "en", color: bool = False,
    sections: Any = None, handout: bool | None = None, width: int | None = None,
) -> str:
    """A solution as text: the derivation, then verification and training."""
    doc = outline(solution, style_for(solution.derivation, precision), lang, sections=sections, handout=handout)
    return render(doc, width=width, color=color)


# -- the printer ------------------------------------------------------------------------
def render(doc: Document, width: int | None = None, color: bool = False) -> str:
    """Print a :class:`~explain.render.document.Document` as text of at most ``width`` cells a line."""
    return _Printer(width or terminal_width(), color).document(doc)


class _Printer:
    def __init__(self, width: int, color: bool) -> None:
        self.width = max(width, MIN_WIDTH)
        self.color = color
        self.lines: list[str] = []
        self.indent = ""
        self.lead = ""  # a level-2 heading, printed at the start of the next paragraph

    def document(self, doc: Document) -> str:
        blocks = list(doc.blocks)
        alerts = []
        while blocks and isinstance(blocks[0], Paragraph) and blocks[0].kind == "alert":
            alerts.append(blocks.pop(0))
        for alert in alerts:  # a failed verification: impossible to miss, above everything
            rule = "!" * min(78, self.width)
            self.lines += [rule, *self._wrap(_plain(alert.parts)), rule, ""]
        self._heading(doc.title, "═", _BOLD + _CYAN, _CYAN)
        for block in blocks:
            self._block(block)
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        return "\n".join(self.lines) + "\n"

    # -- blocks -----------------------------------------------------------------------
    def _block(self, block: Any) -> None:
        if not (isinstance(block, Equations) or isinstance(block, Paragraph) and (
                block.kind == "label" or block.kind == "note" and self.indent)):
            self.indent = ""  # equations under a label ("Sum over paths:") are indented, until the next block
        if isinstance(block, Heading):
            if block.level == 1:
                self._heading(_plain(block.parts), "─", _BOLD, "")
            else:  # "w: 8 path(s) from w to the loss": the parameter's name leads its first line
                if self.lines[-1:] != [""]:
                    self.lines.append("")
                self.lead = _plain(block.parts) + ": "
        elif isinstance(block, Paragraph):
            self._paragraph(block)
        elif isinstance(block, Facts):
            for label, parts in block.rows:
                self.lines += self._wrap(f"{label}: {_plain(parts)}", hang="  ")
        elif isinstance(block, Table):
            self._table(block)
        elif isinstance(block, Equations):
            for eq in block.items:
                self.lines += [self.indent + line for line in self._equation(eq, len(self.indent))]
        elif isinstance(block, (Figure, Plot)):
            pass  # pictures: the PDF and the graph command draw them; their numbers are in the tables

    def _heading(self, text: str, rule: str, code: str, rule_code: str) -> None:
        if self.lines and self.lines[-1]:
            self.lines.append("")
        wrapped = self._wrap(text)
        self.lines += [self._style(line, code) for line in wrapped]
        self.lines.append(self._style(rule * min(max(cell_len(x) for x in wrapped), self.width), rule_code))

    def _paragraph(self, p: Paragraph) -> None:
        text = _plain(p.parts)
        if p.kind == "label":
            self.lines += ["  " + line for line in self._wrap(f"{text}:", width=self.width - 2)]
            self.indent = "    "
            return
        code = {"note": _DIM, "result": _BOLD + _GREEN, "alert": _BOLD}.get(p.kind, "")
        if self.lead:
            text, code, self.lead = self.lead + text, _BOLD + _GREEN, ""
        lines = self._wrap(text, width=self.width - len(self.indent))
        self.lines += [self.indent + self._style(line, code) for line in lines]

    def _style(self, text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if self.color and code else text

    # -- wrapping ---------------------------------------------------------------------
    def _wrap(self, text: str, hang: str = "", width: int | None = None) -> list[str]:
        """Words (and CJK characters, which need no spaces to break) filled to the width."""
        width = width or self.width
        out: list[str] = []
        for raw in printable(text).split("\n"):
            out += _fill(_words(raw), width, "", hang, " ")
        return out

    def _equation(self, eq: Eq, indent: int = 0) -> list[str]:
        """``lhs = row`` lines, rows aligned at ``=``; a row too long breaks between its terms
        (then factors, then spaces), the continuation indented under the row."""
        width = self.width - indent
        lhs = printable(eq.lhs)
        if not eq.rows:
            return [lhs]
        pad = " " * cell_len(lhs)
        if cell_len(lhs) + 3 > width // 2:  # a long left side: the rows go below it
            first, lead, cont = [lhs], "    = ", "      "
        else:
            first, lead, cont = [], None, None
        lines = list(first)
        for i, row in enumerate(eq.rows):
            start = lead or (f"{lhs} = " if i == 0 else f"{pad} = ")
            indent = cont or pad + "   "
            tokens = [t for term in row for t in _tokens(printable(term))]
            lines += _fill(tokens, width, start, indent, " ")
        return lines

    # -- tables -----------------------------------------------------------------------
    def _table(self, table: Table) -> None:
        header = [printable(_plain(c)) for c in table.header]
        rows = [[printable(_plain(c)) for c in row] for row in table.rows]
        n = len(header)
        rows = [r + [""] * (n - len(r)) for r in rows]
        align = (table.align + "l" * n)[:n]
        widths = [max(cell_len(r[i]) for r in [header, *rows]) for i in range(n)]
        for group in _column_groups(widths, self.width):
            fit = _fit([widths[i] for i in group], self.width)
            if self.lines[-1:] != [""]:
                self.lines.append("")
            self._row([header[i] for i in group], fit, "l" * len(group))
            self.lines.append(_GAP.join("─" * w for w in fit))
            for r in rows:
                self._row([r[i] for i in group], fit, "".join(align[i] for i in group))
        self.lines.append("")

    def _row(self, cells: list[str], widths: list[int], align: str) -> None:
        """One table row; a cell wider than its column wraps onto more lines (math at its
        terms and factors, words at spaces)."""
        wrapped = [[c] if cell_len(c) <= w else _fill(_tokens(c), w, "", "  ", " ") for c, w in zip(cells, widths)]
        for k in range(max(len(c) for c in wrapped)):
            line = [c[k] if k < len(c) else "" for c in wrapped]
            self.lines.append(_line(line, widths, align))


def _fit(widths: list[int], width: int) -> list[int]:
    """Column widths that fit ``width``: the widest columns give up room, none below 8 cells."""
    widths = list(widths)
    while sum(widths) + len(_GAP) * (len(widths) - 1) > width:
        i = max(range(len(widths)), key=lambda k: widths[k])
        excess = sum(widths) + len(_GAP) * (len(widths) - 1) - width
        if widths[i] <= 8:
            break
        widths[i] = max(8, widths[i] - excess)
    return widths


def _line(cells: list[str], widths: list[int], align: str) -> str:
    out = []
    for cell, w, a in zip(cells, widths, align):
        space = " " * max(w - cell_len(cell), 0)
        out.append(space + cell if a == "r" else cell + space)
    return _GAP.join(out).rstrip()


def _column_groups(widths: list[int], width: int) -> list[list[int]]:
    """Columns in groups that fit ``width``, each group after the first repeating column 0."""
    if not widths:
        return []
    groups: list[list[int]] = []
    current = [0]
    used = widths[0]
    for i in range(1, len(widths)):
        if used + len(_GAP) + widths[i] > width and len(current) > 1:
            groups.append(current)
            current, used = [0], widths[0]
        current.append(i)
        used += len(_GAP) + widths[i]
    groups.append(current)
    return groups


def _plain(parts: Iterable[Inline]) -> str:
    return "".join(p.text if isinstance(p, Text) else p.src for p in parts if isinstance(p, (Text, Math)))


_CJK = re.compile(r"([\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef])")


def _words(text: str) -> list[str]:
    """Break points of prose: spaces, and between CJK characters (marked by a zero-width join)."""
    words: list[str] = []
    for word in text.split(" "):
        pieces = [p for p in _CJK.split(word) if p]
        if len(pieces) > 1:
            words.append("\x00".join(pieces))  # \x00: may break here, without a space
        else:
            words.append(word)
    out: list[str] = []
    for w in words:
        parts = w.split("\x00")
        out += [parts[0]] + ["\x00" + p for p in parts[1:]]
    return out


def _tokens(term: str) -> list[str]:
    """Break points of printed math: between the factors of a product (`` · ``), then at spaces."""
    tokens: list[str] = []
    for i, factor in enumerate(term.split(" · ")):
        pieces = factor.split(" ")
        if i:
            pieces[0] = "· " + pieces[0]
        tokens += pieces
    return tokens


def _fill(tokens: list[str], width: int, first: str, indent: str, sep: str) -> list[str]:
    """Tokens joined by ``sep`` into lines of at most ``width`` cells; a token starting with
    ``\\x00`` joins without a separator; a token too long for any line is cut."""
    lines: list[str] = []
    line = first
    empty = True
    for token in tokens:
        glue = "" if token.startswith("\x00") else sep
        token = token.lstrip("\x00")
        if not token and not empty:
            continue
        candidate = line + (glue if not empty else "") + token
        if cell_len(candidate) <= width or empty and cell_len(line) + cell_len(token) <= width:
            line, empty = candidate, False
            continue
        if not empty:
            lines.append(line.rstrip())
            line = indent
        while cell_len(line) + cell_len(token) > width and cell_len(line) < width:  # one token wider than a line
            room = width - cell_len(line)
            head = _cut(token, room)
            lines.append(line + head)
            token = token[len(head):]
            line = indent
        line, empty = line + token, False
    if not empty or line.strip():
        lines.append(line.rstrip())
    elif not lines:
        lines.append(first.rstrip())
    return lines


def wrap_prose(text: str, first: str = "", indent: str = "", width: int | None = None) -> list[str]:
    """Words wrapped to ``width`` cells (the terminal's by default) at spaces and between
    CJK characters; the first line starts with ``first``, the others with ``indent``."""
    return _fill(_words(text), width or terminal_width(), first, indent, " ")


def _cut(token: str, room: int) -> str:
    """The longest start of ``token`` that fits ``room`` cells (at least one character)."""
    out = ""
    for c in token:
        if cell_len(out + c) > room and out:
            break
        out += c
    return out
