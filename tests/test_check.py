"""Checking answers: precision as written, formulas, seed 003's NumPy code, the CLI.

Expected numbers come from the seed's own NumPy formulas or from hand-written
backpropagation in each test, never from explain itself.
"""

from __future__ import annotations

import csv
import json
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from explain.check import Grader, check, parse_answers, read_answers
from explain.errors import ExplainError

from .conftest import EXAMPLES, run_cli
from .test_core import seed003_by_hand

NETWORK = EXAMPLES / "seed003_network.toml"


# -- seed 003: the homework's own NumPy code, copied verbatim -------------------------
def sigmoid(z):
    a = 1 / (1 + np.exp(-z))
    return a


def forward_propagate(x1, x2, y1, y2, w1, w2, w3, w4, w5, w6, w7, w8):  # 正向传播
    in_h1 = w1 * x1 + w3 * x2
    out_h1 = sigmoid(in_h1)
    in_h2 = w2 * x1 + w4 * x2
    out_h2 = sigmoid(in_h2)

    in_o1 = w5 * out_h1 + w7 * out_h2
    out_o1 = sigmoid(in_o1)
    in_o2 = w6 * out_h1 + w8 * out_h2
    out_o2 = sigmoid(in_o2)

    error = (1 / 2) * (out_o1 - y1) ** 2 + (1 / 2) * (out_o2 - y2) ** 2

    return out_o1, out_o2, out_h1, out_h2, error


def back_propagate(out_o1, out_o2, out_h1, out_h2, x1, x2, y1, y2):  # 反向传播 (globals made arguments)
    d_o1 = out_o1 - y1
    d_o2 = out_o2 - y2

    d_w5 = d_o1 * out_o1 * (1 - out_o1) * out_h1
    d_w7 = d_o1 * out_o1 * (1 - out_o1) * out_h2
    d_w6 = d_o2 * out_o2 * (1 - out_o2) * out_h1
    d_w8 = d_o2 * out_o2 * (1 - out_o2) * out_h2

    d_w1 = (d_w5 + d_w6) * out_h1 * (1 - out_h1) * x1
    d_w3 = (d_w5 + d_w6) * out_h1 * (1 - out_h1) * x2
    d_w2 = (d_w7 + d_w8) * out_h2 * (1 - out_h2) * x1
    d_w4 = (d_w7 + d_w8) * out_h2 * (1 - out_h2) * x2

    return d_w1, d_w2, d_w3, d_w4, d_w5, d_w6, d_w7, d_w8


def seed003_numpy_gradients() -> dict[str, float]:
    w = 0.2, -0.4, 0.5, 0.6, 0.1, -0.5, -0.3, 0.8
    x1, x2, y1, y2 = 0.5, 0.3, 0.23, -0.07
    out_o1, out_o2, out_h1, out_h2, _ = forward_propagate(x1, x2, y1, y2, *w)
    grads = back_propagate(out_o1, out_o2, out_h1, out_h2, x1, x2, y1, y2)
    return {f"w{i}": float(g) for i, g in zip((1, 2, 3, 4, 5, 6, 7, 8), grads)}


def answers_text(values: dict[str, str]) -> str:
    return "[answers]\n" + "".join(f'"{k}" = {v}\n' for k, v in values.items())


def test_seed003_numpy_code_w5_to_w8_right_w1_to_w4_activation_instead_of_weight():
    numpy = seed003_numpy_gradients()
    answers = parse_answers(answers_text({f"dE/d{p}": repr(v) for p, v in numpy.items()}))
    report = check(NETWORK, answers)
    verdicts = {i.key: i for i in report.items}
    for p in ("w5", "w6", "w7", "w8"):
        assert verdicts[f"dE/d{p}"].verdict == "correct", p
    for p in ("w1", "w2", "w3", "w4"):
        item = verdicts[f"dE/d{p}"]
        assert item.verdict == "incorrect", p
        assert item.diagnosis is not None and item.diagnosis.code == "activation_instead_of_weight", p
        assert "instead of the weight" in item.diagnosis.message
        assert item.diagnosis.suggested_step.startswith("backward: dE/dout_h")
    assert report.score == {"correct": 4, "total": 8, "points": 4, "max_points": 8}


