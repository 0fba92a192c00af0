"""Every format carries the same facts; sections, the handout, and text that fits the terminal.

What "the same facts" means here.  A fact is a number or a verdict that a reader
of the solution may take away, read from the JSON output (the SPEC's contract,
full float64 values), which is built from the derivation's own dicts:

* the value of every forward stage (for per-sample stages, the first three samples:
  the documents show ``[a, b, c, …]``), and the loss;
* the gradient of the loss with respect to every parameter;
* the number of paths from every parameter to the loss (as a multiset);
* the verification verdict (passed / failed);
* with training, the loss after the last update.

A printed format carries a fact when the number appears in it, printed at the
document's precision (6 significant digits here), in that format's notation
(``1.2e-05``, ``1.2 \\cdot 10^{-5}``, ``1.2 dot 10^(-5)``); path counts are read from
the catalog's "N path(s) from" sentence of each parameter, the verdict from the
catalog's sentence.  Extra numbers in a format (an equation's substituted numbers,
subscripts of names) are allowed: they are not facts the JSON states.  The test
fails in the other direction too: a planted wrong gradient is not found
(test_a_planted_wrong_fact_is_caught).
"""

from __future__ import annotations

import bisect
import json
import math
import re
from pathlib import Path

import pytest
from rich.cells import cell_len

import explain
from explain.i18n import Messages
from explain.render import json as json_render
from explain.render import markdown, text
from explain.render.latex import latex_document
from explain.render.typst import typst_document

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.toml") if "answers" not in p.name)
PRECISION = 6

NETWORK = """
title = "{shape} network"
seed = 7

[network]
inputs  = {inputs}
targets = {targets}
naming  = "layered"
loss    = "half_sse"
{layers}
"""


