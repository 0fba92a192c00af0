"""Verification: every example agrees with PyTorch autograd; a planted wrong derivative is caught."""

from __future__ import annotations

import dataclasses
import json
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import explain
from explain.api import grad, solve
from explain.cli import main
from explain.derivation import derive
from explain.errors import ExplainError
from explain.graph import Edge, Graph
from explain.verify import verify

EXAMPLES = [p for p in sorted(Path(__file__).resolve().parent.parent.joinpath("examples").glob("*.toml"))
            if "answers" not in tomllib.loads(p.read_text(encoding="utf-8"))]  # problems, not answer files
SEED_003 = Path(__file__).resolve().parent.parent / "examples" / "seed003_network.toml"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_agrees_with_autograd(path: Path) -> None:
    result = verify(derive(explain.load(path)))
    assert result.passed, result.failures
    assert result.max_error < 1e-12
    assert result.finite_difference_max_error < 1e-6
    assert (result.engine, result.device, result.dtype, result.tolerance) == ("torch", "cpu", "float64", 1e-10)


def test_rows_cover_values_adjoints_and_gradients() -> None:
    d = derive(explain.load(SEED_003))
    result = verify(d)
    kinds = {(r.kind, r.node) for r in result.rows}
    assert ("value", "out_h1") in kinds and ("adjoint", "out_h1") in kinds and ("gradient", "w1") in kinds
    w1 = next(r for r in result.rows if r.kind == "gradient" and r.node == "w1")
    assert w1.quantity == "dE/dw1"
    assert w1.symbolic == pytest.approx(-0.0084214805, abs=1e-10)
    assert [f.parameter for f in result.finite_differences] == [f"w{i}" for i in range(1, 9)]


def test_float32_uses_its_own_tolerance() -> None:
    result = verify(derive(explain.load(SEED_003)), dtype="float32")
    assert result.dtype == "float32" and result.tolerance == 1e-4
    assert result.passed
    assert 0 < result.max_error < 1e-6


def test_per_sample_rows_name_the_worst_sample() -> None:
    result = verify(derive(explain.load(EXAMPLES[0].parent / "seed002_polynomial.toml")))
    y_pred = next(r for r in result.rows if r.kind == "value" and r.node == "y_pred")
    assert y_pred.sample is not None and 0 <= y_pred.sample < 2000


def test_to_dict_is_the_spec_object() -> None:
    data = verify(derive(explain.load(SEED_003))).to_dict()
    for key in ("engine", "device", "dtype", "max_abs_error", "finite_difference_max_error", "passed", "rows"):
        assert key in data
    json.dumps(data, allow_nan=False)


def _wrong(graph: Graph, src: str = "in_h1", dst: str = "out_h1") -> Graph:
    """The same graph with one local derivative doubled: σ' written as 2σ(1 − σ)."""
    edges = [Edge(e.src, e.dst, 2 * e.local) if (e.src, e.dst) == (src, dst) else e for e in graph.edges]
    return dataclasses.replace(graph, edges=edges)


def test_a_wrong_local_derivative_is_caught_and_named() -> None:
    graph = _wrong(Graph.from_problem(explain.load(SEED_003)))
    result = verify(derive(graph))
    assert not result.passed
    assert result.failures[0].node == "in_h1"  # the first node whose adjoint goes wrong
    assert result.suspect_node == "in_h1" and result.suspects == ["∂out_h1/∂in_h1"]
    assert {f.parameter for f in result.finite_difference_failures} == {"w1", "w3"}
    assert {r.node for r in result.failures if r.kind == "gradient"} == {"w1", "w3"}


