"""The steps of a Derivation as equations, in any output language.

Every renderer (text, Markdown, LaTeX, Typst) shows the same handcalcs-shaped
equations — formula, then the same formula with numbers in place, then the
value — so they are built once here from the Derivation's records and a
:class:`~explain.render.mathprint.MathStyle` that knows the language.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from ..derivation import AdjointStep, Derivation, ForwardStep, Gradient, LocalStep
from .mathprint import MathStyle

#: Data problems with at most this many samples show every sample's numbers.
SHOW_ALL_SAMPLES = 4


@dataclass(frozen=True)
class Equation:
    """``lhs = rhs[0] = rhs[1] = …``: formula, numbers substituted, value."""

    lhs: str
    rhs: tuple[str, ...]

    def render(self, style: MathStyle) -> str:
        return style.equation(self.lhs, list(self.rhs))


def _distinct(lines: Sequence[str]) -> tuple[str, ...]:
    """Drop a line equal to the one before it (``w5 = 0.1 = 0.1`` says nothing)."""
    out: list[str] = []
    for line in lines:
        if line and (not out or out[-1] != line):
            out.append(line)
    return tuple(out)


def _at(value: Any, sample: int | None) -> Any:
    if sample is not None and isinstance(value, np.ndarray):
        return value[sample]
    return value


class StepWriter:
    """Writes the equations of one Derivation in one MathStyle."""

    def __init__(self, derivation: Derivation, style: MathStyle) -> None:
        self.d = derivation
        self.style = style
        self.graph = derivation.graph
        n = self.graph.n_samples
        #: The sample whose numbers are shown for per-sample formulas.
        self.sample: int | None = 0 if n else None
        self.mean = self.graph.reduction == "mean"
        self._numbers: dict[int | None, dict[Any, Any]] = {}

    # -- helpers ------------------------------------------------------------
    def value(self, value: Any, sample: int | None = None) -> str:
        if isinstance(value, np.ndarray):
            if sample is None:
                return "[" + ", ".join(self.style.number(v) for v in value[:3]) + (", …]" if len(value) > 3 else "]")
            value = value[sample]
        return self.style.number(float(value))

    def numbers(self, sample: int | None) -> dict[Any, Any]:
        # Printing uses only scalars; the filtered map is made once per sample.
        if sample not in self._numbers:
            self._numbers[sample] = {k: v for k, v in self.d.numbers(sample).items() if np.ndim(v) == 0}
        return self._numbers[sample]

    # -- forward ------------------------------------------------------------
    def forward(self, step: ForwardStep) -> Equation:
        sample = self.sample if step.per_sample else None
        s = self.style
        return Equation(s.name(step.name), _distinct([
            s.expr(step.expr),
            s.expr(step.expr, self.numbers(sample)),
            self.value(step.value, sample),
        ]))

    # -- local partials -----------------------------------------------------
    def local(self, step: LocalStep) -> Equation:
        sample = self.sample if self.graph.nodes[step.dst].per_sample else None
        s = self.style
        return Equation(s.partial(step.dst, step.src), _distinct([
            s.expr(step.expr),
            s.expr(step.expr, self.numbers(sample)),
            self.value(step.value, sample),
        ]))

    # -- adjoints -----------------------------------------------------------
    def adjoint(self, step: AdjointStep) -> Equation:
        s = self.style
        loss = self.graph.loss
        lhs = self.total_partial(step.name) if not step.per_sample else s.partial(loss, step.name)
        if step.name == loss:
            return Equation(lhs, ("1",) if not (self.mean and step.per_sample) else (s.expr(1 / _n(self)),))
        if not step.terms:
            return Equation(lhs, ("0",))
        # ∂L/∂L = 1 is left out of a product: ∂E/∂out_o1 = ∂E/∂out_o1 needs no "1 ·".
        def upstream(t: Any) -> list[str]:
            return [] if self._is_unit_seed(t.consumer) else [s.partial(loss, t.consumer)]

        leibniz = s.sum([s.product([*upstream(t), s.partial(t.consumer, step.name)]) for t in step.terms])
        locals_ = s.sum([self._product([*upstream(t), t.local.expr]) for t in step.terms])
        if leibniz == lhs:
            leibniz = ""
        if step.reduced:
            leibniz, locals_ = s.sample_sum(leibniz, False), s.sample_sum(locals_, False)
            numbers = self._reduced_numbers(step)
            return Equation(lhs, _distinct([leibniz, locals_, numbers, self.value(step.value)]))
        sample = self.sample if step.per_sample else None
        nums = self.numbers(sample)
        numbers = s.sum([self._term_numbers(t, sample, nums) for t in step.terms])
        return Equation(lhs, _distinct([leibniz, locals_, numbers, self.value(step.value, sample)]))

    def _is_unit_seed(self, name: str) -> bool:
        return name == self.graph.loss and not (self.mean and self.graph.nodes[name].per_sample)

    def _term_numbers(self, t: Any, sample: int | None, nums: dict[Any, Any]) -> str:
        if self._is_unit_seed(t.consumer):
            return self._product([t.local.expr], nums)
        return self._product([self._signed(_at(t.consumer_adjoint, sample)), t.local.expr], nums)

    def _product(self, parts: Sequence[Any], nums: dict[Any, Any] | None = None) -> str:
        """A product of printed factors and expressions; a lone expression needs no parentheses.

        Local derivatives equal to 1 (∂(a + b)/∂a) are left out of the product:
        the Leibniz line above still shows every factor.
        """
        s = self.style
        kept = [p for p in parts if isinstance(p, str) or p != 1]
        parts = kept or [sp.S.One]
        if len(parts) == 1 and not isinstance(parts[0], str):
            return s.expr(parts[0], nums)
        return s.product([p if isinstance(p, str) else s.factor(p, nums) for p in parts])

    def _signed(self, value: Any) -> str:
        text = self.style.number(float(value))
        return self.style._paren(text) if float(value) < 0 else text

    def _reduced_numbers(self, step: AdjointStep) -> str:
        """The numbers of a sum over samples, written out when there are few samples."""
        n = self.graph.n_samples or 1
        if n > SHOW_ALL_SAMPLES:
            return ""
        s = self.style
        per_sample = []
        for i in range(n):
            nums = self.numbers(i)
            per_sample.append(s.sum([self._term_numbers(t, i, nums) for t in step.terms]))
        return s.sum([s._paren(p) if len(step.terms) > 1 else p for p in per_sample])

    # -- chain rule per parameter --------------------------------------------
    def chain(self, gradient: Gradient) -> Equation | None:
        """The path form, or None when there are too many paths to write out."""
        if not gradient.paths or not gradient.paths_complete:
            return None
        s = self.style
        per_sample = any(self.graph.nodes[f.dst].per_sample for p in gradient.paths for f in p.factors)
        leibniz = s.sum([s.product([s.partial(f.dst, f.src) for f in p.factors]) for p in gradient.paths])
        formulas = s.sum([self._product([f.expr for f in p.factors]) for p in gradient.paths])
        lines = [leibniz, formulas]
        if per_sample:
            lines = [s.sample_sum(line, self.mean) for line in lines]
            n = self.graph.n_samples or 1
            if n <= SHOW_ALL_SAMPLES:
                terms = [self._path_numbers(gradient, i) for i in range(n)]
                body = s.sum([s._paren(t) if len(gradient.paths) > 1 else t for t in terms])
                lines.append(s.product([s.expr(1 / _n(self)), s._paren(body)]) if self.mean else body)
        else:
            lines.append(self._path_numbers(gradient, None))
        lines.append(self.value(gradient.value))
        return Equation(self.total_partial(gradient.name), _distinct(lines))

    def total_partial(self, wrt: str) -> str:
        """∂L/∂wrt of the reduced loss: the loss name without a sample index."""
        style = self.style
        saved = style.sample_symbols
        style.sample_symbols = saved - {self.graph.loss}
        try:
            return style.partial(self.graph.loss, wrt)
        finally:
            style.sample_symbols = saved

    def _path_numbers(self, gradient: Gradient, sample: int | None) -> str:
        s = self.style
        nums = self.numbers(sample)
        return s.sum([self._product([f.expr for f in p.factors], nums) for p in gradient.paths])

    def delta(self, gradient: Gradient) -> Equation:
        return self.adjoint(gradient.delta)


def _n(writer: StepWriter) -> Any:
    import sympy as sp

    return sp.Integer(writer.graph.n_samples or 1)


def shown_nodes(derivation: Derivation) -> list[str]:
    """Nodes worth a backward step: stages and parameters on a path to the loss.

    Known values (inputs, targets) also have gradients, but a student does not
    need them to find the parameters' gradients, so they are left out.
    """
    g = derivation.graph
    from_parameters: set[str] = set(g.parameters)
    for node in g.nodes.values():
        if any(i in from_parameters for i in node.inputs):
            from_parameters.add(node.name)
    return [n for n in g.backward_order if n in from_parameters]


def shown_edges(derivation: Derivation) -> list[LocalStep]:
    """Local partials on edges between shown nodes, in forward order."""
    shown = set(shown_nodes(derivation))
    return [step for (src, dst), step in derivation.locals.items() if src in shown and dst in shown]
