"""The "matrix form" part of the worked solution: the derivation over whole vectors and matrices.

Built from :func:`explain.tensorgraph.derive_matrix` for a problem with vectors or
matrices, as blocks of :mod:`explain.render.document` (so every format prints the
same facts): the forward stages with their shapes and matrices of numbers; the
backward pass, loss first, each δ a sum of one term per stage that uses it, each
term's formula, how the shapes of a product combine (``(2×1)(1×2) → (2×2)``) and
its numbers; each parameter's gradient; and, per parameter, one entry linked to the
scalar view's path sum of the same problem.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..i18n import Messages
from ..tensors import entry_name
from .blocks import Document, Eq, Equations, Heading, Inline, Math, Paragraph, Table, Text, _msg
from .mathprint import MathStyle
from .tensorprint import MAX_COLS, adjoint_name, bare_name, formula, language, shape_line, shape_math, tensor_value


def matrix_of(problem: Any) -> Any:
    """The matrix-form derivation of a problem with vectors or matrices; None for a scalar problem
    (or one whose scalar stages mix tensor entries, which has no matrix form)."""
    if problem is None or not getattr(problem, "shapes", None):
        return None
    from ..errors import ExplainError
    from ..tensorgraph import derive_matrix

    try:
        return derive_matrix(problem)
    except ExplainError:
        return None


def _shape_cell(style: MathStyle, m: Messages, shape: tuple[int, ...], batched: bool) -> list[Inline]:
    cell: list[Inline] = [Math(shape_math(style, shape))]
    if batched:
        cell.append(Text(" " + m("matrix_per_sample")))
    return cell


def _numbers(value: np.ndarray, style: MathStyle) -> str:
    """The numbers of a node: one row per sample for a per-sample node (values carry the sample axis)."""
    array = np.asarray(value, dtype=float)
    return tensor_value(array, style)


def _value(record: Any) -> np.ndarray:
    return record.value if record.batched else record.value[0]


def _term_value(term: Any, batched: bool) -> np.ndarray:
    value = np.asarray(term.value, dtype=float)
    return value if batched and value.shape[0] > 1 else value[0]


def matrix_section(doc: Document, md: Any, d: Any, style: MathStyle, m: Messages) -> None:
    """Append the matrix-form blocks of ``md`` (the scalar derivation ``d`` gives the linked entries)."""
    s = style
    add = doc.blocks.append
    loss = md.loss
    add(Heading(1, [Text(m("matrix_form"))]))
    symbols = {"latex": (r"\odot", r"\top", r"\sum_{i}"), "typst": ("dot.o", "top", "sum_i")}
    odot, top, sigma = symbols.get(language(s), ("⊙", "ᵀ", "Σᵢ"))
    add(Paragraph(_msg(m, "matrix_intro", odot=Math(odot), top=Math(top), sigma=Math(sigma)), "note"))
    n = md.program.n_samples
    if any(f.batched for f in md.forward):
        add(Paragraph([Text(m("matrix_batch_note", n=n))], "note"))

    add(Heading(2, [Text(m("matrix_forward"))]))
    add(Paragraph([Text(m("matrix_forward_intro"))], "note"))
    add(Table([[Text(m("stage"))], [Text(m("formula"))], [Text(m("matrix_shape"))]],
              [[[Math(bare_name(s, f.name))], [Math(formula(f.formula, s, loss))],
                _shape_cell(s, m, f.shape, f.batched)] for f in md.forward], "lll"))
    forward: list[Eq] = []
    for f in md.forward:
        name, value = bare_name(s, f.name), _value(f)
        blocks = _column_blocks(name, value, s)
        if len(blocks) == 1:
            forward.append(Eq(name, ((formula(f.formula, s, loss),), (_numbers(value, s),))))
        else:  # a wide value (one row per sample of a 10-unit layer): every number, in blocks of columns
            forward += [Eq(name, ((formula(f.formula, s, loss),),)), *blocks]
    add(Equations(forward))

    add(Heading(2, [Text(m("matrix_backward"))]))
    add(Paragraph([Text(m("matrix_backward_intro", loss=loss))], "note"))
    for record in md.adjoints:
        lhs = adjoint_name(s, record.name, loss)
        if not record.terms:  # the loss: δ_L = 1
            add(Equations([Eq(lhs, (("1",),))]))
            continue
        _adjoint(doc, record, lhs, s, m, loss)
    add(Heading(2, [Text(m("matrix_parameters"))]))
    add(Paragraph([Text(m("matrix_parameters_intro"))], "note"))
    for record in md.gradients:
        lhs = _total(s, loss, record.name)
        _adjoint(doc, record, lhs, s, m, loss)

    _scalar_link(doc, md, d, s, m)


def _total(s: MathStyle, loss: str, name: str) -> str:
    """dL/dW with the names printed bare (no sample index)."""
    return s._total.format(of=bare_name(s, loss), wrt=bare_name(s, name))


def _adjoint(doc: Document, record: Any, lhs: str, s: MathStyle, m: Messages, loss: str) -> None:
    """``lhs = term₁ + term₂ = numbers₁ + numbers₂ = total``; then how the shapes of products combine."""
    add = doc.blocks.append
    terms = record.terms
    formulas = tuple(formula(t.formula, s, loss) if i == 0 else "+ " + formula(t.formula, s, loss)
                     for i, t in enumerate(terms))
    rows: list[tuple[str, ...]] = [formulas]
    if len(terms) > 1:
        rows.append(tuple(_numbers(_term_value(t, record.batched), s) if i == 0
                          else "+ " + _numbers(_term_value(t, record.batched), s) for i, t in enumerate(terms)))
    if not terms:
        rows = [("0",)]
    total = _numbers(_value(record), s)
    if rows[-1] != (total,):  # dJ/dmean_l = 1, not = 1 = 1
        rows.append((total,))
    add(Equations([Eq(lhs, tuple(rows))]))
    shapes = [line for t in terms if (line := shape_line(t.formula, s))]
    if shapes:
        add(Paragraph([Text(m("matrix_shapes") + " "), *_join_math(shapes)], "note"))


def _join_math(items: list[str]) -> list[Inline]:
    out: list[Inline] = []
    for i, item in enumerate(items):
        if i:
            out.append(Text("; "))
        out.append(Math(item))
    return out


def _example_index(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The entry shown as the link: [0,1] of a matrix, [1] of a vector (the first when that is all)."""
    size = int(np.prod(shape))
    return tuple(int(i) for i in np.unravel_index(min(1, size - 1), shape))