def network(tmp: Path, sizes: list[int]) -> Path:
    """A sigmoid network with random weights made with the [network] shorthand."""
    layers = "".join(f'\n[[network.layers]]\nunits = {n}\nactivation = "sigmoid"\nweights = "randn()"\nbias = 0.1\n'
                     for n in sizes[1:])
    inputs = [round(0.1 * (i + 1) * (-1) ** i, 2) for i in range(sizes[0])]
    targets = [float(i % 2) for i in range(sizes[-1])]
    path = tmp / f"net{'_'.join(map(str, sizes))}.toml"
    path.write_text(NETWORK.format(shape="-".join(map(str, sizes)), inputs=inputs, targets=targets, layers=layers),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def net3442(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return network(tmp_path_factory.mktemp("net"), [3, 4, 4, 2])


# -- reading facts ------------------------------------------------------------------------
def facts(data: dict) -> dict[str, float]:
    """The numeric facts of a ``solve --format json`` object (see the module docstring)."""
    out: dict[str, float] = {}
    for stage in data["forward"]:
        values = stage["value"] if isinstance(stage["value"], list) else [stage["value"]]
        for i, v in enumerate(values[:3]):
            out[f"stage {stage['name']}[{i}]"] = v
    out["loss"] = data["loss"]["value"]
    for name, g in data["gradients"].items():
        out[f"gradient {name}"] = g["value"]
    if data.get("training"):
        history = data["training"]["history"]
        out["final loss"] = history[-1]["loss"]
    return {k: float(v) for k, v in out.items() if isinstance(v, (int, float)) and math.isfinite(v)}


_SCIENTIFIC = [
    re.compile(r"(-?\d+(?:\.\d+)?) \\cdot 10\^\{(-?\d+)\}"),  # LaTeX, Markdown
    re.compile(r"(-?\d+(?:\.\d+)?) dot 10\^\((-?\d+)\)"),  # Typst
]
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")


def numbers(output: str) -> list[float]:
    """Every number printed in an output, whatever its notation."""
    for pattern in _SCIENTIFIC:
        output = pattern.sub(lambda m: f"{m.group(1)}e{m.group(2)}", output)
    return sorted(float(x) for x in _NUMBER.findall(output))


def carried(value: float, printed: list[float]) -> bool:
    """``value`` is printed, rounded to PRECISION significant digits (``printed`` sorted)."""
    tolerance = 0.5 * 10 ** (math.floor(math.log10(abs(value))) - PRECISION + 1) if value else 0.0
    tolerance = tolerance * 1.000001 + 1e-300
    i = bisect.bisect_left(printed, value - tolerance)
    return i < len(printed) and printed[i] <= value + tolerance


def path_counts(output: str) -> list[int]:
    return sorted(int(n) for n in re.findall(r"(\d+) path\(s\) from", output))


def linked_path_counts(output: str) -> list[int]:
    """The path counts of the entries the matrix form links to the scalar view (words may wrap)."""
    return sorted(int(n) for n in re.findall(r"its\s+(\d+)\s+path\(s\)\s+to\s+the\s+loss", output))


def outputs(solution: explain.Solution, width: int = 100) -> dict[str, str]:
    """The five formats of one solution, through the public render functions (text ``width`` columns wide)."""
    return {
        "text": text.render_solution(solution, precision=PRECISION, width=width),
        "markdown": markdown.render_solution(solution, precision=PRECISION),
        "latex": latex_document(solution, precision=PRECISION),
        "typst": typst_document(solution, precision=PRECISION),
        "json": json_render.dumps(solution.to_dict()),
    }


def check_same_facts(solution: explain.Solution) -> None:
    printed = outputs(solution)
    data = json.loads(printed["json"])
    expected = facts(data)
    counts = sorted(g["path_count"] for g in data["gradients"].values())
    passed = Messages("en")("pdf_passed")
    more = {fmt: len(re.findall(r"more paths, see the delta form", out)) for fmt, out in printed.items()
            if fmt != "json"}
    assert len(set(more.values())) == 1, f"path sums summarized differently: {more}"
    for fmt, out in printed.items():
        if fmt == "json":
            continue
        found = numbers(out)
        missing = {k: v for k, v in expected.items() if not carried(v, found)}
        assert not missing, f"{fmt} lacks {missing}"
        if "matrix_form" in data:
            # A problem with vectors or matrices shows the matrix form by default: path counts
            # only of the entries it links to the scalar view, the same in every format.
            def shown_in(printed_text: str) -> list[int]:
                return path_counts(printed_text) or linked_path_counts(printed_text)  # a big one: only the links

            shown = shown_in(out)
            assert shown and all(shown.count(c) <= counts.count(c) for c in shown), fmt
            assert shown == shown_in(printed["text"]), fmt
        else:
            assert path_counts(out) == counts, fmt
        if data["verified"] is not None:
            assert (passed in out) == data["verified"], fmt


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_format_carries_the_same_facts(path: Path) -> None:
    check_same_facts(explain.solve(path, verify=True))


def test_a_network_carries_the_same_facts_and_summarizes_its_path_sums(net3442: Path) -> None:
    solution = explain.solve(net3442, verify=True)
    check_same_facts(solution)
    # A first-layer weight reaches the loss through 4 hidden units × 2 outputs = 8 paths:
    # 2 are written, the other 6 are said, in every format.
    out = text.render_solution(solution, width=100)
    assert "… 6 more paths, see the delta form." in out
    assert out.count("more paths") == 12  # the 12 weights of the first layer


def test_an_8_16_16_4_network_carries_the_same_facts(tmp_path: Path) -> None:
    check_same_facts(explain.solve(network(tmp_path, [8, 16, 16, 4]), verify=False))


def test_a_planted_wrong_fact_is_caught() -> None:
    solution = explain.solve(ROOT / "examples" / "seed003_network.toml", verify=False, train=False)
    printed = outputs(solution)
    expected = facts(json.loads(printed["json"]))
    # -0.0001 relative: beyond the 6th significant digit, so a wrong gradient, not a rounding.
    wrong = expected["gradient w1"] * (1 + 1e-4)
    assert carried(expected["gradient w1"], numbers(printed["text"]))
    assert not carried(wrong, numbers(printed["text"]))
    # A document that leaves out the gradients table and the chain rule lacks the gradient.
    assert not carried(expected["gradient w1"],
                       numbers(text.render_solution(solution, sections="forward", width=100).split("Gradients")[0]))


# -- sections and the handout ------------------------------------------------------------
SEED001 = str(ROOT / "examples" / "seed001_linear_sgd.toml")


def test_sections_choose_the_parts(cli) -> None:
    done = cli("solve", SEED001, "--sections", "delta", "--no-train")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Delta form" in out and "Sum over paths" not in out
    assert "Forward pass" not in out and "Backward pass" not in out and "Verification" not in out
    assert "Loss L = 14" in out  # the givens, the loss and the gradients are always there
    assert re.search(r"^w +1 +-28$", out, re.M)  # dL/dw = Σ 2(w·x - y)·x = 2·(-1 - 4 - 9) = -28, by hand


def test_sections_in_the_python_api_and_the_notebook() -> None:
    solution = explain.solve(SEED001, sections=["forward", "paths"], train=False)
    md = solution._repr_markdown_()
    assert "## Forward pass" in md and "*Sum over paths*" in md
    assert "Delta form" not in md and "## Backward pass" not in md
    assert "Delta form" in markdown.render_solution(solution, sections="delta")


@pytest.mark.parametrize("bad", ["forwards", "", "forward,,sideways"])
def test_an_unknown_section_is_refused(cli, bad: str) -> None:
    done = cli("solve", SEED001, "--sections", bad)
    assert done.returncode == 2 and done.stdout == ""
    assert "--sections" in done.stderr and "forward, local, backward" in done.stderr


def test_json_is_always_the_whole_solution(cli) -> None:
    done = cli("solve", SEED001, "--format", "json", "--handout")
    assert done.returncode == 2 and done.stdout == "" and "--format json" in done.stderr
    with pytest.raises(explain.ExplainError):
        explain.solve(SEED001, sections=3)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["text", "markdown", "latex", "typst"])
def test_the_handout_has_the_problem_without_the_solution(cli, fmt: str) -> None:
    done = cli("solve", str(ROOT / "examples" / "seed003_network.toml"), "--handout", "--format", fmt,
               "--no-verify", "--no-train")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "What to compute" in out
    assert "0.2" in out and "sigmoid" in out  # a given (w1 = 0.2) and the stages' formulas
    # No number of the solution: the loss 0.298371 (seed003's E, computed by the NumPy code
    # of tests/test_oracle) and no gradient appear.
    data = json.loads(cli("solve", str(ROOT / "examples" / "seed003_network.toml"), "--format", "json",
                          "--no-verify", "--no-train").stdout)
    found = numbers(out)
    solved = {k: v for k, v in facts(data).items() if not k.startswith("stage") and abs(v) > 1e-3}
    assert not [k for k, v in solved.items() if carried(v, found)]
    assert "Gradients" not in out and "Delta form" not in out


# -- text that fits the terminal --------------------------------------------------------------
def test_text_fits_100_columns_even_for_an_8_16_16_4_network(cli, tmp_path: Path) -> None:
    path = network(tmp_path, [8, 16, 16, 4])
    done = cli("solve", str(path), "--no-verify", env={"COLUMNS": "100"}, timeout=600)
    assert done.returncode == 0, done.stderr
    widths = [cell_len(line) for line in done.stdout.splitlines()]
    assert 90 < max(widths) <= 100  # within the width, and filled, not cut short
    # A first-layer weight reaches the loss through 16 second-layer units × 4 outputs = 64 paths.
    assert "… 62 more paths, see the delta form." in done.stdout


def test_wrapping_breaks_at_tokens_and_keeps_every_number(net3442: Path) -> None:
    solution = explain.solve(net3442, verify=True)
    wide = text.render_solution(solution, width=10_000)
    narrow = text.render_solution(solution, width=60)
    assert max(cell_len(line) for line in narrow.splitlines()) <= 60
    # Lines break between tokens, never inside one: the narrow output has the same words and
    # numbers as the wide one (a wide table is split into column groups, each repeating
    # its first column, so the words are compared as sets; rules differ in length).
    def words(out: str) -> set[str]:
        return {w for w in out.split() if set(w) - set("─═")}

    assert words(narrow) == words(wide)
    assert set(numbers(narrow)) == set(numbers(wide))


def test_chinese_tables_align(cli) -> None:
    done = cli("solve", str(ROOT / "examples" / "seed003_network.toml"), "--lang", "zh", "--no-train")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    rules = [i for i, line in enumerate(lines) if line and set(line) <= {"─", " "} and "  " in line]
    assert rules
    for i in rules:
        starts = [m.start() for m in re.finditer(r"─+", lines[i])]  # the rule is one cell a character
        for row in lines[i - 1:i + 3]:
            cells = [m for m in re.finditer(r"\S+", row)]
            # every cell of the header and the first rows lies within one column of the rule
            for m in cells:
                at = cell_len(row[:m.start()])
                end = at + cell_len(m.group())
                column = max(k for k, s in enumerate(starts) if s <= at)
                right = starts[column + 1] - 2 if column + 1 < len(starts) else 10**6
                assert end <= right, (row, m.group())
    assert "梯度" in done.stdout


def test_the_handout_pdf_leaves_out_the_solved_graph() -> None:
    # The drawn graph shows every value and gradient: a handout must not include it.
    solution = explain.solve(ROOT / "examples" / "seed003_network.toml", handout=True, train=False)
    assert "graph.pdf" not in typst_document(solution, graph_path="graph.pdf")
    solution.handout = False
    assert "graph.pdf" in typst_document(solution, graph_path="graph.pdf")
