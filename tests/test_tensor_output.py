"""The matrix-form derivation in every output format (issue 12): text, Markdown, LaTeX, Typst/PDF,
JSON and the tensor-level graph carry the same forward values, gradients and shapes.

Expected numbers come from PyTorch autograd written here (an independent oracle: the
network is written again in torch, not read from explain's derivation).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import explain
from explain.render import text
from explain.render.document import SECTIONS
from explain.render.mathprint import LatexMath, TextMath, TypstMath
from tests.conftest import EXAMPLES, ROOT, run_cli
from tests.test_document import outputs

torch = pytest.importorskip("torch")

MAZUR = EXAMPLES / "mazur_matrix.toml"
CLASSIFIER = ROOT / "tests" / "data" / "classifier_4_10_3.toml"
PRECISION = 6


def _t(x: object) -> "torch.Tensor":
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


def mazur_torch() -> dict[str, np.ndarray]:
    """Mazur's 2-2-2 network in torch: the forward values and ∂E/∂W1, ∂E/∂W2."""
    x, y = torch.tensor([0.05, 0.10], dtype=torch.float64), torch.tensor([0.01, 0.99], dtype=torch.float64)
    b1, b2 = torch.tensor([0.35, 0.35], dtype=torch.float64), torch.tensor([0.60, 0.60], dtype=torch.float64)
    W1, W2 = _t([[0.15, 0.20], [0.25, 0.30]]), _t([[0.40, 0.45], [0.50, 0.55]])
    z1 = W1 @ x + b1
    h1 = torch.sigmoid(z1)
    z2 = W2 @ h1 + b2
    o = torch.sigmoid(z2)
    E = ((y - o) ** 2).sum() / 2
    E.backward()
    return {"z1": z1.detach().numpy(), "h1": h1.detach().numpy(), "o": o.detach().numpy(), "E": E.item(),
            "W1": W1.grad.numpy(), "W2": W2.grad.numpy()}


def classifier_torch() -> dict[str, np.ndarray]:
    """The 4-10-3 classifier of tests/data in torch, its numbers read from the file's TOML."""
    import tomllib

    data = tomllib.loads(CLASSIFIER.read_text(encoding="utf-8"))
    X = torch.tensor(data["data"]["x"], dtype=torch.float64)
    Y = torch.tensor(data["data"]["y"], dtype=torch.float64)
    lam = data["values"]["lam"]
    p = {k: _t(v) for k, v in data["parameters"].items()}
    z1 = X @ p["W1"].T + p["b1"]
    h1 = torch.relu(z1)
    z2 = h1 @ p["W2"].T + p["b2"]
    l = -(Y * torch.log_softmax(z2, dim=1)).sum(dim=1)
    J = l.mean() + lam / 2 * ((p["W1"] ** 2).sum() + (p["W2"] ** 2).sum())
    J.backward()
    out = {k: v.grad.numpy() for k, v in p.items()}
    out.update(h1=h1.detach().numpy(), z2=z2.detach().numpy(), J=J.item())
    return out


@pytest.fixture(scope="module")
def mazur() -> explain.Solution:
    return explain.solve(MAZUR, verify=False, train=False)


@pytest.fixture(scope="module")
def classifier() -> explain.Solution:
    return explain.solve(CLASSIFIER, verify=False, train=False)


def _formats(solution: explain.Solution) -> dict[str, str]:
    """Text (200 columns: a matrix row on one line), Markdown, LaTeX and Typst; JSON is checked on its own."""
    return {fmt: out for fmt, out in outputs(solution, width=200).items() if fmt != "json"}


_STYLES = {"text": TextMath, "markdown": LatexMath, "latex": LatexMath, "typst": TypstMath}


# -- JSON ------------------------------------------------------------------------------------------
def test_json_matrix_form_has_shapes_and_torchs_numbers() -> None:
    result = run_cli("solve", str(MAZUR), "--format", "json", "--no-train", "--no-verify")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    expected = mazur_torch()
    form = data["matrix_form"]
    for name in ("W1", "W2"):
        g = form["gradients"][name]
        assert g["shape"] == [2, 2] and g["per_sample"] is False
        np.testing.assert_allclose(g["value"], expected[name], rtol=1e-12, atol=1e-15)
        # The one term, δ_z xᵀ, is the whole gradient here.
        np.testing.assert_allclose(g["terms"][0]["value"], expected[name], rtol=1e-12, atol=1e-15)
    forward = {f["name"]: f for f in form["forward"]}
    for name in ("z1", "h1", "o"):
        assert forward[name]["shape"] == [2]
        np.testing.assert_allclose(forward[name]["value"], expected[name], rtol=1e-12)
    assert forward["E"]["shape"] == [] and forward["E"]["value"] == pytest.approx(expected["E"], rel=1e-12)
    assert form["leaves"]["W1"] == {"kind": "parameter", "shape": [2, 2], "per_sample": False,
                                    "value": [[0.15, 0.2], [0.25, 0.3]]}
    # The existing keys are unchanged: the scalar entries keep their gradients and paths.
    assert data["gradients"]["W1_0_1"]["value"] == pytest.approx(expected["W1"][0, 1], rel=1e-12)
    assert data["gradients"]["W1_0_1"]["path_count"] == 2


