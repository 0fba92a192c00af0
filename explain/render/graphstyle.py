"""What the two drawings of the graph share (:mod:`explain.render.dot`, one box per node;
:mod:`explain.render.tensordot`, one box per tensor): colours, fonts, names, escaping."""

from __future__ import annotations

import html
import re
import textwrap

from sympy.printing.pretty.pretty_symbology import greek_unicode

from .mathprint import TextMath

#: What a blank drawing shows where a number would be: a line to write on.
BLANK = "________"

#: Print-friendly colours: pale fills that survive greyscale, dark borders.
_STYLE: dict[str, dict[str, str]] = {
    #         header fill           border
    "parameter": {"fill": "#fde3bd", "border": "#b35c00"},
    "value": {"fill": "#e4e4e4", "border": "#595959"},
    "data": {"fill": "#dcefd6", "border": "#3b7030"},
    "stage": {"fill": "#d6e6f5", "border": "#2a5b8c"},
    "neuron": {"fill": "#d6e6f5", "border": "#2a5b8c"},
    "loss": {"fill": "#f6d3d3", "border": "#9e1b1b"},
}
_EDGE, _EDGE_TEXT, _GRAD_TEXT = "#555555", "#333333", "#7a2e00"
_FONT = "Helvetica,Arial,DejaVu Sans,sans-serif"
_FONT_ZH = "Helvetica,Arial,Noto Sans CJK SC,Source Han Sans SC,WenQuanYi Micro Hei,sans-serif"


# -- names ------------------------------------------------------------------------------
_NAME_PART = re.compile(r"([A-Za-z]+)(\d*)")


def greek(name: str) -> str:
    """A name with Greek letter names as letters: ``alpha`` → α, ``lambda_2`` → λ_2, ``w_eta`` → w_η.

    The letters are SymPy's (the same table its pretty printer uses), as the PDF's
    Typst and LaTeX printers take theirs from SymPy; the rest of the name stays as written.
    """
    parts = []
    for part in name.split("_"):
        m = _NAME_PART.fullmatch(part)
        letter = greek_unicode.get(m.group(1)) if m else None
        parts.append(letter + m.group(2) if m and letter else part)
    return "_".join(parts)


class _GraphMath(TextMath):
    """The terminal's math printer, with Greek names as letters (a picture is not copy-pasted)."""

    def _symbol(self, name: str, sample: bool) -> str:
        return super()._symbol(greek(name), sample)


# -- escaping -------------------------------------------------------------------------
# Control characters and Unicode non-characters (U+FFFE, U+FFFF, U+FDD0–U+FDEF): Graphviz's
# XML parser rejects them ("not well-formed"), so a title with one would make the graph undrawable.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufdd0-\ufdef\ufffe\uffff]")


def _esc(text: str) -> str:
    """Text for inside an HTML-like label: markup characters become entities.

    ``&``, ``<``, ``>``, ``"`` and ``'`` are escaped; control characters are dropped
    (Graphviz rejects them), and a newline becomes a line break.  A backslash is
    doubled: Graphviz expands ``\\G``, ``\\N``, ``\\L`` (graph, node name…) in the text of
    HTML-like labels too, even written as the entity ``&#92;``, and reads ``\\\\`` as one.
    """
    text = _CONTROL.sub("", str(text)).replace("\\", "\\\\")
    return "<BR/>".join(html.escape(line, quote=True) for line in text.split("\n"))


def _wrap(text: str, width: int, max_lines: int) -> list[str]:
    """Wrap at spaces; past ``max_lines`` the last line ends with an ellipsis."""
    lines: list[str] = []
    for paragraph in (text or "").splitlines():
        lines.extend(textwrap.wrap(paragraph, width, break_long_words=True, break_on_hyphens=False) or [""])
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: width - 2] + " …"
    return lines
