"""Worked solutions as PDF (Typst), Typst source and LaTeX, in English and Chinese."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

import explain
from explain.errors import ExplainError
from explain.render import fonts
from explain.render.latex import latex_document, latex_text
from explain.render.mathprint import TypstMath
from explain.render.pdf import axis, solution_pdf, split_terms, write_pdf
from explain.render.typst import typst_document
from .test_pdf_readable import poppler_complaints, smallest_text

typst = pytest.importorskip("typst")

ROOT = Path(__file__).resolve().parent.parent
SEED003 = ROOT / "examples" / "seed003_network.toml"
HAS_PDFTOTEXT = shutil.which("pdftotext") is not None
HAS_CJK = fonts.find_cjk_font() is not None
needs_pdftotext = pytest.mark.skipif(not HAS_PDFTOTEXT, reason="pdftotext (poppler-utils) is not installed")
needs_cjk = pytest.mark.skipif(not HAS_CJK, reason="no CJK font installed (fonts-noto-cjk)")


def problems() -> list[Path]:
    """Every example that is a problem file (not an answers file)."""
    found = []
    for path in sorted((ROOT / "examples").glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        if "forward" in data or "network" in data:
            found.append(path)
    return found


def pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return out.replace("\u2212", "-")  # Typst sets a minus sign, not a hyphen


@pytest.fixture(scope="module")
def seed003() -> explain.Solution:
    return explain.solve(SEED003, verify=False)


# -- every example ----------------------------------------------------------------
@pytest.mark.parametrize("path", problems(), ids=lambda p: p.stem)
def test_every_example_writes_a_pdf_with_its_gradients(path: Path, tmp_path: Path) -> None:
    solution = explain.solve(path, verify=False)
    out = tmp_path / "solution.pdf"
    write_pdf(solution, out)
    assert out.read_bytes().startswith(b"%PDF")
    if not HAS_PDFTOTEXT:
        pytest.skip("pdftotext is not installed: the PDF was written, its text not checked")
    text = pdf_text(out)
    style = TypstMath(precision=4)
    for name, gradient in solution.derivation.gradients.items():
        shown = style.number(abs(gradient.value)).split(" dot ")[0]  # the mantissa of 1.2 dot 10^(5)
        assert shown in text, f"{path.name}: the gradient of {name} ({shown}) is not in the PDF"
    # Readable at any size: no text under 8 pt (pdftotext -bbox), and nothing poppler objects to.
    size, word = smallest_text(out)
    assert size >= 8 - 0.01, f"{path.name}: {word!r} is set at {size:.2f} pt"
    assert poppler_complaints(out) == ""


# -- the seed 003 network in detail -------------------------------------------------
@needs_pdftotext
def test_seed003_pdf_has_every_section_and_the_right_numbers(seed003: explain.Solution, tmp_path: Path) -> None:
    out = tmp_path / "s.pdf"
    write_pdf(seed003, out, precision=4)
    text = pdf_text(out)
    for heading in ("Problem", "Forward pass", "Local partial derivatives", "Backward pass",
                    "Chain rule for each parameter", "Sum over paths", "Delta form", "Gradients", "Training"):
        assert heading in text
    for value in ("0.2097", "-0.008421", "0.01261", "-0.005053", "0.007564", "0.03463", "0.08387", "0.03049",
                  "0.07384"):
        assert value in text
    assert "0.009488" in text  # the loss after ten steps of gradient descent


@needs_pdftotext
@needs_cjk
def test_chinese_pdf_is_in_chinese(seed003: explain.Solution, tmp_path: Path) -> None:
    out = tmp_path / "zh.pdf"
    write_pdf(seed003, out, lang="zh")
    text = pdf_text(out)
    for words in ("反向传播", "前向传播", "链式法则", "局部偏导数", "梯度", "训练"):
        assert words in text
    assert "Backward pass" not in text
    assert "-0.008421" in text


def test_missing_cjk_font_is_a_clear_error(seed003: explain.Solution, monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    monkeypatch.setattr(fonts, "find_cjk_font", lambda: None)
    out = tmp_path / "zh.pdf"
    with pytest.raises(ExplainError) as caught:
        write_pdf(seed003, out, lang="zh")
    assert "fonts-noto-cjk" in str(caught.value) and "fonts-wqy-microhei" in str(caught.value)
    assert not out.exists()


def test_a_cjk_font_is_found_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    font = fonts.find_cjk_font()
    if font is None:
        pytest.skip("no CJK font installed")
    fonts.find_cjk_font.cache_clear()
    try:
        folder = font.folders[0]
        monkeypatch.setenv("EXPLAIN_CJK_FONT", folder)
        again = fonts.find_cjk_font()
        assert again is not None and folder in again.folders
    finally:
        fonts.find_cjk_font.cache_clear()


def test_unknown_language_is_an_error(seed003: explain.Solution) -> None:
    with pytest.raises(ExplainError, match="language"):
        solution_pdf(seed003, lang="fr")


def test_write_pdf_leaves_nothing_behind_on_failure(seed003: explain.Solution, tmp_path: Path) -> None:
    with pytest.raises(ExplainError):
        write_pdf(seed003, tmp_path / "no-such-folder" / "s.pdf")
    assert list(tmp_path.iterdir()) == []


def test_pdf_without_graphviz_still_builds(seed003: explain.Solution, monkeypatch: pytest.MonkeyPatch) -> None:
    from explain.render import dot

    monkeypatch.setattr(dot.shutil, "which", lambda name: None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdf = solution_pdf(seed003)
    assert pdf.startswith(b"%PDF")
    assert any("Graphviz" in str(w.message) for w in caught)


def test_verification_table_when_verified(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    solution = explain.solve(SEED003, verify=True, device="cpu")
    source = typst_document(solution)
    assert "Verification" in source and "autograd" in source
    if HAS_PDFTOTEXT:
        out = tmp_path / "v.pdf"
        write_pdf(solution, out)
        assert "Every check passed" in pdf_text(out)


# -- Typst source -------------------------------------------------------------------
def test_typst_source_compiles_on_its_own(seed003: explain.Solution) -> None:
    source = typst_document(seed003)
    assert "#import" not in source  # the template is inlined
    pdf = typst.compile(source.encode("utf-8"))
    assert pdf.startswith(b"%PDF")


def test_typst_math_is_typeset_not_text(seed003: explain.Solution) -> None:
    source = typst_document(seed003)
    assert "(dif E)/(dif w_1)" in source and "(partial E)/(partial" in source
    assert "sigma(" in source


# -- LaTeX --------------------------------------------------------------------------
def _environments_balanced(tex: str) -> bool:
    stack: list[str] = []
    for kind, name in re.findall(r"\\(begin|end)\{([^}]*)\}", tex):
        if kind == "begin":
            stack.append(name)
        elif not stack or stack.pop() != name:
            return False
    return not stack


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_latex_is_a_complete_document(seed003: explain.Solution, lang: str) -> None:
    tex = latex_document(seed003, lang=lang)
    assert tex.startswith("\\documentclass")
    assert "\\usepackage{amsmath" in tex
    assert ("ctexart" in tex) == (lang == "zh")
    assert tex.count("\\begin{document}") == 1 and tex.rstrip().endswith("\\end{document}")
    assert _environments_balanced(tex)
    assert "\\frac{\\mathrm{d} E}{\\mathrm{d} w_{1}}" in tex and "\\frac{\\partial E}{\\partial" in tex
    assert "-0.008421" in tex


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_latex_compiles_with_pdflatex(seed003: explain.Solution, tmp_path: Path) -> None:
    (tmp_path / "s.tex").write_text(latex_document(seed003), encoding="utf-8")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "s.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "s.pdf").exists()


def test_latex_text_escapes_every_special_character() -> None:
    assert latex_text(r"\input{x} $a$ & # ^ _ % ~") == (
        r"\textbackslash{}input\{x\} \$a\$ \& \# \textasciicircum{} \_ \% \textasciitilde{}")


# -- safety: text from problem files stays text --------------------------------------
EVIL_TITLE = ('#read("/etc/passwd") \\input{/etc/passwd} $x$ "]; <b> @ref *bold* _x_ `raw`'
              '\n#panic("title ran") \u2028#panic("line separator ran")')
EVIL_DESCRIPTION = 'Also #include "/etc/passwd" and \\include{/etc/passwd}, ]; #panic("no") and \\\\ \\end{document}'


@pytest.fixture(scope="module")
def evil() -> explain.Solution:
    problem = explain.from_dict({"title": EVIL_TITLE, "description": EVIL_DESCRIPTION, "parameters": {"w": 0.5},
                                 "values": {"x": 2.0}, "forward": {"y": "w*x"}})
    return explain.solve(problem, verify=False)


@needs_pdftotext
def test_typst_injection_appears_as_text(evil: explain.Solution, tmp_path: Path) -> None:
    assert evil.derivation.graph.title == EVIL_TITLE
    out = tmp_path / "evil.pdf"
    write_pdf(evil, out)
    text = " ".join(pdf_text(out).split())
    for piece in ('#read("/etc/passwd")', "\\input{/etc/passwd}", "$x$", '"];', "*bold*", "_x_", "`raw`",
                  '#include "/etc/passwd"', '#panic("no")', "\\end{document}"):
        assert piece in text, piece
    assert "root:" not in text


def test_latex_injection_is_escaped(evil: explain.Solution, tmp_path: Path) -> None:
    tex = latex_document(evil)
    body = tex.split("\\begin{document}", 1)[1]
    assert "\\input{/etc/passwd}" not in tex and "\\include{/etc/passwd}" not in tex
    assert "\\textbackslash{}input\\{/etc/passwd\\}" in body
    assert body.count("\\end{document}") == 1
    if shutil.which("pdflatex") and HAS_PDFTOTEXT:
        (tmp_path / "e.tex").write_text(tex, encoding="utf-8")
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "e.tex"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout[-3000:]
        text = pdf_text(tmp_path / "e.pdf")
        assert "\\input{/etc/passwd}" in text and "root:" not in text


# -- the pieces ---------------------------------------------------------------------
def test_split_terms_cuts_only_top_level_sums() -> None:
    assert split_terms("a + (b - c) - d") == ("a", "+ (b - c)", "- d")
    assert split_terms("-0.5 dot x") == ("-0.5 dot x",)
    assert split_terms('"out"_("o1") - y_1') == ('"out"_("o1")', "- y_1")
    assert split_terms(r"\frac{a + b}{2} + c") == (r"\frac{a + b}{2}", "+ c")
    assert split_terms('"a + b" + c') == ('"a + b"', "+ c")


def test_axis_ticks_are_round_numbers() -> None:
    assert axis(0, 10) == (0, 10, [0, 2, 4, 6, 8, 10])
    lo, hi, ticks = axis(0, 0.2097)
    assert lo == 0 and hi >= 0.2097 and ticks[1] == 0.05
    assert axis(-2.3, 1.2, log=True) == (-3, 2, [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0])


@needs_pdftotext
@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_the_command_line_pdf_carries_the_graph(tmp_path: Path) -> None:
    # Regression: inside the command's all-or-none output batch, the graph drawn into the
    # PDF's own temporary folder was held back with the user's files and lost, so
    # `solve --pdf` failed (or printed a PDF without the graph).
    out = tmp_path / "s.pdf"
    done = subprocess.run([sys.executable, "-m", "explain", "solve", str(SEED003), "--pdf", str(out), "--no-train"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    text = pdf_text(out)
    assert "The computation graph: each node shows its formula" in text   # the figure's caption
