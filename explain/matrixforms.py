"""The diagnosis catalogue's mistakes in matrix form (issue 12): transposes, broadcast sums, outer products.

A problem with vectors and matrices is computed entry by entry (:mod:`explain.tensors`),
so the scalar catalogue of :mod:`explain.diagnose` already applies to it.  The
mistakes here are the ones that only exist in matrix form:

* ``missing_transpose`` — the backward step through ``z = W h`` taken as ``W δ``
  instead of ``Wᵀ δ`` (a change of the computation: each local partial ∂z_i/∂h_k
  reads W[k,i] instead of W[i,k]; everywhere, or at one matrix), or a whole
  matrix answer that is the transpose of the right one;
* ``outer_order`` — ∂L/∂W of a matrix product written ``x δᵀ`` instead of ``δ xᵀ``:
  the right matrix transposed (its shape too, unless it is square);
* ``broadcast_sum`` — the gradient of a broadcast tensor not summed back over the
  axis it was repeated along, or summed over the wrong axis; or, in a data
  problem, one sample's gradient instead of the sum (or mean) over the samples;
* ``wrong_shape`` — an answer whose shape is not the quantity's, when none of
  the above explains it: the message names both shapes.

Mistakes that change the computation are found here and made
:class:`~explain.diagnose.Mistake`\\ s by :func:`explain.diagnose.catalogue`,
computed by :class:`~explain.diagnose.Student` like every other (this module does
not import :mod:`explain.diagnose`, which imports it); mistakes in
how the final matrix is written (a transpose, a sum left out) are candidates
computed here from the right numbers, by :class:`AnswerForms`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .graph import Graph
from .i18n import Messages
from .tensors import entries_of, entry_label, entry_name, shape_text

#: The matrix-form codes, in order of preference (docs/checking.md#matrix-form-mistakes).
MATRIX_CODES = ("missing_transpose", "outer_order", "broadcast_sum", "wrong_shape")
#: At most this many samples' own gradients are tried for "one sample's gradient" (big data sets).
MAX_SAMPLES = 16


# -- mistakes that change the computation ----------------------------------------------
#: A change of the computation, as :func:`explain.diagnose.catalogue` makes it a Mistake:
#: (variant, edits, info, scope).
Change = tuple[str, tuple[tuple[tuple[str, str], sp.Expr], ...], tuple[tuple[str, str], ...], str]


def transpose_changes(graph: Graph, shapes: Mapping[str, tuple[int, ...]]) -> list[Change]:
    """``missing_transpose`` as a change of the backward pass: W δ where Wᵀ δ is needed.

    An entry z_i of a matrix product reads several entries h_k of one tensor, each
    through a local partial holding one entry W[i,k] of a square matrix W (``W @ h``,
    ``h @ W``, ``X @ W.T``: whichever index order).  Reading W[k,i] there instead is
    the backward step of ``Wᵀ`` taken as ``W``: at one matrix, and at every one.
    """
    entries = entries_of(shapes)
    square = {n for n, s in shapes.items() if len(s) == 2 and s[0] == s[1] > 1}
    by_weight: dict[tuple[str, str, str], list[tuple[tuple[str, str], sp.Expr]]] = {}
    for dst in graph.nodes:
        if dst not in entries or graph.nodes[dst].kind != "stage":
            continue
        groups: dict[str, list[Any]] = {}
        for e in graph.edges_into(dst):
            if e.src in entries:
                groups.setdefault(entries[e.src][0], []).append(e)
        for source, edges in groups.items():
            if len(edges) < 2 or graph.nodes[edges[0].src].kind in ("value", "data"):
                continue  # an elementwise use, not a product's sum; or no gradient flows to the given numbers
            found = []
            for e in edges:
                weights = [s for s in e.local.free_symbols if s.name in entries
                           and entries[s.name][0] in square and entries[s.name][0] != source]
                if len(weights) != 1:
                    break
                name, (a, b) = entries[weights[0].name]
                swapped = sp.Symbol(entry_name(name, (b, a)), real=True)
                found.append((name, (e.src, e.dst), e.local.xreplace({weights[0]: swapped})))
            else:
                for name, edge, local in found:
                    if local != graph.edge(*edge).local:
                        by_weight.setdefault((name, source, entries[dst][0]), []).append((edge, local))
    found: list[Change] = [(f"matrix:{w}:{src}:{dst}", tuple(edits), (("weight", w), ("src", src), ("dst", dst)),
                            "layer") for (w, src, dst), edits in by_weight.items()]
    if len(by_weight) > 1:
        # After the single matrices: a student who transposes nothing anywhere makes them all at once.
        every = tuple(edit for edits in by_weight.values() for edit in edits)
        found.append(("all", every, (("weight", ", ".join(dict.fromkeys(w for w, _, _ in by_weight))),), "all"))
    return found


def sample_indices(graph: Graph) -> list[int]:
    """``broadcast_sum`` in a data problem: the samples whose own gradient may be given for the whole data set's."""
    n = graph.n_samples or 0
    return list(range(min(n, MAX_SAMPLES))) if n >= 2 and graph.parameters else []


