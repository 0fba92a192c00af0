"""Math printing in text, LaTeX and Typst, used the way renderers use it."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from explain.functions import leaky_relu, leaky_step, relu, sigmoid, softplus, step
from explain.render.mathprint import LatexMath, TextMath, TypstMath, math_style

typst = pytest.importorskip("typst")


def sym(names: str) -> list[sp.Symbol]:
    return [sp.Symbol(n, real=True) for n in names.split()]


w1, x1, w3, x2, out_o1, y1, net_h1, x, y, y_pred = sym("w1 x1 w3 x2 out_o1 y1 net_h1 x y y_pred")
NET = w1 * x1 + w3 * x2
VALUES = {w1: 0.2, x1: 0.5, w3: 0.5, x2: 0.3}
SAMPLES = frozenset({"x", "y", "y_pred"})


def compiles(*math: str) -> None:
    """Each string, put between $ … $, must compile as a Typst document."""
    body = "\n".join(f"$ {m} $" for m in math)
    pdf = typst.compile(("#set page(width: auto, height: auto)\n" + body).encode())
    assert pdf.startswith(b"%PDF")


def test_math_style_picks_the_printer_for_each_format() -> None:
    assert isinstance(math_style("text"), TextMath)
    assert isinstance(math_style("markdown"), LatexMath)
    assert isinstance(math_style("latex"), LatexMath)
    assert isinstance(math_style("typst", precision=3), TypstMath)
    with pytest.raises(ValueError, match="json"):
        math_style("json")


@pytest.mark.parametrize(("fmt", "formula", "substituted"), [
    ("text", "w1·x1 + w3·x2", "0.2·0.5 + 0.5·0.3"),
    ("latex", r"w_{1} \cdot x_{1} + w_{3} \cdot x_{2}", r"0.2 \cdot 0.5 + 0.5 \cdot 0.3"),
    ("typst", "w_1 dot x_1 + w_3 dot x_2", "0.2 dot 0.5 + 0.5 dot 0.3"),
])
def test_numbers_are_substituted_into_the_same_formula(fmt: str, formula: str, substituted: str) -> None:
    m = math_style(fmt)
    assert m.expr(NET) == formula
    assert m.expr(NET, VALUES) == substituted  # not evaluated to 0.25


def test_values_may_be_numpy_and_keyed_by_name_and_arrays_are_left_symbolic() -> None:
    m = TextMath(sample_symbols=SAMPLES)
    assert m.expr(w1 * x, {"w1": np.float64(0.25), x: np.array([1.0, 2.0])}) == "0.25·x_i"


def test_negative_numbers_are_parenthesised_where_they_would_misread() -> None:
    m = TextMath()
    neg = {w1: -0.5, x1: 0.1, x2: -2.0}
    assert m.expr(x1 * w1, neg) == "(-0.5)·0.1"
    assert m.expr(w1 + x1, neg) == "-0.5 + 0.1"           # first term of a sum: as is
    assert m.expr(x2 - w1, neg) == "-2 - (-0.5)"            # subtracted terms come last
    assert m.expr(w1**2, neg) == "(-0.5)²"
    assert m.expr(x1 / w1, neg) == "0.1/(-0.5)"
    assert m.expr(2**w1, neg) == "2^(-0.5)"
    assert m.expr(sigmoid(w1), neg) == "sigmoid(-0.5)"     # a function argument needs none
    assert m.expr(w1, neg) == "-0.5"
    assert LatexMath().expr(x1 * w1, neg) == r"\left(-0.5\right) \cdot 0.1"
    assert TypstMath().expr(x2 - w1, neg) == "-2 - (-0.5)"


def test_text_math() -> None:
    m = TextMath()
    assert m.expr((out_o1 - y1) ** 2 / 2) == "(out_o1 - y1)²/2"
    assert m.expr(sigmoid(net_h1)) == "sigmoid(net_h1)"
    assert m.expr(step(x1) + relu(x1)) == "relu(x1) + step(x1)"
    assert m.expr(leaky_relu(x1, 0.01)) == "leaky_relu(x1, 0.01)"
    assert m.expr(sp.Abs(x1)) == "abs(x1)"
    assert m.expr(sp.sqrt(x2)) == "sqrt(x2)"
    assert m.expr(sp.exp(-x1)) == "exp(-x1)"
    assert m.expr(sp.E * x1) == "e·x1"  # 'E' is the error's name
    assert m.expr(sp.Max(x1, 0)) == "max(0, x1)"
    assert m.expr(w1 ** sp.Rational(3, 2)) == "w1^(3/2)"
    assert m.expr(1 / (x1 * x2)) == "1/(x1·x2)"


def test_latex_math_names_and_functions() -> None:
    m = LatexMath()
    assert m.name("out_h1") == r"\mathrm{out}_{h1}"
    assert m.name("net_h1") == r"\mathrm{net}_{h1}"
    assert m.name("y_pred") == r"y_{\mathrm{pred}}"
    assert m.name("w1") == "w_{1}"
    assert m.name("w2_13") == "w_{2,13}"
    assert m.name("E") == "E"
    assert m.name("eta") == r"\eta"
    assert m.name("delta_o1") == r"\delta_{o1}"
    assert m.expr(sigmoid(net_h1)) == r"\sigma\left(\mathrm{net}_{h1}\right)"
    assert m.expr(relu(x1)) == r"\operatorname{ReLU}\left(x_{1}\right)"
    assert m.expr(step(x1)) == r"\operatorname{step}\left(x_{1}\right)"
    assert m.expr(softplus(x1)) == r"\operatorname{softplus}\left(x_{1}\right)"
    assert m.expr(leaky_relu(x1, 0.01)) == r"\operatorname{leaky\_ReLU}\left(x_{1}, 0.01\right)"
    assert m.expr(sigmoid(x1) ** 2) == r"\sigma\left(x_{1}\right)^{2}"
    assert m.expr((out_o1 - y1) ** 2 / 2) == r"\frac{\left(\mathrm{out}_{o1} - y_{1}\right)^{2}}{2}"


def test_typst_math_names_and_functions() -> None:
    m = TypstMath()
    assert m.name("x") == "x"
    assert m.name("w1") == "w_1"
    assert m.name("out_h1") == '"out"_("h1")'
    assert m.name("eta") == "eta"
    assert m.expr(sigmoid(x1)) == "sigma(x_1)"
    assert m.expr(relu(x1)) == '"ReLU"(x_1)'
    assert m.expr(sp.log(x1)) == "ln(x_1)"
    assert m.expr((out_o1 - y1) ** 2 / 2) == '(("out"_("o1") - y_1)^2)/(2)'


def test_partial_derivatives() -> None:
    assert TextMath().partial("E", "out_h1") == "∂E/∂out_h1"
    assert LatexMath().partial("E", "out_h1") == r"\frac{\partial E}{\partial \mathrm{out}_{h1}}"
    assert TypstMath().partial("E", "out_h1") == '(partial E)/(partial "out"_("h1"))'


def test_sample_symbols_carry_the_sample_index() -> None:
    e = (y_pred - y) * x
    assert TextMath(sample_symbols=SAMPLES).expr(e) == "x_i·(y_pred_i - y_i)"
    assert LatexMath(sample_symbols=SAMPLES).name("y_pred") == r"y_{\mathrm{pred},i}"
    assert LatexMath(sample_symbols=SAMPLES).name("x") == "x_{i}"
    assert TypstMath(sample_symbols=SAMPLES).name("x") == "x_i"
    assert TextMath(sample_symbols=SAMPLES).sample_sum("a", mean=False) == "Σᵢ (a)"
    assert TextMath().sample_sum("a", mean=True) == "(1/n) Σᵢ (a)"
    assert LatexMath().sample_sum("a", mean=True) == r"\frac{1}{n} \sum_{i} \left(a\right)"
    assert TypstMath().sample_sum("a", mean=False) == "sum_i (a)"


@pytest.mark.parametrize(("x", "text", "latex", "typ"), [
    (0.5, "0.5", "0.5", "0.5"),
    (2.0, "2", "2", "2"),
    (np.float64(1 / 3), "0.3333", "0.3333", "0.3333"),
    (-0.000123456, "-0.0001235", "-0.0001235", "-0.0001235"),
    (123456.7, "123500", "123500", "123500"),
    (0.0, "0", "0", "0"),
    (1.23e-5, "1.23e-05", r"1.23 \cdot 10^{-5}", "1.23 dot 10^(-5)"),
    (1234567.0, "1.235e+06", r"1.235 \cdot 10^{6}", "1.235 dot 10^(6)"),
])
def test_numbers_have_significant_digits_and_scientific_only_at_extremes(
        x: float, text: str, latex: str, typ: str) -> None:
    assert TextMath().number(x) == text
    assert LatexMath().number(x) == latex
    assert TypstMath().number(x) == typ


def test_precision_is_significant_digits() -> None:
    assert TextMath(precision=2).number(0.74136507) == "0.74"
    assert TextMath(precision=6).number(0.74136507) == "0.741365"


def test_factor_product_sum_and_equation() -> None:
    m = TextMath()
    assert m.factor(out_o1 - y1) == "(out_o1 - y1)"
    assert m.factor(w1, {w1: -0.5}) == "(-0.5)"
    assert m.factor(-w1 * x1) == "(-w1·x1)"
    assert m.factor(w1 * x1) == "w1·x1"
    assert m.product(["a", "(b + c)"]) == "a · (b + c)"
    assert m.sum(["a", "-b", "c"]) == "a - b + c"
    assert m.equation("E", ["a", "b"]) == "E = a\n  = b"
    assert LatexMath().product(["a", "b"]) == r"a \cdot b"
    assert LatexMath().factor(out_o1 - y1) == r"\left(\mathrm{out}_{o1} - y_{1}\right)"
    assert LatexMath().equation("E", ["a", "b"]) == "\\begin{aligned}\nE &= a \\\\\n &= b\n\\end{aligned}"
    assert TypstMath().product(["a", "b"]) == "a dot b"
    assert TypstMath().equation("E", ["a", "b"]) == "E &= a \\\n &= b"


def test_typst_output_compiles() -> None:
    m = TypstMath(sample_symbols=SAMPLES)
    neg = {w1: -0.5, x1: 1e-7, x2: -2.0}
    exprs = [NET, (out_o1 - y1) ** 2 / 2, sigmoid(net_h1) * (1 - sigmoid(net_h1)), relu(x1), step(x1),
             leaky_relu(x1, 0.01), leaky_step(x1, 0.01), softplus(x1), sp.tanh(x1), sp.exp(-x1),
             sp.log(x1), sp.sqrt(sp.Max(x1, w1)), sp.Abs(leaky_relu(x1, w1)), sp.Min(x1, 0),
             sp.sign(x1), sp.Heaviside(x1), 1 / (1 + sp.exp(-x1)), w1 ** sp.Rational(3, 2), 2 * (y_pred - y) * x,
             sp.pi + sp.E, sp.Symbol("a1_2") * sp.Symbol("in_h1")]
    printed = [m.expr(e) for e in exprs] + [m.expr(e, neg) for e in exprs] + [m.expr(NET, VALUES)]
    d = m.equation(m.partial("E", "w1"), [m.product([m.partial("E", "out_o1"), m.factor(out_o1 - y1)]),
                                          m.sum(["0.5", "-0.25"])])
    compiles(*printed, d, m.sample_sum(m.expr(x * y), mean=True), m.number(1e-9), m.number(-np.inf))


def test_typst_names_compile_and_never_become_code() -> None:
    m = TypstMath()
    greek = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
             "lamda", "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon",
             "phi", "chi", "psi", "omega"]
    names = ["x", "E", "out_o1", "y_pred", "w2_13", "x__2"] + greek + [g.capitalize() for g in greek]
    compiles(*(m.name(n) for n in names))
    hostile = m.name('#panic("injected")')  # would fail compilation if it ran as code
    assert hostile.startswith('"')
    compiles(hostile, m.name('a"b\\c'))
