"""Grading as a careful marker (issue 10, items 2 and 3): follow-through and a diagnosis that reads the student.

Every student here is written by hand with NumPy (independently of explain's Graph,
derivation and catalogue): the forward pass and backpropagation of the network, with
one step done the student's way.  The expected verdicts and codes follow from that.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from explain.check import check, parse_answers
from explain.problem import loads

from .conftest import EXAMPLES, run_cli

NETWORK = EXAMPLES / "seed003_network.toml"
MAZUR = EXAMPLES / "mazur_network.toml"
X = np.array([0.5, 0.3])
Y = np.array([0.23, -0.07])
W_HIDDEN = np.array([[0.2, 0.5], [-0.4, 0.6]])   # rows h1, h2; in_h1 = w1*x1 + w3*x2, in_h2 = w2*x1 + w4*x2
W_OUT = np.array([[0.1, -0.3], [-0.5, 0.8]])     # rows o1, o2; in_o1 = w5*out_h1 + w7*out_h2, in_o2 = w6*out_h1 + w8*out_h2
ETA = 10.0


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def seed003(dout_h=None, hidden_prime=None) -> dict[str, float]:
    """Seed 003 by hand; ``dout_h(delta_o)`` and ``hidden_prime(out_h)`` replace the student's steps."""
    h = sigmoid(W_HIDDEN @ X)
    o = sigmoid(W_OUT @ h)
    dout_o = o - Y                        # ∂(½Σ(o − y)²)/∂o
    delta_o = dout_o * o * (1 - o)        # ∂E/∂in_o
    g_out = np.outer(delta_o, h)          # ∂E/∂W_OUT
    dh = W_OUT.T @ delta_o if dout_h is None else dout_h(delta_o)
    delta_h = dh * (h * (1 - h) if hidden_prime is None else hidden_prime(h))
    g_hidden = np.outer(delta_h, X)
    names = {"w1": g_hidden[0, 0], "w3": g_hidden[0, 1], "w2": g_hidden[1, 0], "w4": g_hidden[1, 1],
             "w5": g_out[0, 0], "w7": g_out[0, 1], "w6": g_out[1, 0], "w8": g_out[1, 1]}
    return {"out_h1": h[0], "out_o1": o[0], "dE/dout_o1": dout_o[0], "dE/din_o1": delta_o[0],
            **{f"dE/d{k}": v for k, v in names.items()}}


def sheet(values: dict[str, float | str]) -> str:
    return "[answers]\n" + "".join(f'"{k}" = {repr(v) if isinstance(v, str) else format(v, "#.4g")}\n'
                                   for k, v in values.items())


def grade(problem, values: dict[str, float | str], lang: str = "en") -> dict[str, object]:
    return {i.key: i for i in check(problem, parse_answers(sheet(values)), lang=lang).items}


# -- follow-through (error carried forward) ------------------------------------------------
def test_a_step_done_right_on_the_students_wrong_number_is_consistent():
    right = seed003()
    # The student flips the sign of ∂E/∂out_o1 and then does every later step right with it:
    # ∂E/∂w5 = (their ∂E/∂out_o1)·out_o1·(1 − out_o1)·out_h1, and w5+ = w5 − η·(their ∂E/∂w5).
    wrong = -right["dE/dout_o1"]
    o1, h1 = right["out_o1"], right["out_h1"]
    dw5 = float(f"{wrong:.4g}") * o1 * (1 - o1) * h1
    w5_plus = 0.1 - ETA * float(f"{dw5:.4g}")
    items = grade(NETWORK, {"dE/dout_o1": wrong, "dE/dw5": dw5, "w5+": w5_plus})
    assert items["dE/dout_o1"].verdict == "incorrect"
    assert items["dE/dw5"].verdict == "consistent"
    assert f"∂E/∂out_o1 = {float(f'{wrong:.4g}'):.12g}" in items["dE/dw5"].note
    assert items["w5+"].verdict == "consistent"  # w5 − η·(their ∂E/∂w5): the update done right
    assert "∂E/∂w5" in items["w5+"].note
    report = check(NETWORK, parse_answers(sheet({"dE/dout_o1": wrong, "dE/dw5": dw5})))
    # consistent earns its points (consistent_fraction defaults to 1), though it is not "correct"
    assert report.score == {"correct": 0, "total": 2, "points": 1, "max_points": 2}
    assert report.to_dict()["items"][1]["verdict"] == "consistent"
    zh = grade(NETWORK, {"dE/dout_o1": wrong, "dE/dw5": dw5}, lang="zh")
    assert "与你的 ∂E/∂out_o1" in zh["dE/dw5"].note


def test_a_wrong_step_after_a_wrong_number_gets_no_credit():
    right = seed003()
    wrong = -right["dE/dout_o1"]
    o1, h1 = right["out_o1"], right["out_h1"]
    dw5_forgot_sigma = wrong * h1   # a second mistake on top: no follow-through
    items = grade(NETWORK, {"dE/dout_o1": wrong, "dE/dw5": dw5_forgot_sigma})
    assert items["dE/dw5"].verdict == "incorrect"
    dw5_off = wrong * o1 * (1 - o1) * h1 * 1.01   # 1 % off what their own number gives
    assert grade(NETWORK, {"dE/dout_o1": wrong, "dE/dw5": dw5_off})["dE/dw5"].verdict == "incorrect"


