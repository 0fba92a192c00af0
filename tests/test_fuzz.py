"""Fuzzing in CI (issue 9): generated expressions, problem files and answers files never crash.

For every generated input the command line (``explain.cli.main``, in-process for
speed) must exit 0, 1 or 2 — never 3, the internal-error code — print no
traceback, put no non-finite number into a successful JSON output, and write no
``check --report`` cell that a spreadsheet would run as a formula.  The bigger
campaigns are ``benchmarks/fuzz.py``; these are bounded (a few dozen to a few
hundred examples each) so that the whole file stays under a minute.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import explain
from explain.cli import main

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------------
# What a run must satisfy


def _json_non_finite(text: str) -> list[str]:
    """The NaN/Infinity constants of a JSON text (Python's json writes them for non-finite floats)."""
    found: list[str] = []
    json.loads(text, parse_constant=lambda name: found.append(name) or 0.0)
    return found


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _formula_cells(report: Path) -> list[str]:
    """Cells of a CSV report that a spreadsheet would run: = + - @ tab CR first, and not a plain number."""
    cells = []
    with report.open(newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            for cell in row:
                # a plain number (float() would also accept "\t1", "inf" and "1_0": not numbers here)
                if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not _NUMBER.fullmatch(cell):
                    cells.append(cell)
    return cells


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def _assert_sound(argv: list[str], rc: int, stdout: str, stderr: str, fmt: str) -> None:
    shown = f"explain {argv!r}\n--- stderr ---\n{stderr[-2000:]}"
    assert rc in (0, 1, 2), shown
    assert "Traceback" not in stderr and "internal error" not in stderr, shown
    if rc == 0 and fmt == "json":
        assert _json_non_finite(stdout) == [], shown


def test_the_checks_themselves_catch_what_they_look_for(tmp_path):
    # Planted: a NaN in JSON and a formula cell are found; a negative number cell is not a formula.
    assert _json_non_finite('{"value": NaN, "g": [1.0, -Infinity]}') == ["NaN", "-Infinity"]
    assert _json_non_finite('{"value": 1e308}') == []
    report = tmp_path / "r.csv"
    report.write_text('a,b,c\n=HYPERLINK(1),-0.0346,\'=1+2\n"\t1",-w6*0 + 1,1e-05\n', encoding="utf-8")
    assert _formula_cells(report) == ["=HYPERLINK(1)", "\t1", "-w6*0 + 1"]
    with pytest.raises(AssertionError):
        _assert_sound(["grad"], 3, "", "explain: internal error", "json")
    with pytest.raises(AssertionError):
        _assert_sound(["grad"], 0, '{"value": NaN}', "", "json")


# --------------------------------------------------------------------------------------------
# Expressions

VARIABLES = st.sampled_from(["x", "w", "b"])
CONSTANTS = st.sampled_from(["0", "1", "2", "0.5", "3.25", "1e-8", "1e10", "1e300", "1e308", "710.0", "pi", "e",
                             "2/3", "(-8)", "(-2)", "0.0", "1e-320", "100"])
UNARY = ["exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "sqrt", "abs", "softplus"]


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "**"]), children).map(lambda t: f"({t[0]}){t[1]}({t[2]})"),
        st.tuples(st.sampled_from(UNARY), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["max", "min"]), children, children).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(children, st.sampled_from(["0.01", "0.1"])).map(lambda t: f"leaky_relu({t[0]}, {t[1]})"),
        children.map(lambda c: f"-{c}"),
    )


EXPRESSIONS = st.recursive(st.one_of(VARIABLES, CONSTANTS), _combine, max_leaves=8)
NASTY = st.sampled_from(["\x00", "\x1b[2J", "\t", "\u202e", "·", "−", "ｘ", "α", "²", "∞", "'", '"', ";", "[", "]",
                         ":", "=", ",", "**", "^", "!", "@", "//", "__import__", "lambda", "sigmiod", "Max", "1e400",
                         "1e309", "9" * 400, "(", ")", "I", "oo", "zoo", "nan", "E", "x x"])


@st.composite
def mutants(draw: st.DrawFn) -> str:
    text = draw(EXPRESSIONS)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, len(text)))
        text = text[:i] + draw(st.one_of(NASTY, st.just(""))) + text[j:]
    return text


AT = st.sampled_from(["0", "1", "-1", "0.5", "2", "-800", "800", "1e308", "1e-320", "pi/4", "-1.7", "710"])


@settings(max_examples=150, **SETTINGS)
@given(expr=st.one_of(EXPRESSIONS, mutants()), x=AT, w=AT, b=AT)
def test_grad_of_generated_expressions(expr, x, w, b):
    at = ",".join(f"{n}={v}" for n, v in (("x", x), ("w", w), ("b", b)) if n in expr)
    argv = ["grad", expr, "--format", "json"] + (["--at", at] if at else [])
    _assert_sound(argv, *_run(argv), "json")


@settings(max_examples=60, **SETTINGS)
@given(expr=EXPRESSIONS, x=st.floats(allow_nan=True, allow_infinity=True) | AT)
def test_the_library_returns_finite_numbers_or_raises_explain_error(expr, x):
    try:
        d = explain.grad(expr, at={"x": x, "w": 0.5, "b": 2.0})
    except explain.ExplainError:
        return
    assert math.isfinite(d.loss_value)
    assert all(math.isfinite(g.value) for g in d.gradients.values())


