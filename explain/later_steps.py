"""Answers about later training steps: ``w5@3``, ``m_w5@2``, ``E@10`` (issue 13).

Why a module of its own?  The grader's quantities (values, gradients, the
parameters after one step) come from one derivation; an answer about step k
needs the whole training run up to k, with the problem's update rule and
schedule, and its mistakes are mistakes of the update rule (a missing bias
correction, momentum with the wrong sign, g instead of g², L2 instead of
decoupled decay).  The key syntax:

* ``w5@3``: parameter w5 after 3 updates (``w5@0`` is its initial value);
* ``v_w5@1``, ``m_w5@2``, ``s_w5@2``…: the optimizer's state for w5 after that
  update, by the names the explanation uses (m, v, v_max as ``vmax``, s,
  ḡ as ``gbar``, b);
* ``E@3``: the loss after 3 updates (over all samples).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np


_KEY = re.compile(r"^\s*(?:([A-Za-z]+)_)?([A-Za-z_][A-Za-z0-9_]*)@(\d+)\s*$")
#: An answer may ask about at most this many updates (the run is made once per mistake).
MAX_STEP = 100_000


def is_later_key(key: str) -> bool:
    return "@" in key


class LaterSteps:
    """The problem's run, made once to the largest step asked for, and the mistakes' runs on demand."""

    def __init__(self, problem: Any) -> None:
        self.problem = problem
        self._runs: dict[str, Any] = {}

    def _run(self, code: str, config: Any, steps: int) -> Any:
        cached = self._runs.get(code)
        if cached is not None and cached.planned_steps >= steps:
            return cached
        from dataclasses import replace

        from .train import train

        problem = replace(self.problem, train=replace(self.problem.train, update=config))
        run = train(problem, steps=steps, explain_steps=())
        self._runs[code] = run
        return run

    def resolve(self, key: str) -> tuple[str, str | None, str, int] | None:
        """``(kind, state, name, step)`` for a key this problem has: kind ``param``, ``state`` or ``loss``."""
        match = _KEY.match(key)
        if match is None or self.problem.train is None:
            return None
        state, name, step_text = match.groups()
        step = int(step_text)
        if step > MAX_STEP:
            return None
        if name not in self.problem.parameters and state is not None:
            # "w_5@1"-like names: the prefix was part of the name
            name, state = f"{state}_{name}", None
        if state is None and name in self.problem.parameters:
            return ("param", None, name, step)
        config = self.problem.train.update
        if state is not None and name in self.problem.parameters and state in _state_names(config):
            return ("state", state, name, step)
        loss = self.problem.loss
        if state is None and name == loss:
            return ("loss", None, name, step)
        return None

    def value(self, key: str, code: str = "correct", config: Any = None) -> float | None:
        """The value ``key`` asks for, in the correct run or in the run with mistake ``code``."""
        resolved = self.resolve(key)
        if resolved is None:
            return None
        kind, state, name, step = resolved
        run = self._run(code, config or self.problem.train.update, max(step, 1))
        if step > run.steps:  # diverged before
            return float("nan")
        if kind == "loss":
            return float(run.losses[step])
        k = run.parameter_names.index(name)
        if kind == "param":
            return float(run.states[step][k])
        rows = run.optimizer_state.get(state)
        return float(rows[step][k]) if rows is not None else None

    def diagnose(self, key: str, close: Any) -> str | None:
        """The mistake whose run gives the student's number (``close(value) -> bool``), or None."""
        from .optimizers import mistakes

        for code, config in mistakes(self.problem.train.update):
            value = self.value(key, code, config)
            if value is not None and np.isfinite(value) and close(value):
                return code
        return None


def _state_names(config: Any) -> set[str]:
    return set(config.rule.init(np.zeros(1), config))
