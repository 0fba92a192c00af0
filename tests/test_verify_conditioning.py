"""Verification on ill-conditioned problems: no false alarm on right answers, every planted error caught.

Each problem of the corpus is one a course could pose (logistic regression that is
confidently right or wrong, Poisson rates near zero, a lasso penalty at w = 0, a
hinge loss on the margin, softmax with large logits, ...), chosen where float64 or
float32 rounding, the domain of log/sqrt, or a kink defeats a naive check.  On each:

* ``explain verify`` passes (exit 0): the right derivation is not blamed for rounding;
* the same Graph with ONE local partial replaced by a plausible wrong one (the kind
  of mistake explain/diagnose.py catalogues) fails, autograd names the node where the
  adjoints start to disagree, and finite differences catch the wrong gradient.

The truth in these tests comes from independent witnesses: PyTorch autograd and a
50-digit mpmath finite difference, both run by ``verify``, plus a few hand-derived
values (marked where used).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import sympy as sp

import explain
from explain.cli import main
from explain.derivation import derive
from explain.graph import Edge, Graph
from explain.verify import Verification, verify

from .conftest import run_cli

Wrong = Callable[[sp.Expr], sp.Expr]


def _s(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def _double(e: sp.Expr) -> sp.Expr:
    return 2 * e


def _negate(e: sp.Expr) -> sp.Expr:
    return -e


@dataclasses.dataclass(frozen=True)
class Case:
    """A corpus problem: its file, the dtype it is verified in, and one planted wrong local partial."""

    name: str
    toml: str
    edge: tuple[str, str]
    wrong: Wrong
    dtype: str = "float64"
    kinks: tuple[str, ...] = ()  # parameters that sit at a kink (their FD reports the convention)
    caught_by: tuple[str, ...] = ("autograd", "finite_differences")


LOGISTIC = """
title = "Logistic regression, binary cross-entropy, mean over 3 samples (issue 8)"
reduction = "mean"
[data]
x1 = [1.0, 2.0, -1.0]
x2 = [3.0, 4.0, -3.2]
y = [1.0, 0.0, 1.0]
[parameters]
w1 = 1.0
w2 = 2.0
b = 2.0
[forward]
z = "w1*x1 + w2*x2 + b"
a = "sigmoid(z)"
l = "-(y*log(a) + (1 - y)*log(1 - a))"
"""

SINGLE_BCE = """
title = "One neuron, binary cross-entropy, {what}"
[values]
x = {x}
y = {y}
[parameters]
w = {w}
b = {b}
[forward]
z = "w*x + b"
a = "sigmoid(z)"
l = "-(y*log(a) + (1 - y)*log(1 - a))"
"""


def bce(what: str, x: float, y: float, w: float, b: float) -> str:
    return SINGLE_BCE.format(what=what, x=x, y=y, w=w, b=b)


CORPUS = [
    # -- saturated sigmoids and binary cross-entropy --------------------------------------
    Case("issue8_logistic", LOGISTIC, ("a", "l"), lambda e: e.subs(_s("a"), 1 - _s("a"))),  # 1/a read as 1/(1-a)
    Case("issue8_logistic_float32", LOGISTIC, ("z", "a"), lambda e: _s("a"), dtype="float32"),  # σ' written as σ
    Case("bce_confident_right_z20", bce("confidently right, z = 20", 4.0, 1.0, 4.5, 2.0), ("z", "a"),
         lambda e: _s("a")),
    Case("bce_log1m_z15", bce("wrong with confidence, log(1 − σ) at z = 15", 3.0, 0.0, 4.0, 3.0), ("a", "l"),
         _negate),
    Case("bce_log_sigma_z_minus25", bce("log σ at z = −25", -5.0, 1.0, 4.0, -5.0), ("b", "z"), _double),
    Case("bce_confident_wrong_z30", bce("confidently wrong, z = 30", 6.0, 0.0, 5.0, 0.0), ("w", "z"),
         lambda e: _s("w")),  # ∂z/∂w written as w instead of x
    # Its gradients are about 1e-13: errors that small are below the absolute part of autograd's
    # mixed error scale, so only the (relative) finite-difference check can catch a factor 2 there.
    Case("bce_confident_right_z30", bce("confidently right, z = 30", 6.0, 1.0, 5.0, 0.0), ("z", "a"), _double,
         caught_by=("finite_differences",)),
    Case("bce_saturated_float32", bce("z = 12 in float32", 3.0, 0.0, 3.0, 3.0), ("a", "l"), _negate,
         dtype="float32"),
    Case("tanh_saturated", """
