"""``explain check`` with vectors and matrices (issue 12): whole-tensor answers, formulas, matrix-form mistakes.

Expected numbers come from PyTorch autograd written here (float64, ``retain_grad``
for the deltas), never from explain; a planted mistake is the same torch
computation done the wrong way (W δ instead of Wᵀ δ, x δᵀ instead of δ xᵀ, a
broadcast gradient not summed, one sample's gradient).  Answers are written
rounded to 4 significant digits, as students write them.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import explain
import explain.check as check_module
from explain.check import Grader, answers_from_mapping, check, parse_answers
from explain.render.grading import render_markdown

from .conftest import EXAMPLES, run_cli

MAZUR = EXAMPLES / "mazur_matrix.toml"
SOFTMAX = EXAMPLES / "softmax_classifier.toml"
XOR = EXAMPLES / "xor_vectors.toml"
F64 = torch.float64

BROADCAST = """title = "A vector and a column broadcast into a matrix"
[values]
A = [[0.3, -1.2, 0.5], [0.8, 0.1, -0.7]]
[parameters]
v = [0.4, -0.9, 1.1]
c = [[0.5], [-1.5]]
[forward]
z = "A * c + v"
h = "tanh(z)"
L = "sum(h**2)"
"""


def _sig(value: float, digits: int = 4) -> str:
    """A number as a student writes it, to ``digits`` significant digits (trailing zeros kept)."""
    return f"{float(value):.{digits - 1}e}"


def _toml(value: object, digits: int = 4) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        return _sig(array, digits)
    return "[" + ", ".join(_toml(row, digits) for row in array) + "]"


def _answers(tmp_path: Path, answers: dict[str, object], digits: int = 4, name: str = "ann.toml") -> Path:
    path = tmp_path / name
    lines = ["[answers]"] + [f"{json.dumps(k)} = {_toml(v, digits)}" for k, v in answers.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _graded(path: Path, problem: Path = MAZUR) -> dict[str, dict]:
    """The items of SPEC §4's JSON object, by key (through the API: the CLI prints the same object)."""
    return {item["key"]: item for item in check(problem, path).to_dict()["items"]}


def _mazur() -> dict[str, np.ndarray]:
    """Mazur's 2-2-2 network in torch: every value and gradient an answer may ask for."""
    x, y = torch.tensor([0.05, 0.10], dtype=F64), torch.tensor([0.01, 0.99], dtype=F64)
    W1 = torch.tensor([[0.15, 0.20], [0.25, 0.30]], dtype=F64, requires_grad=True)
    W2 = torch.tensor([[0.40, 0.45], [0.50, 0.55]], dtype=F64, requires_grad=True)
    z1 = W1 @ x + 0.35
    h1 = torch.sigmoid(z1)
    z2 = W2 @ h1 + 0.60
    o = torch.sigmoid(z2)
    for t in (z1, h1, z2):
        t.retain_grad()
    E = ((y - o) ** 2).sum() / 2
    E.backward()
    out = {k: t.detach().numpy().copy() for k, t in {"z1": z1, "h1": h1, "z2": z2, "o": o}.items()}
    out.update({"dE/dW1": W1.grad.numpy().copy(), "dE/dW2": W2.grad.numpy().copy(), "dE/dh1": h1.grad.numpy().copy(),
                "dE/dz1": z1.grad.numpy().copy(), "dE/dz2": z2.grad.numpy().copy(), "x": x.numpy(),
                "W2": W2.detach().numpy()})
    return out


# -- matrix answers, judged per entry --------------------------------------------------------

