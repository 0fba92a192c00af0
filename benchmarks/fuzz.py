"""Fuzzing campaigns: hostile and broken input never crashes, hangs, blows up or passes off nonsense.

Three campaigns (issue 9), each a stream of generated inputs run through the
command line as a user would run it:

* **expressions** via ``explain grad EXPR --at …`` and ``explain.grad(...)``:
  grammar-generated expressions, character-level mutants of them, and
  adversarial ones (huge constants, deep nesting, odd functions, unicode,
  control characters, code-injection attempts);
* **problem files**: the examples and published problems, mutated (values,
  keys, lines, characters, hostile numbers), run by ``solve``, ``verify``,
  ``graph``, ``train`` and the ``latex``/``typst``/``json``/``markdown``
  formats, a few as ``solve --pdf``;
* **answers files**: mutated answers (hostile keys and values, formulas,
  non-finite numbers, CSV-formula text) graded by ``check --report``.

A subprocess per input is too slow for 20,000 inputs on two shared cores, so
the inputs run in-process: worker processes (forked after ``explain``, SymPy
and PyTorch are imported) call ``explain.cli.main([...])`` and report its exit
code, its standard error and its output files.  A watchdog in the parent
kills a worker that runs past the time limit, and each worker has an address
space limit (``RLIMIT_AS``, its size after imports plus the memory limit), so a
blow-up is a ``MemoryError`` there; a worker is restarted after either.  A
sample of the inputs (``--subprocess``) also runs through a real ``python -m
explain`` process, so that what the in-process harness cannot see (the exit
status itself, output at exit) is checked too.

Each input lands in one column of the table:

* ``clean exit 2``: refused with a message, exit 2;
* ``tracebacks``: exit 3 (an internal error), an exception that escaped
  ``main``, or a traceback on standard error;
* ``over time`` / ``over memory``: past the limits (10 s, 2 GB by default).  Time is
  the CPU time the input cost (its worker's, or its subprocess's), so that a
  machine shared with other jobs does not count as a slow input: on two cores
  busy with six jobs, inputs of 3 CPU-seconds took over 10 s of wall time.  An
  input still running after 3× the limit of wall time is killed as hung and
  counted here too;
* ``non-finite results``: exit 0 with ``nan``/``inf`` in the JSON output or in
  the numbers of the library's result;
* ``CSV formula cells``: a cell of the ``--report`` that a spreadsheet would run
  (starting with ``= + - @``, a tab or a carriage return and not a plain number);
* ``output after error``: an output file left behind by a run that exited 2 or 3.

    python benchmarks/fuzz.py [--quick] [--expressions N] [--problems N] [--answers N]
                              [--jobs 2] [--timeout 10] [--memory-gb 2] [--seed 0]
                              [--subprocess 200] [--save-failures DIR]

The inputs that fail are printed after the table (and saved with
``--save-failures``), so that each one can become a regression test.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import multiprocessing as mp
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: An input is killed as hung when it runs this many times the time limit in wall-clock time.
HANG_FACTOR = 3
sys.path.insert(0, str(ROOT))

COLUMNS = ("tried", "clean exit 2", "tracebacks", "over time", "over memory", "non-finite results",
           "CSV formula cells", "output after error")

# --------------------------------------------------------------------------------------------
# Expressions


VARIABLES = ("x", "w", "b", "y")
UNARY = ("exp", "log", "sin", "cos", "tanh", "sigmoid", "relu", "sqrt", "abs", "softplus")
BINARY_FUNCS = ("max", "min", "leaky_relu")
CONSTANTS = ("0", "1", "2", "0.5", "-1", "3.25", "1e-8", "100", "1000", "1e10", "1e300", "1e308", "710.0",
             "pi", "e", "2/3", "(-8)", "(-2)", "0.0", "1e-320", "12345678901234567890")
AT_VALUES = ("0", "1", "-1", "0.5", "2", "-2", "3", "-800", "800", "1e308", "-1e308", "1e-320", "pi/4",
             "1e-8", "100", "-0.5", "710", "1.7", "-1.7")
ODD = ("sigmiod", "Max", "ln", "log10", "atan2", "gamma", "factorial", "erf", "__import__", "eval", "open",
       "lambda", "Integral", "Symbol", "S", "I", "oo", "zoo", "nan", "E", "N", "Q", "beta")
NASTY_CHARS = ("\x00", "\x1b[2J", "\t", "\n", "\r", "\u202e", "\ufeff", "·", "×", "−", "ｘ", "α", "√", "²",
               "∞", "😀", "\\", "'", '"', "`", ";", "$", "#", "[", "]", "{", "}", ":", "=", ",", "..", "**",
               "^", "!", "&", "|", "~", "@", "%", "//", "<", ">", "_", "λ", "\u200b", "\x7f", "\x85")


def grammar_expression(rng: random.Random, depth: int = 0) -> str:
    """A random expression of the documented grammar (variables, constants, + - * / **, functions)."""
    if depth > 4 or rng.random() < 0.25 + 0.12 * depth:
        return rng.choice(VARIABLES) if rng.random() < 0.7 else rng.choice(CONSTANTS)
    r = rng.random()
    if r < 0.45:
        op = rng.choice(("+", "-", "*", "/", "*", "+", "**"))
        left, right = grammar_expression(rng, depth + 1), grammar_expression(rng, depth + 1)
        if op == "**" and rng.random() < 0.6:
            right = rng.choice(("2", "3", "0.5", "-1", "2.0", "(2/3)", "x", "100", "-2"))
        return f"({left}){op}({right})" if rng.random() < 0.5 else f"{left}{op}{right}"
    if r < 0.85:
        return f"{rng.choice(UNARY)}({grammar_expression(rng, depth + 1)})"
    if r < 0.95:
        f = rng.choice(BINARY_FUNCS)
        second = rng.choice(("0.01", "0.1", "-1")) if f == "leaky_relu" else grammar_expression(rng, depth + 1)
        return f"{f}({grammar_expression(rng, depth + 1)}, {second})"
    return f"-{grammar_expression(rng, depth + 1)}"


def mutate_text(rng: random.Random, text: str, alphabet: tuple[str, ...] = NASTY_CHARS, rounds: int = 3) -> str:
    """Character-level mutations: delete, insert, duplicate, swap, replace a span."""
    for _ in range(rng.randint(1, rounds)):
        if not text:
            text = rng.choice(alphabet)
            continue
        i, j = sorted(rng.randrange(len(text) + 1) for _ in range(2))
        kind = rng.randrange(6)
        if kind == 0:
            text = text[:i] + text[j:]
        elif kind == 1:
            text = text[:i] + rng.choice(alphabet) + text[i:]
        elif kind == 2:
            text = text[:j] + text[i:j] * rng.randint(1, 4) + text[j:]
        elif kind == 3:
            text = text[:i] + rng.choice(("x", "w", "1", "(", ")", "*", "+", "-", "/", "e", ".", "0")) + text[i:]
        elif kind == 4 and j > i:
            text = text[:i] + text[i:j][::-1] + text[j:]
        else:
            text = text[:i] + rng.choice(CONSTANTS + ODD + VARIABLES) + text[j:]
    return text


def adversarial_expression(rng: random.Random) -> str:
    """Hand-written hostile families: big numbers, deep nesting, long sums, odd names, injection."""
    n = rng.choice((10, 50, 100, 200, 400, 1000, 3000))
    family = rng.randrange(16)
    if family == 0:
        return "(" * n + "x" + ")" * n
    if family == 1:
        return "+".join(["x"] * n)
    if family == 2:
        return rng.choice(("x*1e", "x+1e", "x*", "x**")) + str(rng.choice((308, 309, 400, 5000, 10**6, -400)))
    if family == 3:
        return "x*" + "9" * rng.choice((20, 300, 400, 5000))
    if family == 4:
        return rng.choice(("exp", "sigmoid", "tanh", "sin", "log")) * 0 + "".join(
            f"{rng.choice(UNARY)}(" for _ in range(n // 10 + 1)) + "x" + ")" * (n // 10 + 1)
    if family == 5:
        return f"{rng.choice(ODD)}(x)"
    if family == 6:
        return rng.choice(("__import__('os').system('true')", "().__class__.__bases__[0]", "x.__class__",
                           "eval('1')", "lambda: x", "x if x else w", "[x for x in w]", "open('/etc/passwd')",
                           "x; import os", "x\nimport os", "f'{x}'", "x @ w", "x[0]", "x.real", "x := 1"))
    if family == 7:
        return "x" + "".join(rng.choice(NASTY_CHARS) for _ in range(rng.randint(1, 5))) + "w"
    if family == 8:
        return rng.choice(("x*cos(exp(1e30))", "x*exp(exp(1e15))", "x*exp(exp(x))", "((x+1)**100)**100",
                           "x**(x+2000)", "(-x)**0.5", "(-2)**x", "x*exp(710.0)", "x*1e308*10", "0**x",
                           "max(max(x,0),y)", "x*(-8)**(2/3)", "log(sigmoid(x))", "sqrt(relu(x))",
                           "exp(log(x))", "log(-x)", "x/(x-1)", "log(x-1)", "x**x**x**x**x",
                           "exp(exp(exp(exp(x))))", "x**1e308", "x**-1e308", "1/(x-x)", "x/x", "log(x)-log(x)",
                           "tan(x)", "x**(1/3)", "abs(x)**0.5", "sqrt(x**2)", "leaky_relu(x, 1e308)",
                           "leaky_relu(x)", "max(x)", "max(x,y,w)", "sigmoid()", "relu(x, w)", "x**y**-1e9"))
    if family == 9:
        return "*".join(f"sin(x+{i})" for i in range(n // 5 + 1))
    if family == 10:
        return "x" + "**x" * (n // 20 + 1)
    if family == 11:
        return "x" + "*(1+0*x)" * (n // 5 + 1)
    if family == 12:
        return "".join(rng.choice(NASTY_CHARS) for _ in range(rng.randint(1, 20)))
    if family == 13:
        return "max(" * (n // 10) + "x" + ",y)" * (n // 10)
    if family == 14:
        return "x*" + rng.choice(("1e-400", "1e-320", "0.0000000000000000000000001", "1_000", "0x10", "1j",
                                  "1.5e", "inf", "nan", "Infinity", "1e+308", "-0.0", "١٢٣", "²"))
    return "x" * rng.choice((100, 1000, 10_000, 100_000))


def at_values(rng: random.Random, expr: str) -> str:
    names = [v for v in VARIABLES if v in expr]
    parts = [f"{v}={rng.choice(AT_VALUES)}" for v in names if rng.random() < 0.95]
    if rng.random() < 0.05:
        parts.append(rng.choice(("z=1", "x=", "=1", "x=1=2", "x=nan", "x=inf", "x=1e400", "x=abc", "x=(1", "x=1j")))
    return ",".join(parts)


def expression_inputs(rng: random.Random, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        kind = ("grammar", "mutant", "adversarial")[i % 3]
        if kind == "grammar":
            expr = grammar_expression(rng)
        elif kind == "mutant":
            expr = mutate_text(rng, grammar_expression(rng))
        else:
            expr = adversarial_expression(rng)
        at = at_values(rng, expr)
        if rng.random() < 0.25:  # the library, as a notebook user calls it
            values: dict[str, Any] = {}
            for part in at.split(","):
                name, _, value = part.partition("=")
                if name:
                    values[name] = rng.choice((value, _number(value)))
            out.append({"campaign": "expressions", "kind": "api", "expr": expr, "at": values})
        else:
            fmt = rng.choice(("json", "json", "json", "text", "markdown", "latex", "typst"))
            argv = ["grad", expr, "--format", fmt]
            if at:
                argv += ["--at", at]
            if rng.random() < 0.1:
                argv += ["--wrt", rng.choice(("x", "w,b", "q", "x,x", ""))]
            out.append({"campaign": "expressions", "kind": kind, "argv": argv, "format": fmt})
    return out


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


# --------------------------------------------------------------------------------------------
# Problem files


def base_problems() -> list[tuple[str, str]]:
    files = sorted((ROOT / "examples").glob("*.toml")) + sorted((ROOT / "examples" / "published").glob("*.toml"))
    bases = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        if "[answers]" in text:
            continue
        bases.append((path.name, text))
    return bases


HOSTILE_VALUES = ('1e400', '-1e400', 'nan', 'inf', '-inf', '0', '-0.0', '1e308', '1e-320', '1e307', '-1',
                  '10000000000', '"nan"', '"1e400"', '"x"', '"randn(3)"', '"arange(0,1,0)"', '"arange(0,1,1e-9)"',
                  '[1, "randn(3)"]', '[]', '[[1,2],[3]]', '{}', 'true', '"=HYPERLINK(1)"', '"\\u001b[2J"',
                  '"(-8)**(2/3)"', '"exp(exp(1e15))"', '"cos(exp(1e30))"', '1000000000', '-5', '0.5',
                  '[1e308, 1e308]', '[nan, 1]', '"pi"', '"sqrt(-1)"', '"log(0)"', '"1/0"', '"]"', '"\\t"', '""',
                  '"' + "x+" * 500 + 'x"', '99999999999999999999999', '1.7976931348623157e308', '[0.0]')
HOSTILE_KEYS = ("loss", "reduction", "seed", "steps", "epochs", "learning_rate", "batch_size", "optimizer",
                "predict", "output", "title", "units", "inputs", "activation", "layers", "=A1", "e", "E", "x",
                "w", "mean", "sum", "sigmoid", "pi", "\u001b", "a b", "max", "L", "J", "lr", "momentum")
SECTIONS = ("[values]", "[parameters]", "[forward]", "[data]", "[train]", "[network]", "[cost]", "[answers]",
            "[[forward]]", "[forward.x]", "[bogus]")


def mutate_problem(rng: random.Random, text: str) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(9)
        if not lines:
            lines = [rng.choice(SECTIONS)]
        i = rng.randrange(len(lines))
        line = lines[i]
        if kind == 0 and "=" in line:  # a value replaced by a hostile one
            key = line.split("=", 1)[0]
            lines[i] = f"{key}= {rng.choice(HOSTILE_VALUES)}"
        elif kind == 1 and "=" in line and '"' in line:  # a formula mutated
            key, value = line.split("=", 1)
            inner = value.strip().strip('"')
            lines[i] = f'{key}= "{mutate_text(rng, inner, alphabet=tuple(c for c in NASTY_CHARS if c not in chr(34) + chr(92)))}"'
        elif kind == 2:
            del lines[i]
        elif kind == 3:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif kind == 4:
            lines.insert(i, f"{rng.choice(HOSTILE_KEYS)} = {rng.choice(HOSTILE_VALUES)}")
        elif kind == 5:
            lines.insert(i, rng.choice(SECTIONS))
        elif kind == 6 and "=" in line and re.search(r"=\s*-?[\d.]", line):  # a number scaled or replaced
            key = line.split("=", 1)[0]
            lines[i] = f"{key}= {rng.choice(('1e300', '-1e300', '0', '1e-300', '3', '-3', '1e5', '1e9'))}"
        elif kind == 7:
            lines[i] = mutate_text(rng, line)
        else:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines) + "\n"


def problem_inputs(rng: random.Random, count: int, pdf_share: float) -> list[dict[str, Any]]:
    bases = base_problems()
    out = []
    for _ in range(count):
        name, text = rng.choice(bases)
        mutated = mutate_problem(rng, text)
        r = rng.random()
        if r < pdf_share:
            command = ["solve", "{problem}", "--pdf", "{out}/s.pdf", "--no-train"]
            fmt = "pdf"
        else:
            command_name = rng.choice(("solve", "solve", "verify", "graph", "train"))
            fmt = rng.choice({"solve": ("json", "json", "text", "markdown", "latex", "typst"),
                              "verify": ("json", "text"),
                              "graph": ("dot", "json", "text"),
                              "train": ("json", "text")}[command_name])
            command = [command_name, "{problem}"]
            if command_name == "graph":
                command += (["-o", "{out}/g.dot"] if fmt == "dot" else ["--format", fmt])
            else:
                command += ["--format", fmt]
            if command_name == "train":
                command += ["--quiet"]
        if fmt not in ("dot", "pdf") and rng.random() < 0.5:
            command += ["-o", "{out}/out." + fmt]
        out.append({"campaign": "problems", "kind": name, "argv": command, "format": fmt, "problem": mutated})
    return out


# --------------------------------------------------------------------------------------------
# Answers files

#: Problems graded by the answers campaign and answers a student could write for them.
ANSWER_BASES = {
    "seed003_network.toml": {"dE/dw1": "-0.008421", "dE/dw5": "0.03463", "out_h1": "0.5597", "E": "0.2984",
                             "w5+": "-0.2463", "dE/dout_h1": "0.01", "in_o1": '"w5*out_h1 + w7*out_h2"',
                             "dE/dw8": '"(out_o2 - y2)*out_o2*(1-out_o2)*out_h2"'},
    "seed003_linear.toml": {"dL/dw": "-10.0", "dL/db": "-4.0", "y_pred": "1.0", "L": "3.0", "w+": "0.5"},
}
ANSWER_VALUES = ('1e400', '-1e400', 'nan', 'inf', '"nan"', '"inf"', '1e-400', '"1e400"', '1' + 'e' + '9' * 5000,
                 '"1e' + '9' * 5000 + '"', '"w1/(x1-0.5)"', '"(-8)**(2/3)*w1"', '"x*cos(exp(1e30))"',
                 '"exp(exp(1e15))"', '"=HYPERLINK(\\"http://x\\")"', '"+1+2"', '"-w6*0 + 1"', '"@SUM(A1)"',
                 '"\\t1"', '"\\r1"', '"-0.0346"', '-0.0346', '"1,5"', '"0.5 "', 'true', '[1, 2]', '{a = 1}',
                 '""', '"\\u001b[31mred"', '"sigmoid(in_h1)"', '"w1*x1 + w3*x2"', '"' + "w1+" * 300 + 'w1"',
                 '"' + "(" * 200 + "w1" + ")" * 200 + '"', '"__import__(\\"os\\")"', '1' + '0' * 4400,
                 '"' + "+0*w1" * 400 + '"', '"x1**x1**x1**1e9"', '0', '-0', '1e-320', '"1/0"', '"zoo"')
ANSWER_KEYS = ('"=HYPERLINK(\\"http://x\\")"', '"+cmd"', '"-2+3"', '"@SUM(A1:A9)"', '"\\tkey"', '"\\rkey"',
               '"dE/dw9"', '"dE/d"', '"/"', '""', '"\\u001b[2J"', '"w5++"', '"d E / d w1"', '"∂E/∂w1"',
               '"dE/dx1"', '"dw1/dE"', '"E"', '"dE/dE"', '"' + "k" * 3000 + '"', '"a.b"')


def answers_text(rng: random.Random, problem: str) -> str:
    items = list(ANSWER_BASES[problem].items())
    rng.shuffle(items)
    lines = [] if rng.random() < 0.03 else ["[answers]"]
    for key, value in items[: rng.randint(0, len(items))]:
        if rng.random() < 0.3:
            value = rng.choice(ANSWER_VALUES)
        if rng.random() < 0.15:
            key = rng.choice(ANSWER_KEYS).strip('"')
        lines.append(f'"{key}" = {value}')
    for _ in range(rng.randint(0, 3)):
        lines.insert(rng.randint(0, len(lines)), f"{rng.choice(ANSWER_KEYS)} = {rng.choice(ANSWER_VALUES)}")
    text = "\n".join(lines) + "\n"
    if rng.random() < 0.2:
        text = mutate_text(rng, text)
    return text


def answers_inputs(rng: random.Random, count: int) -> list[dict[str, Any]]:
    out = []
    for _ in range(count):
        problem = rng.choice(sorted(ANSWER_BASES))
        files = [answers_text(rng, problem) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        names = [rng.choice(("s1", "=1+2", "-student", "@x", "\u001b[31mred", "a b", "+x", "ok")) + f"_{k}"
                 for k in range(len(files))]
        fmt = rng.choice(("text", "json", "markdown"))
        out.append({"campaign": "answers", "kind": problem, "problem_path": str(ROOT / "examples" / problem),
                    "answers": list(zip(names, files)), "format": fmt,
                    "argv": ["check", "{problem}", "{answers}", "--report", "{out}/r.csv", "--format", fmt]})
    return out


# --------------------------------------------------------------------------------------------
# Running one input


NON_FINITE = re.compile(r"(?<![\w.])-?(nan|inf|infinity)(?![\w])", re.IGNORECASE)


@dataclass
class Outcome:
    category: str          # ok, clean, traceback, time, memory
    rc: int | None = None
    non_finite: bool = False
    csv_formula: int = 0
    leftover: bool = False
    detail: str = ""
    cpu: float = 0.0       # CPU seconds the input cost (the worker's, or the subprocess's)


def _materialise(task: dict[str, Any], folder: Path) -> list[str]:
    """The command line of ``task`` with its files written into ``folder``."""
    out = folder / "out"
    out.mkdir()
    problem = task.get("problem_path")
    if "problem" in task:
        problem = str(folder / "problem.toml")
        Path(problem).write_text(task["problem"], encoding="utf-8", errors="surrogatepass")
    answers = []
    for name, text in task.get("answers", []):
        path = folder / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        answers.append(str(path))
    argv: list[str] = []
    for arg in task["argv"]:
        if arg == "{answers}":
            argv += answers
        else:
            argv.append(arg.replace("{problem}", str(problem)).replace("{out}", str(out)))
    return argv


def _non_finite_json(text: str) -> bool:
    found = []

    def constant(name: str) -> float:
        found.append(name)
        return float(name.replace("Infinity", "inf"))

    try:
        json.loads(text, parse_constant=constant)
    except ValueError:
        return False
    return bool(found)


def _non_finite_number(value: Any) -> bool:
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return False


def _judge_outputs(task: dict[str, Any], rc: int, stdout: str, out: Path) -> Outcome:
    outcome = Outcome("ok", rc)
    files = sorted(p for p in out.iterdir()) if out.exists() else []
    if rc in (2, 3) and files and not (rc == 2 and _class_report_with_unreadable_rows(files)):
        outcome.leftover = True
    if rc == 0:
        texts = [stdout] + [p.read_text(errors="replace") for p in files if p.suffix in (".json", ".txt", ".text",
                                                                                       ".markdown", ".latex",
                                                                                       ".typst", ".dot")]
        for text in texts:
            if task.get("format") == "json" and text.strip().startswith("{"):
                outcome.non_finite |= _non_finite_json(text)
            elif task.get("format") in ("text", "markdown", "latex", "typst") and task["campaign"] != "answers":
                # a number printed as nan/inf (the words, not names that contain them)
                outcome.non_finite |= bool(re.search(r"[=:≈(]\s*-?(nan|inf)\b", text, re.IGNORECASE))
    report = out / "r.csv"
    if report.exists():
        with report.open(newline="", encoding="utf-8", errors="replace") as handle:
            for row in csv.reader(handle):
                for cell in row:
                    if cell[:1] in ("=", "+", "-", "@", "\t", "\r") and not _plain_number(cell):
                        outcome.csv_formula += 1
    return outcome


def _class_report_with_unreadable_rows(files: list[Path]) -> bool:
    """``check`` on a class writes its report and exits 2 when some files can't be read (issue 10).

    Each unreadable file has a row of its own (verdict ``unreadable``): the report
    is whole, not output left behind by an error.
    """
    if [p.name for p in files] != ["r.csv"]:
        return False
    with files[0].open(newline="", encoding="utf-8", errors="replace") as handle:
        return any(row.get("verdict") == "unreadable" for row in csv.DictReader(handle))


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _plain_number(cell: str) -> bool:
    """A number a spreadsheet reads as a number (float() would also take "\t1", "inf", "1_0")."""
    return _NUMBER.fullmatch(cell) is not None


def run_in_process(task: dict[str, Any]) -> Outcome:
    """Run ``task`` in this process (a worker): ``explain.cli.main`` or ``explain.grad``."""
    import contextlib

    import explain
    from explain.cli import main

    if task.get("kind") == "api":
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr):
                d = explain.grad(task["expr"], at=task["at"] or None)
            numbers = [d.loss_value, *(g.value for g in d.gradients.values())]
            bad = any(_non_finite_number(v) for v in numbers)
            return Outcome("ok", 0, non_finite=bad, detail="non-finite result" if bad else "")
        except explain.ExplainError:
            return Outcome("clean", 2)
        except MemoryError:
            return Outcome("memory", None, detail="MemoryError")
        except Exception as exc:  # noqa: BLE001 - what the fuzzer looks for
            return Outcome("traceback", None, detail="".join(traceback.format_exception(exc))[-1500:])

    with tempfile.TemporaryDirectory(prefix="explain-fuzz-") as tmp:
        folder = Path(tmp)
        argv = _materialise(task, folder)
        stdout, stderr = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        os.chdir(folder)  # `graph` without -o writes PROBLEM.svg into the current folder
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                rc = main(argv)
        except SystemExit as exc:  # argparse's own errors: `python -m explain` exits with this code
            rc = exc.code if isinstance(exc.code, int) else 2
        except MemoryError:
            return Outcome("memory", None, detail="MemoryError escaped main")
        except BaseException as exc:  # noqa: BLE001 - an exception escaping main is a traceback
            return Outcome("traceback", None, detail="".join(traceback.format_exception(exc))[-1500:])
        finally:
            os.chdir(cwd)
        err = stderr.getvalue()
        outcome = _judge_outputs(task, rc, stdout.getvalue(), folder / "out")
        if "MemoryError" in err:
            outcome.category = "memory"
        elif rc == 3 or "Traceback (most recent call last)" in err:
            outcome.category = "traceback"
        elif rc == 2:
            outcome.category = "clean"
        elif rc not in (0, 1):
            outcome.category = "traceback"
        outcome.detail = err[-1500:]
        return outcome


def run_subprocess(task: dict[str, Any], timeout: float, memory: int) -> Outcome:
    """Run ``task`` through a real ``python -m explain`` process (the API kind is skipped)."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    with tempfile.TemporaryDirectory(prefix="explain-fuzz-") as tmp:
        folder = Path(tmp)
        argv = _materialise(task, folder)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            proc = subprocess.run([sys.executable, "-m", "explain", *argv], capture_output=True, text=True,
                                  errors="replace", timeout=(timeout + 5) * HANG_FACTOR, env=env,
                                  preexec_fn=limit, cwd=folder)
        except subprocess.TimeoutExpired:
            return Outcome("time", None, detail=f"over {(timeout + 5) * HANG_FACTOR:.0f} s of wall time in a subprocess")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        outcome = _judge_outputs(task, proc.returncode, proc.stdout, folder / "out")
        if "MemoryError" in proc.stderr:
            outcome.category = "memory"
        elif proc.returncode not in (0, 1, 2) or "Traceback (most recent call last)" in proc.stderr:
            outcome.category = "traceback"
        elif proc.returncode == 2:
            outcome.category = "clean"
        outcome.cpu = cpu
        outcome.detail = proc.stderr[-1500:]
        if cpu > timeout + 5:  # the subprocess pays for its own imports (about 3 s)
            outcome.category, outcome.detail = "time", f"{cpu:.1f} CPU-seconds in a subprocess"
        return outcome


