"""Update rules and schedules (issue 13): torch.optim step by step, d2l's printed numbers, bad input.

Expected numbers come from torch.optim run here, on the seed 003 network written
directly in torch below (sharing no code with explain), and from d2l's printed
output (Dive into Deep Learning, sections 11.6 Momentum, 11.7 Adagrad and 11.8
RMSProp: https://d2l.ai/chapter_optimization/momentum.html, …/adagrad.html,
…/rmsprop.html; the lines ``epoch 20, x1: …, x2: …``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import explain
from explain.cli import main
from explain.errors import ExplainError
from explain.train import train

from .conftest import EXAMPLES, run_cli

SEED003 = (EXAMPLES / "seed003_network.toml").read_text(encoding="utf-8").split("[train]")[0]

#: One [train] table per update rule, with settings that exercise its options.
RULES = {
    "plain": 'update = "plain"\nlearning_rate = 10\nweight_decay = 0.001',
    "momentum": 'update = "momentum"\nlearning_rate = 1\nmomentum = 0.9\ndampening = 0.1',
    "nesterov": 'update = "nesterov"\nlearning_rate = 1\nmomentum = 0.9\nweight_decay = 0.01',
    "adagrad": 'update = "adagrad"\nlearning_rate = 0.5\nlr_decay = 0.01\ninitial_accumulator_value = 0.1',
    # Not centered here: centered RMSProp's s − ḡ² cancels when the gradient is steady, so the last-bit
    # difference between torch's gradient and explain's grows to 4e-12 in 100 steps on this network;
    # test_centered_rmsprop_replayed checks that rule with torch.optim on the run's own gradients.
    "rmsprop": 'update = "rmsprop"\nlearning_rate = 0.05\nalpha = 0.9\nmomentum = 0.5\nweight_decay = 0.01',
    "adam": 'update = "adam"\nlearning_rate = 0.1\nweight_decay = 0.01\namsgrad = true\nschedule = "step"\n'
            'step_size = 30\ngamma = 0.5',
    "adamw": 'update = "adamw"\nlearning_rate = 0.1\nweight_decay = 0.1\nschedule = "cosine"\nT_max = 40\n'
             'eta_min = 0.001',
}


def torch_oracle(rule: str, steps: int) -> tuple[np.ndarray, dict]:
    """The seed 003 network in plain torch, trained by torch.optim with the settings of RULES[rule]."""
    x1, x2, y1, y2 = 0.5, 0.3, 0.23, -0.07
    w = [torch.tensor(v, dtype=torch.float64, requires_grad=True)
         for v in (0.2, -0.4, 0.5, 0.6, 0.1, -0.5, -0.3, 0.8)]
    optimizers = {
        "plain": lambda: torch.optim.SGD(w, lr=10, weight_decay=0.001),
        "momentum": lambda: torch.optim.SGD(w, lr=1, momentum=0.9, dampening=0.1),
        "nesterov": lambda: torch.optim.SGD(w, lr=1, momentum=0.9, nesterov=True, weight_decay=0.01),
        "adagrad": lambda: torch.optim.Adagrad(w, lr=0.5, lr_decay=0.01, initial_accumulator_value=0.1),
        "rmsprop": lambda: torch.optim.RMSprop(w, lr=0.05, alpha=0.9, momentum=0.5, weight_decay=0.01),
        "adam": lambda: torch.optim.Adam(w, lr=0.1, weight_decay=0.01, amsgrad=True),
        "adamw": lambda: torch.optim.AdamW(w, lr=0.1, weight_decay=0.1),
    }
    opt = optimizers[rule]()
    schedules = {
        "adam": lambda: torch.optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.5),
        "adamw": lambda: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40, eta_min=0.001),
    }
    sched = schedules[rule]() if rule in schedules else None
    trajectory = [[p.item() for p in w]]
    for _ in range(steps):
        opt.zero_grad()
        h1 = torch.sigmoid(w[0] * x1 + w[2] * x2)
        h2 = torch.sigmoid(w[1] * x1 + w[3] * x2)
        o1 = torch.sigmoid(w[4] * h1 + w[6] * h2)
        o2 = torch.sigmoid(w[5] * h1 + w[7] * h2)
        loss = (o1 - y1) ** 2 / 2 + (o2 - y2) ** 2 / 2
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        trajectory.append([p.item() for p in w])
    return np.array(trajectory), {k: [float(opt.state[p][k]) for p in w] for k in opt.state[w[0]] if k != "step"}


def problem(tmp_path: Path, table: str, steps: int = 100) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(SEED003 + "[train]\n" + table + f"\nsteps = {steps}\n", encoding="utf-8")
    return path


def mixed_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b))))


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_agrees_with_torch_optim_for_100_steps(rule: str, tmp_path: Path) -> None:
    run = train(explain.load(problem(tmp_path, RULES[rule])))
    expected, torch_state = torch_oracle(rule, 100)
    assert run.steps == 100
    assert mixed_error(run.states, expected) <= 1e-12
    # The state too (momentum buffer, exp_avg, …), by torch's names.
    names = {"momentum_buffer": "v", "sum": "s", "square_avg": "s", "grad_avg": "gbar", "exp_avg": "m",
             "exp_avg_sq": "v", "max_exp_avg_sq": "vmax"}
    if rule == "rmsprop":
        names["momentum_buffer"] = "b"
    for key, values in torch_state.items():
        ours = run.optimizer_state[names[key]][-1]
        assert mixed_error(ours, np.array(values)) <= 1e-12, key
    # The trajectory really moved (a test that cannot fail would not).
    assert mixed_error(run.states[-1], run.states[0]) > 0.1


def test_the_command_checks_against_torch_optim_and_a_planted_rule_exits_1(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(problem(tmp_path, RULES["adam"], steps=10))
    assert main(["train", path, "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["optimizer_check"]["passed"] is True and data["optimizer_check"]["max_error"] <= 1e-12
    # Plant Adam without the bias correction of m (a student's mistake): torch.optim disagrees.
    from dataclasses import replace

    from explain import optimizers

    def no_bias_correction(w, g, s, t, lr, c):
        new, state, parts = optimizers._adam_step(w, g, s, t, lr, c)
        return w + (-lr) * (state["m"] / (np.sqrt(state["v"] / (1 - c["betas"][1] ** t)) + c["eps"])), state, parts

    monkeypatch.setitem(optimizers.RULES, "adam", replace(optimizers.ADAM, step=no_bias_correction))
    assert main(["train", path]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "UPDATE RULE DISAGREES WITH torch.optim.Adam: after step 1" in err
    assert main(["train", path, "--no-verify", "-q"]) == 0  # asked for, it still runs


def test_centered_rmsprop_replayed(tmp_path: Path) -> None:
    """Every option of every rule, replayed through torch.optim with the run's gradients (explain.optim_torch)."""
    from explain.optim_torch import check

    tables = ['update = "rmsprop"\nlearning_rate = 0.05\nalpha = 0.9\nmomentum = 0.5\ncentered = true',
              'update = "adagrad"\nlearning_rate = 0.5\nweight_decay = 0.02\neps = 1e-6',
              'update = "adamw"\nlearning_rate = 0.1\namsgrad = true\nschedule = "exponential"\ngamma = 0.97',
              'update = "momentum"\nmomentum = 0.9\nnesterov = true\nlearning_rate = 1']
    for table in tables:
        result = check(train(explain.load(problem(tmp_path, table))))
        assert result.passed and result.steps == 100 and result.max_error <= 1e-12, table


