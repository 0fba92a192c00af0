"""The annotated computation graph: DOT source, Graphviz output, highlight, escaping, CLI."""

from __future__ import annotations

import html
import re
import shutil
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import explain
from explain.derivation import Derivation, derive
from explain.cli import main
from explain.errors import ExplainError
from explain.problem import from_dict, load
from explain.render import dot as dotmod
from .conftest import EXAMPLES, run_cli
from explain.render.dot import (
    GraphView, GraphvizMissingWarning, graph_dot, graph_svg, resolve_level, show, write_graph,
)

SEED003 = Path(__file__).resolve().parent.parent / "examples" / "seed003_network.toml"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")

# The DOT that the graphviz package prints: one statement per line, a tab deep (two inside a
# subgraph); an ID bare when it is a plain identifier, else quoted with \" inside.
_ID = r'"(?:[^"\\]|\\.)*"|[^\s"\[\]:]+'
_EDGE_LINE = re.compile(rf"^\t(?P<a>{_ID})(?::\w+:\w+)? -> (?P<b>{_ID})(?::\w+:\w+)?(?: \[(?P<attrs>.*)\])?$", re.M)
_NODE_LINE = re.compile(rf"^\t(?!(?:graph|node|edge) \[)(?P<id>{_ID}) \[(?P<attrs>.*)\]$", re.M)


def _unquote(token: str) -> str:
    return token[1:-1].replace('\\"', '"').replace("\\\\", "\\") if token.startswith('"') else token


def _html_label(attrs: str) -> str:
    """The HTML-like label of an attribute list (markup is balanced: text has &lt; for '<')."""
    i = attrs.index("label=<") + len("label=")
    depth = 0
    for j in range(i, len(attrs)):
        depth += {"<": 1, ">": -1}.get(attrs[j], 0)
        if depth == 0:
            return attrs[i + 1 : j]  # without the outer <>
    raise AssertionError(f"unbalanced label in {attrs!r}")


def label_text(attrs: str) -> str:
    """What a label reads: its text rows, one per line, entities decoded."""
    rows = re.sub(r"<[^>]*>", "\n", _html_label(attrs))
    return "\n".join(html.unescape(r) for r in rows.split("\n") if r.strip())


def boxes(source: str) -> dict[str, str]:
    """The drawn boxes (not the labels on edges): ID → their text."""
    return {_unquote(m["id"]): label_text(m["attrs"]) for m in _NODE_LINE.finditer(source) if "TABLE" in m["attrs"]}


def edges(source: str) -> dict[tuple[str, str], str]:
    """The drawn edges, a label node on the way joined up: (tail, head) → attributes and label text."""
    labels = {_unquote(m["id"]): label_text(m["attrs"]) for m in _NODE_LINE.finditer(source)
              if "TABLE" not in m["attrs"]}
    drawn: dict[tuple[str, str], str] = {}
    through: dict[str, str] = {}
    for m in _EDGE_LINE.finditer(source):
        a, b, attrs = _unquote(m["a"]), _unquote(m["b"]), m["attrs"] or ""
        if b in labels:
            through[b] = a
        elif a in labels:
            drawn[(through[a], b)] = f"{attrs} label: {labels[a]}"
        else:
            drawn[(a, b)] = attrs
    return drawn


def highlighted(source: str) -> set[tuple[str, str]]:
    return {e for e, attrs in edges(source).items() if dotmod._HIGHLIGHT in attrs}


def no_dot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))