def test_json_of_a_scalar_problem_has_no_matrix_form() -> None:
    data = explain.solve(EXAMPLES / "seed000_linear_sgd.toml", train=False).to_dict()
    assert "matrix_form" not in data


def test_json_classifier_per_sample_values_are_rows(classifier: explain.Solution) -> None:
    form = classifier.to_dict()["matrix_form"]
    expected = classifier_torch()
    forward = {f["name"]: f for f in form["forward"]}
    assert forward["h1"]["shape"] == [10] and forward["h1"]["per_sample"] is True
    np.testing.assert_allclose(forward["h1"]["value"], expected["h1"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(forward["z2"]["value"], expected["z2"], rtol=1e-12, atol=1e-15)
    for name, shape in (("W1", [10, 4]), ("b1", [10]), ("W2", [3, 10]), ("b2", [3])):
        g = form["gradients"][name]
        assert g["shape"] == shape
        np.testing.assert_allclose(g["value"], expected[name], rtol=1e-10, atol=1e-12)
    assert form["forward"][-1]["value"] == pytest.approx(expected["J"], rel=1e-12)


# -- the documents ---------------------------------------------------------------------------------
def _carried(value: float, out: str, style: type) -> bool:
    shown = style(PRECISION).number(float(value))
    return shown in out


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "typst"])
def test_every_format_carries_torchs_gradients_and_shapes(mazur: explain.Solution, fmt: str) -> None:
    out = _formats(mazur)[fmt]
    expected = mazur_torch()
    style = _STYLES[fmt]
    for name in ("W1", "W2"):
        for value in expected[name].reshape(-1):
            assert _carried(value, out, style), f"{fmt}: {name} entry {value} missing"
    for name in ("z1", "h1", "o"):
        for value in expected[name]:
            assert _carried(value, out, style), f"{fmt}: {name} value {value} missing"
    # The shape line of ∂E/∂W1 = δ_z1 xᵀ: a column times a row gives a matrix.
    shape_line = {"text": "(2×1)(1×2) → (2×2)", "markdown": r"(2 \times 1)(1 \times 2) \to (2 \times 2)",
                  "latex": r"(2 \times 1)(1 \times 2) \to (2 \times 2)",
                  "typst": "(2 times 1)(1 times 2) arrow (2 times 2)"}[fmt]
    assert shape_line in out
    matrix = {"text": "[[", "markdown": r"\begin{bmatrix}", "latex": r"\begin{bmatrix}", "typst": "mat("}[fmt]
    assert matrix in out
    transpose = {"text": "xᵀ", "markdown": r"x^{\top}", "latex": r"x^{\top}", "typst": "x^top"}[fmt]
    assert transpose in out


def test_a_forgotten_derivative_would_be_seen(mazur: explain.Solution) -> None:
    """Both directions: the document prints δ_z1 xᵀ with δ_z1 = δ_h1 ⊙ σ′(z1); the gradient with
    σ′(z1) forgotten (δ_h1 xᵀ, computed here in torch) has other numbers, none of them printed."""
    out = _formats(mazur)["text"]
    expected = mazur_torch()
    x = torch.tensor([0.05, 0.10], dtype=torch.float64)
    h1 = torch.tensor(expected["h1"])
    delta_h1 = torch.tensor(expected["W1"][:, 0] / 0.05) / (h1 * (1 - h1))  # δ_z1 / σ′(z1)
    wrong = torch.outer(delta_h1, x).numpy()
    for value in wrong.reshape(-1):
        assert not _carried(value, out, TextMath), value
    for value in expected["W1"].reshape(-1):
        assert _carried(value, out, TextMath), value


