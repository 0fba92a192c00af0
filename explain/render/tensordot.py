"""The computation graph at tensor level (``explain graph --level tensor``).

One box per tensor leaf and stage of :func:`explain.tensorgraph.derive_matrix`'s
program, as the matrix form writes the problem: its name, shape, formula, value and
gradient δ (the numbers whole for a small tensor, else its first entries), one edge per
name a stage uses.  The scalar drawing (:mod:`explain.render.dot`) has one box per
entry; this one stays small whatever the sizes of the matrices.
"""

from __future__ import annotations

from typing import Any

import graphviz
import numpy as np

from ..i18n import Messages
from .graphstyle import _EDGE, _FONT, _FONT_ZH, _STYLE, BLANK, _esc, _GraphMath, _wrap, greek
from .tensorprint import formula

#: A tensor with at most this many entries per sample shows all its numbers in its box.
SMALL_TENSOR = 12
#: A per-sample value shows this many samples.
SAMPLES_SHOWN = 2


def _numbers(math: _GraphMath, value: np.ndarray) -> str:
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        return math.number(float(array))
    flat = array.reshape(-1)
    if array.size <= SMALL_TENSOR:
        if array.ndim == 1:
            return "[" + ", ".join(math.number(v) for v in flat) + "]"
        return "[" + ", ".join(_numbers(math, row) for row in array) + "]"
    return f"[{math.number(flat[0])}, {math.number(flat[1])}, … {math.number(flat[-1])}] ({array.size})"


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "1"


def tensor_digraph(md: Any, title: str = "", description: str = "", precision: int = 4, lang: str = "en",
                   blank: bool = False) -> graphviz.Digraph:
    """The tensor-level drawing of a :class:`~explain.tensorgraph.MatrixDerivation`."""
    m = Messages(lang)
    math = _GraphMath(precision=precision)
    font = _FONT_ZH if lang == "zh" else _FONT
    program = md.program
    caption = [f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="16"><B>{_esc(title or m("problem"))}</B></FONT></TD></TR>']
    caption += [f'<TR><TD ALIGN="LEFT">{_esc(line)}</TD></TR>' for line in _wrap(description, 110, 6)]
    caption += [f'<TR><TD ALIGN="LEFT">{_esc(line)}</TD></TR>' for line in _wrap(m("graph_level_tensor"), 110, 4)]
    if program.n_samples > 1:
        caption.append(f'<TR><TD ALIGN="LEFT">{_esc(m("graph_tensor_samples", n=program.n_samples))}</TD></TR>')
    dot = graphviz.Digraph(
        "explain",
        graph_attr={"rankdir": "LR", "fontname": font, "fontsize": "12", "labelloc": "t", "labeljust": "l",
                    "nodesep": "0.3", "ranksep": "0.6", "bgcolor": "white", "pad": "0.2",
                    "label": "<<TABLE BORDER=\"0\" CELLBORDER=\"0\">" + "".join(caption) + "</TABLE>>"},
        node_attr={"shape": "plain", "fontname": font, "fontsize": "11"},
        edge_attr={"fontname": font, "fontsize": "10", "color": _EDGE, "arrowsize": "0.7"},
    )
    grads = {r.name: r for r in (*md.adjoints, *md.gradients)}

    def value_of(name: str, batched: bool) -> np.ndarray:
        value = md.value(name)
        return value[:SAMPLES_SHOWN] if batched else value

    def box(name: str, kind: str, shape: tuple[int, ...], batched: bool, text: str | None) -> None:
        style = _STYLE["loss" if name == md.loss else kind]
        rows = [f"{greek(name)} : {_shape(shape)}" + (" " + m("graph_tensor_per_sample") if batched else "")]
        if text:
            rows += _wrap(f"{greek(name)} = {text}", 44, 3)
        if blank:
            rows.append(f"= {BLANK}")
        else:
            rows.append("= " + _numbers(math, value_of(name, batched)))
        record = grads.get(name)
        grad_row = None
        if record is not None and name != md.loss:
            gvalue = record.value[:SAMPLES_SHOWN] if record.batched else record.value[0]
            grad_row = f"δ = {BLANK if blank else _numbers(math, gvalue)}"
        cells = [f'<TR><TD BGCOLOR="{style["fill"]}" ALIGN="CENTER"><B>{_esc(rows[0])}</B></TD></TR>']
        cells += [f'<TR><TD ALIGN="LEFT">{_esc(r)}</TD></TR>' for r in rows[1:]]
        if grad_row:
            cells.append(f'<TR><TD ALIGN="LEFT"><FONT COLOR="#7a2e00">{_esc(grad_row)}</FONT></TD></TR>')
        rounded = ' STYLE="rounded"' if kind == "parameter" else ""
        dot.node(name, label=(f'<<TABLE BORDER="{2 if name == md.loss else 1}" CELLBORDER="0" CELLSPACING="0" '
                              f'CELLPADDING="3" COLOR="{style["border"]}" BGCOLOR="#ffffff"{rounded}>'
                              + "".join(cells) + "</TABLE>>"))

    for name, kind in program.kinds.items():
        leaf = program.leaves[name]
        box(name, kind, leaf.shape, leaf.batched, None)
    for f in md.forward:
        box(f.name, "stage", f.shape, f.batched, formula(f.formula, math, md.loss))
    for stage in program.stages:
        for used in sorted(stage.tree.names()):
            if used in program.leaves or any(s.name == used for s in program.stages):
                dot.edge(used, stage.name)
    return dot