def test_right_matrix_answers_rounded_to_4_digits_pass_in_every_format(tmp_path):
    t = _mazur()
    keys = ["dE/dW1", "dE/dW2", "z1", "h1", "dE/dz2", "dE/dh1"]
    path = _answers(tmp_path, {k: t[k] for k in keys} | {"delta2": t["dE/dz2"], "δ_z1": t["dE/dz1"]})
    report = tmp_path / "class.json"
    text = run_cli("check", str(MAZUR), str(path), "--report", str(report))
    assert text.returncode == 0 and "Score: 8/8" in text.stdout, text.stdout
    items = {i["key"]: i for i in json.loads(report.read_text(encoding="utf-8"))["students"][0]["items"]}
    assert {k: i["verdict"] for k, i in items.items()} == {k: "correct" for k in items}
    assert all(i["diagnosis"] is None for i in items.values())
    assert items["dE/dW1"]["shape"] == [2, 2] and len(items["dE/dW1"]["entries"]) == 4
    np.testing.assert_allclose(items["dE/dW2"]["expected"], t["dE/dW2"], rtol=1e-12)
    assert all(e["verdict"] == "correct" for e in items["dE/dW2"]["entries"])
    assert [e["key"] for e in items["dE/dW2"]["entries"]] == ["dE/dW2[0,0]", "dE/dW2[0,1]", "dE/dW2[1,0]",
                                                              "dE/dW2[1,1]"]


def test_a_wrong_entry_is_named_and_fails_the_item(tmp_path):
    t = _mazur()
    wrong = t["dE/dW2"].copy()
    wrong[1, 0] = 0.03125  # planted: the other entries stay right
    path = _answers(tmp_path, {"dE/dW2": wrong, "z1": t["z1"]})
    items = _graded(path)
    item = items["dE/dW2"]
    assert item["verdict"] == "incorrect" and item["points"] == 0 and items["z1"]["verdict"] == "correct"
    assert [e["verdict"] for e in item["entries"]] == ["correct", "correct", "incorrect", "correct"]
    assert item["entries"][2]["written"] == _sig(0.03125)
    assert "1 of 4 entries are wrong" in item["note"]
    report = tmp_path / "grades.csv"
    text = run_cli("check", str(MAZUR), str(path), "--report", str(report))
    assert text.returncode == 1
    assert "dE/dW2[1,0]" in text.stdout and "dE/dW2[0,0]" not in text.stdout  # only the wrong entry is listed
    markdown = render_markdown([check(MAZUR, path)])
    assert "dE/dW2[1,0] 3.125e-02" in markdown
    # The CSV report: the item's row (with its points), then one row per entry (no points).
    rows = list(csv.DictReader(io.StringIO(report.read_text(encoding="utf-8"))))
    by_key = {r["key"]: r for r in rows}
    assert by_key["dE/dW2"]["points"] == "0" and by_key["dE/dW2[1,0]"]["verdict"] == "incorrect"
    assert by_key["dE/dW2[1,0]"]["points"] == "" and by_key["dE/dW2[0,0]"]["verdict"] == "correct"


def test_an_imprecise_matrix_is_imprecise_not_wrong(tmp_path):
    t = _mazur()
    items = _graded(_answers(tmp_path, {"dE/dW2": t["dE/dW2"]}, digits=2))
    assert items["dE/dW2"]["verdict"] == "imprecise"
    assert {e["verdict"] for e in items["dE/dW2"]["entries"]} == {"imprecise"}


@pytest.mark.parametrize("given, shape", [([0.1, 0.2, 0.3], "(3,)"), (0.5937, "()"),
                                          ([[0.1, 0.2], [0.3, 0.4]], "(2, 2)")])
def test_a_wrong_shape_is_its_own_diagnosis_naming_both_shapes(given, shape):
    report = check(MAZUR, {"h1": given})
    item = report.items[0]
    assert item.verdict == "incorrect" and item.diagnosis is not None and item.diagnosis.code == "wrong_shape"
    assert shape in item.diagnosis.message and "(2,)" in item.diagnosis.message
    assert item.entries == ()


def test_a_ragged_matrix_is_unparseable_not_a_crash(tmp_path):
    path = tmp_path / "ragged.toml"
    path.write_text('[answers]\n"dE/dW1" = [[0.1, 0.2], [0.3]]\n', encoding="utf-8")
    assert _graded(path)["dE/dW1"]["verdict"] == "unparseable"