def network(sizes: list[int], seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    layers = [{"units": u, "weights": (0.1 * rng.standard_normal((u, p))).round(3).tolist()}
              for p, u in zip(sizes, sizes[1:])]
    return {"title": "wide", "network": {"inputs": [0.1] * sizes[0], "targets": [0.0] * sizes[-1], "layers": layers}}


@pytest.fixture(scope="module")
def seed003() -> Derivation:
    return derive(load(SEED003))


# -- what the drawing shows ---------------------------------------------------------------
def test_operation_level_shows_every_node_and_every_local_derivative(seed003: Derivation) -> None:
    source = graph_dot(seed003, level="operation")
    drawn_boxes = boxes(source)
    assert set(drawn_boxes) == set(seed003.graph.nodes)
    drawn = edges(source)
    assert set(drawn) == {(e.src, e.dst) for e in seed003.graph.edges}
    assert drawn[("out_h1", "in_o1")].endswith("label: ∂in_o1/∂out_h1 = w5 = 0.1")
    assert drawn[("in_h1", "out_h1")].endswith("label: ∂out_h1/∂in_h1 = out_h1·(1 - out_h1) = 0.2461")
    # each box: formula with its value, and the gradient of the loss
    assert "in_h1 = w1·x1 + w3·x2 = 0.25" in drawn_boxes["in_h1"].splitlines()
    assert "dE/dw1 = -0.008421" in drawn_boxes["w1"].splitlines()
    assert "dE/dout_h1 = -0.06843" in drawn_boxes["out_h1"].splitlines()


def test_networks_default_to_one_box_per_neuron(seed003: Derivation) -> None:
    assert resolve_level(seed003.graph) == "stage"
    source = graph_dot(seed003)
    drawn_boxes = boxes(source)
    assert "in_h1/out_h1" in drawn_boxes and "out_h1" not in drawn_boxes
    drawn = edges(source)
    assert ("in_h1", "out_h1") not in drawn and ("in_h1/out_h1", "in_h1/out_h1") not in drawn
    assert drawn[("in_h1/out_h1", "in_o1/out_o1")].endswith("label: ∂in_o1/∂out_h1 = w5 = 0.1")
    assert ("w1", "in_h1/out_h1") in drawn and ("out_o2/out_o2", "E") not in drawn
    # the edge inside the neuron is written in its box, and edges meet its rows
    assert "∂out_h1/∂in_h1 = out_h1·(1 - out_h1) = 0.2461" in drawn_boxes["in_h1/out_h1"].splitlines()
    assert '"in_h1/out_h1":post:e -> ' in source and ' -> "in_h1/out_h1":pre:w' in source


def test_expressions_stay_one_node_per_operation() -> None:
    d = explain.grad("sigmoid(w*x + b)", wrt="w,b", at={"w": 1, "b": 2, "x": 3})
    assert resolve_level(d.graph) == "operation"
    source = graph_dot(d)
    assert {"mul1", "add1", "f"} <= set(boxes(source)) and ("add1", "f") in edges(source)


def test_a_neuron_can_be_the_loss() -> None:
    d = explain.grad("sigmoid(w*x + b)", wrt="w,b", at={"w": 1, "b": 2, "x": 3})
    source = graph_dot(d, level="stage", highlight="w")
    neuron = boxes(source)["add1/f"].splitlines()
    assert "f = sigmoid(add1) = 0.9933" in neuron and "∂f/∂add1 = f·(1 - f) = 0.006648" in neuron
    assert highlighted(source) == {("w", "mul1"), ("mul1", "add1/f")}


def test_captions_follow_the_language(seed003: Derivation) -> None:
    from explain.i18n import Messages

    source = graph_dot(seed003, lang="zh", highlight="w1")
    assert Messages("zh")("graph_legend") in source and "CJK" in source


def test_unknown_level_is_bad_input(seed003: Derivation) -> None:
    with pytest.raises(ExplainError, match="level"):
        graph_dot(seed003, level="neuron")


# -- highlight -----------------------------------------------------------------------------
W1_PATHS = {("w1", "in_h1"), ("in_h1", "out_h1"), ("out_h1", "in_o1"), ("out_h1", "in_o2"),
            ("in_o1", "out_o1"), ("in_o2", "out_o2"), ("out_o1", "E"), ("out_o2", "E")}


def test_highlight_marks_exactly_the_paths_of_w1(seed003: Derivation) -> None:
    assert seed003.graph.path_count("w1") == 2
    source = graph_dot(seed003, highlight="w1", level="operation")
    assert highlighted(source) == W1_PATHS
    assert "(2)" in source and "dE/dw1 = -0.008421" in source
    other = edges(source)[("w5", "in_o1")]
    assert dotmod._DIM_BORDER in other


def test_highlight_at_stage_level(seed003: Derivation) -> None:
    source = graph_dot(seed003, highlight="w1")
    assert highlighted(source) == {
        ("w1", "in_h1/out_h1"), ("in_h1/out_h1", "in_o1/out_o1"), ("in_h1/out_h1", "in_o2/out_o2"),
        ("in_o1/out_o1", "E"), ("in_o2/out_o2", "E"),
    }


def test_highlight_of_an_unknown_name_is_bad_input(seed003: Derivation) -> None:
    with pytest.raises(ExplainError, match="w9"):
        graph_dot(seed003, highlight="w9")


# -- data problems and large graphs ----------------------------------------------------------
def test_data_problems_show_per_sample_values() -> None:
    d = derive(from_dict({
        "title": "line", "data": {"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]},
        "parameters": {"w": 3.0}, "forward": {"y_pred": "w*x", "L": "(y_pred - y)**2"},
    }))
    source = graph_dot(d, highlight="w")
    assert "y_pred = w·x = [3, 6, 9]" in source
    assert "J = Σᵢ L = 14" in source  # the reduction is a node of its own (1 + 4 + 9 by hand)
    assert "dJ/dw = 28" in source  # the per-sample loss is L, so the reduced loss is J
    assert highlighted(source) == {("w", "y_pred"), ("y_pred", "L"), ("L", "J")}
    many = derive(from_dict({
        "title": "fit", "data": {"x": "linspace(0, 1, 2000)", "y": "2*x"}, "reduction": "mean",
        "parameters": {"w": 1.0}, "forward": {"y_pred": "w*x", "L": "(y_pred - y)**2"},
    }))
    source = graph_dot(many)
    assert "x = [0, 0.0005003, …] (2000 values)" in source
    assert "J = (1/n) Σᵢ L = " in source and "∂J/∂L = 1/n = 0.0005" in source  # 1/2000


def test_large_networks_fold_weights_and_drop_edge_labels() -> None:
    d = derive(from_dict(network([6, 12, 12, 3])))
    source = graph_dot(d, level="stage")  # the whole drawing, one box per neuron, asked for
    assert "drawn inside that node" in source and "edge labels are left out" in source
    assert not any("label" in attrs for attrs in edges(source).values())
    if shutil.which("dot"):
        start = time.perf_counter()
        assert graph_svg(d).startswith("<svg")
        assert time.perf_counter() - start < 10


# -- order: units as declared, parameters beside their unit ------------------------------------
def _positions(source: str) -> dict[str, tuple[float, float]]:
    """Box centres as laid out by dot (``-Tplain``: inches, y grows upwards)."""
    plain = dotmod.run_dot(source, "plain").decode("utf-8")
    found = re.findall(r'^node ("(?:[^"\\]|\\.)*"|\S+) (\S+) (\S+) ', plain, re.M)
    return {_unquote(name): (float(x), float(y)) for name, x, y in found}


def _units(layer: int, count: int, last: int) -> list[str]:
    h = "o" if layer == last else f"h{layer}_"
    return [f"in_{h}{j}/out_{h}{j}" for j in range(1, count + 1)]


@pytest.fixture(scope="module")
def net3442() -> Derivation:
    return derive(from_dict(network([3, 4, 4, 2], seed=3)))


def test_columns_are_chained_in_declared_order(net3442: Derivation) -> None:
    # Without Graphviz: each layer's units follow each other, in order, in one invisible chain.
    source = graph_dot(net3442)
    chain = [(_unquote(a), _unquote(b)) for a, b in re.findall(rf"^\t\t({_ID}) -> ({_ID}) \[style=invis\]$", source, re.M)]
    following = dict(chain)
    for layer, count in ((1, 4), (2, 4), (3, 2)):
        units = _units(layer, count, 3)
        for a, b in zip(units, units[1:]):
            nxt = following[a]
            while nxt != b:  # a weight of the next layer, or a target, may sit between two units
                assert "/" not in nxt and nxt[0] in "wy", (a, nxt)
                nxt = following[nxt]


@needs_dot
def test_units_are_drawn_in_order_with_their_weights_beside_them(net3442: Derivation) -> None:
    at = _positions(graph_dot(net3442))
    layers = {1: _units(1, 4, 3), 2: _units(2, 4, 3), 3: _units(3, 2, 3)}
    for units in layers.values():
        ys = [at[u][1] for u in units]
        assert ys == sorted(ys, reverse=True), units  # unit 1 on top, then 2, 3, …
        assert len({at[u][0] for u in units}) == 1  # one column
    columns = sorted({at[u][0] for units in layers.values() for u in units})
    g = net3442.graph
    feeds: dict[str, tuple[int, int]] = {}  # weight → (layer, unit) it feeds
    for name in g.parameters:
        (edge,) = g.edges_out_of(name)
        feeds[name] = next((k, j) for k, units in layers.items() for j, u in enumerate(units) if edge.dst in u.split("/"))
        layer, j = feeds[name]
        assert at[name][0] < at[layers[layer][j]][0]  # left of its unit,
        assert layer == 1 or at[name][0] == columns[layer - 2]  # in the previous layer's column
    for layer in layers:  # and top to bottom in the order of the units they feed
        weights = sorted((w for w in feeds if feeds[w][0] == layer), key=lambda w: -at[w][1])
        order = [feeds[w][1] for w in weights]
        assert order == sorted(order), weights


@needs_dot
def test_edge_labels_sit_on_their_edges_apart(net3442: Derivation) -> None:
    # The local derivatives are small boxes of their own on each edge: no two overlap.
    source = graph_dot(net3442)
    plain = dotmod.run_dot(source, "plain").decode("utf-8")
    found = re.findall(r'^node ("(?:[^"\\]|\\.)*"|\S+) (\S+) (\S+) (\S+) (\S+) ', plain, re.M)
    labels = [tuple(map(float, rest)) for name, *rest in found if "→" in _unquote(name)]
    assert len(labels) == 76  # 3·4 + 4·4 + 4·2 weights, as many inputs to units, and 2 + 2 into E
    for i, (x1, y1, w1, h1) in enumerate(labels):
        for x2, y2, w2, h2 in labels[i + 1 :]:
            assert abs(x1 - x2) >= (w1 + w2) / 2 - 1e-6 or abs(y1 - y2) >= (h1 + h2) / 2 - 1e-6


# -- big networks: one box per layer -------------------------------------------------------------
def test_big_networks_are_drawn_one_box_per_layer() -> None:
    d = derive(from_dict(network([8, 16, 16, 4])))
    assert resolve_level(d.graph) == "layer" and resolve_level(network_graph([3, 4, 4, 2])) == "stage"
    source = graph_dot(d)
    drawn = boxes(source)
    # x, W1, h1, W2, h2, W3, o, y, E
    assert len(drawn) == 9
    assert any(t.startswith("in_h1_1 … in_h1_16 → out_h1_1 … out_h1_16\n16 neurons") for t in drawn.values())
    (w1,) = [t.splitlines() for t in drawn.values() if t.startswith("w1 … w128")]
    weights = [float(v) for v in np.ravel(network([8, 16, 16, 4])["network"]["layers"][0]["weights"])]
    # the range of the first layer's weights, from the problem itself (4 significant digits)
    assert w1[:3] == ["w1 … w128", "128 parameters", f"w1 … w128 ∈ [{min(weights):.4g}, {max(weights):.4g}]"]
    assert "--level stage" in source  # how to get every unit
    every = boxes(graph_dot(d, level="stage"))  # and that gives every unit, 16 + 16 + 4
    assert sum("/" in b for b in every) == 36 and "in_h2_16/out_h2_16" in every
    labels = sorted(label_text(a) for a in edges(source).values() if "label" in a)
    assert labels.count("256 edges") == 2 and labels.count("128 edges") == 2  # 16·16 and 8·16 by hand
    if shutil.which("dot"):
        start = time.perf_counter()
        assert graph_svg(d).startswith("<svg")
        assert time.perf_counter() - start < 5


def network_graph(sizes: list[int]) -> Any:
    return derive(from_dict(network(sizes))).graph


# -- Greek, blank --------------------------------------------------------------------------------
def test_greek_names_are_drawn_as_greek_letters() -> None:
    d = derive(from_dict({"title": "g", "values": {"x": 2.0, "y": 1.0},
                          "parameters": {"alpha": 0.5, "beta_1": 0.1, "w_eta": 0.3},
                          "forward": {"z": "alpha*x + beta_1*w_eta", "L": "(z - y)**2"}}))
    source = graph_dot(d, highlight="alpha")
    drawn = boxes(source)
    assert drawn["alpha"].splitlines() == ["α", "α = 0.5", "dL/dα = 0.12"]  # 2·(1.03 - 1)·2 by hand
    assert "z = α·x + β_1·w_η = 1.03" in drawn["z"].splitlines()
    assert edges(source)[("alpha", "z")].endswith("label: ∂z/∂α = x = 2")
    texts = "\n".join(drawn.values()) + "\n".join(edges(source).values())
    assert "alpha" not in texts.replace('"alpha', "") and "eta" not in texts
    assert "from α to L" in source


def _numbers(text: str) -> list[str]:
    return re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?:e[+-]?\d+)?", text)


def test_a_blank_graph_has_the_names_and_no_numbers(seed003: Derivation) -> None:
    filled, blank = graph_dot(seed003), graph_dot(seed003, blank=True)
    texts = lambda source: list(boxes(source).values()) + [a.split("label: ")[-1] for a in edges(source).values()]  # noqa: E731
    assert len(_numbers(" ".join(texts(filled)))) > 40  # the check finds the numbers where there are some
    # What remains is the 2 of the loss's formula, (out_o1 - y1)²/2 + (out_o2 - y2)²/2.
    assert set(_numbers(" ".join(texts(blank)))) == {"2"}
    drawn = boxes(blank)
    assert drawn["w1"].splitlines() == ["w1", "w1 = ________", "dE/dw1 = ________"]
    assert "in_h1 = w1·x1 + w3·x2 = ________" in drawn["in_h1/out_h1"].splitlines()
    assert "∂out_h1/∂in_h1 = ________" in drawn["in_h1/out_h1"].splitlines()
    assert edges(blank)[("in_h1/out_h1", "in_o1/out_o1")].endswith("label: ∂in_o1/∂out_h1 = ________")
    assert set(boxes(filled)) == set(drawn) and set(edges(filled)) == set(edges(blank))


def test_cli_draws_a_blank_graph(tmp_path: Path) -> None:
    out = tmp_path / "blank.dot"
    result = run_cli("graph", str(SEED003), "--blank", "-o", str(out))
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    assert "dE/dw1 = ________" in text and "-0.008421" not in text


# -- escaping --------------------------------------------------------------------------------
EVIL_TITLE = '"];evil[label="x'
EVIL_DESCRIPTION = "<b>bold</b> & 'q' \\N > <<x>>"


@pytest.fixture(scope="module")
def evil() -> Derivation:
    return derive(from_dict({
        "title": EVIL_TITLE, "description": EVIL_DESCRIPTION,
        "values": {"x": 2.0}, "parameters": {"w": 0.5}, "forward": {"L": "(w*x - 1)**2"},
    }))


def test_problem_text_cannot_escape_its_label(evil: Derivation) -> None:
    source = graph_dot(evil)
    assert EVIL_TITLE not in source and "<b>" not in source and "<<x>>" not in source
    assert "&quot;];evil[label=&quot;x" in source
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;q&#x27; \\\\N &gt; &lt;&lt;x&gt;&gt;" in source  # \\N doubled
    assert set(boxes(source)) == {"w", "x", "L"}  # the title added no node


@needs_dot
def test_problem_text_is_drawn_as_text(evil: Derivation) -> None:
    svg = graph_svg(evil)
    texts = [t.strip() for t in ET.fromstring(svg).itertext() if t.strip()]
    assert EVIL_TITLE in texts
    assert EVIL_DESCRIPTION in texts
    titles = [t for t in texts if t in ("w", "x", "L", "evil")]
    assert "evil" not in titles and {"w", "x", "L"} <= set(titles)


@needs_dot
def test_quotes_backslashes_newlines_and_markup_stay_literal() -> None:
    # Graphviz reads \\N, \\l, \\G as escapes in quoted strings, and <…> as HTML: none may act.
    description = 'first "line" \\N \\l \\\\\nsecond <i>x</i> &amp; <TABLE> \\G'
    d = derive(from_dict({"title": 'a\\"b', "description": description,
                          "values": {"x": 2.0}, "parameters": {"w": 0.5}, "forward": {"L": "(w*x - 1)**2"}}))
    svg = graph_svg(d)
    texts = [t.strip() for t in ET.fromstring(svg).itertext() if t.strip()]
    assert 'a\\"b' in texts
    assert description.splitlines() == [t for t in texts if t.startswith(("first", "second"))]


# -- files -------------------------------------------------------------------------------------
@needs_dot
@pytest.mark.parametrize(("suffix", "magic"), [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_writes_each_format(seed003: Derivation, tmp_path: Path, suffix: str, magic: bytes) -> None:
    out = write_graph(seed003, tmp_path / f"g{suffix}", highlight="w1")
    assert out == tmp_path / f"g{suffix}"
    assert out.read_bytes().startswith(magic)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary files left


def test_writes_dot_without_graphviz(seed003: Derivation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    no_dot(monkeypatch, tmp_path)
    out = write_graph(seed003, tmp_path / "g.dot")
    assert out.read_text(encoding="utf-8").startswith("digraph explain {")


def test_unknown_suffix_is_bad_input(seed003: Derivation, tmp_path: Path) -> None:
    with pytest.raises(ExplainError, match=r"\.svg, \.png, \.pdf or \.dot"):
        write_graph(seed003, tmp_path / "g.gif")
    assert not list(tmp_path.iterdir())


def test_missing_graphviz_writes_dot_and_says_how_to_install(
    seed003: Derivation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    no_dot(monkeypatch, tmp_path)
    with pytest.warns(GraphvizMissingWarning, match="apt-get install graphviz.*brew install graphviz"):
        out = write_graph(seed003, tmp_path / "g.png")
    assert out == tmp_path / "g.dot" and out.read_text(encoding="utf-8").startswith("digraph")
    assert not (tmp_path / "g.png").exists()
    with pytest.raises(ExplainError, match="Graphviz"):
        graph_svg(seed003)
    assert GraphView(seed003)._repr_svg_() is None
    assert set(GraphView(seed003)._repr_mimebundle_()) == {"text/plain"}  # Jupyter shows the text


# -- notebooks ---------------------------------------------------------------------------------
@needs_dot
def test_graph_view_displays_as_svg(seed003: Derivation) -> None:
    view = show(seed003, highlight="w1")
    svg = view._repr_svg_()
    assert svg is not None and svg.startswith("<svg") and "in_h1 → out_h1" in svg
    assert view.source.startswith("digraph") and view.digraph.source == view.source
    assert "GraphView" in repr(view)
    bundle = view._repr_mimebundle_()
    assert bundle["image/svg+xml"] == svg and bundle["text/plain"] == repr(view)
    assert set(view._repr_mimebundle_(include=["text/plain"])) == {"text/plain"}


# -- the command line --------------------------------------------------------------------------
@needs_dot
def test_cli_writes_the_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "g.svg"
    assert main(["graph", str(SEED003), "-o", str(out), "--highlight", "w1", "--level", "operation"]) == 0
    assert str(out) in capsys.readouterr().err
    assert "dE/dw1" in out.read_text(encoding="utf-8")


def test_cli_default_output_is_the_problem_stem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    no_dot(monkeypatch, tmp_path)  # also shows: without Graphviz the exit code is 0
    assert main(["graph", str(SEED003)]) == 0
    captured = capsys.readouterr()
    assert (tmp_path / "seed003_network.dot").exists()
    assert "seed003_network.dot" in captured.err and "install graphviz" in captured.err


@pytest.mark.parametrize("argv", [["--highlight", "w9"], ["-o", "g.gif"], ["--level", "neurons"]])
def test_cli_bad_input_exits_2_and_writes_nothing(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["graph", str(SEED003), *argv])
    except SystemExit as exit_:  # argparse rejects an unknown --level itself
        code = int(exit_.code or 0)
    assert code == 2
    assert "error" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_graph_refuses_a_format_option_it_would_ignore(tmp_path: Path) -> None:
    # `graph --format json` used to write an SVG silently; the picture's format comes from -o.
    out = tmp_path / "g.svg"
    result = run_cli("graph", str(EXAMPLES / "seed003_network.toml"), "--format", "json", "-o", str(out))
    assert result.returncode == 2 and "--format json" in result.stderr and "explain solve --format" in result.stderr
    assert not out.exists()
