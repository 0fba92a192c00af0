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
from ..functions import SAMPLE_COUNT, reduction_kind
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
            numbers = {k: v for k, v in self.d.numbers(sample).items() if np.ndim(v) == 0}
            if self.graph.n_samples:
                numbers.setdefault(SAMPLE_COUNT, self.graph.n_samples)  # the n of 1/n
            self._numbers[sample] = numbers
        return self._numbers[sample]

    # -- forward ------------------------------------------------------------
    def forward(self, step: ForwardStep) -> Equation:
        sample = self.sample if step.per_sample else None
        s = self.style
        if reduction_kind(step.expr):
            numbers = self._reduction_numbers(step)
        else:
            numbers = s.expr(step.expr, self.numbers(sample))
        return Equation(s.name(step.name), _distinct([
            s.expr(step.expr),
            numbers,
            self.value(step.value, sample),
        ]))

    def _reduction_numbers(self, step: ForwardStep) -> str:
        """Σᵢ l_i written out: every sample when there are few, else the first and last ones."""
        s = self.style
        values = np.atleast_1d(self.d.value(step.expr.args[0].name))
        n = self.graph.n_samples or len(values)
        values = np.broadcast_to(values, (n,))
        shown = [s.number(float(v)) for v in (values if n <= SHOW_ALL_SAMPLES else values[:2])]
        if n > SHOW_ALL_SAMPLES:
            shown += ["…", s.number(float(values[-1]))]
        body = s.sum(shown)
        if reduction_kind(step.expr) == "mean":
            return s.product([s.expr(1 / sp.Integer(n)), s._paren(body)])
        return body

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
        """∂L/∂node as the sum over its consumers; terms from per-sample consumers of a
        node without data are summed over the samples (Σᵢ), the others stand alone."""
        s = self.style
        loss = self.graph.loss
        lhs = s.total(loss, step.name)
        if step.name == loss:
            return Equation(lhs, ("1",))
        if not step.terms:
            return Equation(lhs, ("0",))
        # ∂L/∂L = 1 is left out of a product: ∂E/∂out_o1 = ∂E/∂out_o1 needs no "1 ·".
        def upstream(t: Any) -> list[str]:
            return [] if self._is_unit_seed(t.consumer) else [s.total(loss, t.consumer)]

        summed = [t for t in step.terms if self._summed_over_samples(t, step)]
        alone = [t for t in step.terms if t not in summed]

        def line(write: Any) -> str:
            inside = [write(t) for t in summed]
            return s.sum(([s.sample_sum(s.sum(inside), False)] if inside else []) + [write(t) for t in alone])

        leibniz = line(lambda t: s.product([*upstream(t), s.partial(t.consumer, step.name)]))
        locals_ = line(lambda t: self._product([*upstream(t), t.local.expr]))
        if leibniz == lhs:
            leibniz = ""
        if summed:
            numbers = self._reduced_numbers(summed, alone)
            return Equation(lhs, _distinct([leibniz, locals_, numbers, self.value(step.value)]))
        sample = self.sample if step.per_sample else None
        nums = self.numbers(sample)
        numbers = s.sum([self._term_numbers(t, sample, nums) for t in step.terms])
        return Equation(lhs, _distinct([leibniz, locals_, numbers, self.value(step.value, sample)]))

    def _summed_over_samples(self, t: Any, step: AdjointStep) -> bool:
        return self.graph.nodes[t.consumer].per_sample and not step.per_sample

    def _is_unit_seed(self, name: str) -> bool:
        return name == self.graph.loss

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

    def _reduced_numbers(self, summed: Sequence[Any], alone: Sequence[Any]) -> str:
        """The numbers of a sum over samples, written out when there are few samples."""
        n = self.graph.n_samples or 1
        if n > SHOW_ALL_SAMPLES:
            return ""
        s = self.style
        per_sample = []
        for i in range(n):
            nums = self.numbers(i)
            per_sample.append(s.sum([self._term_numbers(t, i, nums) for t in summed]))
        inside = [s._paren(p) if len(summed) > 1 else p for p in per_sample]
        nums = self.numbers(None)
        rest = [self._term_numbers(t, None, nums) for t in alone]
        return s.sum([s._paren(s.sum(inside)) if rest else s.sum(inside), *rest])

    # -- chain rule per parameter --------------------------------------------
    def chain(self, gradient: Gradient) -> Equation | None:
        """The path form, or None when there are too many paths to write out."""
        if not gradient.paths or not gradient.paths_complete:
            return None
        s = self.style
        # Paths through a per-sample stage are summed over the samples (Σᵢ); a path
        # that stays outside the data (a penalty λ/2·w² in [cost]) is added once.
        summed = [p for p in gradient.paths if any(self.graph.nodes[f.dst].per_sample for f in p.factors)]
        alone = [p for p in gradient.paths if p not in summed]

        def line(write: Any) -> str:
            inside = s.sum([write(p) for p in summed])
            return s.sum(([s.sample_sum(inside, False)] if summed else []) + [write(p) for p in alone])

        lines = [
            line(lambda p: s.product([s.partial(f.dst, f.src) for f in p.factors])),
            line(lambda p: self._product([f.expr for f in p.factors])),
        ]
        n = self.graph.n_samples or 1
        if not summed:
            lines.append(self._path_numbers(alone, None))
        elif n <= SHOW_ALL_SAMPLES:
            terms = [self._path_numbers(summed, i) for i in range(n)]
            body = s.sum([s._paren(t) if len(summed) > 1 else t for t in terms])
            rest = [self._path_numbers(alone, None)] if alone else []
            lines.append(s.sum([s._paren(body) if rest else body, *rest]))
        lines.append(self.value(gradient.value))
        return Equation(self.total_partial(gradient.name), _distinct(lines))

    def total_partial(self, wrt: str) -> str:
        """dL/dwrt of the (reduced) loss."""
        return self.style.total(self.graph.loss, wrt)

    def _path_numbers(self, paths: Sequence[Any], sample: int | None) -> str:
        s = self.style
        nums = self.numbers(sample)
        return s.sum([self._product([f.expr for f in p.factors], nums) for p in paths])

    def delta(self, gradient: Gradient) -> Equation:
        return self.adjoint(gradient.delta)


def shown_nodes(derivation: Derivation) -> list[str]:
    """Nodes worth a backward step: stages and parameters on a path to the loss.

    Known values (inputs, targets) also have gradients, but a student does not
    need them to find the parameters' gradients, so they are left out.
    """
    g = derivation.graph
    from_parameters = {*g.parameters, *g.descendants(*g.parameters)}
    return [n for n in g.backward_order if n in from_parameters]


def shown_edges(derivation: Derivation) -> list[LocalStep]:
    """Local partials on edges between shown nodes, in forward order."""
    shown = set(shown_nodes(derivation))
    return [step for (src, dst), step in derivation.locals.items() if src in shown and dst in shown]
