"""Tensor problems in the problem format (issue 12): random tensors, bce, tensors in [cost],
an explicit batch in [values], ``[network] form = "matrix"`` and network data sets, and the
examples xor_network, classifier_4_10_3 and seed001_broadcasting.

Expected numbers come from PyTorch autograd written here (float64 tensors with
``requires_grad``), from NumPy's ``default_rng`` (the documented source of random
tensors), and from seed 001's printed output; never from explain itself.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import explain
from explain.errors import ExplainError

from .conftest import EXAMPLES, run_cli

TOL = 1e-10


def _tensor(value) -> torch.Tensor:
    return torch.tensor(np.asarray(value, dtype=float), dtype=torch.float64)


def _leaf(value) -> torch.Tensor:
    return _tensor(value).requires_grad_(True)


def _entries(problem: explain.Problem, name: str, table: dict[str, float] | None = None) -> np.ndarray:
    """The tensor ``name`` gathered from its entries ``name_i_j`` (parameters by default)."""
    table = problem.parameters if table is None else table
    shape = problem.shapes[name]
    out = np.empty(shape)
    for index in np.ndindex(shape):
        out[index] = table["_".join([name, *map(str, index)])]
    return out


def _grad(derivation, name: str, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(shape)
    for index in np.ndindex(shape):
        entry = derivation.gradients.get("_".join([name, *map(str, index)]))
        out[index] = 0.0 if entry is None else entry.value
    return out


def _close(ours, theirs, what: str) -> None:
    np.testing.assert_allclose(ours, np.asarray(theirs, dtype=float), rtol=TOL, atol=TOL, err_msg=what)


def _fails(text: str, *words: str) -> str:
    with pytest.raises(ExplainError) as info:
        explain.loads(text, source="bad.toml")
    message = str(info.value)
    assert "bad.toml" in message
    for word in words:
        assert word in message, message
    return message


def _cli_fails(tmp_path, text: str, *words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    result = run_cli("solve", str(path))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""  # no half-written output
    assert "bad.toml" in result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


# -- randn(3, 4) / rand(4) ----------------------------------------------------------

RANDOM = """
seed = 5
[values]
v = "rand(4)"
[parameters]
c = "randn()"
W = "randn(3, 4)"
b = "0.1*randn(3)"
[forward]
z = "W @ v + b"
L = "sum(z**2) + c**2"
"""


def test_random_tensors_are_numpys_default_rng_draws_in_file_order():
    # NumPy itself: default_rng(seed), the draws in the order the file gives them
    # ([values] before [parameters]): uniform [0, 1) for rand, standard normal for randn.
    rng = np.random.default_rng(5)
    v = rng.random(4)
    c = rng.standard_normal()
    W = rng.standard_normal((3, 4))
    b = 0.1 * rng.standard_normal(3)
    problem = explain.loads(RANDOM)
    assert problem.shapes["W"] == (3, 4) and problem.shapes["b"] == (3,) and problem.shapes["v"] == (4,)
    np.testing.assert_array_equal(_entries(problem, "v", problem.values), v)
    np.testing.assert_array_equal(_entries(problem, "W"), W)
    np.testing.assert_array_equal(_entries(problem, "b"), b)
    assert problem.parameters["c"] == c
    # Same seed, same numbers; another seed, others.
    assert explain.loads(RANDOM).parameters == problem.parameters
    other = explain.loads(RANDOM.replace("seed = 5", "seed = 6"))
    assert other.parameters["W_0_0"] != problem.parameters["W_0_0"]


def test_random_tensor_gradients_equal_torch():
    problem = explain.loads(RANDOM)
    d = explain.derive(problem)
    W, b = _leaf(_entries(problem, "W")), _leaf(_entries(problem, "b"))
    c = _leaf(problem.parameters["c"])
    v = _tensor(_entries(problem, "v", problem.values))
    loss = ((W @ v + b) ** 2).sum() + c**2  # torch autograd, the independent oracle
    loss.backward()
    assert d.loss_value == pytest.approx(loss.item(), rel=TOL)
    _close(_grad(d, "W", (3, 4)), W.grad, "W")
    _close(_grad(d, "b", (3,)), b.grad, "b")
    _close(d.gradients["c"].value, c.grad, "c")


def test_a_random_matrix_in_data_is_one_vector_per_sample():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 3))  # NumPy: the 5 samples, row by row
    problem = explain.loads('seed = 2\n[data]\nx = "randn(5, 3)"\n'
                            '[parameters]\nw = [0.1, 0.2, 0.3]\n[forward]\nl = "(w @ x)**2"\n')
    assert problem.shapes["x"] == (3,) and problem.n_samples == 5
    for j in range(3):
        np.testing.assert_array_equal(problem.data[f"x_{j}"], x[:, j])


@pytest.mark.parametrize("text, words", [
    ('W = "randn(3, 4, 5)"', ["[parameters] W", "randn(rows, columns)"]),
    ('W = "randn(0, 4)"', ["[parameters] W", "at least 1"]),
    ('W = "rand(100, 100)"', ["[parameters] W", "10000 entries", "4096"]),
    ('W = "randn(n)"', ["[parameters] W", "single number"]),
])
def test_bad_random_tensors_are_refused(tmp_path, text, words):
    source = f'seed = 1\n[values]\nn = 3\n[parameters]\n{text}\n[forward]\nL = "sum(W)"\n'
    _fails(source, *words)
    _cli_fails(tmp_path, source, *words)


# -- bce(p, y) ----------------------------------------------------------------------

def test_bce_of_vectors_is_torchs_mean_binary_cross_entropy():
    x, y = [0.5, -1.0, 2.0], [1.0, 0.0, 1.0]
    W0 = [[0.2, -0.3, 0.1], [0.4, 0.1, -0.5], [-0.2, 0.3, 0.6]]
    problem = explain.loads(f'[values]\nx = {x}\ny = {y}\n[parameters]\nW = {W0}\nb = [0.1, -0.1, 0.2]\n'
                            '[forward]\np = "sigmoid(W @ x + b)"\nL = "bce(p, y)"\n')
    assert problem.tensor_texts["L"] == "bce(p, y)"
    d = explain.derive(problem)
    W, b = _leaf(W0), _leaf([0.1, -0.1, 0.2])
    loss = F.binary_cross_entropy(torch.sigmoid(W @ _tensor(x) + b), _tensor(y), reduction="mean")
    loss.backward()
    assert d.loss_value == pytest.approx(loss.item(), rel=TOL)
    _close(_grad(d, "W", (3, 3)), W.grad, "W")
    _close(_grad(d, "b", (3,)), b.grad, "b")


def test_bce_of_numbers():
    problem = explain.loads('[values]\nx = 1.5\ny = 1.0\n[parameters]\nw = 0.3\n'
                            '[forward]\np = "sigmoid(w*x)"\nL = "bce(p, y)"\n')
    d = explain.derive(problem)
    w = _leaf(0.3)
    loss = F.binary_cross_entropy(torch.sigmoid(w * 1.5), _tensor(1.0))
    loss.backward()
    assert d.loss_value == pytest.approx(loss.item(), rel=TOL)
    _close(d.gradients["w"].value, w.grad, "w")


LOGISTIC = """title = "Logistic regression on vector data"
reduction = "mean"
[data]
x = [[1.0, 2.0], [2.0, 0.5], [-3.0, -1.0], [0.0, 1.5]]
y = [1, 1, 0, 0]
[parameters]
w = [0.1, -0.2]
b = 0.0
[forward]
p = "sigmoid(w @ x + b)"
l = "bce(p, y)"
"""


@pytest.mark.parametrize("loss", ["bce(p, y)", "mse(p, y)", "bce(p, y) + 0.1*norm2(b)"])
def test_losses_of_numbers_per_sample_verify_and_equal_torch(tmp_path, loss):
    # bce/mse of one number per sample: `explain verify` stopped with an internal error (torch read a
    # mean over no axes as one over all, the samples too).  Oracle: torch on the whole batch.
    path = tmp_path / "logistic.toml"
    path.write_text(LOGISTIC.replace('l = "bce(p, y)"', f'l = "{loss}"'), encoding="utf-8")
    result = run_cli("verify", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    X = _tensor([[1.0, 2.0], [2.0, 0.5], [-3.0, -1.0], [0.0, 1.5]])
    y = _tensor([1.0, 1.0, 0.0, 0.0])
    w, b = _leaf([0.1, -0.2]), _leaf(0.0)
    p = torch.sigmoid(X @ w + b)
    per_sample = {"bce(p, y)": F.binary_cross_entropy(p, y, reduction="none"),
                  "mse(p, y)": (p - y) ** 2,
                  "bce(p, y) + 0.1*norm2(b)": F.binary_cross_entropy(p, y, reduction="none") + 0.1 * b**2}[loss]
    per_sample.mean().backward()
    d = explain.derive(explain.load(path))
    assert d.loss_value == pytest.approx(per_sample.mean().item(), rel=TOL)
    for k in range(2):
        _close(d.gradients[f"w_{k}"].value, w.grad[k], f"w_{k}")
    _close(d.gradients["b"].value, b.grad, "b")
    np.testing.assert_allclose(explain.derive_matrix(explain.load(path)).grad("w"), w.grad.numpy(), rtol=TOL, atol=TOL)


def test_bce_with_shapes_that_differ_is_refused(tmp_path):
    source = ('[values]\ny = [1.0, 0.0]\n[parameters]\nz = [0.1, 0.2, 0.3]\n'
              '[forward]\nL = "bce(sigmoid(z), y)"\n')
    _fails(source, "[forward] L", "bce()", "(3,)", "(2,)")
    _cli_fails(tmp_path, source, "[forward] L", "(3,)", "(2,)")


# -- tensors in [cost] --------------------------------------------------------------

COST = """
[data]
x = [[1.0, 2.0], [0.5, -1.0], [-2.0, 0.3]]
y = [1.0, -1.0, 0.5]
[values]
lam = 0.1
[parameters]
W = [[0.3, -0.2], [0.1, 0.4]]
v = [0.5, -0.7]
[forward]
h = "tanh(W @ x)"
l = "(v @ h - y)**2"
[cost]
R = "W**2"
J = "mean(l) + lam*(sum(R) + norm2(v)) + sum(l)/10"
"""


def test_tensor_cost_stages_add_the_penalty_once_after_the_reduction():
    problem = explain.loads(COST)
    assert problem.tensor_texts["R"] == "W**2" and problem.tensor_texts["J"].startswith("mean(l)")
    assert problem.shapes["R"] == (2, 2)
    d = explain.derive(problem)
    X, Y = _tensor([[1.0, 2.0], [0.5, -1.0], [-2.0, 0.3]]), _tensor([1.0, -1.0, 0.5])
    W, v = _leaf([[0.3, -0.2], [0.1, 0.4]]), _leaf([0.5, -0.7])
    l = (torch.tanh(X @ W.T) @ v - Y) ** 2  # torch: one row per sample
    loss = l.mean() + 0.1 * ((W**2).sum() + (v**2).sum()) + l.sum() / 10
    loss.backward()
    assert d.loss_value == pytest.approx(loss.item(), rel=TOL)
    _close(_grad(d, "W", (2, 2)), W.grad, "W")
    _close(_grad(d, "v", (2,)), v.grad, "v")


def test_a_per_sample_vector_outside_a_reduction_in_cost_is_refused(tmp_path):
    source = COST.replace('J = "mean(l) + lam*(sum(R) + norm2(v)) + sum(l)/10"', 'J = "mean(l) + norm2(h)"')
    # the message names the vector h as written (not its internal entry h_0) and how to reduce it
    _fails(source, "[cost] J", "'h' has one vector per sample")
    _cli_fails(tmp_path, source, "[cost] J", 'l = "sum(h)"')


def test_mean_of_a_parameter_in_cost_is_not_a_sample_reduction(tmp_path):
    source = COST.replace('J = "mean(l) + lam*(sum(R) + norm2(v)) + sum(l)/10"', 'J = "mean(l) + mean(lam)"')
    _fails(source, "[cost] J", "per-sample stage")


# -- integer class labels in [data] --------------------------------------------------

@pytest.mark.parametrize("labels, words", [("[0, 3, 1]", ["sample 1 is 3.0", "0 to 2"]),
                                           ("[0, 0.5, 1]", ["sample 1 is 0.5"])])
def test_class_labels_must_be_classes_of_the_logits(tmp_path, labels, words):
    source = (f'[data]\nx = [[1.0, 2.0], [0.5, -1.0], [-2.0, 0.3]]\nlabel = {labels}\n'
              '[parameters]\nW = [[0.3, -0.2], [0.1, 0.4], [0.0, 0.2]]\n'
              '[forward]\nl = "cross_entropy(W @ x, label)"\n')
    _fails(source, "[forward] l", "label", *words)
    _cli_fails(tmp_path, source, "[forward] l", *words)


# -- a matrix in [values] is a batch written explicitly -----------------------------

BATCH = """
[values]
X = [[0.1, 0.2, 0.3, 0.4], [0.5, -0.6, 0.7, 0.8], [-0.9, 1.0, 1.1, 1.2], [1.3, 1.4, -1.5, 1.6], [1.7, 1.8, 1.9, -2.0]]
Y = [[1.0], [0.0], [1.0], [0.0], [1.0]]
[parameters]
W1 = [[0.2, -0.1, 0.4, 0.3], [-0.5, 0.3, 0.1, 0.2], [0.3, 0.3, -0.2, 0.1]]
b1 = [0.1, -0.1, 0.2]
W2 = [[0.5, -0.4, 0.3]]
b2 = [0.0]
[forward]
Z1 = "X @ W1.T + b1"
A1 = "tanh(Z1)"
P = "sigmoid(A1 @ W2.T + b2)"
loss = "mean((P - Y)**2)"
[train]
learning_rate = 0.5
steps = 5
"""


def _batch_torch(W1, b1, W2, b2):
    X = _tensor([[0.1, 0.2, 0.3, 0.4], [0.5, -0.6, 0.7, 0.8], [-0.9, 1.0, 1.1, 1.2], [1.3, 1.4, -1.5, 1.6],
                 [1.7, 1.8, 1.9, -2.0]])
    Y = _tensor([[1.0], [0.0], [1.0], [0.0], [1.0]])
    return ((torch.sigmoid(torch.tanh(X @ W1.T + b1) @ W2.T + b2) - Y) ** 2).mean()


def test_a_matrix_in_values_is_a_batch_written_explicitly(tmp_path):
    problem = explain.loads(BATCH)
    assert problem.shapes["Z1"] == (5, 3) and not problem.data  # b1 (3,) broadcast over the 5 rows
    d = explain.derive(problem)
    start = {n: _entries(problem, n) for n in ("W1", "b1", "W2", "b2")}
    leaves = {n: _leaf(v) for n, v in start.items()}
    loss = _batch_torch(**leaves)
    loss.backward()
    assert d.loss_value == pytest.approx(loss.item(), rel=TOL)
    for name, leaf in leaves.items():
        _close(_grad(d, name, leaf.shape), leaf.grad, name)
    # Training: 5 steps of plain gradient descent equal a torch loop (lr 0.5).
    training = explain.solve(problem).training
    with torch.no_grad():
        params = {n: _leaf(v) for n, v in start.items()}
    for step in range(6):
        loss = _batch_torch(**params)
        assert training.losses[step] == pytest.approx(loss.item(), rel=1e-9)
        if step == 5:
            break
        grads = torch.autograd.grad(loss, list(params.values()))
        with torch.no_grad():
            params = {n: (p - 0.5 * g).requires_grad_(True) for (n, p), g in zip(params.items(), grads)}
    final = training.final_parameters
    for name, p in params.items():
        _close(_entries(problem, name, final), p.detach(), name)
    path = tmp_path / "batch.toml"
    path.write_text(BATCH)
    # The CLI's solve verifies against torch and trains (compared with torch.optim) as well.
    result = run_cli("solve", str(path))
    assert result.returncode == 0, result.stderr
    assert "Every check passed" in result.stdout and "agree with torch.optim.SGD" in result.stdout


# -- [network] form = "matrix" and data sets ------------------------------------------

MAZUR = """
[network]
form = "matrix"
inputs  = [0.05, 0.10]
targets = [0.01, 0.99]
[[network.layers]]
units = 2
weights = [[0.15, 0.20], [0.25, 0.30]]
bias = 0.35
[[network.layers]]
units = 2
weights = [[0.40, 0.45], [0.50, 0.55]]
bias = 0.60
"""


def test_matrix_form_network_gives_mazurs_gradients():
    problem = explain.loads(MAZUR)
    assert problem.tensor_texts == {"z1": "W1 @ x + b1", "a1": "sigmoid(z1)", "z2": "W2 @ a1 + b2",
                                    "a2": "sigmoid(z2)", "L": "sum((a2 - y)**2)/2"}
    assert problem.shapes["W1"] == (2, 2) and problem.values["b1"] == 0.35
    d = explain.derive(problem)
    # Mazur's published results: E_total = 0.298371109, w5 (W2[0,0]) → 0.082167041, w1 (W1[0,0]) → 0.000438568.
    assert d.loss_value == pytest.approx(0.298371109, abs=1e-9)
    assert d.gradients["W2_0_0"].value == pytest.approx(0.082167041, abs=1e-9)
    assert d.gradients["W1_0_0"].value == pytest.approx(0.000438568, abs=1e-9)
    scalar = explain.derive(explain.load(EXAMPLES / "mazur_network.toml"))
    for k, entry in enumerate(["W1_0_0", "W1_0_1", "W1_1_0", "W1_1_1", "W2_0_0", "W2_0_1", "W2_1_0", "W2_1_1"]):
        assert d.gradients[entry].value == pytest.approx(scalar.gradients[f"w{k + 1}"].value, rel=TOL)


@pytest.mark.parametrize("loss, torch_loss", [
    ("half_sse", lambda a, y: ((a - y) ** 2).sum() / 2),
    ("sse", lambda a, y: ((a - y) ** 2).sum()),
    ("mse", lambda a, y: F.mse_loss(a, y)),
    ("bce", lambda a, y: F.binary_cross_entropy(a, y)),
])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_network_data_sets_in_matrix_form_equal_torch(loss, torch_loss, reduction):
    inputs = [[0.1, 0.5, -0.3], [0.7, -0.2, 0.4], [-0.6, 0.9, 0.2], [0.3, 0.3, 0.3]]
    targets = [[0.2, 0.9], [0.8, 0.1], [0.5, 0.5], [0.0, 1.0]]
    W1, b1 = [[0.2, -0.4, 0.1], [0.5, 0.3, -0.2]], [0.1, -0.1]
    W2, b2 = [[0.6, -0.3], [0.2, 0.7]], [0.05, -0.05]
    problem = explain.loads(f"""
