"""Hostile input meets the process and its outputs (issue 9): exit codes, output
files, CSV cells, terminal text, signals and messages — all through the CLI."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import explain
from explain.cli import main
from explain.errors import ExplainError

from .conftest import EXAMPLES, ROOT, run_cli

NETWORK = EXAMPLES / "seed003_network.toml"
ANSWERS = EXAMPLES / "seed003_answers_numpy.toml"
LINEAR = EXAMPLES / "seed003_linear.toml"
GRAD = ("grad", "x*w", "--wrt", "w", "--at", "x=3,w=2")

SIMPLE = """
title = "{title}"
[values]
x = 0.5
[parameters]
w = 0.2
[forward]
z = "w*x"
L = "z**2"
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr, (word, result.stderr)


# -- output files: regular files only ---------------------------------------------------------
def _device(tmp_path: Path) -> Path:
    """A character device of our own (the null device's numbers), so that a broken build
    replaces only this node, never the system's /dev/null."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        return node
    except (OSError, AttributeError):
        return Path("/dev/null")


def test_a_device_is_refused_as_output_and_stays_a_device(tmp_path):
    device = _device(tmp_path)
    before = os.stat(device)
    assert stat.S_ISCHR(before.st_mode)
    result = run_cli(*GRAD, "-o", str(device))
    _refused(result, "--output", str(device), "device")
    after = os.stat(device)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert not [p for p in device.parent.iterdir() if p.name.endswith(".part")]


def test_a_fifo_is_refused_as_output(tmp_path):
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    result = run_cli(*GRAD, "-o", str(fifo), timeout=60)
    _refused(result, "--output", "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


@pytest.mark.parametrize("args, option, name", [
    (GRAD, "--output", "out.txt"),
    (("solve", str(LINEAR), "--no-verify"), "--graph", "g.svg"),
    (("solve", str(LINEAR), "--no-verify"), "--pdf", "s.pdf"),
    (("train", str(LINEAR)), "--plot", "loss.png"),
    (("check", str(NETWORK), str(ANSWERS)), "--report", "r.csv"),
])
def test_a_directory_is_refused_as_output_by_every_option(tmp_path, args, option, name):
    folder = tmp_path / name
    folder.mkdir()
    result = run_cli(*args, option, str(folder))
    _refused(result, option, str(folder), "directory")
    assert folder.is_dir() and _listing(folder) == []
    assert _listing(tmp_path) == [name]


def test_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    # The documented rule: outputs never go through a symbolic link (docs/limits.md).
    target = tmp_path / "precious.txt"
    target.write_text("keep me\n")
    link = tmp_path / "out.txt"
    link.symlink_to(target)
    result = run_cli(*GRAD, "-o", str(link))
    _refused(result, "--output", "symbolic link")
    assert link.is_symlink() and target.read_text() == "keep me\n"
    dangling = tmp_path / "dangling.txt"
    dangling.symlink_to(tmp_path / "nowhere.txt")
    _refused(run_cli(*GRAD, "-o", str(dangling)), "symbolic link")
    assert not (tmp_path / "nowhere.txt").exists()


def test_proc_and_overlong_names_are_clean_errors(tmp_path):
    _refused(run_cli(*GRAD, "-o", "/proc/x"), "--output", "/proc/x")
    _refused(run_cli(*GRAD, "-o", str(tmp_path / ("a" * 300))), "too long")
    # A long but legal name works: the temporary file beside it has a short name of its own.
    long = tmp_path / ("b" * 250)
    result = run_cli(*GRAD, "-o", str(long))
    assert result.returncode == 0, result.stderr
    assert _listing(tmp_path) == [long.name]


def test_an_existing_regular_file_is_replaced_keeping_its_permissions(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("previous contents\n")
    out.chmod(0o640)
    assert run_cli(*GRAD, "-o", str(out)).returncode == 0
    assert "previous contents" not in out.read_text() and "∂" in out.read_text()
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o640


# -- all outputs or none ------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_a_bad_second_output_leaves_no_first_output(tmp_path):
    result = run_cli("solve", str(LINEAR), "--no-verify", "--graph", "g.svg", "--pdf", "/missing/s.pdf", cwd=tmp_path)
    _refused(result, "--pdf", "/missing/s.pdf", "does not exist")
    assert _listing(tmp_path) == []
    result = run_cli("solve", str(LINEAR), "--no-verify", "--graph", "g.svg", "-o", "missing/out.txt", cwd=tmp_path)
    _refused(result, "--output", "missing/out.txt")
    assert _listing(tmp_path) == []


def test_a_failure_after_the_first_file_was_rendered_leaves_nothing(tmp_path, monkeypatch, capsys):
    # The graph is drawn (to a temporary file), then the text output fails: neither may remain.
    import explain.commands.solve as solve_command

    def broken(*args, **kwargs):
        raise ExplainError("render", "planted failure")

    monkeypatch.setattr(solve_command, "render_solution", broken)
    monkeypatch.chdir(tmp_path)
    code = main(["solve", str(LINEAR), "--no-verify", "--no-train", "--graph", "g.dot", "-o", "out.txt"])
    assert code == 2 and "planted failure" in capsys.readouterr().err
    assert _listing(tmp_path) == []
    monkeypatch.undo()  # and the same run without the planted failure writes both
    monkeypatch.chdir(tmp_path)
    assert main(["solve", str(LINEAR), "--no-verify", "--no-train", "--graph", "g.dot", "-o", "out.txt"]) == 0
    assert _listing(tmp_path) == ["g.dot", "out.txt"]


def test_one_rule_for_missing_directories(tmp_path):
    # No command creates the directories above the output it names.
    _refused(run_cli(*GRAD, "-o", str(tmp_path / "a" / "out.txt")), "does not exist")
    _refused(run_cli("variants", str(LINEAR), "-n", "2", "--no-pdf", "-o", str(tmp_path / "a" / "b")),
             "--outdir", "does not exist")
    assert _listing(tmp_path) == []
    # The directory that variants names is its output: created when missing.
    result = run_cli("variants", str(LINEAR), "-n", "2", "--no-pdf", "-o", str(tmp_path / "class"))
    assert result.returncode == 0, result.stderr
    assert "answer_key.csv" in _listing(tmp_path / "class")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    _refused(run_cli("variants", str(LINEAR), "-n", "2", "--no-pdf", "-o", str(not_a_dir)), "not a directory")


def test_a_fifo_as_input_is_refused_instead_of_blocking(tmp_path):
    fifo = tmp_path / "problem.toml"
    os.mkfifo(fifo)
    start = time.monotonic()
    _refused(run_cli("solve", str(fifo), timeout=60), str(fifo), "FIFO")
    _refused(run_cli("check", str(NETWORK), str(fifo), timeout=60), str(fifo), "FIFO")
    assert time.monotonic() - start < 60


# -- CSV cells -------------------------------------------------------------------------------------
def test_report_cells_that_a_spreadsheet_would_run_are_neutralised(tmp_path):
    answers = tmp_path / "=1+2.toml"
    answers.write_text(
        '[answers]\n'
        '"=HYPERLINK(\\"http://evil\\",\\"x\\")" = 1\n'
        '"@SUM(A1)" = 2\n'
        '"\\tx" = 3\n'
        '"\\rx" = 3\n'
        '"+w" = 4\n'
        '"dE/dw5" = -0.03463298929\n'
        '"dE/dw6" = "-w6*0 + 0.08386609954"\n'
        '"dE/dw7" = "=1+1"\n'
    )
    report = tmp_path / "r.csv"
    result = run_cli("check", str(NETWORK), str(answers), "--report", str(report))
    assert result.returncode == 1, result.stderr
    rows = list(csv.reader(report.open(newline="")))
    assert rows[0][0] == "student"
    for row in rows[1:]:
        for cell in row:
            # every cell is either a plain number or text that does not start a formula
            try:
                float(cell)
            except ValueError:
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (cell, row)
    by_key = {r[2]: r for r in rows[1:]}
    assert {r[0] for r in rows[1:]} == {"'=1+2"}  # the student's name comes from the file name
    assert "'=HYPERLINK(\"http://evil\",\"x\")" in by_key and "'@SUM(A1)" in by_key and "'\tx" in by_key
    assert "'\rx" in by_key and "'+w" in by_key
    # a negative number stays a number a spreadsheet can add up; formulas given as answers do not
    assert by_key["dE/dw5"][3] == "-0.03463298929"
    assert by_key["dE/dw6"][3] == "'-w6*0 + 0.08386609954"
    assert by_key["dE/dw7"][3] == "'=1+1"


# -- terminal text -------------------------------------------------------------------------------------
def test_control_characters_from_user_text_do_not_reach_the_terminal(tmp_path):
    problem = tmp_path / "p.toml"
    problem.write_text('description = "C1 \\u009b31m too"\n' +
                       SIMPLE.format(title="Evil \\u001b[2J\\u001b]0;pwned\\u0007 title"))
    for fmt in ("text", "markdown"):
        result = run_cli("solve", str(problem), "--no-verify", "--format", fmt)
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "\x9b" not in result.stdout and "C1 \ufffd31m too" in result.stdout
        assert ("Evil ␛[2J␛]0;pwned␇ title" if fmt == "text" else "Evil ␛\\[2J␛\\]0;pwned␇ title") in result.stdout
    answers = tmp_path / "a.toml"
    answers.write_text('[answers]\n"\\u001b[31mred" = 1\n')
    result = run_cli("check", str(problem), str(answers))
    assert "\x1b" not in result.stdout + result.stderr and "␛[31mred" in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('"\\u001b[31mkey" = 1\n' + SIMPLE.format(title="t"))
    result = run_cli("solve", str(bad))
    _refused(result, "␛[31mkey")
    assert "\x1b" not in result.stderr


def test_coloured_text_keeps_our_colours_and_escapes_the_users():
    from explain.render.text import render_derivation

    d = explain.grad("x*w", wrt="w", at={"x": 3, "w": 2})
    text = render_derivation(d, color=True, title="Evil \x1b[2J title")
    assert "\x1b[1m" in text  # our bold heading
    assert "\x1b[2J" not in text and "Evil ␛[2J title" in text


def test_titles_with_brackets_tabs_and_controls_still_draw(tmp_path):
    title = 'a ] b, tab\there, bell\x07 esc\x1b[31m, non-character \ufffe, q"];x[label="y'
    problem = tmp_path / "p.toml"
    problem.write_text(SIMPLE.format(title=json.dumps(title)[1:-1]))
    result = run_cli("graph", str(problem), "-o", str(tmp_path / "g.dot"))
    assert result.returncode == 0, result.stderr
    if shutil.which("dot"):
        drawn = subprocess.run(["dot", "-Tsvg", str(tmp_path / "g.dot")], capture_output=True)
        assert drawn.returncode == 0, drawn.stderr
        assert b"a ] b, tab" in drawn.stdout and b"\x1b" not in drawn.stdout
        result = run_cli("graph", str(problem), "-o", str(tmp_path / "g.svg"))
        assert result.returncode == 0, result.stderr


# -- exit codes and signals ------------------------------------------------------------------------
def test_an_internal_error_exits_3_and_debug_shows_the_traceback(monkeypatch, capsys):
    import explain.commands.grad as grad_command

    def broken(args):
        raise RuntimeError("planted bug")

    monkeypatch.setattr(grad_command, "run", broken)
    assert main(list(GRAD)) == 3
    err = capsys.readouterr().err
    assert "internal error" in err and "please report" in err and "RuntimeError: planted bug" in err
    assert "explain grad 'x*w' --wrt w --at x=3,w=2" in err and "--debug" in err
    assert "Traceback" not in err
    assert main(["--debug", *GRAD]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "planted bug" in err
    monkeypatch.undo()
    assert main(list(GRAD)) == 0  # and ExplainError stays 2
    assert main(["grad", "x*", "--at", "x=1"]) == 2


def _children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"


def _wait_for_main(proc: subprocess.Popen[bytes]) -> None:
    """Wait until the command's main() runs: it catches SIGTERM from then on (SigCgt in /proc)."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
        except OSError:
            break
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.05)


