"""The update rule checked against torch.optim itself, step by step.

Why replay the gradients?  ``verify`` already holds the gradients to PyTorch
autograd; what is left to check is the update rule: the momentum buffer, the
bias corrections, where ε goes, how weight decay is coupled, the schedule.
Feeding torch.optim's own optimizer and scheduler the run's gradients (as
``param.grad``) isolates exactly that, costs one small tensor operation per
step, and any difference in the state after any step is a fault of
explain.optimizers, never of the gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .i18n import Messages
from .interrupts import import_torch

#: A parameter may differ from torch.optim's by this much, on the mixed scale |a − b| / max(1, |b|).
TOLERANCES = {"float64": 1e-12, "float32": 1e-5}


@dataclass(frozen=True)
class OptimizerCheck:
    """The comparison with torch.optim: passed, the largest error and where, or why it was skipped."""

    torch: str
    steps: int
    tolerance: float
    max_error: float = 0.0
    step: int | None = None
    parameter: str | None = None
    ours: float | None = None
    theirs: float | None = None
    skipped: str | None = None  # a message key: why no comparison was made

    @property
    def passed(self) -> bool:
        return self.skipped is not None or self.max_error <= self.tolerance

    def message(self, m: Messages) -> str:
        if self.skipped:
            return m("optim_torch_skipped", reason=m(self.skipped))
        if self.passed:
            return m("optim_torch_passed", torch=self.torch, steps=self.steps, error=f"{self.max_error:.2g}")
        return m("optim_torch_failed", torch=self.torch, step=self.step, parameter=self.parameter,
                 ours=f"{self.ours:.17g}", theirs=f"{self.theirs:.17g}", error=f"{self.max_error:.2g}",
                 tolerance=f"{self.tolerance:g}")

    def to_dict(self) -> dict[str, Any]:
        return {"torch": self.torch, "passed": self.passed, "steps": self.steps, "tolerance": self.tolerance,
                "max_error": self.max_error, "worst_step": self.step, "worst_parameter": self.parameter,
                "skipped": self.skipped}


def optimizer(config: Any, params: list[Any], lr: float) -> Any:
    """The torch.optim optimizer for ``config`` (an UpdateConfig), single-tensor code path."""
    torch = import_torch()

    s = dict(config.settings)
    update = config.update
    common = {"lr": lr, "foreach": False}
    if update in ("plain", "momentum", "nesterov"):
        return torch.optim.SGD(params, momentum=s.get("momentum") or 0.0, dampening=s.get("dampening", 0.0),
                               weight_decay=s.get("weight_decay", 0.0), nesterov=update == "nesterov", **common)
    if update == "adagrad":
        return torch.optim.Adagrad(params, lr_decay=s["lr_decay"], weight_decay=s["weight_decay"],
                                   initial_accumulator_value=s["initial_accumulator_value"], eps=s["eps"], **common)
    if update == "rmsprop":
        return torch.optim.RMSprop(params, alpha=s["alpha"], eps=s["eps"], weight_decay=s["weight_decay"],
                                   momentum=s["momentum"], centered=s["centered"], **common)
    cls = torch.optim.AdamW if update == "adamw" else torch.optim.Adam
    return cls(params, betas=tuple(s["betas"]), eps=s["eps"], weight_decay=s["weight_decay"],
               amsgrad=s["amsgrad"], **common)


def scheduler(schedule: Any, opt: Any) -> Any:
    """torch.optim.lr_scheduler's StepLR, ExponentialLR or CosineAnnealingLR; None when constant."""
    from torch.optim import lr_scheduler

    if schedule.kind == "step":
        return lr_scheduler.StepLR(opt, step_size=schedule.step_size, gamma=schedule.gamma)
    if schedule.kind == "exponential":
        return lr_scheduler.ExponentialLR(opt, gamma=schedule.gamma)
    if schedule.kind == "cosine":
        return lr_scheduler.CosineAnnealingLR(opt, T_max=schedule.T_max, eta_min=schedule.eta_min)
    return None


def check(training: Any) -> OptimizerCheck:
    """Replay ``training``'s gradients through torch.optim and compare every step's parameters."""
    torch = import_torch()

    config = training.update
    tol = TOLERANCES.get(training.dtype, 1e-12)
    name = config.rule.torch
    if config.settings.get("eps_placement") == "d2l":
        return OptimizerCheck(name, 0, tol, skipped="optim_torch_skipped_d2l")
    dtype = torch.float64 if training.dtype == "float64" else torch.float32
    steps = training.steps if training.divergence is None else min(training.steps, len(training.gradients))
    param = torch.tensor(np.asarray(training.states[0], dtype=float), dtype=dtype, requires_grad=True)
    opt = optimizer(config, [param], training.learning_rate)
    sched = scheduler(config.schedule, opt)
    per = training.updates_per_epoch
    worst = OptimizerCheck(name, steps, tol)
    with torch.no_grad():
        for t in range(steps):
            grad = np.asarray(training.gradients[t], dtype=float)
            if not np.all(np.isfinite(grad)):
                break
            param.grad = torch.tensor(grad, dtype=dtype)
            opt.step()
            theirs = param.detach().numpy().astype(float)
            ours = np.asarray(training.states[t + 1], dtype=float)
            if not np.all(np.isfinite(ours)):
                break
            errors = np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs))
            errors = np.where(np.isnan(errors), math.inf, errors)
            k = int(np.argmax(errors))
            if errors[k] > worst.max_error:
                worst = OptimizerCheck(name, steps, tol, float(errors[k]), t + 1, training.parameter_names[k],
                                       float(ours[k]), float(theirs[k]))
            if sched is not None and (t + 1) % per == 0:
                sched.step()
    return worst
