"""The core: problems, the Graph, the Derivation, and the grad/solve commands.

Expected numbers come from independent computations written in each test
(hand-derived formulas in NumPy) or from published sources (Matt Mazur's
"A Step by Step Backpropagation Example"), never from explain itself.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import explain
from explain.cli import main

from .conftest import EXAMPLES, run_cli


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def seed003_by_hand() -> dict[str, float]:
    """Seed 003's network, backpropagated by hand (correct formulas, NumPy floats)."""
    x1, x2, y1, y2 = 0.5, 0.3, 0.23, -0.07
    w1, w2, w3, w4, w5, w6, w7, w8 = 0.2, -0.4, 0.5, 0.6, 0.1, -0.5, -0.3, 0.8
    h1 = _sigmoid(w1 * x1 + w3 * x2)
    h2 = _sigmoid(w2 * x1 + w4 * x2)
    o1 = _sigmoid(w5 * h1 + w7 * h2)
    o2 = _sigmoid(w6 * h1 + w8 * h2)
    d_o1 = (o1 - y1) * o1 * (1 - o1)
    d_o2 = (o2 - y2) * o2 * (1 - o2)
    d_h1 = (d_o1 * w5 + d_o2 * w6) * h1 * (1 - h1)
    d_h2 = (d_o1 * w7 + d_o2 * w8) * h2 * (1 - h2)
    return {
        "E": 0.5 * (o1 - y1) ** 2 + 0.5 * (o2 - y2) ** 2,
        "w1": d_h1 * x1, "w3": d_h1 * x2, "w2": d_h2 * x1, "w4": d_h2 * x2,
        "w5": d_o1 * h1, "w7": d_o1 * h2, "w6": d_o2 * h1, "w8": d_o2 * h2,
    }


def test_seed003_eight_gradients_match_hand_derivation():
    d = explain.derive(explain.load(EXAMPLES / "seed003_network.toml"))
    expected = seed003_by_hand()
    assert d.loss_value == pytest.approx(expected["E"], abs=1e-12)
    for name in ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"):
        assert d.gradients[name].value == pytest.approx(expected[name], abs=1e-12), name
    # SPEC §3 quotes these two to 10 digits.
    assert round(d.loss_value, 10) == 0.2097097937
    assert round(d.gradients["w1"].value, 10) == -0.0084214805


def test_seed003_paths_and_delta_form():
    d = explain.derive(explain.load(EXAMPLES / "seed003_network.toml"))
    w1 = d.gradients["w1"]
    assert w1.path_count == 2
    assert [list(p.nodes) for p in w1.paths] == [
        ["w1", "in_h1", "out_h1", "in_o1", "out_o1", "E"],
        ["w1", "in_h1", "out_h1", "in_o2", "out_o2", "E"],
    ]
    # Sum over paths of products of local partials equals the gradient.
    assert sum(p.value for p in w1.paths) == pytest.approx(w1.value, abs=1e-15)
    # The sigmoid's local derivative is written with the node's own name.
    assert str(d.locals[("in_h1", "out_h1")].expr) == "out_h1*(1 - out_h1)"
    assert str(d.locals[("out_h1", "in_o1")].expr) == "w5"


def test_mazur_network_matches_published_values():
    """Matt Mazur's tutorial: E_total = 0.298371109, ∂E/∂w5 = 0.082167041, ∂E/∂w1 = 0.000438568."""
    d = explain.derive(explain.load(EXAMPLES / "mazur_network.toml"))
    assert d.loss_value == pytest.approx(0.298371109, abs=1e-9)
    assert d.gradients["w5"].value == pytest.approx(0.082167041, abs=1e-9)
    assert d.gradients["w1"].value == pytest.approx(0.000438568, abs=1e-9)
    assert d.value("out_o1") == pytest.approx(0.75136507, abs=1e-8)