# -- d2l's printed results ----------------------------------------------------
D2L = """[parameters]
x1 = -5.0
x2 = -2.0
[forward]
f = "0.1*x1**2 + 2*x2**2"
[train]
steps = 20
"""


@pytest.mark.parametrize(("table", "printed"), [
    # d2l 11.6.1, gd_2d: "epoch 20, x1: -0.943467, x2: -0.000073" (η = 0.4) and "-0.387814, -1673.365109" (η = 0.6)
    ('learning_rate = 0.4', ("-0.943467", "-0.000073")),
    ('learning_rate = 0.6', ("-0.387814", "-1673.365109")),
    # d2l 11.6.1, momentum_2d: η = 0.6, β = 0.5 and β = 0.25
    ('update = "momentum"\nlearning_rate = 0.6\nmomentum = 0.5', ("0.007188", "0.002553")),
    ('update = "momentum"\nlearning_rate = 0.6\nmomentum = 0.25', ("-0.126340", "-0.186632")),
    # d2l 11.7.4, adagrad_2d: ε = 1e-6 inside the root; η = 0.4 and η = 2
    ('update = "adagrad"\neps = 1e-6\neps_placement = "d2l"\nlearning_rate = 0.4', ("-2.382563", "-0.158591")),
    ('update = "adagrad"\neps = 1e-6\neps_placement = "d2l"\nlearning_rate = 2', ("-0.002295", "-0.000000")),
    # d2l 11.8.2, rmsprop_2d: η = 0.4, γ = 0.9, ε = 1e-6 inside the root
    ('update = "rmsprop"\nalpha = 0.9\neps = 1e-6\neps_placement = "d2l"\nlearning_rate = 0.4',
     ("-0.010599", "0.000000")),
])
def test_d2l_prints_the_same_after_20_steps(table: str, printed: tuple[str, str], tmp_path: Path) -> None:
    path = tmp_path / "d2l.toml"
    path.write_text(D2L + table + "\n", encoding="utf-8")
    final = train(explain.load(path)).final_parameters
    assert (f"{final['x1']:f}", f"{final['x2']:f}") == printed