title = "A saturated tanh unit, squared error (z = 8)"
[values]
x = 2.0
y = 0.5
[parameters]
w = 4.0
[forward]
h = "tanh(w*x)"
l = "(h - y)**2"
""", ("w", "h"), lambda e: e.subs(_s("h") ** 2, _s("h"))),  # 1 − h² written as 1 − h
    # -- large logits ------------------------------------------------------------------------
    Case("softmax_large_logits", """
title = "Softmax cross-entropy with logits 25, 0, -25"
[network]
inputs = [5.0]
targets = [0.0, 1.0, 0.0]
naming = "io"
loss = "cross_entropy"
[[network.layers]]
units = 3
activation = "softmax"
weights = [[5.0], [0.0], [-5.0]]
""", ("w1", "in_o1"), _double),
    Case("logsumexp_large", """
title = "Log-sum-exp with logits near 40 (a softmax denominator)"
[values]
x = 8.0
[parameters]
w1 = 5.0
w2 = 4.5
[forward]
z1 = "w1*x"
z2 = "w2*x"
s = "exp(z1) + exp(z2)"
l = "log(s) - z2"
""", ("s", "l"), lambda e: _s("s")),  # (log s)' written as s
    Case("softmax_float32", """
title = "Softmax cross-entropy, confidently wrong with logits ±20, in float32"
[network]
inputs = [4.0]
targets = [0.0, 1.0]
naming = "io"
loss = "cross_entropy"
[[network.layers]]
units = 2
activation = "softmax"
weights = [[5.0], [-5.0]]
""", ("w2", "in_o2"), _negate, dtype="float32"),
    # -- logs and square roots near 0 ---------------------------------------------------------
    Case("poisson_rate_near_zero", """
title = "Poisson negative log-likelihood at a rate of 1e-7"
[values]
y = 3.0
[parameters]
lam = 1e-7
[forward]
l = "lam - y*log(lam)"
""", ("lam", "l"), lambda e: 1 - _s("y") * _s("lam")),  # (log λ)' written as λ
    Case("log_weight_1e7", """
title = "Negative log of a weight, w = 1e-7 (a barrier term)"
[values]
c = 0.5
[parameters]
w = 1e-7
[forward]
r = "log(w)"
l = "c*w**2 - r"
""", ("w", "r"), lambda e: -e),
    Case("sqrt_near_zero", """
title = "Fit a standard deviation: (sqrt(v) - 1)^2 at v = 1e-8"
[parameters]
v = 1e-8
[forward]
s = "sqrt(v)"
l = "(s - 1)**2"
""", ("v", "s"), lambda e: 1 / _s("s")),  # forgets the ½ of (√v)' = 1/(2√v)
    Case("poisson_float32", """
title = "Poisson negative log-likelihood at a rate of 1e-3, float32"
[values]
y = 2.0
[parameters]
lam = 1e-3
[forward]
l = "lam - y*log(lam)"
""", ("lam", "l"), lambda e: 1 + _s("y") / _s("lam"), dtype="float32"),  # sign of the log term
    # -- products of tiny and huge numbers -------------------------------------------------------
    Case("tiny_times_huge", """
title = "A rate in micro-units times a count in millions"
[values]
n = 3.0e6
t = 2.5
[parameters]
k = 7.0e-7
[forward]
m = "k*n"
l = "(m - t)**2"
""", ("k", "m"), lambda e: _s("k")),
    Case("exponential_growth", """