def test_data_problem_sums_per_sample_gradients():
    problem = explain.from_dict({
        "data": {"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]},
        "parameters": {"w": 3.0},
        "forward": {"y_pred": "w*x", "L": "(y_pred - y)**2"},
    })
    d = explain.derive(problem)
    # By hand: Σ 2(w·x − y)·x = 2(1·1 + 2·2 + 3·3) = 28; loss Σ (x)² = 14.
    assert d.gradients["w"].value == pytest.approx(28.0)
    assert d.loss_value == pytest.approx(14.0)
    np.testing.assert_allclose(d.value("y_pred"), [3.0, 6.0, 9.0])
    mean = explain.derive(explain.from_dict({**problem_dict_mean()}))
    assert mean.gradients["w"].value == pytest.approx(28.0 / 3)


def problem_dict_mean() -> dict:
    return {
        "data": {"x": [1.0, 2.0, 3.0], "y": [2.0, 4.0, 6.0]},
        "parameters": {"w": 3.0},
        "forward": {"y_pred": "w*x", "L": "(y_pred - y)**2"},
        "reduction": "mean",
    }


def test_polynomial_gradient_formula_is_per_sample_sum():
    problem = explain.from_dict({
        "seed": 0,
        "data": {"x": "linspace(-pi, pi, 2000)", "y": "sin(x)"},
        "parameters": {"a": 0.1, "b": 0.2, "c": -0.3, "d": 0.05},
        "forward": {"y_pred": "a + b*x + c*x**2 + d*x**3", "L": "(y_pred - y)**2"},
    })
    d = explain.derive(problem)
    x = np.linspace(-math.pi, math.pi, 2000)
    grad_y_pred = 2.0 * (0.1 + 0.2 * x - 0.3 * x**2 + 0.05 * x**3 - np.sin(x))  # the seed's own formulas
    for name, power in (("a", 0), ("b", 1), ("c", 2), ("d", 3)):
        assert d.gradients[name].value == pytest.approx((grad_y_pred * x**power).sum(), rel=1e-12)
    assert str(d.gradients["c"].expr) == "2*x**2*(y_pred - y)" or "x**2" in str(d.gradients["c"].expr)


def test_grad_expression_stages_one_node_per_operation():
    d = explain.grad("sigmoid(w*x + b)", wrt="w,b", at={"w": 1, "b": 2, "x": 3})
    names = [s.name for s in d.forward]
    assert names == ["mul1", "add1", "f"]
    s = _sigmoid(5.0)
    assert d.gradients["w"].value == pytest.approx(3 * s * (1 - s), abs=1e-15)
    assert d.gradients["b"].value == pytest.approx(s * (1 - s), abs=1e-15)


def test_grad_cli_json(capsys):
    assert main(["grad", "x**2*y + exp(y)", "--wrt", "x,y", "--at", "x=3,y=0", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["value"] == pytest.approx(1.0)  # 9·0 + e⁰
    assert out["gradients"]["x"]["value"] == pytest.approx(0.0)   # 2xy
    assert out["gradients"]["y"]["value"] == pytest.approx(10.0)  # x² + eʸ
    assert {"expr", "value", "gradients", "steps"} <= set(out)


def test_solve_json_has_spec_keys(capsys):
    assert main(["solve", str(EXAMPLES / "seed003_network.toml"), "--format", "json", "--no-verify", "--no-train"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"title", "forward", "loss", "gradients", "nodes"} <= set(out)
    assert out["forward"][0] == {"name": "in_h1", "expr": "w1*x1 + w3*x2", "value": pytest.approx(0.25)}
    assert out["gradients"]["w1"]["path_count"] == 2
    assert out["nodes"]["out_h1"]["value"] == pytest.approx(_sigmoid(0.25), abs=1e-15)


def test_text_output_shows_formula_numbers_and_value():
    result = run_cli("solve", str(EXAMPLES / "seed003_network.toml"), "--no-verify", "--no-train", "-p", "4")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "\033[" not in text  # piped output is plain
    assert "in_h1 = w1·x1 + w3·x2" in text
    assert "= 0.2·0.5 + 0.5·0.3" in text
    assert "dE/dout_h1 = dE/din_o1 · ∂in_o1/∂out_h1 + dE/din_o2 · ∂in_o2/∂out_h1" in text


def test_big_network_json_is_capped_and_fast():
    import time

    problem = explain.from_dict(big_network(16, 32, 32, 10))
    start = time.perf_counter()
    d = explain.derive(problem)
    from explain.render.json import derivation_dict

    out = json.dumps(derivation_dict(d))
    elapsed = time.perf_counter() - start
    w = d.gradients["w1_1_1"]
    assert w.path_count == 32 * 10  # every path through layer 2 and the outputs
    assert len(w.paths) <= 32
    assert len(out) < 5_000_000
    assert elapsed < 60  # generous: the benchmark records the real figure


def big_network(*sizes: int) -> dict:
    layers = [{"units": n, "activation": "sigmoid", "weights": "0.3*randn()", "bias": 0.1} for n in sizes[1:]]
    return {
        "seed": 1,
        "network": {
            "inputs": [0.1 * (i + 1) for i in range(sizes[0])],
            "targets": [0.5] * sizes[-1],
            "naming": "layered",
            "layers": layers,
        },
    }


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_every_example_solves(path):
    if path.stem.endswith("answers") or "answers" in path.stem:
        pytest.skip("an answers file, not a problem")
    d = explain.derive(explain.load(path))
    assert math.isfinite(d.loss_value)
    assert all(math.isfinite(g.value) for g in d.gradients.values())


def test_a_derivation_and_its_graph_have_short_readable_reprs() -> None:
    # repr(Derivation) was 22 k characters on seed 003; the Graph lists its stages like a jaxpr.
    d = explain.derive(explain.load(EXAMPLES / "ridge_regression.toml"))
    assert len(repr(d)) < 300 and "loss J = 5.21583" in repr(d)   # by hand: (1.125 + 4.805 + 9.68)/3 + 0.1/2·0.5² = 5.21583
    listing = repr(d.graph).splitlines()
    assert listing[0].startswith("Graph('Ridge regression") and "3 samples" in listing[0]
    assert "  parameters: w, b" in listing and "  data: x, y" in listing
    assert "  y_pred[i] = b + w*x" in listing or "  y_pred[i] = w*x + b" in listing
    assert listing[-1].startswith("  J = ")
