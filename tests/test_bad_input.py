"""Bad input: every malformed problem file or expression exits 2 with a message
naming the file, the key and the reason, writes no output file, and runs nothing."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from explain.cli import main

from .conftest import run_cli

GOOD = """
[values]
x = 0.5
[parameters]
w = 0.2
[forward]
z = "w*x"
L = "z**2"
"""

# (name, problem text, words the message must contain)
BAD_PROBLEMS = [
    ("toml_syntax", "[values\nx = 1", ["not valid TOML"]),
    ("unknown_top_key", "wieghts = 1\n" + GOOD, ["wieghts", "unknown key"]),
    ("no_parameters", "[values]\nx=1\n[forward]\nL='x**2'\n", ["[parameters]", "at least one"]),
    ("no_forward", "[parameters]\nw=1\n", ["[forward]", "at least one"]),
    ("unknown_name", GOOD.replace("w*x", "w*q"), ["[forward] z", "unknown name 'q'"]),
    ("typo_suggestion", GOOD.replace("w*x", "ww*x"), ["did you mean 'w'"]),
    ("later_stage", GOOD.replace('z = "w*x"', 'z = "L + w"'), ["[forward] z", "defined after"]),
    ("self_cycle", GOOD.replace('z = "w*x"', 'z = "z*w"'), ["[forward] z", "itself"]),
    ("redefinition", GOOD + "\n[data]\nw = [1, 2]\n", ["[parameters] w", "defined twice"]),
    ("stage_redefines_value", GOOD.replace('z = "w*x"', 'x = "w"\nz = "w"'), ["[forward] x", "defined twice"]),
    ("attribute", GOOD.replace("w*x", "w.real"), ["attribute access"]),
    ("subscript", GOOD.replace("w*x", "w[0]"), ["subscripting"]),
    ("lambda", GOOD.replace("w*x", "(lambda: 1)()"), ["only plain function calls", "lambda"]),
    ("import", GOOD.replace("w*x", "__import__('os').system('touch PWNED')"), ["only plain function calls"]),
    ("dunder_name", GOOD.replace("w*x", "__builtins__"), ["'_'"]),
    ("string_constant", GOOD.replace('"w*x"', "\"'abc'\""), ["only numbers"]),
    ("comprehension", GOOD.replace("w*x", "[i for i in range(9)]"), ["comprehension"]),
    ("keyword_arg", GOOD.replace("w*x", "exp(x=w)"), ["keyword arguments"]),
    ("unknown_function", GOOD.replace("w*x", "open(w)"), ["unknown function 'open'"]),
    ("wrong_arity", GOOD.replace("w*x", "max(w)"), ["max() takes 2"]),
    ("huge_exponent", GOOD.replace("w*x", "w**100000"), ["exponent", "too large"]),
    ("tower_exponent", GOOD.replace("w*x", "9**9**9"), ["too large"]),
    ("deep_nesting", GOOD.replace("w*x", "(w + " * 80 + "1" + ")" * 80), ["nested"]),
    ("empty_expression", GOOD.replace("w*x", "   "), ["empty"]),
    ("syntax", GOOD.replace("w*x", "w*/x"), ["not a valid expression"]),
    ("comparison", GOOD.replace("w*x", "w < x"), ["comparison"]),
    ("walrus", GOOD.replace("w*x", "(a := 2)"), ["assignment expression"]),
    ("fstring", GOOD.replace('"w*x"', "\"f'{w}'\""), ["f-string"]),
    ("division_by_zero", GOOD.replace("w*x", "w/0"), ["division by zero"]),
    ("infinite_value", GOOD.replace("x = 0.5", "x = inf"), ["[values] x", "finite"]),
    ("bool_value", GOOD.replace("x = 0.5", "x = true"), ["[values] x", "true/false"]),
    # A list in [values] is a vector now (issue 12): w*x is a vector, and the loss must be a number.
    ("list_in_values", GOOD.replace("x = 0.5", "x = [1, 2]"), ["[forward] L", "shape (2,)", "[data]"]),
    ("bad_name", GOOD.replace("x = 0.5", '"2x" = 0.5'), ["not a valid name"]),
    ("function_as_name", GOOD.replace("x = 0.5", "exp = 0.5").replace("w*x", "w"), ["[values] exp", "not a valid name"]),
    ("ragged_data", "[data]\nx=[1,2,3]\ny=[1,2]\n[parameters]\nw=1\n[forward]\nL='(w*x-y)**2'\n", ["[data] y", "has 2 values"]),
    ("empty_data", "[data]\nx=[]\n[parameters]\nw=1\n[forward]\nL='w*x'\n", ["[data] x", "empty"]),
    ("bad_loss", 'loss = "nope"\n' + GOOD, ["loss", "must name one of"]),
    ("bad_reduction", "reduction='median'\n[data]\nx=[1,2]\n[parameters]\nw=1\n[forward]\nL='w*x'\n", ["reduction"]),
    ("reduction_without_data", 'reduction = "mean"\n' + GOOD, ["reduction", "data problems"]),
    ("bad_optimizer", GOOD + "\n[train]\noptimizer='adam'\n", ["[train] optimizer", "adam"]),
    ("negative_lr", GOOD + "\n[train]\nlearning_rate=-1\n", ["[train] learning_rate"]),
    ("steps_and_epochs", GOOD + "\n[train]\nsteps=2\nepochs=3\n", ["either steps or epochs"]),
    ("sgd_without_data", GOOD + "\n[train]\noptimizer='sgd'\n", ["needs a data problem"]),
    ("bad_seed", "seed = -4\n" + GOOD, ["seed"]),
    ("random_without_parens", GOOD.replace("w = 0.2", 'w = "randn"'), ["[parameters] w", "function"]),
    ("linspace_huge", "[data]\nx='linspace(0, 1, 1e12)'\n[parameters]\nw=1\n[forward]\nL='w*x'\n", ["[data] x", "whole number"]),
    ("network_bad_activation", "[network]\ninputs=[1]\ntargets=[1]\n[[network.layers]]\nunits=1\nactivation='gelu'\nweights=[[1]]\n",
     ["activation", "gelu"]),
    ("network_weight_shape", "[network]\ninputs=[1,2]\ntargets=[1]\n[[network.layers]]\nunits=1\nweights=[[1]]\n",
     ["weights[0]", "2 numbers"]),
    ("network_with_forward", "[network]\ninputs=[1]\ntargets=[1]\n[[network.layers]]\nunits=1\nweights=[[1]]\n" + "[forward]\nL='1'\n",
     ["forward", "[network]"]),
    ("network_targets_mismatch", "[network]\ninputs=[1]\ntargets=[1, 2]\n[[network.layers]]\nunits=1\nweights=[[1]]\n",
     ["targets", "1 units"]),
]


@pytest.mark.parametrize("name,text,words", BAD_PROBLEMS, ids=[b[0] for b in BAD_PROBLEMS])
def test_bad_problem_exits_2_naming_the_problem(tmp_path, capsys, monkeypatch, name, text, words):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / f"{name}.toml"
    path.write_text(textwrap.dedent(text))
    out = tmp_path / "solution.json"
    code = main(["solve", str(path), "--format", "json", "--output", str(out), "--no-verify"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(path) in err, err
    for word in words:
        assert word in err, (word, err)
    assert not out.exists(), "no output file is written for bad input"
    assert not (tmp_path / "PWNED").exists(), "nothing in a problem file may run"


BAD_EXPRESSIONS = [
    ("__import__('os').system('touch PWNED')", "x=1", ["only plain function calls"]),
    ("x.__class__", "x=1", ["attribute"]),
    ("exec('1')", "x=1", ["unknown function 'exec'"]),
    ("x +", "x=1", ["not a valid expression"]),
    ("x*y", "x=1", ["no value for 'y'"]),
    ("x*y", "x=1,y=2,z=3", ["'z' does not appear"]),
    ("2 + 3", "", ["no variables"]),
    ("sqrt(x)", "x=__import__('os')", ["--at x"]),
]


@pytest.mark.parametrize("expr,at,words", BAD_EXPRESSIONS, ids=[f"expr{i}" for i in range(len(BAD_EXPRESSIONS))])
def test_bad_expression_exits_2(tmp_path, capsys, monkeypatch, expr, at, words):
    monkeypatch.chdir(tmp_path)
    assert main(["grad", expr, "--at", at]) == 2
    err = capsys.readouterr().err
    for word in words:
        assert word in err, (word, err)
    assert not (tmp_path / "PWNED").exists()


def test_missing_file_exits_2_through_the_real_command(tmp_path):
    result = run_cli("solve", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert "nope.toml: no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_injection_through_the_real_command(tmp_path):
    problem = tmp_path / "evil.toml"
    problem.write_text(GOOD.replace("w*x", "__import__('os').system('touch PWNED')"))
    result = run_cli("solve", str(problem), cwd=tmp_path)
    assert result.returncode == 2
    assert "evil.toml: [forward] z" in result.stderr
    assert not (tmp_path / "PWNED").exists()
    assert not Path("PWNED").exists()
