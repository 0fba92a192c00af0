"""``explain grad EXPR --wrt a,b --at a=1,b=2``."""

from __future__ import annotations

import argparse

from . import emit, use_color


def run(args: argparse.Namespace) -> int:
    from ..api import grad
    from ..stage import parse_assignments

    wrt = [w.strip() for w in args.wrt.split(",") if w.strip()] or None
    derivation = grad(args.expr, wrt=wrt, at=parse_assignments(args.at))
    from .solve import colored

    emit(render(derivation, args), args.output, colored=colored(args))
    return 0


def render(derivation: object, args: argparse.Namespace) -> str:
    from ..render import json as json_render

    if args.format == "json":
        return json_render.dumps(json_render.grad_dict(derivation))  # type: ignore[arg-type]
    from .solve import render_derivation

    return render_derivation(derivation, args, color=use_color() and not args.output)
