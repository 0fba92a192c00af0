"""The README's console examples are what the tool prints (issue 11, item 6).

Every ```console block of README.md is a list of ``$ explain …`` commands, each
followed by the lines it prints.  A line ``…`` stands for lines left out; the
lines between two ``…`` must appear in the output, consecutively and in order.
A ```text block preceded by ``<!-- output of: explain … -->`` is checked the same
way.  The commands run through ``python -m explain`` from the repository root
(as the README's paths assume), in an 80-column terminal.

The expected text is the README's, written by hand and read by users; the
actual text is the tool's.  They share nothing, so a change of either that
makes the README untrue fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from .conftest import ROOT

README = ROOT / "README.md"
GAP = "…"


def _examples() -> list[tuple[str, list[str]]]:
    """(command, expected lines) for every example of the README."""
    text = README.read_text(encoding="utf-8")
    examples = []
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        command, lines = None, []
        for line in block.splitlines():
            if line.startswith("$ "):
                if command:
                    examples.append((command, lines))
                command, lines = line[2:], []
            else:
                lines.append(line.rstrip())
        if command:
            examples.append((command, lines))
    for command, block in re.findall(r"<!-- output of: (.*?) -->\s*```text\n(.*?)```", text, flags=re.S):
        examples.append((command, [GAP, *(line.rstrip() for line in block.splitlines()), GAP]))
    return examples


def _chunks(lines: list[str]) -> list[list[str]]:
    chunks: list[list[str]] = [[]]
    for line in lines:
        if line.strip() == GAP:
            chunks.append([])
        else:
            chunks[-1].append(line)
    return chunks


def _find(chunk: list[str], output: list[str], start: int) -> int:
    """Where ``chunk`` appears in ``output`` at or after ``start`` (consecutive lines), or -1."""
    for i in range(start, len(output) - len(chunk) + 1):
        if output[i:i + len(chunk)] == chunk:
            return i
    return -1


def test_the_readme_has_examples():
    assert len(_examples()) >= 3


@pytest.mark.parametrize("command, expected", _examples(), ids=lambda v: v if isinstance(v, str) else "")
def test_readme_example(command: str, expected: list[str]):
    argv = shlex.split(command)
    assert argv[0] == "explain", command
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "explain", *argv[1:]], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stderr
    output = [line.rstrip() for line in result.stdout.splitlines()]
    chunks = _chunks(expected)
    position = 0
    for k, chunk in enumerate(chunks):
        if not chunk:
            continue
        anchored_start = k == 0
        anchored_end = k == len(chunks) - 1
        found = _find(chunk, output, position)
        assert found >= 0, (f"README lines not in the output of `{command}`:\n" + "\n".join(chunk)
                            + "\n--- output ---\n" + "\n".join(output))
        if anchored_start:
            assert found == 0, f"`{command}` prints something before the README's first line"
        position = found + len(chunk)
        if anchored_end:
            assert position == len(output) or not any(output[position:]), \
                f"`{command}` prints more after the README's last line (end the example with …)"
