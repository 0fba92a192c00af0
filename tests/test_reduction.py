"""Data problems: the reduction over samples, stages without data, and terms after the reduction.

Issue 8, items 1, 2 and 5.  Every expected number is derived by hand in the
comment beside it, or computed with PyTorch autograd written out in the test
(it shares no code with explain).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import explain
from explain.errors import ExplainError
from explain.problem import loads

from .conftest import EXAMPLES

torch = pytest.importorskip("torch")


def _derive(text: str) -> explain.Derivation:
    return explain.derive(loads(text))


# -- item 1: a term without data inside a per-sample loss ---------------------------------
DATA_FREE = """
reduction = "{reduction}"
[data]
x = [1.0, 2.0]
[parameters]
w = 1.0
[forward]
{stages}
"""


@pytest.mark.parametrize("stages", ['l = "x + w**2"', 'r = "w**2"\nl = "x + r"'])
@pytest.mark.parametrize(("reduction", "loss", "grad"), [
    # L = mean(x_i + w²) = 1.5 + w² = 2.5; dL/dw = 2w = 2 (each of the 2 samples contributes 2w/2).
    ("mean", 2.5, 2.0),
    # L = Σ(x_i + w²) = 3 + 2w² = 5; dL/dw = 4w = 4.
    ("sum", 5.0, 4.0),
])
def test_a_stage_without_data_counts_once_per_sample(stages: str, reduction: str, loss: float, grad: float) -> None:
    d = _derive(DATA_FREE.format(reduction=reduction, stages=stages))
    assert d.loss_value == pytest.approx(loss, abs=1e-15)
    assert d.gradients["w"].value == pytest.approx(grad, abs=1e-15)


def test_a_parameter_feeding_the_per_sample_loss_directly() -> None:
    # L = Σ (w·x_i + b) over x = 1, 2, 3: dL/db = 3 (one per sample), dL/dw = Σ x_i = 6.
    d = _derive("""