def test_seed003_example_answers_file_holds_the_numpy_values():
    answers = read_answers(EXAMPLES / "seed003_answers_numpy.toml")
    numpy = seed003_numpy_gradients()
    for a in answers.items:
        p = a.key.split("/d")[1]
        assert a.value == pytest.approx(numpy[p], rel=1e-9)
        assert a.digits >= 9  # "%.10g" drops trailing zeros
    report = check(NETWORK, answers)
    assert [i.verdict for i in report.items] == ["incorrect"] * 4 + ["correct"] * 4
    assert {i.diagnosis.code for i in report.items[:4]} == {"activation_instead_of_weight"}


def test_seed003_diagnosis_in_chinese():
    numpy = seed003_numpy_gradients()
    report = check(NETWORK, {"dE/dw1": numpy["w1"]}, lang="zh")
    d = report.items[0].diagnosis
    assert d.code == "activation_instead_of_weight"
    assert "权重" in d.message and d.suggested_step.startswith("反向传播")


# -- precision as written -----------------------------------------------------------------
def _rounded(value: float, digits: int) -> str:
    return f"{value:.{digits}g}" if "e" not in f"{value:.{digits}g}" else f"{Decimal(value):.{digits}g}"


def _bump(literal: str, step: int) -> str:
    """The literal with its last written digit moved by ``step`` units."""
    d = Decimal(literal)
    return str(d + step * Decimal(1).scaleb(d.as_tuple().exponent))


