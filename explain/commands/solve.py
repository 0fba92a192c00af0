"""``explain solve PROBLEM.toml [--pdf OUT.pdf] [--graph OUT.svg] [--sections …] [--handout]``."""

from __future__ import annotations

import argparse
from typing import Any

from . import emit, use_color


def run(args: argparse.Namespace) -> int:
    from ..api import solve
    from ..problem import load

    if args.graph:
        from .graph import check_graph_path

        check_graph_path(args.graph, "--graph", args.lang)  # before the work, like every output path
    sections, handout = _choices(args)  # a bad --sections is said before the work
    if args.format == "json" and (sections is not None or handout):
        _json_is_whole(args)
    problem = load(args.problem)
    solution = solve(problem, verify=not args.no_verify and _torch_available(), train=not args.no_train,
                     device=args.device, dtype=args.dtype, sections=sections, handout=handout)
    if args.graph:
        from .graph import draw

        from ..render.document import _matrix

        draw(solution.derivation, args.graph, precision=min(args.precision, 4), lang=args.lang,
             matrix=_matrix(solution))
    if args.pdf:
        from ..render.pdf import write_pdf

        write_pdf(solution, args.pdf, lang=args.lang, precision=min(args.precision, 6))
    emit(render_solution(solution, args), args.output, colored=colored(args))
    verification = solution.verification
    return 1 if verification is not None and not verification.passed else 0


def colored(args: argparse.Namespace) -> bool:
    """Whether the text renderers colour this output (then they made user text printable themselves)."""
    return args.format == "text" and use_color() and not args.output


def _torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _choices(args: argparse.Namespace) -> tuple[tuple[str, ...] | None, bool]:
    """``--sections`` and ``--handout`` (absent on commands that have no such flags, such as grad)."""
    from ..render.document import parse_sections

    sections = getattr(args, "sections", None)
    return (parse_sections(sections) if sections is not None else None), bool(getattr(args, "handout", False))


def render_derivation(derivation: Any, args: argparse.Namespace, color: bool = False) -> str:
    """A derivation without reports (``explain grad``) in the chosen document format."""
    from ..api import Solution

    return render_solution(Solution(problem=None, derivation=derivation), args, color=color)  # type: ignore[arg-type]


def render_solution(solution: Any, args: argparse.Namespace, color: bool | None = None) -> str:
    """The solution in ``args.format``: JSON from its dicts, every other format a printer of
    the one document (explain.render.document)."""
    fmt = args.format
    sections, handout = _choices(args)
    if fmt == "json":
        if sections is not None or handout:
            _json_is_whole(args)
        from ..render import json as json_render

        return json_render.dumps(json_render.solution_dict(solution))
    if sections is None:
        sections = getattr(solution, "sections", None)
    handout = handout or bool(getattr(solution, "handout", False))
    if fmt in ("latex", "typst"):
        from ..render.document import outline

        if fmt == "latex":
            from ..render.latex import latex_document, render as print_latex

            if sections is None and not handout:
                return latex_document(solution, lang=args.lang, precision=args.precision)
            from ..render.mathprint import LatexMath

            return print_latex(outline(solution, LatexMath(args.precision, _samples(solution)), args.lang,
                                       sections=sections, handout=handout))
        from ..render.typst import render as print_typst, typst_document

        if sections is None and not handout:
            return typst_document(solution, lang=args.lang, precision=args.precision)
        from ..render.mathprint import TypstMath

        style = TypstMath(args.precision, _samples(solution))
        return print_typst(outline(solution, style, args.lang, sections=sections, handout=handout), {}, style)
    if fmt == "markdown":
        from ..render.markdown import render_solution as md

        return md(solution, precision=args.precision, lang=args.lang, sections=sections, handout=handout)
    from ..render.text import render_solution as text

    if color is None:
        color = use_color() and not args.output
    return text(solution, precision=args.precision, lang=args.lang, color=color, sections=sections, handout=handout)


def _samples(solution: Any) -> frozenset[str]:
    return frozenset(n.name for n in solution.derivation.graph.nodes.values() if n.per_sample)


def _json_is_whole(args: argparse.Namespace) -> None:
    """JSON is the SPEC's contract, always the whole solution: asking it for less is a mistake, said."""
    from ..errors import ExplainError
    from ..i18n import Messages

    raise ExplainError("--format json", Messages(args.lang)("solve_sections_json"))
