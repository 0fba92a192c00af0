"""Vectors and matrices in problem files, computed through the scalar engine (issue 12, the scalar view).

The oracles are independent of explain: PyTorch autograd written here (float64
tensors with ``requires_grad``), the published value of PyTorch's autograd
tutorial, and the scalar file examples/mazur_network.toml.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import explain
from explain.errors import ExplainError

from .conftest import EXAMPLES, run_cli

TOL = 1e-10


def _toml_value(array: np.ndarray) -> str:
    return json.dumps(np.asarray(array, dtype=float).tolist())


def _problem(parameters: dict[str, np.ndarray], forward: dict[str, str],
             values: dict[str, object] | None = None) -> explain.Problem:
    lines = ["[values]"] + [f"{k} = {v if np.ndim(v) == 0 else _toml_value(v)}" for k, v in (values or {}).items()]
    lines += ["[parameters]"] + [f"{k} = {_toml_value(v)}" for k, v in parameters.items()]
    lines += ["[forward]"] + [f'{k} = "{v}"' for k, v in forward.items()]
    return explain.loads("\n".join(lines), source="test.toml")


def _gradients(problem: explain.Problem, shapes: dict[str, tuple[int, ...]]) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and each tensor parameter's gradient, gathered from its entries' scalar gradients."""
    d = explain.derive(problem)
    grads = {}
    for name, shape in shapes.items():
        grad = np.empty(shape)
        for index in np.ndindex(shape):
            entry = d.gradients.get("_".join([name, *map(str, index)]))
            grad[index] = 0.0 if entry is None else entry.value
        grads[name] = grad
    return d.loss_value, grads


def _torch_gradients(parameters: dict[str, np.ndarray], loss_of) -> tuple[float, dict[str, np.ndarray]]:
    leaves = {k: torch.tensor(np.asarray(v, dtype=float), dtype=torch.float64, requires_grad=True)
              for k, v in parameters.items()}
    loss = loss_of(**leaves)
    loss.backward()
    # A parameter the loss does not use has no .grad in torch: its gradient is 0.
    return float(loss.detach()), {k: np.zeros(t.shape) if t.grad is None else t.grad.numpy() for k, t in leaves.items()}


def _agree(ours: tuple[float, dict[str, np.ndarray]], theirs: tuple[float, dict[str, np.ndarray]]) -> None:
    assert abs(ours[0] - theirs[0]) <= TOL * max(1.0, abs(theirs[0]))
    for name, grad in theirs[1].items():
        np.testing.assert_allclose(ours[1][name], grad, rtol=TOL, atol=TOL, err_msg=name)


# -- the examples --------------------------------------------------------------------

def test_pytorch_autograd_tutorial_gives_4_5_everywhere():
    # Published: PyTorch's 60-minute blitz, "Autograd: Automatic Differentiation":
    # out = mean(3*(x + 2)**2) at x = ones(2, 2) is 27 and x.grad is 4.5 in every entry.
    problem = explain.load(EXAMPLES / "pytorch_autograd_tutorial.toml")
    assert problem.shapes["x"] == (2, 2) and problem.shapes["z"] == (2, 2)
    loss, grads = _gradients(problem, {"x": (2, 2)})
    assert loss == pytest.approx(27.0, abs=1e-12)
    np.testing.assert_allclose(grads["x"], np.full((2, 2), 4.5), atol=1e-12)
    result = run_cli("verify", str(EXAMPLES / "pytorch_autograd_tutorial.toml"))
    assert result.returncode == 0, result.stderr


