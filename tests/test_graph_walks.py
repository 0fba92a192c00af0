"""The Graph owns its walks: consumers, ancestors, descendants, what reaches the loss, depth to it.

Expected sets come from an independent walk written here: a breadth-first search
over the edge list (the Graph's own walks make one pass in its node order), and
the depth from a memoised recursion over the edges.  Every example's Graph must
also pass ``Graph.check()``; a Graph broken on purpose must not.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import pytest
import sympy as sp

import explain
from explain.graph import Edge, Graph

from .conftest import EXAMPLES

PROBLEMS = sorted(p for p in [*EXAMPLES.glob("*.toml"), *EXAMPLES.glob("published/*.toml")]
                  if "answers" not in p.name)


def _graph(path: Path) -> Graph:
    return Graph.from_problem(explain.load(path))


def _bfs(start: str, step: dict[str, list[str]]) -> set[str]:
    seen: set[str] = set()
    todo = deque(step.get(start, []))
    while todo:
        n = todo.popleft()
        if n not in seen:
            seen.add(n)
            todo.extend(step.get(n, []))
    return seen


@pytest.mark.parametrize("path", PROBLEMS, ids=lambda p: p.stem)
def test_walks_agree_with_a_search_over_the_edges(path: Path) -> None:
    g = _graph(path).check()
    out: dict[str, list[str]] = {}
    into: dict[str, list[str]] = {}
    for e in g.edges:
        out.setdefault(e.src, []).append(e.dst)
        into.setdefault(e.dst, []).append(e.src)
    for name in g.nodes:
        assert g.descendants(name) == _bfs(name, out), name
        assert g.ancestors(name) == _bfs(name, into), name
        assert sorted(g.consumers(name)) == sorted(out.get(name, [])), name
    reaching = {g.loss} | _bfs(g.loss, into)
    assert g.influencing_loss() == reaching

    @lru_cache(maxsize=None)
    def longest(n: str) -> int:  # the longest path from n to the loss, over edges that stay on such paths
        return 0 if n == g.loss else 1 + max(longest(d) for d in out[n] if d in reaching)

    assert g.depth_to_loss() == {n: longest(n) for n in reaching}
    # The backward order visits every node after all of its consumers (a reverse topological order).
    order = {n: i for i, n in enumerate(g.backward_order)}
    assert all(order[e.dst] < order[e.src] for e in g.edges if e.src in order and e.dst in order)


def test_walks_on_a_hand_drawn_graph() -> None:
    # a → c, b → c, c → L, b → d (d does not reach the loss): worked by hand.
    text = "loss = 'L'\n[parameters]\na = 1.0\nb = 2.0\n[forward]\nc = 'a*b'\nL = 'c**2'\nd = 'b + 1'\n"
    with pytest.warns(Warning, match="do not reach the loss"):
        d = explain.derive(explain.loads(text, source="walks.toml"))
    g = d.graph.check()
    assert g.consumers("b") == ["c", "d"]
    assert g.descendants("b") == {"c", "L", "d"} and g.descendants("a", "b") == {"c", "L", "d"}
    assert g.ancestors("L") == {"a", "b", "c"} and g.ancestors("d") == {"b"}
    assert g.influencing_loss() == {"a", "b", "c", "L"}
    assert g.depth_to_loss() == {"L": 0, "c": 1, "a": 2, "b": 2}


def test_check_names_what_is_broken() -> None:
    g = _graph(EXAMPLES / "seed003_network.toml")
    assert g.check() is g
    with pytest.raises(AssertionError, match="an end is not a node"):
        replace(g, edges=[*g.edges, Edge("w1", "nowhere", sp.S.One)]).check()
    with pytest.raises(AssertionError, match="inputs without an edge"):
        replace(g, edges=g.edges[1:]).check()
    with pytest.raises(AssertionError, match="not a node"):
        replace(g, loss="nothing").check()
    first = next(n for n in g.nodes.values() if n.kind == "parameter")
    with pytest.raises(AssertionError, match="with an expression"):
        replace(g, nodes={**g.nodes, first.name: replace(first, expr=sp.Symbol("x"))}).check()
    # Stages out of order: the last stage moved to the front reads inputs not yet computed.
    names = list(g.nodes)
    reordered = {names[-1]: g.nodes[names[-1]], **{n: g.nodes[n] for n in names[:-1]}}
    with pytest.raises(AssertionError, match="not computed before it"):
        replace(g, nodes=reordered).check()


def _layer(units: int, inputs: int) -> str:
    weights = ", ".join("[" + ", ".join(f"{0.01 * (u + i + 1):.2f}" for i in range(inputs)) + "]" for u in range(units))
    return f"[[network.layers]]\nunits = {units}\nactivation = 'sigmoid'\nweights = [{weights}]\nbias = 0.1\n"


def test_repr_is_short_for_a_large_network_and_str_lists_everything() -> None:
    text = "[network]\ninputs = [0.1, 0.2, 0.3]\ntargets = [0.0, 1.0]\n" + _layer(16, 3) + _layer(16, 16) + _layer(2, 16)
    g = Graph.from_problem(explain.loads(text, source="big.toml")).check()
    full = str(g).splitlines()
    stages = [n for n in g.nodes.values() if n.expr is not None]
    assert len(full) == 1 + 2 + len(stages)  # the header, the parameters and values lines, every stage
    assert len(g.parameters) > 300 and full[1].endswith(", " + g.parameters[-1])
    short = repr(g).splitlines()
    assert len(short) < 60 and any("more stages" in line for line in short) and len(repr(g)) < 6000
    assert short[-1] == full[-1]  # the loss, last, is still shown
