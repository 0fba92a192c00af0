"""Grading as a careful marker would (issue 10, items 1, 4, 5, 6): significant figures, marks,
a class with unreadable files and a roster, did-you-mean and delta keys.

Expected numbers come from seed 003's hand-derived backpropagation (tests/test_core.py's
``seed003_by_hand``, the network written out in plain Python) or are worked out in the
comments; never from explain itself.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from explain.check import Grader, Item, Report, check, parse_answers
from explain.errors import ExplainError
from explain.problem import loads

from .conftest import EXAMPLES, run_cli
from .test_core import seed003_by_hand

NETWORK = EXAMPLES / "seed003_network.toml"
TRUTH = seed003_by_hand()
GRADS = [f"dE/dw{i}" for i in range(1, 9)]
# Seed 003's forward pass by hand (the numbers of examples/seed003_network.toml).
_H1 = 1 / (1 + math.exp(-(0.2 * 0.5 + 0.5 * 0.3)))
_H2 = 1 / (1 + math.exp(-(-0.4 * 0.5 + 0.6 * 0.3)))
OUT = {"out_h1": _H1, "out_o1": 1 / (1 + math.exp(-(0.1 * _H1 - 0.3 * _H2)))}


def answers(values: dict[str, str]) -> str:
    return "[answers]\n" + "".join(f'"{k}" = {v}\n' for k, v in values.items())


def grade(values: dict[str, str], **options) -> Report:
    return Grader(NETWORK, **options).grade(parse_answers(answers(values)))


# -- 1. significant figures ------------------------------------------------------------------
def test_an_all_zero_sheet_scores_nothing():
    # On the old checker `0` (an integer, judged to ±0.5) passed all eight gradients: 8/8.
    # No gradient of seed 003 is 0 (the smallest, dE/dw3, is -0.00505 by hand).
    assert min(abs(TRUTH[f"w{i}"]) for i in range(1, 9)) > 1e-3
    for zero in ("0", "0.0", "0.000"):
        report = grade({k: zero for k in GRADS})
        assert report.score == {"correct": 0, "total": 8, "points": 0, "max_points": 8}, zero
        assert {i.verdict for i in report.items} == {"incorrect"}
        assert all(i.diagnosis is None for i in report.items)  # a zero is a guess, not a mistake


def test_zero_is_right_for_a_true_zero():
    # At w = 0 (by hand): the stage l = w² + w/2 is exactly 0; the loss m = (w − 1)² has dm/dw = 2(w − 1) = −2.
    problem = loads('[parameters]\nw = 0.0\n[forward]\nl = "w**2 + 0.5*w"\nm = "(w - 1)**2"\n', "zero.toml")
    grader = Grader(problem)
    assert grader.grade(parse_answers(answers({"dm/dw": "-2.00", "l": "0"}))).passed  # l = 0 exactly
    # "-2" has one significant digit, but the digits left out are the zeros of -2.00: right, not imprecise.
    assert grader.grade(parse_answers(answers({"dm/dw": "-2"}))).passed
    assert grader.grade(parse_answers(answers({"dm/dw": "-2.1"}))).items[0].verdict == "incorrect"
    item = grader.grade(parse_answers(answers({"dm/dw": "0"}))).items[0]
    assert item.verdict == "incorrect"
    assert grader.grade(parse_answers(answers({"l": "0.001"}))).items[0].verdict == "incorrect"  # 0.001 ≠ 0


def test_fewer_digits_than_required_is_imprecise_with_no_credit():
    # dE/dw5 = 0.0346329… (by hand): "0.035" is right to 2 digits, 3 are required by default.
    item = grade({"dE/dw5": "0.035"}).items[0]
    assert item.verdict == "imprecise" and item.points == 0
    assert "2 significant digit" in item.note and "3 are needed" in item.note
    assert grade({"dE/dw5": "0.0346"}).passed
    # --sigfigs 2 (Grader's sigfigs) and [check] sigfigs = 2 both accept it.
    assert grade({"dE/dw5": "0.035"}, sigfigs=2).passed
    text = NETWORK.read_text() + "\n[check]\nsigfigs = 2\n"
    assert Grader(loads(text, "two.toml")).grade(parse_answers(answers({"dE/dw5": "0.035"}))).passed
    # Wrong at the precision written stays incorrect whatever the digits: 0.036 is not 0.0346…
    assert grade({"dE/dw5": "0.036"}).items[0].verdict == "incorrect"
    assert grade({"dE/dw5": "0.036"}, sigfigs=2).items[0].verdict == "incorrect"
    # --rtol replaces the rule: 0.035 is within 2 % of 0.03463.
    assert check(NETWORK, {"dE/dw5": 0.035}, rtol=0.02).passed


def test_the_required_digits_are_those_of_the_true_value():
    # E = 0.20970979… (by hand).  With sigfigs = 3, "0.210" is 3 digits and rounds the truth (0.2097 → 0.210);
    # "0.2100" is wrong at its 4th digit.  PrairieLearn's rule: |given − truth| < half a unit of the 3rd digit.
    assert math.isclose(TRUTH["E"], 0.2097097937, rel_tol=1e-9)
    assert grade({"E": "0.210"}).passed
    assert grade({"E": "0.2100"}).items[0].verdict == "incorrect"
    assert grade({"E": "0.2097"}).passed


def test_a_one_digit_guess_gets_no_diagnosis_but_two_digits_do():
    # 0.0007 was diagnosed `loss_constant` by the old checker; one significant digit is a guess.
    item = grade({"dE/dw1": "0.0007"}).items[0]
    assert item.verdict == "incorrect" and item.diagnosis is None
    assert "fewer than 2 significant digits" in item.note
    # Forgetting σ' at the output: dE/dw5 = (out_o1 − y1)·out_h1 (by hand from TRUTH's forward values) ≈ 0.1388;
    # written with 2 digits it is still diagnosed.
    forgot = (OUT["out_o1"] - 0.23) * OUT["out_h1"]
    assert f"{forgot:.2g}" == "0.14"
    item = grade({"dE/dw5": "0.14"}).items[0]
    assert item.diagnosis is not None and item.diagnosis.code == "missing_activation_derivative"


# -- 4. marks ----------------------------------------------------------------------------------
MARKED = NETWORK.read_text() + '\n[marks]\n"dE/dw5" = 2\n"dE/dw1" = 3\n"E" = 0.5\n\n[check]\nconsistent_fraction = 0.5\n'


def test_marks_weigh_the_answers_and_count_unanswered_questions():
    grader = Grader(loads(MARKED, "marked.toml"))
    # ∂E/∂w5 right (2 points), dE/dw1 wrong (0 of 3), E unanswered (0 of 0.5), dE/dw6 not marked (1 of 1),
    # a key of no quantity (0 of 0: [marks] lists the questions).
    report = grader.grade(parse_answers(answers({"∂E/∂w5": "0.03463", "dE/dw1": "0.01458", "dE/dw6": "0.08387",
                                                 "dE/dzz": "1.0"})))
    assert report.score == {"correct": 2, "total": 4, "points": 3, "max_points": 6.5}
    assert math.isclose(report.percent, 100 * 3 / 6.5)
    # A `consistent` verdict (the follow-through diagnosis gives it) earns consistent_fraction of the points.
    items = [Item("dE/dw1", 0.01, -0.0084, "consistent"), Item("dE/dw5", 0.0346, 0.0346, "correct")]
    marked = grader.mark(Report(items))
    assert [i.points for i in marked.items] == [1.5, 2.0]
    assert marked.score["points"] == 3.5 and marked.score["max_points"] == 5.5
    # Default: consistent earns the whole point.
    assert Grader(NETWORK).mark(Report(items[:1])).score["points"] == 1


def test_marks_naming_no_quantity_are_an_error_with_a_suggestion():
    text = NETWORK.read_text() + '\n[marks]\n"dE/dW5" = 2\n'
    with pytest.raises(ExplainError) as info:
        Grader(loads(text, "marked.toml"))
    assert "[marks] dE/dW5" in str(info.value) and "dE/dw5" in str(info.value)
    with pytest.raises(ExplainError, match=r"\[marks\] x"):
        loads(NETWORK.read_text() + '\n[marks]\nx = "two"\n', "bad.toml")
    with pytest.raises(ExplainError, match="sigfigs"):
        loads(NETWORK.read_text() + '\n[check]\nsigfigs = 0\n', "bad.toml")
    with pytest.raises(ExplainError, match="--sigfigs"):
        Grader(NETWORK, sigfigs=13)


def test_cli_prints_points_and_percentage(tmp_path):
    problem = tmp_path / "marked.toml"
    problem.write_text(MARKED)
    path = tmp_path / "ann.toml"
    path.write_text(answers({"dE/dw5": "0.03463", "dE/dw1": "-0.008421", "E": "0.2097"}))
    result = run_cli("check", str(problem), str(path), "--no-verify")
    assert result.returncode == 0, result.stderr
    assert "Score: 3/3" in result.stdout and "5.5/5.5 points (100%)" in result.stdout
    result = run_cli("check", str(problem), str(path), "--no-verify", "--format", "json", "--sigfigs", "5")
    data = json.loads(result.stdout)
    # At 5 required digits every 4-digit answer is imprecise: 0 points of 5.5.
    assert data["score"] == {"correct": 0, "total": 3, "points": 0, "max_points": 5.5}
    assert {i["verdict"] for i in data["items"]} == {"imprecise"}


# -- 5. a class ----------------------------------------------------------------------------------
def _numpy_w1_w2() -> dict[str, str]:
    # Seed 003's NumPy code puts out_h1 where w5 belongs (tests/test_check.py): its dE/dw1 = 0.01458333227.
    from .test_check import seed003_numpy_gradients

    numpy = seed003_numpy_gradients()
    return {"dE/dw1": f"{numpy['w1']:.4g}", "dE/dw2": f"{numpy['w2']:.4g}", "dE/dw5": f"{numpy['w5']:.4g}"}


def test_a_class_with_an_unreadable_file_is_graded_and_reported(tmp_path):
    folder = tmp_path / "answers"
    folder.mkdir()
    (folder / "ann.toml").write_text(answers(_numpy_w1_w2()))
    (folder / "bob.toml").write_text(answers(_numpy_w1_w2()))
    right = {"dE/dw1": f"{TRUTH['w1']:.4g}", "dE/dw2": f"{TRUTH['w2']:.4g}", "dE/dw5": "0.5370"}
    (folder / "cat.toml").write_text(answers(right))
    (folder / "dan.toml").write_text('[answers]\n"dE/dw5" = 0.0346\n"dE/dw1" = 0,0162\n')  # a decimal comma
    paths = sorted(str(p) for p in folder.iterdir())
    csv_report, json_report, png = tmp_path / "grades.csv", tmp_path / "grades.json", tmp_path / "chart.png"
    result = run_cli("check", str(NETWORK), *paths, "--report", str(csv_report), "--chart", str(png), "--no-verify")
    assert result.returncode == 2, result.stderr
    assert "dan.toml" in result.stderr and "line 3" in result.stderr
    rows = list(csv.DictReader(csv_report.open()))
    dan = [r for r in rows if r["student"] == "dan"]
    assert [(r["verdict"], r["line"]) for r in dan] == [("unreadable", "3")] and "TOML" in dan[0]["message"]
    assert {r["student"] for r in rows} == {"ann", "bob", "cat", "dan"}
    cat = {r["key"]: r for r in rows if r["student"] == "cat"}
    assert cat["dE/dw5"]["given"] == "0.5370"  # shown as written, not 0.537
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = run_cli("check", str(NETWORK), *paths, "--report", str(json_report), "--no-verify")
    assert result.returncode == 2
    data = json.loads(json_report.read_text())
    summary = data["summary"]
    assert summary["students"] == 4 and summary["unreadable"] == 1
    top = summary["mistakes"][0]
    # ann and bob both made the NumPy code's mistake on dE/dw1 and dE/dw2 (dE/dw5 is right in it).
    assert top == {"code": "activation_instead_of_weight", "students": 2, "answers": 4,
                   "questions": {"dE/dw1": 2, "dE/dw2": 2}}
    questions = {q["key"]: q for q in summary["questions"]}
    assert questions["dE/dw1"]["answered"] == 3 and questions["dE/dw1"]["correct"] == 1
    assert questions["dE/dw5"]["correct"] == 2 and questions["dE/dw5"]["incorrect"] == 1  # cat's 0.5370
    assert "Mistakes, by diagnosis" in result.stdout and "activation_instead_of_weight" in result.stdout


def test_a_roster_grades_each_student_against_their_variant(tmp_path):
    names = tmp_path / "names.txt"
    names.write_text("alice\nbob\n")
    out = tmp_path / "class"
    result = run_cli("variants", str(NETWORK), "--students", str(names), "--seed", "3", "-o", str(out), "--no-pdf")
    assert result.returncode == 0, result.stderr
    roster = list(csv.DictReader((out / "roster.csv").open()))
    assert roster == [{"student": "alice", "variant": "variant_01.toml"}, {"student": "bob", "variant": "variant_02.toml"}]
    # Alice answers her own variant's loss; its value is computed here from the variant's numbers by hand.
    variant = loads((out / "variant_01.toml").read_text(), "v1.toml")
    v, p = variant.values, variant.parameters

    def sig(z: float) -> float:
        return 1 / (1 + math.exp(-z))

    h1, h2 = sig(p["w1"] * v["x1"] + p["w3"] * v["x2"]), sig(p["w2"] * v["x1"] + p["w4"] * v["x2"])
    o1, o2 = sig(p["w5"] * h1 + p["w7"] * h2), sig(p["w6"] * h1 + p["w8"] * h2)
    loss = (o1 - v["y1"]) ** 2 / 2 + (o2 - v["y2"]) ** 2 / 2
    dw5 = (o1 - v["y1"]) * o1 * (1 - o1) * h1
    folder = tmp_path / "answers"
    folder.mkdir()
    for name in ("alice", "bob"):
        (folder / f"{name}.toml").write_text(answers({"E": f"{loss:.5g}", "dE/dw5": f"{dw5:.5g}"}))
    (folder / "eve.toml").write_text(answers({"E": f"{loss:.5g}"}))
    paths = [str(folder / f"{n}.toml") for n in ("alice", "bob", "eve")]
    report = tmp_path / "grades.json"
    result = run_cli("check", "--roster", str(out / "roster.csv"), *paths, "--report", str(report), "--no-verify")
    assert result.returncode == 2, result.stderr  # eve is not in the roster
    students = {s["student"]: s for s in json.loads(report.read_text())["students"]}
    assert students["alice"]["score"]["correct"] == 2  # her own variant
    assert students["bob"]["score"]["correct"] == 0  # alice's numbers are not bob's variant's
    assert students["eve"]["items"][0]["verdict"] == "unreadable" and "roster" in students["eve"]["items"][0]["note"]


# -- 6. keys -----------------------------------------------------------------------------------
def test_unknown_keys_get_a_suggestion():
    item = grade({"dE/dW11": "0.0146"}).items[0]
    assert item.verdict == "unknown_key" and "Did you mean 'dE/dw1'?" in item.note
    item = grade({"zzz": "1.0"}).items[0]
    assert item.verdict == "unknown_key" and "Did you mean" not in item.note


def test_delta_keys_are_the_units_deltas():
    # δ_o1 = ∂E/∂in_o1 = (out_o1 − y1)·out_o1·(1 − out_o1), by hand from seed 003's forward values.
    delta = (OUT["out_o1"] - 0.23) * OUT["out_o1"] * (1 - OUT["out_o1"])
    for key in ("delta_o1", "δ_o1", "delta_in_o1"):
        item = grade({key: f"{delta:.4g}"}).items[0]
        assert item.verdict == "correct", (key, item)
        assert math.isclose(item.expected, delta, rel_tol=1e-9)
    assert grade({"delta_o1": f"{-delta:.4g}"}).items[0].verdict == "incorrect"


def test_given_values_are_shown_as_written():
    report = grade({"dE/dw5": "0.5370", "dE/dw6": "[0.10, 2.50]"})
    assert [i.shown for i in report.items] == ["0.5370", "[0.10, 2.50]"]
    from explain.commands.check import render_text

    assert "0.5370" in render_text([report])
