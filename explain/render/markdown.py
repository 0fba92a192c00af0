"""Markdown printer of the solution document: for notebooks (``_repr_markdown_``) and ``--format markdown``.

The blocks come from :func:`explain.render.document.build_document` — the same
sections, facts and tables as every other format; math is printed by
:class:`~explain.render.mathprint.LatexMath` inside ``$…$`` and ``$$ … $$``,
which Jupyter, GitHub and most Markdown viewers typeset.
"""

from __future__ import annotations

from typing import Any

from ..derivation import Derivation
from .document import (Cell, Document, Eq, Equations, Facts, Figure, Heading, Inline, Math, Paragraph, Plot, Table,
                       Text, build_document, outline)
from .mathprint import LatexMath


def _escape(text: str) -> str:
    """Escape Markdown (and inline HTML) in text that came from a problem file."""
    out = text.replace("\\", "\\\\")
    for ch in "`*_[]<>#|$":
        out = out.replace(ch, "\\" + ch)
    return out


def style_for(d: Derivation, precision: int) -> LatexMath:
    return LatexMath(precision=precision, sample_symbols=frozenset(n.name for n in d.graph.nodes.values() if n.per_sample))


def render_derivation(d: Derivation, precision: int = 6, lang: str = "en", title: str | None = None,
                      sections: Any = None, handout: bool = False) -> str:
    """The derivation as Markdown with display math."""
    return render(build_document(d, style_for(d, precision), lang, sections=sections, handout=handout, title=title))


def render_solution(solution: Any, precision: int = 6, lang: str = "en", sections: Any = None,
                    handout: bool | None = None) -> str:
    """A solution: the derivation, then verification and training."""
    return render(outline(solution, style_for(solution.derivation, precision), lang, sections=sections,
                          handout=handout))


def render(doc: Document) -> str:
    """Print a :class:`~explain.render.document.Document` as Markdown."""
    out: list[str] = []
    blocks = list(doc.blocks)
    while blocks and isinstance(blocks[0], Paragraph) and blocks[0].kind == "alert":
        out += [f"> **⚠ {_inline(blocks.pop(0).parts)}**", ""]
    out += [f"# {_escape(doc.title)}", ""]
    for block in blocks:
        out += _block(block)
    return "\n".join(out).rstrip("\n") + "\n"


def _block(block: Any) -> list[str]:
    if isinstance(block, Heading):
        return [f"{'#' * (block.level + 1)} {_inline(block.parts)}", ""]
    if isinstance(block, Paragraph):
        text = _inline(block.parts)
        wrap = {"label": "*{}*", "result": "**{}**", "alert": "> **⚠ {}**"}.get(block.kind, "{}")
        return [wrap.format(text), ""]
    if isinstance(block, Facts):
        return [line for label, parts in block.rows for line in (f"**{_escape(label)}:** {_inline(parts)}", "")]
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Equations):
        return ["$$", "\n\\\\[4pt]\n".join(_equation(eq) for eq in block.items), "$$", ""]
    if isinstance(block, (Figure, Plot)):
        return []  # pictures: the PDF and `explain graph` draw them; their numbers are in the tables
    return []


_MD_STYLE = LatexMath()


def _equation(eq: Eq) -> str:
    return _MD_STYLE.equation(eq.lhs, [" ".join(row) for row in eq.rows])


def _inline(parts: list[Inline]) -> str:
    out = []
    for p in parts:
        if isinstance(p, Text):
            out.append(f"**{_escape(p.text)}**" if p.strong else _escape(p.text))
        elif isinstance(p, Math):
            out.append(f"${p.src}$" if p.src else "")
    return "".join(out)


def _cell(cell: Cell) -> str:
    return _inline(cell) or " "  # text is escaped by _inline, | included


def _table(table: Table) -> list[str]:
    rule = {"l": "---", "c": ":---:", "r": "---:"}
    return [
        "| " + " | ".join(_cell(c) for c in table.header) + " |",
        "|" + "|".join(rule.get(a, "---") for a in table.align) + "|",
        *("| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows),
        "",
    ]