loss = "y_pred"
[data]
x = [1, 2, 3]
[parameters]
w = 0.5
b = 0.25
[forward]
y_pred = "w*x + b"
""")
    assert d.gradients["b"].value == 3.0
    assert d.gradients["w"].value == 6.0


def test_every_command_uses_the_right_gradient(tmp_path: Path, cli) -> None:
    problem = tmp_path / "l2.toml"
    problem.write_text(DATA_FREE.format(reduction="mean", stages='l = "x + w**2"')
                       + '[train]\noptimizer = "gd"\nlearning_rate = 0.1\nsteps = 1\n', encoding="utf-8")
    solved = cli("solve", str(problem), "--format", "json")
    assert solved.returncode == 0, solved.stderr
    assert json.loads(solved.stdout)["gradients"]["w"]["value"] == 2.0
    assert cli("verify", str(problem)).returncode == 0
    # One step of gradient descent: w = 1 − 0.1·2 = 0.8.
    trained = cli("train", str(problem), "--format", "json")
    assert trained.returncode == 0, trained.stderr
    history = json.loads(trained.stdout)["history"]
    assert history[-1]["parameters"]["w"] == pytest.approx(0.8, abs=1e-15)
    # The right answer is marked right, under the reduced loss's name and under the file's own.
    answers = tmp_path / "a.toml"
    answers.write_text('[answers]\n"dL/dw" = 2.0\n"dl/dw" = 2.0\n', encoding="utf-8")
    checked = cli("check", str(problem), str(answers), "--format", "json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert [i["verdict"] for i in json.loads(checked.stdout)["items"]] == ["correct", "correct"]


# -- item 2: terms after the reduction: [cost] -------------------------------------------------
RIDGE = """
title = "Ridge regression"
[data]
x = [1.0, 2.0, 3.0]
y = [2.0, 4.1, 5.9]
[parameters]
w = 0.5
b = 0.0
[values]
lam = 0.1
[forward]
y_pred = "w*x + b"
l = "(y_pred - y)**2/2"
[cost]
J = "{cost}"
"""


def _ridge_torch(mean: bool) -> tuple[float, float, float]:
    """J = mean (or sum) of ½(w·x + b − y)² + λ/2·w², differentiated by torch autograd."""
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    y = torch.tensor([2.0, 4.1, 5.9], dtype=torch.float64)
    w = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(0.0, dtype=torch.float64, requires_grad=True)
    per_sample = (w * x + b - y) ** 2 / 2
    j = (per_sample.mean() if mean else per_sample.sum()) + 0.1 / 2 * w**2
    j.backward()
    return float(j.detach()), float(w.grad), float(b.grad)


@pytest.mark.parametrize("cost", ["mean(l) + lam/2*w**2", "lam/2*w**2 + mean(l)"])
def test_cost_adds_a_penalty_once_after_the_mean(cost: str) -> None:
    d = _derive(RIDGE.format(cost=cost))
    j, dw, db = _ridge_torch(mean=True)
    assert d.loss == "J"
    assert d.loss_value == pytest.approx(j, abs=1e-12)
    assert d.gradients["w"].value == pytest.approx(dw, abs=1e-12)
    assert d.gradients["b"].value == pytest.approx(db, abs=1e-12)
    # By hand: residuals −1.5, −3.1, −4.4; dJ/dw = (−1.5 − 6.2 − 13.2)/3 + 0.1·0.5 = −6.91667.
    assert d.gradients["w"].value == pytest.approx(-20.9 / 3 + 0.05, abs=1e-12)


def test_cost_with_a_reduction_stage_of_its_own_and_a_sum() -> None:
    text = RIDGE.replace('J = "{cost}"', 'S = "sum(l)"\nJ = "S + lam/2*w**2"')
    d = _derive(text)
    j, dw, db = _ridge_torch(mean=False)
    assert d.loss_value == pytest.approx(j, abs=1e-12)
    assert d.gradients["w"].value == pytest.approx(dw, abs=1e-12)
    assert d.gradients["b"].value == pytest.approx(db, abs=1e-12)


def test_cost_derivation_shows_both_parts_and_the_reduction(cli, tmp_path: Path) -> None:
    problem = tmp_path / "ridge.toml"
    problem.write_text(RIDGE.format(cost="mean(l) + lam/2*w**2"), encoding="utf-8")
    done = cli("solve", str(problem), env={"COLUMNS": "200"})  # whole equations on one line each
    assert done.returncode == 0, done.stderr
    text = done.stdout
    # The data part's reduction is its own stage, with the numbers of all three samples:
    # ½·1.5² = 1.125, ½·3.1² = 4.805, ½·4.4² = 9.68.
    assert "mean_l = (1/n) Σᵢ l_i" in text
    assert "= 1/3 · (1.125 + 4.805 + 9.68)" in text
    # Its local derivative is the reduction step ∂mean_l/∂l_i = 1/n, here 1/3.
    assert "∂mean_l/∂l_i = 1/n" in text and "= 1/3" in text
    # The gradient adds the penalty's local partial once, outside the sum over samples.
    assert "dJ/dw = Σᵢ (∂J/∂mean_l · ∂mean_l/∂l_i · ∂l_i/∂y_pred_i · ∂y_pred_i/∂w) + ∂J/∂w" in text
    assert "dJ/dw = Σᵢ (dJ/dy_pred_i · ∂y_pred_i/∂w) + ∂J/∂w" in text
    assert cli("verify", str(problem)).returncode == 0


@pytest.mark.parametrize("optimizer", ["gd", "minibatch"])
def test_cost_trains_with_the_penalty(optimizer: str) -> None:
    # Two steps, by hand in NumPy: g_w = mean(r·x) + λw, g_b = mean(r), the mean over the
    # batch (all three samples for gd; samples 1–2, then 3 for minibatches of 2).
    text = RIDGE.format(cost="mean(l) + lam/2*w**2") + (
        f'[train]\noptimizer = "{optimizer}"\nlearning_rate = 0.05\nsteps = 2\nbatch_size = 2\n'
        if optimizer == "minibatch" else '[train]\noptimizer = "gd"\nlearning_rate = 0.05\nsteps = 2\n')
    run = explain.solve(loads(text)).training
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.1, 5.9])
    batches = [slice(0, 3), slice(0, 3)] if optimizer == "gd" else [slice(0, 2), slice(2, 3)]
    w, b = 0.5, 0.0
    for batch in batches:
        r = w * x[batch] + b - y[batch]
        w, b = w - 0.05 * (np.mean(r * x[batch]) + 0.1 * w), b - 0.05 * np.mean(r)
    assert run.states[-1] == pytest.approx([w, b], abs=1e-14)


@pytest.mark.parametrize(("text", "key", "reason"), [
    ('[parameters]\nw = 1.0\n[forward]\nf = "w**2"\n[cost]\nJ = "f + 1"\n', "[cost]", "only applies to data problems"),
    (RIDGE.format(cost="mean(l)").replace('title', 'reduction = "mean"\ntitle'), "reduction", "write the reduction in it"),
    (RIDGE.format(cost="l + lam*w**2"), "[cost] J", "use it through mean(l) or sum(l)"),
    (RIDGE.format(cost="mean(w) + lam*w**2"), "[cost] J", "reduces a per-sample stage"),
    (RIDGE.format(cost="mean(l, l)"), "[cost] J", "takes 1 argument"),
    ('loss = "l"\n' + RIDGE.format(cost="mean(l)"), "loss", "is one of its stages"),
    (RIDGE.format(cost="mean(l)").replace('[cost]\nJ = "mean(l)"', '[cost]\n'), "[cost]", "is empty"),
])
def test_cost_mistakes_are_named(text: str, key: str, reason: str) -> None:
    with pytest.raises(ExplainError) as caught:
        loads(text, source="p.toml")
    message = str(caught.value)
    assert f"p.toml: {key}" in message and reason in message


def test_mean_and_sum_are_not_functions_outside_cost() -> None:
    with pytest.raises(ExplainError, match="unknown function 'mean'"):
        loads(RIDGE.format(cost="mean(l)").replace('l = "(y_pred - y)**2/2"', 'l = "mean(y_pred)"'))


# -- item 5: notation --------------------------------------------------------------------------
MEAN4 = """
reduction = "mean"
[data]
x = [1.0, 2.0, 3.0, 4.0]
y = [1.0, 1.0, 1.0, 1.0]
[parameters]
w = 0.5
[forward]
p = "w*x"
l = "(p - y)**2"
"""


def _solve(cli, tmp_path: Path, text: str, fmt: str) -> str:
    problem = tmp_path / "p.toml"
    problem.write_text(text, encoding="utf-8")
    done = cli("solve", str(problem), "--format", fmt)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_reduction_step_and_distinct_notation_in_text(cli, tmp_path: Path) -> None:
    text = _solve(cli, tmp_path, MEAN4, "text")
    assert "∂l_i/∂l_i" not in text  # the old, wrong seed of the backward pass
    # The reduction's local derivative and the per-sample adjoint it gives: 1/n = 1/4.
    assert "∂L/∂l_i = 1/n" in text
    assert "dL/dl_i = ∂L/∂l_i\n        = 1/n\n        = 1/4\n        = 0.25" in text
    # A local partial (∂) and an adjoint (d) of the same node have different symbols:
    # ∂l_1/∂p_1 = 2·(0.5 − 1) = −1, dL/dp_1 = ¼·(−1) = −0.25.
    assert "∂l_i/∂p_i = 2·(p_i - y_i)" in text
    assert "dL/dp_i = dL/dl_i · ∂l_i/∂p_i" in text and "= 0.25 · 2·(0.5 - 1)" in text


def test_reduction_step_in_every_format(cli, tmp_path: Path) -> None:
    markdown = _solve(cli, tmp_path, MEAN4, "markdown")
    assert r"\frac{\partial L}{\partial l_{i}}" in markdown and r"\frac{\mathrm{d} L}{\mathrm{d} l_{i}}" in markdown
    assert r"\frac{1}{n} \sum_{i} l_{i}" in markdown
    latex = _solve(cli, tmp_path, MEAN4, "latex")
    assert r"\frac{1}{n} \sum_{i} l_{i}" in latex
    typst = _solve(cli, tmp_path, MEAN4, "typst")
    assert "1/n sum_i l_i" in typst
    data = json.loads(_solve(cli, tmp_path, MEAN4, "json"))
    assert data["loss"] == {"name": "L", "value": pytest.approx(np.mean((0.5 * np.arange(1, 5) - 1) ** 2))}
    assert [f["name"] for f in data["forward"]][-1] == "L"


def test_saturated_values_do_not_print_as_whole_numbers(cli) -> None:
    # σ(16) = 0.99999988746…: shown as 1, σ'(z) = a·(1 − a) would read 1·(1 − 1) next to 1.1e-07.
    done = cli("grad", "sigmoid(w*x)", "--wrt", "w", "--at", "w=4,x=4")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "(1 - 1)" not in text
    assert "0.9999999" in text


def test_training_heading_shows_the_cost_not_a_plain_reduction(cli) -> None:
    # examples/ridge_regression.toml reduces in [cost]: J = mean(l) + lam/2*w**2. The heading
    # says so instead of "loss = mean over the samples", which would leave the penalty out.
    out = cli("train", str(EXAMPLES / "ridge_regression.toml")).stdout
    heading = out.splitlines()[0]
    assert "loss J = mean(l) + lam/2*w**2" in heading and "over the samples" not in heading
    # A problem that only reduces keeps the plain words.
    out = cli("train", str(EXAMPLES / "seed001_linear_sgd.toml")).stdout
    assert "loss = sum over the samples" in out.splitlines()[0]
