"""Answers about later training steps (w5@3, v_w5@2, E@1) and the update-rule mistakes (issue 13).

The expected numbers are worked by hand below on d2l's f = 0.1·x1² + 2·x2² (gradient
0.2·x1, 4·x2), each wrong rule written out as a student would; the right ones come from
torch.optim through the grader's own run (checked against torch.optim in test_optimizers).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import explain
from explain.check import check, parse_answers

from .conftest import run_cli


def problem(tmp_path: Path, table: str, x1: float = -5.0, x2: float = -2.0) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(f'[parameters]\nx1 = {x1}\nx2 = {x2}\n[forward]\nf = "0.1*x1**2 + 2*x2**2"\n'
                    f'[train]\nsteps = 3\n{table}\n', encoding="utf-8")
    return path


def verdicts(path: Path, answers: dict[str, float | str]) -> dict[str, tuple[str, str | None]]:
    """Grade answers written as a student writes them (a string keeps its digits: "-4.90000")."""
    text = "[answers]\n" + "".join(f'"{k}" = {v}\n' for k, v in answers.items())
    report = check(explain.load(path), parse_answers(text))
    return {i.key: (i.verdict, i.diagnosis.code if i.diagnosis else None) for i in report.items}


def test_missing_bias_correction(tmp_path: Path) -> None:
    # By hand, Adam without m̂, v̂: g = 0.2·(−5) = −1, m = 0.1·(−1), v = 0.001·1, x1 = −5 − 0.1·m/(√v + 1e-8).
    wrong = -5 - 0.1 * (-0.1) / (math.sqrt(0.001) + 1e-8)
    right = -5 - 0.1 * (-1) / (1 + 1e-8)  # with them, m̂ = g and v̂ = g²
    path = problem(tmp_path, 'update = "adam"\nlearning_rate = 0.1')
    got = verdicts(path, {"x1@1": f"{wrong:.6f}", "m_x1@1": "-0.100000", "v_x1@1": "0.00100000", "f@0": "10.5000"})
    assert got["x1@1"] == ("incorrect", "optim_no_bias_correction")
    assert got["m_x1@1"] == got["v_x1@1"] == got["f@0"] == ("correct", None)
    assert verdicts(path, {"x1@1": f"{right:.6f}"})["x1@1"] == ("correct", None)


def test_momentum_with_the_wrong_sign(tmp_path: Path) -> None:
    # Step 1: v = g = −1, x1 = −5 + 0.1 = −4.9.  Step 2: g = −0.98; right v = 0.5·(−1) − 0.98 = −1.48,
    # x1 = −4.9 + 0.148 = −4.752; wrong v = −0.5·(−1) − 0.98 = −0.48, x1 = −4.9 + 0.048 = −4.852.
    path = problem(tmp_path, 'update = "momentum"\nmomentum = 0.5\nlearning_rate = 0.1')
    got = verdicts(path, {"x1@2": "-4.85200", "v_x1@2": "-0.480000", "x1@1": "-4.90000"})
    assert got["x1@2"] == got["v_x1@2"] == ("incorrect", "optim_momentum_sign")
    assert got["x1@1"] == ("correct", None)
    assert verdicts(path, {"x1@2": "-4.75200", "v_x1@2": "-1.48000"}) == {"x1@2": ("correct", None),
                                                                 "v_x1@2": ("correct", None)}


def test_squared_gradient_not_squared(tmp_path: Path) -> None:
    # AdaGrad from x1 = 10: g = 2; right s = 4, x1 = 10 − 0.4·2/(2 + 1e-10); not squared s = 2, x1 = 10 − 0.4·2/√2.
    path = problem(tmp_path, 'update = "adagrad"\nlearning_rate = 0.4', x1=10.0, x2=2.0)
    got = verdicts(path, {"x1@1": f"{10 - 0.8 / math.sqrt(2):.6f}", "s_x1@1": "2.00000"})
    assert got["x1@1"] == got["s_x1@1"] == ("incorrect", "optim_not_squared")
    assert verdicts(path, {"x1@1": "9.60000", "s_x1@1": "4.00000"})["x1@1"] == ("correct", None)


def test_l2_instead_of_decoupled_and_the_reverse(tmp_path: Path) -> None:
    # AdamW, λ = 0.1, η = 0.1: x1 = −5·(1 − 0.01) = −4.95, then Adam's first step +0.1: −4.85.
    # As L2: g = −1 + 0.1·(−5) = −1.5, and the first Adam step still moves by η: −5 + 0.1 = −4.9.
    adamw = problem(tmp_path, 'update = "adamw"\nweight_decay = 0.1\nlearning_rate = 0.1')
    assert verdicts(adamw, {"x1@1": "-4.90000"})["x1@1"] == ("incorrect", "optim_l2_not_decoupled")
    assert verdicts(adamw, {"x1@1": "-4.85000"})["x1@1"] == ("correct", None)
    adam = problem(tmp_path, 'update = "adam"\nweight_decay = 0.1\nlearning_rate = 0.1')
    assert verdicts(adam, {"x1@1": "-4.85000"})["x1@1"] == ("incorrect", "optim_decoupled_not_l2")
    assert verdicts(adam, {"x1@1": "-4.90000"})["x1@1"] == ("correct", None)


def test_keys_and_the_command(tmp_path: Path) -> None:
    path = problem(tmp_path, 'update = "adam"\nlearning_rate = 0.1')
    answers = tmp_path / "a.toml"
    # x2 after 3 Adam steps is small: a right answer to 3 significant figures passes.
    from explain.train import train

    x2 = train(explain.load(path)).states[3][1]
    answers.write_text(f'[answers]\n"x2@3" = {x2:.3g}\n"q_x1@1" = 1.0\n"x1@2" = 7.0\n', encoding="utf-8")
    result = run_cli("check", str(path), str(answers), "--format", "json")
    import json

    items = {i["key"]: i for i in json.loads(result.stdout)["items"]}
    assert items["x2@3"]["verdict"] == "correct"
    assert items["q_x1@1"]["verdict"] == "unknown_key" and "STATE_PARAMETER@K" in items["q_x1@1"]["note"]
    assert items["x1@2"]["verdict"] == "incorrect" and items["x1@2"]["diagnosis"] is None


def test_marks_may_name_later_steps(tmp_path: Path) -> None:
    # [marks] weighs a later step like any question: momentum from d2l's start, by hand x1@2 = -4.752
    # (see test_momentum_with_the_wrong_sign); 3 points for it, 1 for v_x1@2 (left unanswered), 0 for the rest.
    path = problem(tmp_path, 'update = "momentum"\nmomentum = 0.5\nlearning_rate = 0.1')
    path.write_text(path.read_text(encoding="utf-8") + '[marks]\n"x1@2" = 3\n"v_x1@2" = 1\n', encoding="utf-8")
    report = check(explain.load(path), parse_answers('[answers]\n"x1@2" = "-4.75200"\n'))
    assert report.items[0].verdict == "correct" and report.items[0].points == 3
    score = report.to_dict()["score"]
    assert (score["points"], score["max_points"]) == (3, 4)


def test_marks_naming_a_step_the_problem_cannot_have_is_refused(tmp_path: Path) -> None:
    # The other direction: a key of no parameter or state (z@2) is still an error naming [marks].
    path = problem(tmp_path, 'update = "momentum"\nmomentum = 0.5\nlearning_rate = 0.1')
    path.write_text(path.read_text(encoding="utf-8") + '[marks]\n"z@2" = 3\n', encoding="utf-8")
    with pytest.raises(explain.ExplainError, match=r"\[marks\] z@2"):
        check(explain.load(path), parse_answers('[answers]\n"x1@2" = "-4.75200"\n'))
