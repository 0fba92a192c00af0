"""The annotated computation graph, drawn with Graphviz.

A renderer like the others: it walks the same :class:`~explain.derivation.Derivation`
(nodes, edges with their local derivatives, forward values, adjoints) and builds a
:class:`graphviz.Digraph`.  The ``graphviz`` package quotes node IDs, runs Graphviz's
``dot`` (no shell; the DOT goes to its standard input, so nothing from a problem file
ever reaches a command line) and displays the drawing in notebooks.

Everything user-derived (title, description, names, formulas) is printed inside
HTML-like labels and escaped there (:func:`_esc`), and node IDs are quoted by the
package: a title such as ``"];evil[label="x`` or ``<b>`` shows up as text, never as DOT.

The drawing is laid out in columns, as declared: every box gets a column (its depth
from the inputs; a parameter or input sits one column before its first consumer) and
a place in it, and each column is a ``rank=same`` subgraph chained by invisible edges
in that order — units top to bottom in the order they are declared, each layer's
parameters beside the unit they feed.

Levels of drawing:

* ``operation`` — one box per graph node, as the user staged it;
* ``stage`` — one box per neuron: a stage that applies one function to one other
  stage used by nothing else (``out_h1 = sigmoid(in_h1)``) is drawn in the same box
  as that pre-activation, with the local derivative between them inside the box;
* ``layer`` — one box per layer (units, weights, inputs) with the range of their
  values: what ``auto`` draws for networks too big for one box per neuron.

``auto`` picks ``stage`` when the graph looks like a network (some linear
combination of weights feeds an activation), ``layer`` when such a network has more
than :data:`NUMERIC_LABEL_EDGES` edges, ``operation`` otherwise.

``blank=True`` draws the structure and the names without a number (formulas of the
forward pass stay, values, gradients and local derivatives are blanks): a handout.
"""

from __future__ import annotations

import difflib
import re
import shutil
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import graphviz
import numpy as np
import sympy as sp

from ..errors import ExplainError
from ..graph import Graph, Node
from ..i18n import Messages
from .graphstyle import (_EDGE, _EDGE_TEXT, _FONT, _FONT_ZH, _GRAD_TEXT, _STYLE, BLANK, _esc, _GraphMath,  # noqa: F401
                         _wrap, greek)

if TYPE_CHECKING:  # importing the explain.derive module would shadow explain.derive(), the function
    from ..derivation import Derivation

FORMATS = ("svg", "png", "pdf", "dot")
LEVELS = ("auto", "operation", "stage", "layer", "tensor")

#: Up to this many drawn edges, each edge shows ``∂dst/∂src = formula = value`` (a 3-4-4-2
#: network has 76: in small boxes on their edges, the full labels stay legible).
FULL_LABEL_EDGES = 100
#: Up to this many, only the value; beyond, no edge labels (dot's layout of
#: labelled edges grows quickly: each label is a node of its own).  Networks
#: with more edges are drawn one box per layer unless ``--level stage`` is asked.
NUMERIC_LABEL_EDGES = 150
#: Beyond this many drawn edges, splines are straight lines (routing curves is slow).  In columns
#: of fixed order, curves cost little: 0.21 s against 0.17 s for the 1,876 edges of 16-32-32-10.
STRAIGHT_EDGES = 2000
#: Characters per row inside a box before a formula wraps.
_ROW_WIDTH = 44
_HIGHLIGHT = "#d9480f"
_IN_PORT, _OUT_PORT = "pre", "post"
_DIM_FILL, _DIM_BORDER, _DIM_TEXT = "#f3f3f3", "#c9c9c9", "#a0a0a0"


class GraphvizMissingWarning(UserWarning):
    """Graphviz's ``dot`` is not installed: the DOT source was written instead."""


# -- levels -------------------------------------------------------------------------
def neuron_pairs(graph: Graph) -> dict[str, str]:
    """Pre-activation → activation pairs that a ``stage`` drawing merges into one box.

    ``post`` qualifies when its expression is one function applied to one other
    stage ``pre`` (other arguments constant) and ``pre`` is used by ``post`` only:
    then nothing is hidden by drawing the two as one neuron.
    """
    pairs: dict[str, str] = {}
    for node in graph.stages:
        expr = node.expr
        if not isinstance(expr, sp.Function) or len(node.inputs) != 1:
            continue
        pre = graph.nodes[node.inputs[0]]
        if pre.is_leaf or pre.name in pairs.values() or graph.consumers(pre.name) != [node.name]:
            continue
        pairs[pre.name] = node.name
    return pairs