def test_eps_placement_matters_and_torch_placement_is_checked(tmp_path: Path) -> None:
    """ε outside the root (torch) moves AdaGrad's x2 differently from ε inside (d2l) on this problem."""
    path = tmp_path / "d2l.toml"
    path.write_text(D2L + 'update = "adagrad"\neps = 0.1\nlearning_rate = 0.4\n', encoding="utf-8")
    torch_run = train(explain.load(path))
    path.write_text(D2L + 'update = "adagrad"\neps = 0.1\neps_placement = "d2l"\nlearning_rate = 0.4\n',
                    encoding="utf-8")
    d2l_run = train(explain.load(path))
    assert abs(torch_run.final_parameters["x2"] - d2l_run.final_parameters["x2"]) > 1e-3
    # By hand, step 1 for x2 (g = 4·(−2) = −8, s = 64): torch −2 + 0.4·8/(8 + 0.1), d2l −2 + 0.4·8/√64.1
    assert torch_run.states[1][1] == pytest.approx(-2 + 3.2 / 8.1, rel=1e-15)
    assert d2l_run.states[1][1] == pytest.approx(-2 + 3.2 / 64.1 ** 0.5, rel=1e-15)


# -- bad input ----------------------------------------------------------------
@pytest.mark.parametrize(("table", "key", "reason"), [
    ('update = "adma"', "[train] update", "did you mean 'adam'"),
    ('update = "adam"\nbeta = [0.9, 0.99]', "[train] beta", "did you mean 'betas'"),
    ('update = "adam"\nmomentum = 0.9', "[train] momentum", "not a setting of update = 'adam'"),
    ('update = "adam"\nbetas = [0.9, 1.0]', "[train] betas[1]", "[0, 1)"),
    ('update = "adam"\nbetas = 0.9', "[train] betas", "two numbers"),
    ('update = "momentum"', "[train] momentum", "needs momentum > 0"),
    ('update = "rmsprop"\nalpha = 1.5', "[train] alpha", "between 0 and 1"),
    ('update = "adam"\neps = -1e-8', "[train] eps", "≥ 0"),
    ('update = "adam"\namsgrad = 1', "[train] amsgrad", "true or false"),
    ('update = "adagrad"\neps_placement = "inside"', "[train] eps_placement", "torch, d2l"),
    ('update = "momentum"\nmomentum = 0.9\nnesterov = true\ndampening = 0.5', "[train] dampening", "dampening = 0"),
    ('schedule = "step"', "[train] step_size", "whole number"),
    ('schedule = "cosine"\nT_max = 10\ngamma = 0.5', "[train] gamma", "not a key of schedule = 'cosine'"),
    ('schedule = "exponential"', "[train] gamma", "gamma > 0"),
    ('schedule = "linear"', "[train] schedule", "constant, step, exponential, cosine"),
])
def test_bad_settings_name_file_key_and_reason(table: str, key: str, reason: str, tmp_path: Path) -> None:
    path = problem(tmp_path, table, steps=3)
    with pytest.raises(ExplainError) as info:
        explain.load(path)
    text = str(info.value)
    assert str(path) in text and key in text and reason in text
    out = tmp_path / "out.txt"
    result = run_cli("train", str(path), "-o", str(out))
    assert result.returncode == 2 and key in result.stderr and not out.exists()


