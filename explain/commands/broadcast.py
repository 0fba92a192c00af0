"""``explain broadcast "(3,)" "(3,1)"``: broadcasting explained step by step.

Incompatible shapes are bad input (exit 2) with the dimension that clashes.
A small example with the values 1, 2, 3, … (as in seed 001) is shown when the
result has at most :data:`EXAMPLE_LIMIT` elements.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import ExplainError
from ..i18n import Messages
from ..render.tables import markdown_table, rich_table, text_table
from . import emit, use_color
from .verify import check_format

EXAMPLE_LIMIT = 36


def run(args: argparse.Namespace) -> int:
    """Explain the broadcast of the two shapes; 2 (via ExplainError) when they do not broadcast."""
    from ..broadcast import explain_broadcast

    check_format(args.format, "broadcast")
    m = Messages(args.lang)
    b = explain_broadcast(*args.shapes)
    if not b.compatible:
        raise ExplainError(f"broadcast {' '.join(args.shapes)}", conflict_message(b, m))
    if args.format == "json":
        emit(json.dumps(b.to_dict(), indent=2), args.output)
    elif args.format == "markdown":
        emit(render(b, m, markdown=True), args.output)
    elif use_color() and not args.output:
        _print_rich(b, m)
    else:
        emit(render(b, m), args.output)
    return 0


def conflict_message(b: Any, m: Messages) -> str:
    step = b.conflict
    sizes = ", ".join(f"{n} {d}" for n, d in zip(b.names, step.sizes) if d is not None)
    return m("broadcast_incompatible", position=step.position, axis=step.axis, sizes=sizes)


def _shape(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))


def _aligned(b: Any) -> list[str]:
    width = max(len(str(d)) for a in b.aligned for d in a if d is not None) if any(b.shapes) else 1
    lines = []
    for name, row in zip(b.names, b.aligned):
        cells = ", ".join(("·" if d is None else str(d)).rjust(width) for d in row)
        lines.append(f"{name}: ({cells})")
    return lines


def _step_rows(b: Any, m: Messages) -> tuple[list[str], list[list[str]]]:
    heads = [m("broadcast_dimension"), *b.names, m("broadcast_result"), m("broadcast_rule")]
    rows = []
    for step in b.steps:
        notes = []
        for name, size in zip(b.names, step.sizes):
            if name in step.repeated:
                key = "broadcast_rule_added" if size is None else "broadcast_rule_stretched"
                notes.append(m(key, name=name, size=step.result))
        rule = "; ".join(notes) if notes else m("broadcast_rule_same")
        rows.append([m("broadcast_position", position=step.position, axis=step.axis),
                     *("—" if d is None else str(d) for d in step.sizes), str(step.result), rule])
    return heads, rows


def _gradient_rows(b: Any, m: Messages) -> tuple[list[str], list[list[str]]]:
    heads = [m("broadcast_operand"), m("broadcast_shape"), m("broadcast_summed"), "NumPy", "PyTorch"]
    rows = []
    for g in b.gradients:
        summed = [m("broadcast_axis_away", axis=a) for a in g.summed_away]
        summed += [m("broadcast_axis_kept", axis=len(g.summed_away) + a) for a in g.summed_kept]
        rows.append([g.operand, _shape(g.shape), ", ".join(summed) or m("broadcast_nothing"), g.numpy, g.torch])
    return heads, rows


def _example(b: Any) -> list[str] | None:
    import numpy as np

    if b.result is None or int(np.prod(b.result)) > EXAMPLE_LIMIT or len(b.result) > 3:
        return None
    arrays = [np.arange(1, int(np.prod(s)) + 1, dtype=float).reshape(s) for s in b.shapes]
    lines = []
    for name, a in zip(b.names, arrays):
        lines.append(f"{name} = " + np.array2string(a, prefix=f"{name} = "))
    total = arrays[0]
    for a in arrays[1:]:
        total = total + a
    label = " + ".join(b.names) + " = "
    lines.append(label + np.array2string(total, prefix=label))
    return [row for line in lines for row in line.split("\n")]


def _sections(b: Any, m: Messages) -> list[tuple[str, Any]]:
    """(kind, content) items in order: ``text``, ``table`` (heads, rows), ``code`` (lines)."""
    operands = ", ".join(f"{n} {_shape(s)}" for n, s in zip(b.names, b.shapes))
    items: list[tuple[str, Any]] = [
        ("heading", m("broadcast_heading", operands=operands)),
        ("text", m("broadcast_align")), ("code", _aligned(b)),
        ("text", m("broadcast_compare")), ("table", _step_rows(b, m)),
        ("text", m("broadcast_result_is", shape=_shape(b.result))),
        ("text", m("broadcast_gradient_intro", shape=_shape(b.result))), ("table", _gradient_rows(b, m)),
    ]
    example = _example(b)
    if example:
        items += [("text", m("broadcast_example")), ("code", example)]
    return items


def render(b: Any, m: Messages | None = None, markdown: bool = False) -> str:
    """The explanation as plain text or Markdown."""
    m = m or Messages("en")
    out: list[str] = []
    for kind, content in _sections(b, m):
        if kind == "heading":
            out += [f"### {content}" if markdown else content, ""]
        elif kind == "text":
            out += [content, ""]
        elif kind == "code":
            out += (["```text", *content, "```"] if markdown else [f"  {line}" for line in content]) + [""]
        else:
            out += [markdown_table(*content) if markdown else text_table(*content), ""]
    return "\n".join(out).rstrip()


def _print_rich(b: Any, m: Messages) -> None:
    from rich.console import Console

    console = Console(highlight=False)
    for kind, content in _sections(b, m):
        if kind == "heading":
            console.print(content, style="bold", markup=False)
        elif kind == "text":
            console.print(content, markup=False)
        elif kind == "code":
            for line in content:
                console.print(f"  {line}", style="cyan", markup=False)
        else:
            console.print(rich_table("", *content))
        console.print()
