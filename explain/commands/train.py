"""``explain train``: the training trajectory, printed the way the seeds print it.

For sgd each update's sample and gradient is printed (``grad: 1.0 2.0 -2.0``,
like seeds 000/001) unless ``--quiet``; long loss logs are summarised; the
prediction before and after and any divergence are stated (the report itself
is printed by :mod:`explain.render.training`).  ``--lr a,b,c``
trains once per rate and compares them (and ``--plot`` draws them together).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from ..errors import ExplainError
from ..i18n import Messages
from ..render.tables import number
from ..render.training import SUMMARY_ROWS, loss_rows, render_markdown, render_text
from ..render.training import print_rich as _print_rich
from . import emit, use_color
from .verify import check_format


def run(args: argparse.Namespace) -> int:
    """Train, print, plot; 0 unless the input was bad (a divergence is a result, not an error)."""
    check_format(args.format, "train")
    m = Messages(args.lang)
    from ..compile import Program
    from ..graph import Graph
    from ..problem import load
    from ..train import plot_format, plot_losses, train

    trajectory = getattr(args, "trajectory", None)
    for path in (args.plot, trajectory):
        if path:
            plot_format(path)  # a bad suffix fails before a long run, not after
    problem = load(args.problem)
    rates = parse_rates(args.lr) if args.lr else [None]
    rules = parse_rules(args.compare) if getattr(args, "compare", None) else [getattr(args, "update", None)]
    if len(rates) > 1 and len(rules) > 1:
        raise ExplainError("--compare", m("optim_compare_and_lr"))
    explain_steps = _explain_steps(getattr(args, "explain_steps", None))
    program = Program(Graph.from_problem(problem))
    if not getattr(args, "no_verify", False):
        from ..derivation import derive
        from ..verify import require_verified

        require_verified(derive(program.graph, program), "train", args.lang)
    runs = []
    for rate in rates:
        for rule in rules:
            bar = ProgressBar(m("train_progress", rate=number(rate) if rate else (rule or "")))
            try:
                runs.append(train(problem, program, learning_rate=rate, optimizer=args.optimizer, steps=args.steps,
                                  epochs=args.epochs, dtype=getattr(args, "dtype", "float64"), progress=bar,
                                  update=rule, explain_steps=explain_steps))
            finally:
                bar.close()
    if not getattr(args, "no_verify", False):
        _check_updates(runs, problem.source, m)
    if args.plot:
        plot_losses(runs, args.plot, lang=args.lang, title=problem.title)
    if trajectory:
        from ..trajectory import plot_trajectories

        plot_trajectories(problem, program, runs, trajectory, lang=args.lang)
    if args.format == "json":
        payload: Any = runs[0].to_dict() if len(runs) == 1 else {"trainings": [r.to_dict() for r in runs]}
        if args.plot:
            payload["plot"] = args.plot
        if trajectory:
            payload["trajectory"] = trajectory
        emit(json.dumps(payload, indent=2, ensure_ascii=False), args.output)
        return 0
    markdown = args.format == "markdown"
    if use_color() and not args.output and not markdown:
        _print_rich(runs, m, args.precision, args.quiet, args.plot)
        if trajectory:
            print(m("optim_trajectory_written", path=trajectory))
        return 0
    render = render_markdown if markdown else render_text
    text = render(runs, m, args.precision, quiet=args.quiet)
    if args.plot:
        text += "\n\n" + m("train_plot_written", path=args.plot)
    if trajectory:
        text += "\n\n" + m("optim_trajectory_written", path=trajectory)
    emit(text, args.output)
    return 0


def parse_rules(text: str) -> list[str]:
    """``"adam,momentum,plain"`` → the update rules to compare (checked by explain.optimizers.switch)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _explain_steps(text: str | None) -> list[int] | None:
    if text is None:
        return None
    from ..optimizers import parse_steps

    return parse_steps(text)


def _check_updates(runs: Sequence[Any], source: str, m: Messages) -> None:
    """Every run's parameters against torch.optim, step by step; a mismatch exits 1 with nothing written."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return
    from ..errors import VerificationFailed
    from ..optim_torch import check

    for run in runs:
        run.optimizer_check = check(run)
        if not run.optimizer_check.passed:
            raise VerificationFailed(source, run.optimizer_check.message(m))


def parse_rates(text: str) -> list[float]:
    """``"0.01,0.05,1"`` → ``[0.01, 0.05, 1.0]``; each must be a positive number."""
    rates = []
    for part in text.split(","):
        part = part.strip()
        try:
            rate = float(part)
        except ValueError:
            raise ExplainError("--lr", Messages("en")("train_bad_rate", rate=part)) from None
        if not 0 < rate < float("inf"):
            raise ExplainError("--lr", Messages("en")("train_bad_rate", rate=part))
        rates.append(rate)
    return rates


class ProgressBar:
    """A rich progress bar on standard error, shown only on a terminal and after about a second."""

    def __init__(self, label: str, delay: float = 1.0) -> None:
        self.label = label
        self.delay = delay
        self.start = time.monotonic()
        self.enabled = sys.stderr.isatty()
        self._progress: Any = None
        self._task: Any = None

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self._progress is None:
            if done >= total or time.monotonic() - self.start < self.delay:
                return
            from rich.console import Console
            from rich.progress import Progress

            self._progress = Progress(console=Console(stderr=True), transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=total)
        self._progress.update(self._task, completed=done)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


__all__ = ["run", "parse_rates", "ProgressBar", "SUMMARY_ROWS", "loss_rows", "render_text", "render_markdown"]
