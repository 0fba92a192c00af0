"""Notebook display: the one door from the domain objects down here to the renderers.

A Derivation, a Verification, a Training, a graded Report and a Solution show
themselves in Jupyter through ``_repr_markdown_`` / ``_repr_svg_``.  Those methods
live on the domain objects (any notebook front end calls them, and tests do), but
the core must not import renderers: so each of them makes one late import, of this
module only, and calls :func:`display`.  ``tests/test_layers.py`` allows exactly this
import, and only inside a function (never at a module's top, so importing the core
loads no renderer); every other import from a lower layer into render/ or
commands/ fails that test.

Registering the display from the render layer instead (IPython's
``for_type_by_name``) would leave the core without even this import, but then
``d._repr_markdown_()`` works only after something imported the render layer, and
only under IPython: a plain method with a late import works in every front end.
"""

from __future__ import annotations

from typing import Any

#: The formats :func:`display` knows, as the ``_repr_<format>_`` method names say.
FORMATS = ("markdown", "svg")


def display(obj: Any, fmt: str = "markdown") -> str | None:
    """``obj`` in a notebook format: Markdown with LaTeX math, or the graph as SVG.

    ``None`` when the object has nothing to show in that format (or Graphviz is
    missing for SVG): the notebook then falls back to the next representation.
    """
    if fmt not in FORMATS:
        raise ValueError(f"no notebook display in format {fmt!r}; choose one of {list(FORMATS)}")
    for kind, show in _displays():
        if isinstance(obj, kind):
            return show(obj, fmt)
    raise TypeError(f"no notebook display for {type(obj).__name__}")


def graph_view(derivation: Any, **options: Any) -> Any:
    """The drawable graph of a derivation (see :class:`explain.render.dot.GraphView`)."""
    from .dot import GraphView

    return GraphView(derivation, **options)


def _displays() -> list[tuple[type, Any]]:
    # Imported here, not at the top: importing this module must stay free, since the
    # domain objects import it from their display methods.
    from ..api import Solution
    from ..check import Report
    from ..derivation import Derivation
    from ..train import Training
    from ..verify import Verification

    return [(Solution, _solution), (Derivation, _derivation), (Verification, _verification),
            (Training, _training), (Report, _report)]


def _derivation(d: Any, fmt: str) -> str | None:
    if fmt == "svg":
        return graph_view(d)._repr_svg_()  # type: ignore[no-any-return]
    from .markdown import render_derivation

    return render_derivation(d)


def _solution(solution: Any, fmt: str) -> str | None:
    if fmt == "svg":
        return _derivation(solution.derivation, fmt)
    from .markdown import render_solution

    return render_solution(solution)


def _verification(v: Any, fmt: str) -> str | None:
    from .verification import render_markdown

    return render_markdown(v) if fmt == "markdown" else None


def _training(t: Any, fmt: str) -> str | None:
    from .training import render_markdown

    return render_markdown([t]) if fmt == "markdown" else None


def _report(r: Any, fmt: str) -> str | None:
    from .grading import render_markdown

    return render_markdown([r], precision=6) if fmt == "markdown" else None


__all__ = ["display", "graph_view", "FORMATS"]
