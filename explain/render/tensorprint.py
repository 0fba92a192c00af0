"""Formulas of the matrix-form derivation, and matrices of numbers, in the three math languages.

:mod:`explain.tensorgraph` writes every step of the tensor view as a tree of
:class:`~explain.tensorgraph.TNode` s; this module prints such a tree as a course
writes it — ``δ_{z_1} x^⊤``, ``W_2^⊤ δ_{z_2} ⊙ σ′(z_1)``, ``Σᵢ``, ``1/n`` — in
plain text, LaTeX or Typst, with the names spelled as the output's
:class:`~explain.render.mathprint.MathStyle` spells them everywhere else (``z1`` →
``z_1``, Greek letters).  Numbers go through the style's ``number``, so a matrix
shows the same digits as a scalar step.

Big tensors are elided (:data:`MAX_ROWS`, :data:`MAX_COLS`): the first and last rows
and columns, with dots between; the JSON output has every number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..functions import OPS, display_names
from ..tensorgraph import TNode
from ..tensors import shape_text
from .mathprint import LatexMath, MathStyle, TypstMath, typst_string

#: A matrix shows at most this many rows and columns (the first ones and the last one):
#: seven columns of six-digit numbers fit a page's width, twelve rows a 10-unit layer.
MAX_ROWS = 12
MAX_COLS = 7

_TEXT_NAMES = display_names("text")
_LATEX_NAMES = {"log": r"\log", "exp": r"\exp", "tanh": r"\tanh", **display_names("latex")}
_TYPST_NAMES = display_names("typst")
_TYPST_BARE = {"sin", "cos", "tan", "sinh", "cosh", "tanh", "exp", "ln", "log", "max", "min", "sqrt", "abs", "sigma"}

# Binding strength of each operation: a child weaker than its place is parenthesised.
# An adjoint is a fraction (dL/dz): bracketed before a transpose or a power.
_PRECEDENCE = {"add": 1, "sub": 1, "neg": 2, "mul": 2, "div": 2, "matmul": 2, "outer": 2, "adjoint": 3, "pow": 4,
               "T": 4}


def language(style: MathStyle) -> str:
    return "typst" if isinstance(style, TypstMath) else "latex" if isinstance(style, LatexMath) else "text"


def bare_name(style: MathStyle, name: str) -> str:
    """A tensor's name as the style prints it, without a sample index (a formula is per sample)."""
    return type(style)(style.precision).name(name)


