"""The worked solution as one document: format-neutral blocks, built once.

:func:`build_document` walks a :class:`~explain.derivation.Derivation` and its
reports (verification, training) once and lays out the sections as blocks —
headings, paragraphs (notes, labels, results), facts, tables, equation chains,
figures, a loss plot — whose math is already printed by the output's
:class:`~explain.render.mathprint.MathStyle`.  Every printer (text, Markdown,
LaTeX, Typst/PDF; an HTML printer would be one more) only prints these blocks,
so this module is the one place that decides which facts a reader is shown:
the formats cannot disagree.

Values reach the blocks through :class:`~explain.render.steps.StepWriter` and
the style's ``number`` only, so a node whose value becomes a matrix needs a
matrix printed by the style, not a change of the blocks.

``sections`` (see :data:`SECTIONS`) selects parts of the solution; ``handout``
gives the problem sheet without the solution.  The givens and the table of
gradients (the answer) are always shown in a solution.  A problem with vectors or
matrices gets the matrix form (:mod:`explain.render.matrixform`) and, by default, only
that view (:data:`TENSOR_SECTIONS`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import ExplainError
from ..i18n import Messages
# The blocks live in explain.render.blocks (the matrix form builds them too); the printers
# and callers know them under this module.
from .blocks import (Block, Cell, Document, Eq, Equations, Facts, Figure, Heading, Inline, Math,  # noqa: F401
                     Paragraph, Plot, Series, Table, Text, _join, _msg)
from .mathprint import MathStyle
from .steps import StepWriter, shown_edges, shown_nodes

#: The parts of a worked solution a reader may choose (``--sections``), in order.
SECTIONS = ("forward", "local", "backward", "paths", "delta", "matrix", "verification", "training")
#: What a problem with vectors or matrices shows unless asked for more: the matrix form
#: replaces the scalar view's steps, one per entry (a 4-10-3 classifier has 83 parameters
#: and hundreds of entry stages); ``--sections forward,local,backward,paths,delta`` shows
#: them, and the JSON output always has every path.
TENSOR_SECTIONS = ("matrix", "verification", "training")
#: A problem with vectors or matrices of at most this many parameter entries (Mazur's 2-2-2
#: network has 8) shows both views by default: the scalar steps, then the matrix form.
SCALAR_VIEW_ENTRIES = 16
#: Training histories longer than this show their first and last steps only.
HISTORY_ROWS = 12
#: Parameters shown as columns of the training table (the rest are left out, and a note
#: says so); the printers split a wide table into tables of the columns that fit.
HISTORY_COLUMNS = 40
#: Rows of a data preview.
DATA_ROWS = 5
#: A parameter with at most this many paths to the loss gets its whole path sum.
PATHS_SHOWN = 4
#: Past PATHS_SHOWN, this many paths are written and the rest summarized ("… 6 more
#: paths, see the delta form"): a sum of dozens of products fills pages without
#: teaching more than the delta form does, and shrinking it makes it unreadable.
PATHS_PREVIEW = 2
#: On pages (PDF, LaTeX), a big network writes out this many local derivatives, forward
#: equations and backward deltas, spread evenly over the layers, and says how many more
#: there are: hundreds of equations of the same form teach nothing more and cost a minute
#: to typeset.  The tables (stages, gradients) stay whole; the text output lists every step.
PAGE_LOCALS = 48
PAGE_STAGES = 24
#: Up to PAGE_CHAIN_PARAMETERS parameters all get their chain rule (a 3-4-4-2 network has
#: 36); a bigger network gets PAGE_CHAIN_SAMPLE of them written out, spread over the
#: layers, in every format alike (every parameter keeps its count of paths; the table of
#: gradients has every value, `--format json` every path).
PAGE_CHAIN_PARAMETERS = 40
PAGE_CHAIN_SAMPLE = 16


# -- choosing sections ------------------------------------------------------------------
def parse_sections(sections: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"forward,delta"`` or ``["forward", "delta"]`` as a tuple of known section names
    (all of them for None); anything else is an ExplainError naming the choices."""
    if sections is None:
        return SECTIONS
    if isinstance(sections, str):
        names = [s.strip() for s in sections.split(",") if s.strip()]
    elif isinstance(sections, Iterable) and all(isinstance(s, str) for s in sections):
        names = [s.strip() for s in sections]
    else:
        raise ExplainError("sections", f"expected section names as text, got {type(sections).__name__}")
    unknown = [s for s in names if s not in SECTIONS]
    if unknown or not names:
        what = f"unknown section {unknown[0]!r}" if unknown else "no section named"
        raise ExplainError("--sections", f"{what}; choose from {', '.join(SECTIONS)} (comma-separated)")
    return tuple(s for s in SECTIONS if s in names)


