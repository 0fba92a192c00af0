"""Batch grading: how long does ``explain check`` take for a class of 1000 answer files?

Writes 1000 answers files for examples/seed003_network.toml into a temporary
directory — every student answers a few forward values, all eight gradients,
w5+ and E+, at 4 significant digits; a third are right, half commit one of the
catalogue's mistakes, and the rest hold numbers no mistake explains (the worst
case: every mistake and every pair of mistakes is tried) — then runs the CLI's
batch path, ``explain check PROBLEM answers/*.toml --report grades.csv``, in a
fresh process, as a teacher would.

    python benchmarks/grading.py [--files 1000] [--jobs 2]

Goal (issue 10): under 10 s for 1000 files on 2 cores, with the class report (CSV)
and the class summary in the JSON output.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explain.diagnose import Quantity, Student, catalogue  # noqa: E402
from explain.graph import Graph  # noqa: E402
from explain.problem import load  # noqa: E402

PROBLEM = ROOT / "examples" / "seed003_network.toml"


def write_class(directory: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` answers files: right, wrong by a catalogue mistake, or wrong at random."""
    problem = load(PROBLEM)
    graph = Graph.from_problem(problem)
    eta = problem.train.learning_rate if problem.train else None
    student = Student(graph, eta)
    mistakes = catalogue(graph, eta)
    rng = np.random.default_rng(seed)
    keys = {"out_h1": Quantity("value", "out_h1"), "out_o1": Quantity("value", "out_o1")}
    keys.update({f"dE/d{p}": Quantity("grad", p) for p in graph.parameters})
    keys.update({"w5+": Quantity("after", "w5"), "E+": Quantity("loss_after", "E")})
    paths = []
    for k in range(count):
        kind = rng.random()
        outcome = student.correct if kind < 1 / 3 else student.outcome(mistakes[rng.integers(len(mistakes))])
        lines = ["[answers]"]
        for key, q in keys.items():
            value = float(outcome.get(q))
            if kind > 5 / 6:
                value *= rng.uniform(0.3, 1.7)
            lines.append(f'"{key}" = {value:#.4g}')  # '#': trailing zeros kept, 4 significant digits
        path = directory / f"student{k:04d}.toml"
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        paths = write_class(directory, args.files)
        report = directory / "grades.csv"
        command = [sys.executable, "-m", "explain", "check", str(PROBLEM), *map(str, paths),
                   "--report", str(report), "--jobs", str(args.jobs), "--format", "json",
                   "-o", str(directory / "class.json")]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU seconds of the command and its workers: what the wall time would be on idle cores, summed.
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if result.returncode not in (0, 1):
            sys.exit(f"explain check failed ({result.returncode}): {result.stderr}")
        rows = list(csv.DictReader(report.open()))
    wrong = [r for r in rows if r["verdict"] == "incorrect"]
    diagnosed = sum(1 for r in wrong if r["code"])
    print(f"graded {args.files} answer files ({len(rows)} answers) with --jobs {args.jobs} "
          f"on {os.cpu_count()} CPUs: {elapsed:.2f} s, {args.files / elapsed:.0f} files/s "
          f"(whole command: start-up, verification, derivation, grading, report); CPU time {cpu:.2f} s, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"incorrect answers: {len(wrong)}, diagnosed: {diagnosed}, no diagnosis: {len(wrong) - diagnosed}")
    verdicts = Counter(r["verdict"] for r in rows)
    print("verdicts: " + ", ".join(f"{v} {n}" for v, n in sorted(verdicts.items())))
    print(f"goal: under 10 s — {'met' if elapsed < 10 else 'NOT met'}")


if __name__ == "__main__":
    main()
