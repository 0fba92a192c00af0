"""Diagnosis: which wrong rule would a student have to hold to get this number?

A wrong answer is rarely random.  A student who believes σ'(z) = σ(z), or who
forgets the ½ of ½·SSE, makes that mistake *everywhere* it applies.  So each
mistake of the catalogue (SPEC §4) is written here as a transformation of the
computation itself — the local partials on the Graph's edges, the reduction
over samples, the update rule, the rounding of intermediate values — applied
consistently, and the student's whole computation is redone with the compiled
:class:`~explain.compile.Program`.  A wrong answer is explained by a mistake
(or a pair of them) whose result matches it at the precision it was written.

Nothing here knows about answer files: :class:`Student` computes what a
student holding some mistakes would answer, :func:`catalogue` lists the
mistakes that make sense for a Graph, :class:`Diagnoser` searches them, and
:func:`describe` words the finding from the message catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from collections import Counter
from dataclasses import dataclass, field, replace
import random
from typing import Any

import numpy as np
import sympy as sp

from .compile import Program
from .functions import USER_FUNCTIONS
from .graph import Edge, Graph
from .i18n import Messages
from .render.mathprint import TextMath

#: The stable diagnosis codes, in the order of SPEC §4 (also the order of preference).
CODES = (
    "missing_activation_derivative", "wrong_activation_derivative", "sign_error", "loss_constant",
    "missing_path", "activation_instead_of_weight", "wrong_weight", "stale_parameters",
    "mean_vs_sum", "update_sign", "early_rounding",
)
ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus")
#: Codes whose edge edits multiply the right local by a constant, so that two of them compose.
_SCALING = ("sign_error", "loss_constant")
#: At most this many single-edge "missing path" mistakes are tried (big graphs).
MAX_PATH_DROPS = 40
#: At most this many pairs of mistakes are computed.
MAX_PAIRS = 3000


@dataclass(frozen=True)
class Quantity:
    """What an answer is about: a forward value, a gradient, a parameter or the loss after one step."""

    kind: str  # "value" | "grad" | "after" | "loss_after" | "later" (a later training step, name = the key)
    name: str
    #: A whole vector or matrix (``dE/dW1``): its shape; its entries are the scalar quantities
    #: ``W1_0_0`` … (:mod:`explain.tensors`).  ``()`` for a scalar quantity.
    shape: tuple[int, ...] = ()


@dataclass(frozen=True)
class Mistake:
    """One wrong rule (or, with ``parts``, two at once) a student may hold.

    ``edits`` replaces the local partial of some edges; ``reduction`` replaces
    the problem's reduction; ``update_sign`` is −1 for ``w + η·g``; ``stale``
    names how parameters updated too early leak into later gradients;
    ``rounding`` is ``("sig" | "dec", n)``.
    """

    code: str
    variant: str
    edits: tuple[tuple[tuple[str, str], sp.Expr], ...] = ()
    reduction: str | None = None
    update_sign: float = 1.0
    stale: str | None = None
    rounding: tuple[str, int] | None = None
    info: tuple[tuple[str, str], ...] = ()
    parts: tuple[Mistake, ...] = ()
    #: One sample's gradient taken for the whole data set's (:mod:`explain.matrixforms`): that sample's index.
    sample: int | None = None
    #: ``"all"`` (everywhere it applies), ``"layer"`` (one layer) or ``"edges"`` (one group of edges):
    #: a student may hold a wrong rule in one place only.  Pairs combine ``"all"`` mistakes only.
    scope: str = "all"

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(p.code for p in self.parts) if self.parts else (self.code,)

    @property
    def edit_map(self) -> dict[tuple[str, str], sp.Expr]:
        return dict(self.edits)


NO_MISTAKE = Mistake("none", "none")


@dataclass
class Outcome:
    """Every number a student holding some mistakes would write down."""

    values: Mapping[str, Any]
    grads: Mapping[str, Any]
    after: Mapping[str, float]
    loss_after: float | None

    def get(self, q: Quantity) -> Any:
        if q.shape:
            return _assemble(self, q)
        if q.kind == "value":
            return self.values.get(q.name)
        if q.kind == "grad":
            return self.grads.get(q.name)
        if q.kind == "after":
            return self.after.get(q.name)
        return self.loss_after


def _assemble(outcome: Outcome, q: Quantity) -> Any:
    """A whole vector or matrix from its entries; a per-sample one has the samples as rows ``(n, *shape)``."""
    from .tensors import entry_name

    parts = []
    for index in np.ndindex(q.shape):
        value = outcome.get(Quantity(q.kind, entry_name(q.name, index)))
        if value is None:
            return None
        parts.append(np.asarray(value, dtype=float))
    if all(p.ndim == 0 for p in parts):
        return np.array(parts, dtype=float).reshape(q.shape)
    stacked = np.stack(np.broadcast_arrays(*parts), axis=-1)  # (n, entries)
    return stacked.reshape(stacked.shape[0], *q.shape)


class Student:
    """Redoes the whole computation of a Graph the way a student with given mistakes would.

    ``learning_rate`` enables the answers after one update step (``w5+``, ``E+``);
    ``batch`` is the number of samples of that step for sgd (1) and minibatch
    (None: the whole data set, as gd).  Outcomes are cached per mistake, so a
    class of answer files is graded against one table of candidate results.
    """

    def __init__(self, graph: Graph, learning_rate: float | None = None, batch: int | None = None,
                 program: Program | None = None) -> None:
        self.graph = graph
        self.learning_rate = learning_rate
        self.batch = batch if graph.is_data_problem and batch and batch < (graph.n_samples or 0) else None
        self._program = program
        self._cache: dict[Mistake, Outcome] = {}
        self.correct = self.outcome(NO_MISTAKE)

    def outcome(self, mistake: Mistake) -> Outcome:
        if mistake not in self._cache:
            self._cache[mistake] = self._compute(mistake)
        return self._cache[mistake]

    # -- the student's computation ------------------------------------------
    def _compute(self, m: Mistake) -> Outcome:
        if m.sample is not None:
            return self._one_sample(m.sample)
        graph = mistaken_graph(self.graph, m)
        program = self._program_for(graph, m)
        values, grads = self._gradients(graph, m, program)
        after: dict[str, float] = {}
        loss_after = None
        eta = self.learning_rate
        if eta is not None:
            if self.batch is None:
                step = grads
            else:
                step_graph = _first_batch(graph, self.batch)
                step = self._gradients(step_graph, m, self._program_for(step_graph, m))[1]
            p0 = self.graph.leaf_values
            after = {p: float(p0[p] - m.update_sign * eta * step[p]) for p in graph.parameters}
            loss_after = program.evaluate(after).loss
        return Outcome(values, grads, after, loss_after)

    def _one_sample(self, s: int) -> Outcome:
        """Sample ``s``'s own gradient taken for the whole data set's: the parameters' gradients, the step."""
        g = self.graph
        program = self._program if self._program is not None else Program(g)
        leaves = [v[s:s + 1] if v is not None and g.nodes[n].per_sample else v
                  for n, v in zip(g.nodes, program.leaves())]
        with np.errstate(all="ignore"):
            grads = dict(zip(g.parameters, (float(np.asarray(v, dtype=float)) for v in
                                             program.loss_and_grad(leaves, 1)[1])))
        after: dict[str, float] = {}
        loss_after = None
        if self.learning_rate is not None:
            after = {p: float(g.leaf_values[p] - self.learning_rate * grads[p]) for p in g.parameters}
            loss_after = program.evaluate(after).loss
        return Outcome({}, grads, after, loss_after)

    def _program_for(self, graph: Graph, m: Mistake) -> Program:
        if m.rounding is not None:
            return rounded_program(graph, m.rounding)
        if m == NO_MISTAKE and self._program is not None and graph is self.graph:
            return self._program
        return Program(graph)

    def _gradients(self, graph: Graph, m: Mistake, program: Program) -> tuple[dict[str, Any], dict[str, Any]]:
        ev = program.evaluate()
        eta = self.learning_rate
        if m.stale is None or eta is None:
            return ev.values, ev.adjoints
        grads = dict(ev.adjoints)
        params = dict(graph.leaf_values)
        if m.stale == "backprop":
            # Forward values stay those of the old parameters; the backward
            # formulas of deeper layers read parameters already updated.
            for group in _depth_groups(graph):
                subs = {graph.nodes[p].symbol: sp.Float(params[p]) for p in graph.parameters
                        if params[p] != graph.leaf_values[p]}
                if subs:
                    edges = [Edge(e.src, e.dst, e.local.xreplace(subs)) for e in graph.edges]
                    ev = self._program_for(replace(graph, edges=edges), m).evaluate()
                for p in group:
                    grads[p] = ev.adjoints[p]
                for p in group:
                    params[p] = params[p] - m.update_sign * eta * grads[p]
            grads.update({n: v for n, v in ev.adjoints.items() if n not in graph.parameters})
            return ev.values, grads
        # "declared" / "backward": one parameter after the other, each gradient
        # computed (forward pass included) after the ones before were updated.
        values = ev.values
        order = graph.parameters if m.stale == "declared" else [p for g in _depth_groups(graph) for p in g]
        for p in order:
            ev = program.evaluate(params)
            grads[p] = ev.adjoints[p]
            params[p] = params[p] - m.update_sign * eta * grads[p]
        return values, grads