# -- splitting long equations ---------------------------------------------------------
def top_level(s: str) -> Iterator[int]:
    """The positions of the characters of printed math outside brackets, braces and quoted
    strings (a backslash in a string escapes the next character)."""
    depth, i, quoted = 0, 0, False
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
        elif depth == 0:
            yield i
        i += 1


def split_terms(s: str) -> tuple[str, ...]:
    """Cut printed math at its top-level ``+`` and ``-`` signs: ``a + (b - c) - d`` →
    ``a``, ``+ (b - c)``, ``- d``.  Brackets, braces and quoted strings are kept whole."""
    terms: list[str] = []
    start = 0
    for i in top_level(s):
        if s[i] in "+-" and s[i - 1:i] == " " and s[i + 1:i + 2] == " " and i > 1:
            terms.append(s[start:i - 1])
            start = i
    terms.append(s[start:])
    return tuple(t for t in terms if t)


def _eq(equation: Any) -> Eq:
    if equation is None or isinstance(equation, Eq):
        return equation
    return Eq(equation.lhs, tuple(split_terms(r) for r in equation.rhs))


# -- the document of a solution --------------------------------------------------------
def outline(solution: Any, style: MathStyle, lang: str = "en", figures: Sequence[str] = (),
            sections: str | Iterable[str] | None = None, handout: bool | None = None, pages: bool = False) -> Document:
    """:func:`build_document` of a :class:`~explain.api.Solution`; the sections and the
    handout mode default to the ones the solution was asked with (``explain.solve``)."""
    return build_document(
        solution.derivation, style, lang,
        verification=solution.verification, training=solution.training, figures=figures,
        sections=getattr(solution, "sections", None) if sections is None else sections,
        handout=bool(getattr(solution, "handout", False)) if handout is None else handout, pages=pages,
        matrix=_matrix(solution))


def _entries(matrix: Any) -> int:
    """How many numbers the parameters of a matrix-form derivation hold."""
    return sum(int(np.prod(g.shape)) for g in matrix.gradients)


def _matrix(solution: Any) -> Any:
    """The solution's matrix-form derivation (None for a scalar problem), computed once per solution."""
    from .matrixform import matrix_of

    cache = getattr(solution, "__dict__", None)
    if cache is None:
        return matrix_of(getattr(solution, "problem", None))
    if "_matrix_form" not in cache:
        cache["_matrix_form"] = matrix_of(getattr(solution, "problem", None))
    return cache["_matrix_form"]