def _answer_files(folder: Path, n: int) -> list[str]:
    paths = []
    for k in range(n):
        path = folder / f"s{k:03d}.toml"
        shutil.copyfile(ANSWERS, path)
        paths.append(str(path))
    return paths


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_to_parallel_check_stops_its_workers_and_exits_143(tmp_path):
    paths = _answer_files(tmp_path, 200)
    report = tmp_path / "r.csv"
    proc = subprocess.Popen([sys.executable, "-m", "explain", "check", str(NETWORK), *paths, "--jobs", "2",
                             "--report", str(report)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=_env(), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        workers: list[int] = []
        while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            workers = _children(proc.pid)
        assert len(workers) >= 2, "the workers never started"
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        assert proc.returncode == 143
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [w for w in workers if _alive(w)]
        assert not report.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigint_exits_130_and_leaves_no_partial_output(tmp_path):
    paths = _answer_files(tmp_path, 400)
    report, out = tmp_path / "r.csv", tmp_path / "out.txt"
    # Ctrl-C as a terminal sends it.  A test run started in the background (`… &` in a
    # script) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt
    # handler at all: the child gets SIGINT's default disposition back, as a terminal's would.
    proc = subprocess.Popen([sys.executable, "-m", "explain", "check", str(NETWORK), *paths, "--jobs", "1",
                             "--report", str(report), "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for_main(proc)
        time.sleep(1)  # inside the grading
        assert proc.poll() is None, "finished before the signal: give it more files"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert b"Traceback" not in err
        assert not report.exists() and not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# Two ways Ctrl-C used to end the process with something other than 130, each made certain here
# instead of waiting for a signal to land in the wrong millisecond (the test above caught both, rarely).
_INTERRUPT_IN_EXEC = """
import sys
import explain.commands.solve as command

def run(args):  # what dataclasses and lambdify do: a KeyboardInterrupt inside exec of a string
    exec("raise KeyboardInterrupt")

command.run = run
sys.argv = ["explain", "solve", sys.argv[1]]
from explain.cli import main
raise SystemExit(main())
"""

_SIGINT_DURING_TORCH_IMPORT = """
import importlib.abc, os, signal, sys

class SendSigintMidImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch._tensor":  # well inside torch's start-up, which calls Python from C++
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, SendSigintMidImport())
from explain.interrupts import import_torch
try:
    torch = import_torch()
except KeyboardInterrupt:
    print("interrupted after the import:", "torch" in sys.modules and hasattr(sys.modules["torch"], "tensor"))
    raise SystemExit(130)
print("not interrupted")
"""


def test_an_interrupt_that_went_through_exec_of_a_string_still_exits_130(tmp_path):
    # CPython marks a KeyboardInterrupt that leaves exec("…") as unhandled for good; when the program
    # was started with -m (`python -m explain`), its normal exit then kills the process with SIGINT
    # (-2), although main() caught the interrupt and said so.
    (tmp_path / "interrupt_in_exec.py").write_text(_INTERRUPT_IN_EXEC)
    proc = subprocess.run([sys.executable, "-m", "interrupt_in_exec", str(EXAMPLES / "seed003_network.toml")],
                          capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == "interrupted" and "Traceback" not in proc.stderr


def test_ctrl_c_during_the_torch_import_waits_for_its_end(tmp_path):
    # Raised inside torch's native start-up, the KeyboardInterrupt crossed pybind11 and the process
    # died of std::terminate (-6).  Held, it arrives once torch is whole.
    pytest.importorskip("torch")
    proc = subprocess.run([sys.executable, "-c", _SIGINT_DURING_TORCH_IMPORT], capture_output=True, text=True,
                          env=_env(), cwd=tmp_path, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert proc.stdout.strip() == "interrupted after the import: True"


# -- messages --------------------------------------------------------------------------------------------
def test_an_expression_may_start_with_minus(capsys):
    # d(-x*w)/dw = -x = -3 at x = 3 (by hand)
    for args in (("grad", "-x*w", "--wrt", "w", "--at", "x=3,w=2", "-f", "json"),
                 ("grad", "--wrt", "w", "-x*w", "--at", "x=3,w=2", "--format=json"),
                 ("grad", "--wrt", "w", "--at", "x=3,w=2", "--form", "json", "-x*w"),
                 ("grad", "--wrt", "w", "--at", "x=3,w=2", "-f", "json", "--", "-x*w")):
        assert main(list(args)) == 0, (args, capsys.readouterr().err)
        assert json.loads(capsys.readouterr().out)["gradients"]["w"]["value"] == -3.0
    result = run_cli("grad", "-x*w", "--wrt", "w", "--at", "x=3,w=2")  # and as a user types it
    assert result.returncode == 0 and "-3" in result.stdout, result.stderr


def test_no_stray_syntax_warning(capsys):
    import warnings

    for expr in ("2if x else 1", "x*1and 2", "1or x"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(["grad", expr, "--at", "x=1"]) == 2
        assert not [w for w in caught if issubclass(w.category, SyntaxWarning)]
        assert capsys.readouterr().err.startswith("explain: error: expression:")
    result = run_cli("grad", "2if x else 1", "--at", "x=1")
    assert result.returncode == 2 and "SyntaxWarning" not in result.stderr, result.stderr


def test_a_prediction_error_names_the_file_and_comes_before_training(tmp_path):
    problem = tmp_path / "p.toml"
    problem.write_text('[data]\nx = [1.0, 2.0, 3.0]\ny = [2.0, 4.1, 5.9]\n[parameters]\nw = 0.5\n'
                       '[forward]\nl = "(w*x - y)**2"\n[train]\nsteps = 10000000\npredict = { y = 4 }\n')
    start = time.monotonic()
    result = run_cli("train", str(problem))
    _refused(result, f"{problem}: [train] predict")
    assert time.monotonic() - start < 60  # ten million steps would take minutes


@pytest.mark.parametrize("at, words", [
    ([1, 2], ["at", "mapping"]),
    ({"x": 1j, "w": 2}, ["at x", "complex"]),
    ({"x": 10**400, "w": 2}, ["at x", "too large"]),
    ({"x": None, "w": 2}, ["at x", "NoneType"]),
    ({"x": [1, 2], "w": 2}, ["at x", "list"]),
    ({"x": True, "w": 2}, ["at x", "bool"]),
    ({1: 2, "w": 2}, ["names must be text"]),
])
def test_api_misuse_is_an_explain_error(at, words):
    with pytest.raises(ExplainError) as caught:
        explain.grad("x*w", wrt="w", at=at)
    for word in words:
        assert word in str(caught.value)


def test_api_misuse_of_wrt_and_a_right_call():
    with pytest.raises(ExplainError, match="wrt"):
        explain.grad("x*w", wrt=5, at={"x": 1, "w": 2})  # type: ignore[arg-type]
    with pytest.raises(ExplainError):
        explain.grad("x*w", at=None)
    # numpy scalars are real numbers: d(x*w)/dw = x = 3 (by hand)
    import numpy as np

    assert explain.grad("x*w", wrt=["w"], at={"x": np.float32(3), "w": np.int64(2)}).gradients["w"].value == 3.0