def mistaken_graph(graph: Graph, m: Mistake) -> Graph:
    """The Graph with the mistake's local partials and reduction."""
    if not m.edits and m.reduction is None:
        return graph
    if m.reduction is not None:
        graph = graph.with_reduction(m.reduction)
    edits = m.edit_map
    edges = [Edge(e.src, e.dst, edits.get((e.src, e.dst), e.local)) for e in graph.edges]
    return replace(graph, edges=edges)


def _first_batch(graph: Graph, batch: int) -> Graph:
    leaves = {k: (v[:batch] if graph.nodes[k].per_sample else v) for k, v in graph.leaf_values.items()}
    return replace(graph, leaf_values=leaves, n_samples=batch)


def _depths(graph: Graph) -> dict[str, int]:
    """The longest path from each node to the loss, in edges."""
    depth = {graph.loss: 0}
    for name in graph.backward_order[1:]:
        depth[name] = 1 + max(depth[e.dst] for e in graph.edges_out_of(name))
    return depth


def _depth_groups(graph: Graph) -> list[list[str]]:
    """Parameters grouped by layer, the layer nearest the loss first (the order of backprop)."""
    depth = _depths(graph)
    levels = sorted({depth[p] for p in graph.parameters if p in depth})
    return [[p for p in graph.parameters if depth.get(p) == d] for d in levels]