def test_a_good_table_loads(tmp_path: Path) -> None:
    """Every key at once, right: no error (the other direction of the table above)."""
    table = 'update = "adam"\nbetas = [0.8, 0.99]\neps = 1e-6\nweight_decay = 0\namsgrad = false\n' \
            'schedule = "exponential"\ngamma = 0.9'
    config = explain.load(problem(tmp_path, table)).train.update
    assert config.settings["betas"] == (0.8, 0.99) and config.schedule.gamma == 0.9


# -- each update explained ----------------------------------------------------
def test_momentum_explained_with_d2l_numbers_by_hand(tmp_path: Path) -> None:
    """d2l's momentum example, by hand: g = 0.2·(−5) = −1, v = g, x1 = −5 − 0.6·(−1) = −4.4;
    then g = 0.2·(−4.4) = −0.88, v = 0.5·(−1) + (1 − 0)·(−0.88) = −1.38, x1 = −4.4 − 0.6·(−1.38) = −3.572."""
    from explain.optimizers import explanation

    path = tmp_path / "d2l.toml"
    path.write_text(D2L + 'update = "momentum"\nlearning_rate = 0.6\nmomentum = 0.5\n', encoding="utf-8")
    run = train(explain.load(path))
    record = explanation(run, run.explain_steps)
    assert [f["formula"] for f in record["formulas"]][:2] == [
        "v ← g (first step: the buffer starts as the gradient)", "v ← μ·v + (1 − τ)·g"]
    first, second = ({p["parameter"]: p for p in step["parameters"]}["x1"] for step in record["steps"])
    assert [line["numbers"] for line in first["lines"]] == ["v = -1", "x1 = -5 − 0.6·(-1) = -4.4"]
    assert [line["numbers"] for line in second["lines"]] == [
        "v = 0.5·(-1) + (1 − 0)·(-0.88) = -1.38", "x1 = -4.4 − 0.6·(-1.38) = -3.572"]
    # The state in the JSON history is the same v.
    history = run.to_dict()["history"]
    assert history[2]["state"]["v"]["x1"] == pytest.approx(-1.38, rel=1e-15)