title = "Exponential growth e^(r·t) at r·t = 50"
[values]
t = 10.0
y = 1.0e21
[parameters]
r = 5.0
[forward]
g = "exp(r*t)"
l = "(g/y - 1)**2"
""", ("r", "g"), lambda e: _s("g")),  # forgets the inner derivative t
    # -- data problems, sum and mean ----------------------------------------------------------------
    Case("poisson_regression_mean", """
title = "Poisson regression with a log link, mean over 4 samples (rates up to e^30)"
reduction = "mean"
[data]
x = [1.0, 2.0, 4.0, 6.0]
y = [3.0, 50.0, 1.0e6, 1.0e13]
[parameters]
w = 5.0
b = 0.0
[forward]
eta = "w*x + b"
lam = "exp(eta)"
l = "lam - y*eta"
""", ("eta", "lam"), lambda e: _s("eta")),
    Case("logistic_sum_saturated", """
title = "Logistic regression, sum over 5 samples, margins up to 24"
reduction = "sum"
[data]
x = [-6.0, -2.0, 0.5, 3.0, 6.0]
y = [0.0, 0.0, 1.0, 1.0, 1.0]
[parameters]
w = 4.0
b = 0.0
[forward]
a = "sigmoid(w*x + b)"
l = "-(y*log(a) + (1 - y)*log(1 - a))"
""", ("a", "l"), _double),
    Case("logistic_mean_float32", """
title = "Logistic regression, mean over 4 samples, float32"
reduction = "mean"
[data]
x = [-3.0, -1.0, 1.0, 3.0]
y = [0.0, 1.0, 0.0, 1.0]
[parameters]
w = 3.0
b = 0.5
[forward]
a = "sigmoid(w*x + b)"
l = "-(y*log(a) + (1 - y)*log(1 - a))"
""", ("b", "a"), lambda e: _s("a"), dtype="float32"),
    # -- kinks ------------------------------------------------------------------------------------------
    Case("relu_at_kink", """
title = "A ReLU unit exactly at its kink (w·x + b = 0)"
[values]
x = 2.0
y = 1.0
[parameters]
w = 1.0
b = -2.0
c = 0.5
[forward]
z = "w*x + b"
h = "relu(z)"
o = "c*h + c"
l = "(o - y)**2"
""", ("c", "o"), lambda e: _s("h"), kinks=("w", "b")),
    Case("leaky_relu_at_kink", """
title = "Leaky ReLU (slope 0.1) at 0"
[values]
y = 1.0
[parameters]
w = 0.0
v = 2.0
[forward]
h = "leaky_relu(w, 0.1)"
l = "(v*h + v - y)**2"
""", ("v", "l"), _negate, kinks=("w",)),
    Case("lasso_at_zero", """
title = "Lasso: squared error plus lam*|w| at w = 0"
[values]
x = 1.5
y = 0.2
lam = 1.0
[parameters]
w = 0.0
b = 0.3
[forward]
p = "w*x + b"
l = "(p - y)**2 + lam*abs(w)"
""", ("b", "p"), lambda e: _s("b"), kinks=("w",)),
    Case("hinge_on_margin", """
title = "SVM hinge loss on the margin: y·(w·x + b) = 1"
[values]
x = 2.0
y = 1.0
lam = 0.1
[parameters]
w = 0.25
b = 0.5
[forward]
m = "y*(w*x + b)"
l = "max(0, 1 - m) + lam*w**2"
""", ("w", "l"), lambda e: _s("lam") * _s("w"), kinks=("w", "b"),  # forgets the 2 of (w²)'
         caught_by=("autograd",)),  # -0.975 instead of -0.95 still lies between the slopes -1.95 and 0.05
    Case("relu_network_dead_unit", """