# -- early rounding: the same program with every intermediate value rounded --------
def rounder(mode: str, n: int) -> Callable[[Any], Any]:
    """Rounding to ``n`` decimal places (``"dec"``) or significant digits (``"sig"``)."""

    def round_dec(x: Any) -> Any:
        return np.round(np.asarray(x, dtype=float), n)

    def round_sig(x: Any) -> Any:
        a = np.asarray(x, dtype=float)
        with np.errstate(all="ignore"):
            mag = np.floor(np.log10(np.where(a == 0, 1.0, np.abs(a))))
            scale = 10.0 ** (n - 1 - mag)
            return np.where(np.isfinite(a), np.round(a * scale) / scale, a)

    return round_dec if mode == "dec" else round_sig


def rounded_program(graph: Graph, rounding: tuple[str, int]) -> Program:
    """A Program whose every intermediate value (stage, local partial, adjoint) is rounded.

    That is exactly a student who writes each intermediate number down rounded
    and carries on with it.  Leaf values (the given numbers) are kept as given,
    and so are the final results (the parameters' gradients and the reduced
    loss): how a final answer is rounded is judged from the digits written.
    """
    return Program(graph, intermediate=rounder(*rounding))


# -- the catalogue -------------------------------------------------------------------
def catalogue(graph: Graph, learning_rate: float | None = None,
              shapes: Mapping[str, tuple[int, ...]] | None = None) -> list[Mistake]:
    """Every single mistake that applies to this Graph, in the order of :data:`CODES`.

    ``shapes`` (``Problem.shapes``) adds the matrix-form mistakes of :mod:`explain.matrixforms`
    for a problem with vectors and matrices.
    """
    from .matrixforms import sample_indices, transpose_changes

    found: list[Mistake] = []
    found += _activation_mistakes(graph)
    found += _loss_mistakes(graph)
    if shapes:  # before the single paths: a whole matrix that left out the L2 term is told so
        found += _missing_tensor_paths(graph, shapes)
    found += _missing_paths(graph)
    if shapes:
        # Before wrong_weight: the same W δ is a missing transpose here.
        found += [Mistake("missing_transpose", variant, edits, info=info, scope=scope)
                  for variant, edits, info, scope in transpose_changes(graph, shapes)]
    found += _weight_mistakes(graph)
    if learning_rate is not None:
        groups = _depth_groups(graph)
        if len(groups) > 1:
            found.append(Mistake("stale_parameters", "backprop", stale="backprop"))
        if len(graph.parameters) > 1:
            found.append(Mistake("stale_parameters", "declared", stale="declared"))
            backward = [p for g in groups for p in g]
            if backward != graph.parameters:
                found.append(Mistake("stale_parameters", "backward", stale="backward"))
    if graph.reductions:
        other = "mean" if graph.reduction == "sum" else "sum"
        found.append(Mistake("mean_vs_sum", other, reduction=other))
    if shapes:
        found += [Mistake("broadcast_sum", f"sample{s}", sample=s, info=(("sample", str(s)),), scope="edges")
                  for s in sample_indices(graph)]
    if learning_rate is not None:
        found.append(Mistake("update_sign", "plus", update_sign=-1.0))
    for mode in ("sig", "dec"):
        for n in (2, 3, 4):
            found.append(Mistake("early_rounding", f"{mode}{n}", rounding=(mode, n)))
    # A mistake confined to a part that is the whole (one layer of one function) is kept once.
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for m in found:
        key = (m.code, frozenset(m.edits), m.reduction, m.update_sign, m.stale, m.rounding, m.sample)
        if key not in seen:
            seen.add(key)
            unique.append(m)
    return unique


