"""The tree of the tensor view: one operation with its shape, for programs and for their derivations.

A :class:`TNode` is both a stage's expression (``W1 @ x + b1``) and a formula of the
backward pass (``δ xᵀ``); every node knows its shape, so every step of a derivation
has its shapes.  The constructors here check shapes as a tree is built (NumPy's rules,
the scalar view's messages); :func:`print_text` writes a tree as a course does.
"""

from __future__ import annotations

from dataclasses import dataclass

from .functions import OPS
from .tensors import Shape, broadcast_shape, matmul_shape, shape_text


@dataclass(frozen=True, eq=False)
class TNode:
    """One operation of a tensor program, or of a formula of its derivation.

    ``op`` is one of :data:`FORWARD_OPS` (what a file can write) or of the ops only
    derivations make (``adjoint``, ``outer``, ``df``, ``spread``, ``unbroadcast``,
    ``onehot``, ``sample_sum``).  ``name`` is the referenced name (``name``,
    ``adjoint``) or the function (``f``, ``df``); ``axis`` the axis of a reduction
    (``df``: which argument); ``number`` a constant's value; ``shape`` the shape of
    one sample's value; ``batched`` whether it has one value per sample.
    """

    op: str
    args: tuple[TNode, ...] = ()
    shape: Shape = ()
    batched: bool = False
    name: str | None = None
    number: float | None = None
    axis: int | None = None
    #: How a constant is written where its number is not the point (``1/n``).
    label: str | None = None

    def names(self) -> set[str]:
        """Every name the tree refers to."""
        found: set[str] = set()
        stack = [self]
        while stack:
            node = stack.pop()
            if node.op in ("name", "adjoint") and node.name:
                found.add(node.name)
            stack.extend(node.args)
        return found

    def text(self, loss: str = "L") -> str:
        """The formula in plain text (``dL/dz1 x^T``): :mod:`explain.render` prints it in other formats."""
        return print_text(self, loss)

    def __repr__(self) -> str:
        return f"TNode({self.text()!r}, shape={self.shape}{', batched' if self.batched else ''})"


FORWARD_OPS = ("name", "const", "add", "sub", "mul", "div", "pow", "neg", "matmul", "T", "f",
               "sum", "mean", "softmax", "log_softmax", "logsumexp", "cross_entropy", "mse", "norm2", "bce",
               "sample_sum", "sample_mean")

_BINARY_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div", "**": "pow"}


def const(value: float, label: str | None = None) -> TNode:
    return TNode("const", number=float(value), label=label)


def binary(op: str, a: TNode, b: TNode, symbol: str | None = None) -> TNode:
    """An elementwise operation with NumPy's broadcasting (``symbol`` names it in errors)."""
    shape = broadcast_shape(symbol or op, a.shape, b.shape)
    return TNode(op, (a, b), shape, a.batched or b.batched)


def matmul(a: TNode, b: TNode) -> TNode:
    return TNode("matmul", (a, b), matmul_shape(a.shape, b.shape), a.batched or b.batched)


def transpose(a: TNode) -> TNode:
    return TNode("T", (a,), tuple(reversed(a.shape)), a.batched)


# -- plain-text formulas -------------------------------------------------------------------------
_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 2, "matmul": 2, "outer": 2, "pow": 3}


def print_text(node: TNode, loss: str = "L") -> str:
    """A formula in plain text, as a course writes it: ``dL/dz1 x^T``, ``W2^T dL/dz2 * sigmoid'(z1)``."""

    def wrap(child: TNode, level: int) -> str:
        text = visit(child)
        return f"({text})" if _PRECEDENCE.get(child.op, 9) < level else text

    def visit(node: TNode) -> str:
        op, a = node.op, node.args
        if op == "name":
            return str(node.name)
        if op == "adjoint":
            return f"d{loss}/d{node.name}"
        if op == "const":
            return node.label or f"{node.number:g}"
        if op == "add":
            return f"{visit(a[0])} + {visit(a[1])}"
        if op == "sub":
            return f"{visit(a[0])} - {wrap(a[1], 2)}"
        if op == "mul":
            sign = " * " if a[0].shape and a[1].shape else " "
            return f"{wrap(a[0], 2)}{sign}{wrap(a[1], 2)}"
        if op == "div":
            return f"{wrap(a[0], 2)}/{wrap(a[1], 3)}"
        if op == "pow":
            return f"{wrap(a[0], 4)}^{wrap(a[1], 4)}"
        if op == "neg":
            return f"-{wrap(a[0], 3)}"
        if op == "matmul":
            return f"{wrap(a[0], 2)} @ {wrap(a[1], 3)}"
        if op == "outer":
            return f"{wrap(a[0], 3)} {wrap(a[1], 4)}^T"
        if op == "T":
            return f"{wrap(a[0], 4)}^T"
        if op == "f":
            return f"{_user(node.name)}({', '.join(visit(x) for x in a)})"
        if op == "df":
            return f"{_user(node.name)}'({', '.join(visit(x) for x in a)})"
        if op in ("sum", "mean") and node.axis is not None:
            return f"{op}({visit(a[0])}, {node.axis})"
        if op == "spread" and node.axis is None:
            return f"{wrap(a[0], 2)} ones{shape_text(node.shape)}"
        if op == "spread":
            return f"repeat({visit(a[0])}, axis={node.axis}, shape={shape_text(node.shape)})"
        if op == "unbroadcast":
            return f"sum_to{shape_text(node.shape)}({visit(a[0])})"
        if op == "sample_sum":
            return f"sum_i {wrap(a[0], 3)}"
        if op == "sample_mean":
            return f"mean_i {wrap(a[0], 3)}"
        return f"{op}({', '.join(visit(x) for x in a)})"

    return visit(node)


def _user(name: str | None) -> str:
    op = OPS.get(name or "")
    return (op.user or op.name) if op else str(name)