def test_mazur_matrix_form_gives_the_scalar_files_8_gradients():
    matrix = _gradients(explain.load(EXAMPLES / "mazur_matrix.toml"), {"W1": (2, 2), "W2": (2, 2)})
    # Oracle 1: the scalar file (row j of W holds the weights into unit j: W1 = [[w1, w2], [w3, w4]]).
    scalar = explain.derive(explain.load(EXAMPLES / "mazur_network.toml"))
    expected = {"W1": np.array([[scalar.gradients[f"w{k}"].value for k in row] for row in ((1, 2), (3, 4))]),
                "W2": np.array([[scalar.gradients[f"w{k}"].value for k in row] for row in ((5, 6), (7, 8))])}
    assert matrix[0] == pytest.approx(scalar.loss_value, abs=1e-12)
    for name in expected:
        np.testing.assert_allclose(matrix[1][name], expected[name], rtol=1e-12, atol=1e-15)
    # Oracle 2: torch autograd, written here.  Oracle 3: Mazur's published dE/dw5 and dE/dw1.
    x, y = torch.tensor([0.05, 0.10], dtype=torch.float64), torch.tensor([0.01, 0.99], dtype=torch.float64)

    def loss(W1, W2):
        o = torch.sigmoid(W2 @ torch.sigmoid(W1 @ x + 0.35) + 0.60)
        return ((y - o) ** 2).sum() / 2

    theirs = _torch_gradients({"W1": [[0.15, 0.20], [0.25, 0.30]], "W2": [[0.40, 0.45], [0.50, 0.55]]}, loss)
    _agree(matrix, theirs)
    assert matrix[1]["W2"][0, 0] == pytest.approx(0.082167041, abs=1e-9)
    assert matrix[1]["W1"][0, 0] == pytest.approx(0.000438568, abs=1e-9)


def test_softmax_classifier_matches_torch_cross_entropy():
    problem = explain.load(EXAMPLES / "softmax_classifier.toml")
    ours = _gradients(problem, {"W": (3, 3), "b": (3,)})
    x = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)

    def loss(W, b):
        z = W @ x + b
        return torch.nn.functional.cross_entropy(z.unsqueeze(0), torch.tensor([2])) + 0.01 * (W**2).sum()

    W = [[0.2, -0.5, 0.1], [1.5, 1.3, 2.1], [0.0, 0.25, 0.2]]
    _agree(ours, _torch_gradients({"W": W, "b": [0.1, -0.2, 0.3]}, loss))
    result = run_cli("verify", str(EXAMPLES / "softmax_classifier.toml"))
    assert result.returncode == 0, result.stderr


def test_every_output_format_prints_the_expansion():
    # Text and LaTeX as users get them (the CLI); JSON and Markdown through the API, in process (faster).
    for fmt in ("text", "latex"):
        result = run_cli("solve", str(EXAMPLES / "pytorch_autograd_tutorial.toml"), "--format", fmt)
        assert result.returncode == 0, (fmt, result.stderr)
        # LaTeX writes the entry x_0_1 as x_{0,1}; the others print the internal name.
        names = ("x_{0,1}", "z_{1,0}") if fmt == "latex" else ("x_0_1", "z_1_0")
        assert all(n in result.stdout for n in names), fmt
    solution = explain.solve(EXAMPLES / "pytorch_autograd_tutorial.toml")
    printed = json.dumps(solution.to_dict()) + (solution._repr_markdown_() or "")
    assert "x_0_1" in printed and "z_1_0" in printed


def test_check_grades_matrix_entries_written_as_people_write_them(tmp_path):
    # Expected numbers: Mazur's published dE/dw5 = 0.082167041 and dE/dw2 = 0.000877135.
    answers = tmp_path / "answers.toml"
    answers.write_text('[answers]\n"dE/dW2[0,0]" = 0.0822\n"dE/dW1[0][1]" = 0.000877\n'
                       '"dE/dW1_1_1" = 0.5\n', encoding="utf-8")
    result = run_cli("check", str(EXAMPLES / "mazur_matrix.toml"), str(answers), "--format", "json")
    verdicts = {item["key"]: item["verdict"] for item in json.loads(result.stdout)["items"]}
    assert verdicts == {"dE/dW2[0,0]": "correct", "dE/dW1[0][1]": "correct", "dE/dW1_1_1": "incorrect"}


# -- hand-written problems against torch --------------------------------------------

A = np.array([[0.3, -1.2, 0.5], [0.8, 0.1, -0.7]])
V = np.array([0.4, -0.9, 1.1])
C = np.array([[0.5], [-1.5]])

