"""Training: optimizers, history, divergence, plots, the CLI — and the seeds reproduced."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

import explain
from explain.cli import main
from explain.commands.train import ProgressBar
from explain.compile import Program
from explain.errors import ExplainError
from explain.graph import Graph
from explain.train import compare_learning_rates, plot_losses, prediction_output, train

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> explain.Problem:
    return explain.load(EXAMPLES / f"{name}.toml")


LINEAR = """
[data]
x = [1.0, 2.0, 3.0]
y = [2.0, 4.0, 6.0]
[parameters]
w = 0.5
b = 0.1
[forward]
y_pred = "w*x + b"
l = "(y_pred - y)**2"
"""


def linear(**train: object) -> explain.Problem:
    table = "".join(f"{k} = {json.dumps(v)}\n" for k, v in train.items())
    return explain.loads(LINEAR + ("[train]\n" + table if train else ""))


def reference(x: np.ndarray, y: np.ndarray, w: float, b: float, lr: float, batches: list[slice],
              updates: int, mean: bool = False) -> tuple[float, float]:
    """A hand-written loop: gradient of Σ or mean (w·x + b − y)² over each batch in turn."""
    for t in range(updates):
        s = batches[t % len(batches)]
        r = w * x[s] + b - y[s]
        scale = 1 / len(r) if mean else 1.0
        w, b = w - lr * scale * np.sum(2 * r * x[s]), b - lr * scale * np.sum(2 * r)
    return w, b


# -- optimizers and history ------------------------------------------------------
def test_gd_history_has_steps_plus_one_states() -> None:
    run = train(linear(optimizer="gd", learning_rate=0.01, steps=7))
    assert run.steps == 7 and len(run.history) == 8
    first = run.history[0]
    assert first["step"] == 0 and first["parameters"] == {"w": 0.5, "b": 0.1}
    assert first["loss"] == pytest.approx(sum((0.5 * x + 0.1 - 2 * x) ** 2 for x in (1, 2, 3)))
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])
    w, b = reference(x, y, 0.5, 0.1, 0.01, [slice(0, 3)], 7)
    assert run.final_parameters["w"] == pytest.approx(w, rel=1e-13)
    assert run.final_parameters["b"] == pytest.approx(b, rel=1e-13)
    assert run.final_loss == pytest.approx(np.sum((w * x + b - y) ** 2), rel=1e-12)


def test_sgd_one_sample_at_a_time_in_order() -> None:
    run = train(linear(optimizer="sgd", learning_rate=0.01, epochs=4))
    assert run.steps == 12 and len(run.history) == 13 and run.updates_per_epoch == 3
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])
    w, b = reference(x, y, 0.5, 0.1, 0.01, [slice(i, i + 1) for i in range(3)], 12)
    assert run.final_parameters == pytest.approx({"w": w, "b": b}, rel=1e-13)
    records = run.sample_gradients()
    assert [r.sample for r in records] == [0, 1, 2] * 4
    assert records[0].inputs == {"x": 1.0, "y": 2.0}
    assert records[0].gradients["w"] == pytest.approx(2 * (0.5 + 0.1 - 2) * 1)
    assert [e["epoch"] for e in run.epoch_summary] == [0, 1, 2, 3]


def test_minibatch_in_order_with_a_short_last_batch() -> None:
    problem = explain.loads("reduction = \"mean\"\n" + LINEAR)
    run = train(problem, optimizer="minibatch", batch_size=2, epochs=3, learning_rate=0.05)
    assert run.updates_per_epoch == 2 and run.steps == 6 and run.batch_size == 2
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])
    w, b = reference(x, y, 0.5, 0.1, 0.05, [slice(0, 2), slice(2, 3)], 6, mean=True)
    assert run.final_parameters == pytest.approx({"w": w, "b": b}, rel=1e-13)


def test_arguments_override_the_problem() -> None:
    problem = linear(optimizer="sgd", learning_rate=0.01, epochs=100)
    run = train(problem, learning_rate=0.02, optimizer="gd", steps=3)
    assert (run.optimizer, run.learning_rate, run.steps, run.epochs) == ("gd", 0.02, 3, None)
    assert train(problem, epochs=2).steps == 6


def test_bad_settings_are_errors() -> None:
    with pytest.raises(ExplainError, match="batch size"):
        train(linear(), optimizer="minibatch")
    with pytest.raises(ExplainError, match="positive"):
        train(linear(), learning_rate=-1.0)
    with pytest.raises(ExplainError, match="data problem"):
        train(load("seed003_network"), optimizer="sgd")


def test_no_sympy_inside_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    problem = load("seed004_linear_regression")
    program = Program(Graph.from_problem(problem))
    program.loss_and_grad(program.leaves(), 50)  # compiled before the loop

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("SymPy was called inside the training loop")

    monkeypatch.setattr(sp.Basic, "subs", forbidden)
    monkeypatch.setattr(sp.Expr, "evalf", forbidden)
    monkeypatch.setattr(sp, "lambdify", forbidden)
    run = train(problem, program)
    assert run.steps == 3000


# -- divergence ------------------------------------------------------------------
def test_divergence_is_reported_with_its_step_and_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run = train(load("seed000_linear_sgd"), learning_rate=1.0)
    assert run.diverged and run.divergence is not None
    assert run.divergence.kind in ("inf", "nan")
    step = run.divergence.step
    assert run.steps == step and len(run.losses) == step + 1
    assert not math.isfinite(run.losses[-1]) and np.all(np.isfinite(run.losses[:-1]))
    data = run.to_dict()
    assert data["diverged"] is True and data["divergence"]["step"] == step
    json.dumps(data, allow_nan=False)  # inf is written as null


def test_gd_divergence() -> None:
    run = train(linear(optimizer="gd", learning_rate=1.0, steps=2000))
    assert run.diverged and 0 < run.divergence.step < 2000  # type: ignore[union-attr]


# -- prediction ------------------------------------------------------------------
def test_prediction_picks_the_model_output() -> None:
    problem = load("seed002_polynomial")  # no [train] output: y_pred is the stage that needs only x
    assert prediction_output(Graph.from_problem(problem), ["x"]) == "y_pred"
    run = train(problem, steps=3)
    assert run.prediction is not None and run.prediction.output == "y_pred"
    a, b, c, d = problem.parameters.values()
    assert run.prediction.before == pytest.approx(a + b + c + d)


def test_prediction_without_a_model_stage_is_an_error() -> None:
    with pytest.raises(ExplainError, match="output"):
        prediction_output(Graph.from_problem(linear()), ["y"])


# -- learning rates and plots ----------------------------------------------------
@pytest.mark.parametrize("suffix", ["png", "svg", "pdf"])
def test_compare_learning_rates_on_one_plot(tmp_path: Path, suffix: str) -> None:
    runs = compare_learning_rates(load("seed000_linear_sgd"), [0.01, 0.05, 1.0])
    assert [r.learning_rate for r in runs] == [0.01, 0.05, 1.0]
    assert [r.diverged for r in runs] == [False, False, True]
    target = tmp_path / f"loss.{suffix}"
    plot_losses(runs, target)
    head = target.read_bytes()[:8]
    assert {"png": b"\x89PNG", "svg": b"<?xml", "pdf": b"%PDF"}[suffix] in head
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left


def test_plot_with_a_bad_suffix_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ExplainError, match="png, svg, pdf"):
        plot_losses([train(linear())], tmp_path / "loss.gif")
    assert not list(tmp_path.iterdir())


def test_progress_callback_and_bar() -> None:
    calls: list[tuple[int, int]] = []
    train(linear(steps=1000), progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (1000, 1000) and len(calls) <= 101
    bar = ProgressBar("test", delay=0.0)
    bar.enabled = True
    bar(1, 10)
    bar(10, 10)
    bar.close()


# -- the command line ------------------------------------------------------------
def test_cli_prints_the_seed_gradient_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(EXAMPLES / "seed000_linear_sgd.toml")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "\tgrad: 1.0 2.0 2.0" in lines and "\tgrad: 2.0 4.0 7.84" in lines
    assert sum(line.startswith("\tgrad:") for line in lines) == 300
    assert "Prediction before training: y_pred(x = 4.0) = 12.0" in out
    assert "Prediction after training: y_pred(x = 4.0) = 8.0" in out


def test_cli_quiet_summarises(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(EXAMPLES / "seed000_linear_sgd.toml"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "grad:" not in out and "loss (all samples)" in out
    assert len(out.splitlines()) < 40


def test_cli_compares_rates_and_reports_divergence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "rates.png"
    assert main(["train", str(EXAMPLES / "seed000_linear_sgd.toml"), "-q", "--lr", "0.01,0.05,1",
                 "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "Training diverged: after step" in out and "Learning rates compared" in out
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(EXAMPLES / "seed003_network.toml"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["optimizer"] == "gd" and data["learning_rate"] == 10
    assert len(data["history"]) == 11 and data["history"][0]["loss"] == pytest.approx(0.2097097937)
    assert main(["train", str(EXAMPLES / "seed000_linear_sgd.toml"), "-f", "json", "--lr", "0.01,1"]) == 0
    assert [t["diverged"] for t in json.loads(capsys.readouterr().out)["trainings"]] == [False, True]


def test_cli_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(EXAMPLES / "seed000_linear_sgd.toml")
    assert main(["train", path, "--lr", "0.1,fast"]) == 2
    assert main(["train", path, "--plot", str(tmp_path / "x.gif")]) == 2
    assert main(["train", path, "--format", "typst"]) == 2
    assert "explain solve --format typst" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_cli_markdown(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(EXAMPLES / "seed004_linear_regression.toml"), "-f", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### Training") and "| step | loss |" in out


# -- the seeds -------------------------------------------------------------------
def seed_000_001_torch(w0: float, typo: bool = False) -> tuple[list[tuple[float, float, float]], list[float], float]:
    """The seeds' own PyTorch code (float32 torch.Tensor), returning what they print."""
    x_data = [1.0, 2.0, 3.0]
    y_data = [2.0, 4.0, 6.0]
    w = torch.Tensor([w0])
    w.requires_grad = True
    printed, epoch_losses = [], []
    for _epoch in range(100):
        for x, y in zip(x_data, y_data):
            l = (w * x - y) ** 2  # noqa: E741 - the seed's name
            l.backward()
            printed.append((x, y, w.grad.item()))
            # Seed 001 writes `w.data=w.data=0.01*w.grad.data`, a typo for the update below
            # (with it, w would be replaced by 0.01·grad); we reproduce the intended update.
            w.data = w.data - 0.01 * w.grad.data
            w.grad.data.zero_()
        epoch_losses.append(l.item())
    return printed, epoch_losses, (w * 4).item()


