"""The roster of a class of variants: which student has which variant file.

``explain variants`` writes ``roster.csv`` beside the variants, one row per
student (``student,variant``: the student's name, which is their answers
file's name without ``.toml``, and the variant file, relative to the roster);
``explain check --roster roster.csv answers/*.toml`` grades each student
against their own variant.  Names come from ``--students FILE`` (one a line)
or are ``student_01`` … for the teacher to replace.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path

from .errors import ExplainError

#: A student's name is an answers file's stem: no path separators, no leading dot, not empty.
_NAME = re.compile(r"[^/\\\x00-\x1f]+")


def student_names(path: str | Path) -> list[str]:
    """The names in a ``--students`` file: one per line, blank lines and ``#`` comments skipped."""
    from .files import read_input

    names = []
    for number, line in enumerate(read_input(path).splitlines(), 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not _NAME.fullmatch(name) or name.startswith("."):
            raise ExplainError(f"{path}: line {number}", f"{name!r} cannot be a file name (an answers file is NAME.toml)")
        if name in names:
            raise ExplainError(f"{path}: line {number}", f"{name!r} appears twice")
        names.append(name)
    if not names:
        raise ExplainError(str(path), "no student names (write one name per line)")
    return names


def default_names(n: int) -> list[str]:
    """``student_01`` … ``student_NN``: placeholders, one per variant."""
    width = max(2, len(str(n)))
    return [f"student_{k:0{width}d}" for k in range(1, n + 1)]


def roster_csv(students: Sequence[str], variant_files: Sequence[str]) -> str:
    """The roster's text: ``student,variant`` then one row per student (CRLF rows, RFC 4180)."""
    from .sanitize import csv_cell

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["student", "variant"])
    for name, variant in zip(students, variant_files):
        writer.writerow([csv_cell(name), variant])
    return out.getvalue()


def read_roster(path: str | Path) -> dict[str, str]:
    """Student name → variant file path (resolved against the roster's folder)."""
    from .files import read_input

    text = read_input(path)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or [c.strip().lower() for c in rows[0][:2]] != ["student", "variant"]:
        raise ExplainError(str(path), "a roster starts with the header row student,variant")
    folder = Path(path).parent
    found: dict[str, str] = {}
    for number, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip() or not row[1].strip():
            raise ExplainError(f"{path}: line {number}", "each row names a student and a variant file")
        name, variant = row[0].strip(), row[1].strip()
        if name.startswith("'"):
            name = name[1:]  # csv_cell's guard against spreadsheet formulas
        if name in found:
            raise ExplainError(f"{path}: line {number}", f"the student {name!r} appears twice")
        found[name] = str(folder / variant)
    return found


__all__ = ["default_names", "read_roster", "roster_csv", "student_names"]