def _edits(pairs: Iterable[tuple[Edge, sp.Expr]]) -> tuple[tuple[tuple[str, str], sp.Expr], ...]:
    return tuple(((e.src, e.dst), new) for e, new in pairs if _formulas_differ(new, e.local))


def _formulas_differ(a: sp.Expr, b: sp.Expr) -> bool:
    """Whether two formulas differ as functions (an edit that changes nothing is no mistake).

    A value that differs at some point proves it, and is cheap; ``simplify``
    (slow: it was most of the time to start grading) only confirms that two
    formulas that agree at three points really are the same.
    """
    difference = a - b
    if difference == 0:
        return False
    symbols = sorted(difference.free_symbols, key=str)
    rng = random.Random(0)
    for _ in range(3):
        point = {s: sp.Float(rng.uniform(0.1, 0.9)) for s in symbols}
        value = complex(difference.xreplace(point).evalf())
        if abs(value) > 1e-9:
            return True
    return sp.simplify(difference) != 0


def _activation_edges(graph: Graph) -> dict[str, list[Edge]]:
    """Edges z → f(z) through an activation function, by function name."""
    table: dict[str, list[Edge]] = {}
    for e in graph.edges:
        expr = graph.nodes[e.dst].expr
        if isinstance(expr, sp.Function) and type(expr).__name__ in ACTIVATIONS \
                and expr.args[0] == graph.nodes[e.src].symbol:
            table.setdefault(type(expr).__name__, []).append(e)
    return table


def _layers_of(graph: Graph, edges: list[Edge]) -> list[list[Edge]]:
    """``edges`` grouped by layer (the depth of their destination below the loss), when there are several."""
    depth = _depths(graph)
    groups: dict[int, list[Edge]] = {}
    for e in edges:
        groups.setdefault(depth.get(e.dst, -1), []).append(e)
    return [groups[d] for d in sorted(groups)] if len(groups) > 1 else []


def _activation_mistakes(graph: Graph) -> list[Mistake]:
    table = _activation_edges(graph)
    kinds = dict(table)
    if len(table) > 1:
        kinds["all"] = [e for edges in table.values() for e in edges]
    missing, wrong = [], []
    for func, edges in kinds.items():
        edits = _edits((e, sp.S.One) for e in edges)
        if edits:
            missing.append(Mistake("missing_activation_derivative", func, edits))
    t = sp.Dummy("t", real=True)

    def rules_for(func: str) -> dict[str, Callable[[Edge], sp.Expr]]:
        def at_output(e: Edge) -> sp.Expr:
            node = graph.nodes[e.dst]
            rest = node.expr.args[1:]  # type: ignore[union-attr]
            derivative = sp.diff(USER_FUNCTIONS[func][0](t, *rest), t)
            return derivative.xreplace({t: node.symbol})

        rules: dict[str, Callable[[Edge], sp.Expr]] = {
            "as_output": lambda e: graph.nodes[e.dst].symbol,
            "as_input": lambda e: graph.nodes[e.src].symbol,
            "at_input": lambda e: e.local.xreplace({graph.nodes[e.dst].symbol: graph.nodes[e.src].symbol}),
            "at_output": at_output,
        }
        if func != "sigmoid":
            # tanh' written as a(1 - a): the sigmoid's derivative, the one learned first.
            rules["as_sigmoid"] = lambda e: graph.nodes[e.dst].symbol * (1 - graph.nodes[e.dst].symbol)
        return rules

    for func, edges in table.items():
        for how, rule in rules_for(func).items():
            edits = _edits((e, rule(e)) for e in edges)
            if edits:
                wrong.append(Mistake("wrong_activation_derivative", f"{func}:{how}", edits, info=(("how", how),)))
    # The same mistakes made at one layer only (σ' forgotten at the hidden layer alone).
    for i, layer in enumerate(_layers_of(graph, kinds.get("all", next(iter(table.values()), [])))):
        edits = _edits((e, sp.S.One) for e in layer)
        if edits:
            missing.append(Mistake("missing_activation_derivative", f"layer{i}", edits, scope="layer"))
        for func in table:
            edges = [e for e in layer if e in table[func]]
            for how, rule in rules_for(func).items():
                edits = _edits((e, rule(e)) for e in edges)
                if edits:
                    wrong.append(Mistake("wrong_activation_derivative", f"{func}:{how}:layer{i}", edits,
                                         info=(("how", how),), scope="layer"))
    return missing + wrong


