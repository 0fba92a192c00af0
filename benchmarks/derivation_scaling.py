"""How derivation time grows with network size: explain versus naive sympy.diff.

For MLPs 2-2-2, 4-8-4, 8-16-16-4 and 16-32-32-10 (sigmoid, ½·SSE), time
  * explain: Graph (local partials), compiled program, all values and gradients;
  * naive:   substitute every stage into the loss (one fully expanded
             expression), then sympy.diff it for each parameter and evalf
             at the point — stopped after a time budget ("> budget").
Both start from the same parsed Problem.  Run: python benchmarks/derivation_scaling.py
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import explain  # noqa: E402

SIZES = [(2, 2, 2), (4, 8, 4), (8, 16, 16, 4), (16, 32, 32, 10)]


def network(sizes: tuple[int, ...]) -> explain.Problem:
    layers = [{"units": n, "activation": "sigmoid", "weights": "0.3*randn()", "bias": 0.1} for n in sizes[1:]]
    return explain.from_dict({
        "seed": 1,
        "network": {"inputs": [0.1 * (i + 1) for i in range(sizes[0])], "targets": [0.5] * sizes[-1],
                    "naming": "layered", "loss": "half_sse", "layers": layers},
    })


def time_explain(problem: explain.Problem) -> tuple[float, int, dict[str, float]]:
    start = time.perf_counter()
    d = explain.derive(problem)
    elapsed = time.perf_counter() - start
    return elapsed, len(d.graph.edges), {p: g.value for p, g in d.gradients.items()}


class _OverBudget(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _OverBudget


def time_naive(problem: explain.Problem, budget: float) -> tuple[float | None, dict[str, float]]:
    """The naive timing, or None when it ran past ``budget`` (a timer interrupts a long diff)."""
    grads: dict[str, float] = {}
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        return _naive(problem, budget, grads)
    except _OverBudget:
        return None, grads
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _naive(problem: explain.Problem, budget: float, grads: dict[str, float]) -> tuple[float | None, dict[str, float]]:
    start = time.perf_counter()
    symbols = problem.symbols
    composed: dict[sp.Symbol, sp.Expr] = {}
    for stage in problem.stages:
        composed[symbols[stage.name]] = stage.expr.xreplace(composed)
        if time.perf_counter() - start > budget:
            return None, {}
    loss = composed[symbols[problem.loss]]
    point = {symbols[n]: v for n, v in {**problem.values, **problem.parameters}.items()}
    for name in problem.parameters:
        grads[name] = float(sp.diff(loss, symbols[name]).evalf(subs=point))
        if time.perf_counter() - start > budget:
            return None, grads
    return time.perf_counter() - start, grads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds allowed to the naive approach per network")
    args = parser.parse_args()
    explain.derive(network((2, 2, 2)))  # warm-up: first-call costs (imports, SymPy caches) are not per-network
    print(f"{'network':<14}{'edges':>7}{'params':>8}{'explain s':>11}{'µs/edge':>9}{'naive s':>11}{'ratio':>9}  agree")
    for sizes in SIZES:
        problem = network(sizes)
        ours, edges, our_grads = time_explain(problem)
        naive, naive_grads = time_naive(problem, args.budget)
        agree = all(abs(our_grads[p] - v) <= 1e-9 * max(1.0, abs(v)) for p, v in naive_grads.items())
        naive_text = f"{naive:11.3f}" if naive is not None else f"{'> ' + str(int(args.budget)):>11}"
        ratio = f"{naive / ours:8.0f}×" if naive is not None else f"{'> ' + str(int(args.budget / ours)):>8}×"
        name = "-".join(map(str, sizes))
        print(f"{name:<14}{edges:>7}{len(problem.parameters):>8}{ours:11.3f}{1e6 * ours / edges:9.0f}"
              f"{naive_text}{ratio}  {'yes' if agree else 'NO'} ({len(naive_grads)} compared)")


if __name__ == "__main__":
    main()