class _Printer:
    def __init__(self, style: MathStyle, loss: str) -> None:
        self.s = style
        self.lang = language(style)
        self.loss = loss

    # -- pieces each language spells differently --------------------------------------
    def paren(self, text: str) -> str:
        return {"latex": rf"\left({text}\right)"}.get(self.lang, f"({text})")

    def word(self, w: str) -> str:
        """An operator name written as a word: upright in LaTeX, a string in Typst."""
        if self.lang == "latex":
            return rf"\operatorname{{{w}}}"
        if self.lang == "typst":
            return w if w in _TYPST_BARE else typst_string(w)
        return w

    def function(self, name: str | None) -> str:
        name = name or "?"
        op = OPS.get(name)
        user = (op.user or op.name) if op else name
        if self.lang == "latex":
            return _LATEX_NAMES.get(name) or rf"\operatorname{{{user}}}"
        if self.lang == "typst":
            spelled = _TYPST_NAMES.get(name, user)
            return spelled if spelled in _TYPST_BARE else typst_string(spelled)
        return _TEXT_NAMES.get(name, user)

    def adjoint(self, name: str) -> str:
        """dL/dz, the adjoint of a stage, written as the scalar view writes a gradient: a course's
        δ_{z_1} puts the 1 two script levels down, too small to read on a page."""
        return self.s._total.format(of=bare_name(self.s, self.loss), wrt=bare_name(self.s, name))

    def transpose(self, text: str) -> str:
        return {"latex": f"{text}^{{\\top}}", "typst": f"{text}^top"}.get(self.lang, f"{text}ᵀ")

    def hadamard(self) -> str:
        return {"latex": r" \odot ", "typst": " dot.o "}.get(self.lang, " ⊙ ")

    def times(self) -> str:
        return {"latex": r" \cdot ", "typst": " dot "}.get(self.lang, "·")

    def matmul(self) -> str:
        return {"latex": r" \, ", "typst": " "}.get(self.lang, " @ ")

    def fraction(self, num: str, den: str) -> str:
        if self.lang == "latex":
            return rf"\frac{{{num}}}{{{den}}}"
        if self.lang == "typst":
            return f"({num})/({den})"
        return f"{num}/{den}"

    def power(self, base: str, exp: str) -> str:
        if self.lang == "latex":
            return f"{{{base}}}^{{{exp}}}"
        if self.lang == "typst":
            return f"{base}^({exp})"
        return f"{base}²" if exp == "2" else f"{base}^{exp}"

    def shape(self, shape: tuple[int, ...]) -> str:
        return shape_math(self.s, shape)

    def constant(self, node: TNode) -> str:
        label = node.label
        if label and "/" in label:
            num, den = label.split("/", 1)
            return self.fraction(num, den)
        if label == "pi":
            return {"latex": r"\pi", "typst": "pi"}.get(self.lang, "pi")
        if label:
            return label
        number = float(node.number or 0.0)
        return str(int(number)) if number == int(number) and abs(number) < 1e6 else self.s.number(number)

    def sample_sum(self, body: str, mean: bool) -> str:
        if self.lang == "latex":
            lead = r"\frac{1}{n} " if mean else ""
            return lead + r"\sum_{i} " + body
        if self.lang == "typst":
            return ("1/n " if mean else "") + "sum_i " + body
        return ("(1/n) " if mean else "") + "Σᵢ " + body

    # -- the tree ---------------------------------------------------------------------
    def wrap(self, child: TNode, level: int) -> str:
        text = self.visit(child)
        if _PRECEDENCE.get(child.op, 9) < level or (child.op == "const" and child.number is not None
                                                       and child.number < 0 and not child.label):
            return self.paren(text)
        return text

    def visit(self, node: TNode) -> str:  # noqa: C901 - one branch per operation
        op, a = node.op, node.args
        if op == "name":
            return bare_name(self.s, str(node.name))
        if op == "adjoint":  # the loss's own adjoint is 1: dE/dE/2 reads worse than 1/2
            return "1" if node.name == self.loss else self.adjoint(str(node.name))
        if op == "const":
            return self.constant(node)
        if op == "add":
            return f"{self.visit(a[0])} + {self.wrap(a[1], 2)}"
        if op == "sub":
            return f"{self.visit(a[0])} - {self.wrap(a[1], 2)}"
        if op == "neg":
            return f"-{self.wrap(a[0], 3)}"
        if op == "mul":
            elementwise = not _scalar(a[0]) and not _scalar(a[1])
            return self.wrap(a[0], 2) + (self.hadamard() if elementwise else self.times()) + self.wrap(a[1], 3)
        if op == "div":
            if self.lang == "text":
                return f"{self.wrap(a[0], 2)}/{self.wrap(a[1], 4)}"
            return self.fraction(self.visit(a[0]), self.visit(a[1]))
        if op == "pow":
            return self.power(self.wrap(a[0], 5), self.visit(a[1]))
        if op == "matmul":
            return self.wrap(a[0], 2) + self.matmul() + self.wrap(a[1], 3)
        if op == "outer":
            return self.wrap(a[0], 3) + self.matmul() + self.transpose(self.wrap(a[1], 5))
        if op == "T":
            return self.transpose(self.wrap(a[0], 5))
        if op == "f":
            return self.function(node.name) + self.paren(", ".join(self.visit(x) for x in a))
        if op == "df":
            head = self.function(node.name)
            prime = "'" if self.lang != "text" else "′"
            if self.lang == "typst" and head.startswith('"'):  # "ReLU"' would take the argument as a script
                head, prime = head[:-1] + '′"', ""
            which = f"_{node.axis + 1}" if len(a) > 1 and node.axis is not None else ""
            return head + prime + which + self.paren(", ".join(self.visit(x) for x in a))
        if op in ("sum", "mean"):
            head = self.word(op)
            if node.axis is not None:
                axis = {"latex": rf"_{{\mathrm{{axis}}\,{node.axis}}}", "typst": f'_("axis" {node.axis})'} \
                    .get(self.lang, f"_axis{node.axis}")
                head += axis
            return head + self.paren(self.visit(a[0]))
        if op == "spread" and _scalar(node):  # a number times a tensor needs no spreading written
            return self.visit(a[0])
        if op == "spread":  # the cotangent of a sum along an axis: the same numbers along that axis
            return self.word("spread") + self.sub(self.shape(node.shape)) + self.paren(self.visit(a[0]))
        if op == "unbroadcast":  # summed back over the axes broadcasting repeated
            return self.word("sum") + self.sub("→" if self.lang == "text" else
                                                (r"\to " if self.lang == "latex" else "arrow ")
                                                + self.shape(node.shape)) + self.paren(self.visit(a[0]))
        if op in ("sample_sum", "sample_mean"):
            return self.sample_sum(self.wrap(a[0], 3), op == "sample_mean")
        if op == "norm2":
            inner = self.visit(a[0])
            if self.lang == "latex":
                return rf"\lVert {inner} \rVert^{{2}}"
            if self.lang == "typst":
                return f"norm({inner})^2"
            return f"‖{inner}‖²"
        return self.word(op) + self.paren(", ".join(self.visit(x) for x in a))

    def sub(self, text: str) -> str:
        if self.lang == "latex":
            return f"_{{{text}}}"
        if self.lang == "typst":
            return f"_({text})"
        return f"[{text}]"