def _loss_mistakes(graph: Graph) -> list[Mistake]:
    edges = [e for e in graph.edges_into(graph.loss) if graph.nodes[e.src].kind not in ("value", "data")]
    found = []
    edits = _edits((e, -e.local) for e in edges)
    if edits:
        found.append(Mistake("sign_error", "loss", edits))
    for factor, change in ((2, "doubled"), (sp.Rational(1, 2), "halved")):
        edits = _edits((e, factor * e.local) for e in edges)
        if edits:
            found.append(Mistake("loss_constant", change, edits, info=(("change", change),)))
    return found


def _missing_paths(graph: Graph) -> list[Mistake]:
    fanout = {n: graph.edges_out_of(n) for n in graph.backward_order
              if graph.nodes[n].kind in ("stage", "parameter") and len(graph.edges_out_of(n)) > 1}
    found = []
    for name, edges in list(fanout.items())[:MAX_PATH_DROPS]:
        for e in edges:
            found.append(Mistake("missing_path", f"drop:{e.src}->{e.dst}", (((e.src, e.dst), sp.S.Zero),)))
    if len(fanout) > 1:
        for keep in (0, -1):
            edits = tuple(((e.src, e.dst), sp.S.Zero) for edges in fanout.values()
                          for i, e in enumerate(edges) if i != keep % len(edges))
            found.append(Mistake("missing_path", "keep_first" if keep == 0 else "keep_last", edits))
    return found


def _missing_tensor_paths(graph: Graph, shapes: Mapping[str, tuple[int, ...]]) -> list[Mistake]:
    """The matrix form of a missing path: every entry of a vector or matrix leaves out its edge into
    the same node, as a student does who forgets the L2 term of ∂J/∂W (each entry alone is a
    :func:`_missing_paths` mistake; the whole matrix needs all of them at once)."""
    from .tensors import entry_name

    found = []
    for tensor, shape in shapes.items():
        entries = [entry_name(tensor, index) for index in np.ndindex(shape)]
        if len(entries) < 2 or any(e not in graph.nodes for e in entries):
            continue
        consumers = [[e.dst for e in graph.edges_out_of(n)] for n in entries]
        if any(len(c) < 2 for c in consumers):  # an entry with one path has none to leave out
            continue
        for dst in consumers[0]:
            if all(dst in c for c in consumers[1:]):
                found.append(Mistake("missing_path", f"drop:{tensor}->{dst}",
                                     tuple(((n, dst), sp.S.Zero) for n in entries), info=(("tensor", tensor),)))
    return found


def _weight_edges(graph: Graph) -> list[tuple[Edge, str]]:
    """Edges a → z of a product w·a in z, whose local is the weight w (a parameter)."""
    found = []
    for e in graph.edges:
        w = e.local
        if isinstance(w, sp.Symbol) and w.name in graph.nodes and graph.nodes[w.name].kind == "parameter" \
                and graph.nodes[e.src].kind != "parameter":
            try:
                partner = graph.edge(w.name, e.dst)
            except KeyError:
                continue
            if partner.local == graph.nodes[e.src].symbol:
                found.append((e, w.name))
    return found


def _weight_mistakes(graph: Graph) -> list[Mistake]:
    weight_edges = _weight_edges(graph)
    found = []
    edits = tuple(((e.src, e.dst), graph.nodes[e.src].symbol) for e, _ in weight_edges)
    if edits:
        found.append(Mistake("activation_instead_of_weight", "activation", edits))
    # Layers: units sharing the same inputs; W[i][j] is the weight from input j to unit i.
    by_unit: dict[str, dict[str, str]] = {}
    for e, w in weight_edges:
        by_unit.setdefault(e.dst, {})[e.src] = w
    layers: dict[tuple[str, ...], list[str]] = {}
    for unit, sources in by_unit.items():
        layers.setdefault(tuple(sources), []).append(unit)
    rules = {
        "transposed": lambda i, j, n, m: (j, i) if n == m else None,
        "other_unit": lambda i, j, n, m: ((i + 1) % n, j) if n > 1 else None,
        "other_source": lambda i, j, n, m: (i, (j + 1) % m) if m > 1 else None,
    }
    for variant, rule in rules.items():
        new: list[tuple[tuple[str, str], sp.Expr]] = []
        for sources, units in layers.items():
            n, m = len(units), len(sources)
            for i, unit in enumerate(units):
                for j, source in enumerate(sources):
                    target = rule(i, j, n, m)
                    if target is not None and sources[target[1]] in by_unit[units[target[0]]]:
                        other = by_unit[units[target[0]]][sources[target[1]]]
                        if other != by_unit[unit][source]:
                            new.append(((source, unit), graph.nodes[other].symbol))
        if new:
            found.append(Mistake("wrong_weight", variant, tuple(new)))
    found += _partial_weight_mistakes(graph, layers, by_unit)
    return found


