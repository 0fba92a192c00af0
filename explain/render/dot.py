"""The annotated computation graph, drawn with Graphviz.

A renderer like the others: it walks the same :class:`~explain.derivation.Derivation`
(nodes, edges with their local derivatives, forward values, adjoints) and prints
DOT.  Graphviz's ``dot`` program turns it into SVG, PNG or PDF; it is run as a
subprocess with the DOT on standard input (no shell), so nothing from a problem
file ever reaches a command line.

Everything user-derived (title, description, names, formulas) is printed inside
HTML-like labels and escaped there, and node IDs are quoted and escaped: a title
such as ``"];evil[label="x`` or ``<b>`` shows up as text, never as DOT.

Two levels of drawing:

* ``operation`` — one box per graph node, as the user staged it;
* ``stage`` — one box per neuron: a stage that applies one function to one other
  stage used by nothing else (``out_h1 = sigmoid(in_h1)``) is drawn in the same box
  as that pre-activation, with the local derivative between them inside the box.

``auto`` picks ``stage`` when the graph looks like a network (some linear
combination of weights feeds an activation), ``operation`` otherwise.
"""

from __future__ import annotations

import difflib
import html
import re
import shutil
import subprocess
import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from ..errors import ExplainError
from ..graph import Graph, Node
from ..i18n import Messages
from .mathprint import TextMath

if TYPE_CHECKING:  # importing the explain.derive module would shadow explain.derive(), the function
    from ..derivation import Derivation

FORMATS = ("svg", "png", "pdf", "dot")
LEVELS = ("auto", "operation", "stage")

#: Up to this many drawn edges, each edge shows ``∂dst/∂src = formula = value``.
FULL_LABEL_EDGES = 60
#: Up to this many, only the value; beyond, no edge labels (dot's layout of
#: labelled edges grows quickly: each label is a node of its own).
NUMERIC_LABEL_EDGES = 150
#: Beyond this many drawn edges, splines are straight lines (routing curves is slow).
STRAIGHT_EDGES = 400
#: Characters per row inside a box before a formula wraps.
_ROW_WIDTH = 44
#: How long ``dot`` may run before we give up (seconds).
DOT_TIMEOUT = 120

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
_HIGHLIGHT = "#d9480f"
_IN_PORT, _OUT_PORT = "pre", "post"
_DIM_FILL, _DIM_BORDER, _DIM_TEXT = "#f3f3f3", "#c9c9c9", "#a0a0a0"
_EDGE, _EDGE_TEXT, _GRAD_TEXT = "#555555", "#333333", "#7a2e00"
_FONT = "Helvetica,Arial,DejaVu Sans,sans-serif"
_FONT_ZH = "Helvetica,Arial,Noto Sans CJK SC,Source Han Sans SC,WenQuanYi Micro Hei,sans-serif"


class GraphvizMissingWarning(UserWarning):
    """Graphviz's ``dot`` is not installed: the DOT source was written instead."""


# -- levels -------------------------------------------------------------------------
def neuron_pairs(graph: Graph) -> dict[str, str]:
    """Pre-activation → activation pairs that a ``stage`` drawing merges into one box.

    ``post`` qualifies when its expression is one function applied to one other
    stage ``pre`` (other arguments constant) and ``pre`` is used by ``post`` only:
    then nothing is hidden by drawing the two as one neuron.
    """
    consumers: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for e in graph.edges:
        consumers[e.src].append(e.dst)
    pairs: dict[str, str] = {}
    for node in graph.stages:
        expr = node.expr
        if not isinstance(expr, sp.Function) or len(node.inputs) != 1:
            continue
        pre = graph.nodes[node.inputs[0]]
        if pre.is_leaf or pre.name in pairs.values() or consumers[pre.name] != [node.name]:
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
    """``operation`` or ``stage``; ``auto`` is ``stage`` for graphs that look like networks."""
    if level not in LEVELS:
        raise ExplainError("--level", f"must be one of {', '.join(LEVELS)}, got {level!r}")
    if level != "auto":
        return level
    pairs = neuron_pairs(graph)
    return "stage" if any(_is_linear_combination(graph.nodes[p], graph) for p in pairs) else "operation"