def build_document(
    derivation: Any,
    style: MathStyle,
    lang: str = "en",
    *,
    verification: Any = None,
    training: Any = None,
    figures: Sequence[str] = (),
    sections: str | Iterable[str] | None = None,
    handout: bool = False,
    title: str | None = None,
    pages: bool = False,
    matrix: Any = None,
) -> Document:
    """The worked solution (or with ``handout`` the problem sheet) as blocks, math printed by ``style``.

    ``figures`` names the figures the printer can show (``"graph"``, ``"plot"``).
    ``pages``: the document is typeset on pages (PDF, LaTeX), where a big network's
    repeated equations are sampled (see :data:`PAGE_LOCALS`).  ``matrix``: the problem's
    :class:`~explain.tensorgraph.MatrixDerivation` (a problem with vectors or matrices).
    """
    from .. import __version__

    default = sections is None
    chosen = parse_sections(sections)
    scalar_dropped = default and matrix is not None and _entries(matrix) > SCALAR_VIEW_ENTRIES
    if scalar_dropped:
        chosen = TENSOR_SECTIONS
    m = Messages(lang)
    d = derivation
    g = d.graph
    w = StepWriter(d, style)
    s = style
    subtitle = m("handout_subtitle") if handout else m("pdf_subtitle")
    doc = Document(title if title is not None else (g.title or m("problem")), subtitle,
                   m("pdf_generated", version=__version__), lang)
    add = doc.blocks.append
    if not handout and verification is not None and not verification.passed:
        add(Paragraph([Text(verification.banner(m))], "alert"))

    # The handout leaves the graph out: the drawn graph shows every value and gradient
    # (a blank graph for students is the graph renderer's to draw).
    _problem(doc, d, s, m, () if handout else figures, matrix)
    if handout:
        _handout(doc, d, s, m, chosen)
        return doc

    if "forward" in chosen:
        add(Heading(1, [Text(m("forward_pass"))]))
        add(Paragraph([Text(m("forward_intro"))], "note"))
        if g.is_data_problem:
            add(Paragraph([Text(m("per_sample_note", n=g.n_samples, loss=g.loss)),
                           Text(" "), Text(m("sample_shown", i=1))], "note"))
        add(Table([[Text(m("stage"))], [Text(m("formula"))], [Text(m("value"))]],
                  [[[Math(s.name(f.name))], [Math(s.expr(f.expr))], [Math(w.value(f.value))]] for f in d.forward],
                  "llr"))
        steps = _spread(list(d.forward), PAGE_STAGES) if pages else list(d.forward)
        forward = [_eq(w.forward(f)) for f in steps]
        add(Equations(forward, columns=2 if len(forward) >= 4 else 1))
        if len(steps) < len(d.forward):
            add(Paragraph([Text(m("pdf_more_stages", more=len(d.forward) - len(steps)))], "note"))
    from ..stage import EXPRESSION_SOURCE

    key = "result_is" if g.source == EXPRESSION_SOURCE else "loss_is"
    add(Paragraph(_msg(m, key, name=Math(s.name(g.loss)), value=Math(s.number(d.loss_value))), "result"))

    if "local" in chosen:
        add(Heading(1, [Text(m("local_partials"))]))
        add(Paragraph([Text(m("local_intro"))], "note"))
        edges = shown_edges(d)
        written = _spread(edges, PAGE_LOCALS) if pages else edges
        add(Equations([_eq(w.local(step)) for step in written], columns=2))
        if len(written) < len(edges):
            add(Paragraph([Text(m("pdf_more_locals", more=len(edges) - len(written)))], "note"))

    if "backward" in chosen:
        add(Heading(1, [Text(m("backward_pass"))]))
        add(Paragraph([Text(m("backward_intro"))], "note"))
        backward = [name for name in shown_nodes(d) if g.nodes[name].kind != "parameter"]
        written = _spread(backward, PAGE_STAGES) if pages else backward
        add(Equations([_eq(w.adjoint(d.adjoints[name])) for name in written]))
        if len(written) < len(backward):
            add(Paragraph([Text(m("pdf_more_deltas", more=len(backward) - len(written)))], "note"))

    if "paths" in chosen or "delta" in chosen:
        _chain_rule(doc, w, m, "paths" in chosen, "delta" in chosen, pages)

    if matrix is not None and "matrix" in chosen:
        from .matrixform import matrix_section

        matrix_section(doc, matrix, d, s, m)
        if scalar_dropped:
            add(Paragraph([Text(m("matrix_scalar_sections"))], "note"))
    _gradients(doc, d, s, m, training, matrix)
    if verification is not None and "verification" in chosen:
        _verification(doc, verification, s, m)
    if training is not None and "training" in chosen:
        _training(doc, training, s, m, "plot" in figures)
    return doc


