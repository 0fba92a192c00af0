"""Diagnosis: every code of SPEC §4 is found from a mistake committed by hand.

Each wrong answer is computed here with hand-written NumPy formulas that make
one mistake the way a student would (independently of explain.diagnose), then
graded; the diagnosis must name that mistake.
"""

from __future__ import annotations

import math

import pytest

from explain.check import Grader, check, parse_answers
from explain.diagnose import CODES, catalogue, rounded_program
from explain.graph import Graph
from explain.problem import loads

from .conftest import EXAMPLES

NETWORK = EXAMPLES / "seed003_network.toml"
X1, X2, Y1, Y2 = 0.5, 0.3, 0.23, -0.07
W0 = {"w1": 0.2, "w2": -0.4, "w3": 0.5, "w4": 0.6, "w5": 0.1, "w6": -0.5, "w7": -0.3, "w8": 0.8}
ETA = 10.0

#: A small data problem (seed 003's linear model, fixed start) for mean/sum, stale parameters and the update.
LINEAR = """
title = "y = w*x + b, mean squared error"
reduction = "mean"
[data]
x = [1.0, 2.0, 3.0]
y = [2.0, 4.0, 6.0]
[parameters]
w = 0.5
b = 0.1
[forward]
y_pred = "w*x + b"
l = "(y_pred - y)**2"
[train]
optimizer = "gd"
learning_rate = 0.01
steps = 1
"""


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def student(w: dict[str, float] | None = None, *, act_prime=None, loss_prime=None, hidden=None,
            stale: bool = False, rnd=lambda v: v) -> dict[str, float]:
    """Seed 003's network backpropagated by hand, with pluggable wrong rules.

    ``act_prime(out, z)`` is the student's σ'(z); ``loss_prime(out, y)`` their ∂E/∂out;
    ``hidden(d_o1, d_o2, h1, h2, w)`` returns their (∂E/∂out_h1, ∂E/∂out_h2);
    ``stale`` updates w5..w8 before backpropagating into the hidden layer; ``rnd``
    rounds every intermediate number.
    """
    w = dict(W0 if w is None else w)
    act_prime = act_prime or (lambda out, z: out * (1 - out))
    loss_prime = loss_prime or (lambda out, y: out - y)
    hidden = hidden or (lambda d1, d2, h1, h2, w: (d1 * w["w5"] + d2 * w["w6"], d1 * w["w7"] + d2 * w["w8"]))
    z_h1 = rnd(w["w1"] * X1 + w["w3"] * X2)
    h1 = rnd(sig(z_h1))
    z_h2 = rnd(w["w2"] * X1 + w["w4"] * X2)
    h2 = rnd(sig(z_h2))
    z_o1 = rnd(w["w5"] * h1 + w["w7"] * h2)
    o1 = rnd(sig(z_o1))
    z_o2 = rnd(w["w6"] * h1 + w["w8"] * h2)
    o2 = rnd(sig(z_o2))
    d_o1 = rnd(rnd(loss_prime(o1, Y1)) * rnd(act_prime(o1, z_o1)))
    d_o2 = rnd(rnd(loss_prime(o2, Y2)) * rnd(act_prime(o2, z_o2)))
    g = {"w5": d_o1 * h1, "w7": d_o1 * h2, "w6": d_o2 * h1, "w8": d_o2 * h2}
    used = dict(w)
    if stale:
        used.update({p: w[p] - ETA * g[p] for p in ("w5", "w6", "w7", "w8")})
    e_h1, e_h2 = hidden(d_o1, d_o2, h1, h2, used)
    d_h1 = rnd(rnd(e_h1) * rnd(act_prime(h1, z_h1)))
    d_h2 = rnd(rnd(e_h2) * rnd(act_prime(h2, z_h2)))
    g.update({"w1": d_h1 * X1, "w3": d_h1 * X2, "w2": d_h2 * X1, "w4": d_h2 * X2})
    return g


def loss(w: dict[str, float]) -> float:
    h1, h2 = sig(w["w1"] * X1 + w["w3"] * X2), sig(w["w2"] * X1 + w["w4"] * X2)
    o1, o2 = sig(w["w5"] * h1 + w["w7"] * h2), sig(w["w6"] * h1 + w["w8"] * h2)
    return 0.5 * (o1 - Y1) ** 2 + 0.5 * (o2 - Y2) ** 2


def diagnose(answers: dict[str, float], problem=NETWORK, digits: int = 4) -> dict[str, object]:
    text = "[answers]\n" + "".join(f'"{k}" = {v:.{digits}g}\n' for k, v in answers.items())
    report = check(problem, parse_answers(text))
    for item in report.items:
        assert item.verdict == "incorrect", f"{item.key}: the hand-made mistake gives the right answer"
    return {i.key: i.diagnosis for i in report.items}


def codes(answers: dict[str, float], **kwargs: object) -> set[str]:
    return {d.code if d else None for d in diagnose(answers, **kwargs).values()}  # type: ignore[union-attr]