def _scalar(node: TNode) -> bool:
    """A number, or a number spread over a shape (the cotangent of a full sum): written as a number."""
    return not node.shape or (node.op == "spread" and node.axis is None and not node.args[0].shape)


def formula(node: TNode, style: MathStyle, loss: str = "L") -> str:
    """A formula of the tensor view printed in ``style``'s language (``δ_{z_1} x^⊤``)."""
    return _Printer(style, loss).visit(node)


def adjoint_name(style: MathStyle, name: str, loss: str = "L") -> str:
    """The adjoint dL/dname of a stage, as the formulas print it."""
    return _Printer(style, loss).adjoint(name)


def shape_math(style: MathStyle, shape: tuple[int, ...]) -> str:
    """A shape as math, ``(2×1)``: a vector is a column, a number ``(1×1)`` (as the products of the course write them)."""
    lang = language(style)
    dims = [str(d) for d in shape] or ["1"]
    if len(dims) == 1:
        dims.append("1")  # a vector is a column
    sep = {"latex": r" \times ", "typst": " times "}.get(lang, "×")
    return "(" + sep.join(dims) + ")"


def shape_line(node: TNode, style: MathStyle) -> str | None:
    """How a product's shapes combine, ``(2×1)(1×2) → (2×2)``; None for other operations."""
    lang = language(style)
    arrow = {"latex": r" \to ", "typst": " arrow "}.get(lang, " → ")
    core = _core(node)
    if core.op == "outer":
        a, b = core.args
        left = shape_math(style, a.shape)
        right = shape_math(style, (1, *b.shape)) if len(b.shape) == 1 else shape_math(style, tuple(reversed(b.shape)))
        return left + right + arrow + shape_math(style, core.shape)
    if core.op == "matmul":
        a, b = core.args
        return shape_math(style, a.shape) + shape_math(style, b.shape) + arrow + shape_math(style, core.shape)
    return None


def _core(node: TNode) -> TNode:
    """The product a step is about, under a sum over samples or a sum back to a shape."""
    while node.op in ("sample_sum", "unbroadcast", "sample_mean") and node.args:
        node = node.args[0]
    if node.op == "mul":  # a scalar factor times a product (1/n · δ xᵀ)
        for arg in node.args:
            if arg.op in ("outer", "matmul"):
                return arg
    return node


# -- matrices of numbers ------------------------------------------------------------------------
def _keep(n: int, most: int) -> list[int | None]:
    """Indices shown of ``n``: all, or the first ``most - 1``, None for the dots, then the last."""
    if n <= most:
        return list(range(n))
    return [*range(most - 2), None, n - 1]


def matrix(value: Any, style: MathStyle) -> str:
    """A number, vector (a column) or matrix as math with its numbers; bigger arrays show
    their first entries (a 3-d array: its first matrix, said with dots)."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        return style.number(float(array))
    if array.ndim == 1:
        array = array[:, None]
    while array.ndim > 2:
        array = array[0]
    lang = language(style)
    rows = _keep(array.shape[0], MAX_ROWS)
    cols = _keep(array.shape[1], MAX_COLS)
    hdots = {"latex": r"\cdots", "typst": "dots.c"}.get(lang, "…")
    vdots = {"latex": r"\vdots", "typst": "dots.v"}.get(lang, "⋮")
    ddots = {"latex": r"\ddots", "typst": "dots.down"}.get(lang, "⋱")
    grid = []
    for i in rows:
        line = []
        for j in cols:
            if i is None:
                line.append(ddots if j is None else vdots)
            else:
                line.append(hdots if j is None else style.number(float(array[i, j])))
        grid.append(line)
    if lang == "latex":
        # Braces: the whole matrix is one group, never cut between its entries as a sum would be.
        return "{\\begin{bmatrix}" + r" \\ ".join(" & ".join(r) for r in grid) + r"\end{bmatrix}}"
    if lang == "typst":
        return 'mat(delim: "[", ' + "; ".join(", ".join(r) for r in grid) + ")"
    return "[" + ", ".join("[" + ", ".join(r) + "]" for r in grid) + "]"


def vector_text(value: Any, style: MathStyle) -> str:
    """A vector in plain text as a row ``[0.1, 0.2]`` (a column reads badly on a terminal)."""
    array = np.asarray(value, dtype=float).reshape(-1)
    return "[" + ", ".join("…" if i is None else style.number(float(array[i])) for i in _keep(len(array), MAX_COLS)) + "]"


def tensor_value(value: Any, style: MathStyle) -> str:
    """A tensor's numbers as the style shows them: a matrix on pages, a nested list in text."""
    array = np.asarray(value, dtype=float)
    if language(style) == "text" and array.ndim == 1:
        return vector_text(array, style)
    return matrix(array, style)
