"""The annotated computation graph: DOT source, Graphviz output, highlight, escaping, CLI."""

from __future__ import annotations

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
EDGE = re.compile(r'^\s*"([^"]+)"(?::\w+:\w)? -> "([^"]+)"(?::\w+:\w)?(?: \[(.*)\])?;$', re.M)


@pytest.fixture(scope="module")
def seed003() -> Derivation:
    return derive(load(SEED003))


def edges(source: str) -> dict[tuple[str, str], str]:
    """The drawn edges of a DOT source and their attributes."""
    return {(a, b): attrs or "" for a, b, attrs in EDGE.findall(source)}


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


# -- what the drawing shows ---------------------------------------------------------------
def test_operation_level_shows_every_node_and_every_local_derivative(seed003: Derivation) -> None:
    source = graph_dot(seed003, level="operation")
    for name in seed003.graph.nodes:
        assert f'"{name}" [label=<' in source
    drawn = edges(source)
    assert set(drawn) == {(e.src, e.dst) for e in seed003.graph.edges}
    assert "label=<∂in_o1/∂out_h1 = w5 = 0.1>" in drawn[("out_h1", "in_o1")]
    assert "∂out_h1/∂in_h1 = out_h1·(1 - out_h1) = 0.2461" in drawn[("in_h1", "out_h1")]
    # each box: formula with its value, and the gradient of the loss
    assert "in_h1 = w1·x1 + w3·x2 = 0.25" in source
    assert "dE/dw1 = -0.008421" in source
    assert "dE/dout_h1 = -0.06843" in source


def test_networks_default_to_one_box_per_neuron(seed003: Derivation) -> None:
    assert resolve_level(seed003.graph) == "stage"
    source = graph_dot(seed003)
    assert '"in_h1/out_h1" [label=<' in source and '"out_h1" [label' not in source
    drawn = edges(source)
    assert ("in_h1", "out_h1") not in drawn and ("in_h1/out_h1", "in_h1/out_h1") not in drawn
    assert "label=<∂in_o1/∂out_h1 = w5 = 0.1>" in drawn[("in_h1/out_h1", "in_o1/out_o1")]
    assert ("w1", "in_h1/out_h1") in drawn and ("out_o2/out_o2", "E") not in drawn
    # the edge inside the neuron is written in its box
    assert "∂out_h1/∂in_h1 = out_h1·(1 - out_h1) = 0.2461" in source


def test_expressions_stay_one_node_per_operation() -> None:
    d = explain.grad("sigmoid(w*x + b)", wrt="w,b", at={"w": 1, "b": 2, "x": 3})
    assert resolve_level(d.graph) == "operation"
    source = graph_dot(d)
    assert '"mul1" [label=<' in source and '"add1" -> "f"' in source


def test_a_neuron_can_be_the_loss() -> None:
    d = explain.grad("sigmoid(w*x + b)", wrt="w,b", at={"w": 1, "b": 2, "x": 3})
    source = graph_dot(d, level="stage", highlight="w")
    assert '"add1/f" [label=<' in source and "f = sigmoid(add1) = 0.9933" in source
    assert "∂f/∂add1 = f·(1 - f) = 0.006648" in source
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
    source = graph_dot(d)
    assert "drawn inside that node" in source and "edge labels are left out" in source
    assert not any("label=" in attrs for attrs in edges(source).values())
    if shutil.which("dot"):
        start = time.perf_counter()
        assert graph_svg(d).startswith("<svg")
        assert time.perf_counter() - start < 10


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
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; &#x27;q&#x27; \\N &gt; &lt;&lt;x&gt;&gt;" in source
    assert dotmod._quote('a"b\\') == '"a\\"b\\\\"'


@needs_dot
def test_problem_text_is_drawn_as_text(evil: Derivation) -> None:
    svg = graph_svg(evil)
    texts = [t.strip() for t in ET.fromstring(svg).itertext() if t.strip()]
    assert EVIL_TITLE in texts
    assert EVIL_DESCRIPTION in texts
    titles = [t for t in texts if t in ("w", "x", "L", "evil")]
    assert "evil" not in titles and {"w", "x", "L"} <= set(titles)


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


# -- notebooks ---------------------------------------------------------------------------------
@needs_dot
def test_graph_view_displays_as_svg(seed003: Derivation) -> None:
    view = show(seed003, highlight="w1")
    svg = view._repr_svg_()
    assert svg is not None and svg.startswith("<svg") and "in_h1 → out_h1" in svg
    assert view.source.startswith("digraph")
    assert "GraphView" in repr(view)


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