def test_scalar_view_is_linked_and_reachable(mazur: explain.Solution, classifier: explain.Solution) -> None:
    out = text.render_solution(mazur, precision=PRECISION, width=200)
    # The link: entry [0,1] of dE/dW1 is the scalar path sum (2 paths, the same number).
    assert "Entry W1[0,1] of dE/dW1 is the sum over its 2 path(s)" in out
    # A small problem shows both views; a big one the matrix form only …
    assert "Local partial derivatives" in out and "Matrix form" in out
    big = text.render_solution(classifier, precision=PRECISION, width=200)
    assert "Matrix form" in big and "Local partial derivatives" not in big and "--sections" in big
    # … and its scalar steps when asked for.
    paths = text.render_solution(classifier, precision=PRECISION, width=200, sections="paths")
    assert "Sum over paths" in paths and "Matrix form" not in paths
    assert "matrix" in SECTIONS


def test_chinese_matrix_form(mazur: explain.Solution) -> None:
    out = text.render_solution(mazur, precision=PRECISION, lang="zh", width=120)
    assert "矩阵形式" in out and "dE/dz1 @ xᵀ" in out


def test_classifier_text_has_batches_as_rows(classifier: explain.Solution) -> None:
    out = text.render_solution(classifier, precision=PRECISION, width=200)
    expected = classifier_torch()
    assert "one row per sample (5 rows)" in out
    assert "Σᵢ (dJ/dz1 @ xᵀ)" in out and "(10×1)(1×4) → (10×4)" in out
    for value in expected["W2"].reshape(-1):
        assert _carried(value, out, TextMath), value


# -- the PDF ---------------------------------------------------------------------------------------
# Issue 12's classifier (examples/classifier_4_10_3.toml: class labels, cross-entropy, mean, L2 in [cost]
# after the reduction) must print its backward pass on at most 3 pages.  The variant in tests/data (one-hot
# targets, the L2 term a [forward] stage: one more adjoint, and its gradients in two terms each) takes 4.
@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
@pytest.mark.parametrize("problem, most, numbers", [(ROOT / "examples" / "classifier_4_10_3.toml", 3, False),
                                                    (CLASSIFIER, 4, True)], ids=["the example", "the variant"])
def test_classifier_pdf_backward_pass_fits_three_pages(tmp_path: Path, problem: Path, most: int,
                                                       numbers: bool) -> None:
    out = tmp_path / "classifier.pdf"
    result = run_cli("solve", str(problem), "--no-train", "--no-verify", "--pdf", str(out), "--format", "json")
    assert result.returncode == 0, result.stderr
    pages = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout.split("\f")
    start = next(i for i, p in enumerate(pages) if "Backward pass in matrix form" in p)
    # The backward pass ends with the link to the scalar view (its last sentence), before "3 Gradients".
    end = max(i for i, p in enumerate(pages) if "number in the matrix" in p)
    assert any(re.search(r"^\s*\d+ Gradients\s*$", p, re.M) for p in pages[end:])
    assert end - start + 1 <= most, f"the backward pass spans pages {start + 1} to {end + 1}"
    from tests.test_pdf import smallest_text

    size, word = smallest_text(out)  # matrices are set at the text's size, never shrunk below 8 pt
    assert size >= 8 - 0.01, f"{word!r} is set at {size:.2f} pt"
    if numbers:
        body = "".join(pages).replace("\u2212", "-")
        for value in classifier_torch()["W2"].reshape(-1):  # dJ/dW2 (3×10) is printed whole
            assert TypstMath(6).number(abs(value)).split(" dot ")[0] in body, value


# -- the graph -------------------------------------------------------------------------------------
def test_graph_tensor_level(tmp_path: Path) -> None:
    out = tmp_path / "g.dot"
    result = run_cli("graph", str(MAZUR), "-o", str(out))
    assert result.returncode == 0, result.stderr
    source = out.read_text(encoding="utf-8")
    expected = mazur_torch()
    assert "W1 : 2×2" in source and "z1 : 2" in source
    style = TextMath(4)
    for value in expected["W2"].reshape(-1):
        assert style.number(value) in source
    assert "W1_0_1" not in source  # one box per tensor, not per entry
    scalar = run_cli("graph", str(MAZUR), "--level", "stage", "-o", str(tmp_path / "s.dot"))
    assert scalar.returncode == 0 and "W1_0_1" in (tmp_path / "s.dot").read_text(encoding="utf-8")


def test_graph_tensor_level_of_a_scalar_problem_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "g.dot"
    result = run_cli("graph", str(EXAMPLES / "seed000_linear_sgd.toml"), "--level", "tensor", "-o", str(out))
    assert result.returncode == 2 and "vectors or matrices" in result.stderr
    assert not out.exists()