def test_data_problems_keep_lists_per_sample_apart_from_tensors(tmp_path):
    # Oracle: torch over the 4 XOR samples, mean of the per-sample squared errors.
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=F64)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=F64)
    W1 = torch.tensor([[0.5, -0.4], [0.3, 0.8]], dtype=F64, requires_grad=True)
    b1 = torch.tensor([0.1, -0.1], dtype=F64, requires_grad=True)
    w2 = torch.tensor([0.7, -0.6], dtype=F64, requires_grad=True)
    h = torch.tanh(x @ W1.T + b1)
    p = torch.sigmoid(h @ w2 + 0.05)
    ((p - y) ** 2).mean().backward()
    answers = {"p": p.detach().numpy(),             # a scalar stage per sample: a list, as before
               "h": h.detach().numpy(),             # a vector stage per sample: one row per sample
               "dl/dW1": W1.grad.numpy(), "dl/db1": b1.grad.numpy(), "dl/dw2": w2.grad.numpy()}
    items = _graded(_answers(tmp_path, answers), XOR)
    assert {k: i["verdict"] for k, i in items.items()} == {k: "correct" for k in answers}
    assert items["h"]["shape"] == [4, 2] and "shape" not in items["p"]
    # The per-sample list for a per-sample vector is the wrong shape, and says that rows are samples.
    report = check(XOR, {"h": [0.1, 0.2]})
    assert report.items[0].diagnosis.code == "wrong_shape"
    assert "(4, 2)" in report.items[0].diagnosis.message and "sample" in report.items[0].diagnosis.message


def test_marks_name_a_whole_matrix(tmp_path):
    problem = tmp_path / "marked.toml"
    problem.write_text(MAZUR.read_text(encoding="utf-8") + '\n[marks]\n"dE/dW1" = 4\n"∂E/∂W2" = 2\n',
                       encoding="utf-8")
    t = _mazur()
    report = check(problem, {"dE/dW1": t["dE/dW1"].round(8).tolist()})
    assert report.score == {"correct": 1, "total": 1, "points": 4, "max_points": 6}


# -- formulas over vectors and matrices ---------------------------------------------------------

@pytest.mark.parametrize("key, formula", [
    ("dE/dW2", "delta2 @ h1.T"),
    ("dE/dW2", "outer(delta_z2, h1)"),
    ("dE/dW1", "(W2.T @ delta2 * h1*(1 - h1)) @ x.T"),
    ("dE/dh1", "W2.T @ delta_z2"),
    ("delta2", "(o - y) * o * (1 - o)"),
    ("z1", "W1 @ x + b1"),
    ("dE/dW1[0,1]", "delta_z1_0 * x_1"),  # one entry: a scalar formula, as before
    ("dE/dW2[1,0]", "delta_z2_1 * h1_0"),
])
def test_right_formulas_over_tensors_pass(key, formula):
    item = check(MAZUR, {key: formula}).items[0]
    assert item.verdict == "correct", (item.note, item.diagnosis)


def test_formula_values_are_torchs():
    t = _mazur()
    item = check(MAZUR, {"dE/dW1": "(W2.T @ delta2 * h1*(1 - h1)) @ x.T"}).items[0]
    np.testing.assert_allclose([e.given for e in item.entries], t["dE/dW1"].reshape(-1), rtol=1e-12)


@pytest.mark.parametrize("key, formula, code", [
    ("dE/dW2", "h1 @ delta2.T", "outer_order"),                            # x δᵀ for δ xᵀ
    ("dE/dh1", "W2 @ delta2", "missing_transpose"),                         # W δ for Wᵀ δ
    ("dE/dW1", "(W2 @ delta2 * h1*(1 - h1)) @ x.T", "missing_transpose"),  # ... carried to the first layer
])
def test_wrong_formulas_get_the_matrix_form_diagnosis(key, formula, code):
    item = check(MAZUR, {key: formula}).items[0]
    assert item.verdict == "incorrect" and item.diagnosis is not None and item.diagnosis.code == code
    assert any(e.verdict == "incorrect" for e in item.entries)