title = "A 1-2-1 ReLU network with one hidden unit exactly at 0, data with a sum"
reduction = "sum"
[data]
x = [1.0, 2.0]
y = [0.2, 1.5]
[parameters]
w1 = 1.0
w2 = 0.5
b1 = -1.0
[forward]
z = "w1*x + b1"
h = "relu(z)"
p = "w2*h + w2"
l = "(p - y)**2/2"
""", ("p", "l"), _double, kinks=("w1", "b1")),
]


def _plant(graph: Graph, case: Case) -> Graph:
    """The same Graph with the local partial on ``case.edge`` replaced by the wrong one."""
    edges = [Edge(e.src, e.dst, case.wrong(e.local)) if (e.src, e.dst) == case.edge else e for e in graph.edges]
    assert edges != graph.edges, f"{case.name}: no edge {case.edge}"
    return dataclasses.replace(graph, edges=edges)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for case in CORPUS:
        (folder / f"{case.name}.toml").write_text(case.toml, encoding="utf-8")
    return folder


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 20 and len({c.name for c in CORPUS}) == len(CORPUS)
    assert sum(c.dtype == "float32" for c in CORPUS) >= 4 and sum(bool(c.kinks) for c in CORPUS) >= 4


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_right_answers_pass(case: Case, corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = corpus_dir / f"{case.name}.toml"
    code = main(["verify", str(path), "--dtype", case.dtype])
    out = capsys.readouterr().out
    assert code == 0, out
    result = verify(derive(explain.load(path)), dtype=case.dtype)
    assert result.passed
    fds = {f.parameter: f for f in result.finite_differences}
    assert set(fds) == set(result_parameters(path))
    for name, fd in fds.items():
        if name in case.kinks:
            assert fd.status == "kink" and fd.left != fd.right, fd
        else:
            assert fd.status == "checked" and math.isfinite(fd.estimate), fd
    for name in case.kinks:
        assert f"d{result.loss}/d{name} sits at a kink" in out and "relu'(0) = 0" in out


def result_parameters(path: Path) -> list[str]:
    return Graph.from_problem(explain.load(path)).parameters


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_a_planted_wrong_local_derivative_is_caught(case: Case, corpus_dir: Path) -> None:
    from explain.commands.verify import render_text

    graph = _plant(Graph.from_problem(explain.load(corpus_dir / f"{case.name}.toml")), case)
    result = verify(derive(graph), dtype=case.dtype)
    right = verify(derive(explain.load(corpus_dir / f"{case.name}.toml")), dtype=case.dtype)
    assert not result.passed
    assert result.failed_checks == list(case.caught_by)
    text = render_text(result)
    # the gradients the planted error changes, measured against the right derivation
    changed = {r.node for r in right.rows if r.kind == "gradient" and _differs(result, right, r.node)}
    assert changed, "the planted error changes some gradient"
    if "autograd" in case.caught_by:
        # the first adjoint that disagrees is the wrong edge's source, where the error enters
        first = next(r for r in result.failures if r.kind != "value")
        assert first.node == case.edge[0], (first, result.failures)
        assert text.startswith("VERIFICATION FAILED: PyTorch autograd disagrees on")
        assert f"PyTorch autograd disagrees on the {'gradient' if first.kind == 'gradient' else 'adjoint'}" in text
    if "finite_differences" in case.caught_by:
        # finite differences, which never see a local partial, catch every wrong gradient away from a
        # kink; at a kink, one that leaves the interval between the one-sided derivatives
        caught = {f.parameter for f in result.finite_difference_failures}
        assert changed - set(case.kinks) <= caught <= changed
        agreed = "autograd disagreed too" if "autograd" in case.caught_by else "(autograd agreed)"
        assert "Finite differences disagree on" in text and agreed in text


def _differs(wrong: Verification, right: Verification, parameter: str) -> bool:
    """Whether the planted error moved this gradient by more than a part in 10⁶."""
    a = next(r.symbolic for r in wrong.rows if r.kind == "gradient" and r.node == parameter)
    b = next(r.symbolic for r in right.rows if r.kind == "gradient" and r.node == parameter)
    return abs(a - b) > 1e-6 * max(abs(a), abs(b))


# -- the issue's example, through the CLI as a user runs it ------------------------------------------
def test_issue8_logistic_regression_verifies_from_the_command_line(corpus_dir: Path) -> None:
    path = corpus_dir / "issue8_logistic.toml"
    done = run_cli("verify", str(path))  # float32 runs in-process in test_float32_allows_…
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Verification passed")
    result = verify(derive(explain.load(path)))
    # dL/dw1 by hand: mean over samples of (σ(z_i) − y_i)·x1_i with z = (12, 12, −6.4) ... computed here
    # in plain float64 from that formula, independently of the Graph.
    z = [1 * 1 + 2 * 3 + 2, 1 * 2 + 2 * 4 + 2, 1 * -1 + 2 * -3.2 + 2]
    a = [1 / (1 + math.exp(-v)) for v in z]
    by_hand = sum((ai - yi) * xi for ai, yi, xi in zip(a, [1, 0, 1], [1, 2, -1])) / 3
    w1 = next(f for f in result.finite_differences if f.parameter == "w1")
    assert w1.estimate == pytest.approx(by_hand, rel=1e-12)
    # the allowed error is an estimate of float64's own error, not a loose constant: about 1e-15
    assert all(f.tolerance < 1e-13 for f in result.finite_differences)


def test_float64_stays_tight_where_nothing_is_ill_conditioned() -> None:
    result = verify(derive(explain.load(Path(__file__).resolve().parent.parent / "examples" / "seed003_network.toml")))
    assert result.passed and not result.widened
    assert {r.tolerance for r in result.rows} == {1e-10}


def test_float32_allows_ill_conditioned_rows_their_rounding_error(corpus_dir: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = corpus_dir / "issue8_logistic.toml"
    result = verify(derive(explain.load(path)), dtype="float32")
    # ∂l/∂a = −(1 − y)/(1 − a) with 1 − a = 6e-6 in float32: a few percent off, and rightly so
    da = next(r for r in result.rows if r.quantity == "dL/da")
    assert da.error > 1e-3 and da.tolerance > da.error
    well = next(r for r in result.rows if r.quantity == "z")
    assert well.tolerance == 1e-4  # a well-conditioned value keeps the flat float32 tolerance
    assert main(["verify", str(path), "--dtype", "float32"]) == 0
    assert "ill-conditioned in float32" in capsys.readouterr().out


def test_steps_stay_inside_the_domain(corpus_dir: Path) -> None:
    for name, parameter, value in (("log_weight_1e7", "w", 1e-7), ("sqrt_near_zero", "v", 1e-8),
                                   ("poisson_rate_near_zero", "lam", 1e-7)):
        result = verify(derive(explain.load(corpus_dir / f"{name}.toml")))
        fd = next(f for f in result.finite_differences if f.parameter == parameter)
        assert 0 < fd.step < value * 1e-10 and math.isfinite(fd.estimate) and fd.passed
    # (√v − 1)² at v = 1e-8: derivative (√v − 1)/√v = (1e-4 − 1)/1e-4, by hand
    fd = next(f for f in verify(derive(explain.load(corpus_dir / "sqrt_near_zero.toml"))).finite_differences)
    assert fd.estimate == pytest.approx((1e-4 - 1) / 1e-4, rel=1e-12)


# -- which check failed -----------------------------------------------------------------------------------
def test_a_finite_difference_failure_says_autograd_agreed(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Plant the error in the finite-difference path only: its sigmoid becomes σ(1.001·z)."""
    from explain import highprecision

    sigmoid = highprecision.FUNCTIONS["sigmoid"]
    monkeypatch.setitem(highprecision.FUNCTIONS, "sigmoid", lambda z: sigmoid(z * 1.001))
    path = corpus_dir / "issue8_logistic.toml"
    result = verify(derive(explain.load(path)))
    assert not result.passed and result.failed_checks == ["finite_differences"]
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("VERIFICATION FAILED: finite differences disagree on")
    assert "PyTorch autograd disagrees" not in out
    assert "Finite differences disagree on dL/dw1" in out and "(autograd agreed)" in out
    assert "although PyTorch autograd agreed" in out


