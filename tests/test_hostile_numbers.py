"""Issue 9, the numbers: a value that is not a finite real number is an error, never a result.

Every ordinary number that used to give a traceback or a silent inf/nan/wrong
value is here, through the library (``explain.grad``, ``explain.solve``,
``explain.check``), through the command line in-process (``main``, which lets
any unexpected exception escape and fail the test) and, for a few, through a
real ``python -m explain`` subprocess (``run_cli``) to see exit code 2 and no
traceback on stderr.  Expected numbers are hand-derived or computed with mpmath
at 50 digits, as each test says.
"""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp

import explain
from explain.cli import main
from explain.compile import CodePrinter
from explain.errors import ExplainError

from .conftest import run_cli

# (expression, --at, words the message must contain: the step, the value, why).  "re:" marks a
# regular expression: stage names differ between staging from SymPy's tree (add1, mul1) and from
# the written tree (sub1, neg1), and the message must hold with either.
BROKEN = [
    ("x/(x-1)", "x=1", [r"re:stage `f = x/(add|sub)1` is inf at (add|sub)1 = 0, x = 1: division by zero"]),
    ("log(x-1)", "x=1", [r"re:stage `f = log\((add|sub)1\)` is -inf at (add|sub)1 = 0: log of 0"]),
    ("((x+1)**100)**100", "x=2", [r"re:stage `f = \w+\*\*100(00)?` is inf at \w+ = [0-9.e+]+: .* overflows float64"]),
    ("x**(x+2000)", "x=2", ["x**add1", "is inf", "add1 = 2002", "overflows float64"]),
    ("(-x)**0.5", "x=1", [r"re:`f = (mul|neg)1\*\*0\.5` is nan at (mul|neg)1 = -1: square root of a negative number"]),
    ("(-2)**x", "x=1", ["(-2)**x", "not a real number"]),
    ("x*exp(710.0)", "x=1", ["2.234e+308", "outside float64's range"]),
    ("x*1e308*10", "x=1", ["1.000e+309", "outside float64's range"]),
    ("x*max(x, -(-1e308**pi))", "x=1", ["4.079e+967", "outside float64's range"]),
    ("x*sigmoid(-exp(1e308))", "x=1", ["an exponent of", "digits", "outside float64's range"]),
    ("x*cos(y/sqrt(-1))", "x=1,y=1", ["I is not a real number"]),
    ("x*log(-2)", "x=1", ["log(2) + I*pi is not a real number"]),
    ("x*(1e308+1e308)", "x=1", ["2.000e+308", "outside float64's range"]),
    ("x*(-8-e)**tanh(0.5)", "x=1", ["not a real number"]),
    ("x*1e-320**(-1-pi)", "x=1", ["outside float64's range"]),
    ("abs((-8/0.5)**sqrt(x))", "x=2", ["(-16.0)**(sqrt(x))", "not a real number"]),
    ("x*exp(710)", "x=1", [r"re: = (x\*)?exp\(710\)` is inf.*: exp\(710\) overflows"]),
    ("0**x", "x=1", ["∂f/∂x", "is nan"]),
    ("x*(-8)**(2/3)", "x=1", ["(-8)**(2/3)", "not a real number", "8**(2/3)"]),
    ("sqrt(relu(x))", "x=-1", ["∂f/∂relu1", "is inf", "division by zero"]),
    ("exp(log(x))", "x=-1.7", ["log1 = log(x)", "is nan", "x = -1.7", "log of a negative number"]),
    ("log(-x)", "x=pi/4", [r"re:`f = log\((mul|neg)1\)` is nan at (mul|neg)1 = -0.785398: log of a negative number"]),
    ("sqrt(x)**2", "x=-1", ["sqrt1 = sqrt(x)", "square root of a negative number"]),
]


def _has(text: str, word: str) -> bool:
    return re.search(word[3:], text) is not None if word.startswith("re:") else word in text


def _at(text: str) -> dict[str, str]:
    return dict(part.split("=") for part in text.split(","))