@pytest.mark.parametrize("formula, words", [
    ("delta_W2", "unknown name 'delta_W2'"),      # the quantity itself proves nothing
    ("__import__('os')", "unknown function"),
    ("W2.__class__", "not allowed"),
    ("delta2 @ x @ W1", "inner dimensions"),
    ("delta2 +", "not a valid expression"),
])
def test_bad_formulas_are_unparseable_with_the_reason(formula, words):
    item = check(MAZUR, {"dE/dW2": formula}).items[0]
    assert item.verdict == "unparseable" and words in item.note, item.note


def test_a_formula_of_the_wrong_shape_says_so():
    item = check(MAZUR, {"dE/dW2": "delta2"}).items[0]
    assert item.verdict == "incorrect" and item.diagnosis.code == "wrong_shape"


def test_no_eval_reaches_formula_text(monkeypatch):
    def refuse(*_args, **_kwargs):
        raise AssertionError("user text reached eval/sympify")

    monkeypatch.setattr("builtins.eval", refuse)
    monkeypatch.setattr("sympy.sympify", refuse)
    assert check(MAZUR, {"dE/dW2": "delta2 @ h1.T"}).items[0].verdict == "correct"


def test_formulas_in_a_data_problem_describe_one_sample():
    # Oracle: torch (see test_data_problems_keep_lists_per_sample_apart_from_tensors); the formula is
    # one sample's ∂l/∂W1, summed then averaged by the checker as for scalar formulas.
    item = check(XOR, {"dl/dW1": "delta_h * (1 - h**2) @ x.T"}).items[0]
    assert item.verdict == "correct", item.note


# -- matrix-form diagnoses --------------------------------------------------------------------

def test_missing_transpose_in_the_backward_pass_numbers(tmp_path):
    t = _mazur()
    # Planted: δ1 = (W2 δ2) ⊙ σ'(z1) instead of (W2ᵀ δ2) ⊙ σ'(z1), then ∂E/∂W1 = δ1 xᵀ.
    delta1 = (t["W2"] @ t["dE/dz2"]) * t["h1"] * (1 - t["h1"])
    items = _graded(_answers(tmp_path, {"dE/dW1": np.outer(delta1, t["x"]), "dE/dW2": t["dE/dW2"]}))
    assert items["dE/dW2"]["verdict"] == "correct"
    assert items["dE/dW1"]["diagnosis"]["code"] == "missing_transpose"
    assert "W2" in items["dE/dW1"]["diagnosis"]["message"]


def test_outer_product_in_the_wrong_order_softmax(tmp_path):
    # Oracle: torch's cross_entropy + L2, as in tests/test_tensors.py.
    x = torch.tensor([1.0, 2.0, 0.5], dtype=F64)
    W = torch.tensor([[0.2, -0.5, 0.1], [1.5, 1.3, 2.1], [0.0, 0.25, 0.2]], dtype=F64, requires_grad=True)
    b = torch.tensor([0.1, -0.2, 0.3], dtype=F64, requires_grad=True)
    loss = torch.nn.functional.cross_entropy((W @ x + b).unsqueeze(0), torch.tensor([2])) + 0.01 * (W ** 2).sum()
    loss.backward()
    right = {"dL/dW": W.grad.numpy(), "dL/db": b.grad.numpy()}
    assert {k: i["verdict"] for k, i in _graded(_answers(tmp_path, right), SOFTMAX).items()} == \
        {"dL/dW": "correct", "dL/db": "correct"}
    items = _graded(_answers(tmp_path, {"dL/dW": W.grad.numpy().T}, name="bob.toml"), SOFTMAX)
    assert items["dL/dW"]["diagnosis"]["code"] == "outer_order"


