"""Variants: reproducible, well-conditioned per-student problems with an answer key."""

from __future__ import annotations

import copy
import csv
import json
import math
import tomllib

import pytest

from explain.check import check
from explain.derivation import derive
from explain.errors import ExplainError
from explain.problem import load, loads
from explain.variants import make_variants, rewrite_toml

from .conftest import EXAMPLES, run_cli

NETWORK = EXAMPLES / "seed003_network.toml"


def _numbers(table: dict) -> dict:
    return {k: v for k, v in table.items() if isinstance(v, (int, float))}


def test_same_seed_same_variants_and_k_independent_of_n():
    a = make_variants(NETWORK, 4, seed=7)
    b = make_variants(NETWORK, 6, seed=7)
    assert [v.text for v in a] == [v.text for v in b[:4]]
    c = make_variants(NETWORK, 4, seed=8)
    assert [v.text for v in a] != [v.text for v in c]
    assert len({v.text for v in a}) == 4


def test_numbers_keep_sign_size_and_are_rounded_like_a_student_would():
    original = tomllib.loads(NETWORK.read_text())
    for v in make_variants(NETWORK, 10, seed=1):
        raw = tomllib.loads(v.text)
        assert raw["forward"] == original["forward"] and raw["train"] == original["train"]
        for section in ("values", "parameters"):
            for name, old in _numbers(original[section]).items():
                new = raw[section][name]
                assert math.copysign(1, new) == math.copysign(1, old), (name, new)
                assert 0.5 * abs(old) - 0.005 <= abs(new) <= 1.5 * abs(old) + 0.005, (name, new)
                assert round(new, 2) == new, (name, new)


def test_variants_are_well_conditioned():
    for v in make_variants(NETWORK, 10, seed=3):
        d = v.derivation
        for name in ("in_h1", "in_h2", "in_o1", "in_o2"):
            assert abs(d.value(name)) <= 4
        assert all(abs(g.value) > 1e-8 for g in d.gradients.values())


def test_network_shorthand_and_random_initial_values():
    for path in (EXAMPLES / "mazur_network.toml", EXAMPLES / "seed003_linear.toml"):
        variants = make_variants(path, 3, seed=1)
        for v in variants:
            assert loads(v.text, "v.toml").parameters == v.problem.parameters
    texts = [tomllib.loads(v.text) for v in make_variants(EXAMPLES / "seed003_linear.toml", 3, seed=1)]
    assert len({t["seed"] for t in texts}) == 3  # "2*rand() - 1" draws differ per variant


def test_answer_key_grades_as_all_correct(tmp_path):
    variant = make_variants(NETWORK, 1, seed=2)[0]
    problem = tmp_path / "v.toml"
    problem.write_text(variant.text)
    answers = variant.answers()
    assert {"E", "dE/dw1", "w1+", "E+"} <= set(answers)
    assert check(problem, answers, rtol=1e-12).passed


def test_cli_writes_files_pdfs_optional_and_answer_keys(tmp_path):
    out = tmp_path / "class"
    result = run_cli("variants", str(NETWORK), "-n", "3", "--seed", "1", "-o", str(out), "--no-pdf")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "answer_key.csv", "answer_key.json", "roster.csv", "variant_01.toml", "variant_02.toml", "variant_03.toml"]
    key = json.loads((out / "answer_key.json").read_text())
    first = key["variants"][0]
    d = derive(load(out / "variant_01.toml"))
    assert first["gradients"]["w1"] == pytest.approx(d.gradients["w1"].value, rel=1e-12)
    assert first["loss"] == {"name": "E", "value": pytest.approx(d.loss_value, rel=1e-12)}
    assert first["forward"]["out_o1"] == pytest.approx(d.value("out_o1"), rel=1e-12)
    rows = list(csv.DictReader((out / "answer_key.csv").open()))
    assert {r["variant"] for r in rows} == {"variant_01", "variant_02", "variant_03"}
    w1 = next(r for r in rows if r["variant"] == "variant_01" and r["key"] == "dE/dw1")
    assert float(w1["value"]) == pytest.approx(d.gradients["w1"].value, rel=1e-12)


def test_bad_input_exits_2_and_writes_nothing(tmp_path):
    result = run_cli("variants", str(tmp_path / "missing.toml"), "-n", "2", "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    assert not (tmp_path / "out").exists()
    with pytest.raises(ExplainError):
        make_variants(NETWORK, 0)


def test_the_teachers_file_is_rewritten_with_its_comments_and_awkward_text_kept():
    original = (
        '# Homework 3, question 2\n'
        'title = "He said \\"hi\\" \\\\ back\\nand\\ttabbed \\u0001 ünïcode ∂E/∂w 🙂"\n'
        'seed = 3\n'
        '[values]\n'
        'a = 0.25          # the rate from the lecture\n'
        '"weird key" = 1\n'
        '[network]\n'
        'inputs = [0.1, 0.2]\n'
        '[[network.layers]]\n'
        'units = 2\n'
        'weights = [[1.0, 2.0], [3.0, 4.0]]\n'
        '[[network.layers]]\n'
        'units = 1\n'
        'bias = [0.5]\n')
    old = tomllib.loads(original)
    new = copy.deepcopy(old)
    new["title"] += " (variant 1)"
    new["values"]["a"] = 0.3
    new["network"]["layers"][0]["weights"] = [[1.1, 2.2], [3.3, -4.4]]
    new["network"]["layers"][1]["bias"] = [float("nan")]
    text = rewrite_toml(original, old, new)
    back = tomllib.loads(text)
    assert math.isnan(back["network"]["layers"][1].pop("bias")[0])
    new["network"]["layers"][1].pop("bias")
    assert back == new
    assert "# Homework 3, question 2" in text and "# the rate from the lecture" in text  # the teacher's words
    assert text.index("[values]") < text.index("[network]")  # and order
