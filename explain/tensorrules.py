"""The vector-Jacobian rules of the tensor view: one rule per operation, as formula rewrites.

For each operation, :func:`vjp` turns the cotangent of its output (a formula) into a
formula for each argument's cotangent, the way courses write them — ``δ xᵀ``, ``Wᵀ δ``,
``δ ⊙ σ′(z)``, ``p − onehot(y)`` — and :func:`fit` sums a cotangent back to its
argument's shape (over the samples, over broadcast axes).  Like tinygrad's table of
gradient rules: the rules build trees; :mod:`explain.tensoreval` gives them numbers.
"""

from __future__ import annotations

import math

from .tensornodes import TNode, binary, const, matmul, transpose

def _mul(a: TNode, b: TNode) -> TNode:
    """a·b, with numbers folded (½·2 is 1) so that a rule reads as a course writes it."""
    if a.op == "const" and b.op == "const" and not (a.label or b.label):
        return const(a.number * b.number)  # a labelled number (1/n) stays as written: it is read at run time
    if b.op == "const" and not (a.op == "const" and not a.label):
        a, b = b, a
    if a.op == "const":
        if a.number == 1:
            return b
        if b.op == "const" and b.number == 1:
            return a
        if b.op == "mul" and b.args[0].op == "const" and not (a.label or b.args[0].label):
            return _mul(_mul(a, b.args[0]), b.args[1])
        if b.op == "neg":
            return _neg(_mul(a, b.args[0]))
        if a.number == -1:
            return _neg(b)
        return binary("mul", a, b)
    # numbers first: 2 λ W, not λ 2 W
    if b.op == "mul" and b.args[0].op == "const":
        return _mul(b.args[0], _mul(a, b.args[1]))
    if a.op == "mul" and a.args[0].op == "const":
        return _mul(a.args[0], _mul(a.args[1], b))
    return binary("mul", a, b)


def _div(a: TNode, b: TNode) -> TNode:
    if a.op == "const" and b.op == "const" and b.number and not (a.label or b.label):
        return const(a.number / b.number)
    return binary("div", a, b)


def _neg(a: TNode) -> TNode:
    return a.args[0] if a.op == "neg" else TNode("neg", (a,), a.shape, a.batched)


def _transposed(a: TNode) -> TNode:
    """aᵀ, with (Wᵀ)ᵀ written W: the backward step through Wᵀ h reads W δ, as courses write it."""
    return a.args[0] if a.op == "T" else transpose(a)


def _spread(g: TNode, like: TNode, axis: int | None) -> TNode:
    return TNode("spread", (g,), like.shape, g.batched, axis=axis)


