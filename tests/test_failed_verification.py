"""A failed verification is impossible to miss (issue 8, item 4).

A wrong local derivative is planted in the Graph (σ'(z) doubled on the edge
in_h1 → out_h1 of the seed 003 network), the way a bug in the derivation would
put it there; then every output must say so first, and training and grading
must refuse to build on it.  The commands run in-process through
``explain.cli.main`` so that the planted edge is seen by them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import explain.graph as graph_module
from explain.cli import main
from explain.graph import Edge

pytest.importorskip("torch")

SEED003 = str(Path(__file__).resolve().parent.parent / "examples" / "seed003_network.toml")


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> None:
    real = graph_module._local_partials

    def wrong(node, nodes):  # type: ignore[no-untyped-def]
        return [Edge(e.src, e.dst, 2 * e.local) if (e.src, e.dst) == ("in_h1", "out_h1") else e
                for e in real(node, nodes)]

    monkeypatch.setattr(graph_module, "_local_partials", wrong)


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_text_starts_with_the_failure(planted: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "solve", SEED003, "--no-train")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("!!!") and lines[1].startswith("VERIFICATION FAILED")
    # The banner is wrapped to the terminal's width: it lies between two rules of "!".
    banner = " ".join(lines[1:lines.index(lines[0], 1)])
    assert "PyTorch autograd disagrees with dE/din_h1" in banner


def test_markdown_and_json_start_with_the_failure(planted: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "solve", SEED003, "--format", "markdown")
    assert code == 1 and out.startswith("> **⚠ VERIFICATION FAILED")
    code, out, _ = _run(capsys, "solve", SEED003, "--format", "json")
    data = json.loads(out)
    assert code == 1 and next(iter(data)) == "verified" and data["verified"] is False
    assert data["warning"].startswith("VERIFICATION FAILED")
    assert "training" not in data  # gradients that failed their checks are not trained on


def test_pdf_has_a_banner_on_its_first_page(planted: None, capsys: pytest.CaptureFixture[str],
                                            tmp_path: Path) -> None:
    pdf = tmp_path / "s.pdf"
    code, _, _ = _run(capsys, "solve", SEED003, "--pdf", str(pdf))
    assert code == 1 and pdf.exists()
    first_page = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"],
                                capture_output=True, text=True, check=True).stdout
    assert "VERIFICATION FAILED" in first_page
    code, out, _ = _run(capsys, "solve", SEED003, "--format", "latex")
    assert "\\exalert{VERIFICATION FAILED" in out


def test_train_and_check_refuse_to_build_on_it(planted: None, capsys: pytest.CaptureFixture[str],
                                              tmp_path: Path) -> None:
    code, out, err = _run(capsys, "train", SEED003)
    assert code == 1 and out == ""
    assert "VERIFICATION FAILED" in err and "Training would build on these numbers" in err
    answers = tmp_path / "a.toml"
    answers.write_text('[answers]\n"dE/dw5" = 0.0346\n', encoding="utf-8")
    code, out, err = _run(capsys, "check", SEED003, str(answers))
    assert code == 1 and out == "" and "Grading would build on these numbers" in err
    # Asked for explicitly, they still run.
    code, out, _ = _run(capsys, "train", SEED003, "--no-verify", "--quiet")
    assert code == 0 and "After 10 steps" in out


def test_a_right_derivation_has_no_banner(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "solve", SEED003, "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["verified"] is True and "warning" not in data
    code, out, _ = _run(capsys, "solve", SEED003)
    assert code == 0 and "VERIFICATION FAILED" not in out
