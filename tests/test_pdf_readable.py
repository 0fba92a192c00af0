"""The PDF stays readable as the problem grows (issue 11, item 5): no text under 8 pt,
long path sums summarized instead of shrunk, wide tables split instead of wrapped or cut,
and no warnings from poppler.  One network PDF is compiled (module fixture) to keep this fast.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import explain
from explain.render.mathprint import TypstMath
from explain.render.document import PATHS_PREVIEW
from explain.render.pdf import write_pdf
from explain.render.typst import MIN_TEXT, split_factors

typst = pytest.importorskip("typst")
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdfinfo") is None,
                                   reason="pdftotext/pdfinfo (poppler-utils) are not installed")

#: A 3-4-4-2 sigmoid network: 36 weights, 8 paths from each first-layer weight to the loss.
NETWORK_3442 = """
title = "3-4-4-2 sigmoid network"
seed = 7
[network]
inputs = [0.5, -0.2, 0.1]
targets = [0.2, 0.8]
loss = "half_sse"
[[network.layers]]
units = 4
activation = "sigmoid"
weights = "0.5*randn()"
bias = 0.1
[[network.layers]]
units = 4
activation = "sigmoid"
weights = "0.5*randn()"
bias = 0.1
[[network.layers]]
units = 2
activation = "sigmoid"
weights = "0.5*randn()"
bias = 0.1
[train]
learning_rate = 0.5
steps = 10
"""

_WORD = re.compile(r'<word xMin="[-\d.]+" yMin="([-\d.]+)" xMax="[-\d.]+" yMax="([-\d.]+)">([^<]*)</word>')


def glyph_heights(pdf: Path) -> list[tuple[float, str]]:
    """(height in pt, word) of every word poppler finds: its box is as tall as its font size."""
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return [(float(y1) - float(y0), word) for y0, y1, word in _WORD.findall(out)]


def smallest_text(pdf: Path) -> tuple[float, str]:
    """The smallest glyph height in a PDF (pt) and a word set that small."""
    return min(glyph_heights(pdf))


def poppler_complaints(pdf: Path) -> str:
    """What pdfinfo and pdftotext print on stderr (nothing, for a sound PDF)."""
    return "".join(subprocess.run([tool, str(pdf), *extra], capture_output=True, text=True).stderr
                   for tool, extra in (("pdfinfo", []), ("pdftotext", ["-"])))


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> tuple[explain.Solution, Path]:
    folder = tmp_path_factory.mktemp("net3442")
    problem = folder / "net.toml"
    problem.write_text(NETWORK_3442, encoding="utf-8")
    solution = explain.solve(problem, verify=False)
    out = folder / "net.pdf"
    write_pdf(solution, out)
    return solution, out


# -- the measuring helper can fail --------------------------------------------------
@needs_poppler
def test_smallest_text_finds_small_type(tmp_path: Path) -> None:
    # Planted: 6 pt words and a subscript of 10 pt math without the template (70 % → 7 pt).
    (tmp_path / "s.typ").write_text('#set text(10pt, font: "New Computer Modern")\nBig words. #text(6pt)[tiny words] $w_1$\n', encoding="utf-8")
    (tmp_path / "s.pdf").write_bytes(typst.compile(str(tmp_path / "s.typ")))
    size, word = smallest_text(tmp_path / "s.pdf")
    assert size == pytest.approx(6.0, abs=0.05) and word == "tiny"
    heights = dict((w, h) for h, w in glyph_heights(tmp_path / "s.pdf"))
    assert heights["1"] == pytest.approx(7.0, abs=0.05)  # New Computer Modern Math: scripts at 70 %
    assert heights["Big"] == pytest.approx(10.0, abs=0.05)


# -- the 3-4-4-2 network ------------------------------------------------------------
@needs_poppler
def test_network_pdf_has_no_text_under_8pt(network: tuple[explain.Solution, Path]) -> None:
    size, word = smallest_text(network[1])
    assert size >= MIN_TEXT - 0.01, f"{word!r} is set at {size:.2f} pt"


@needs_poppler
def test_network_pdf_gives_poppler_nothing_to_complain_about(network: tuple[explain.Solution, Path]) -> None:
    # Typst's /Suspects false used to make poppler print "Suspects object is wrong type".
    assert poppler_complaints(network[1]) == ""


@needs_poppler
def test_network_pdf_summarizes_long_path_sums(network: tuple[explain.Solution, Path]) -> None:
    solution, pdf = network
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    # 3 inputs → 4 → 4 → 2: from a first-layer weight, 4 · 2 = 8 paths to the loss (counted by hand).
    assert solution.derivation.gradients["w1"].path_count == 8
    assert f"… {8 - PATHS_PREVIEW} more paths, see the delta form" in text
    pages = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(pdf)], capture_output=True,
                                                             text=True).stdout).group(1))
    assert pages <= 34  # 34 before, at 3 pt; readable now, and no longer


@needs_poppler
def test_network_training_table_keeps_every_parameter(network: tuple[explain.Solution, Path]) -> None:
    # The table of 38 columns used to stop at the 8th parameter ("…"): now it is split into
    # tables of the columns that fit, so the last parameter's last value is printed too.
    solution, pdf = network
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    text = text.replace("\u2212", "-")
    history = solution.training.to_dict()["history"]
    style = TypstMath(precision=4)
    for name in ("w9", "w36"):
        last = style.number(history[-1]["parameters"][name])
        assert last in text, f"{name} after training ({last}) is not in the PDF"


# -- the pieces ---------------------------------------------------------------------
def test_split_factors_cuts_only_top_level_products() -> None:
    assert split_factors("a dot (b dot c) dot d") == ["a", "dot (b dot c)", "dot d"]
    assert split_factors('"x dot y" dot z') == ['"x dot y"', "dot z"]
    assert split_factors("+ w_1") == ["+ w_1"]


# -- LaTeX: the same rules, by construction (no TeX needed to check) ------------------
def test_latex_tables_continue_on_the_next_page_and_split_by_columns(network: tuple[explain.Solution, Path]) -> None:
    from explain.render.latex import TABLE_WIDTH, latex_document

    tex = latex_document(network[0])
    assert "\\begin{tabular}" not in tex  # a tabular cannot continue on the next page
    assert tex.count("\\begin{longtable}") == tex.count("\\endhead") > 0
    training = tex[tex.index("\\section{Training}"):]
    assert "w_{9}" in training and "w_{36}" in training  # no parameter left out as "…"
    # The 38 training columns do not fit one row of TABLE_WIDTH characters: several tables,
    # each starting with the step.
    assert training.count("\\begin{longtable}") >= 3 and TABLE_WIDTH < 38 * 6
    assert "\\DeclareMathSizes{10.95}{10.95}{8}{8}" in tex


def test_latex_long_products_break_between_factors() -> None:
    from explain.render.latex import split_factors as latex_factors

    assert latex_factors(r"\frac{a}{b} \cdot \left(1 - b \cdot c\right) \cdot x_{1}") == \
        [r"\frac{a}{b}", r"\cdot \left(1 - b \cdot c\right)", r"\cdot x_{1}"]
    assert latex_factors(r"+ w_{1}") == [r"+ w_{1}"]