# -- one test per code ---------------------------------------------------------------------
def test_missing_activation_derivative():
    g = student(act_prime=lambda out, z: 1.0)
    assert codes({"dE/dw5": g["w5"], "dE/dw1": g["w1"]}) == {"missing_activation_derivative"}


@pytest.mark.parametrize("wrong", [
    lambda out, z: out,                    # σ'(z) taken as σ(z)
    lambda out, z: z,                      # ... as z
    lambda out, z: z * (1 - z),            # the formula applied to z instead of σ(z)
    lambda out, z: sig(out) * (1 - sig(out)),  # σ' evaluated at the output
])
def test_wrong_activation_derivative(wrong):
    g = student(act_prime=wrong)
    found = diagnose({"dE/dw6": g["w6"], "dE/dw2": g["w2"]})
    assert {d.code for d in found.values()} == {"wrong_activation_derivative"}
    assert "instead of the derivative" in found["dE/dw6"].message


def test_sign_error():
    g = student(loss_prime=lambda out, y: y - out)
    found = diagnose({"dE/dw7": g["w7"], "dE/dw4": g["w4"]})
    assert {d.code for d in found.values()} == {"sign_error"}
    assert found["dE/dw7"].suggested_step == "backward: dE/dout_o1"


def test_sign_error_names_the_squared_difference_only_where_there_is_one():
    g = student(loss_prime=lambda out, y: y - out)
    found = diagnose({"dE/dw7": g["w7"]})
    assert "prediction minus target" in found["dE/dw7"].message


def test_sign_error_of_a_negative_derivative_reads_as_its_negation():
    # L = 1/f, f = 3w: dL/dw = -3/f² (by hand) = -1/12 at w = 2; the student flips the sign.
    problem = loads('[parameters]\nw = 2.0\n[forward]\nf = "3*w"\nL = "1/f"\n')
    report = check(problem, parse_answers('[answers]\n"dL/dw" = 0.08333\n'))
    item = report.items[0]
    assert item.verdict == "incorrect" and item.diagnosis.code == "sign_error"
    message = item.diagnosis.message
    # ∂L/∂f = -1/f² = -L²: the wrong one is +L² (printed without a double minus).
    assert "--" not in message and "taken as L² instead of -L²" in message
    assert "prediction minus target" not in message  # there is no target here


@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_loss_constant(factor):
    g = student(loss_prime=lambda out, y: factor * (out - y))
    assert codes({"dE/dw8": g["w8"], "dE/dw3": g["w3"]}) == {"loss_constant"}


def test_missing_path():
    # Only the path through o1 is followed back into h1 and h2.
    g = student(hidden=lambda d1, d2, h1, h2, w: (d1 * w["w5"], d1 * w["w7"]))
    found = diagnose({"dE/dw1": g["w1"], "dE/dw2": g["w2"]})
    assert {d.code for d in found.values()} == {"missing_path"}
    assert "in_o2" in found["dE/dw1"].message


def test_activation_instead_of_weight():
    g = student(hidden=lambda d1, d2, h1, h2, w: (d1 * h1 + d2 * h1, d1 * h2 + d2 * h2))
    found = diagnose({"dE/dw3": g["w3"]})
    assert found["dE/dw3"].code == "activation_instead_of_weight"
    assert "out_h1" in found["dE/dw3"].message and "w5" in found["dE/dw3"].message


def test_wrong_weight_swapped_indices():
    # The weight matrix read by rows instead of columns: w7 used for h1 → o2, w6 for h2 → o1.
    g = student(hidden=lambda d1, d2, h1, h2, w: (d1 * w["w5"] + d2 * w["w7"], d1 * w["w6"] + d2 * w["w8"]))
    found = diagnose({"dE/dw1": g["w1"], "dE/dw4": g["w4"]})
    assert {d.code for d in found.values()} == {"wrong_weight"}


def test_stale_parameters_in_backprop():
    g = student(stale=True)
    found = diagnose({"dE/dw1": g["w1"], "w2+": W0["w2"] - ETA * g["w2"]})
    assert {d.code for d in found.values()} == {"stale_parameters"}


def test_update_sign():
    g = student()
    w_plus = {p: W0[p] + ETA * g[p] for p in W0}
    assert codes({"w5+": w_plus["w5"], "E+": loss(w_plus)}) == {"update_sign"}


def test_early_rounding():
    g = student(rnd=lambda v: round(v, 3))
    assert codes({"dE/dw1": g["w1"], "dE/dw2": g["w2"]}, digits=3) == {"early_rounding"}


def test_update_step_explained_by_the_students_own_gradients():
    # A flipped loss derivative gives the same w5+ as "w + η·g": the student's gradient decides.
    # Their dE/dw5 is wrong (sign_error), and w5+ = w5 − η·(their dE/dw5) is the update done
    # right on their own number: follow-through makes it consistent, not a second mistake.
    g = student(loss_prime=lambda out, y: y - out)
    text = f'[answers]\n"dE/dw5" = {g["w5"]:.4g}\n"w5+" = {W0["w5"] - ETA * g["w5"]:.4g}\n'
    items = {i.key: i for i in check(NETWORK, parse_answers(text)).items}
    assert items["dE/dw5"].diagnosis.code == "sign_error"
    assert items["w5+"].verdict == "consistent"