@pytest.mark.parametrize(("expr", "at", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_library_raises_explain_error_naming_the_step(expr: str, at: str, words: list[str]) -> None:
    with pytest.raises(ExplainError) as caught:
        explain.grad(expr, at=_at(at))
    for word in words:
        assert _has(str(caught.value), word), str(caught.value)


@pytest.mark.parametrize(("expr", "at", "words"), BROKEN, ids=[b[0] for b in BROKEN])
def test_grad_command_exits_2_naming_the_step(expr: str, at: str, words: list[str], capsys) -> None:
    assert main(["grad", expr, "--at", at]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    for word in words:
        assert _has(captured.err, word), captured.err


@pytest.mark.parametrize(("expr", "at"), [("x/(x-1)", "x=1"), ("(-x)**0.5", "x=1"), ("x*exp(710.0)", "x=1"),
                                         ("0**x", "x=1")])
def test_grad_subprocess_exits_2_without_traceback(expr: str, at: str) -> None:
    result = run_cli("grad", expr, "--at", at)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("explain: error:")


@pytest.mark.parametrize(("expr", "at", "value", "grads"), [
    # Hand-derived: 8**(2/3) = 4, the real reading of (-8)**(2/3) the message suggests.
    ("x*8**(2/3)", {"x": 1}, 4.0, {"x": 4.0}),
    # Hand-derived: exp(log(x)) = x where log(x) is defined; derivative 1.
    ("exp(log(x))", {"x": 1.7}, 1.7, {"x": 1.0}),
    # Hand-derived: sqrt(x)**2 = x for x >= 0.
    ("sqrt(x)**2", {"x": 4}, 4.0, {"x": 1.0}),
    # Hand-derived: d/dx sqrt(relu(x)) = 1/(2 sqrt(x)) = 0.25 at x = 4.
    ("sqrt(relu(x))", {"x": 4}, 2.0, {"x": 0.25}),
    # Hand-derived: log(-x) at x = -pi/4 is log(pi/4); d/dx log(-x) = 1/x = -4/pi.
    ("log(-x)", {"x": "-pi/4"}, math.log(math.pi / 4), {"x": -4 / math.pi}),
    # Hand-derived: max(max(x,0),y) is y when y is largest, x when x is.
    ("max(max(x,0),y)", {"x": 1, "y": 2}, 2.0, {"x": 0.0, "y": 1.0}),
    ("max(max(x,0),y)", {"x": 3, "y": 2}, 3.0, {"x": 1.0, "y": 0.0}),
    ("min(min(x,5),y)", {"x": 1, "y": 2}, 1.0, {"x": 1.0, "y": 0.0}),
])
def test_the_same_expressions_where_they_are_finite(expr, at, value, grads) -> None:
    d = explain.grad(expr, at=at)
    assert d.loss_value == pytest.approx(value, rel=1e-15)
    assert {k: g.value for k, g in d.gradients.items()} == pytest.approx(grads, rel=1e-15)


def test_three_argument_max_through_the_command_line() -> None:
    result = run_cli("grad", "max(max(x,0),y)", "--at", "x=1,y=2", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert '"value": 2.0' in result.stdout


def test_printer_parenthesises_negative_numbers() -> None:
    # (-1.0 ** 0.5) is -(1.0 ** 0.5) in Python: the base must be in parentheses.
    # Hand-derived: (-2)**n0 at n0 = 2 is 4, not -(2**2) = -4.
    x = sp.Symbol("x", real=True)
    source = CodePrinter({x: "n0"}, {})(sp.Pow(sp.Integer(-2), x, evaluate=False))
    # A literal base is a NumPy number in the compiled code (1/0.0 is then inf, not ZeroDivisionError).
    assert source == "(constant((-2.0)) ** n0)"
    assert eval(source, {"n0": 2.0, "constant": np.float64}) == 4.0  # noqa: S307 - the printer's own output
    inf = CodePrinter({x: "n0"}, {})(x * sp.oo)
    assert "float(\"inf\")" in inf


# -- numerically stable forms ----------------------------------------------------------------------
mpmath.mp.dps = 50


def _mp_log_sigmoid(z: float) -> float:
    return float(-mpmath.log1p(mpmath.exp(-mpmath.mpf(z))))


def _mp_sigmoid(z: float) -> float:
    return float(1 / (1 + mpmath.exp(-mpmath.mpf(z))))


@pytest.mark.parametrize("z", [-800.0, -745.5, -30.0, -1.0, 0.0, 2.5, 40.0, 800.0])
def test_log_sigmoid_is_stable(z: float) -> None:
    # mpmath at 50 digits: log σ(z) = −log1p(e^(−z)); d/dz = 1 − σ(z).
    d = explain.grad("log(sigmoid(x))", at={"x": z})
    assert d.loss_value == pytest.approx(_mp_log_sigmoid(z), rel=1e-14, abs=1e-300)
    assert d.gradients["x"].value == pytest.approx(1 - _mp_sigmoid(z), rel=1e-14, abs=1e-300)


@pytest.mark.parametrize("z", [-800.0, -3.0, 0.5, 745.5, 800.0])
def test_log_one_minus_sigmoid_is_stable(z: float) -> None:
    # mpmath at 50 digits: log(1 − σ(z)) = log σ(−z); d/dz = −σ(z).
    d = explain.grad("log(1 - sigmoid(x))", at={"x": z})
    assert d.loss_value == pytest.approx(_mp_log_sigmoid(-z), rel=1e-14, abs=1e-300)
    assert d.gradients["x"].value == pytest.approx(-_mp_sigmoid(z), rel=1e-14, abs=1e-300)


@pytest.mark.parametrize("z", [-800.0, -1.0, 800.0])
def test_softplus_is_stable(z: float) -> None:
    # mpmath at 50 digits: softplus(z) = log1p(e^z); d/dz = σ(z).
    d = explain.grad("softplus(x)", at={"x": z})
    assert d.loss_value == pytest.approx(float(mpmath.log1p(mpmath.exp(mpmath.mpf(z)))), rel=1e-14, abs=1e-300)
    assert d.gradients["x"].value == pytest.approx(_mp_sigmoid(z), rel=1e-14, abs=1e-300)


def test_cross_entropy_at_a_saturated_logit_and_torch_agrees() -> None:
    # Hand-derived: with z = w·x = −800, −log σ(z) − log(1 − σ(z)) = 800 + ~e^(−800);
    # d/dz = 2σ(z) − 1 = −1, so ∂/∂w = x·(−1) = −2 and ∂/∂x = w·(−1) = 400.
    d = explain.grad("0 - log(sigmoid(w*x)) - log(1 - sigmoid(w*x))", at={"w": -400, "x": 2})
    assert d.loss_value == pytest.approx(800.0, rel=1e-15)
    assert d.gradients["w"].value == pytest.approx(-2.0, rel=1e-15)
    assert d.gradients["x"].value == pytest.approx(400.0, rel=1e-15)
    pytest.importorskip("torch")
    from explain.verify import verify

    assert verify(d).passed


def test_a_staged_sigmoid_that_underflows_is_reported_not_hidden(tmp_path: Path) -> None:
    # Written in two stages, σ(−800) really is 0 in float64: the error says so (no −inf result).
    path = _problem(tmp_path, """
        [parameters]
        z = -800.0
        [forward]
        a = "sigmoid(z)"
        l = "log(a)"
    """)
    with pytest.raises(ExplainError, match=r"stage `l = log\(a\)` is -inf at a = 0: log of 0"):
        explain.solve(path)


# -- problem files: every command -------------------------------------------------------------------
LOG_AT_ONE = """
    [parameters]
    x = 1.0
    [forward]
    r = "log(x - 1)"
    [train]
    learning_rate = 0.1
    steps = 3
"""


def _problem(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", [
    ["solve"], ["solve", "--format", "json"], ["solve", "--format", "latex"], ["verify"], ["train"], ["graph"],
])
def test_every_command_reports_the_first_non_finite_stage(tmp_path: Path, capsys, command: list[str]) -> None:
    path = _problem(tmp_path, LOG_AT_ONE)
    out = tmp_path / ("out.dot" if command == ["graph"] else "out.txt")
    assert main([*command, str(path), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "p.toml: [forward] r: stage `r = log(x - 1)` is -inf at x = 1: log of 0" in err
    assert "learning rate" not in err
    assert not out.exists()


def test_solve_subprocess_exits_2_without_traceback(tmp_path: Path) -> None:
    path = _problem(tmp_path, LOG_AT_ONE)
    result = run_cli("train", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "stage `r = log(x - 1)` is -inf at x = 1: log of 0" in result.stderr


def test_library_solve_and_train_raise(tmp_path: Path) -> None:
    problem = explain.load(_problem(tmp_path, LOG_AT_ONE))
    with pytest.raises(ExplainError, match="log of 0"):
        explain.solve(problem)
    from explain.train import train

    with pytest.raises(ExplainError, match="log of 0"):
        train(problem)


def test_a_data_problem_names_the_sample(tmp_path: Path) -> None:
    path = _problem(tmp_path, """
        [data]
        x = [3.0, 2.0, 1.0]
        [parameters]
        w = 1.0
        [forward]
        r = "w/(x - 1)"
    """)
    with pytest.raises(ExplainError, match=r"stage `r = w/\(x - 1\)` is inf at sample 3 \(w = 1, x = 1\): division"):
        explain.solve(path)


DIVERGES = """
    [data]
    x = [1.0, 2.0]
    y = [2.0, 4.0]
    [parameters]
    w = 0.5
    [forward]
    p = "w*x"
    l = "(p - y)**2"
    [train]
    learning_rate = 1e307
    steps = 5
    predict = { x = 3.0 }
"""


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "typst", "json"])
def test_divergence_keeps_its_report_in_every_format(tmp_path: Path, capsys, fmt: str) -> None:
    path = _problem(tmp_path, DIVERGES)
    assert main(["solve", str(path), "--no-verify", "--format", fmt]) == 0
    out = capsys.readouterr().out
    assert "diverged" in out.lower() or '"diverged": true' in out
    assert "Prediction after training" not in out  # no inf presented as a prediction


def test_divergence_in_a_pdf(tmp_path: Path, capsys) -> None:
    pytest.importorskip("typst")
    path = _problem(tmp_path, DIVERGES.replace("[data]\n    x = [1.0, 2.0]\n    y = [2.0, 4.0]\n", "[values]\n    x = 1.0\n    y = 2.0\n").replace("    predict = { x = 3.0 }\n", ""))
    out = tmp_path / "s.pdf"
    assert main(["solve", str(path), "--no-verify", "--pdf", str(out)]) == 0
    assert out.stat().st_size > 1000


@pytest.mark.parametrize(("text", "words"), [
    (DIVERGES.replace("x = 3.0", "x = nan"), ["[train] predict x", "finite", "nan"]),
    (DIVERGES.replace("x = [1.0, 2.0]", 'x = [1, "randn(3)"]'), ["[data] x[1]", "single number"]),
    (DIVERGES.replace("x = [1.0, 2.0]", 'x = "arange(0,1,0)"'), ["[data] x", "arange()", "other than 0"]),
])
def test_problem_values_that_are_not_numbers(tmp_path: Path, capsys, text: str, words: list[str]) -> None:
    path = _problem(tmp_path, text)
    assert main(["solve", str(path), "--no-verify"]) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err


# -- answers files ----------------------------------------------------------------------------------
SEED003 = Path(__file__).resolve().parent.parent / "examples" / "seed003_network.toml"


def test_broken_numbers_in_answers_are_graded_one_by_one(tmp_path: Path, capsys) -> None:
    # in_h1 = w1*x1 + w3*x2 = 0.2·0.5 + 0.5·0.3 = 0.25 (hand-derived from the example's values).
    answers = tmp_path / "student.toml"
    answers.write_text(textwrap.dedent(f"""
        [answers]
        in_h1 = 1e400
        in_h2 = 1e{"9" * 5000}
        out_h1 = "w1/(x1-0.5)"
        out_h2 = "(-8)**(2/3)*w1"
        in_o1 = "log(x1 - 0.5)"
        in_o2 = "w1*exp(710.0)"
        E = "w1*x1 + w3*x2"
    """), encoding="utf-8")
    from explain.check import check

    report = check(SEED003, answers)
    verdicts = {i.key: (i.verdict, i.note or "") for i in report.items}
    assert verdicts["in_h1"][0] == "unparseable" and "not finite" in verdicts["in_h1"][1]
    assert verdicts["in_h2"][0] == "unparseable" and "not finite" in verdicts["in_h2"][1]
    assert verdicts["out_h1"][0] == "incorrect" and "division by zero (x1 - 0.5 is 0)" in verdicts["out_h1"][1]
    assert verdicts["out_h2"][0] == "unparseable" and "not a real number" in verdicts["out_h2"][1]
    assert verdicts["in_o1"][0] == "incorrect" and "log of 0" in verdicts["in_o1"][1]
    assert verdicts["in_o2"][0] == "unparseable" and "outside float64's range" in verdicts["in_o2"][1]
    # The right answer next to them is still graded, and graded right (the other direction).
    assert verdicts["E"][0] == "incorrect"  # E is the loss, not in_h1: a planted wrong formula is caught
    good = tmp_path / "good.toml"
    good.write_text('[answers]\nin_h1 = "w1*x1 + w3*x2"\nout_h1 = 1e400\n', encoding="utf-8")
    assert main(["check", str(SEED003), str(good), "--format", "json"]) == 1
    out = capsys.readouterr().out
    assert '"verdict": "correct"' in out and '"verdict": "unparseable"' in out


@pytest.mark.parametrize("optimizer", ["gd", "sgd"])
def test_float32_overflow_before_any_update_is_not_blamed_on_the_learning_rate(tmp_path: Path, capsys,
                                                                               optimizer: str) -> None:
    # Hand-derived: exp(50)² = e^100 ≈ 2.7e43, finite in float64, beyond float32's 3.4e38.
    path = _problem(tmp_path, f"""
        [data]
        x = [1.0, 2.0]
        [parameters]
        w = 50.0
        [forward]
        l = "exp(w)*exp(w)*x"
        [train]
        optimizer = "{optimizer}"
        learning_rate = 1e-60
        steps = 2
    """)
    assert main(["train", str(path), "--dtype", "float32"]) == 2
    err = capsys.readouterr().err
    assert "the loss is inf at the initial parameters in float32" in err and "not the learning rate" in err
    assert main(["train", str(path), "--dtype", "float64"]) == 0  # the same run in float64 is fine


def test_a_power_of_an_unevaluated_constant_function_is_not_out_of_range() -> None:
    # Found by the differential oracle after the merge: softplus(0.0)**2 is a constant
    # SymPy leaves unevaluated; it is ln(2)² ≈ 0.4805 (by hand), not a number beyond float64.
    d = explain.derive(explain.loads('[parameters]\nw = 0.0\n[forward]\ns1 = "softplus(0.0)**2 + w"\n'))
    assert d.loss_value == pytest.approx(math.log(2) ** 2, rel=1e-15)


def test_a_negative_number_to_a_whole_float_power_is_real() -> None:
    # Found by tests/test_grad_as_written.py's random expressions: a - a - 0.5 folds to -0.5,
    # and (-0.5)**2.0 was refused as "not a real number". By hand: ((-0.5)²)² + b = 1.0625 at
    # b = 1; d/db = 1; a cancels, d/da = 0. A fractional power of a negative number stays refused.
    d = explain.grad("((a - a - 0.5)**2.0)**2.0 + b", at={"a": 0.0, "b": 1.0})
    assert d.loss_value == 1.0625 and d.gradients["b"].value == 1.0 and d.gradients["a"].value == 0.0
    assert explain.grad("(-2)**3.0*w", at={"w": 1.0}).loss_value == -8.0
    with pytest.raises(explain.ExplainError, match="not a real number"):
        explain.grad("(-2)**2.5*w", at={"w": 1.0})