@pytest.mark.parametrize(("name", "w0"), [("seed000_linear_sgd", 3.0), ("seed001_linear_sgd", 1.0)])
def test_seeds_000_001_float32_print_the_same_gradients(name: str, w0: float) -> None:
    printed, epoch_losses, after = seed_000_001_torch(w0)
    run = train(load(name), dtype="float32")
    ours = [(r.inputs["x"], r.inputs["y"], r.gradients["w"]) for r in run.sample_gradients()]
    assert ours == printed  # bit for bit: every `grad: x y g` line is the same
    # The epoch losses agree to float32 rounding: NumPy's float32 `d ** 2` and
    # torch's `pow(d, 2)` may differ in the last bit.
    np.testing.assert_allclose([e["last_batch_loss"] for e in run.epoch_summary], epoch_losses, rtol=1e-6)
    assert run.prediction is not None
    assert run.prediction.before == 4 * w0 and run.prediction.after == pytest.approx(after, rel=1e-7)


def test_seed_002_matches_the_hand_written_numpy_loop() -> None:
    problem = load("seed002_polynomial")
    x, y = problem.data["x"], problem.data["y"]
    a, b, c, d = (problem.parameters[k] for k in "abcd")
    learning_rate = 1e-6
    losses = []
    for _t in range(2000):  # the seed's code
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        losses.append(np.square(y_pred - y).sum())
        grad_y_pred = 2.0 * (y_pred - y)
        grad_a = grad_y_pred.sum()
        grad_b = (grad_y_pred * x).sum()
        grad_c = (grad_y_pred * x ** 2).sum()
        grad_d = (grad_y_pred * x ** 3).sum()
        a -= learning_rate * grad_a
        b -= learning_rate * grad_b
        c -= learning_rate * grad_c
        d -= learning_rate * grad_d
    run = train(problem)
    for name, value in zip("abcd", (a, b, c, d)):
        assert run.final_parameters[name] == pytest.approx(value, rel=1e-9)
    np.testing.assert_allclose(run.losses[:-1], losses, rtol=1e-9)
    assert run.final_loss < 20  # the seed ends near 9