HAND = [
    # (forward, torch loss over (A, v, c))
    ({"z": "A @ v", "L": "logsumexp(z)"}, lambda A, v, c: torch.logsumexp(A @ v, 0)),
    ({"h": "tanh(A * c + v)", "L": "mean(h**2)"}, lambda A, v, c: (torch.tanh(A * c + v) ** 2).mean()),
    ({"L": "mse(A.T @ (A @ v), v) + sum((c.T @ A).T)"},
     lambda A, v, c: ((A.T @ (A @ v) - v) ** 2).mean() + (c.T @ A).T.sum()),
    ({"L": "sum(sum(A, 0) * v) + norm2(c)"}, lambda A, v, c: (A.sum(0) * v).sum() + (c**2).sum()),
    ({"p": "softmax(A @ v)", "L": "sum(log_softmax(A @ v) * p) / sum(c)"},
     lambda A, v, c: (torch.log_softmax(A @ v, 0) * torch.softmax(A @ v, 0)).sum() / c.sum()),
    ({"L": "cross_entropy(A @ v, 1) + sum(sigmoid(c) / (1 + A**2))"},
     lambda A, v, c: torch.nn.functional.cross_entropy((A @ v).unsqueeze(0), torch.tensor([1]))
     + (torch.sigmoid(c) / (1 + A**2)).sum()),
]


@pytest.mark.parametrize("forward, torch_loss", HAND, ids=[f["L"] for f, _ in HAND])
def test_hand_written_problems_agree_with_torch(forward, torch_loss):
    parameters = {"A": A, "v": V, "c": C}
    ours = _gradients(_problem(parameters, forward), {k: np.shape(v) for k, v in parameters.items()})
    _agree(ours, _torch_gradients(parameters, torch_loss))


# -- random problems against torch ---------------------------------------------------

# Each template: forward text over A (m×n), u (m,), v (n,), k (a class of m), and the same in torch.
TEMPLATES = [
    ("sum(tanh(A @ v) * u)", lambda A, u, v, k: (torch.tanh(A @ v) * u).sum()),
    ("logsumexp(A @ v) + norm2(u)", lambda A, u, v, k: torch.logsumexp(A @ v, 0) + (u**2).sum()),
    ("cross_entropy(A @ v + u, k)",
     lambda A, u, v, k: torch.nn.functional.cross_entropy((A @ v + u).unsqueeze(0), torch.tensor([k]))),
    ("mse(A.T @ u, v)", lambda A, u, v, k: ((A.T @ u - v) ** 2).mean()),
    ("sum(softmax(u) * exp(sum(A, 1) / 4))",
     lambda A, u, v, k: (torch.softmax(u, 0) * torch.exp(A.sum(1) / 4)).sum()),
    ("mean(sigmoid(A) / (1 + v**2) - A * v)", lambda A, u, v, k: (torch.sigmoid(A) / (1 + v**2) - A * v).mean()),
    ("sum(log_softmax(v) * v) + mean(A, 0) @ v",
     lambda A, u, v, k: (torch.log_softmax(v, 0) * v).sum() + A.mean(0) @ v),
]


def draw_array(data: st.DataObject, *shape: int) -> np.ndarray:
    """A random array of this shape, entries in [-2, 2] with 3 decimals (hypothesis draws them)."""
    size = int(np.prod(shape))
    numbers = st.floats(-2, 2, allow_nan=False).map(lambda x: round(x, 3))
    return np.array(data.draw(st.lists(numbers, min_size=size, max_size=size)), dtype=float).reshape(shape)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from(range(len(TEMPLATES))), st.data())
def test_random_tensor_problems_agree_with_torch(m, n, which, data):
    parameters = {"A": draw_array(data, m, n), "u": draw_array(data, m), "v": draw_array(data, n)}
    k = data.draw(st.integers(0, m - 1))
    text, torch_loss = TEMPLATES[which]
    problem = _problem(parameters, {"L": text}, {"k": k})
    ours = _gradients(problem, {name: value.shape for name, value in parameters.items()})
    _agree(ours, _torch_gradients(parameters, lambda A, u, v: torch_loss(A, u, v, k)))


# -- shapes and bad input --------------------------------------------------------------