@pytest.mark.parametrize(("carried", "value"), [
    ("dE/dout_o1", 0.0),   # 0 zeroes every later step: ∂E/∂w5 = 0 proves nothing
    ("dE/din_o1", 1.0),    # 1 copies: ∂E/∂w5 = 1·out_h1 is just out_h1
])
def test_no_follow_through_when_the_carried_number_makes_the_step_trivial(carried, value):
    right = seed003()
    later = 0.0 if value == 0 else right["out_h1"]
    items = grade(NETWORK, {carried: f"{value:.4f}", "dE/dw5": later if later else "0.0000"})
    assert items[carried].verdict == "incorrect"
    assert items["dE/dw5"].verdict == "incorrect"


# -- diagnosis per layer and per connection ---------------------------------------------------
def test_sigma_prime_forgotten_at_the_hidden_layer_only():
    student = seed003(hidden_prime=lambda h: np.ones_like(h))
    answers = {f"dE/dw{i}": student[f"dE/dw{i}"] for i in range(1, 9)}
    items = grade(NETWORK, answers)
    for i in range(5, 9):
        assert items[f"dE/dw{i}"].verdict == "correct"  # the output layer is right
    for i in range(1, 5):
        d = items[f"dE/dw{i}"].diagnosis
        assert d is not None and d.code == "missing_activation_derivative", i
        assert "in_h" in d.message


def test_the_other_weight_of_the_same_unit():
    # ∂E/∂out_h2 = w7·δ_o1 + w7·δ_o2: w7 where w8 belongs (both leave out_h2).
    student = seed003(dout_h=lambda d: np.array([W_OUT[0, 0] * d[0] + W_OUT[1, 0] * d[1],
                                                 W_OUT[0, 1] * d[0] + W_OUT[0, 1] * d[1]]))
    items = grade(NETWORK, {k: student[k] for k in ("dE/dw1", "dE/dw2", "dE/dw3", "dE/dw4")})
    assert items["dE/dw1"].verdict == items["dE/dw3"].verdict == "correct"
    for key in ("dE/dw2", "dE/dw4"):
        d = items[key].diagnosis
        assert d is not None and d.code == "wrong_weight", key
        assert "w7" in d.message and "w8" in d.message


TANH = """
title = "2-2-1: tanh hidden, sigmoid output"
[network]
inputs = [0.4, -0.7]
targets = [0.2]
[[network.layers]]
units = 2
activation = "tanh"
weights = [[0.3, -0.6], [0.8, 0.2]]
[[network.layers]]
units = 1
activation = "sigmoid"
weights = [[0.7, -0.3]]
"""


def test_tanh_prime_taken_as_a_times_one_minus_a():
    x, y = np.array([0.4, -0.7]), 0.2
    w1 = np.array([[0.3, -0.6], [0.8, 0.2]])
    w2 = np.array([0.7, -0.3])
    a = np.tanh(w1 @ x)
    o = sigmoid(w2 @ a)
    delta_o = (o - y) * o * (1 - o)
    delta_h = w2 * delta_o * a * (1 - a)   # the student's tanh': a(1 − a), the sigmoid's
    g = np.outer(delta_h, x)               # io naming: w1 = (h1 ← x1), w2 = (h1 ← x2), w3, w4 for h2
    answers = {"dE/dw1": g[0, 0], "dE/dw2": g[0, 1], "dE/dw3": g[1, 0], "dE/dw4": g[1, 1]}
    for key, item in grade(loads(TANH, "tanh.toml"), answers).items():
        assert item.diagnosis is not None and item.diagnosis.code == "wrong_activation_derivative", key
        assert "a·(1 - a)" in item.diagnosis.message


DEEP = """
title = "2-2-2-2 sigmoid network"
[network]
inputs = [0.9, 0.35]
targets = [0.05, 0.75]
[[network.layers]]
units = 2
activation = "sigmoid"
weights = [[0.5, -0.35], [-0.2, 0.65]]
[[network.layers]]
units = 2
activation = "sigmoid"
weights = [[0.6, -0.45], [0.25, 0.55]]
[[network.layers]]
units = 2
activation = "sigmoid"
weights = [[0.8, -0.6], [-0.25, 0.45]]
"""


def test_one_layer_transposed():
    x, y = np.array([0.9, 0.35]), np.array([0.05, 0.75])
    w = [np.array([[0.5, -0.35], [-0.2, 0.65]]), np.array([[0.6, -0.45], [0.25, 0.55]]),
         np.array([[0.8, -0.6], [-0.25, 0.45]])]
    a1 = sigmoid(w[0] @ x)
    a2 = sigmoid(w[1] @ a1)
    a3 = sigmoid(w[2] @ a2)
    d3 = (a3 - y) * a3 * (1 - a3)
    d2 = (w[2] @ d3) * a2 * (1 - a2)      # the output layer's matrix used without transposing
    d1 = (w[1].T @ d2) * a1 * (1 - a1)    # the middle layer is done right
    g1, g2 = np.outer(d1, x), np.outer(d2, a1)
    # io naming with two hidden layers: w1..w4 first layer, w5..w8 second, row by row (unit, input).
    answers = {"dE/dw5": g2[0, 0], "dE/dw6": g2[0, 1], "dE/dw1": g1[0, 0], "dE/dw4": g1[1, 1]}
    for key, item in grade(loads(DEEP, "deep.toml"), answers).items():
        assert item.diagnosis is not None and item.diagnosis.code == "wrong_weight", key


