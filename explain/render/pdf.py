"""The worked solution as a document, and as a PDF.

:func:`outline` walks a :class:`~explain.api.Solution` once and lays out its
sections as format-neutral blocks (headings, paragraphs, equations, tables,
figures, a loss plot) whose math is already printed by the output's
:class:`~explain.render.mathprint.MathStyle`; the Typst and LaTeX renderers
(:mod:`explain.render.typst`, :mod:`explain.render.latex`) only print those
blocks.  Every equation comes from :class:`~explain.render.steps.StepWriter`
and every sentence from the message catalog, so the PDF, the LaTeX document,
the text and the Markdown of a solution cannot disagree.

:func:`solution_pdf` draws the computation graph with Graphviz into a
temporary folder (as PDF: exact fonts, vector; left out with a warning when
Graphviz is missing), writes the Typst source beside it and compiles it with
the ``typst`` package — no system fonts are read for English; Chinese adds
the CJK font found by :mod:`explain.render.fonts`.  The loss curve is drawn by
Typst itself, from the training history.  :func:`write_pdf` writes the result
atomically.
"""

from __future__ import annotations

import math
import re
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ExplainError
from ..i18n import Messages
from .mathprint import MathStyle
from .steps import StepWriter, shown_edges, shown_nodes

#: Training histories longer than this show their first and last steps only.
HISTORY_ROWS = 12
#: Parameters shown as columns of the training table (the rest are left out, and a note
#: says so); the printers split a wide table into tables of the columns that fit.
HISTORY_COLUMNS = 40
#: Rows of a data preview.
DATA_ROWS = 5
#: A parameter with more paths to the loss than this gets its first PDF_PATHS_SHOWN paths
#: written out and the rest summarized ("… 6 more paths, see the delta form"): a sum of
#: dozens of products fills pages without teaching more than the delta form does.
PDF_PATHS = 4
PDF_PATHS_SHOWN = 2
#: A big network's PDF writes out this many local derivatives and chain rules, spread
#: evenly over the layers, and says how many more there are: hundreds of equations of
#: the same form teach nothing more and cost a minute to typeset.  Every gradient is
#: still in the table of gradients; the text output lists every step.
PDF_LOCALS = 48
PDF_STAGES = 24
#: Up to PDF_CHAIN_PARAMETERS parameters all get their chain rule (a 3-4-4-2 network has
#: 36); a bigger network gets PDF_CHAIN_SAMPLE of them, spread over the layers.
PDF_CHAIN_PARAMETERS = 40
PDF_CHAIN_SAMPLE = 16


# -- the blocks of a document ---------------------------------------------------------
@dataclass(frozen=True)
class Text:
    """Words (from the catalog or a problem file): always escaped by the renderer."""

    text: str
    strong: bool = False


@dataclass(frozen=True)
class Math:
    """Inline math, already printed in the output's math language."""

    src: str


Inline = Text | Math
Cell = list[Inline]


@dataclass
class Heading:
    level: int
    parts: list[Inline]


@dataclass
class Paragraph:
    parts: list[Inline]
    kind: str = "body"  # body | note | label | result | alert


@dataclass(frozen=True)
class Eq:
    """``lhs = row₁ = row₂ …``; each row a list of terms ``a``, ``+ b``, ``- c``."""

    lhs: str
    rows: tuple[tuple[str, ...], ...]


@dataclass
class Equations:
    items: list[Eq]
    columns: int = 1


@dataclass
class Table:
    header: list[Cell]
    rows: list[list[Cell]]
    align: str  # one letter per column: l, c, r
    size: str = "normal"  # normal | small


@dataclass
class Figure:
    key: str  # "graph" | "plot": the renderer knows the file
    caption: list[Inline]


@dataclass
class Series:
    """One loss curve: x (steps or epochs) and the loss, finite values only."""

    label: str
    x: list[float]
    y: list[float]
    diverged: bool = False


@dataclass
class Plot:
    """A line plot drawn by the output language itself (no image file needed)."""

    series: list[Series]
    xlabel: str
    ylabel: str
    log: bool
    caption: list[Inline]