def test_adam_step_1_explained_in_every_format(tmp_path: Path) -> None:
    """Adam's first step by hand: m̂ = g and v̂ = g², so w moves by η·g/(|g| + ε), almost exactly η."""
    path = str(problem(tmp_path, 'update = "adam"\nlearning_rate = 0.1', steps=12))
    result = run_cli("train", path, "--explain-steps", "1,2,10", "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    steps = data["explained_updates"]["steps"]
    assert [s["step"] for s in steps] == [1, 2, 10]
    w5 = {p["parameter"]: p for p in steps[0]["parameters"]}["w5"]
    g = data["history"][1]["state"]["m"]["w5"] / 0.1  # m₁ = (1 − β₁)·g
    assert [line["lhs"] for line in w5["lines"]] == ["m", "v", "m̂", "v̂", "w"]
    assert w5["lines"][2]["numbers"].endswith(f"= {g:.6g}")
    assert data["history"][1]["parameters"]["w5"] == pytest.approx(0.1 - 0.1 * g / (abs(g) + 1e-8), rel=1e-14)
    text = run_cli("train", path, "--explain-steps", "10").stdout
    assert "m̂ ← m / (1 − β₁ᵗ)" in text and "Update 10 (η = 0.1):" in text and "Update 1 (" not in text
    markdown = run_cli("train", path, "--format", "markdown").stdout
    assert r"- $\hat m \leftarrow m / (1 - \beta_1^t)$" in markdown and "**Update 2 (η = 0.1):**" in markdown
    none = run_cli("train", path, "--explain-steps", "none").stdout
    assert "Each update explained" not in none
    bad = run_cli("train", path, "--explain-steps", "0,x")
    assert bad.returncode == 2 and "--explain-steps" in bad.stderr


def test_compare_rules_on_one_plot(tmp_path: Path) -> None:
    path = str(problem(tmp_path, 'update = "adam"\nlearning_rate = 0.1', steps=30))
    plot = tmp_path / "cmp.png"
    result = run_cli("train", path, "--compare", "adam,momentum,plain", "--plot", str(plot), "--explain-steps", "none")
    assert result.returncode == 0, result.stderr
    assert "Update rules compared" in result.stdout and plot.stat().st_size > 1000
    rows = [line for line in result.stdout.splitlines() if line.strip().startswith(("Adam", "momentum", "plain"))]
    assert len(rows) == 3
    bad = run_cli("train", path, "--compare", "adam,adamm")
    assert bad.returncode == 2 and "did you mean 'adam'" in bad.stderr


def test_trajectory_on_the_contour_plot_needs_two_parameters(tmp_path: Path) -> None:
    path = tmp_path / "d2l.toml"
    path.write_text(D2L + 'update = "momentum"\nlearning_rate = 0.6\nmomentum = 0.5\n', encoding="utf-8")
    picture = tmp_path / "t.svg"
    result = run_cli("train", str(path), "--compare", "momentum,plain", "--trajectory", str(picture))
    assert result.returncode == 0 and picture.read_text(encoding="utf-8").count("<path") > 20
    eight = run_cli("train", str(EXAMPLES / "seed003_adam.toml"), "--trajectory", str(tmp_path / "x.svg"))
    assert eight.returncode == 2 and "exactly two parameters; this problem has 8" in eight.stderr
    assert not (tmp_path / "x.svg").exists()


@pytest.mark.parametrize("table", [*RULES.values(),
                                   'update = "rmsprop"\nlearning_rate = 0.05\nmomentum = 0.5\ncentered = true',
                                   'update = "adagrad"\nlearning_rate = 0.5\neps_placement = "d2l"\nweight_decay = 0.1',
                                   'update = "momentum"\nmomentum = 0.9\nnesterov = true\nlearning_rate = 1'])
def test_every_rule_and_option_explains_its_steps(table: str, tmp_path: Path) -> None:
    """Each substituted line ends with the value the run computed (its own parameters after the step)."""
    from explain.optimizers import explanation

    run = train(explain.load(problem(tmp_path, table, steps=3)))
    record = explanation(run, [1, 2, 3])
    assert [s["step"] for s in record["steps"]] == [1, 2, 3]
    for step in record["steps"]:
        for k, p in enumerate(step["parameters"]):
            last = p["lines"][-1]["numbers"]
            assert last.startswith(p["parameter"] + " = ")
            assert float(last.rsplit("= ", 1)[1]) == pytest.approx(run.states[step["step"]][k], rel=1e-5, abs=1e-12)


@pytest.mark.parametrize(("table", "make", "printed", "d2l"), [
    ('update = "adagrad"\neps = 1e-6\nlearning_rate = 0.4', lambda p: torch.optim.Adagrad(p, lr=0.4, eps=1e-6),
     "-2.382564", "-2.382563"),
    ('update = "rmsprop"\nalpha = 0.9\neps = 1e-6\nlearning_rate = 0.4',
     lambda p: torch.optim.RMSprop(p, lr=0.4, alpha=0.9, eps=1e-6), "-0.010598", "-0.010599"),
])
def test_torch_placement_on_d2l_function_is_torch_optim(table, make, printed, d2l, tmp_path: Path) -> None:
    """torch.optim on f = 0.1·x1² + 2·x2² (written here in torch) ends one unit in the sixth decimal from d2l."""
    x = torch.tensor([-5.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = make([x])
    for _ in range(20):
        opt.zero_grad()
        (0.1 * x[0] ** 2 + 2 * x[1] ** 2).backward()
        opt.step()
    path = tmp_path / "d2l.toml"
    path.write_text(D2L + table + "\n", encoding="utf-8")
    final = train(explain.load(path)).final_parameters
    assert final["x1"] == pytest.approx(x[0].item(), rel=1e-12) and f"{final['x1']:f}" == printed != d2l
