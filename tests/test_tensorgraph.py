"""The tensor view (issue 12): the matrix-form derivation, its link to the scalar view, and its verification.

Oracles, all independent of explain's rules: PyTorch autograd written in this file
(float64, the whole batch at once), Mazur's published update w5+ = 0.358916, and the
scalar view of the same problem file (a path sum per entry, a different mechanism:
SymPy local derivatives of scalar stages).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import explain
from explain.errors import ExplainError
from explain.tensorgraph import TensorProgram, derive_matrix
from explain.tensors import entry_name
from explain.tensorverify import train_program, verify_matrix

from .conftest import EXAMPLES
from .test_tensors import TEMPLATES, _problem, draw_array

TOL = 1e-10
TENSOR_EXAMPLES = ["mazur_matrix", "softmax_classifier", "xor_vectors", "pytorch_autograd_tutorial"]


def _scalar_gradient(d: explain.Derivation, name: str, shape: tuple[int, ...]) -> np.ndarray:
    out = np.empty(shape)
    for index in np.ndindex(shape):
        entry = d.gradients.get(entry_name(name, index) if shape else name)
        out[index] = 0.0 if entry is None else entry.value
    return out


# -- the matrix view is the scalar view ---------------------------------------------------
@pytest.mark.parametrize("example", TENSOR_EXAMPLES)
def test_every_entry_of_the_matrix_form_is_the_scalar_path_sum(example):
    problem = explain.load(EXAMPLES / f"{example}.toml")
    md = derive_matrix(problem)
    d = explain.derive(problem)
    assert md.loss_value == pytest.approx(float(d.loss_value), abs=1e-12)
    for name in md.program.parameters:
        shape = md.program.leaves[name].shape
        np.testing.assert_allclose(md.grad(name), _scalar_gradient(d, name, shape), rtol=1e-12, atol=1e-14)
        for index in np.ndindex(shape):
            assert md.entry(name, index) == pytest.approx(d.grad(entry_name(name, index) if shape else name),
                                                          abs=1e-14)


def test_per_sample_adjoints_agree_with_the_scalar_view():
    problem = explain.load(EXAMPLES / "xor_vectors.toml")
    md, d = derive_matrix(problem), explain.derive(problem)
    assert md.grad("h").shape == (4, 2)  # one row per sample
    for j in range(2):
        np.testing.assert_allclose(md.grad("h")[:, j], d.grad(f"h_{j}"), rtol=1e-12, atol=1e-15)


def test_mazur_in_matrix_form_matches_torch_and_the_published_update():
    md = derive_matrix(explain.load(EXAMPLES / "mazur_matrix.toml"))
    # torch autograd, written here from Mazur's post: W1, W2 with shared biases 0.35 and 0.60.
    W1 = torch.tensor([[0.15, 0.20], [0.25, 0.30]], dtype=torch.float64, requires_grad=True)
    W2 = torch.tensor([[0.40, 0.45], [0.50, 0.55]], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([0.05, 0.10], dtype=torch.float64)
    y = torch.tensor([0.01, 0.99], dtype=torch.float64)
    o = torch.sigmoid(W2 @ torch.sigmoid(W1 @ x + 0.35) + 0.60)
    E = ((y - o) ** 2).sum() / 2
    E.backward()
    assert md.loss_value == pytest.approx(float(E.detach()), abs=TOL)
    np.testing.assert_allclose(md.grad("W1"), W1.grad.numpy(), atol=TOL)
    np.testing.assert_allclose(md.grad("W2"), W2.grad.numpy(), atol=TOL)
    assert 0.40 - 0.5 * md.grad("W2")[0, 0] == pytest.approx(0.358916, abs=5e-7)  # Mazur's w5+


def test_the_rules_read_as_the_textbook_writes_them():
    md = derive_matrix(explain.load(EXAMPLES / "mazur_matrix.toml"))
    rules = {a.name: [t.formula.text(md.loss) for t in a.terms] for a in (*md.adjoints, *md.gradients)}
    assert rules["W2"] == ["dE/dz2 h1^T"]          # ∂L/∂W = δ xᵀ
    assert rules["W1"] == ["dE/dz1 x^T"]
    assert rules["h1"] == ["W2^T @ dE/dz2"]        # ∂L/∂x = Wᵀ δ
    assert rules["z1"] == ["dE/dh1 * sigmoid'(z1)"]  # elementwise: δ ⊙ σ′(z)
    term = next(a for a in md.gradients if a.name == "W2").terms[0]
    assert [arg.shape for arg in term.formula.args] == [(2,), (2,)] and term.formula.shape == (2, 2)


def test_softmax_with_cross_entropy_is_p_minus_onehot():
    program = TensorProgram.from_texts(parameters={"z": [1.0, -2.0, 0.5]}, forward={"L": "cross_entropy(z, 2)"})
    md = derive_matrix(program)
    (term,) = next(a for a in md.gradients if a.name == "z").terms
    assert term.formula.text() == "softmax(z) - onehot(2)"
    z = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    expected = torch.softmax(z, 0) - torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)  # hand-derived p − y
    np.testing.assert_allclose(md.grad("z"), expected.numpy(), atol=1e-15)


def test_seed_001_broadcasting_is_summed_back_over_the_repeated_axis():
    # seed 001: a (3,) vector plus a (3, 1) column broadcasts to (3, 3); b's gradient sums each row.
    program = TensorProgram.from_texts(parameters={"a": [1.0, 2.0, 3.0], "b": [[0.5], [-1.0], [2.0]]},
                                 forward={"s": "a + b", "L": "sum(s**2)"})
    md = derive_matrix(program)
    a = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[0.5], [-1.0], [2.0]], dtype=torch.float64, requires_grad=True)
    ((a + b) ** 2).sum().backward()
    np.testing.assert_allclose(md.grad("b"), b.grad.numpy(), atol=1e-14)
    np.testing.assert_allclose(md.grad("a"), a.grad.numpy(), atol=1e-14)
    (term,) = next(g for g in md.gradients if g.name == "b").terms
    assert term.formula.op == "unbroadcast" and term.formula.args[0].shape == (3, 3)


# -- random problems: torch and the scalar view ------------------------------------------
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from(range(len(TEMPLATES))), st.data())
def test_random_tensor_problems_matrix_form_agrees_with_torch_and_the_scalar_view(m, n, which, data):
    parameters = {"A": draw_array(data, m, n), "u": draw_array(data, m), "v": draw_array(data, n)}
    k = data.draw(st.integers(0, m - 1))
    text, torch_loss = TEMPLATES[which]
    problem = _problem(parameters, {"L": text}, {"k": k})
    md = derive_matrix(problem)
    d = explain.derive(problem)
    leaves = {name: torch.tensor(v, dtype=torch.float64, requires_grad=True) for name, v in parameters.items()}
    loss = torch_loss(leaves["A"], leaves["u"], leaves["v"], k)
    loss.backward()
    assert md.loss_value == pytest.approx(loss.item(), abs=TOL * max(1.0, abs(loss.item())))
    for name, leaf in leaves.items():
        theirs = np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy()
        got = md.grad(name) if name in md.program.parameters else np.zeros(leaf.shape)
        np.testing.assert_allclose(got, theirs, rtol=TOL, atol=TOL, err_msg=name)
        np.testing.assert_allclose(got, _scalar_gradient(d, name, leaf.shape), rtol=1e-12, atol=1e-12)


BROADCASTS = [
    # forward over a (m, n), c (m, 1), v (n,); torch's loss over the same tensors
    ("sum(tanh(A * c + v))", lambda A, c, v: torch.tanh(A * c + v).sum()),
    ("mean((A - c) / (2 + v**2))", lambda A, c, v: ((A - c) / (2 + v**2)).mean()),
    ("logsumexp(sum(A * c, 0) + v)", lambda A, c, v: torch.logsumexp((A * c).sum(0) + v, 0)),
    ("norm2(c.T @ A - v) + sum(softplus(c))", lambda A, c, v: ((c.T @ A - v) ** 2).sum()
     + torch.nn.functional.softplus(c).sum()),
]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 3), st.integers(1, 3), st.sampled_from(range(len(BROADCASTS))), st.data())
def test_random_broadcasting_problems_agree_with_torch(m, n, which, data):
    arrays = {"A": draw_array(data, m, n), "c": draw_array(data, m, 1), "v": draw_array(data, n)}
    text, torch_loss = BROADCASTS[which]
    md = derive_matrix(TensorProgram.from_texts(parameters=arrays, forward={"L": text}))
    leaves = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in arrays.items()}
    loss = torch_loss(**leaves)
    loss.backward()
    assert md.loss_value == pytest.approx(loss.item(), abs=TOL * max(1.0, abs(loss.item())))
    for name, leaf in leaves.items():
        theirs = np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy()
        np.testing.assert_allclose(md.grad(name), theirs, rtol=TOL, atol=TOL, err_msg=name)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 6), st.integers(1, 4), st.integers(2, 4), st.integers(0, 2**31 - 1),
       st.sampled_from(["mean", "sum"]))
def test_random_data_sets_reduce_per_sample_gradients_like_a_torch_batch(samples, inputs, classes, seed, reduction):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(samples, inputs))
    labels = rng.integers(0, classes, size=samples).astype(float)
    W = rng.normal(size=(classes, inputs))
    b = rng.normal(size=classes)
    program = TensorProgram.from_texts(parameters={"W": W, "b": b}, data={"x": X, "k": labels},
                                 forward={"z": "W @ tanh(x) + b", "l": "cross_entropy(z, k)"}, reduction=reduction)
    md = derive_matrix(program)
    Wt = torch.tensor(W, requires_grad=True)
    bt = torch.tensor(b, requires_grad=True)
    logits = torch.tanh(torch.tensor(X)) @ Wt.T + bt  # the whole batch at once: rows are samples
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels).long(), reduction=reduction)
    loss.backward()
    assert md.loss_value == pytest.approx(loss.item(), abs=TOL * max(1.0, abs(loss.item())))
    np.testing.assert_allclose(md.grad("W"), Wt.grad.numpy(), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(md.grad("b"), bt.grad.numpy(), rtol=TOL, atol=TOL)


# -- verification both ways ---------------------------------------------------------------
@pytest.mark.parametrize("example", TENSOR_EXAMPLES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_right_derivations_pass_verification(example, dtype):
    result = verify_matrix(derive_matrix(explain.load(EXAMPLES / f"{example}.toml")), device="cpu", dtype=dtype)
    assert result.passed, [(r.quantity, r.error, r.tolerance) for r in result.failures]
    assert {r.kind for r in result.rows} >= {"value", "gradient"}
    assert result.finite_differences and all(f.status in ("checked", "kink") for f in result.finite_differences)


def test_a_saturated_softmax_and_sigmoid_pass_in_float32():
    # Right but ill-conditioned: 1 − σ(30) and a softmax with logits 40 apart lose every digit in float32.
    program = TensorProgram.from_texts(parameters={"W": [[30.0, -12.0], [20.0, 25.0]], "v": [1.0, 1.5]},
                                 forward={"h": "sigmoid(W @ v)", "L": "cross_entropy(W @ h, 1) + sum(log(1 - h + 1e-30))"})
    result = verify_matrix(derive_matrix(program), device="cpu", dtype="float32")
    assert result.passed, [(r.quantity, r.error, r.tolerance) for r in result.failures]


def test_a_planted_wrong_rule_is_caught_where_it_is(monkeypatch):
    import explain.tensorgraph as tg

    right = tg.vjp

    def missing_transpose(node, g, n_samples=1):
        rules = right(node, g, n_samples)
        if node.op == "matmul" and len(node.args[0].shape) == 2:  # Wᵀ δ written W δ
            rules = [(i, tg.matmul(node.args[0], g) if i == 1 else f) for i, f in rules]
        return rules

    monkeypatch.setattr(tg, "vjp", missing_transpose)
    md = derive_matrix(explain.load(EXAMPLES / "mazur_matrix.toml"))
    result = verify_matrix(md, device="cpu")
    assert not result.passed
    assert result.failures[0].node == "h1"  # the first adjoint the wrong rule computes
    assert "finite_differences" in result.failed_checks


# -- programs too big for the scalar view -------------------------------------------------
def test_a_program_written_directly_needs_no_scalar_expansion():
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(200, 64)), rng.integers(0, 10, size=200).astype(float)
    W1, b1, W2, b2 = rng.normal(size=(32, 64)) / 8, np.zeros(32), rng.normal(size=(10, 32)) / 6, np.zeros(10)
    program = TensorProgram.from_texts(parameters={"W1": W1, "b1": b1, "W2": W2, "b2": b2}, data={"x": X, "y": labels},
                                 forward={"h": "relu(W1 @ x + b1)", "l": "cross_entropy(W2 @ h + b2, y)"})
    md = derive_matrix(program)
    assert md.program.shapes["W1"] == (32, 64)
    result = verify_matrix(md, device="cpu")
    assert result.passed and result.parameter_count == 32 * 64 + 32 + 10 * 32 + 10


def test_shape_errors_name_the_stage_and_both_shapes():
    with pytest.raises(ExplainError) as info:
        TensorProgram.from_texts(parameters={"W": np.ones((2, 3)), "v": np.ones(2)}, forward={"z": "W @ v", "L": "sum(z)"})
    assert "[forward] z" in str(info.value) and "(2, 3) @ (2,)" in str(info.value)


def test_training_the_tensor_program_follows_a_hand_written_torch_loop():
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(16, 3)), rng.normal(size=(16, 2))
    W, b = rng.normal(size=(2, 3)), rng.normal(size=2)
    program = TensorProgram.from_texts(parameters={"W": W, "b": b}, data={"x": X, "y": Y},
                                 forward={"l": "mse(tanh(W @ x + b), y)"})
    ours = train_program(program, learning_rate=0.3, steps=20, device="cpu")
    Wt, bt = torch.tensor(W, requires_grad=True), torch.tensor(b, requires_grad=True)
    losses = []
    for _ in range(20):  # plain gradient descent on the batch mean, written by hand
        loss = ((torch.tanh(torch.tensor(X) @ Wt.T + bt) - torch.tensor(Y)) ** 2).mean(dim=1).mean()
        losses.append(float(loss.detach()))
        Wt.grad = bt.grad = None
        loss.backward()
        with torch.no_grad():
            Wt -= 0.3 * Wt.grad
            bt -= 0.3 * bt.grad
    np.testing.assert_allclose(ours.losses, losses, rtol=1e-12)
    np.testing.assert_allclose(ours.parameters["W"], Wt.detach().numpy(), rtol=1e-12)


def test_verify_command_checks_the_matrix_form_of_a_tensor_problem():
    import json

    from .conftest import run_cli

    result = run_cli("verify", str(EXAMPLES / "xor_vectors.toml"), "--format", "json")
    assert result.returncode == 0, result.stderr
    matrix = json.loads(result.stdout)["matrix_form"]
    assert matrix["passed"] and {r["node"] for r in matrix["rows"]} >= {"h", "W1", "b1", "w2", "b2"}
    text = run_cli("verify", str(EXAMPLES / "mazur_matrix.toml")).stdout
    assert "Matrix form" in text and "dE/dW1[" in text
    scalar = run_cli("verify", str(EXAMPLES / "mazur_network.toml"), "--format", "json").stdout
    assert "matrix_form" not in json.loads(scalar)  # a scalar problem has only the scalar view


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available on this machine")


@needs_cuda
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_matrix_form_verifies_on_cuda(dtype):
    md = derive_matrix(explain.load(EXAMPLES / "xor_vectors.toml"))
    result = verify_matrix(md, device="cuda", dtype=dtype)
    assert result.device == "cuda" and result.passed


@needs_cuda
def test_training_the_tensor_program_on_cuda_gives_the_cpu_numbers():
    program = explain.TensorProgram.from_texts(parameters={"W": [[0.5, -0.2], [0.1, 0.3]], "b": [0.0, 0.1]},
                                               data={"x": [[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]]},
                                               forward={"l": "sum(tanh(W @ x + b)**2)"})
    cpu = train_program(program, 0.1, 5, device="cpu")
    gpu = train_program(program, 0.1, 5, device="cuda")
    assert gpu.device == "cuda"
    np.testing.assert_allclose(gpu.losses, cpu.losses, rtol=1e-12)


def test_asking_for_cuda_without_it_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    md = derive_matrix(explain.load(EXAMPLES / "mazur_matrix.toml"))
    with pytest.raises(ExplainError, match="cuda"):
        verify_matrix(md, device="cuda")


def test_a_file_without_train_table_trains_with_the_defaults():
    # Regression: the torch.optim check read settings that only a [train] table fills (KeyError: 'weight_decay').
    import json

    from .conftest import run_cli

    result = run_cli("train", str(EXAMPLES / "pytorch_autograd_tutorial.toml"), "--format", "json")
    assert result.returncode == 0, result.stderr
    final = json.loads(result.stdout)["final"]["parameters"]
    # PyTorch's tutorial: ∂out/∂x = 4.5 in every entry; one step at the default rate 0.01 gives 1 − 0.045
    assert final["x_0_1"] == pytest.approx(0.955, abs=1e-12)


def test_training_a_tensor_problem_gives_the_scalar_programs_numbers():
    # The tensor program (whole-matrix products) and the scalar program (one node per entry)
    # are two implementations of one problem: their trajectories agree step by step.
    from explain.compile import Program as ScalarProgram
    from explain.graph import Graph
    from explain.train import train

    problem = explain.load(EXAMPLES / "xor_vectors.toml")
    ours = train(problem, steps=50, optimizer="sgd")
    scalar = train(problem, steps=50, optimizer="sgd", dtype="float32")  # float32 keeps the scalar program
    assert ours.dtype == "float64"
    np.testing.assert_allclose(ours.losses, scalar.losses, rtol=1e-5)
    program = ScalarProgram(Graph.from_problem(problem))
    leaves = program.leaves({**problem.parameters, **problem.values, **problem.data})
    from explain.train import _TensorGradients

    tensor = _TensorGradients(explain.tensorgraph.program_of(problem), list(program.graph.nodes),
                              program.graph.parameters)
    loss, grads = tensor(leaves, problem.n_samples)
    loss_s, grads_s = program.loss_and_grad(leaves, problem.n_samples)
    assert loss == pytest.approx(float(loss_s), abs=1e-15)
    np.testing.assert_allclose(grads, [float(g) for g in grads_s], atol=1e-15)


@pytest.mark.parametrize("text, torch_loss", [
    # Found by tests/test_tensor_fuzz.py: a number broadcast into a vector under a whole mean got the mean's
    # one number instead of its sum over the vector; a mean over an axis under a whole mean could not spread.
    ("mean(u + s)", lambda A, u, s: (u + s).mean()),
    ("mean(mean(A, 1))", lambda A, u, s: A.mean(1).mean()),
    ("sum(A * s) + mean(sum(A, 0) - s)", lambda A, u, s: (A * s).sum() + (A.sum(0) - s).mean()),
    # Found when the fuzz gained the verifier: log_softmax's δ − p·Σδ summed the mean's one number once,
    # not once per entry (∂/∂u of mean(log_softmax(u)) is 1/m − softmax(u), by hand; here torch's).
    ("mean(log_softmax(u))", lambda A, u, s: torch.log_softmax(u, 0).mean()),
    ("sum(log_softmax(u * s)) + mean(log_softmax(sum(A, 1)))",
     lambda A, u, s: torch.log_softmax(u * s, 0).sum() + torch.log_softmax(A.sum(1), 0).mean()),
])
def test_whole_reductions_over_broadcast_numbers(text, torch_loss):
    arrays = {"A": np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]), "u": np.array([0.3, -0.6]), "s": np.array(0.7)}
    md = derive_matrix(TensorProgram.from_texts(parameters=arrays, forward={"L": text}))
    t = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in arrays.items()}
    torch_loss(**t).backward()
    for name, leaf in t.items():
        theirs = np.zeros(leaf.shape) if leaf.grad is None else leaf.grad.numpy()
        np.testing.assert_allclose(md.grad(name), theirs, atol=1e-14, err_msg=name)


def test_a_scalar_stage_using_one_entry_has_no_matrix_form_and_still_works(tmp_path):
    # a = "W_0_1 * 3" names one entry: the scalar view derives, verifies and trains it; the matrix view is left out.
    from .conftest import run_cli

    path = tmp_path / "entry.toml"
    path.write_text('[parameters]\nW = [[0.5, -0.2], [0.1, 0.3]]\n[values]\nx = [1.0, 2.0]\n[forward]\n'
                    'z = "W @ x"\na = "W_0_1 * 3"\nL = "sum(z**2) + a"\n[train]\nlearning_rate = 0.1\nsteps = 2\n')
    for command in ("solve", "verify", "train"):
        result = run_cli(command, str(path))
        assert result.returncode == 0, (command, result.stderr)
    assert explain.tensorgraph.matrix_program(explain.load(path)) is None
    # dL/dW[0,1] = 2 z_0 x_1 + 3, hand-derived: z_0 = 0.5·1 − 0.2·2 = 0.1
    assert explain.derive(explain.load(path)).grad("W_0_1") == pytest.approx(2 * 0.1 * 2.0 + 3, abs=1e-12)


def test_the_classifier_written_in_one_line_gives_the_staged_files_gradients(tmp_path):
    # l = cross_entropy(W2 @ relu(W1 @ x + b1) + b2, label) in one stage: inline, each of the
    # 3 logits would be copied into l's scalar expression 4 times (37 s, then 8 s to derive); the
    # reader makes the composite argument a stage of its own, logits_l, as the staged file's z.
    # Both views must still give the staged file's numbers.
    staged = explain.load(EXAMPLES / "classifier_4_10_3.toml")
    text = (EXAMPLES / "classifier_4_10_3.toml").read_text(encoding="utf-8").replace(
        'h = "relu(W1 @ x + b1)"\nz = "W2 @ h + b2"\nl = "cross_entropy(z, label)"',
        'l = "cross_entropy(W2 @ relu(W1 @ x + b1) + b2, label)"')
    assert 'l = "cross_entropy(W2 @ relu' in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the reader's own stage is not reported as anything
        inline = explain.loads(text, source="inline.toml")
    assert inline.shapes["logits_l"] == (3,) and inline.tensor_texts["l"] == "cross_entropy(logits_l, label)"
    assert [s.name for s in inline.stages][:4] == ["logits_l_0", "logits_l_1", "logits_l_2", "l"]
    d_staged, d_inline, md = explain.derive(staged), explain.derive(inline), derive_matrix(inline)
    for name in ("W1", "b1", "W2", "b2"):
        shape = md.program.leaves[name].shape
        np.testing.assert_allclose(_scalar_gradient(d_inline, name, shape), _scalar_gradient(d_staged, name, shape),
                                   rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(md.grad(name), _scalar_gradient(d_staged, name, shape), rtol=1e-12, atol=1e-14)


def test_a_composite_argument_of_softmax_is_staged_once_under_a_free_name(tmp_path):
    # The same argument written twice is one stage; logits_L is taken by the file, so logits_L2;
    # logits_L3 is a later stage's name, so the second argument is logits_L4.  Oracle: torch autograd.
    path = tmp_path / "lift.toml"
    path.write_text('[parameters]\nA = [[0.3, -1.2, 0.5], [0.8, 0.1, -0.7]]\nv = [0.4, -0.9, 1.1]\n'
                    '[values]\nlogits_L = 2.0\n[forward]\n'
                    'L = "sum(log_softmax(A @ v) * softmax(A @ v)) * logits_L + logsumexp(2 * A.T @ (A @ v))"\n'
                    'logits_L3 = "L * 2"\n', encoding="utf-8")  # the last stage is the loss: 2L
    problem = explain.load(path)
    assert problem.tensor_texts["L"] == "sum(log_softmax(logits_L2) * softmax(logits_L2)) * logits_L + logsumexp(logits_L4)"
    assert problem.tensor_texts["logits_L2"] == "A @ v" and problem.tensor_texts["logits_L4"] == "2 * A.T @ (A @ v)"
    A = torch.tensor([[0.3, -1.2, 0.5], [0.8, 0.1, -0.7]], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([0.4, -0.9, 1.1], dtype=torch.float64, requires_grad=True)
    z = A @ v
    L = (torch.log_softmax(z, 0) * torch.softmax(z, 0)).sum() * 2.0 + torch.logsumexp(2 * A.T @ (A @ v), 0)
    (2 * L).backward()
    d = explain.derive(problem)
    np.testing.assert_allclose(_scalar_gradient(d, "A", (2, 3)), A.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(_scalar_gradient(d, "v", (3,)), v.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(derive_matrix(problem).grad("A"), A.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("tables, words", [
    ({"parameters": {"w'] = 0 #": [1.0]}, "forward": {"L": "sum(w)"}}, "not a valid name"),
    ({"parameters": {"w": [1.0]}, "forward": {"w": "sum(w)"}}, "defined twice"),
    ({"parameters": {"w": [1.0]}, "data": {"x": [1.0, 2.0], "y": [1.0]}, "forward": {"l": "w * x * y"}},
     "must hold 2 samples"),
])
def test_a_program_written_directly_checks_its_names_and_samples(tables, words):
    # The library's door takes the rules of a problem file: a name that is not one (it could not be
    # written in a formula, and is never put into the compiled plan but as a quoted key) is refused.
    with pytest.raises(ExplainError, match=words):
        TensorProgram.from_texts(**tables)