def _partial_weight_mistakes(graph: Graph, layers: Mapping[tuple[str, ...], list[str]],
                             by_unit: Mapping[str, Mapping[str, str]]) -> list[Mistake]:
    """Weight mistakes made in one place: one layer (activations, transposed) or one connection.

    One connection: ∂z_u/∂a_s taken as another weight of the same unit — the weight
    from a_s to another unit u' (w7 where w8 belongs: both leave out_h2), or from
    another input s' to u.
    """
    found = []
    if len(layers) > 1:
        for k, (sources, units) in enumerate(layers.items()):
            edits = tuple(((s, u), graph.nodes[s].symbol) for u in units for s in sources)
            found.append(Mistake("activation_instead_of_weight", f"layer{k}", edits, scope="layer"))
            if len(units) == len(sources) > 1:
                swapped = tuple(((s, u), graph.nodes[by_unit[units[j]][sources[i]]].symbol)
                                for i, u in enumerate(units) for j, s in enumerate(sources) if i != j)
                found.append(Mistake("wrong_weight", f"transposed:layer{k}", swapped, scope="layer"))
    for sources, units in layers.items():
        for u in units:
            for s in sources:
                right = by_unit[u][s]
                others = [by_unit[v][s] for v in units if v != u] + [by_unit[u][r] for r in sources if r != s]
                for other in dict.fromkeys(others):
                    if other != right:
                        found.append(Mistake("wrong_weight", f"edge:{s}->{u}={other}",
                                             (((s, u), graph.nodes[other].symbol),), scope="edges"))
    return found


def combine(a: Mistake, b: Mistake) -> Mistake | None:
    """Both mistakes at once, or None when they cannot be held together."""
    if a.code == b.code or a.sample is not None or b.sample is not None or (a.stale and b.stale) \
            or (a.rounding and b.rounding) \
            or (a.reduction and b.reduction) or (a.update_sign < 0 and b.update_sign < 0):
        return None
    edits = a.edit_map
    for edge, new in b.edits:
        if edge in edits:
            if a.code not in _SCALING or b.code not in _SCALING:
                return None
            edits[edge] = sp.expand(edits[edge] * _factor(b, edge))
        else:
            edits[edge] = new
    return Mistake(
        a.code, f"{a.variant}+{b.variant}", tuple(edits.items()), a.reduction or b.reduction,
        a.update_sign * b.update_sign, a.stale or b.stale, a.rounding or b.rounding, (), (a, b),
    )


def _factor(m: Mistake, edge: tuple[str, str]) -> sp.Expr:
    return sp.Integer(-1) if m.code == "sign_error" else (sp.Integer(2) if m.variant == "doubled" else sp.Rational(1, 2))


# -- searching -------------------------------------------------------------------------
#: Given the candidates' results stacked in an array (one row per mistake), which match the answer.
Matcher = Callable[[np.ndarray], np.ndarray]