def _scalar_link(doc: Document, md: Any, d: Any, s: MathStyle, m: Messages) -> None:
    """One sentence per tensor parameter: an entry of its gradient is the scalar view's path sum."""
    rows = []
    for record in md.gradients:
        if not record.shape:
            continue
        index = _example_index(record.shape)
        entry = entry_name(record.name, index)
        scalar = d.gradients.get(entry) if d is not None else None
        if scalar is None:
            continue
        rows.append(Paragraph(_msg(
            m, "matrix_link", entry=Math(_entry(s, record.name, index)), grad=f"d{md.loss}/d{record.name}",
            count=scalar.path_count, value=Math(s.number(scalar.value)),
            matrix=Math(s.number(md.entry(record.name, index))))))
    if rows:
        doc.blocks.append(Heading(2, [Text(m("matrix_scalar_view"))]))
        doc.blocks.append(Paragraph([Text(m("matrix_scalar_intro"))], "note"))
        doc.blocks.extend(rows)


def _entry(s: MathStyle, name: str, index: tuple[int, ...]) -> str:
    lang = language(s)
    base = bare_name(s, name)
    inner = ",".join(map(str, index))
    if lang == "text":
        return f"{name}[{inner}]"
    return f"{base}[{inner}]"  # one script level: a subscript's subscript is too small to read


#: The answer's matrices are written whole up to this many entries, in blocks of columns
#: that fit a page (MAX_COLS); a bigger one is elided like the steps (the JSON has it all).
WHOLE_ENTRIES = 400


def _column_blocks(lhs: str, value: np.ndarray, s: MathStyle) -> list[Eq]:
    """``lhs = matrix``, or for a wide matrix one equation per block of columns (``lhs[:, 0:7]``)."""
    array = np.asarray(value, dtype=float)
    if array.ndim != 2 or array.shape[1] <= MAX_COLS or array.size > WHOLE_ENTRIES:
        return [Eq(lhs, ((tensor_value(array, s),),))]
    out = []
    for start in range(0, array.shape[1], MAX_COLS):
        stop = min(start + MAX_COLS, array.shape[1])
        cut = f"[:, {start}:{stop}]"
        lang = language(s)
        # Brackets: the columns are the whole left side's (a fraction's, a subscripted name's).
        whole = {"latex": rf"\left({lhs}\right)", "typst": f"({lhs})"}.get(lang, lhs)
        label = {"latex": f"{whole}_{{{cut}}}", "typst": f"{whole}_(\\[:, {start}:{stop}\\])"}.get(lang, lhs + cut)
        out.append(Eq(label, ((tensor_value(array[:, start:stop], s),),)))
    return out


def tensor_gradients(doc: Document, md: Any, s: MathStyle, m: Messages, after: Any) -> None:
    """The gradients of a tensor problem (the answer): each parameter's matrix whole (a wide one in
    blocks of columns), and after one step of gradient descent when the training is one.
    Equations, not a table: a row of matrices does not fit a page's columns."""
    items = []
    for record in md.gradients:
        items += _column_blocks(_total(s, md.loss, record.name), _value(record), s)
    doc.blocks.append(Equations(items))
    if after is None:
        return
    updated = []
    for record in md.gradients:
        entries = [after[1].get(entry_name(record.name, idx) if record.shape else record.name)
                   for idx in np.ndindex(record.shape)]
        if all(e is not None for e in entries):
            updated += _column_blocks(bare_name(s, record.name), np.array(entries, float).reshape(record.shape), s)
    if updated:
        doc.blocks.append(Paragraph(_msg(m, "pdf_after_step", rate=Math(s.number(after[0]))), "label"))
        doc.blocks.append(Equations(updated))


def tensor_givens(md: Any, s: MathStyle, kind: str) -> list[list[Inline]]:
    """``W1 = [[…]]`` for each leaf of a kind (parameter, value), tensors whole."""
    out = []
    for name, leaf_kind in md.program.kinds.items():
        if leaf_kind == kind:
            out.append([Math(f"{bare_name(s, name)} = {tensor_value(md.program.values[name][0], s)}")])
    return out