def test_seed_003_network_ten_steps_of_step_10_match_autograd() -> None:
    problem = load("seed003_network")
    run = train(problem)
    v = problem.values
    w = {k: torch.tensor(val, dtype=torch.float64, requires_grad=True) for k, val in problem.parameters.items()}
    losses = []
    for _ in range(10):  # an independent, correct backprop: torch autograd
        h1 = torch.sigmoid(w["w1"] * v["x1"] + w["w3"] * v["x2"])
        h2 = torch.sigmoid(w["w2"] * v["x1"] + w["w4"] * v["x2"])
        o1 = torch.sigmoid(w["w5"] * h1 + w["w7"] * h2)
        o2 = torch.sigmoid(w["w6"] * h1 + w["w8"] * h2)
        error = (o1 - v["y1"]) ** 2 / 2 + (o2 - v["y2"]) ** 2 / 2
        losses.append(error.item())
        error.backward()
        with torch.no_grad():
            for p in w.values():
                p -= 10 * p.grad
                p.grad = None
    assert run.steps == 10
    for name, p in w.items():
        assert run.final_parameters[name] == pytest.approx(p.item(), rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(run.losses[:10], losses, rtol=1e-12)


def test_seed_003_linear_model_matches_torch_sgd() -> None:
    problem = load("seed003_linear")
    model = torch.nn.Linear(1, 1).double()
    with torch.no_grad():
        model.weight.fill_(problem.parameters["w"])
        model.bias.fill_(problem.parameters["b"])
    criterion = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    y = torch.tensor([[2.0], [4.0], [6.0]], dtype=torch.float64)
    for _epoch in range(100):  # the seed's loop
        loss = criterion(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    run = train(problem)
    assert run.steps == 100
    assert run.final_parameters["w"] == pytest.approx(model.weight.item(), rel=1e-12)
    assert run.final_parameters["b"] == pytest.approx(model.bias.item(), rel=1e-12)


def test_seed_004_converges_to_3_and_0_8(tmp_path: Path) -> None:
    run = train(load("seed004_linear_regression"))
    assert run.final_parameters["w"] == pytest.approx(3.0, abs=0.1)
    assert run.final_parameters["b"] == pytest.approx(0.8, abs=0.05)
    assert run.final_loss < 1e-3 < run.initial_loss
    plot_losses([run], tmp_path / "loss.svg")