class Diagnoser:
    """Searches the catalogue for the mistake that explains a wrong answer.

    The candidates' results do not depend on the answers, so for each quantity
    they are computed once and kept as one array (one row per mistake): a
    whole class is then diagnosed with a few vectorized comparisons per wrong
    answer.  Pairs of mistakes are built only when a single one explains
    nothing.
    """

    def __init__(self, student: Student, learning_rate: float | None = None,
                 shapes: Mapping[str, tuple[int, ...]] | None = None) -> None:
        self.student = student
        self.singles = catalogue(student.graph, learning_rate, shapes)
        self._pairs: list[Mistake] | None = None
        self._tables: dict[tuple[Quantity, bool], tuple[list[Mistake], np.ndarray]] = {}

    def warm(self, pairs: bool = False) -> None:
        """Compute the mistakes' results now (before worker processes are forked)."""
        for m in self.singles + (self.pairs if pairs else []):
            self.student.outcome(m)

    @property
    def pairs(self) -> list[Mistake]:
        if self._pairs is None:
            found = []
            whole = [m for m in self.singles if m.scope == "all"]  # a partial mistake is not paired
            for i, a in enumerate(whole):
                for b in whole[i + 1:]:
                    combined = combine(a, b)
                    if combined is not None and len(found) < MAX_PAIRS:
                        found.append(combined)
            self._pairs = found
        return self._pairs

    def table(self, q: Quantity, pairs: bool) -> tuple[list[Mistake], np.ndarray]:
        """The mistakes that change quantity ``q``, and their results stacked in one array.

        A mistake that leaves ``q`` unchanged cannot explain a wrong answer;
        neither can a pair that gives the same number as one of its parts.
        """
        key = (q, pairs)
        if key not in self._tables:
            correct = self.student.correct.get(q)
            single = {m: self.student.outcome(m).get(q) for m in self.singles}
            kept, rows = [], []
            for m in (self.pairs if pairs else self.singles):
                value = self.student.outcome(m).get(q)
                others = [single[p] for p in m.parts]
                if _differs(value, correct) and all(_differs(value, o) for o in others):
                    kept.append(m)
                    rows.append(np.asarray(value, dtype=float))
            shape = np.shape(correct) if correct is not None else ()
            self._tables[key] = (kept, np.array(rows, dtype=float).reshape(len(rows), *shape))
        return self._tables[key]

    def hits(self, q: Quantity, matches: Matcher, pairs: bool) -> list[Mistake]:
        """The mistakes (singles, or pairs with ``pairs``) whose result ``matches``, in catalogue order."""
        if self.student.correct.get(q) is None:
            return []
        mistakes, values = self.table(q, pairs)
        if not mistakes:
            return []
        return [mistakes[int(i)] for i in np.flatnonzero(matches(values))]

    def contradicted(self, q: Quantity, matches: Matcher) -> set[Mistake]:
        """The single mistakes that would change ``q`` away from an answer ``matches`` accepts (a right one)."""
        if self.student.correct.get(q) is None:
            return set()
        mistakes, values = self.table(q, False)
        if not mistakes:
            return set()
        return {mistakes[int(i)] for i in np.flatnonzero(~matches(values))}

    def find(self, q: Quantity, matches: Matcher, pairs: bool, prefer: Sequence[str] = (),
             reject: Collection[Mistake] = frozenset(),
             pair_ok: Callable[[Mistake], bool] | None = None) -> Mistake | None:
        """The first mistake (catalogue order; singles before pairs) whose result ``matches``.

        Codes in ``prefer`` come first: mistakes already seen in the same
        student's other answers explain this one best when two mistakes give
        the same number (a flipped loss derivative and ``w + η·g`` give the
        same ``w+``).  Before them, mistakes not in ``reject``: a mistake there
        (or a pair with a part there) would change an answer the same student
        got right, so another mistake giving the same number is theirs.  A pair
        is only reported when ``pair_ok`` accepts it.
        """
        rank = {code: i for i, code in enumerate(prefer)}

        def contradicted(m: Mistake) -> bool:
            return m in reject or any(p in reject for p in m.parts)

        for use_pairs in ((False, True) if pairs else (False,)):
            found = self.hits(q, matches, use_pairs)
            if use_pairs and pair_ok is not None:
                found = [m for m in found if pair_ok(m)]
            if found:
                order = {m: i for i, m in enumerate(found)}
                return min(found, key=lambda m: (contradicted(m), min(rank.get(c, len(rank)) for c in m.codes),
                                                 order[m]))
        return None


@dataclass
class Hints:
    """What one student's other answers say about the mistakes they hold (see ``Grader.grade``).

    ``reject``: mistakes that would change an answer the student got right (ranked last);
    ``seen``: codes diagnosed in their other answers; ``pairs``: how many of their
    answers each pair of mistakes explains; ``matchers``: for each answer graded
    (by ``id``), its quantity, its matcher and whether pairs may be tried for it.
    """

    reject: set[Mistake] = field(default_factory=set)
    seen: set[str] = field(default_factory=set)
    pairs: Counter[Mistake] = field(default_factory=Counter)
    matchers: dict[int, tuple[Quantity, Matcher, bool]] = field(default_factory=dict)

    def pair_ok(self, m: Mistake) -> bool:
        """Two mistakes at once are believed when the student shows one of them, or the pair, elsewhere."""
        return any(c in self.seen for c in m.codes) or self.pairs[m] >= 2

    def count_pairs(self, diagnoser: Diagnoser, wrong: Sequence[tuple[Quantity, Matcher, bool]]) -> None:
        """Count, over the student's wrong answers, the pairs that explain each."""
        for q, matches, pairs in wrong:
            if pairs:
                self.pairs.update(set(diagnoser.hits(q, matches, True)))


def _differs(a: Any, b: Any) -> bool:
    """True when ``a`` is a finite result that is not (numerically) ``b``."""
    if a is None or b is None:
        return a is not None
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or not np.all(np.isfinite(a)):
        return False
    return not np.allclose(a, b, rtol=1e-10, atol=1e-300)


# -- wording ---------------------------------------------------------------------------
def _squares_a_difference(graph: Graph) -> bool:
    """Whether the loss (or the per-sample stage it reduces) squares a difference, like (y - t)²."""
    for name in [graph.loss, *(e.src for e in graph.edges_into(graph.loss))]:
        expr = graph.nodes[name].expr
        if expr is not None and any(p.exp == 2 and p.base.is_Add for p in expr.atoms(sp.Pow)):
            return True
    return False