# --------------------------------------------------------------------------------------------
# Worker processes with a watchdog


def _worker(conn: Any, memory: int) -> None:
    import resource

    import torch

    torch.set_num_threads(1)
    size = _vm_size()
    limit = size + memory
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import warnings

    warnings.simplefilter("ignore")  # warnings are part of the output the commands print themselves
    while True:
        task = conn.recv()
        if task is None:
            return
        start = time.process_time()
        try:
            outcome = run_in_process(task)
        except MemoryError:
            outcome = Outcome("memory", None, detail="MemoryError in the harness")
        outcome.cpu = time.process_time() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        conn.send((outcome, rss))
        if outcome.category == "memory" or rss > memory:
            return  # a fresh worker for the next input


def _vm_size() -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


class Pool:
    """``jobs`` workers, each running one input at a time under the watchdog's time limit."""

    def __init__(self, jobs: int, timeout: float, memory: int) -> None:
        self.ctx = mp.get_context("fork")
        self.timeout, self.memory = timeout, memory
        self.workers: list[Any] = [None] * jobs

    def _start(self, i: int) -> Any:
        parent, child = self.ctx.Pipe()
        proc = self.ctx.Process(target=_worker, args=(child, self.memory), daemon=True)
        proc.start()
        child.close()
        self.workers[i] = (proc, parent, None, 0.0)
        return self.workers[i]

    def run(self, tasks: list[dict[str, Any]], progress: Any) -> list[tuple[dict[str, Any], Outcome]]:
        from multiprocessing.connection import wait

        results: list[tuple[dict[str, Any], Outcome]] = []
        pending = list(reversed(tasks))
        for i in range(len(self.workers)):
            self._start(i)
        while pending or any(w and w[2] is not None for w in self.workers):
            for i, w in enumerate(self.workers):
                if w is None or not w[0].is_alive():
                    if w is not None and w[2] is not None:  # died while running its task
                        results.append((w[2], Outcome("memory" if w[0].exitcode in (-9, 137) else "traceback",
                                                      detail=f"worker died, exit code {w[0].exitcode}")))
                        progress(results)
                    w = self._start(i)
                if w[2] is None and pending:
                    task = pending.pop()
                    w[1].send(task)
                    self.workers[i] = w = (w[0], w[1], task, time.monotonic())
            busy = [w for w in self.workers if w[2] is not None]
            if not busy:
                continue
            ready = wait([w[1] for w in busy], timeout=0.5)
            now = time.monotonic()
            for i, w in enumerate(self.workers):
                proc, conn, task, started = w
                if task is None:
                    continue
                if conn in ready:
                    try:
                        outcome, rss = conn.recv()
                    except (EOFError, OSError):
                        continue  # died; handled above
                    if rss > self.memory and outcome.category != "memory":
                        outcome.category, outcome.detail = "memory", f"peak RSS {rss / 2**30:.1f} GiB"
                    if outcome.cpu > self.timeout and outcome.category not in ("memory",):
                        outcome.category, outcome.detail = "time", f"{outcome.cpu:.1f} CPU-seconds"
                    results.append((task, outcome))
                    self.workers[i] = (proc, conn, None, 0.0)
                    progress(results)
                elif now - started > self.timeout * HANG_FACTOR:
                    proc.kill()
                    proc.join()
                    results.append((task, Outcome("time", detail=f"killed after {now - started:.0f} s of wall time")))
                    progress(results)
                    self._start(i)
        for w in self.workers:
            if w is not None and w[0].is_alive():
                w[1].send(None)
                w[0].join(5)
        return results