def describe_change(info: Mapping[str, str], sample: int | None, q: Any, graph: Graph,
                    msg: Messages) -> tuple[str, str]:
    """The words of a matrix-form mistake of :func:`transpose_changes` or :func:`sample_indices`."""
    if sample is not None:
        words = {"sum": msg("reduction_sum"), "mean": msg("reduction_mean")}
        text = msg("mistake_broadcast_sum_sample", sample=sample, n=graph.n_samples,
                   reduction=words.get(graph.reduction, graph.reduction))
        return text, tensor_step(q, graph, msg)
    if "src" in info:
        text = msg("mistake_missing_transpose_backward", weight=info["weight"], src=info["src"], dst=info["dst"],
                   loss=graph.loss)
        return text, msg("check_step_backward", loss=graph.loss, node=info["src"])
    return msg("mistake_missing_transpose_everywhere", weights=info["weight"]), tensor_step(q, graph, msg)


def tensor_step(q: Any, graph: Graph, msg: Messages) -> str:
    """The worked solution's step for a quantity (a whole tensor included)."""
    if q.kind == "grad":
        first = entry_name(q.name, (0,) * len(q.shape)) if q.shape else q.name
        return msg("check_step_chain", node=q.name) if first in graph.parameters \
            else msg("check_step_backward", loss=graph.loss, node=q.name)
    if q.kind == "value":
        return msg("check_step_forward", name=q.name)
    return msg("check_step_update", name=f"{q.name}+")


# -- mistakes in how the final matrix is written -----------------------------------------
@dataclass(frozen=True)
class Form:
    """A wrong way of writing a whole matrix answer, and the numbers it gives."""

    code: str
    variant: str
    value: np.ndarray
    fields: tuple[tuple[str, str], ...] = ()


class AnswerForms:
    """The matrix-form candidates for each tensor quantity, computed once from the right numbers."""

    def __init__(self, graph: Graph, evaluation: Any, shapes: Mapping[str, tuple[int, ...]],
                 tensor_texts: Mapping[str, str]) -> None:
        self.graph = graph
        self.evaluation = evaluation
        self.shapes = shapes
        self.entries = entries_of(shapes)
        self.texts = tensor_texts
        self._cache: dict[Any, list[Form]] = {}

    def forms(self, q: Any, expected: Any) -> list[Form]:
        if q not in self._cache:
            self._cache[q] = self._forms(q, np.asarray(expected, dtype=float))
        return self._cache[q]

    def _is_product_weight(self, name: str) -> bool:
        """Whether ``name`` is a factor of a matrix product in some stage (``W @ x``, ``x @ W.T``)."""
        word = re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")
        return any("@" in text and word.search(text) for text in self.texts.values())

    def _forms(self, q: Any, expected: np.ndarray) -> list[Form]:
        found: list[Form] = []
        if expected.ndim == 2:
            transposed = expected.T.copy()
            if q.kind == "grad" and len(q.shape) == 2 and self._is_product_weight(q.name):
                product = self._product_part(q)
                if product is not None and product.shape == product.T.shape:
                    # Only the product's share δ xᵀ is transposed (an L2 term's 2λW is not).
                    found.append(Form("outer_order", "outer", expected - product + product.T))
                found.append(Form("outer_order", "whole", transposed))
            else:
                found.append(Form("missing_transpose", "answer", transposed))
            found = [f for f in found if f.value.shape != expected.shape
                     or not np.allclose(f.value, expected, rtol=1e-10, atol=1e-300)]
        if q.kind == "grad":
            found += self._broadcast_forms(q, expected)
        return found

    def _share(self, q: Any) -> dict[str, np.ndarray]:
        """∂loss/∂q split by the tensor stage each share flows through (a data problem's samples summed)."""
        g, ev = self.graph, self.evaluation
        shares: dict[str, np.ndarray] = {}
        for index in np.ndindex(q.shape):
            for e in g.edges_out_of(entry_name(q.name, index)):
                target = self.entries[e.dst][0] if e.dst in self.entries else e.dst
                share = shares.setdefault(target, np.zeros(q.shape))
                share[index] += float(np.sum(np.asarray(ev.locals[(e.src, e.dst)], dtype=float)
                                             * np.asarray(ev.adjoints[e.dst], dtype=float)))
        return shares

    def _product_part(self, q: Any) -> np.ndarray | None:
        """The share of ∂loss/∂W that flows through the matrix product W takes part in (δ xᵀ), if one."""
        word = re.compile(rf"(?<![\w.]){re.escape(q.name)}(?!\w)")
        shares = self._share(q)
        products = [t for t in shares if "@" in self.texts.get(t, "") and word.search(self.texts[t])]
        return shares[products[0]] if len(products) == 1 else None

    def _broadcast_forms(self, q: Any, expected: np.ndarray) -> list[Form]:
        """The gradient of a broadcast tensor before its sum over the repeated axes, and summed wrongly."""
        g, ev = self.graph, self.evaluation
        mine = [entry_name(q.name, index) for index in np.ndindex(q.shape)]
        targets = {self.entries[e.dst][0] for m in mine for e in g.edges_out_of(m) if e.dst in self.entries}
        if len(targets) != 1:
            return []
        target = next(iter(targets))
        shape = self.shapes[target]
        if shape == q.shape or len(shape) < len(q.shape) or any(
                e.dst not in self.entries for m in mine for e in g.edges_out_of(m)):
            return []
        unsummed = np.zeros(shape)
        hit = np.zeros(shape, dtype=int)
        for m in mine:
            for e in g.edges_out_of(m):
                index = self.entries[e.dst][1]
                contribution = np.asarray(ev.locals[(e.src, e.dst)], dtype=float) * np.asarray(ev.adjoints[e.dst],
                                                                                                dtype=float)
                unsummed[index] += float(np.sum(contribution))  # a data problem's samples are summed already
                hit[index] += 1
        if not np.all(hit == 1):
            return []  # not an elementwise broadcast (a product, or an entry used twice)
        found = [Form("broadcast_sum", "unsummed", unsummed,
                      (("target", target), ("shape", shape_text(shape)), ("right", shape_text(q.shape))))]
        sums = [(f"axis{a}", unsummed.sum(axis=a)) for a in range(len(shape))] if len(shape) > 1 else []
        sums.append(("all", np.asarray(unsummed.sum())))
        size = int(np.prod(q.shape))
        for variant, total in sums:
            # Summed over an axis but kept in the parameter's shape when the sizes allow (b of (1, 3) or (3,)).
            value = total.reshape(q.shape) if total.size == size else total
            if value.shape == expected.shape and np.allclose(value, expected, rtol=1e-10, atol=1e-300):
                continue  # that is the right sum
            axis = variant[4:] if variant.startswith("axis") else "all"
            found.append(Form("broadcast_sum", variant, value,
                              (("target", target), ("axis", axis), ("right", shape_text(q.shape)))))
        return found


