"""``explain variants PROBLEM.toml -n 30 --seed 1 -o DIR``: per-student problems, solutions and answer keys.

Writes ``DIR/variant_01.toml`` …, a worked-solution PDF beside each (when the
PDF renderer is available and ``--no-pdf`` is not given), and one answer key as
``answer_key.csv`` and ``answer_key.json``, and ``roster.csv`` (which student has
which variant: names from ``--students``, else ``student_01`` …).  Every variant is drawn and derived
before the first file is written, so bad input leaves no files behind.
``DIR`` is created when missing, but not the directories above it (the rule of
every output, docs/limits.md); the files appear all together or not at all.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ExplainError
from ..files import after_commit, check_output_directory, make_output_directory
from ..i18n import Messages
from ..variants import Variant, answer_key, answer_key_csv, make_variants
from ..roster import default_names, roster_csv, student_names
from ..sanitize import printable
from . import write_atomic


def run(args: argparse.Namespace) -> int:
    m = Messages(args.lang)
    check_output_directory(args.outdir, "--outdir")  # before the work
    students = student_names(args.students) if args.students else None
    n = args.n if args.n is not None else (len(students) if students else 30)
    if students and n != len(students):
        raise ExplainError("-n", f"{n} variants for {len(students)} students in {args.students}: leave -n out")
    variants = make_variants(args.problem, n, args.seed)
    outdir = make_output_directory(args.outdir, "--outdir")
    for v in variants:
        write_atomic(outdir / f"{v.name}.toml", v.text)
    pdfs: dict[str, str] = {}
    if not args.no_pdf:
        try:
            pdfs = write_pdfs(variants, outdir, args.lang)
            done = m("variants_pdf_written", n=len(pdfs))
            after_commit(lambda: print(done))
        except ImportError as exc:
            print(m("variants_pdf_unavailable", reason=str(exc)), file=sys.stderr)
    write_atomic(outdir / "answer_key.json", json.dumps(answer_key(variants, pdfs), indent=2, ensure_ascii=False) + "\n")
    write_atomic(outdir / "answer_key.csv", answer_key_csv(variants))
    names = students or default_names(len(variants))
    write_atomic(outdir / "roster.csv", roster_csv(names, [f"{v.name}.toml" for v in variants]))
    files = f"{variants[0].name}.toml … {variants[-1].name}.toml" if len(variants) > 1 else f"{variants[0].name}.toml"
    after_commit(lambda: print(printable(m("variants_written", n=len(variants), outdir=outdir, files=files))))
    return 0


def write_pdfs(variants: list[Variant], outdir: Path, lang: str) -> dict[str, str]:
    """One worked-solution PDF per variant; raises ImportError while the PDF renderer is missing."""
    from ..api import solve
    from ..render.pdf import solution_pdf  # type: ignore[import-not-found]

    written = {}
    for v in variants:
        pdf = solution_pdf(solve(v.problem, verify=False, train=True), lang=lang)
        write_atomic(outdir / f"{v.name}.pdf", pdf)
        written[v.name] = f"{v.name}.pdf"
    return written