def _is_linear_combination(node: Node, graph: Graph) -> bool:
    """``w1·x1 + w3·x2 (+ b)``: a sum whose terms are products of leaves/stages with a parameter."""
    expr = node.expr
    if expr is None or not expr.is_Add:
        return False
    parameters = {graph.nodes[p].symbol for p in graph.parameters}
    weighted = 0
    for term in expr.args:
        if term.is_Mul and term.free_symbols & parameters:
            weighted += 1
        elif not (term.is_Symbol or term.is_Number):
            return False
    return weighted > 0


def resolve_level(graph: Graph, level: str = "auto") -> str:
    """``operation``, ``stage`` or ``layer``; ``auto`` is ``stage`` (``layer`` when big) for networks."""
    if level not in LEVELS:
        raise ExplainError("--level", f"must be one of {', '.join(LEVELS)}, got {level!r}")
    if level != "auto":
        return level
    pairs = neuron_pairs(graph)
    if not any(_is_linear_combination(graph.nodes[p], graph) for p in pairs):
        return "operation"
    inside = sum(1 for e in graph.edges if pairs.get(e.src) == e.dst)
    return "layer" if len(graph.edges) - inside > NUMERIC_LABEL_EDGES else "stage"


# -- the drawing ----------------------------------------------------------------------
@dataclass
class _Box:
    """One drawn node: a graph node, a neuron (pre-activation + activation), or a layer."""

    id: str
    names: tuple[str, ...]
    kind: str
    folded: list[str] = field(default_factory=list)  # parameters drawn inside (large graphs)
    members: list[tuple[str, ...]] = field(default_factory=list)  # the boxes' names a layer box stands for


def graph_dot(
    derivation: Derivation, highlight: str | None = None, level: str = "auto",
    precision: int = 4, lang: str = "en", blank: bool = False, matrix: Any = None,
) -> str:
    """The DOT source of the annotated computation graph.

    Each box shows a node's name, its formula with the forward value, and its
    gradient ∂loss/∂node; each edge its local derivative, symbolic and numeric.
    ``highlight`` (a node name) emphasises every path from that node to the loss —
    exactly the paths summed in its chain rule — and dims the rest.  ``blank``
    leaves every number out (a handout to fill in).  ``matrix``: the problem's
    :class:`~explain.tensorgraph.MatrixDerivation` (a problem with vectors or matrices),
    drawn one box per tensor (``level="tensor"``, what ``auto`` picks without a highlight).
    """
    return graph_digraph(derivation, highlight, level, precision, lang, blank, matrix).source


def graph_digraph(
    derivation: Derivation, highlight: str | None = None, level: str = "auto",
    precision: int = 4, lang: str = "en", blank: bool = False, matrix: Any = None,
) -> graphviz.Digraph:
    """The drawing as a :class:`graphviz.Digraph` (``.source``, ``.pipe()``, ``.render()``)."""
    # A highlight names a scalar node (an entry, W1_0_1): its paths are the scalar drawing's.
    if level == "tensor" or (level == "auto" and matrix is not None and highlight is None):
        if matrix is None:
            raise ExplainError("--level tensor", Messages(lang)("graph_tensor_scalar"))
        from .tensordot import tensor_digraph

        g = derivation.graph
        return tensor_digraph(matrix, g.title, g.description, precision, lang, blank)
    return _Drawing(derivation, highlight, level, precision, lang, blank).digraph()


