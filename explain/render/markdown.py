"""Markdown with LaTeX math: for notebooks (``_repr_markdown_``) and ``--format markdown``.

The same sections and equations as the text renderer; math is printed by
:class:`~explain.render.mathprint.LatexMath` inside ``$$ … $$`` blocks, which
Jupyter, GitHub and most Markdown viewers typeset.
"""

from __future__ import annotations

from typing import Any

from ..derivation import Derivation
from ..stage import EXPRESSION_SOURCE
from ..i18n import Messages
from .mathprint import LatexMath
from .steps import StepWriter, shown_edges, shown_nodes


def _escape(text: str) -> str:
    """Escape Markdown (and inline HTML) in text that came from a problem file."""
    out = text.replace("\\", "\\\\")
    for ch in "`*_[]<>#|$":
        out = out.replace(ch, "\\" + ch)
    return out


def _math(block: str) -> str:
    return f"$$\n{block}\n$$"


def render_derivation(d: Derivation, precision: int = 6, lang: str = "en", title: str | None = None) -> str:
    """The whole derivation as Markdown with display math."""
    m = Messages(lang)
    g = d.graph
    style = LatexMath(precision=precision, sample_symbols=frozenset(n.name for n in g.nodes.values() if n.per_sample))
    w = StepWriter(d, style)
    out: list[str] = [f"# {_escape(title if title is not None else (g.title or m('problem')))}", ""]
    if g.description:
        out += [_escape(g.description), ""]
    for key, kind in (("parameters", "parameter"), ("values", "value")):
        names = [n.name for n in g.nodes.values() if n.kind == kind]
        if names:
            out.append(f"**{m(key)}:** " + ", ".join(
                f"${style.name(n)} = {style.number(g.leaf_values[n])}$" for n in names))
            out.append("")

    out += [f"## {m('forward_pass')}", "", m("forward_intro"), ""]
    if g.is_data_problem:
        out += [m("per_sample_note", n=g.n_samples, loss=g.loss), ""]
    out.append(_math("\n\\\\[4pt]\n".join(w.forward(s).render(style) for s in d.forward)))
    key = "result_is" if g.source == EXPRESSION_SOURCE else "loss_is"
    out += ["", f"**{m(key, name=g.loss, value=style.number(d.loss_value))}**", ""]

    out += [f"## {m('local_partials')}", "", m("local_intro"), ""]
    out.append(_math("\n\\\\[4pt]\n".join(w.local(s).render(style) for s in shown_edges(d))))

    out += ["", f"## {m('backward_pass')}", "", m("backward_intro"), ""]
    steps = [w.adjoint(d.adjoints[n]).render(style) for n in shown_nodes(d) if g.nodes[n].kind != "parameter"]
    out.append(_math("\n\\\\[4pt]\n".join(steps)))

    out += ["", f"## {m('chain_rule')}", "", m("chain_intro"), ""]
    for name, gradient in d.gradients.items():
        out += [f"### ${style.name(name)}$", "", m("path_count", count=gradient.path_count, name=name), ""]
        chain = w.chain(gradient)
        if chain is not None:
            out += [f"*{m('path_form')}*", "", _math(chain.render(style)), ""]
        elif gradient.path_count:
            out += [m("too_many_paths", count=gradient.path_count, name=name), ""]
        if gradient.path_count:
            out += [f"*{m('delta_form')}*", "", _math(w.delta(gradient).render(style)), ""]

    out += [f"## {m('gradients')}", "", f"| {m('parameter')} | {m('value')} | {m('gradient')} |", "|---|---:|---:|"]
    for name, gradient in d.gradients.items():
        out.append(f"| ${style.name(name)}$ | {style.number(g.leaf_values[name])} | {style.number(gradient.value)} |")
    return "\n".join(out) + "\n"


def render_solution(solution: Any, precision: int = 6, lang: str = "en") -> str:
    """A solution: the derivation, then verification and training summaries."""
    from . import training as train_command
    from . import verification as verify_command
    from ..i18n import Messages

    m = Messages(lang)
    text = render_derivation(solution.derivation, precision=precision, lang=lang)
    v = solution.verification
    if v is not None and not v.passed:
        text = f"> **⚠ {v.banner(m)}**\n\n" + text
    if solution.verification is not None:
        text += "\n" + verify_command.render_markdown(solution.verification, m, precision) + "\n"
    if solution.training is not None:
        text += "\n" + train_command.render_markdown([solution.training], m, precision, quiet=True) + "\n"
    return text
