"""Seed 002's training loop three ways: explain, the seed's hand-written NumPy, torch autograd.

Run ``python benchmarks/training.py`` from the repository root.  All three fit
a + b·x + c·x² + d·x³ to sin(x) on 2000 points with 2000 steps of gradient
descent at learning rate 1e-6, from the same initial values (taken from
``examples/seed002_polynomial.toml``), in the same process.  Each is timed
``--repeat`` times and the best time is kept.  The goal is explain within
1.5× of the hand-written NumPy loop.
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from explain.compile import Program  # noqa: E402
from explain.graph import Graph  # noqa: E402
from explain.problem import load  # noqa: E402
from explain.train import train  # noqa: E402

PROBLEM = ROOT / "examples" / "seed002_polynomial.toml"
STEPS = 2000
RATE = 1e-6


def numpy_loop(x: np.ndarray, y: np.ndarray, start: dict[str, float]) -> tuple[float, ...]:
    """The seed's NumPy code, verbatim except for the printing."""
    a, b, c, d = start["a"], start["b"], start["c"], start["d"]
    learning_rate = RATE
    for t in range(STEPS):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = np.square(y_pred - y).sum()  # noqa: F841 - the seed computes it every step
        grad_y_pred = 2.0 * (y_pred - y)
        grad_a = grad_y_pred.sum()
        grad_b = (grad_y_pred * x).sum()
        grad_c = (grad_y_pred * x ** 2).sum()
        grad_d = (grad_y_pred * x ** 3).sum()
        a -= learning_rate * grad_a
        b -= learning_rate * grad_b
        c -= learning_rate * grad_c
        d -= learning_rate * grad_d
    return a, b, c, d


def torch_loop(x: np.ndarray, y: np.ndarray, start: dict[str, float], device: str = "cpu") -> tuple[float, ...]:
    """The same fit with torch autograd (float64, to compare the numbers too)."""
    import torch

    xt = torch.tensor(x, dtype=torch.float64, device=device)
    yt = torch.tensor(y, dtype=torch.float64, device=device)
    params = [torch.tensor(start[k], dtype=torch.float64, device=device, requires_grad=True) for k in "abcd"]
    a, b, c, d = params
    for _ in range(STEPS):
        y_pred = a + b * xt + c * xt ** 2 + d * xt ** 3
        loss = (y_pred - yt).pow(2).sum()
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= RATE * p.grad
                p.grad = None
    return tuple(float(p.detach()) for p in params)


def best_of(repeat: int, runs: dict[str, Callable[[], Any]]) -> dict[str, tuple[float, Any]]:
    """Best time of each run; the runs take turns, so a busy machine slows them all alike."""
    best = {name: (math.inf, None) for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            start = time.perf_counter()
            result = run()
            seconds = time.perf_counter() - start
            if seconds < best[name][0]:
                best[name] = (seconds, result)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    problem = load(PROBLEM)
    x, y = problem.data["x"], problem.data["y"]
    program = Program(Graph.from_problem(problem))
    train(problem, program, steps=1)  # compile loss_and_grad once, outside the timing

    timed = best_of(args.repeat, {
        "explain": lambda: train(problem, program),
        "numpy": lambda: numpy_loop(x, y, problem.parameters),
        "torch": lambda: torch_loop(x, y, problem.parameters),
    })
    (t_explain, run), (t_numpy, numpy_result), (t_torch, _) = timed["explain"], timed["numpy"], timed["torch"]

    ours = tuple(run.final_parameters[k] for k in "abcd")
    diff = max(abs(p - q) / max(1.0, abs(q)) for p, q in zip(ours, numpy_result))
    import torch

    print(f"seed 002: {len(x)} samples, {STEPS} steps; python {platform.python_version()}, "
          f"numpy {np.__version__}, torch {torch.__version__}, {platform.machine()}; best of {args.repeat}")
    print(f"{'loop':<28}{'time (s)':>10}{'µs/step':>10}{'vs NumPy':>10}")
    for name, seconds in (("explain (compiled, gd)", t_explain), ("hand-written NumPy (seed)", t_numpy),
                          ("torch autograd (float64)", t_torch)):
        print(f"{name:<28}{seconds:>10.3f}{seconds / STEPS * 1e6:>10.1f}{seconds / t_numpy:>9.2f}×")
    print(f"largest relative difference of explain's final parameters from NumPy's: {diff:.1e}")
    print(f"goal explain ≤ 1.5× NumPy: {'met' if t_explain <= 1.5 * t_numpy else 'NOT met'}")


if __name__ == "__main__":
    main()