def test_the_students_right_gradient_decides_update_sign():
    # w5 + η·∂E/∂w5 is also what a flipped loss derivative gives.  This student slipped on the
    # sign of ∂E/∂w6 (so a sign error is "seen"), but their own ∂E/∂w5 is right: a flipped loss
    # derivative would have changed it, so w5+ is the update's sign (main said sign_error).
    right = seed003()
    w5_plus = 0.1 + ETA * right["dE/dw5"]   # w + η·g, with g right
    items = grade(NETWORK, {"dE/dw5": right["dE/dw5"], "dE/dw6": -right["dE/dw6"], "w5+": w5_plus})
    assert items["dE/dw5"].verdict == "correct"
    assert items["w5+"].diagnosis is not None and items["w5+"].diagnosis.code == "update_sign"
    alone = grade(NETWORK, {"dE/dw5": right["dE/dw5"], "w5+": w5_plus})
    assert alone["w5+"].diagnosis.code == "update_sign"


def test_one_significant_digit_gets_no_diagnosis():
    # Mazur's ∂E/∂w1 = 0.000438…, ∂E/∂w2 = 0.000877…: 0.0007 is a guess, though it lies within
    # half a unit of some mistake's result (main said missing_path and stale_parameters).
    items = grade(MAZUR, {"dE/dw1": "0.0007", "dE/dw2": "0.0007"})
    for item in items.values():
        assert item.verdict == "incorrect" and item.diagnosis is None
        assert "significant digits" in item.note


SOFTMAX = """
title = "3 inputs, 3-class softmax, cross-entropy"
[network]
inputs = [0.6, -0.4, 0.25]
targets = [0.0, 0.0, 1.0]
naming = "layered"
loss = "cross_entropy"
[[network.layers]]
units = 3
activation = "softmax"
weights = [[0.55, -0.25, 0.3], [-0.4, 0.6, 0.2], [0.35, 0.15, -0.5]]
"""


def test_the_textbook_softmax_cross_entropy_formula_is_accepted():
    # ∂(−Σ y·log softmax(z))/∂z_k = a_k − y_k when Σy = 1 (Bishop, PRML eq. 4.109), here checked
    # with NumPy: a = softmax(W x), y = (0, 0, 1).
    w = np.array([[0.55, -0.25, 0.3], [-0.4, 0.6, 0.2], [0.35, 0.15, -0.5]])
    z = w @ np.array([0.6, -0.4, 0.25])
    a = np.exp(z) / np.exp(z).sum()
    items = grade(loads(SOFTMAX, "softmax.toml"), {"dL/dz1_3": "a1_3 - y3", "dL/dz1_1": "a1_1 - y1",
                                                  "dL/dz1_2": "a1_2 + y3"})
    assert items["dL/dz1_3"].verdict == "correct"
    assert items["dL/dz1_3"].expected == pytest.approx(a[2] - 1)
    assert items["dL/dz1_1"].verdict == "correct"
    assert items["dL/dz1_2"].verdict == "incorrect"   # a2 + 1 is not a2 − 0


def test_cli_reports_consistent_in_json_and_text(tmp_path):
    # The worked example of docs/checking.md: ∂E/∂out_o1 doubled (the ½ dropped), then ∂E/∂w5
    # and w5+ done right from it (NumPy: 0.4939·out_o1·(1 − out_o1)·out_h1, w5 − 10·that).
    right = seed003()
    wrong = float(f"{2 * right['dE/dout_o1']:.4g}")
    dw5 = float(f"{wrong * right['out_o1'] * (1 - right['out_o1']) * right['out_h1']:.4g}")
    path = tmp_path / "student.toml"
    path.write_text(sheet({"dE/dout_o1": wrong, "dE/dw5": dw5, "w5+": 0.1 - ETA * dw5}))
    result = run_cli("check", str(NETWORK), str(path), "--format", "json")
    assert result.returncode == 1, result.stderr  # not every answer is correct
    items = {i["key"]: i for i in json.loads(result.stdout)["items"]}
    assert items["dE/dout_o1"]["diagnosis"]["code"] == "loss_constant"
    assert [items[k]["verdict"] for k in ("dE/dw5", "w5+")] == ["consistent", "consistent"]
    assert json.loads(result.stdout)["score"]["points"] == 2  # both consistent answers earn their point
    text = run_cli("check", str(NETWORK), str(path)).stdout
    assert "consistent" in text and "Consistent with your ∂E/∂out_o1 = 0.4939" in text
