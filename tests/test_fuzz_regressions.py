"""Inputs that benchmarks/fuzz.py found crashing or hanging, each kept as a test (issue 9)."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import sympy as sp

import explain
import explain.render.json as render_json
from explain.cli import main

from .conftest import EXAMPLES


def test_an_integer_answer_beyond_float64_is_unreadable_not_a_crash(tmp_path, capsys):
    # A TOML integer of 401 digits (10**400) is valid TOML but no float: it was an OverflowError (exit 3).
    # It is graded like 1e400: that answer alone cannot be read, the others are graded (exit 1: one is wrong).
    answers = tmp_path / "s1.toml"
    answers.write_text('[answers]\n"dL/dw" = 1' + "0" * 400 + '\n"dL/db" = -1' + "0" * 400 + "\n",
                       encoding="utf-8")
    report = tmp_path / "r.csv"
    rc = main(["check", str(EXAMPLES / "seed003_linear.toml"), str(answers), "--report", str(report)])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert "internal error" not in err
    rows = report.read_text(encoding="utf-8").splitlines()[1:]
    assert len(rows) == 2 and all(",unparseable," in row for row in rows), rows


def test_an_ordinary_integer_answer_is_still_graded(tmp_path, capsys):
    # The other direction: an integer in float64's range stays a number (dL/db of seed003_linear at its seed's
    # parameters is not 7, so it is graded incorrect, not unreadable).
    answers = tmp_path / "s1.toml"
    answers.write_text('[answers]\n"dL/db" = 7\n', encoding="utf-8")
    report = tmp_path / "r.csv"
    main(["check", str(EXAMPLES / "seed003_linear.toml"), str(answers), "--report", str(report)])
    assert ",incorrect," in report.read_text(encoding="utf-8")


MAX_OVER_A_POWER = "max(((y)*(b))-(log((b)*(x))), (log(x))**(100))"


def test_json_closed_forms_past_their_budget_are_substituted_as_written(monkeypatch, tmp_path, capsys):
    # `grad --format json` substituted the stages back with SymPy's subs, which for this Max expanded
    # (log x)**100 as a polynomial for over 10 s.  Past the budget the same formula is written unsimplified.
    # Forced here with a budget of a microsecond, then checked against its own value: the closed form,
    # evaluated by SymPy at the point, equals the gradient (which autograd-checked code computed).
    monkeypatch.setattr(render_json, "CLOSED_FORM_BUDGET", 1e-6)
    out = tmp_path / "g.json"
    at = {"x": 3.0, "b": 0.5, "y": 2.0}
    rc = main(["grad", MAX_OVER_A_POWER, "--format", "json", "--at", "x=3,b=0.5,y=2", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    result = json.loads(out.read_text(encoding="utf-8"))
    symbols = {name: sp.Symbol(name) for name in at}
    for name, gradient in result["gradients"].items():
        form = sp.sympify(gradient["expr"], locals={"Heaviside": sp.Heaviside, **symbols})  # our own output
        value = float(form.subs({symbols[k]: v for k, v in at.items()}))
        assert math.isclose(value, gradient["value"], rel_tol=1e-12, abs_tol=1e-12), (name, gradient)


def test_json_closed_form_of_a_max_over_a_power_is_quick(capsys, tmp_path):
    # The fuzzer's input itself, at x = 1e308: exits 0 in a few seconds (it took over 10 s, 24 s profiled).
    out = tmp_path / "g.json"
    start = time.monotonic()
    rc = main(["grad", MAX_OVER_A_POWER, "--format", "json", "--at", "x=1e308,b=1e-8,y=2", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert time.monotonic() - start < 8
    values = [g["value"] for g in json.loads(out.read_text(encoding="utf-8"))["gradients"].values()]
    assert all(math.isfinite(v) for v in values)


def test_a_product_of_200_factors_prints_in_seconds(tmp_path, capsys):
    # Printing each step rebuilt the map of every number of the derivation: quadratic, over 10 s for
    # 201 sines (17 s profiled).  Expected: d/dx ∏ sin(x+i) = ∏ sin(x+i) · Σ cot(x+i), in NumPy.
    n = 201
    expr = "*".join(f"sin(x+{i})" for i in range(n))
    out = tmp_path / "g.txt"
    start = time.monotonic()
    assert main(["grad", expr, "--at", "x=1", "-o", str(out)]) == 0, capsys.readouterr().err
    assert time.monotonic() - start < 10
    d = explain.grad(expr, at={"x": 1.0})
    angles = 1.0 + np.arange(n)
    product = np.prod(np.sin(angles))
    assert math.isclose(d.loss_value, product, rel_tol=1e-9)
    assert math.isclose(d.gradients["x"].value, product * np.sum(1 / np.tan(angles)), rel_tol=1e-9)


def test_a_constant_stage_divided_by_is_a_clean_error_in_every_command(tmp_path, capsys):
    # `p = "0"` compiled to a Python 0 (not a NumPy number like the leaves), so the local derivative
    # 1/p of log(p) raised ZeroDivisionError: exit 3 (found by tests/test_fuzz.py).  log(0) is -inf.
    problem = tmp_path / "p.toml"
    problem.write_text('[values]\nx = 0.0\ny = 0.0\n[parameters]\nw = 0.0\n[forward]\np = "0"\n'
                       'l = "-y*log(p) - (1-y)*log(1-p)"\n', encoding="utf-8")
    for command in (["solve"], ["verify"], ["train", "--quiet"], ["solve", "--format", "json"]):
        assert main([command[0], str(problem), *command[1:]]) == 2
        err = capsys.readouterr().err
        assert "internal error" not in err and "[forward] l" in err and "log of 0" in err, err


def test_a_constant_stage_where_it_is_finite_still_computes(tmp_path, capsys):
    # The other direction: p = 0.25 as a constant stage; l = -log(1 - (w*x + p)) at w = 0, x = 0.5, y = 0
    # is -log(0.75), and dl/dw = x/(1 - q) = 0.5/0.75 (by hand).
    problem = tmp_path / "p.toml"
    problem.write_text('[values]\nx = 0.5\ny = 0.0\n[parameters]\nw = 0.0\n[forward]\np = "0.25"\nq = "w*x + p"\n'
                       'l = "-y*log(q) - (1-y)*log(1-q)"\n', encoding="utf-8")
    out = tmp_path / "s.json"
    assert main(["solve", str(problem), "--format", "json", "-o", str(out)]) == 0, capsys.readouterr().err
    d = explain.derive(explain.load(str(problem)))
    assert math.isclose(d.loss_value, -math.log(0.75), rel_tol=1e-12)
    assert math.isclose(d.gradients["w"].value, 0.5 / 0.75, rel_tol=1e-12)


def test_a_subnormal_answer_with_many_digits_is_graded(tmp_path, capsys):
    # 1.1125369292536007e-308: the place of its last digit, 1e-324, underflows to 0 and its log10 raised
    # "math domain error" (exit 3; found by tests/test_fuzz.py).  It is a number, and a wrong one
    # (dE/dw1 of seed003_network is about -0.0084, the value in tests/test_check.py).
    answers = tmp_path / "s1.toml"
    answers.write_text('[answers]\n"dE/dw1" = 1.1125369292536007e-308\n"dE/dw5" = 0.03463298929\n', encoding="utf-8")
    report = tmp_path / "r.csv"
    rc = main(["check", str(EXAMPLES / "seed003_network.toml"), str(answers), "--report", str(report)])
    err = capsys.readouterr().err
    assert rc == 1 and "internal error" not in err, err
    rows = report.read_text(encoding="utf-8").splitlines()
    assert ",dE/dw1,1.1125369292536007e-308," in rows[1] and ",incorrect," in rows[1]
    assert ",correct," in rows[2]  # the right answer beside it is still graded right


def test_a_literal_zero_divisor_inside_an_expression_is_a_clean_error(tmp_path, capsys):
    # `leaky_relu(y, 0.01)/0.0` compiled to Python's `1.0 / 0.0`: ZeroDivisionError, exit 3 (fuzz, seed 0).
    expr = "1e10**2.0-(710.0)/((leaky_relu(y, 0.01)/0.0*y)*(y))"
    out = tmp_path / "g.tex"
    rc = main(["grad", expr, "--format", "latex", "--at", "y=1e-8", "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "division by zero" in err and "internal error" not in err, err
    assert not out.exists()


def test_a_literal_base_that_is_finite_still_computes():
    # The other direction: 2**w and 1/(0.5*w) with literal numbers are computed (by hand: d/dw 2**w = ln2·2**w,
    # d/dw 1/(0.5 w) = -2/w²; at w = 3: 8 ln 2 and -2/9).
    d = explain.grad("2**w + 1/(0.5*w)", at={"w": 3.0})
    assert math.isclose(d.loss_value, 8 + 2 / 3, rel_tol=1e-14)
    assert math.isclose(d.gradients["w"].value, 8 * math.log(2) - 2 / 9, rel_tol=1e-13)


DEEP_NEST = ("relu(log(relu(log(exp(sigmoid(tanh(log(abs(sqrt(abs(sigmoid(tanh(tanh(relu(softplus(sqrt(cos(log(cos(log("
             "softplus(sqrt(sigmoid(cos(abs(exp(tanh(tanh(sqrt(cos(log(sin(sin(sin(sqrt(cos(softplus(softplus(exp(sin(x"
             + ")" * 41)


def test_a_deep_nest_of_functions_under_abs_parses_quickly():
    # SymPy's Abs asked whether its argument was real, through 40 nested functions: 2 CPU-seconds to parse
    # (over 10 s on a loaded machine; fuzz, seed 0).  CPU time, not wall time, so the load does not matter.
    from explain.errors import ExplainError

    start = time.process_time()
    try:
        explain.grad(DEEP_NEST, at={"x": 3.0})
    except ExplainError as exc:  # sqrt of a negative cosine on the way: a clean error
        assert "square root of a negative number" in str(exc)
    assert time.process_time() - start < 1.0


def test_abs_kept_as_written_still_differentiates():
    # d/dw |w·x| = sign(w·x)·x = -3 at w = -2, x = 3 (by hand); abs of a number still folds.
    d = explain.grad("abs(w*x) + abs(-3)", at={"w": -2.0, "x": 3.0})
    assert d.loss_value == 9.0
    assert d.gradients["w"].value == -3.0