BAD = [
    ("inner", {"W": [[1, 2, 3], [4, 5, 6]]}, {"z": "W @ W", "L": "sum(z)"},
     ["[forward] z", "(2, 3) @ (2, 3)", "inner dimensions 3 and 2 differ"]),
    ("broadcast", {"W": [[1, 2, 3], [4, 5, 6]], "b": [1, 2]}, {"z": "W + b", "L": "sum(z)"},
     ["[forward] z", "(2, 3) + (2,)", "cannot be broadcast"]),
    ("loss_tensor", {"W": [[1, 2], [3, 4]]}, {"z": "2*W"}, ["[forward] z", "single number", "(2, 2)"]),
    ("loss_key_tensor", {"W": [[1, 2], [3, 4]]}, {"z": "2*W", "L": "sum(z)", "loss": "z"},
     ["loss", "single number"]),
    ("softmax_matrix", {"W": [[1, 2], [3, 4]]}, {"L": "sum(softmax(W))"}, ["softmax() needs a vector", "(2, 2)"]),
    ("label", {"v": [1, 2]}, {"L": "cross_entropy(v, 2)"}, ["label", "0 to 1"]),
    ("mse", {"v": [1, 2], "u": [1, 2, 3]}, {"L": "mse(v, u)"}, ["mse()", "(2,) and (3,)"]),
    ("number_matmul", {"v": [1, 2]}, {"L": "v @ 2"}, ["'@' needs vectors"]),
    ("attribute", {"v": [1, 2]}, {"L": "sum(v.real)"}, ["attribute access is not allowed"]),
]