# -- the drawing ----------------------------------------------------------------------
@dataclass
class _Box:
    """One drawn node: a graph node, or a neuron (pre-activation + activation)."""

    id: str
    names: tuple[str, ...]
    kind: str
    folded: list[str] = field(default_factory=list)  # parameters drawn inside (large graphs)


def graph_dot(
    derivation: Derivation, highlight: str | None = None, level: str = "auto",
    precision: int = 4, lang: str = "en",
) -> str:
    """The DOT source of the annotated computation graph.

    Each box shows a node's name, its formula with the forward value, and its
    gradient ∂loss/∂node; each edge its local derivative, symbolic and numeric.
    ``highlight`` (a node name) emphasises every path from that node to the loss —
    exactly the paths summed in its chain rule — and dims the rest.
    """
    return _Drawing(derivation, highlight, level, precision, lang).dot()


class _Drawing:
    def __init__(self, d: Derivation, highlight: str | None, level: str, precision: int, lang: str) -> None:
        self.d, self.g = d, d.graph
        self.m = Messages(lang)
        self.lang = lang
        self.math = TextMath(precision=precision)
        self.level = resolve_level(self.g, level)
        if highlight is not None and highlight not in self.g.nodes:
            names = list(self.g.nodes)
            shown = difflib.get_close_matches(highlight, names, n=5, cutoff=0.5) or names[:10]
            listed = ", ".join(shown) + (", …" if len(shown) < len(names) else "")
            raise ExplainError("--highlight", self.m("graph_unknown_node", name=highlight, names=listed))
        self.highlight = highlight
        self.pairs = neuron_pairs(self.g) if self.level == "stage" else {}
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
        if self.large:
            self._fold_parameters()

    def _fold_parameters(self) -> None:
        """Draw each parameter that feeds a single node inside that node's box.

        A 16-32-32-10 network has ~1900 weights; as boxes of their own they make
        a drawing hundreds of inches tall.  Folded, one box per neuron remains.
        """
        consumers: dict[str, set[str]] = {}
        for e in self.g.edges:
            consumers.setdefault(e.src, set()).add(self.box_of[e.dst])
        for name in self.g.parameters:
            targets = consumers.get(name, set())
            if len(targets) == 1:
                (target,) = targets
                del self.boxes[self.box_of[name]]
                self.box_of[name] = target
                self.boxes[target].folded.append(name)
        self.edges = [e for e in self.g.edges if self.box_of[e.src] != self.box_of[e.dst]]

    # -- highlight ------------------------------------------------------------------
    def _paths(self) -> tuple[set[str], set[tuple[str, str]]]:
        """Nodes and edges on some path from ``highlight`` to the loss.

        An edge a → b lies on such a path exactly when a is reachable from the
        highlighted node and b reaches the loss; no path needs to be listed, so
        this stays linear even when there are millions of paths.
        """
        if self.highlight is None:
            return set(), set()
        reachable = {self.highlight}
        for name in self.g.nodes:  # nodes are in topological order
            if any(e.src in reachable for e in self.g.edges_into(name)):
                reachable.add(name)
        nodes = {n for n in reachable if n in self.g.reaches_loss}
        edges = {(e.src, e.dst) for e in self.g.edges if e.src in nodes and e.dst in nodes}
        return nodes, edges

    # -- text -----------------------------------------------------------------------
    def number(self, value: Any) -> str:
        """A scalar, or the first values of a per-sample array and how many there are."""
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
        if node.expr is None:
            rows.append((f"{name} = {value}", False))
        else:
            line = f"{name} = {self.math.expr(node.expr)}"
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
        formula = self.math.expr(local.expr)
        partial = self.math.partial(dst, src)
        return f"{partial} = {value}" if formula == value else f"{partial} = {formula} = {value}"

    # -- DOT ------------------------------------------------------------------------
    def label_mode(self) -> str:
        n = len(self.edges)
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
        if len(box.names) == 2:  # a neuron (which may also be the loss)
            pre, post = box.names
            title = f"{pre} → {post}"
            # Ports: edges come in at the pre-activation, and leave from the activation.
            sections: list[tuple[str, list[tuple[str, bool]]]] = [
                (_IN_PORT, self.node_rows(pre)), ("", [(self.edge_text(pre, post, False), False)]),
                (_OUT_PORT, self.node_rows(post))]
        else:
            title = box.names[0]
            sections = [("", self.node_rows(box.names[0]))]
        if box.folded:
            names = ", ".join(box.folded) if len(box.folded) <= 3 else f"{box.folded[0]}, …, {box.folded[-1]}"
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
        if self.level == "stage" and self.pairs:
            notes.append(m("graph_level_stage"))
        if self.g.is_data_problem:
            notes.append(m("graph_samples", n=self.g.n_samples))
        if self.highlight is not None:
            count = self.g.path_count(self.highlight)
            if count == 0:
                notes.append(m("graph_highlight_none", name=self.highlight, loss=self.g.loss))
            else:
                grad = self._grad(self.highlight)
                notes.append(m("graph_highlight", count=count, name=self.highlight, loss=self.g.loss,
                               partial=self.math.total(self.g.loss, self.highlight),
                               value=self.number(grad) if grad is not None else "?"))
        folded = sum(len(b.folded) for b in self.boxes.values())
        if folded:
            notes.append(m("graph_folded_note", count=folded))
        n = len(self.edges)
        if mode == "numeric":
            notes.append(m("graph_edges_numeric", count=n))
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

    def _end(self, name: str, port: str) -> str:
        """An edge end: the box, at the neuron's pre-activation (in) or activation (out) row."""
        box = self.boxes[self.box_of[name]]
        side = "e" if port == _OUT_PORT else "w"
        return f"{_quote(box.id)}:{port}:{side}" if len(box.names) == 2 else _quote(box.id)

    def dot(self) -> str:
        mode = self.label_mode()
        font = _FONT_ZH if self.lang == "zh" else _FONT
        splines = "line" if len(self.edges) > STRAIGHT_EDGES else "true"
        out = [
            "digraph explain {",
            f'  graph [rankdir=LR, fontname="{font}", fontsize=12, labelloc=t, labeljust=l, '
            f'nodesep=0.25, ranksep=0.7, splines={splines}, bgcolor="white", pad=0.2,',
            f"         label={self.caption(mode)}];",
            f'  node [shape=plain, fontname="{font}", fontsize=11];',
            f'  edge [fontname="{font}", fontsize=10, color="{_EDGE}", fontcolor="{_EDGE_TEXT}", arrowsize=0.7];',
        ]
        for box in self.boxes.values():
            out.append(f"  {_quote(box.id)} [label={self.box_label(box)}];")
        for e in self.edges:
            attrs: list[str] = []
            on = (e.src, e.dst) in self.path_edges
            if self.highlight is not None:
                if on:
                    # A larger head: where edges meet, dot may draw a dimmed one over it.
                    attrs += [f'color="{_HIGHLIGHT}"', f'fontcolor="{_HIGHLIGHT}"', "penwidth=2.5", "arrowsize=1.1"]
                else:
                    attrs += [f'color="{_DIM_BORDER}"', f'fontcolor="{_DIM_TEXT}"', "arrowsize=0.5"]
            if mode == "full" or (mode == "highlight" and on):
                attrs.append(f"label=<{_esc(self.edge_text(e.src, e.dst, False))}>")
            elif mode == "numeric":
                attrs.append(f"label=<{_esc(self.edge_text(e.src, e.dst, True))}>")
            attr = f" [{', '.join(attrs)}]" if attrs else ""
            out.append(f"  {self._end(e.src, _OUT_PORT)} -> {self._end(e.dst, _IN_PORT)}{attr};")
        out.append("}")
        return "\n".join(out) + "\n"