# --------------------------------------------------------------------------------------------
# The table


def tabulate(results: list[tuple[dict[str, Any], Outcome]]) -> dict[str, Counter[str]]:
    table: dict[str, Counter[str]] = {}
    for task, outcome in results:
        row = table.setdefault(task["campaign"], Counter())
        row["tried"] += 1
        row[{"clean": "clean exit 2", "traceback": "tracebacks", "time": "over time",
             "memory": "over memory"}.get(outcome.category, "ok")] += 1
        if outcome.non_finite:
            row["non-finite results"] += 1
        row["CSV formula cells"] += outcome.csv_formula
        if outcome.leftover:
            row["output after error"] += 1
    return table


TITLES = {"expressions": "expressions via `grad` and `explain.grad` (grammar, mutants, adversarial)",
          "problems": "mutated problem files (solve, verify, graph, train, pdf, latex, typst, json)",
          "answers": "mutated answers files (`check --report`)",
          "subprocess": "the same inputs through `python -m explain` (a sample)"}


def print_table(table: dict[str, Counter[str]], header: str) -> None:
    print(header)
    print("| campaign | " + " | ".join(COLUMNS) + " |")
    print("| --- " * (len(COLUMNS) + 1) + "|")
    for campaign in ("expressions", "problems", "answers", "subprocess"):
        if campaign in table:
            row = table[campaign]
            print(f"| {TITLES[campaign]} | " + " | ".join(f"{row[c]:,}" for c in COLUMNS) + " |")