def _write(tmp_path, parameters, forward):
    forward = dict(forward)
    loss = forward.pop("loss", None)
    lines = ([f'loss = "{loss}"'] if loss else []) + ["[parameters]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in parameters.items()] + ["[forward]"]
    lines += [f'{k} = "{v}"' for k, v in forward.items()]
    path = tmp_path / "p.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("case, parameters, forward, words", BAD, ids=[b[0] for b in BAD])
def test_shape_errors_exit_2_naming_stage_and_shapes(tmp_path, case, parameters, forward, words):
    path = _write(tmp_path, parameters, forward)
    result = run_cli("solve", str(path))
    assert result.returncode == 2, result.stderr
    assert str(path) in result.stderr and not result.stdout
    for word in words:
        assert word in result.stderr, (word, result.stderr)


@pytest.mark.parametrize("value, reason", [
    ("[[1, 2], [3]]", "ragged list: row 1 has 1 entries, row 0 has 2"),
    ('[1, "x"]', "entry [1] must be a number"),
    ("[1, true]", "entry [1] must be a number"),
    ("[]", "empty list"),
    ("[[]]", "empty list"),
    ("[[[1]]]", "more than 2 dimensions"),
    ("[1, [2]]", "mixes numbers and lists"),
])
def test_bad_lists_name_file_key_and_reason(value, reason):
    with pytest.raises(ExplainError) as info:
        explain.loads(f'[parameters]\nW = {value}\n[forward]\nL = "sum(W)"\n', source="bad.toml")
    assert "bad.toml" in str(info.value) and "[parameters] W" in str(info.value) and reason in str(info.value)


@pytest.mark.parametrize("b, shape", [([[1], [2]], (2, 3)), ([1, 2, 3], (2, 3)), ([[1, 2, 3]], (2, 3))])
def test_legal_broadcasting_passes(b, shape):
    problem = explain.loads(f'[parameters]\nW = [[1, 2, 3], [4, 5, 6]]\nb = {json.dumps(b)}\n'
                            f'[forward]\nz = "W * b"\nL = "sum(z)"\n')
    assert problem.shapes["z"] == shape
    # dL/dW = b broadcast to W's shape (hand-derived: L = Σ W_ij b_ij).
    _, grads = _gradients(problem, {"W": (2, 3)})
    np.testing.assert_allclose(grads["W"], np.broadcast_to(np.array(b, dtype=float), shape))


def test_column_plus_row_broadcasts_to_a_matrix():
    # (3,) + (2, 1) -> (2, 3): seed 001's broadcast; the gradient of each operand is summed back.
    problem = explain.loads('[parameters]\nr = [1.0, 2.0, 3.0]\nc = [[10.0], [20.0]]\n'
                            '[forward]\nz = "r + c"\nL = "sum(z**2) / 2"\n')
    ours = _gradients(problem, {"r": (3,), "c": (2, 1)})
    _agree(ours, _torch_gradients({"r": [1.0, 2.0, 3.0], "c": [[10.0], [20.0]]},
                                  lambda r, c: ((r + c) ** 2).sum() / 2))


def test_scalar_files_refuse_matrix_syntax_outside_forward_tensors():
    # @ and .T stay refused where values are numbers (explain grad's expressions).
    result = run_cli("grad", "w @ x", "--at", "w=1,x=2")
    assert result.returncode == 2 and "'@'" in result.stderr
    result = run_cli("grad", "w.real + x", "--at", "w=1,x=2")
    assert result.returncode == 2 and "attribute access" in result.stderr


def test_entry_names_that_collide_are_refused():
    with pytest.raises(ExplainError, match="W_0"):
        explain.loads('[values]\nW_0 = 1\n[parameters]\nW = [1, 2]\n[forward]\nL = "sum(W) + W_0"\n')


# -- [data] columns of one vector per sample -----------------------------------------

def test_vector_data_column_matches_torch_on_the_whole_batch():
    problem = explain.load(EXAMPLES / "xor_vectors.toml")
    assert problem.shapes["x"] == (2,) and problem.n_samples == 4
    ours = _gradients(problem, {"W1": (2, 2), "b1": (2,), "w2": (2,)})
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    Y = torch.tensor([0.0, 1.0, 1.0, 0.0], dtype=torch.float64)

    def loss(W1, b1, w2, b2):
        # The batch written as courses do, rows as samples: X @ W1.T.
        return ((torch.sigmoid(torch.tanh(X @ W1.T + b1) @ w2 + b2) - Y) ** 2).mean()

    theirs = _torch_gradients({"W1": [[0.5, -0.4], [0.3, 0.8]], "b1": [0.1, -0.1], "w2": [0.7, -0.6],
                               "b2": 0.05}, loss)
    _agree(ours, (theirs[0], {k: v for k, v in theirs[1].items() if k != "b2"}))
    assert explain.derive(problem).gradients["b2"].value == pytest.approx(float(theirs[1]["b2"]), abs=TOL)


@pytest.mark.parametrize("column, reason", [
    ("[[1, 2], [3]]", "ragged"),
    ("[[1, 2], [3, 4], [5, 6]]", "has 3 values but the columns before it have 2"),
])
def test_bad_vector_columns(column, reason):
    with pytest.raises(ExplainError, match=reason):
        explain.loads(f'[data]\ny = [1, 2]\nx = {column}\n[parameters]\nw = [1, 1]\n[forward]\nl = "(w @ x - y)**2"\n')


def test_files_naming_a_value_like_a_tensor_function_read_as_before():
    # "mean" and "norm2" were valid names before tensors; a scalar file using them is unchanged.
    problem = explain.loads('[values]\nmean = 2.0\n[parameters]\nnorm2 = 3.0\n[forward]\nL = "mean*norm2**2"\n')
    assert explain.derive(problem).gradients["norm2"].value == pytest.approx(12.0)  # d(2·w²)/dw at 3


@pytest.mark.parametrize("text", [
    '[values]\nW = [1, 2]\n[parameters]\nW = 3\n[forward]\nL = "W*2"\n',
    '[parameters]\nW = [1, 2]\n[forward]\nz = "sum(W)"\nW = "z*2"\n',
])
def test_a_vector_name_cannot_be_defined_again(text):
    with pytest.raises(ExplainError, match="defined twice"):
        explain.loads(text)


def test_mean_of_a_number_in_a_tensor_stage_is_refused():
    # mean() in [forward] reduces a vector; of one number it would silently be the number itself.
    with pytest.raises(ExplainError, match=r"mean\(\) of a single number"):
        explain.loads('[parameters]\nW = [1, 2]\nw = 3\n[forward]\nL = "sum(W) + mean(w)"\n')