def describe_form(form: Form, q: Any, given_shape: tuple[int, ...], expected_shape: tuple[int, ...],
                  graph: Graph, msg: Messages) -> tuple[str, str]:
    """The message and the worked solution's step for an answer written in a wrong matrix form."""
    fields = dict(form.fields)
    name = q.name
    step = tensor_step(q, graph, msg)
    if form.code == "outer_order":
        text = msg("mistake_outer_order", name=name, loss=graph.loss, shape=shape_text(expected_shape),
                   given=shape_text(given_shape))
    elif form.code == "missing_transpose":
        text = msg("mistake_missing_transpose_answer", name=name, shape=shape_text(expected_shape),
                   given=shape_text(given_shape))
    elif form.variant == "unsummed":
        text = msg("mistake_broadcast_sum_unsummed", name=name, target=fields["target"], shape=fields["shape"],
                   right=fields["right"], loss=graph.loss)
    else:
        axis = fields["axis"]
        how = msg("mistake_broadcast_axis_all") if axis == "all" else msg("mistake_broadcast_axis", axis=axis)
        text = msg("mistake_broadcast_sum_axis", name=name, target=fields["target"], how=how,
                   right=fields["right"], loss=graph.loss)
    return text, step


def describe_shape(q: Any, given_shape: tuple[int, ...], expected_shape: tuple[int, ...], graph: Graph,
                   msg: Messages, samples: bool = False) -> tuple[str, str]:
    """``wrong_shape``: the two shapes, and what the quantity's shape is."""
    what = msg("check_shape_samples", n=expected_shape[0]) if samples else ""
    text = msg("mistake_wrong_shape", given=shape_text(given_shape), shape=shape_text(expected_shape),
               name=q.name if q.kind != "grad" else f"∂{graph.loss}/∂{q.name}", samples=what)
    return text, tensor_step(q, graph, msg)


def entry_key(key: str, index: tuple[int, ...]) -> str:
    """The key of one entry of a whole-tensor answer: ``dE/dW1`` and (0, 1) → ``dE/dW1[0,1]``."""
    return entry_label(key.strip(), index)


__all__ = ["MATRIX_CODES", "AnswerForms", "Form", "describe_change", "describe_form", "describe_shape",
           "entry_key", "sample_indices", "tensor_step", "transpose_changes"]
