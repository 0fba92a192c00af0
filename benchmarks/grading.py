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

It then measures the diagnosis itself on the five networks of
``benchmarks/grading_networks.py`` (``--quality-only`` skips the timing):

(a) false diagnoses: 10,000 random wrong answers (the true value times a factor
    drawn in [0.3, 1.7], written with 4 significant digits), each graded alone;
    the share that still gets a diagnosis.  Goal: at most 1 in 200.
(b) right diagnoses: every single mistake of each network's catalogue (applied
    everywhere, per layer, per group of edges) makes a student's whole answer
    sheet (stage values, parameter gradients, w+, E+ at 4 significant digits);
    the share of its wrong answers diagnosed with the mistake's code.  Goal: 95 %.

``--save FILE`` writes the generated answers (a JSON list) and ``--load FILE``
grades a saved list, so that the same answers can be graded by another version
of ``explain`` (``PYTHONPATH=/path/to/other/tree python benchmarks/grading.py
--quality-only --load FILE``).
"""

from __future__ import annotations

import argparse
import csv
import json
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
sys.path.append(str(ROOT))  # after PYTHONPATH: --load can grade with another tree

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


def _sheet_keys(graph: Graph, eta: float | None) -> dict[str, Quantity]:
    """The keys of a full answer sheet: stage values, parameter gradients, w+ and E+."""
    keys = {n.name: Quantity("value", n.name) for n in graph.stages if n.name != graph.loss}
    keys.update({f"d{graph.loss}/d{p}": Quantity("grad", p) for p in graph.parameters})
    if eta is not None:
        keys.update({f"{p}+": Quantity("after", p) for p in graph.parameters})
        keys[f"{graph.loss}+"] = Quantity("loss_after", graph.loss)
    return keys


def _written(value: float) -> str:
    return f"{value:#.4g}"  # 4 significant digits, trailing zeros kept


def generate(count: int = 10_000, seed: int = 0) -> list[dict[str, object]]:
    """The answers of measures (a) and (b), as plain data: problem, answers text, key, code."""
    from benchmarks.grading_networks import networks
    from explain.problem import loads

    rng = np.random.default_rng(seed)
    cases: list[dict[str, object]] = []
    nets = networks()
    for name, source in nets.items():
        text = source.read_text() if isinstance(source, Path) else source
        problem = loads(text, name)
        graph = Graph.from_problem(problem)
        eta = problem.train.learning_rate if problem.train else None
        student = Student(graph, eta)
        keys = _sheet_keys(graph, eta)
        truth = {k: float(student.correct.get(q)) for k, q in keys.items()}
        usable = [k for k, v in truth.items() if v != 0]
        for _ in range(count // len(nets)):
            key = usable[rng.integers(len(usable))]
            value = truth[key] * rng.uniform(0.3, 1.7)
            if abs(value - truth[key]) < 1e-3 * abs(truth[key]):
                value = truth[key] * 1.5  # never right by chance
            cases.append({"measure": "a", "network": name, "problem": text,
                          "answers": f'[answers]\n"{key}" = {_written(value)}\n', "keys": [key], "code": None})
        for m in catalogue(graph, eta):
            outcome = student.outcome(m)
            lines, changed = ["[answers]"], []
            for key, q in keys.items():
                value = float(outcome.get(q))
                lines.append(f'"{key}" = {_written(value)}')
                # A mistake that zeroes an answer is not counted: 0 is never diagnosed (a guess).
                if _written(value) != _written(truth[key]) and value != 0:
                    changed.append(key)
            if changed:
                cases.append({"measure": "b", "network": name, "problem": text, "answers": "\n".join(lines) + "\n",
                              "keys": changed, "code": m.code, "variant": m.variant})
    return cases


def measure(cases: list[dict[str, object]]) -> dict[str, dict[str, list[int]]]:
    """Grade the cases; per measure and network: [answers counted, answers that hit]."""
    from explain.check import Grader, parse_answers
    from explain.problem import loads

    graders: dict[str, Grader] = {}
    result: dict[str, dict[str, list[int]]] = {"a": {}, "b": {}, "consistent": {}}
    misses: list[str] = []
    for case in cases:
        name, text = str(case["network"]), str(case["problem"])
        if name not in graders:
            graders[name] = Grader(loads(text, name))
        report = graders[name].grade(parse_answers(str(case["answers"])))
        by_key = {i.key: i for i in report.items}
        tally = result[str(case["measure"])].setdefault(name, [0, 0])
        for key in case["keys"]:  # type: ignore[union-attr]
            item = by_key[key]
            code = item.diagnosis.code if item.diagnosis else None
            if case["measure"] == "a":
                if item.verdict == "incorrect":
                    tally[0] += 1
                    tally[1] += code is not None
            elif item.verdict == "consistent":
                # w5+ computed right from the student's own wrong ∂E/∂w5: credited by follow-through,
                # the mistake is diagnosed where it was made.  Counted apart.
                result["consistent"].setdefault(name, [0, 0])[0 if key.endswith("+") else 1] += 1
            else:
                tally[0] += 1
                tally[1] += code == case["code"]
                if code != case["code"]:
                    misses.append(f"{name} {case['code']}:{case.get('variant')} {key} → {item.verdict} {code}")
    if os.environ.get("GRADING_MISSES"):
        print("\n".join(misses))
    return result


def report_quality(result: dict[str, dict[str, list[int]]]) -> None:
    for measure, words in (("a", "random wrong answers with a diagnosis (false diagnoses)"),
                           ("b", "catalogue mistakes diagnosed with the right code")):
        total = [sum(v[0] for v in result[measure].values()), sum(v[1] for v in result[measure].values())]
        per = ", ".join(f"{n} {h}/{c}" for n, (c, h) in result[measure].items())
        share = total[1] / max(1, total[0])
        extra = f" = 1 in {1 / share:.0f}" if measure == "a" and share else ""
        print(f"({measure}) {words}: {total[1]}/{total[0]} = {100 * share:.2f} %{extra}  [{per}]")
    update = sum(v[0] for v in result.get("consistent", {}).values())
    other = sum(v[1] for v in result.get("consistent", {}).values())
    print(f"    not counted in (b): answers computed right from the student's own wrong numbers, credited as "
          f"consistent (follow-through): {update} after the step (w+ from their ∂E/∂w, E+ from their w+), "
          f"{other} others (gradients from forward values rounded early)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quality-only", action="store_true", help="skip the timing, measure the diagnosis only")
    parser.add_argument("--timing-only", action="store_true", help="time the class only")
    parser.add_argument("--save", help="write the generated answers of the quality measure to this JSON file")
    parser.add_argument("--load", help="grade the answers saved in this JSON file instead of generating them")
    args = parser.parse_args()
    if not args.quality_only:
        timing(args)
    if args.timing_only:
        return
    cases = json.loads(Path(args.load).read_text()) if args.load else generate()
    if args.save:
        Path(args.save).write_text(json.dumps(cases))
    report_quality(measure(cases))


def timing(args: argparse.Namespace) -> None:
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