# --------------------------------------------------------------------------------------------
# Problem files

NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True, width=64),
                    st.sampled_from([0.0, 1.0, -1.0, 0.5, 1e308, 1e-320, 1e307, 3.0]))
TOML_NUMBERS = NUMBERS.map(lambda v: "nan" if math.isnan(v) else ("inf" if v == math.inf else
                                                                   "-inf" if v == -math.inf else repr(v)))


def _toml_string(text: str) -> str:
    return json.dumps(text)  # a JSON string is a valid TOML basic string (escapes included)


@st.composite
def problem_files(draw: st.DrawFn) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append(f"title = {_toml_string(draw(st.text(max_size=20)))}")
    data = draw(st.booleans())
    if data:
        n = draw(st.integers(1, 3))
        lines += ["[data]", f"x = [{', '.join(draw(TOML_NUMBERS) for _ in range(n))}]",
                  f"y = [{', '.join(draw(TOML_NUMBERS) for _ in range(n))}]"]
    else:
        lines += ["[values]", f"x = {draw(TOML_NUMBERS)}", f"y = {draw(TOML_NUMBERS)}"]
    lines += ["[parameters]", f"w = {draw(TOML_NUMBERS)}", f"b = {draw(TOML_NUMBERS)}"]
    stage = draw(st.one_of(EXPRESSIONS, mutants(), st.just("w*x + b")))
    loss = draw(st.sampled_from(["(p - y)**2/2", "-y*log(p) - (1-y)*log(1-p)", "abs(p - y)", "(p - y)**2"]))
    lines += ["[forward]", f"p = {_toml_string(stage)}", f"l = {_toml_string(loss)}"]
    if data and draw(st.booleans()):
        lines += ["[cost]", f"J = {_toml_string(draw(st.sampled_from(['mean(l) + w**2', 'sum(l)', 'mean(l)*1e308'])))}"]
    if draw(st.booleans()):
        lines += ["[train]", f"learning_rate = {draw(TOML_NUMBERS)}", f"steps = {draw(st.integers(0, 20))}"]
        if draw(st.booleans()):
            lines.append(f"predict = {{ x = {draw(TOML_NUMBERS)} }}")
    return "\n".join(lines) + "\n"


COMMANDS = st.sampled_from([["solve"], ["verify"], ["graph"], ["train", "--quiet"], ["solve", "--no-verify"]])


@settings(max_examples=40, **SETTINGS)
@given(text=problem_files(), command=COMMANDS, fmt=st.sampled_from(["json", "json", "text", "latex", "typst"]))
def test_generated_problem_files(text, command, fmt):
    if command[0] in ("verify", "graph", "train") and fmt in ("latex", "typst"):
        fmt = "json"
    with tempfile.TemporaryDirectory() as tmp:
        problem = Path(tmp) / "p.toml"
        problem.write_text(text, encoding="utf-8")
        argv = [command[0], str(problem), *command[1:], "--format", fmt]
        if command[0] == "graph":  # it draws a picture (into the current folder without -o)
            argv, fmt = [*argv, "-o", str(Path(tmp) / "g.dot")], "dot"
        _assert_sound(argv, *_run(argv), fmt)


# --------------------------------------------------------------------------------------------
# Answers files

PROBLEM = Path(__file__).resolve().parent.parent / "examples" / "seed003_network.toml"
KEYS = st.one_of(st.sampled_from(["dE/dw1", "dE/dw5", "out_h1", "E", "w5+", "in_o1", "dE/dout_h1"]),
                 st.sampled_from(["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tk", "\x1b[2J", "dE/d"]),
                 st.text(min_size=1, max_size=12))
VALUES = st.one_of(
    TOML_NUMBERS,
    st.sampled_from(['"w1/(x1-0.5)"', '"(-8)**(2/3)*w1"', '"=1+2"', '"-w6*0 + 1"', '"@A1"', '"\\t1"', '"1e400"',
                     '"x*cos(exp(1e30))"', '"sigmoid(in_h1)"', '"w1*x1 + w3*x2"', '"nan"', 'true', '[1, 2]', '""']),
    EXPRESSIONS.map(_toml_string), mutants().map(_toml_string),
)


@st.composite
def answers_files(draw: st.DrawFn) -> str:
    entries = draw(st.dictionaries(KEYS, VALUES, max_size=5))
    return "[answers]\n" + "".join(f"{_toml_string(k)} = {v}\n" for k, v in entries.items())


@settings(max_examples=40, **SETTINGS)
@given(answers=st.lists(answers_files(), min_size=1, max_size=2),
       names=st.lists(st.sampled_from(["s1", "=1+2", "-x", "@a", "+b", "\ttab"]), min_size=2, max_size=2, unique=True))
def test_generated_answers_files_and_the_report(answers, names):
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, text in zip(names, answers):
            path = Path(tmp) / f"{name}.toml"
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        report = Path(tmp) / "r.csv"
        argv = ["check", str(PROBLEM), *paths, "--report", str(report), "--format", "json"]
        rc, out, err = _run(argv)
        _assert_sound(argv, rc, out, err, "json")
        if rc in (0, 1):
            assert _formula_cells(report) == [], f"{argv!r}\n{report.read_text(encoding='utf-8')}"
