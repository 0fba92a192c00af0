"""``explain solve PROBLEM.toml [--pdf OUT.pdf] [--graph OUT.svg]``."""

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
    problem = load(args.problem)
    solution = solve(problem, verify=not args.no_verify and _torch_available(), train=not args.no_train,
                     device=args.device, dtype=args.dtype)
    if args.graph:
        from .graph import draw

        draw(solution.derivation, args.graph, precision=min(args.precision, 4), lang=args.lang)
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


def render_derivation(derivation: Any, args: argparse.Namespace, color: bool = False) -> str:
    fmt = args.format
    if fmt == "markdown":
        from ..render.markdown import render_derivation as md

        return md(derivation, precision=args.precision, lang=args.lang)
    if fmt in ("latex", "typst"):
        from ..api import Solution

        return render_solution(Solution(problem=None, derivation=derivation), args)  # type: ignore[arg-type]
    from ..render.text import render_derivation as text

    return text(derivation, precision=args.precision, lang=args.lang, color=color)


def render_solution(solution: Any, args: argparse.Namespace) -> str:
    fmt = args.format
    if fmt == "json":
        from ..render import json as json_render

        return json_render.dumps(json_render.solution_dict(solution))
    if fmt == "latex":
        from ..render.latex import latex_document

        return latex_document(solution, lang=args.lang, precision=args.precision)
    if fmt == "typst":
        from ..render.typst import typst_document

        return typst_document(solution, lang=args.lang, precision=args.precision)
    if fmt == "markdown":
        from ..render.markdown import render_solution as md

        return md(solution, precision=args.precision, lang=args.lang)
    from ..i18n import Messages
    from ..render import training as train_command
    from ..render import verification as verify_command

    m = Messages(args.lang)
    text = render_derivation(solution.derivation, args, color=use_color() and not args.output)
    v = solution.verification
    if v is not None and not v.passed:
        rule = "!" * 78
        text = f"{rule}\n{v.banner(m)}\n{rule}\n\n" + text
    if solution.verification is not None:
        text += "\n" + verify_command.render_text(solution.verification, m, args.precision) + "\n"
    if solution.training is not None:
        text += "\n" + train_command.render_text([solution.training], m, args.precision, quiet=True) + "\n"
    return text