[network]
form = "matrix"
inputs = {inputs}
targets = {targets}
loss = "{loss}"
reduction = "{reduction}"
[[network.layers]]
units = 2
activation = "tanh"
weights = {W1}
bias = {b1}
train_bias = true
[[network.layers]]
units = 2
weights = {W2}
bias = {b2}
train_bias = true
""")
    assert problem.n_samples == 4 and problem.reduction == reduction and problem.shapes["x"] == (3,)
    d = explain.derive(problem)
    leaves = {n: _leaf(v) for n, v in (("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2))}
    per_sample = torch.stack([
        torch_loss(torch.sigmoid(leaves["W2"] @ torch.tanh(leaves["W1"] @ _tensor(x) + leaves["b1"])
                                 + leaves["b2"]), _tensor(y))
        for x, y in zip(inputs, targets)])
    total = per_sample.mean() if reduction == "mean" else per_sample.sum()
    total.backward()
    assert d.loss_value == pytest.approx(total.item(), rel=TOL)
    for name, leaf in leaves.items():
        _close(_grad(d, name, leaf.shape), leaf.grad, name)


def test_network_data_sets_in_the_scalar_namings():
    # The io naming over 2 samples: the same numbers as torch over the two samples, summed.
    inputs, targets = [[0.05, 0.10], [0.3, 0.2]], [[0.01, 0.99], [0.5, 0.5]]
    problem = explain.loads(MAZUR.replace('form = "matrix"', 'naming = "io"\nreduction = "sum"')
                            .replace("inputs  = [0.05, 0.10]", f"inputs = {inputs}")
                            .replace("targets = [0.01, 0.99]", f"targets = {targets}"))
    assert sorted(problem.data) == ["x1", "x2", "y1", "y2"]
    d = explain.derive(problem)
    W1, W2 = _leaf([[0.15, 0.20], [0.25, 0.30]]), _leaf([[0.40, 0.45], [0.50, 0.55]])
    total = sum(((torch.sigmoid(W2 @ torch.sigmoid(W1 @ _tensor(x) + 0.35) + 0.60) - _tensor(y)) ** 2).sum() / 2
                for x, y in zip(inputs, targets))
    total.backward()
    assert d.loss_value == pytest.approx(total.item(), rel=TOL)
    ours = [d.gradients[f"w{k}"].value for k in range(1, 9)]
    _close(ours, [*W1.grad.flatten().tolist(), *W2.grad.flatten().tolist()], "w1..w8")


NET = """
[network]
form = "matrix"
inputs = [[0, 0], [0, 1], [1, 0]]
targets = [0, 1, 1]
[[network.layers]]
units = 2
weights = [[0.1, 0.2], [0.3, 0.4]]
[[network.layers]]
units = 1
weights = [[0.5, 0.6]]
"""


@pytest.mark.parametrize("old, new, words", [
    ('form = "matrix"', 'form = "tensor"', ["[network] form", "scalar, matrix"]),
    ('form = "matrix"', 'form = "matrix"\nnaming = "io"', ["[network] naming", "remove naming"]),
    ("weights = [[0.5, 0.6]]", "weights = [[0.5, 0.6, 0.7]]", ["layers[1] weights", "(1, 3)", "(1, 2)"]),
    ("weights = [[0.5, 0.6]]", 'weights = "sin(1)"', ["layers[1] weights", "randn()"]),
    ("targets = [0, 1, 1]", "targets = [0, 1]", ["[network] targets", "2 samples", "inputs has 3"]),
    ("targets = [0, 1, 1]", "targets = [[0, 1], [1, 0], [1, 1]]", ["[network] targets", "last layer has 1"]),
    ("inputs = [[0, 0], [0, 1], [1, 0]]\ntargets = [0, 1, 1]", "inputs = [0, 1]\ntargets = [1]\nreduction = \"mean\"",
     ["[network] reduction", "data set"]),
    ("[network]", 'reduction = "mean"\n[network]', ["reduction", "network.reduction"]),
    ("inputs = [[0, 0], [0, 1], [1, 0]]", "inputs = [[0, 0], [0], [1, 0]]", ["[network] inputs", "ragged"]),
])
def test_bad_network_data_sets_and_matrix_forms_are_refused(tmp_path, old, new, words):
    source = NET.replace(old, new)
    assert source != NET
    _fails(source, *words)
    _cli_fails(tmp_path, source, *words)


def test_matrix_form_random_weights_are_one_random_matrix():
    problem = explain.loads("seed = 4\n" + NET.replace("weights = [[0.1, 0.2], [0.3, 0.4]]",
                                                       'weights = "0.5*randn()"'))
    expected = 0.5 * np.random.default_rng(4).standard_normal((2, 2))  # NumPy, the documented source
    np.testing.assert_array_equal(_entries(problem, "W1"), expected)


# -- the examples ---------------------------------------------------------------------

def test_xor_network_trains_as_a_torch_loop_does():
    problem = explain.load(EXAMPLES / "xor_network.toml")
    assert problem.n_samples == 4 and problem.tensor_texts["z1"] == "W1 @ x + b1"
    training = explain.solve(problem).training
    X = _tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
    Y = _tensor([[0], [1], [1], [0]])
    params = [_leaf([[1.2, -1.1], [-1.0, 1.3]]), _leaf([0.1, 0.2]), _leaf([[0.9, 1.0]]), _leaf([-0.4])]
    losses = []
    for step in range(501):  # torch: full-batch gradient descent, lr 1.0, mean BCE over the 4 samples
        W1, b1, W2, b2 = params
        loss = F.binary_cross_entropy(torch.sigmoid(torch.sigmoid(X @ W1.T + b1) @ W2.T + b2), Y)
        losses.append(loss.item())
        if step == 500:
            break
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            params = [(p - 1.0 * g).requires_grad_(True) for p, g in zip(params, grads)]
    np.testing.assert_allclose(training.losses, losses, rtol=1e-9, atol=1e-12)
    assert losses[0] > 0.7 and losses[-1] < 0.05  # the loss falls visibly
    for name, p in zip(("W1", "b1", "W2", "b2"), params):
        np.testing.assert_allclose(_entries(problem, name, training.final_parameters), p.detach(),
                                   rtol=1e-9, atol=1e-12, err_msg=name)
    # The text prints each trained matrix whole, with torch's numbers (6 significant digits).
    out = run_cli("train", str(EXAMPLES / "xor_network.toml")).stdout
    final = next(line for line in out.splitlines() if line.startswith("After 500 steps"))
    assert "W1_0_0" not in final
    W1 = params[0].detach().numpy()
    assert f"W1 = [[{W1[0, 0]:.6g}, {W1[0, 1]:.6g}], [{W1[1, 0]:.6g}, {W1[1, 1]:.6g}]]" in final, final


def test_classifier_4_10_3_loss_and_every_gradient_equal_torch():
    problem = explain.load(EXAMPLES / "classifier_4_10_3.toml")
    d = explain.derive(problem)
    X = np.stack([problem.data[f"x_{j}"] for j in range(4)], axis=1)
    labels = torch.tensor(problem.data["label"].astype(int))
    leaves = {n: _leaf(_entries(problem, n)) for n in ("W1", "b1", "W2", "b2")}
    assert [tuple(t.shape) for t in leaves.values()] == [(10, 4), (10,), (3, 10), (3,)]
    h = torch.relu(_tensor(X) @ leaves["W1"].T + leaves["b1"])
    logits = h @ leaves["W2"].T + leaves["b2"]
    loss = F.cross_entropy(logits, labels) + 0.01 * ((leaves["W1"] ** 2).sum() + (leaves["W2"] ** 2).sum())
    loss.backward()
    assert d.loss_value == pytest.approx(loss.item(), rel=TOL)
    for name, leaf in leaves.items():
        _close(_grad(d, name, tuple(leaf.shape)), leaf.grad, name)
    assert len(d.gradients) == 40 + 10 + 30 + 3


def test_seed001_broadcasting_sums_the_gradient_back_over_the_broadcast_axis():
    problem = explain.load(EXAMPLES / "seed001_broadcasting.toml")
    assert problem.shapes["c"] == (3, 3)
    d = explain.derive(problem)
    # Seed 001's printed output: c = a + b = [[2, 3, 4], [3, 4, 5], [4, 5, 6]].
    c = np.array([[d.values[f"c_{i}_{j}"] for j in range(3)] for i in range(3)])
    np.testing.assert_array_equal(c, [[2, 3, 4], [3, 4, 5], [4, 5, 6]])
    a, b = _leaf([1.0, 2.0, 3.0]), _leaf([[1.0], [2.0], [3.0]])
    loss = ((a + b) ** 2).sum() / 2  # torch autograd sums b's gradient over axis 1, a's over axis 0
    loss.backward()
    assert d.loss_value == pytest.approx(loss.item(), rel=TOL)
    _close(_grad(d, "b", (3, 1)), b.grad, "b")
    _close(_grad(d, "a", (3,)), a.grad, "a")
    _close(b.grad.flatten(), [9.0, 12.0, 15.0], "row sums of c")


@pytest.mark.parametrize("name", ["xor_network", "classifier_4_10_3", "seed001_broadcasting"])
def test_new_examples_solve_as_they_are(name):
    result = run_cli("solve", str(EXAMPLES / f"{name}.toml"))
    assert result.returncode == 0, result.stderr
    assert "Every check passed" in result.stdout