# -- escaping -------------------------------------------------------------------------
# Control characters and Unicode non-characters (U+FFFE, U+FFFF, U+FDD0–U+FDEF): Graphviz's
# XML parser rejects them ("not well-formed"), so a title with one would make the graph undrawable.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f\ufdd0-\ufdef\ufffe\uffff]")


def _esc(text: str) -> str:
    """Text for inside an HTML-like label: markup characters become entities.

    ``&``, ``<``, ``>``, ``"`` and ``'`` are escaped; control characters are dropped
    (Graphviz rejects them), and a newline becomes a line break.
    """
    text = _CONTROL.sub("", str(text))
    return "<BR/>".join(html.escape(line, quote=True) for line in text.split("\n"))


def _quote(name: str) -> str:
    """A DOT quoted ID: backslashes and double quotes escaped, newlines dropped."""
    clean = _CONTROL.sub("", name).replace("\n", " ")
    return '"' + clean.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
    program = shutil.which("dot")
    if program is None:
        raise FileNotFoundError("dot")
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=source.encode("utf-8"), capture_output=True,
                              timeout=DOT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise ExplainError("dot", Messages(lang)("graph_dot_failed", error=f"timeout after {DOT_TIMEOUT} s")) from None
    if done.returncode != 0 or not done.stdout:
        error = done.stderr.decode("utf-8", "replace").strip() or f"exit code {done.returncode}"
        raise ExplainError("dot", Messages(lang)("graph_dot_failed", error=error))
    return done.stdout