# -- the data problem ------------------------------------------------------------------------
def linear_grads(w: float, b: float, mean: bool = True) -> tuple[float, float]:
    xs, ys = (1.0, 2.0, 3.0), (2.0, 4.0, 6.0)
    gw = sum(2 * (w * x + b - y) * x for x, y in zip(xs, ys))
    gb = sum(2 * (w * x + b - y) for x, y in zip(xs, ys))
    return (gw / 3, gb / 3) if mean else (gw, gb)


def test_mean_vs_sum():
    gw, gb = linear_grads(0.5, 0.1, mean=False)
    found = diagnose({"dl/dw": gw, "dl/db": gb}, problem=loads(LINEAR, "linear.toml"))
    assert {d.code for d in found.values()} == {"mean_vs_sum"}
    assert "factor of 3" in found["dl/dw"].message


def test_stale_parameters_one_after_the_other():
    gw, _ = linear_grads(0.5, 0.1)
    w_new = 0.5 - 0.01 * gw
    _, gb_stale = linear_grads(w_new, 0.1)  # b's gradient computed with w already updated
    found = diagnose({"dl/db": gb_stale, "b+": 0.1 - 0.01 * gb_stale}, problem=loads(LINEAR, "linear.toml"))
    assert {d.code for d in found.values()} == {"stale_parameters"}


def test_update_sign_on_data():
    gw, gb = linear_grads(0.5, 0.1)
    found = diagnose({"w+": 0.5 + 0.01 * gw, "b+": 0.1 + 0.01 * gb}, problem=loads(LINEAR, "linear.toml"), digits=6)
    assert {d.code for d in found.values()} == {"update_sign"}
    assert found["w+"].suggested_step == "update: w+"


# -- pairs, honesty, the catalogue ---------------------------------------------------------------
def test_two_mistakes_together():
    # A pair is believed when the student's other answers show it too (here the same pair twice).
    g = student(act_prime=lambda out, z: 1.0, loss_prime=lambda out, y: y - out)
    found = diagnose({"dE/dw5": g["w5"], "dE/dw8": g["w8"]})
    for key in ("dE/dw5", "dE/dw8"):
        assert set(found[key].codes) == {"missing_activation_derivative", "sign_error"}
        assert found[key].message.startswith("Two mistakes together")


def test_a_pair_alone_is_not_believed():
    # The same number alone: a pair of mistakes out of hundreds matches a random number too often
    # (benchmarks/grading.py), so with nothing else from the student it gets no diagnosis.
    g = student(act_prime=lambda out, z: 1.0, loss_prime=lambda out, y: y - out)
    assert diagnose({"dE/dw5": g["w5"]})["dE/dw5"] is None


def test_nothing_matches_says_so():
    report = check(NETWORK, {"dE/dw5": 0.5123})
    item = report.items[0]
    assert item.verdict == "incorrect" and item.diagnosis is None
    assert "No mistake of the catalogue" in item.note


def test_right_answers_get_no_diagnosis():
    g = student()
    report = check(NETWORK, parse_answers("[answers]\n" + "".join(f'"dE/d{p}" = {v:.5g}\n' for p, v in g.items())))
    assert report.passed and all(i.diagnosis is None for i in report.items)


def test_catalogue_covers_every_code():
    network = Graph.from_problem(loads(NETWORK.read_text(), "n.toml"))
    linear = Graph.from_problem(loads(LINEAR, "l.toml"))
    found = {m.code for m in catalogue(network, ETA)} | {m.code for m in catalogue(linear, 0.01)}
    assert found == set(CODES)


def test_rounded_program_rounds_intermediates_only():
    graph = Graph.from_problem(loads(NETWORK.read_text(), "n.toml"))
    ev = rounded_program(graph, ("dec", 2)).evaluate()
    assert ev.values["out_h1"] == 0.56 and ev.values["in_h1"] == 0.25
    g_in_h1 = ev.adjoints["in_h1"]
    assert g_in_h1 == round(g_in_h1, 2)
    ev = rounded_program(graph, ("sig", 3)).evaluate()
    assert ev.adjoints["w3"] == ev.adjoints["in_h1"] * 0.3  # a final answer is not rounded again


def test_grader_reuses_the_catalogue_results():
    grader = Grader(NETWORK)
    first = grader.singles
    g = student(act_prime=lambda out, z: 1.0)
    for _ in range(3):
        item = grader.grade(parse_answers(f'[answers]\n"dE/dw1" = {g["w1"]:.4g}\n')).items[0]
        assert item.diagnosis.code == "missing_activation_derivative"
    assert grader.singles is first