def test_json_names_the_failed_check(corpus_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    graph = _plant(Graph.from_problem(explain.load(corpus_dir / "issue8_logistic.toml")), CORPUS[0])
    data = verify(derive(graph)).to_dict()
    assert data["passed"] is False and data["failed_checks"] == ["autograd", "finite_differences"]
    json.dumps(data, allow_nan=False)


def test_a_kink_is_reported_with_its_convention_in_chinese_too(corpus_dir: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(corpus_dir / "lasso_at_zero.toml"), "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "dl/dw 位于不可导点" in out and "relu'(0) = 0" in out


# -- large problems, unsupported functions, the reduction node ---------------------------------------------
def test_a_large_problem_checks_a_stated_subset(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from explain import verify as verify_module

    monkeypatch.setattr(verify_module, "FD_BUDGET", 1)
    path = Path(__file__).resolve().parent.parent / "examples" / "seed003_network.toml"
    assert main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Finite differences cover 8 of 8" not in out  # FD_MINIMUM is 8: all of them, no note
    monkeypatch.setattr(verify_module, "FD_MINIMUM", 3)
    result = verify(derive(explain.load(path)))
    # evenly spaced (indices 0, 4, 7), both ends kept
    assert [f.parameter for f in result.finite_differences] == ["w1", "w5", "w8"]
    assert main(["verify", str(path)]) == 0
    assert "Finite differences cover 3 of 8 parameters" in capsys.readouterr().out


def test_no_high_precision_function_means_a_stated_skip(corpus_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from explain import highprecision

    monkeypatch.delitem(highprecision.FUNCTIONS, "tanh")
    path = corpus_dir / "tanh_saturated.toml"
    result = verify(derive(explain.load(path)))
    assert result.passed and [f.status for f in result.finite_differences] == ["skipped"]
    assert main(["verify", str(path)]) == 0
    assert "No finite difference for w: tanh has no high-precision implementation" in capsys.readouterr().out


@pytest.mark.parametrize("cost", ["mean(l)", "sum(l) + 0.1*w1**2", "mean(l) + 0.1*w1**2 + 0.05*b**2"])
def test_reduction_nodes_and_cost_terms_in_high_precision(corpus_dir: Path, cost: str) -> None:
    """The Graph's own reduction node (and terms after it, in [cost]) evaluated at 50 digits."""
    from explain.highprecision import HighPrecision

    text = (corpus_dir / "issue8_logistic.toml").read_text(encoding="utf-8")
    text = text.replace('reduction = "mean"\n', "") + f'\n[cost]\nJ = "{cost}"\n'
    d = derive(explain.loads(text))
    hp = HighPrecision(d.graph)
    values = hp.run(hp.leaves())
    # The 50-digit loss is the true one: an independent mpmath computation (50 digits, done
    # outside explain: exp and log of each sample by hand) gives sum(l) = 17.40463595818245077071910842783 for this
    # data. float64's log(1 - sigmoid(12)) loses about five digits (condition number e^12), so the
    # derivation's own float64 loss agrees only to about 1e-13 relative.
    true_sum = 17.40463595818245077071910842783
    true_cost = {"mean(l)": true_sum / 3, "sum(l) + 0.1*w1**2": true_sum + 0.1,
                 "mean(l) + 0.1*w1**2 + 0.05*b**2": true_sum / 3 + 0.1 + 0.05 * 4}[cost]
    assert float(hp.reduced_loss(values)) == pytest.approx(true_cost, rel=1e-15)
    assert d.loss_value == pytest.approx(true_cost, rel=1e-12)
    exact = hp.gradients(values, d.evaluation.locals)
    for name, gradient in d.gradients.items():
        assert float(exact[name]) == pytest.approx(gradient.value, rel=1e-13, abs=1e-15)
    result = verify(d)
    assert result.passed and {f.status for f in result.finite_differences} == {"checked"}