def graph_svg(
    derivation: Derivation, highlight: str | None = None, level: str = "auto",
    precision: int = 4, lang: str = "en",
) -> str:
    """The graph as an SVG document (for notebooks and web pages); needs Graphviz."""
    source = graph_dot(derivation, highlight, level, precision, lang)
    try:
        svg = run_dot(source, "svg", lang).decode("utf-8")
    except FileNotFoundError:
        raise ExplainError("dot", Messages(lang)("graph_no_dot_svg")) from None
    start = svg.find("<svg")  # drop the XML prolog and DOCTYPE: notebooks inline the element
    return svg[start:] if start >= 0 else svg


def write_graph(
    derivation: Derivation, path: str | Path, highlight: str | None = None, level: str = "auto",
    precision: int = 4, lang: str = "en",
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
    source = graph_dot(derivation, highlight, level, precision, lang)
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
    """A drawable graph for Jupyter: displays itself as SVG (``_repr_svg_``).

    ``GraphView(d, highlight="w1")`` in a cell shows the graph; ``.source`` is the
    DOT, ``.save(path)`` writes a file like :func:`write_graph`.
    """

    def __init__(
        self, derivation: Derivation, highlight: str | None = None, level: str = "auto",
        precision: int = 4, lang: str = "en",
    ) -> None:
        self.derivation = derivation
        self.options: dict[str, Any] = {"highlight": highlight, "level": level, "precision": precision, "lang": lang}
        self.source = graph_dot(derivation, **self.options)  # errors (unknown highlight) show at once

    def svg(self) -> str:
        return graph_svg(self.derivation, **self.options)

    def save(self, path: str | Path) -> Path:
        return write_graph(self.derivation, path, **self.options)

    def _repr_svg_(self) -> str | None:
        try:
            return self.svg()
        except ExplainError:
            return None  # no Graphviz: the notebook falls back to the text repr

    def __repr__(self) -> str:
        g = self.derivation.graph
        return f"<GraphView {g.title or 'graph'!r}: {len(g.nodes)} nodes, {len(g.edges)} edges>"


def show(derivation: Derivation, **options: Any) -> GraphView:
    """The graph of ``derivation`` for display in a notebook (options as :func:`graph_dot`)."""
    return GraphView(derivation, **options)