def describe(m: Mistake, q: Quantity, graph: Graph, msg: Messages) -> tuple[str, str]:
    """The message naming the wrong step and the right one, and the worked solution's step."""
    if m.parts:
        (first, step), (second, _) = (describe(p, q, graph, msg) for p in m.parts)
        return msg("mistake_pair", first=first, second=second), step
    if m.code in ("missing_transpose", "broadcast_sum"):
        from .matrixforms import describe_change

        return describe_change(dict(m.info), m.sample, q, graph, msg)
    tm = TextMath(precision=6)
    edge_steps = [k for k, _ in m.edits if _relevant(graph, q, k[0])] or [k for k, _ in m.edits]
    if m.edits:
        src, dst = edge_steps[0]
        wrong = dict(m.edits)[(src, dst)]
        right = graph.edge(src, dst).local
        fields = {"src": src, "dst": dst, "wrong": tm.expr(wrong), "right": tm.expr(right), "loss": graph.loss}
        step = msg("check_step_backward", loss=graph.loss, node=src)
        if m.code == "missing_path" and dict(m.info).get("tensor") == q.name:  # the whole W: named as W
            tensor = dict(m.info)["tensor"]
            text = msg("mistake_missing_tensor_path", node=tensor, loss=graph.loss, dropped=dst)
            step = msg("check_step_backward", loss=graph.loss, node=tensor)
            others = 0
        elif m.code == "missing_path":
            consumers = [e.dst for e in graph.edges_out_of(src)]
            dropped = [d for s, d in edge_steps if s == src]
            text = msg("mistake_missing_path", node=src, loss=graph.loss,
                       consumers=", ".join(consumers), dropped=", ".join(dropped))
            others = len({s for s, _ in edge_steps}) - 1
        else:
            if m.code == "missing_activation_derivative":
                fields["func"] = type(graph.nodes[dst].expr).__name__
            if m.code == "wrong_activation_derivative":
                fields["how"] = msg(f"mistake_how_{dict(m.info)['how']}")
            if m.code == "loss_constant":
                fields["change"] = msg(f"mistake_change_{dict(m.info)['change']}")
                factor = "2" if dict(m.info)["change"] == "doubled" else "½"
                fields["wrong"] = f"{factor}·({fields['right']})" if right.is_Add else f"{factor}·{fields['right']}"
            if m.code == "sign_error":
                # -(a + b) reads as the flip it is; a right side that is already negative
                # prints as its negation (f², never --f²).
                if right.is_Add and not right.could_extract_minus_sign():
                    fields["wrong"] = f"-({fields['right']})"
                # Prediction minus target is the usual cause only where the loss is a squared difference.
                fields["why"] = msg("mistake_sign_error_why") if _squares_a_difference(graph) else ""
            if m.code == "activation_instead_of_weight":
                fields["weight"] = str(right)
            text = msg(f"mistake_{m.code}", **fields)
            others = len(edge_steps) - 1
        if others > 0:
            text += msg("mistake_also", n=others)
        return text, step
    step = _quantity_step(q, graph, msg)
    if m.code == "stale_parameters":
        if m.stale == "backprop":
            groups = _depth_groups(graph)
            names = ", ".join(p for g in groups[:-1] for p in g)
            return msg("mistake_stale_parameters_backprop", names=names), step
        order = graph.parameters if m.stale == "declared" else [p for g in _depth_groups(graph) for p in g]
        return msg("mistake_stale_parameters_sequential", order=", ".join(order)), step
    if m.code == "mean_vs_sum":
        words = {"sum": msg("reduction_sum"), "mean": msg("reduction_mean")}
        return msg("mistake_mean_vs_sum", wrong=words[m.variant], right=words[graph.reduction],
                   n=graph.n_samples), step
    if m.code == "update_sign":
        name = q.name if q.kind == "after" else "w"
        return msg("mistake_update_sign", name=name, loss=graph.loss), step
    mode, n = m.rounding or ("sig", 0)
    return msg("mistake_early_rounding", rounding=msg(f"mistake_rounding_{mode}", n=n)), step


def _quantity_step(q: Quantity, graph: Graph, msg: Messages) -> str:
    if q.kind == "value":
        return msg("check_step_forward", name=q.name)
    if q.kind == "grad":
        return msg("check_step_chain", node=q.name) if graph.nodes[q.name].kind == "parameter" \
            else msg("check_step_backward", loss=graph.loss, node=q.name)
    if q.kind == "after":
        return msg("check_step_update", name=f"{q.name}+")
    return msg("check_step_update", name=f"{graph.loss}+")


def _relevant(graph: Graph, q: Quantity, src: str) -> bool:
    """Whether a local partial used for ∂loss/∂src enters the quantity asked for."""
    if q.kind == "loss_after":
        return True
    if q.kind == "value":
        return False
    return src == q.name or src in graph.descendants(q.name)