def test_outer_order_keeps_the_l2_share():
    # The softmax classifier's ∂L/∂W = δ xᵀ + 2λW: writing x δᵀ + 2λW transposes only the product's share.
    item = check(SOFTMAX, {"dL/dW": "outer(x, delta_z) + 2*lam*W"}).items[0]
    assert item.diagnosis is not None and item.diagnosis.code == "outer_order"
    assert check(SOFTMAX, {"dL/dW": "outer(delta_z, x) + 2*lam*W"}).items[0].verdict == "correct"
    assert check(SOFTMAX, {"dL/dW": "delta_z @ x.T + 2*lam*W"}).items[0].verdict == "correct"


def test_a_matrix_parameter_after_one_step():
    # Oracle: torch's gradient (see _mazur) and the update W − η·∂E/∂W with [train] learning_rate = 0.5.
    t = _mazur()
    W1 = np.array([[0.15, 0.20], [0.25, 0.30]])
    right = check(MAZUR, {"W1+": [[float(_sig(v)) for v in row] for row in W1 - 0.5 * t["dE/dW1"]]}).items[0]
    assert right.verdict == "correct" and right.shape == (2, 2)
    wrong = check(MAZUR, {"W1+": [[float(_sig(v)) for v in row] for row in W1 + 0.5 * t["dE/dW1"]]}).items[0]
    assert wrong.verdict == "incorrect" and wrong.diagnosis.code == "update_sign"


def _broadcast_torch() -> dict[str, np.ndarray]:
    A = torch.tensor([[0.3, -1.2, 0.5], [0.8, 0.1, -0.7]], dtype=F64)
    v = torch.tensor([0.4, -0.9, 1.1], dtype=F64, requires_grad=True)
    c = torch.tensor([[0.5], [-1.5]], dtype=F64, requires_grad=True)
    z = A * c + v
    z.retain_grad()
    (torch.tanh(z) ** 2).sum().backward()
    return {"dv": v.grad.numpy(), "dc": c.grad.numpy(), "dz": z.grad.numpy(), "A": A.numpy(),
            "z": z.detach().numpy()}


def test_broadcast_sums(tmp_path):
    problem = tmp_path / "broadcast.toml"
    problem.write_text(BROADCAST, encoding="utf-8")
    t = _broadcast_torch()
    right = _graded(_answers(tmp_path, {"dL/dv": t["dv"], "dL/dc": t["dc"], "dL/dz": t["dz"], "z": t["z"]}), problem)
    assert {i["verdict"] for i in right.values()} == {"correct"}
    planted = {
        "dL/dv": t["dz"],                                  # not summed back over the rows
        "dL/dc": t["dz"] * t["A"],                         # not summed back over the columns
        "∂L/∂v": t["dz"].sum(axis=1),                      # summed over the wrong axis (shape (2,))
        "∂L/∂c": (t["dz"] * t["A"]).sum(axis=0),           # summed over the wrong axis (shape (3,))
    }
    items = _graded(_answers(tmp_path, planted, name="bob.toml"), problem)
    assert {k: i["diagnosis"]["code"] for k, i in items.items()} == {k: "broadcast_sum" for k in planted}
    assert "(2, 3)" in items["dL/dv"]["diagnosis"]["message"] and "axis 1" in items["∂L/∂v"]["diagnosis"]["message"]
    # A transposed matrix that is not a product's weight: a missing transpose (its shape is (3, 2)).
    item = check(problem, {"z": t["z"].T.round(6).tolist()}).items[0]
    assert item.diagnosis.code == "missing_transpose" and "(3, 2)" in item.diagnosis.message


def test_one_samples_gradient_for_the_whole_data_set():
    # Oracle: torch on sample 1 alone (x = [0, 1], y = 1): its own gradient.
    x, y = torch.tensor([0.0, 1.0], dtype=F64), torch.tensor(1.0, dtype=F64)
    W1 = torch.tensor([[0.5, -0.4], [0.3, 0.8]], dtype=F64, requires_grad=True)
    b1 = torch.tensor([0.1, -0.1], dtype=F64, requires_grad=True)
    w2 = torch.tensor([0.7, -0.6], dtype=F64, requires_grad=True)
    ((torch.sigmoid(w2 @ torch.tanh(W1 @ x + b1) + 0.05) - y) ** 2).backward()
    answers = answers_from_mapping({"dl/dW1": [[float(_sig(v)) for v in row] for row in W1.grad.numpy()],
                                    "dl/db1": [float(_sig(v)) for v in b1.grad.numpy()]})
    report = Grader(XOR).grade(answers)
    assert [i.diagnosis.code if i.diagnosis else None for i in report.items] == ["broadcast_sum"] * 2
    assert "sample 1" in report.items[0].diagnosis.message