def vjp(node: TNode, g: TNode, n_samples: int = 1) -> list[tuple[int, TNode]]:  # noqa: C901 - one rule per operation
    """The cotangent of each argument of ``node`` as a formula, given the cotangent ``g`` of its output.

    Each rule is the textbook one, written as a formula of ``g`` and the node's
    arguments (which :func:`evaluate` gives numbers); the caller sums a result back to
    its argument's shape where broadcasting made it bigger (:func:`fit`).
    """
    op, args = node.op, node.args
    if op == "add":
        return [(0, g), (1, g)]
    if op == "sub":
        return [(0, g), (1, _neg(g))]
    if op == "neg":
        return [(0, _neg(g))]
    if op == "mul":
        a, b = args
        return [(0, _mul(g, b)), (1, _mul(g, a))]
    if op == "div":
        a, b = args
        # δ·(1/b) and −δ·(a/b²): the cotangent stays out of the fraction (a fraction inside a
        # fraction is set in script size, and δ is itself written as a fraction dL/dz)
        return [(0, _mul(g, _div(const(1), b))), (1, _neg(_mul(g, _div(a, binary("pow", b, const(2))))))]
    if op == "pow":
        a, b = args
        if b.op == "const":
            rule = a if b.number == 2 else binary("pow", a, const(b.number - 1))
            return [(0, _mul(g, _mul(const(b.number), rule)))]
        return [(0, _mul(g, _mul(b, binary("pow", a, binary("sub", b, const(1)))))),
                (1, _mul(g, _mul(node, TNode("f", (a,), a.shape, a.batched, name="log"))))]
    if op == "T":
        return [(0, _transposed(g))]
    if op == "matmul":
        a, b = args
        if g.shape != node.shape:  # the one number of a whole sum above: every entry gets it
            g = _spread(g, node, None)
        if len(a.shape) == 2 and len(b.shape) == 2:
            return [(0, matmul(g, _transposed(b))), (1, matmul(_transposed(a), g))]
        if len(a.shape) == 2:  # W x: ∂L/∂W = δ xᵀ, ∂L/∂x = Wᵀ δ
            return [(0, TNode("outer", (g, b), a.shape, g.batched or b.batched)), (1, matmul(_transposed(a), g))]
        if len(b.shape) == 2:  # xᵀ W (x a vector): ∂L/∂x = W δ, ∂L/∂W = x δᵀ
            return [(0, matmul(b, g)), (1, TNode("outer", (a, g), b.shape, a.batched or g.batched))]
        return [(0, _mul(g, b)), (1, _mul(g, a))]  # a · b of two vectors
    if op == "f" and node.name == "log":  # δ/u reads better than δ·log′(u)
        return [(0, _mul(g, _div(const(1), args[0])))]
    if op == "f" and node.name == "exp":
        return [(0, _mul(g, node))]
    if op == "f":
        return [(i, _mul(g, TNode("df", args, node.shape, node.batched, name=node.name, axis=i)))
                for i in range(len(args))]
    if op in ("sum", "mean"):
        (v,) = args
        # A whole sum's cotangent is one number, the same for every entry: it broadcasts
        # through the rules above it, and fit() spreads it where it meets a name.
        if node.axis is not None and g.shape != node.shape:  # a whole sum's one number above: make it the row first
            g = _spread(g, node, None)
        spread = g if node.axis is None else _spread(g, v, node.axis)
        if op == "mean":
            count = math.prod(v.shape) if node.axis is None else v.shape[node.axis]
            spread = _mul(const(1 / count, f"1/{count}"), spread)
        return [(0, spread)]
    if op == "norm2":
        (w,) = args
        return [(0, _mul(g, _mul(const(2), w)))]
    if op == "mse":
        a, b = args
        n = math.prod(a.shape) if a.shape else 1
        rule = _mul(g, _mul(const(2 / n, f"2/{n}"), binary("sub", a, b)))
        return [(0, rule), (1, _neg(rule))]
    if op == "bce":
        p, y = args
        n = math.prod(p.shape) if p.shape else 1
        scale = const(1 / n, f"1/{n}")
        one = const(1)
        dp = binary("div", binary("sub", p, y), binary("mul", p, binary("sub", one, p)))
        logs = binary("sub", TNode("f", (binary("sub", one, p),), p.shape, p.batched, name="log"),
                      TNode("f", (p,), p.shape, p.batched, name="log"))
        return [(0, _mul(g, _mul(scale, dp))), (1, _mul(g, _mul(scale, logs)))]
    if op == "softmax":  # ∂L/∂z = p ⊙ (δ − (δ·p))
        p = node
        return [(0, _mul(p, binary("sub", g, TNode("sum", (_mul(g, p),), (), g.batched or p.batched))))]
    if op == "log_softmax":  # ∂L/∂z = δ − p·Σδ
        (z,) = args
        p = TNode("softmax", (z,), z.shape, z.batched)
        if g.shape != z.shape:  # a whole sum's one number δ, the same in each of the m entries: Σδ = m·δ
            count = math.prod(z.shape)
            return [(0, binary("sub", g, _mul(p, _mul(const(count), g))))]
        return [(0, binary("sub", g, _mul(p, TNode("sum", (g,), (), g.batched))))]
    if op == "logsumexp":
        (z,) = args
        return [(0, _mul(g, TNode("softmax", (z,), z.shape, z.batched)))]
    if op == "cross_entropy":  # softmax + cross-entropy: ∂L/∂z = p − onehot(y)
        z, label = args
        p = TNode("softmax", (z,), z.shape, z.batched)
        if label.shape == z.shape:  # a one-hot (or any) target vector: p·Σy − y, which is p − y for one-hot
            dz = binary("sub", _mul(p, TNode("sum", (label,), (), label.batched)), label)
            dy = _neg(TNode("log_softmax", (z,), z.shape, z.batched))
            return [(0, _mul(g, dz)), (1, _mul(g, dy))]
        onehot = TNode("onehot", (label,), z.shape, label.batched)
        return [(0, _mul(g, binary("sub", p, onehot)))]
    if op in ("sample_sum", "sample_mean"):
        if op == "sample_sum":  # Σᵢ l_i: every sample's l_i gets the whole δ
            return [(0, g)]
        return [(0, _mul(const(1 / n_samples, "1/n"), g))]
    raise AssertionError(f"no rule for {op}")


_ELEMENTWISE = ("add", "sub", "mul", "div", "pow", "neg", "f")


def fit(formula: TNode, target: TNode, parent: TNode) -> TNode:
    """A cotangent made the shape of its argument: summed over the samples, spread, summed over broadcast axes.

    A rule's formula may be smaller than the cotangent it stands for: the one number
    of a whole sum above stays one number while it passes elementwise operations
    (NumPy's broadcasting makes it the right size), and is spread only where it meets
    a name or must be summed.  ``parent`` is the node whose rule made the formula:
    an elementwise operation's cotangent has its output's shape, before broadcasting
    is undone.
    """
    if formula.batched and not target.batched:
        formula = TNode("sample_sum", (formula,), formula.shape, False)
    full = parent.shape if parent.op in _ELEMENTWISE else target.shape
    if formula.shape == target.shape == full:
        return formula
    if formula.shape != full:
        if target.shape == full and target.op != "name":
            return formula
        formula = _spread(formula, TNode("const", shape=full), None)
    if full != target.shape:
        formula = TNode("unbroadcast", (formula,), target.shape, formula.batched)
    return formula