@pytest.mark.parametrize("digits", [2, 3, 4])
def test_answers_at_2_3_4_significant_digits(digits):
    truth = seed003_by_hand()
    right = {f"dE/d{p}": _rounded(truth[p], digits) for p in ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8")}
    right["E"] = _rounded(truth["E"], digits)
    grader = Grader(NETWORK, sigfigs=1)  # "%.3g" drops trailing zeros (0.2097 → 0.21): judge as written
    report = grader.grade(parse_answers(answers_text(right)))
    assert all(i.verdict == "correct" for i in report.items), report.to_dict()
    if digits == 2:  # at the default 3 significant digits, right but too short, unless the 3rd digit is a 0
        report = Grader(NETWORK).grade(parse_answers(answers_text(right)))
        truths = {**{f"dE/d{p}": truth[p] for p in ("w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8")}, "E": truth["E"]}
        expected = ["correct" if float(f"{truths[k]:.3g}") == float(v) else "imprecise" for k, v in right.items()]
        assert [i.verdict for i in report.items] == expected, report.to_dict()
        assert expected.count("imprecise") >= 7
    for step in (-1, 1):
        wrong = {k: _bump(v, step) for k, v in right.items()}
        report = grader.grade(parse_answers(answers_text(wrong)))
        assert all(i.verdict == "incorrect" for i in report.items), (step, report.to_dict())


def test_trailing_zeros_count_as_written():
    # dE/dw5 = 0.0346330 (0.034632989...): "0.03463" and "0.034633" are right, "0.0346300" is not.
    grader = Grader(NETWORK)
    verdicts = [grader.grade(parse_answers(f'[answers]\n"dE/dw5" = {v}\n')).items[0].verdict
                for v in ("0.03463", "0.034633", "0.0346300", "3.4633e-2", '"0.034633"')]
    assert verdicts == ["correct", "correct", "incorrect", "correct", "correct"]


def test_rtol_overrides_the_written_precision():
    truth = seed003_by_hand()["w5"]
    assert check(NETWORK, {"dE/dw5": 0.035}, rtol=0.02).passed
    assert not check(NETWORK, {"dE/dw5": 0.035}, rtol=0.001).passed
    assert check(NETWORK, {"dE/dw5": truth * (1 + 1e-7)}, rtol=1e-6).passed


def test_forward_values_updated_parameters_and_loss_after_one_step():
    truth = seed003_by_hand()
    w5_plus = 0.1 - 10 * truth["w5"]
    text = answers_text({"out_h1": "0.56218", "w5+": f"{w5_plus:.5f}", "∂E/∂w6": "0.08387"})
    report = check(NETWORK, parse_answers(text))
    assert [i.verdict for i in report.items] == ["correct"] * 3


def test_after_one_sgd_step_uses_the_first_sample():
    # Seed 000: w = 3, one SGD step on (x, y) = (1, 2) with lr 0.01: w+ = 3 - 0.01·2·(3 - 2)·1.
    report = check(EXAMPLES / "seed000_linear_sgd.toml", {"w+": 2.98, "dl/dw": 28.0})
    assert report.passed, report.to_dict()


def test_after_step_answers_need_a_learning_rate():
    grader = Grader(_no_train_problem())
    item = grader.grade(parse_answers('[answers]\n"w5+" = 0.1\n')).items[0]
    assert item.verdict == "unknown_key" and "learning rate" in item.note


def _no_train_problem():
    from explain.problem import loads

    return loads(NETWORK.read_text().split("[train]")[0], "no_train.toml")


def test_unknown_keys_and_unreadable_values():
    text = '[answers]\n"dE/dw9" = 1\n"dL/dw1" = 1\nwhat = 2\n"dE/dw1" = true\n"dE/dw2" = [1, 2]\n'
    report = check(NETWORK, parse_answers(text))
    assert [i.verdict for i in report.items] == ["unknown_key", "unknown_key", "unknown_key", "unparseable",
                                                 "incorrect"]
    assert "dE/d<node>" in report.items[0].note


# -- formulas ------------------------------------------------------------------------------
@pytest.mark.parametrize("formula", [
    "w5*delta_o1 + w6*delta_o2",                       # textbook deltas of neurons o1, o2
    "w5*delta_in_o1 + w6*delta_in_o2",                  # deltas of nodes
    "w5*(out_o1 - y1)*out_o1*(1 - out_o1) + w6*(out_o2 - y2)*out_o2*(1 - out_o2)",
    "w5*(sigmoid(in_o1) - y1)*sigmoid(in_o1)*(1 - sigmoid(in_o1)) + w6*delta_o2",  # needs random points
])
def test_equivalent_formulas_are_correct(formula):
    report = check(NETWORK, parse_answers(f'[answers]\n"dE/dout_h1" = "{formula}"\n'))
    assert report.items[0].verdict == "correct", report.to_dict()


def test_wrong_and_unreadable_formulas():
    text = ('[answers]\n"dE/dout_h1" = "out_h1*delta_o1 + out_h1*delta_o2"\n'
            '"dE/dw1" = "__import__(\'os\')"\n"out_h1" = "out_h1"\n"dE/dw5" = "delta_o1*nope"\n')
    items = check(NETWORK, parse_answers(text)).items
    assert items[0].verdict == "incorrect"
    assert items[0].diagnosis.code == "activation_instead_of_weight"
    assert [i.verdict for i in items[1:]] == ["unparseable"] * 3
    assert "unknown name 'nope'" in items[3].note


def test_formula_in_a_data_problem_is_one_sample():
    problem = EXAMPLES / "seed003_linear.toml"
    text = '[answers]\n"dl/dw" = "2*(y_pred - y)*x"\n"dl/db" = "2*(w*x + b - y)"\n"dl/dy_pred" = "2*(y_pred - y)"\n'
    report = check(problem, parse_answers(text))
    assert [i.verdict for i in report.items] == ["correct"] * 3, report.to_dict()


def test_per_sample_answers_are_lists():
    # Seed 003's linear model at its seeded start: y_pred = w·x + b, l = (y_pred − y)², summed.
    problem = EXAMPLES / "seed003_linear.toml"
    grader = Grader(problem)
    w, b = grader.derivation.value("w"), grader.derivation.value("b")
    xs, ys = np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 6.0])
    y_pred = w * xs + b
    listed = ", ".join(f"{v:.4g}" for v in y_pred)
    grads = ", ".join(f"{v:.4g}" for v in 2 * (y_pred - ys))
    text = f'[answers]\ny_pred = [{listed}]\n"dl/dy_pred" = [{grads}]\n"dl/dw" = {np.sum(2 * (y_pred - ys) * xs):.4g}\n'
    assert grader.grade(parse_answers(text)).passed
    item = grader.grade(parse_answers("[answers]\ny_pred = [0.5, 0.7]\n")).items[0]
    assert item.verdict == "incorrect" and "3 values" in item.note


# -- reading files --------------------------------------------------------------------------
def test_unreadable_answers_file_names_the_line(tmp_path):
    path = tmp_path / "alice.toml"
    path.write_text('[answers]\n"dE/dw5" = 0.0346\n"dE/dw6" = = 0.08\n')
    with pytest.raises(ExplainError) as info:
        read_answers(path)
    assert "line 3" in str(info.value) and "alice.toml" in str(info.value)