def test_right_answers_never_get_a_matrix_form_code():
    # Every tensor quantity of the three examples, right to 3, 4 and 6 digits: no diagnosis at all.
    for problem in (MAZUR, SOFTMAX, XOR):
        grader = Grader(problem)
        keys = [*grader.shapes, *(f"d{grader.graph.loss}/d{n}" for n in grader.shapes)]
        for digits in (3, 4, 6):
            values = {}
            for key in keys:
                q = grader.quantity(key)
                if q is None:
                    continue
                values[key] = np.vectorize(lambda v: float(_sig(v, digits)))(grader.student.correct.get(q)).tolist()
            report = grader.grade(answers_from_mapping(values))
            assert all(i.verdict == "correct" and i.diagnosis is None for i in report.items), \
                (problem.name, digits, [(i.key, i.verdict, i.diagnosis) for i in report.items if i.verdict != "correct"])


def test_scalar_answer_files_are_graded_as_before():
    # The scalar network (no shapes): no matrix-form mistake is in its catalogue, the entry keys still work.
    grader = Grader(EXAMPLES / "seed003_network.toml")
    assert not {m.code for m in grader.singles} & {"missing_transpose", "outer_order", "broadcast_sum"}
    report = check(MAZUR, parse_answers('[answers]\n"dE/dW2[0,0]" = 0.08217\n'))
    assert report.items[0].verdict == "correct" and report.items[0].shape is None


def test_matrix_form_diagnoses_in_chinese():
    item = check(MAZUR, {"dE/dW2": "h1 @ delta2.T"}, lang="zh").items[0]
    assert item.diagnosis.code == "outer_order" and "外积" in item.diagnosis.message


def test_class_of_matrix_answers_in_parallel(tmp_path):
    t = _mazur()
    paths = [_answers(tmp_path, {"dE/dW2": t["dE/dW2"] if k % 2 else t["dE/dW2"].T}, name=f"s{k}.toml")
             for k in range(8)]
    results = check_module.grade_files(MAZUR, paths, jobs=2)
    codes = [g.report.items[0].diagnosis.code if g.report.items[0].diagnosis else None for g in results]
    assert codes == [None if k % 2 else "outer_order" for k in range(8)]


def test_the_class_summary_names_entries_as_people_write_them(tmp_path):
    # An answer key dE/dW2_0_1 or dE/dW2[0][1] is one question, printed dE/dW2[0,1] (never the
    # internal name); a wrong entry (oracle: torch, _mazur) is counted on that question.
    t = _mazur()
    right, wrong = float(t["dE/dW2"][0, 1]), float(t["dE/dW2"][0, 1]) * 2
    paths = [_answers(tmp_path, {"dE/dW2_0_1": right}, name="a.toml"),
             _answers(tmp_path, {"dE/dW2[0][1]": wrong, "dE/dW2": t["dE/dW2"]}, name="b.toml")]
    result = run_cli("check", str(MAZUR), *map(str, paths), "--format", "json")
    summary = json.loads(result.stdout)["summary"]
    questions = {q["key"]: q for q in summary["questions"]}
    assert set(questions) == {"dE/dW2[0,1]", "dE/dW2"}
    assert (questions["dE/dW2[0,1]"]["answered"], questions["dE/dW2[0,1]"]["correct"]) == (2, 1)
    text = run_cli("check", str(MAZUR), *map(str, paths)).stdout
    assert "dE/dW2[0,1]" in text and "W2_0_1" not in text