def _problem(doc: Document, d: Any, s: MathStyle, m: Messages, figures: Sequence[str], matrix: Any = None) -> None:
    """The givens: description, parameters and values, the data, the graph."""
    g = d.graph
    add = doc.blocks.append
    add(Heading(1, [Text(m("problem"))]))
    for para in re.split(r"\n\s*\n", g.description or ""):
        if para.strip():
            add(Paragraph([Text(" ".join(para.split()))]))
    facts: list[tuple[str, list[Inline]]] = []
    for key, kind in (("parameters", "parameter"), ("values", "value")):
        names = [n.name for n in g.nodes.values() if n.kind == kind]
        if names and matrix is not None:  # vectors and matrices whole, not entry by entry
            from .matrixform import tensor_givens

            facts.append((m(key), _join(tensor_givens(matrix, s, kind))))
        elif names:
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


def _handout(doc: Document, d: Any, s: MathStyle, m: Messages, chosen: Sequence[str]) -> None:
    """The problem sheet: the stages as formulas, and what to compute — no number of the solution."""
    g = d.graph
    add = doc.blocks.append
    add(Heading(1, [Text(m("handout_stages"))]))
    if g.is_data_problem:
        add(Paragraph([Text(m("handout_per_sample", n=g.n_samples))], "note"))
    add(Table([[Text(m("stage"))], [Text(m("formula"))]],
              [[[Math(s.name(f.name))], [Math(s.expr(f.expr))]] for f in d.forward], "ll"))
    add(Heading(1, [Text(m("handout_tasks"))]))
    tasks = [("forward", "handout_task_forward"), ("local", "handout_task_local"),
             ("backward", "handout_task_backward"), ("paths", "handout_task_paths"),
             ("delta", "handout_task_delta")]
    numbered = [key for section, key in tasks if section in chosen] + ["handout_task_gradients"]
    for i, key in enumerate(numbered, 1):
        add(Paragraph([Text(f"{i}. "), *_msg(m, key, loss=Math(s.name(g.loss)))]))
    add(Table([[Text(m("parameter"))], [Text(m("gradient"))]],
              [[[Math(w)], [Text("")]] for w in (s.total(g.loss, name) for name in d.gradients)], "ll"))


def _chain_rule(doc: Document, w: StepWriter, m: Messages, paths: bool, delta: bool, pages: bool = False) -> None:
    """Parameter by parameter: the sum over paths (whole up to PATHS_SHOWN paths, else its
    first PATHS_PREVIEW paths and how many more), and the delta form.  A network of more
    than PAGE_CHAIN_PARAMETERS parameters has the equations of a sample of them."""
    s, d = w.style, w.d
    add = doc.blocks.append
    add(Heading(1, [Text(m("chain_rule"))]))
    add(Paragraph([Text(m("chain_intro"))], "note"))
    written = set(d.gradients)
    if len(written) > PAGE_CHAIN_PARAMETERS:
        written = set(_spread(list(d.gradients), PAGE_CHAIN_SAMPLE))
        add(Paragraph([Text(m("pdf_more_parameters", shown=len(written), count=len(d.gradients)))], "note"))
    for name, gradient in d.gradients.items():
        count = Paragraph(_msg(m, "path_count", count=gradient.path_count, name=Math(s.name(name))), "note")
        if name not in written:  # its count of paths only: the table of gradients has its value
            add(count)
            continue
        add(Heading(2, [Math(s.name(name))]))
        add(count)
        if gradient.path_count == 0:
            add(Paragraph(_msg(m, "no_paths", name=Math(s.name(name)))))
            continue
        if paths:
            chain = w.chain(gradient) if gradient.path_count <= PATHS_SHOWN else None
            doc.blocks.append(Paragraph([Text(m("path_form"))], "label"))
            if chain is not None:
                add(Equations([_eq(chain)]))
            else:
                preview = _path_preview(w, gradient)
                if preview is None:  # the paths were not listed (too many to enumerate)
                    add(Paragraph(_msg(m, "too_many_paths", count=gradient.path_count, name=Math(s.name(name))),
                                  "note"))
                else:
                    add(Equations([preview]))
                    more = gradient.path_count - (len(preview.rows[0]) - 1)
                    add(Paragraph(_msg(m, "more_paths", count=more), "note"))
        if delta:
            doc.blocks += [Paragraph([Text(m("delta_form"))], "label"), Equations([_eq(w.delta(gradient))])]