class _Drawing:
    def __init__(self, d: Derivation, highlight: str | None, level: str, precision: int, lang: str,
                 blank: bool = False) -> None:
        self.d, self.g = d, d.graph
        self.m = Messages(lang)
        self.lang = lang
        self.blank = blank
        self.math = _GraphMath(precision=precision)
        self.level = resolve_level(self.g, level)
        if highlight is not None and highlight not in self.g.nodes:
            names = list(self.g.nodes)
            shown = difflib.get_close_matches(highlight, names, n=5, cutoff=0.5) or names[:10]
            listed = ", ".join(shown) + (", …" if len(shown) < len(names) else "")
            raise ExplainError("--highlight", self.m("graph_unknown_node", name=highlight, names=listed))
        self.highlight = highlight
        self.pairs = neuron_pairs(self.g) if self.level in ("stage", "layer") else {}
        merged = set(self.pairs) | set(self.pairs.values())
        self.box_of: dict[str, str] = {}
        self.boxes: dict[str, _Box] = {}
        for name, node in self.g.nodes.items():
            if name in self.pairs:
                box = _Box(f"{name}/{self.pairs[name]}", (name, self.pairs[name]), "neuron")
            elif name in merged:
                continue  # the activation of a neuron: drawn with its pre-activation
            else:
                box = _Box(name, (name,), node.kind)
            self.boxes[box.id] = box
            for n in box.names:
                self.box_of[n] = box.id
        if self.box_of.get(self.g.loss) is not None:
            self.boxes[self.box_of[self.g.loss]].kind = "loss"
        self.on_path, self.path_edges = self._paths()
        self.edges = [e for e in self.g.edges if self.box_of[e.src] != self.box_of[e.dst]]
        self.large = len(self.edges) > NUMERIC_LABEL_EDGES
        self.unit_edges = len(self.edges)  # before a layer drawing groups them
        self.columns = _columns(self.boxes, self._box_edges())
        if self.level == "layer":
            self._group_layers()
        elif self.large:
            self._fold_parameters()

    def _box_edges(self) -> list[tuple[str, str]]:
        """Drawn edges between boxes, once each, in the graph's order."""
        seen: dict[tuple[str, str], None] = {}
        for e in self.g.edges:
            a, b = self.box_of[e.src], self.box_of[e.dst]
            if a != b:
                seen.setdefault((a, b), None)
        return list(seen)

    def _fold_parameters(self) -> None:
        """Draw each parameter that feeds a single node inside that node's box.

        A 16-32-32-10 network has ~1900 weights; as boxes of their own they make
        a drawing hundreds of inches tall.  Folded, one box per neuron remains.
        """
        targets: dict[str, set[str]] = {}
        for e in self.g.edges:
            targets.setdefault(e.src, set()).add(self.box_of[e.dst])
        for name in self.g.parameters:
            into = targets.get(name, set())
            if len(into) == 1:
                (target,) = into
                del self.boxes[self.box_of[name]]
                self.box_of[name] = target
                self.boxes[target].folded.append(name)
        self.edges = [e for e in self.g.edges if self.box_of[e.src] != self.box_of[e.dst]]
        self.columns = _columns(self.boxes, self._box_edges())

    def _group_layers(self) -> None:
        """One box per layer: the boxes of one column and one kind (units, weights, inputs)."""
        groups: dict[tuple[int, str], list[str]] = {}
        for box_id, column in self.columns.items():
            groups.setdefault((column[0], self.boxes[box_id].kind), []).append(box_id)
        boxes: dict[str, _Box] = {}
        for (column, kind), members in sorted(groups.items(), key=lambda kv: min(self.columns[b] for b in kv[1])):
            members.sort(key=lambda b: self.columns[b])
            if len(members) == 1:  # the loss, a lone input: drawn as itself
                boxes[members[0]] = self.boxes[members[0]]
                continue
            names = tuple(n for b in members for n in self.boxes[b].names)
            group = _Box(f"{kind}@{column}", names, kind, members=[self.boxes[b].names for b in members])
            boxes[group.id] = group
            for n in names:
                self.box_of[n] = group.id
        self.boxes = boxes
        self.edges = [e for e in self.g.edges if self.box_of[e.src] != self.box_of[e.dst]]
        self.columns = _columns(self.boxes, self._box_edges())

    # -- highlight ------------------------------------------------------------------
    def _paths(self) -> tuple[set[str], set[tuple[str, str]]]:
        """Nodes and edges on some path from ``highlight`` to the loss.

        An edge a → b lies on such a path exactly when a is reachable from the
        highlighted node and b reaches the loss; no path needs to be listed, so
        this stays linear even when there are millions of paths.
        """
        if self.highlight is None:
            return set(), set()
        reachable = self.g.descendants(self.highlight) | {self.highlight}
        nodes = reachable & self.g.influencing_loss()
        edges = {(e.src, e.dst) for e in self.g.edges if e.src in nodes and e.dst in nodes}
        return nodes, edges

    # -- text -----------------------------------------------------------------------
    def name(self, name: str) -> str:
        return greek(name)

    def number(self, value: Any) -> str:
        """A scalar, or the first values of a per-sample array and how many there are."""
        if self.blank:
            return BLANK
        if np.ndim(value) == 0:
            return self.math.number(float(value))
        values = np.ravel(np.asarray(value, dtype=float))
        if len(values) <= 3:
            return "[" + ", ".join(self.math.number(v) for v in values) + "]"
        head = ", ".join(self.math.number(v) for v in values[:2])
        return f"[{head}, …] ({self.m('graph_n_values', n=len(values))})"

    def _grad(self, name: str) -> Any | None:
        try:
            return self.d.grad(name)
        except KeyError:
            return None

    def node_rows(self, name: str) -> list[tuple[str, bool]]:
        """(text, is_gradient) rows for one graph node: ``name = formula = value``, ``∂L/∂name = g``."""
        node = self.g.nodes[name]
        value = self.number(self.d.value(name))
        rows: list[tuple[str, bool]] = []
        shown = self.name(name)
        if node.expr is None:
            rows.append((f"{shown} = {value}", False))
        else:
            line = f"{shown} = {self.math.expr(node.expr)}"
            if len(line) + len(value) + 3 <= _ROW_WIDTH:
                rows.append((f"{line} = {value}", False))
            else:
                lines = 2 if self.large else 4
                rows.extend((part, False) for part in _wrap(line, _ROW_WIDTH, lines))
                rows.append((f"= {value}", False))
        if name != self.g.loss:
            grad = self._grad(name)
            if grad is not None:
                rows.append((f"{self.math.total(self.g.loss, name)} = {self.number(grad)}", True))
        return rows

    def edge_text(self, src: str, dst: str, numeric_only: bool) -> str:
        local = self.d.locals[(src, dst)]
        value = self.number(local.value)
        if numeric_only:
            return value
        partial = self.math.partial(dst, src)
        if self.blank:  # the local derivative is what the student works out
            return f"{partial} = {value}"
        formula = self.math.expr(local.expr)
        return f"{partial} = {value}" if formula == value else f"{partial} = {formula} = {value}"

    def _range(self, values: Iterable[Any]) -> str:
        """``∈ [a, b]`` (or ``= a``) over scalars and per-sample arrays alike (a layer's values)."""
        flat = np.concatenate([np.ravel(np.asarray(v, dtype=float)) for v in values])
        low, high = float(np.min(flat)), float(np.max(flat))
        return f"= {self.number(low)}" if low == high else f"∈ [{self.number(low)}, {self.number(high)}]"

    def layer_rows(self, box: _Box) -> list[tuple[str, bool]]:
        """A layer box: how many, the first member's formulas, the range of values and gradients."""
        first = box.members[0]
        rows = [(self.m(f"graph_layer_count_{box.kind}", count=len(box.members)), False)]
        for n in first:
            node = self.g.nodes[n]
            if node.expr is not None:
                line = f"{self.name(n)} = {self.math.expr(node.expr)}"
                rows.extend((part, False) for part in _wrap(line, _ROW_WIDTH, 2))
        if not self.blank:  # a neuron's activations, and the deltas at its pre-activation
            last = box.members[-1]
            values = self._range(self.d.value(names[-1]) for names in box.members)
            rows.append((f"{self.name(first[-1])} … {self.name(last[-1])} {values}", False))
            grads = [g for g in (self._grad(names[0]) for names in box.members) if g is not None]
            if grads and self.g.loss not in box.names:
                total = f"{self.math.total(self.g.loss, first[0])} … {self.math.total(self.g.loss, last[0])}"
                rows.append((f"{total} {self._range(grads)}", True))
        return rows

    # -- labels ----------------------------------------------------------------------
    def label_mode(self) -> str:
        n = len(self.edges)
        if self.level == "layer":
            return "layer"
        if n <= FULL_LABEL_EDGES:
            return "full"
        if n <= NUMERIC_LABEL_EDGES:
            return "numeric"
        if self.highlight is not None and len(self.path_edges) <= FULL_LABEL_EDGES:
            return "highlight"
        return "none"

    def box_label(self, box: _Box) -> str:
        dim = self.highlight is not None and not any(n in self.on_path for n in box.names)
        lit = self.highlight is not None and not dim
        style = _STYLE[box.kind]
        fill = _DIM_FILL if dim else style["fill"]
        border = _HIGHLIGHT if lit else (_DIM_BORDER if dim else style["border"])
        text = _DIM_TEXT if dim else "#000000"
        grad_color = _DIM_TEXT if dim else _GRAD_TEXT
        width = 3 if lit else (2 if box.kind == "loss" else 1)
        rounded = ' STYLE="rounded"' if box.kind == "parameter" else ""
        # Sections of rows, separated by a rule: a neuron is pre-activation | local derivative | activation.
        if box.members:
            first, last = box.members[0], box.members[-1]
            title = " → ".join(f"{self.name(a)} … {self.name(b)}" for a, b in zip(first, last))
            sections: list[tuple[str, list[tuple[str, bool]]]] = [("", self.layer_rows(box))]
        elif len(box.names) == 2:  # a neuron (which may also be the loss)
            pre, post = box.names
            title = f"{self.name(pre)} → {self.name(post)}"
            # Ports: edges come in at the pre-activation, and leave from the activation.
            sections = [
                (_IN_PORT, self.node_rows(pre)), ("", [(self.edge_text(pre, post, False), False)]),
                (_OUT_PORT, self.node_rows(post))]
        else:
            title = self.name(box.names[0])
            sections = [("", self.node_rows(box.names[0]))]
        if box.folded:
            shown = [self.name(n) for n in box.folded]
            names = ", ".join(shown) if len(shown) <= 3 else f"{shown[0]}, …, {shown[-1]}"
            sections.insert(0, ("", [(self.m("graph_folded", count=len(box.folded), names=names), False)]))
        cells = [f'<TR><TD BGCOLOR="{fill}" ALIGN="CENTER"><FONT COLOR="{text}"><B>{_esc(title)}</B></FONT></TD></TR>']
        for i, (port, section) in enumerate(sections):
            if i:
                cells.append("<HR/>")
            for j, (row, is_grad) in enumerate(section):
                color = grad_color if is_grad else text
                port_attr = f' PORT="{port}"' if port and j == 0 else ""
                cells.append(f'<TR><TD ALIGN="LEFT"{port_attr}><FONT COLOR="{color}">{_esc(row)}</FONT></TD></TR>')
        return (f'<<TABLE BORDER="{width}" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3" '
                f'COLOR="{border}" BGCOLOR="#ffffff"{rounded}>' + "".join(cells) + "</TABLE>>")

    def caption(self, mode: str) -> str:
        m = self.m
        rows = [f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="16"><B>{_esc(self.g.title or m("problem"))}</B></FONT></TD></TR>']
        for line in _wrap(self.g.description, 110, 6):
            rows.append(f'<TR><TD ALIGN="LEFT">{_esc(line)}</TD></TR>')
        notes: list[str] = []
        if self.blank:
            notes.append(m("graph_blank"))
        if self.level == "layer":
            notes.append(m("graph_level_layer", edges=self.unit_edges, params=len(self.g.parameters)))
        elif self.level == "stage" and self.pairs:
            notes.append(m("graph_level_stage"))
        if self.g.is_data_problem:
            notes.append(m("graph_samples", n=self.g.n_samples))
        if self.highlight is not None:
            count = self.g.path_count(self.highlight)
            if count == 0:
                notes.append(m("graph_highlight_none", name=self.name(self.highlight), loss=self.name(self.g.loss)))
            else:
                grad = self._grad(self.highlight)
                notes.append(m("graph_highlight", count=count, name=self.name(self.highlight),
                               loss=self.name(self.g.loss), partial=self.math.total(self.g.loss, self.highlight),
                               value=self.number(grad) if grad is not None else "?"))
        folded = sum(len(b.folded) for b in self.boxes.values())
        if folded:
            notes.append(m("graph_folded_note", count=folded))
        n = len(self.edges)
        if mode == "numeric":
            notes.append(m("graph_edges_blank" if self.blank else "graph_edges_numeric", count=n))
        elif mode == "highlight":
            notes.append(m("graph_edges_highlight_only", count=n))
        elif mode == "none":
            notes.append(m("graph_edges_hidden", count=n))
        for note in notes:
            for line in _wrap(note, 130, 4):
                rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="11">{_esc(line)}</FONT></TD></TR>')
        rows.append(f"<TR><TD ALIGN=\"LEFT\">{self.legend()}</TD></TR>")
        return '<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="2">' + "".join(rows) + "</TABLE>>"

    def legend(self) -> str:
        kinds = [k for k in _STYLE if any(b.kind == k for b in self.boxes.values())]
        cells = [f'<TD><FONT POINT-SIZE="11">{_esc(self.m("graph_legend"))}:</FONT></TD>']
        for k in kinds:
            s = _STYLE[k]
            rounded = ' STYLE="rounded"' if k == "parameter" else ""
            width = 2 if k == "loss" else 1
            cells.append(
                f'<TD><TABLE BORDER="{width}" CELLBORDER="0" CELLPADDING="2" COLOR="{s["border"]}"{rounded}>'
                f'<TR><TD BGCOLOR="{s["fill"]}"><FONT POINT-SIZE="11">{_esc(self.m(f"graph_kind_{k}"))}'
                "</FONT></TD></TR></TABLE></TD>")
        return '<TABLE BORDER="0" CELLSPACING="4" CELLPADDING="0"><TR>' + "".join(cells) + "</TR></TABLE>"

    # -- the Digraph -----------------------------------------------------------------
    def _end(self, name: str, port: str) -> str:
        """An edge end: the box, at the neuron's pre-activation (in) or activation (out) row."""
        box = self.boxes[self.box_of[name]]
        side = "e" if port == _OUT_PORT else "w"
        return f"{box.id}:{port}:{side}" if len(box.names) == 2 and not box.members else box.id

    def digraph(self) -> graphviz.Digraph:
        mode = self.label_mode()
        font = _FONT_ZH if self.lang == "zh" else _FONT
        splines = "line" if len(self.edges) > STRAIGHT_EDGES else "true"
        # Labels in boxes of their own put a rank between two columns: half the gap each.
        ranksep = "0.3" if mode in ("full", "numeric", "highlight") else "0.7"
        dot = graphviz.Digraph(
            "explain",
            graph_attr={"rankdir": "LR", "fontname": font, "fontsize": "12", "labelloc": "t", "labeljust": "l",
                        "nodesep": "0.25", "ranksep": ranksep, "splines": splines, "bgcolor": "white",
                        "pad": "0.2", "newrank": "true", "label": self.caption(mode)},
            node_attr={"shape": "plain", "fontname": font, "fontsize": "11"},
            edge_attr={"fontname": font, "fontsize": "10", "color": _EDGE, "fontcolor": _EDGE_TEXT,
                       "arrowsize": "0.7"},
        )
        for box in self.boxes.values():
            dot.node(graphviz.escape(box.id), label=self.box_label(box))
        self._order(dot)
        if mode == "layer":
            self._layer_edges(dot)
            return dot
        for e in self.edges:
            attrs: dict[str, str] = {}
            on = (e.src, e.dst) in self.path_edges
            if self.highlight is not None:
                if on:
                    # A larger head: where edges meet, dot may draw a dimmed one over it.
                    attrs |= {"color": _HIGHLIGHT, "fontcolor": _HIGHLIGHT, "penwidth": "2.5", "arrowsize": "1.1"}
                else:
                    attrs |= {"color": _DIM_BORDER, "fontcolor": _DIM_TEXT, "arrowsize": "0.5"}
            text = None
            if mode == "full" or (mode == "highlight" and on):
                text = self.edge_text(e.src, e.dst, False)
            elif mode == "numeric":
                text = self.edge_text(e.src, e.dst, True)
            tail, head = self._end(e.src, _OUT_PORT), self._end(e.dst, _IN_PORT)
            if text is None:
                dot.edge(tail, head, **attrs)
                continue
            # The local derivative in a small box on the edge: the line runs through it, so it
            # cannot be read as another edge's, and dot spaces the boxes like any node (labels
            # of edges that meet at one input port piled up there).
            label = _edge_node_id(e.src, e.dst)
            color = attrs.get("color", _EDGE)
            dot.node(label, label=f"<{_esc(text)}>", shape="box", style="rounded", color=color,
                     fontcolor=attrs.get("fontcolor", _EDGE_TEXT), fontsize="10", margin="0.04,0.02",
                     width="0", height="0", penwidth="0.6")
            first = {k: v for k, v in attrs.items() if k in ("color", "penwidth")}
            dot.edge(tail, label, arrowhead="none", **first)
            dot.edge(label, head, **attrs)
        return dot

    def _layer_edges(self, dot: graphviz.Digraph) -> None:
        """One edge per pair of layers, labelled with how many edges it stands for."""
        counts: dict[tuple[str, str], int] = {}
        lit: set[tuple[str, str]] = set()
        for e in self.edges:
            pair = (self.box_of[e.src], self.box_of[e.dst])
            counts[pair] = counts.get(pair, 0) + 1
            if (e.src, e.dst) in self.path_edges:
                lit.add(pair)
        for (a, b), count in counts.items():
            attrs = {"label": f"<{_esc(self.m('graph_layer_edges', count=count))}>"} if count > 1 else {}
            if self.highlight is not None:
                attrs |= ({"color": _HIGHLIGHT, "penwidth": "2.5"} if (a, b) in lit else {"color": _DIM_BORDER})
            dot.edge(graphviz.escape(a), graphviz.escape(b), **attrs)

    def _order(self, dot: graphviz.Digraph) -> None:
        """Each column a ``rank=same`` subgraph, its boxes chained top to bottom by invisible edges."""
        by_column: dict[int, list[str]] = {}
        for box_id, (column, _) in sorted(self.columns.items(), key=lambda kv: kv[1]):
            by_column.setdefault(column, []).append(box_id)
        for column, ids in sorted(by_column.items()):
            with dot.subgraph(name=f"column{column}") as sub:
                sub.attr(rank="same")
                for box_id in ids:
                    sub.node(graphviz.escape(box_id))
                for a, b in zip(ids, ids[1:]):
                    sub.edge(graphviz.escape(a), graphviz.escape(b), style="invis")


def _edge_node_id(src: str, dst: str) -> str:
    """The ID of the small node holding an edge's label (names are identifiers: no '→' in them)."""
    return f"{src}→{dst}"


def _columns(boxes: dict[str, _Box], edges: list[tuple[str, str]]) -> dict[str, tuple[int, float]]:
    """Each box's (column, place in the column), the order it is drawn in.

    A box's column is its depth from the inputs (longest path); a box without
    inputs (a parameter, an input) sits one column before its first consumer.
    Within a column, the boxes that compute something keep their declared order,
    spread over the column; a parameter or input takes the mean place of the boxes
    it feeds, so each weight sits level with the unit that uses it.
    """
    into: dict[str, list[str]] = {b: [] for b in boxes}
    out: dict[str, list[str]] = {b: [] for b in boxes}
    for a, b in edges:
        into[b].append(a)
        out[a].append(b)
    order = list(boxes)  # declared order, which is topological
    depth: dict[str, int] = {}
    for b in order:
        depth[b] = max((depth[a] + 1 for a in into[b]), default=0)
    column: dict[str, int] = {}
    for b in reversed(order):  # a source sits just before its first consumer
        column[b] = depth[b] if into[b] else max(0, min((column[c] for c in out[b]), default=1) - 1)
    place: dict[str, float] = {}
    stages: dict[int, list[str]] = {}
    for b in order:
        if into[b]:
            stages.setdefault(column[b], []).append(b)
    for members in stages.values():
        for i, b in enumerate(members):
            place[b] = (i + 0.5) / len(members)
    for b in reversed(order):
        if not into[b]:
            targets = [place[c] for c in out[b] if c in place]
            place[b] = sum(targets) / len(targets) if targets else 0.5
    index = {b: i for i, b in enumerate(order)}
    ranked = sorted(order, key=lambda b: (column[b], place[b], index[b]))
    return {b: (column[b], float(i)) for i, b in enumerate(ranked)}


# -- running Graphviz ----------------------------------------------------------------------
def _format_of(path: Path, m: Messages) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ExplainError(str(path), m("graph_unknown_format", suffix=path.suffix or "(none)"))
    return fmt


def run_dot(source: str, fmt: str, lang: str = "en") -> bytes:
    """Lay out ``source`` with Graphviz's ``dot`` into ``fmt`` (svg, png, pdf).

    Raises :class:`FileNotFoundError` when ``dot`` is not installed, and
    :class:`~explain.errors.ExplainError` when it fails.
    """
    if shutil.which("dot") is None:  # said before any work (the package would find out too)
        raise FileNotFoundError("dot")
    try:
        data: bytes = graphviz.pipe("dot", fmt, source.encode("utf-8"), quiet=True)
    except graphviz.ExecutableNotFound:
        raise FileNotFoundError("dot") from None
    except graphviz.CalledProcessError as error:
        stderr = error.stderr.decode("utf-8", "replace") if isinstance(error.stderr, bytes) else str(error.stderr or "")
        message = stderr.strip() or f"exit code {error.returncode}"
        raise ExplainError("dot", Messages(lang)("graph_dot_failed", error=message)) from None
    if not data:
        raise ExplainError("dot", Messages(lang)("graph_dot_failed", error="no output"))
    return data


def _svg(source: str, lang: str) -> str:
    try:
        svg = run_dot(source, "svg", lang).decode("utf-8")
    except FileNotFoundError:
        raise ExplainError("dot", Messages(lang)("graph_no_dot_svg")) from None
    start = svg.find("<svg")  # drop the XML prolog and DOCTYPE: notebooks inline the element
    return svg[start:] if start >= 0 else svg


def graph_svg(
    derivation: Derivation, highlight: str | None = None, level: str = "auto",
    precision: int = 4, lang: str = "en", blank: bool = False, matrix: Any = None,
) -> str:
    """The graph as an SVG document (for notebooks and web pages); needs Graphviz."""
    return _svg(graph_dot(derivation, highlight, level, precision, lang, blank, matrix), lang)


def write_graph(
    derivation: Derivation, path: str | Path, highlight: str | None = None, level: str = "auto",
    precision: int = 4, lang: str = "en", blank: bool = False, matrix: Any = None,
) -> Path:
    """Draw the graph into ``path``; the format comes from its suffix (.svg .png .pdf .dot).

    Returns the path written.  When Graphviz is not installed, the DOT source is
    written next to ``path`` (same name, ``.dot``), that path is returned, and a
    :class:`GraphvizMissingWarning` says how to install Graphviz — the DOT is the
    whole drawing, so the work is not lost.  Written atomically: a failure leaves
    no file behind.
    """
    from ..files import write_atomic

    m = Messages(lang)
    path = Path(path)
    fmt = _format_of(path, m)
    source = graph_dot(derivation, highlight, level, precision, lang, blank, matrix)
    if fmt == "dot":
        write_atomic(path, source)
        return path
    try:
        data = run_dot(source, fmt, lang)
    except FileNotFoundError:
        fallback = path.with_suffix(".dot")
        write_atomic(fallback, source)
        warnings.warn(m("graph_no_dot", path=fallback, fmt=fmt, target=path), GraphvizMissingWarning, stacklevel=2)
        return fallback
    write_atomic(path, data)
    return path


# -- notebooks ----------------------------------------------------------------------------
class GraphView:
    """A drawable graph for Jupyter: displays itself as SVG.

    ``GraphView(d, highlight="w1")`` in a cell shows the graph; ``.source`` is the
    DOT, ``.digraph`` the :class:`graphviz.Digraph`, ``.save(path)`` writes a file
    like :func:`write_graph`.
    """

    def __init__(
        self, derivation: Derivation, highlight: str | None = None, level: str = "auto",
        precision: int = 4, lang: str = "en", blank: bool = False,
    ) -> None:
        self.derivation = derivation
        self.options: dict[str, Any] = {"highlight": highlight, "level": level, "precision": precision,
                                        "lang": lang, "blank": blank}
        self.digraph = graph_digraph(derivation, **self.options)  # errors (unknown highlight) show at once
        self.source: str = self.digraph.source

    def svg(self) -> str:
        return _svg(self.source, self.options["lang"])

    def save(self, path: str | Path) -> Path:
        return write_graph(self.derivation, path, **self.options)

    def _repr_svg_(self) -> str | None:
        try:
            return self.svg()
        except ExplainError:
            return None  # no Graphviz: the notebook falls back to the text repr

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **_: Any) -> dict[str, str]:
        """SVG when Graphviz can draw it, else the text repr (Jupyter picks the richest)."""
        svg = self._repr_svg_()
        bundle = {"text/plain": repr(self)}
        if svg is not None:
            bundle["image/svg+xml"] = svg
        if include is not None:
            bundle = {k: v for k, v in bundle.items() if k in set(include)}
        return {k: v for k, v in bundle.items() if k not in set(exclude or ())}

    def __repr__(self) -> str:
        g = self.derivation.graph
        return f"<GraphView {g.title or 'graph'!r}: {len(g.nodes)} nodes, {len(g.edges)} edges>"


def show(derivation: Derivation, **options: Any) -> GraphView:
    """The graph of ``derivation`` for display in a notebook (options as :func:`graph_dot`)."""
    return GraphView(derivation, **options)