L2_NET = """title = "A 3-4-2 tanh network with one-hot targets and L2 in [cost]"
[data]
x = [[0.5, -1.0, 2.0], [1.0, 0.0, -0.5], [-1.5, 0.5, 0.25]]
y = [[1, 0], [0, 1], [1, 0]]
[values]
lam = 0.001
[parameters]
W1 = [[0.9, -1.28, 0.1], [0.2, 0.4, -0.5], [0.3, 0.1, 0.8], [-0.6, 0.7, 0.2]]
b1 = [0.0, 0.1, -0.1, 0.0]
W2 = [[0.5, -0.3, 0.2, 0.1], [-0.4, 0.6, 0.3, -0.2]]
b2 = [0.1, -0.1]
[forward]
h = "tanh(W1 @ x + b1)"
l = "cross_entropy(W2 @ h + b2, y)"
[cost]
J = "mean(l) + lam*(norm2(W1) + norm2(W2))"
"""


def _l2_net_gradients() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Oracle: torch autograd, the gradients with and without the L2 term."""
    X = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5], [-1.5, 0.5, 0.25]], dtype=F64)
    Y = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=F64)
    W1 = torch.tensor([[0.9, -1.28, 0.1], [0.2, 0.4, -0.5], [0.3, 0.1, 0.8], [-0.6, 0.7, 0.2]], dtype=F64,
                      requires_grad=True)
    W2 = torch.tensor([[0.5, -0.3, 0.2, 0.1], [-0.4, 0.6, 0.3, -0.2]], dtype=F64, requires_grad=True)
    b1, b2 = torch.tensor([0.0, 0.1, -0.1, 0.0], dtype=F64), torch.tensor([0.1, -0.1], dtype=F64)
    z = torch.tanh(X @ W1.T + b1) @ W2.T + b2
    data = -(Y * torch.log_softmax(z, 1)).sum(1).mean()
    without = dict(zip(("dJ/dW1", "dJ/dW2"), (g.numpy() for g in torch.autograd.grad(data, (W1, W2),
                                                                                     retain_graph=True))))
    J = data + 0.001 * ((W1**2).sum() + (W2**2).sum())
    right = dict(zip(("dJ/dW1", "dJ/dW2"), (g.numpy() for g in torch.autograd.grad(J, (W1, W2)))))
    return right, without


def test_a_matrix_without_its_l2_term_is_a_missing_path_of_the_whole_matrix(tmp_path):
    # A student who forgets λ·2W: every entry of dJ/dW1 leaves out its path through J.  Written to 3
    # decimals, as students do: the entry near 0 (-0.002, one significant digit on its own) is as
    # precise as the rest, only small, so the matrix carries 3 digits and can be diagnosed.
    problem = tmp_path / "l2.toml"
    problem.write_text(L2_NET, encoding="utf-8")
    right, without = _l2_net_gradients()
    rounded = {k: np.round(v, 3) for k, v in without.items()}
    assert rounded["dJ/dW1"][0, 1] == -0.002  # the small entry is there
    path = tmp_path / "no_l2.toml"
    path.write_text("[answers]\n" + "".join(f'"{k}" = {json.dumps(v.tolist())}\n' for k, v in rounded.items()),
                    encoding="utf-8")
    items = _graded(path, problem)
    for key, tensor in (("dJ/dW1", "W1"), ("dJ/dW2", "W2")):
        assert items[key]["verdict"] == "incorrect"
        diagnosis = items[key]["diagnosis"]
        assert diagnosis["code"] == "missing_path", (key, items[key])
        assert f"d J/d{tensor}".replace(" ", "") in diagnosis["message"].replace(" ", "")
        assert "through J was left out, for every entry of " + tensor in diagnosis["message"].replace("\n", " ")
    ok = tmp_path / "right.toml"
    ok.write_text("[answers]\n" + "".join(f'"{k}" = {json.dumps(np.round(v, 6).tolist())}\n'
                                          for k, v in right.items()), encoding="utf-8")
    assert {k: i["verdict"] for k, i in _graded(ok, problem).items()} == {"dJ/dW1": "correct", "dJ/dW2": "correct"}
    # One entry alone is told as one entry, not as the whole matrix.
    one = tmp_path / "one.toml"
    one.write_text(f'[answers]\n"dJ/dW1[0,0]" = {float(rounded["dJ/dW1"][0, 0])!r}\n', encoding="utf-8")
    message = _graded(one, problem)["dJ/dW1[0,0]"]["diagnosis"]["message"]
    assert "every entry" not in message and "dJ/dW1[0,0]" in message and "W1_0_0" not in message


def test_a_formula_too_big_to_compute_is_refused_before_it_is_computed():
    formula = "x"
    for _ in range(4):  # 3 → 9 → 81 → 6,561 → 43 million entries
        formula = f"outer({formula}, {formula})"
    item = check(SOFTMAX, {"dL/dW": formula}).items[0]
    assert item.verdict == "unparseable" and "more than 1,000,000 entries" in item.note


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.integers(2, 3), cols=st.integers(2, 4), seed=st.integers(0, 10_000))
def test_broadcast_property_right_sums_pass_and_unsummed_ones_are_diagnosed(rows, cols, seed):
    # Random shapes and numbers; the oracle is torch autograd on the same broadcast.
    rng = np.random.default_rng(seed)
    A, v, c = rng.uniform(-1, 1, (rows, cols)), rng.uniform(-1, 1, cols), rng.uniform(-1, 1, (rows, 1))
    text = (f"[values]\nA = {json.dumps(A.tolist())}\n[parameters]\nv = {json.dumps(v.tolist())}\n"
            f"c = {json.dumps(c.tolist())}\n[forward]\nz = \"A * c + v\"\nL = \"sum(sin(z) * z)\"\n")
    problem = explain.loads(text, source="broadcast.toml")
    tv, tc = (torch.tensor(a, dtype=F64, requires_grad=True) for a in (v, c))
    z = torch.tensor(A, dtype=F64) * tc + tv
    z.retain_grad()
    (torch.sin(z) * z).sum().backward()
    grader = Grader(problem)

    def grade(values: dict[str, np.ndarray]) -> list:
        return grader.grade(answers_from_mapping({k: np.vectorize(lambda x: float(_sig(x)))(a).tolist()
                                                  for k, a in values.items()})).items

    right = grade({"dL/dv": tv.grad.numpy(), "dL/dc": tc.grad.numpy(), "dL/dz": z.grad.numpy()})
    assert all(i.verdict == "correct" and i.diagnosis is None for i in right), right
    wrong = grade({"dL/dv": z.grad.numpy(), "dL/dc": z.grad.numpy() * A})
    assert [i.diagnosis.code if i.diagnosis else None for i in wrong] == ["broadcast_sum", "broadcast_sum"]


def test_a_formula_right_at_the_problems_numbers_only_is_not_the_formula():
    # W2[0,0] is 0.4 in the problem: the factor is 1 there, and not when the parameters move.
    item = check(MAZUR, {"dE/dW2": "delta2 @ h1.T * (W2_0_0 / 0.4)"}).items[0]
    assert item.verdict == "incorrect" and "not when the parameters change" in item.note
    assert all(e.verdict == "correct" for e in item.entries)  # each entry is right at the problem's numbers


def test_an_unknown_key_names_the_tensors_and_suggests_the_whole_matrix():
    item = check(MAZUR, {"dE/dw2": 0.1}).items[0]
    assert item.verdict == "unknown_key"
    assert "(z1, h1, z2, o, E)" in item.note and "Did you mean 'dE/dW2'?" in item.note


def test_a_vector_may_be_written_as_a_column_or_a_row():
    t = _mazur()
    z1 = [float(_sig(v)) for v in t["z1"]]
    for written in ([[z1[0]], [z1[1]]], [z1]):
        item = check(MAZUR, {"z1": written}).items[0]
        assert item.verdict == "correct" and [e.verdict for e in item.entries] == ["correct", "correct"]
    assert check(MAZUR, {"z1": [[z1[0]], [0.5]]}).items[0].verdict == "incorrect"
