"""Objects display themselves in Jupyter: Markdown with math, and the graph as SVG."""

from __future__ import annotations

import shutil

import pytest

import explain

from .conftest import EXAMPLES


def test_derivation_displays_as_markdown_with_math():
    d = explain.derive(explain.load(EXAMPLES / "seed003_network.toml"))
    md = d._repr_markdown_()
    assert md.startswith("# 2-2-2 sigmoid network (seed 003)")
    assert "$$" in md and "\\frac{\\mathrm{d} E}{\\mathrm{d} \\mathrm{out}_{h1}}" in md  # an adjoint: total derivative
    assert "\\frac{\\partial \\mathrm{in}_{o1}}{\\partial \\mathrm{out}_{h1}}" in md  # a local partial
    assert "-0.00842148" in md  # ∂E/∂w1, hand-derived in test_core


def test_solution_displays_verification_and_training():
    pytest.importorskip("torch")
    solution = explain.solve(EXAMPLES / "seed003_network.toml", verify=True)
    md = solution._repr_markdown_()
    assert "# 2-2-2 sigmoid network (seed 003)" in md
    assert "|" in md.split("Training")[-1]  # the training table


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (dot) is not installed")
def test_derivation_displays_its_graph_as_svg():
    d = explain.grad("sigmoid(w*x + b)", wrt="w,b", at={"w": 1, "b": 2, "x": 3})
    svg = d._repr_svg_()
    assert svg is not None and svg.lstrip().startswith("<")
    assert "mul1" in svg and "add1" in svg


def test_reports_display_through_the_render_layer():
    # Each domain object's _repr_markdown_ goes through explain.render.notebook (see tests/test_layers.py).
    pytest.importorskip("torch")
    from explain.check import check
    from explain.train import train
    from explain.verify import verify

    problem = explain.load(EXAMPLES / "seed003_network.toml")
    v = verify(explain.derive(problem))
    assert v._repr_markdown_().startswith("**") and "| w1 |" in v._repr_markdown_()
    t = train(problem)
    assert "|" in t._repr_markdown_()
    r = check(EXAMPLES / "seed003_network.toml", {"dE/dw5": 0.0346})  # ∂E/∂w5 ≈ 0.03459, hand-derived in test_core
    assert "`dE/dw5`" in r._repr_markdown_() and "1/1" in r._repr_markdown_()