@dataclass
class Facts:
    """Labelled lines (the givens): a label column and a content column."""

    rows: list[tuple[str, list[Inline]]]


Block = Heading | Paragraph | Equations | Table | Figure | Plot | Facts


@dataclass
class Document:
    title: str
    subtitle: str
    meta: str
    lang: str
    blocks: list[Block] = field(default_factory=list)


# -- splitting long equations ---------------------------------------------------------
def split_terms(s: str) -> tuple[str, ...]:
    """Cut printed math at its top-level ``+`` and ``-`` signs: ``a + (b - c) - d`` →
    ``a``, ``+ (b - c)``, ``- d``.  Brackets, braces and quoted strings are kept whole."""
    terms: list[str] = []
    depth, start, i, quoted = 0, 0, 0, False
    while i < len(s):
        c = s[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and c in "+-" and s[i - 1:i] == " " and s[i + 1:i + 2] == " " and i > 1:
            terms.append(s[start:i - 1])
            start = i
        i += 1
    terms.append(s[start:])
    return tuple(t for t in terms if t)


def _eq(equation: Any) -> Eq:
    if equation is None or isinstance(equation, Eq):
        return equation
    return Eq(equation.lhs, tuple(split_terms(r) for r in equation.rhs))


# -- from a catalog message to inline parts ------------------------------------------
def _msg(m: Messages, key: str, **fields: Any) -> list[Inline]:
    """A catalog message whose fields may be math: ``path_count(name=Math("w_1"))``."""
    maths: list[Math] = []
    plain: dict[str, Any] = {}
    for k, v in fields.items():
        if isinstance(v, Math):
            plain[k] = f"\x00{len(maths)}\x00"
            maths.append(v)
        else:
            plain[k] = v
    parts: list[Inline] = []
    for i, piece in enumerate(re.split(r"\x00(\d+)\x00", m(key, **plain))):
        if i % 2:
            parts.append(maths[int(piece)])
        elif piece:
            parts.append(Text(piece))
    return parts


def _join(items: Sequence[list[Inline]], sep: str = ", ") -> list[Inline]:
    out: list[Inline] = []
    for i, item in enumerate(items):
        if i:
            out.append(Text(sep))
        out += item
    return out


# -- the outline of a solution --------------------------------------------------------
def outline(solution: Any, style: MathStyle, lang: str = "en", figures: Sequence[str] = ()) -> Document:
    """The sections of a worked solution as blocks, math printed by ``style``.

    ``figures`` names the figures the renderer can show (``"graph"``, ``"plot"``).
    """
    from .. import __version__

    m = Messages(lang)
    d = solution.derivation
    g = d.graph
    w = StepWriter(d, style)
    s = style
    doc = Document(g.title or m("problem"), m("pdf_subtitle"), m("pdf_generated", version=__version__), lang)
    add = doc.blocks.append
    if solution.verification is not None and not solution.verification.passed:
        add(Paragraph([Text(solution.verification.banner(m))], "alert"))

    # 1. the problem
    add(Heading(1, [Text(m("problem"))]))
    for para in re.split(r"\n\s*\n", g.description or ""):
        if para.strip():
            add(Paragraph([Text(" ".join(para.split()))]))
    facts: list[tuple[str, list[Inline]]] = []
    for key, kind in (("parameters", "parameter"), ("values", "value")):
        names = [n.name for n in g.nodes.values() if n.kind == kind]
        if names:
            facts.append((m(key), _join([[Math(f"{s.name(n)} = {s.number(g.leaf_values[n])}")] for n in names])))
    data = [n.name for n in g.nodes.values() if n.kind == "data"]
    n = g.n_samples or 0
    shown = min(n, DATA_ROWS)
    if data:
        facts.append((m("data"), [Text(m("pdf_data_preview", shown=shown, n=n))]))
    if facts:
        add(Facts(facts))
    if data:
        rows = [[[Math(s.number(float(np.asarray(g.leaf_values[c])[i])))] for c in data] for i in range(shown)]
        if n > shown:
            rows.append([[Math(_vdots(s))] for _ in data])
        add(Table([[Math(_bare(s, c))] for c in data], rows, "r" * len(data)))
    if "graph" in figures:
        add(Figure("graph", [Text(m("pdf_graph_caption"))]))

    # 2. forward pass
    add(Heading(1, [Text(m("forward_pass"))]))
    add(Paragraph([Text(m("forward_intro"))], "note"))
    if g.is_data_problem:
        add(Paragraph([Text(m("per_sample_note", n=g.n_samples, loss=g.loss)),
                       Text(" "), Text(m("sample_shown", i=1))], "note"))
    add(Table([[Text(m("stage"))], [Text(m("formula"))], [Text(m("value"))]],
              [[[Math(s.name(f.name))], [Math(s.expr(f.expr))], [Math(w.value(f.value))]] for f in d.forward],
              "llr"))
    forward = [_eq(w.forward(f)) for f in _spread(list(d.forward), PDF_STAGES)]
    add(Equations(forward, columns=2 if len(forward) >= 4 else 1))
    if len(d.forward) > PDF_STAGES:
        add(Paragraph([Text(m("pdf_more_stages", more=len(d.forward) - PDF_STAGES))], "note"))
    loss = _msg(m, "loss_is", name=Math(s.name(g.loss)), value=Math(s.number(d.loss_value)))
    add(Paragraph(loss, "result"))

    # 3. local partial derivatives
    add(Heading(1, [Text(m("local_partials"))]))
    add(Paragraph([Text(m("local_intro"))], "note"))
    edges = shown_edges(d)
    add(Equations([_eq(w.local(step)) for step in _spread(edges, PDF_LOCALS)], columns=2))
    if len(edges) > PDF_LOCALS:
        add(Paragraph([Text(m("pdf_more_locals", more=len(edges) - PDF_LOCALS))], "note"))

    # 4. backward pass
    add(Heading(1, [Text(m("backward_pass"))]))
    add(Paragraph([Text(m("backward_intro"))], "note"))
    backward = [name for name in shown_nodes(d) if g.nodes[name].kind != "parameter"]
    add(Equations([_eq(w.adjoint(d.adjoints[name])) for name in _spread(backward, PDF_STAGES)]))
    if len(backward) > PDF_STAGES:
        add(Paragraph([Text(m("pdf_more_deltas", more=len(backward) - PDF_STAGES))], "note"))

    # 5. the chain rule, parameter by parameter
    add(Heading(1, [Text(m("chain_rule"))]))
    add(Paragraph([Text(m("chain_intro"))], "note"))
    chosen = list(d.gradients)
    if len(chosen) > PDF_CHAIN_PARAMETERS:
        chosen = _spread(chosen, PDF_CHAIN_SAMPLE)
        add(Paragraph([Text(m("pdf_more_parameters", shown=len(chosen), count=len(d.gradients)))], "note"))
    for name in chosen:
        gradient = d.gradients[name]
        add(Heading(2, [Math(s.name(name))]))
        add(Paragraph(_msg(m, "path_count", count=gradient.path_count, name=Math(s.name(name))), "note"))
        if gradient.path_count == 0:
            add(Paragraph(_msg(m, "no_paths", name=Math(s.name(name)))))
            continue
        delta = [Paragraph([Text(m("delta_form"))], "label"), Equations([_eq(w.delta(gradient))])]
        if gradient.path_count <= PDF_PATHS:
            chain = w.chain(gradient)
            summary: list[Block] = []
        else:
            chain = _first_paths(w, gradient, s)
            summary = [Paragraph([Text(m("paths_summarized", more=gradient.path_count - PDF_PATHS_SHOWN))], "note")]
        if chain is None:
            add(Paragraph(_msg(m, "too_many_paths", count=gradient.path_count, name=Math(s.name(name))), "note"))
            doc.blocks += delta
            continue
        doc.blocks += [Paragraph([Text(m("path_form"))], "label"), Equations([_eq(chain)]), *summary, *delta]

    # 6. the gradients
    add(Heading(1, [Text(m("gradients"))]))
    after = _after_one_step(solution.training)
    header = [[Text(m("parameter"))], [Text(m("value"))], [Text(m("gradient"))]]
    if after is not None:
        header.append(_msg(m, "pdf_after_step", rate=Math(s.number(after[0]))))
    rows = []
    for name, gradient in d.gradients.items():
        row = [[Math(s.name(name))], [Math(s.number(g.leaf_values[name]))], [Math(s.number(gradient.value))]]
        if after is not None:
            # _num: after a divergence the parameters are not finite (null in the training's dict).
            row.append([Math(_num(s, after[1][name]))] if name in after[1] else [Text("")])
        rows.append(row)
    add(Table(header, rows, "lrr" + "r" * (after is not None)))

    if solution.verification is not None:
        _verification(doc, solution.verification, s, m)
    if solution.training is not None:
        _training(doc, solution.training, s, m, "plot" in figures)
    return doc


def _spread(items: list[Any], most: int) -> list[Any]:
    """At most ``most`` of ``items``, evenly spaced, in order, first and last included."""
    if len(items) <= most:
        return items
    keep = np.unique(np.linspace(0, len(items) - 1, most).round().astype(int))
    return [items[i] for i in keep]


def _first_paths(w: StepWriter, gradient: Any, s: MathStyle) -> Eq | None:
    """The path form of the first :data:`PDF_PATHS_SHOWN` paths, each line ending in
    ``+ …`` for the others; the last line is the exact value of the whole sum."""
    from dataclasses import replace

    if len(gradient.paths) < PDF_PATHS_SHOWN:
        return None
    first = replace(gradient, paths=gradient.paths[:PDF_PATHS_SHOWN], path_count=PDF_PATHS_SHOWN)
    chain = w.chain(first)
    if chain is None:
        return None
    eq = _eq(chain)
    more = f"+ {_dots(s)}"
    return Eq(eq.lhs, tuple(row + (more,) for row in eq.rows[:-1]) + eq.rows[-1:])


def _bare(style: MathStyle, name: str) -> str:
    """A name without its sample index (a data column as a whole, the reduced loss)."""
    return type(style)(style.precision).name(name)


def _is_typst(style: MathStyle) -> bool:
    from .mathprint import TypstMath

    return isinstance(style, TypstMath)


def _trainings(training: Any) -> list[Any]:
    return list(training) if isinstance(training, (list, tuple)) else [training]


def _after_one_step(training: Any) -> tuple[float, dict[str, float]] | None:
    """For full-batch gradient descent: the learning rate and the parameters after step 1."""
    runs = _trainings(training) if training is not None else []
    if len(runs) != 1 or getattr(runs[0], "optimizer", None) != "gd":
        return None
    history = runs[0].to_dict().get("history") or []
    if len(history) < 2:
        return None
    return float(runs[0].learning_rate), dict(history[1]["parameters"])


def _verification(doc: Document, verification: Any, s: MathStyle, m: Messages) -> None:
    v = verification.to_dict()
    tiny = type(s)(2)  # errors need two digits, not the solution's precision
    add = doc.blocks.append
    add(Heading(1, [Text(m("pdf_verification"))]))
    add(Paragraph([Text(m("pdf_verification_intro", engine=v.get("engine", "torch"), device=v.get("device", "cpu"),
                          dtype=v.get("dtype", "float64")))], "note"))
    rows = [r for r in v.get("rows", []) if r.get("kind") == "gradient"]
    fd = {f["parameter"]: f for f in v.get("finite_differences", [])}
    if rows:
        table = []
        for r in rows:
            f = fd.get(r["node"], {})
            fd_error = f.get("error") if f.get("status", "checked") == "checked" else None  # kinks, skips: not errors
            errors = [e for e in (r.get("error"), fd_error) if e is not None]
            table.append([[Math(s.name(r["node"]))], [Math(_num(s, r.get("symbolic")))],
                          [Math(_num(s, r.get("torch")))], [Math(_num(s, f.get("estimate")))],
                          [Math(_num(tiny, max(errors) if errors else None))]])
        add(Table([[Text(m("parameter"))], [Text(m("pdf_ours"))], [Text(m("pdf_autograd"))],
                   [Text(m("pdf_finite_difference"))], [Text(m("pdf_error"))]], table, "lrrrr"))
    add(Paragraph(_msg(m, "pdf_verification_summary", count=len(v.get("rows", [])),
                       autograd=Math(_num(tiny, v.get("max_error", v.get("max_abs_error")))),
                       fd=Math(_num(tiny, v.get("finite_difference_max_error"))),
                       tolerance=Math(_num(tiny, v.get("tolerance"))))))
    if v.get("passed"):
        add(Paragraph([Text(m("pdf_passed"))], "result"))
    else:
        add(Paragraph([Text(m("pdf_failed", worst=v.get("worst") or "?"))], "result"))


def _num(s: MathStyle, x: Any) -> str:
    if x is None:
        return "-" if not _is_typst(s) else '"–"'
    return s.number(float(x))


def _training(doc: Document, training: Any, s: MathStyle, m: Messages, plot: bool) -> None:
    add = doc.blocks.append
    add(Heading(1, [Text(m("pdf_training"))]))
    for run in _trainings(training):
        t = run.to_dict()
        optimizer = t.get("optimizer", "gd")
        key = f"pdf_optimizer_{optimizer}"
        add(Paragraph(_msg(m, "pdf_training_intro", optimizer=m(key) if key in _catalog(m) else optimizer,
                           rate=Math(s.number(float(t["learning_rate"]))), steps=t.get("steps", len(t["history"]) - 1)),
                      "note"))
        history = t.get("history") or []
        names = list(history[0]["parameters"]) if history else []
        shown_names = names[:HISTORY_COLUMNS]
        if len(history) > HISTORY_ROWS:
            head, tail = history[:HISTORY_ROWS // 2], history[-(HISTORY_ROWS // 2 - 1):]
        else:
            head, tail = history, []
        header = [[Text(m("pdf_step"))], [Text(m("pdf_loss"))], *[[Math(s.name(p))] for p in shown_names]]

        def row(h: dict[str, Any]) -> list[Cell]:
            return [[Text(str(h["step"]))], [Math(_num(s, h["loss"]))],
                    *[[Math(_num(s, h["parameters"][p]))] for p in shown_names]]

        rows = [row(h) for h in head]
        if tail:
            rows.append([[Math(_vdots(s))] for _ in header])
            rows += [row(h) for h in tail]
        add(Table(header, rows, "r" * len(header)))
        if len(names) > len(shown_names):
            add(Paragraph([Text(m("pdf_history_capped", shown=len(shown_names), count=len(names)))], "note"))
        if t.get("divergence"):
            add(Paragraph([Text(m("pdf_diverged", step=t["divergence"]["step"]))], "result"))
        prediction = t.get("prediction")
        if prediction:
            inputs = ", ".join(f"{_bare(s, k)} = {s.number(v)}" for k, v in prediction["inputs"].items())
            add(Paragraph(_msg(m, "pdf_prediction", output=Math(_bare(s, prediction["output"])), inputs=Math(inputs),
                               before=Math(_num(s, prediction["before"])), after=Math(_num(s, prediction["after"])))))
        _explained_updates(doc, run, s, m)
    if plot:
        add(Figure("plot", [Text(m("pdf_loss_caption"))]))
    else:
        add(loss_plot(_trainings(training), m))


def _explained_updates(doc: Document, run: Any, s: MathStyle, m: Messages) -> None:
    """The update rule's formulas and the explained steps (records from explain.optimizers)."""
    from ..optimizers import explanation

    record = explanation(run, run.explain_steps, 6) if getattr(run, "explain_steps", ()) else None
    if not record or not record["steps"]:
        return
    add = doc.blocks.append
    add(Heading(2, [Text(m("optim_explained"))]))
    add(Paragraph([Text(m("optim_rule", update=m(f"optim_update_{record['update']}"), torch=record["torch"],
                          settings=", ".join(f"{k} = {v}" for k, v in record["settings"].items())))], "note"))
    for f in record["formulas"]:  # LaTeX has the formula's LaTeX; Typst gets the Unicode text
        add(Paragraph([Text(f["formula"])] if _is_typst(s) else [Math(f["latex"])]))
    typst = _is_typst(s)
    if record["schedule"]:
        add(Paragraph([Text(record["schedule"])] if typst else [Math(record["schedule_latex"])], "note"))
    for step in record["steps"]:
        add(Paragraph([Text(m("optim_step", step=step["step"], rate=f"{step['learning_rate']:.6g}"), strong=True)],
                      "label"))
        for p in step["parameters"]:
            add(Paragraph([Text(p["parameter"] + ":")], "label"))
            for line in p["lines"]:
                add(Paragraph([Text(line["numbers"])] if typst else [Math(line["numbers_latex"])], "note"))


#: A curve keeps at most this many points (evenly spaced steps, first and last included).
PLOT_POINTS = 400


def loss_plot(runs: Sequence[Any], m: Messages) -> Plot:
    """The loss curves of training runs, as :func:`explain.train.plot_losses` draws them:
    x in epochs when no run is full-batch, a log y axis when the losses span more than
    three orders of magnitude, and a cross where a run diverged."""
    by_epoch = all(getattr(r, "optimizer", "gd") != "gd" for r in runs)
    series = []
    for run in runs:
        losses = np.asarray(run.losses, dtype=float)
        per = max(int(getattr(run, "updates_per_epoch", 1) or 1), 1) if by_epoch else 1
        x = np.arange(len(losses)) / per
        keep = np.isfinite(losses)
        x, y = x[keep], losses[keep]
        if len(x) > PLOT_POINTS:
            idx = np.unique(np.linspace(0, len(x) - 1, PLOT_POINTS).round().astype(int))
            x, y = x[idx], y[idx]
        label = m("train_plot_label", rate=_rate(float(run.learning_rate))) if "train_plot_label" in _catalog(m) \
            else str(run.learning_rate)
        series.append(Series(label, x.tolist(), y.tolist(), bool(getattr(run, "diverged", False))))
    ys = [v for s_ in series for v in s_.y]
    log = bool(ys) and min(ys) > 0 and max(ys) > 1e3 * min(ys)
    xlabel = m("train_epoch") if by_epoch and "train_epoch" in _catalog(m) else m("pdf_step")
    return Plot(series, xlabel, m("pdf_loss"), log, [Text(m("pdf_loss_caption"))])


def _rate(x: float) -> str:
    return f"{x:g}"


def axis(lo: float, hi: float, log: bool = False, target: int = 5) -> tuple[float, float, list[float]]:
    """A plot axis: its ends and tick positions, at round numbers (1, 2, 2.5, 5 × 10ᵏ).

    With ``log``, values are exponents of ten: the ends are whole powers, a tick at each
    (every second or more when they are many).
    """
    if log:
        lo, hi = math.floor(lo), math.ceil(hi)
        if hi == lo:
            hi = lo + 1
        span = max(1, math.ceil((hi - lo) / 8))
        step = next(k for k in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000) if k >= span)
        lo, hi = math.floor(lo / step) * step, math.ceil(hi / step) * step
        return lo, hi, [float(k) for k in range(int(lo), int(hi) + 1, step)]
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return 0.0, 1.0, [0.0, 1.0]
    if hi == lo:
        lo, hi = (lo - 1, hi + 1) if lo == 0 else (lo - abs(lo) / 2, hi + abs(hi) / 2)
    raw = (hi - lo) / target
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(k * magnitude for k in (1, 2, 2.5, 5, 10) if (hi - lo) / (k * magnitude) <= target)
    lo, hi = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    ticks = [lo + i * step for i in range(int(round((hi - lo) / step)) + 1)]
    return lo, hi, [round(t, 12) for t in ticks]


def _catalog(m: Messages) -> dict[str, str]:
    return m._catalog


def _dots(s: MathStyle) -> str:
    return "dots" if _is_typst(s) else r"\dots"


def _vdots(s: MathStyle) -> str:
    return "dots.v" if _is_typst(s) else r"\vdots"


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
            source = graph_dot(solution.derivation, None, "auto", precision, lang)
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
