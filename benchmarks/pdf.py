"""The worked-solution PDF of big networks: how long ``explain solve NET --pdf`` takes.

For the gallery's 3-4-4-2 network and an 8-16-16-4 network (issue 11's goal: the
8-16-16-4 PDF written in under 10 s with the default sections), it runs the whole
command in a fresh process, as a user does (start-up, verification against PyTorch
and finite differences, the text solution, the PDF), and prints its wall time and
CPU time (the command's own, from ``resource.getrusage``, so that a busy machine
shows as wall time above CPU time), the pages and the smallest text (``pdftotext
-bbox``).  Then, in this process, the parts: deriving the problem (the peer: what
the PDF explains) against building the document and compiling it.

    python benchmarks/pdf.py
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NETWORKS = [ROOT / "docs" / "gallery" / "network_3442.toml", ROOT / "docs" / "gallery" / "network_8-16-16-4.toml"]


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    match = re.search(r"Pages:\s+(\d+)", info)
    return int(match.group(1)) if match else -1


def smallest_text(pdf: Path) -> float:
    """The smallest word height in the PDF (pt), from ``pdftotext -bbox``."""
    html = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True).stdout
    heights = [float(y2) - float(y1) for y1, y2 in re.findall(r'yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)"', html)]
    return min(heights, default=float("nan"))


def whole_command(problem: Path, folder: Path) -> tuple[float, float, Path]:
    pdf = folder / f"{problem.stem}.pdf"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "explain", "solve", str(problem), "--pdf", str(pdf)], cwd=ROOT,
                   check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), pdf


def parts(problem: Path) -> tuple[float, float]:
    import explain
    from explain.render.pdf import solution_pdf

    start = time.process_time()
    solution = explain.solve(problem, verify=False)
    derive = time.process_time() - start
    start = time.perf_counter()  # Typst compiles in native threads: wall time, not this process's CPU
    solution_pdf(solution)
    return derive, time.perf_counter() - start


def main() -> None:
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        for problem in NETWORKS:
            wall, cpu, pdf = whole_command(problem, Path(tmp))
            derive, write = parts(problem)
            print(f"{problem.stem}: explain solve --pdf {wall:.1f} s wall, {cpu:.1f} s CPU; {pages(pdf)} pages, "
                  f"smallest text {smallest_text(pdf):.1f} pt; in-process: derive {derive:.2f} s, "
                  f"document + PDF {write:.2f} s ({write / derive:.0f}× the derivation)")


if __name__ == "__main__":
    main()