def _describe(task: dict[str, Any]) -> str:
    if task.get("kind") == "api":
        return f"explain.grad({task['expr']!r}, at={task['at']!r})"
    text = "explain " + " ".join(repr(a) if " " in a or not a else a for a in task["argv"])
    if "problem" in task:
        text += "\n    problem file:\n" + "\n".join("      " + line for line in task["problem"].splitlines())
    for name, answers in task.get("answers", []):
        text += f"\n    answers {name!r}:\n" + "\n".join("      " + line for line in answers.splitlines()[:30])
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a small run (2,000 / 200 / 200, 20 subprocesses)")
    parser.add_argument("--expressions", type=int, default=20_000)
    parser.add_argument("--problems", type=int, default=2_000)
    parser.add_argument("--answers", type=int, default=2_000)
    parser.add_argument("--subprocess", type=int, default=200, help="inputs also run through a real subprocess")
    parser.add_argument("--pdf-share", type=float, default=0.01, help="share of problem files run as solve --pdf")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input")
    parser.add_argument("--memory-gb", type=float, default=2.0, help="memory per input beyond the imports")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("expressions", "problems", "answers"), action="append")
    parser.add_argument("--save-failures", metavar="DIR", help="write each failing input as JSON into DIR")
    args = parser.parse_args(argv)
    if args.quick:
        args.expressions, args.problems, args.answers, args.subprocess = 2_000, 200, 200, 20
    memory = int(args.memory_gb * 2**30)
    rng = random.Random(args.seed)

    import explain.cli  # noqa: F401 - imported before forking, so the workers start warm
    import explain.commands.check, explain.commands.grad, explain.commands.solve  # noqa: E401,F401
    import torch  # noqa: F401
    import sympy  # noqa: F401

    tasks: list[dict[str, Any]] = []
    campaigns = args.only or ["expressions", "problems", "answers"]
    if "expressions" in campaigns:
        tasks += expression_inputs(rng, args.expressions)
    if "problems" in campaigns:
        tasks += problem_inputs(rng, args.problems, args.pdf_share)
    if "answers" in campaigns:
        tasks += answers_inputs(rng, args.answers)
    rng.shuffle(tasks)  # the slow campaigns spread over the run

    start = time.monotonic()
    last = [start]

    def progress(results: list[Any]) -> None:
        if time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            print(f"  … {len(results):,}/{len(tasks):,} inputs, {last[0] - start:.0f} s", file=sys.stderr, flush=True)

    results = Pool(args.jobs, args.timeout, memory).run(tasks, progress)
    sample = [t for t in tasks if t.get("kind") != "api"]
    rng.shuffle(sample)
    for task in sample[: args.subprocess]:
        outcome = run_subprocess(task, args.timeout, memory + 2**30)
        results.append(({**task, "campaign": "subprocess"}, outcome))
    elapsed = time.monotonic() - start

    print_table(tabulate(results), f"\nexplain fuzzing, seed {args.seed}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
                f"{platform.node()} ({os.cpu_count()} cores, {args.jobs} workers), {elapsed:.0f} s; limits "
                f"{args.timeout:g} CPU-seconds and {args.memory_gb:g} GB per input\n")
    slowest = sorted(results, key=lambda r: -r[1].cpu)[:3]
    print("slowest inputs: " + "; ".join(f"{o.cpu:.1f} CPU-s ({t['campaign']}: {_describe(t).splitlines()[0][:70]})"
                                         for t, o in slowest))
    failures = [(t, o) for t, o in results
                if o.category in ("traceback", "time", "memory") or o.non_finite or o.csv_formula or o.leftover]
    if failures:
        print(f"\n{len(failures)} failing inputs:")
    kinds = Counter()
    for task, outcome in failures:
        key = outcome.detail.strip().splitlines()[-1][:120] if outcome.detail.strip() else outcome.category
        kinds[(task["campaign"], outcome.category, key)] += 1
    for (campaign, category, key), n in kinds.most_common():
        print(f"  {n:5d} × {campaign} {category}: {key}")
    if args.save_failures:
        folder = Path(args.save_failures)
        folder.mkdir(parents=True, exist_ok=True)
        for i, (task, outcome) in enumerate(failures):
            (folder / f"{i:04d}-{task['campaign']}-{outcome.category}.txt").write_text(
                f"{outcome.category} rc={outcome.rc} non_finite={outcome.non_finite} csv={outcome.csv_formula} "
                f"leftover={outcome.leftover}\n{_describe(task)}\n--- stderr ---\n{outcome.detail}\n",
                encoding="utf-8", errors="replace")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