def test_answers_file_needs_an_answers_table():
    with pytest.raises(ExplainError, match=r"\[answers\]"):
        parse_answers('"dE/dw5" = 0.0346\n')
    with pytest.raises(ExplainError, match="unknown key"):
        parse_answers('[answer]\nx = 1\n')


def test_multiline_lists_keep_their_digits():
    answers = parse_answers('[answers]\n"l" = [\n  0.10,  # first\n  2.5e-3,\n]\n')
    assert answers.items[0].places == (0.01, 1e-4)
    assert answers.items[0].line == 2


# -- the command line -----------------------------------------------------------------------
def _write(tmp_path: Path, name: str, values: dict[str, str]) -> Path:
    path = tmp_path / name
    path.write_text(answers_text(values))
    return path


def test_cli_exit_codes(tmp_path):
    truth = seed003_by_hand()
    good = _write(tmp_path, "good.toml", {"dE/dw5": f"{truth['w5']:.4g}", "E": "0.2097"})
    result = run_cli("check", str(NETWORK), str(good))
    assert result.returncode == 0, result.stderr
    assert "Score: 2/2" in result.stdout
    result = run_cli("check", str(NETWORK), str(EXAMPLES / "seed003_answers_numpy.toml"), "--format", "json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["score"] == {"correct": 4, "total": 8, "points": 4, "max_points": 8}
    assert set(data["items"][0]) >= {"key", "given", "expected", "verdict", "diagnosis"}
    assert data["items"][0]["diagnosis"]["code"] == "activation_instead_of_weight"
    bad = tmp_path / "bad.toml"
    bad.write_text('[answers]\n"dE/dw5" 0.0346\n')
    result = run_cli("check", str(NETWORK), str(bad), "--report", str(tmp_path / "grades.csv"))
    assert result.returncode == 2
    assert "line 2" in result.stderr and "bad.toml" in result.stderr
    # The report is written all the same, with the unreadable file's own row (issue 10 item 5).
    rows = list(csv.DictReader((tmp_path / "grades.csv").open()))
    assert [(r["student"], r["verdict"], r["line"]) for r in rows] == [("bad", "unreadable", "2")]


def test_cli_batch_grading_with_report(tmp_path):
    truth = seed003_by_hand()
    numpy = seed003_numpy_gradients()
    paths = []
    for k in range(12):
        values = {f"dE/d{p}": f"{truth[p]:.4g}" for p in ("w1", "w5")}
        if k % 3 == 0:
            values["dE/dw1"] = f"{numpy['w1']:.4g}"
        paths.append(str(_write(tmp_path, f"student{k:02d}.toml", values)))
    report = tmp_path / "grades.csv"
    result = run_cli("check", str(NETWORK), *paths, "--report", str(report), "--jobs", "2", "--format", "markdown")
    assert result.returncode == 1, result.stderr
    assert "student00" in result.stdout and "activation_instead_of_weight" in result.stdout
    rows = list(csv.DictReader(report.open()))
    assert len(rows) == 24
    wrong = [r for r in rows if r["verdict"] != "correct"]
    assert {r["student"] for r in wrong} == {"student00", "student03", "student06", "student09"}
    assert {r["code"] for r in wrong} == {"activation_instead_of_weight"}
    assert all(r["suggested_step"] for r in wrong)


def test_cli_text_and_markdown(tmp_path):
    path = _write(tmp_path, "s.toml", {"dE/dw5": "0.0347"})
    result = run_cli("check", str(NETWORK), str(path), "--format", "markdown")
    assert result.returncode == 1
    assert "| `dE/dw5` |" in result.stdout
    result = run_cli("check", str(NETWORK), str(path), "--lang", "zh")
    assert "得分：0/1" in result.stdout
    result = run_cli("check", str(NETWORK), str(path), "--format", "latex")
    assert result.returncode == 2


def test_report_json_matches_spec():
    data = check(NETWORK, {"dE/dw5": 0.0346, "dE/dw1": 0.5}).to_dict()
    assert data["score"] == {"correct": 1, "total": 2, "points": 1, "max_points": 2}
    assert data["items"][1]["diagnosis"] is None and data["items"][1]["verdict"] == "incorrect"
    assert math.isclose(data["items"][0]["expected"], seed003_by_hand()["w5"], rel_tol=1e-12)
