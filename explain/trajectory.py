"""The path of the parameters on the loss's contour plot, for problems with two parameters.

Why?  d2l draws every optimizer of its chapter this way (``show_trace_2d``): on
f = 0.1·x1² + 2·x2² plain gradient descent zig-zags across the narrow valley,
momentum damps the zig-zag, AdaGrad stalls.  One picture says what the loss
curve cannot: where each rule goes, not only how fast the loss falls.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExplainError
from .i18n import Messages, message

#: Grid points per axis of the contour plot.
GRID = 80


def plot_trajectories(problem: Any, program: Any, runs: Sequence[Any], path: str | Path, lang: str = "en") -> None:
    """Draw the loss's contours and every run's path (one marker per step) into ``path`` (png, svg, pdf)."""
    from .files import write_atomic
    from .train import plot_format

    fmt = plot_format(path)
    names = list(program.graph.parameters)
    if len(names) != 2:
        raise ExplainError("--trajectory", message("optim_trajectory_two", count=len(names)))
    import matplotlib

    matplotlib.use("Agg")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        data = _draw(problem, program, runs, names, fmt, Messages(lang))
    write_atomic(path, data)


def _box(runs: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """The smallest box holding every finite point of every path, with a margin."""
    points = np.concatenate([r.states[np.all(np.isfinite(r.states), axis=1)] for r in runs])
    low, high = points.min(axis=0), points.max(axis=0)
    span = np.maximum(high - low, 1e-3 * np.maximum(1.0, np.abs(high)))
    return low - 0.15 * span, high + 0.15 * span


def _draw(problem: Any, program: Any, runs: Sequence[Any], names: list[str], fmt: str, m: Messages) -> bytes:
    from matplotlib.figure import Figure

    low, high = _box(runs)
    xs, ys = np.linspace(low[0], high[0], GRID), np.linspace(low[1], high[1], GRID)
    nodes = list(program.graph.nodes)
    slots = [nodes.index(p) for p in names]
    leaves = list(program.leaves({**problem.parameters, **problem.values, **problem.data}))
    n = problem.n_samples or 1
    z = np.empty((GRID, GRID))
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            leaves[slots[0]], leaves[slots[1]] = x, y
            z[i, j] = program.loss_and_grad(leaves, n)[0]
    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    axes = figure.add_subplot()
    finite = z[np.isfinite(z)]
    if finite.size:
        axes.contour(xs, ys, np.where(np.isfinite(z), z, np.nan), levels=20, cmap="viridis", linewidths=0.8)
    several = len(runs) > 1
    for run in runs:
        path = run.states[np.all(np.isfinite(run.states), axis=1)]
        label = m(f"optim_update_{run.update.update}") if several and run.update is not None else None
        axes.plot(path[:, 0], path[:, 1], marker="o", markersize=3, linewidth=1, label=label)
    axes.set_xlabel(names[0])
    axes.set_ylabel(names[1])
    axes.set_title(m("optim_trajectory_title"))
    if several:
        axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt)
    return buffer.getvalue()
