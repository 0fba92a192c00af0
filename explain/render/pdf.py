"""The worked solution as a PDF.

The document itself — the blocks every format prints — is built by
:func:`explain.render.document.build_document`; the Typst printer
(:mod:`explain.render.typst`) prints it and this module compiles the result.

:func:`solution_pdf` draws the computation graph with Graphviz into a
temporary folder (as PDF: exact fonts, vector; left out with a warning when
Graphviz is missing), writes the Typst source beside it and compiles it with
the ``typst`` package — no system fonts are read for English; Chinese adds
the CJK font found by :mod:`explain.render.fonts`.  The loss curve is drawn by
Typst itself, from the training history.  :func:`write_pdf` writes the result
atomically.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

from ..errors import ExplainError
from ..i18n import Messages
# The document model moved to explain.render.document; its names stay importable from
# here for the printers and callers that know them under this module.
from .document import (  # noqa: F401
    DATA_ROWS, HISTORY_COLUMNS, HISTORY_ROWS, PATHS_SHOWN, PLOT_POINTS, Block, Cell, Document, Eq,
    Equations, Facts, Figure, Heading, Inline, Math, Paragraph, Plot, Series, Table, Text, axis, build_document,
    loss_plot, outline, split_terms)


# -- the PDF --------------------------------------------------------------------------
def _draw_graph(solution: Any, folder: Path, precision: int, lang: str) -> tuple[Path, float] | None:
    """The computation graph as a PDF drawn by Graphviz (exact fonts, vector), and the
    smallest type size in it (pt); None when it cannot be drawn here: the worked
    solution is still worth having."""
    try:
        from .dot import graph_dot, run_dot
    except ImportError:
        return None
    path = folder / "graph.pdf"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            from .document import _matrix

            source = graph_dot(solution.derivation, None, "auto", precision, lang, matrix=_matrix(solution))
            # A file of our own temporary folder, written directly: the command's
            # all-or-none outputs (explain.files) are the user's files, not this one.
            path.write_bytes(run_dot(source, "pdf", lang))
        except FileNotFoundError:  # no Graphviz: say how to get it
            problem = Messages(lang)("graph_no_dot_svg")
        except (ExplainError, OSError) as error:
            problem = str(error)
        else:
            problem = None
    if problem is not None:  # said outside the recording above, so that the user sees it
        warnings.warn(problem, stacklevel=2)
        return None
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return path, graph_font_size(source)


def graph_font_size(dot_source: str) -> float:
    """The smallest type size a DOT source asks for (``fontsize=…``, ``POINT-SIZE="…"``);
    Graphviz's default, 14, when it names none."""
    sizes = [float(x) for x in re.findall(r'(?:fontsize\s*=\s*"?|POINT-SIZE\s*=\s*")([0-9.]+)', dot_source,
                                          flags=re.IGNORECASE)]
    return min(sizes, default=14.0)


def solution_pdf(solution: Any, lang: str = "en", precision: int = 4) -> bytes:
    """The worked solution as PDF bytes (graph and loss curve included when available).

    Chinese needs a CJK font: one is found automatically (see
    :mod:`explain.render.fonts`); without one this raises
    :class:`~explain.errors.ExplainError` naming the font packages to install.
    """
    import typst

    from .fonts import require_cjk_font
    from .typst import typst_document

    Messages(lang)  # an unknown language is an ExplainError before any work
    cjk = require_cjk_font(lang) if lang == "zh" else None
    with tempfile.TemporaryDirectory(prefix="explain-pdf-") as tmp:
        folder = Path(tmp)
        graph = _draw_graph(solution, folder, precision, lang)
        source = typst_document(solution, lang=lang, precision=precision, graph_path=graph[0].name if graph else None,
                                cjk=cjk, graph_font=graph[1] if graph else 10.0)
        main = folder / "solution.typ"
        main.write_text(source, encoding="utf-8")
        try:
            pdf = typst.compile(str(main), root=str(folder), font_paths=list(cjk.folders) if cjk else [],
                                ignore_system_fonts=True)
        except typst.TypstError as error:  # a bug of ours, not bad input: say what Typst said
            reason = getattr(error, "diagnostic", "") or str(error)
            raise RuntimeError(Messages(lang)("pdf_compile_failed", reason=reason)) from error
    assert isinstance(pdf, bytes)
    return _without_suspects_false(pdf)


#: Typst marks its tagged PDF ``/MarkInfo<</Marked true/Suspects false>>``, which is
#: correct, but poppler (pdfinfo, pdftotext, evince …) reports "Syntax Error: Suspects
#: object is wrong type (boolean)" for ``false``: its check only accepts ``true``.
#: ``false`` is the default, so the entry is blanked out with spaces of the same length,
#: which keeps every byte offset of the cross-reference table valid.
_MARK_INFO = b"/MarkInfo<</Marked true/Suspects false>>"


def _without_suspects_false(pdf: bytes) -> bytes:
    if pdf.count(_MARK_INFO) != 1:  # another Typst writes it otherwise: leave the file alone
        return pdf
    return pdf.replace(_MARK_INFO, b"/MarkInfo<</Marked true" + b" " * len(b"/Suspects false") + b">>")


def write_pdf(solution: Any, path: str | Path, lang: str = "en", precision: int = 4) -> None:
    """Write the worked solution to ``path`` as PDF; nothing is left behind on failure."""
    from ..files import write_atomic

    write_atomic(path, solution_pdf(solution, lang=lang, precision=precision))