def _path_preview(w: StepWriter, gradient: Any) -> Eq | None:
    """The first PATHS_PREVIEW paths of a long sum, each a product of local derivatives, then ``+ …``."""
    s, g = w.style, w.graph
    paths = list(gradient.paths[:PATHS_PREVIEW])
    if not paths:
        return None
    terms = []
    for i, p in enumerate(paths):
        product = s.product([s.partial(f.dst, f.src) for f in p.factors])
        if any(g.nodes[f.dst].per_sample for f in p.factors):
            product = s.sample_sum(product, False)
        terms.append(product if i == 0 else "+ " + product)
    return Eq(w.total_partial(gradient.name), (tuple(terms) + ("+ " + _dots(s),),))


def _gradients(doc: Document, d: Any, s: MathStyle, m: Messages, training: Any, matrix: Any = None) -> None:
    g = d.graph
    add = doc.blocks.append
    add(Heading(1, [Text(m("gradients"))]))
    after = _after_one_step(training)
    if matrix is not None:
        from .matrixform import tensor_gradients

        tensor_gradients(doc, matrix, s, m, after)
        return
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


def _bare(style: MathStyle, name: str) -> str:
    """A name without its sample index (a data column as a whole, the reduced loss)."""
    return type(style)(style.precision).name(name)


def _language(style: MathStyle) -> str:
    from .mathprint import LatexMath, TypstMath

    return "typst" if isinstance(style, TypstMath) else "latex" if isinstance(style, LatexMath) else "text"


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
        return '"–"' if _language(s) == "typst" else "-"
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
    """The check against torch.optim, the update rule's formulas and the explained steps
    (records from explain.optimizers)."""
    from ..optimizers import explanation

    add = doc.blocks.append
    check = getattr(run, "optimizer_check", None)
    if check is not None:
        add(Paragraph([Text(check.message(m))], "note" if check.passed else "alert"))
    record = explanation(run, run.explain_steps, 6) if getattr(run, "explain_steps", ()) else None
    if not record or not record["steps"]:
        return
    latex = _language(s) == "latex"  # LaTeX and Markdown get the formulas' LaTeX, the others their Unicode text
    add(Heading(2, [Text(m("optim_explained"))]))
    add(Paragraph([Text(m("optim_rule", update=m(f"optim_update_{record['update']}"), torch=record["torch"],
                          settings=", ".join(f"{k} = {v}" for k, v in record["settings"].items())))], "note"))
    for f in record["formulas"]:
        add(Paragraph([Math(f["latex"])] if latex else [Text(f["formula"])]))
    if record["schedule"]:
        add(Paragraph([Math(record["schedule_latex"])] if latex else [Text(record["schedule"])], "note"))
    for step in record["steps"]:
        add(Paragraph([Text(m("optim_step", step=step["step"], rate=f"{step['learning_rate']:.6g}"), strong=True)],
                      "label"))
        for p in step["parameters"]:
            add(Paragraph([Text(p["parameter"] + ":")], "label"))
            for line in p["lines"]:
                add(Paragraph([Math(line["numbers_latex"])] if latex else [Text(line["numbers"])], "note"))


def _spread(items: list[Any], most: int) -> list[Any]:
    """At most ``most`` of ``items``, evenly spaced, in order, first and last included."""
    if len(items) <= most:
        return items
    keep = np.unique(np.linspace(0, len(items) - 1, most).round().astype(int))
    return [items[i] for i in keep]


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
    return {"typst": "dots", "latex": r"\dots"}.get(_language(s), "…")


def _vdots(s: MathStyle) -> str:
    return {"typst": "dots.v", "latex": r"\vdots"}.get(_language(s), "⋮")