def test_cli_exits_1_on_a_planted_mistake(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    original = Graph.from_problem.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(Graph, "from_problem", classmethod(lambda cls, p: _wrong(original(cls, p))))
    assert main(["verify", str(SEED_003)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("VERIFICATION FAILED: PyTorch autograd disagrees on")  # the verdict comes first
    assert "PyTorch autograd disagrees on the adjoint dE/din_h1 at node in_h1" in out
    assert "Finite differences disagree on dE/dw1" in out and "autograd disagreed too" in out
    assert "∂out_h1/∂in_h1" in out and "FAILED" in out


def test_cli_passes_with_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(SEED_003)]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "dE/dw1" in out and "float64" in out


def test_cli_json_markdown_and_output_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(SEED_003), "--format", "json", "--dtype", "float32"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dtype"] == "float32" and data["passed"] is True
    target = tmp_path / "report.md"
    assert main(["verify", str(SEED_003), "--format", "markdown", "-o", str(target)]) == 0
    assert "| dE/dw1 |" in target.read_text(encoding="utf-8")


def test_cli_latex_is_sent_to_solve(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(SEED_003), "--format", "latex"]) == 2
    assert "explain solve --format latex" in capsys.readouterr().err


def test_missing_torch_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    d = derive(explain.load(SEED_003))
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(ExplainError, match="pip install torch"):
        verify(d)
    assert main(["verify", str(SEED_003)]) == 2
    assert "pip install torch" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_requested_without_cuda_is_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(SEED_003), "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


@needs_cuda
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_agrees_on_cuda(path: Path) -> None:
    result = verify(derive(explain.load(path)), device="cuda")
    assert result.device == "cuda" and result.passed and result.max_error < 1e-12


@needs_cuda
def test_auto_picks_cuda_and_cli_float32(capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(derive(explain.load(SEED_003))).device == "cuda"
    assert main(["verify", str(SEED_003), "--device", "cuda", "--dtype", "float32", "-f", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["device"] == "cuda"


def test_solve_attaches_the_verification() -> None:
    solution = solve(explain.load(SEED_003), verify=True, train=False)
    assert solution.verification is not None and solution.verification.passed


# -- random problems: symbolic gradients equal autograd's to 1e-10 ----------------
UNARY = ["sigmoid({})", "tanh({})", "relu({})", "leaky_relu({}, 0.1)", "softplus({})", "exp(-({})**2)",
         "sin({})", "cos({})", "log(1 + ({})**2)", "sqrt(1 + ({})**2)", "abs({})", "({})**2", "({})**3"]
BINARY = ["{} + {}", "{} - {}", "{} * {}", "{} / (2 + sigmoid({}))"]
VARIABLES = ["a", "b", "c"]


def expressions(depth: int = 3) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(VARIABLES), st.sampled_from(["0.5", "2", "3"]))
    if depth == 0:
        return leaf
    sub = expressions(depth - 1)
    return st.one_of(
        leaf,
        st.builds(lambda f, e: f.format(e), st.sampled_from(UNARY), sub),
        st.builds(lambda f, x, y: f.format(x, y), st.sampled_from(BINARY), sub, sub),
    )


values = st.floats(-2, 2, allow_nan=False).filter(lambda v: abs(v) > 1e-3)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), values, values, values)
def test_random_expressions_match_autograd(text: str, a: float, b: float, c: float) -> None:
    expr = f"({text}) * a + b * c + a"  # every variable reaches the result, even if text cancels
    d = grad(expr, at={"a": a, "b": b, "c": c})
    assume(all(abs(g.value) < 1e12 for g in d.gradients.values()))
    result = verify(d, finite_differences=False)
    assert result.max_error <= 1e-10, (expr, result.failures)


ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity", "softmax"]


@st.composite
def networks(draw: st.DrawFn) -> dict:
    n_in = draw(st.integers(1, 3))
    depth = draw(st.integers(1, 3))
    loss = draw(st.sampled_from(["half_sse", "sse", "mse", "bce", "cross_entropy"]))
    weight = st.floats(-1.5, 1.5, allow_nan=False)
    layers, previous = [], n_in
    for index in range(depth):
        last = index == depth - 1
        units = draw(st.integers(1, 3)) if not last else draw(st.integers(1 if loss != "cross_entropy" else 2, 3))
        activation = draw(st.sampled_from(ACTIVATIONS))
        if last and loss == "bce":
            activation = "sigmoid"
        if last and loss == "cross_entropy":
            activation = "softmax"
        layer = {"units": units, "activation": activation,
                 "weights": [[draw(weight) for _ in range(previous)] for _ in range(units)]}
        if draw(st.booleans()):
            layer["bias"] = draw(weight)
            layer["train_bias"] = draw(st.booleans())
        layers.append(layer)
        previous = units
    if loss == "cross_entropy":
        raw = [draw(st.floats(0.05, 1)) for _ in range(previous)]
        targets = [r / sum(raw) for r in raw]
    else:
        targets = [draw(st.floats(0.05, 0.95)) for _ in range(previous)]
    return {"network": {"inputs": [draw(st.floats(-1, 1)) for _ in range(n_in)], "targets": targets,
                        "naming": draw(st.sampled_from(["mazur", "io", "layered"])), "loss": loss,
                        "layers": layers}}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks())
def test_random_networks_match_autograd(raw: dict) -> None:
    d = derive(explain.from_dict(raw))
    result = verify(d, finite_differences=False)
    assert result.max_error <= 1e-10, (raw, result.failures)


def test_max_and_min_match_autograd() -> None:
    d = grad("max(w, b) * min(w*x, b) + max(w, 0.5)", at={"w": 0.3, "b": -0.5, "x": 1.2})
    result = verify(d)
    assert result.passed and result.max_error <= 1e-10
