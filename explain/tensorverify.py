"""The matrix-form derivation checked by PyTorch, per tensor node, and the tensor program trained in PyTorch.

PyTorch runs the *forward* tree of every stage of the :class:`~explain.tensorgraph.TensorProgram`
with its own operations (``@``, ``torch.softmax``, ``F.cross_entropy`` …), keeps
every stage with ``retain_grad`` and backpropagates the loss; it never sees the
vector-Jacobian rules of :mod:`explain.tensorgraph`, so a wrong rule shows up
as a mismatch on the first stage whose adjoint it computes.  Central finite
differences of the NumPy forward pass check entries of each parameter's
gradient with no PyTorch at all.  The result is the same
:class:`~explain.verify.Verification` the scalar view gives (one row per tensor
node, showing its worst entry), judged on the same mixed scale, with the same
rounding estimate for float32 (Monte Carlo arithmetic on the float64 run).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .functions import torch_functions
from .i18n import message
from .interrupts import import_torch
from .tensorgraph import MatrixDerivation, TensorProgram, TNode, evaluate
from .verify import (ROUNDING_RUNS, TOLERANCES, UNIT_ROUNDOFF, FiniteDifference, Verification, _compare,
                     _import_torch, _resolve_device, widen)
from .errors import ExplainError

#: Seconds of NumPy forward passes the finite differences may spend (at least FD_MINIMUM entries are checked).
FD_SECONDS = 0.5
FD_MINIMUM = 4
FD_MAXIMUM = 64


# -- the forward pass in PyTorch -----------------------------------------------------------------
class TorchProgram:
    """A :class:`TensorProgram` run with torch operations on one device and dtype.

    ``noise`` > 0 multiplies every operation's result by ``1 + u`` with ``u``
    uniform in ``[−noise, noise]`` (Monte Carlo arithmetic: how far rounding with
    that unit roundoff could move each quantity).
    """

    def __init__(self, program: TensorProgram, device: str, dtype: Any, noise: float = 0.0, seed: int = 0) -> None:
        torch = import_torch()

        self.torch = torch
        self.program = program
        self.device = device
        self.dtype = dtype
        self.noise = noise
        self.generator = torch.Generator(device=device).manual_seed(seed) if noise else None
        self.functions = torch_functions()
        self.leaves = {name: torch.as_tensor(value, dtype=dtype, device=device)
                       for name, value in program.values.items()}

    def jitter(self, t: Any) -> Any:
        if not self.noise:
            return t
        u = self.torch.rand(t.shape, generator=self.generator, dtype=t.dtype, device=t.device) * 2 - 1
        return t + t * (self.noise * u)

    def forward(self, parameters: Mapping[str, Any], keep: bool = False) -> dict[str, Any]:
        """Every stage's value (sample axis first); ``keep``: stages retain their gradients."""
        env = {**self.leaves, **parameters}
        for stage in self.program.stages:
            value = self.jitter(self.run(stage.tree, env, {}))
            value = value.expand(value.shape[0], *stage.tree.shape).clone() if keep else value
            if keep and value.requires_grad:
                value.retain_grad()
            env[stage.name] = value
        return env

    def run(self, node: TNode, env: Mapping[str, Any], cache: dict[int, Any]) -> Any:  # noqa: C901
        key = id(node)
        if key in cache:
            return cache[key]
        t = self.torch
        op, args = node.op, node.args
        if op == "name":
            out = env[node.name]
        elif op == "const":
            out = t.tensor([node.number], dtype=self.dtype, device=self.device)
        else:
            xs = [self.run(a, env, cache) for a in args]
            nd = len(node.shape)
            aligned = [_align(x, a, nd) for x, a in zip(xs, args)]
            x = xs[0]
            if op == "add":
                out = aligned[0] + aligned[1]
            elif op == "sub":
                out = aligned[0] - aligned[1]
            elif op == "mul":
                out = aligned[0] * aligned[1]
            elif op == "div":
                out = aligned[0] / aligned[1]
            elif op == "pow":
                out = aligned[0] ** aligned[1]
            elif op == "neg":
                out = -x
            elif op == "f":
                out = self.functions[node.name](*aligned)
            elif op == "T":
                out = x.transpose(1, 2) if len(args[0].shape) == 2 else x
            elif op == "matmul":
                a, b = xs
                sa, sb = args[0].shape, args[1].shape
                if len(sa) == 2 and len(sb) == 1 and a.shape[0] == 1:  # one product X Wᵀ for every sample
                    cache[key] = out = b @ a.squeeze(0).T  # a view: its backward copies nothing
                    return out
                left = a if len(args[0].shape) == 2 else a.unsqueeze(1)
                right = b if len(args[1].shape) == 2 else b.unsqueeze(-1)
                out = t.matmul(left, right)
                if len(args[0].shape) == 1:
                    out = out.squeeze(1)
                if len(args[1].shape) == 1:
                    out = out.squeeze(-1)
            elif op in ("sum", "mean") and node.axis is None:
                out = _over_entries(x, args[0], op)
            elif op in ("sum", "mean"):
                out = x.sum(dim=node.axis + 1) if op == "sum" else x.mean(dim=node.axis + 1)
            elif op == "norm2":
                out = _over_entries(x * x, args[0], "sum")
            elif op == "mse":
                out = _over_entries(t.nn.functional.mse_loss(*t.broadcast_tensors(*xs), reduction="none"), args[0])
            elif op == "bce":
                p, y = t.broadcast_tensors(*xs)
                out = _over_entries(t.nn.functional.binary_cross_entropy(p, y, reduction="none"), args[0])
            elif op == "softmax":
                out = t.softmax(x, dim=-1)
            elif op == "log_softmax":
                out = t.log_softmax(x, dim=-1)
            elif op == "logsumexp":
                out = t.logsumexp(x, dim=-1)
            elif op == "cross_entropy":
                z, label = xs
                if args[1].shape == args[0].shape:
                    z, label = t.broadcast_tensors(z, label)
                    out = -(label * t.log_softmax(z, dim=-1)).sum(dim=-1)
                else:
                    n = max(z.shape[0], label.shape[0])
                    z, label = z.expand(n, -1), label.expand(n)
                    out = t.nn.functional.cross_entropy(z, label.round().long(), reduction="none")
            elif op == "sample_sum":
                out = x.sum(dim=0, keepdim=True)
            elif op == "sample_mean":
                out = x.mean(dim=0, keepdim=True)
            else:
                raise AssertionError(f"no torch form of {op}")
        cache[key] = out
        return out


def _over_entries(x: Any, node: TNode, how: str = "mean") -> Any:
    """``x`` (samples first) reduced over the entries of ``node``'s shape, one number per sample.

    A number has no entry axes, and torch reads ``sum(dim=[])`` as "every axis",
    which would sum over the samples too: it is left as it is.
    """
    dims = list(range(1, len(node.shape) + 1))
    if not dims:
        return x
    return x.sum(dim=dims) if how == "sum" else x.mean(dim=dims)


def _align(x: Any, node: TNode, ndim: int) -> Any:
    missing = ndim - len(node.shape)
    return x.reshape(x.shape[0], *(1,) * missing, *x.shape[1:]) if missing else x


def torch_values_and_grads(program: TensorProgram, device: str, dtype: Any, noise: float = 0.0,
                           seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Every stage's value and every stage's and parameter's ``.grad`` from torch autograd (sample axis first)."""
    run = TorchProgram(program, device, dtype, noise, seed)
    parameters = {name: run.jitter(run.leaves[name]).detach().requires_grad_(True) for name in program.parameters}
    env = run.forward(parameters, keep=True)
    loss = env[program.loss]
    if noise:
        for stage in program.stages:
            if env[stage.name].requires_grad:
                env[stage.name].register_hook(run.jitter)
    if loss.requires_grad:
        loss.sum().backward()
    values = {s.name: _numpy(env[s.name]) for s in program.stages}
    grads = {}
    for name in [*(s.name for s in program.stages), *program.parameters]:
        tensor = env[name]
        grads[name] = _numpy(tensor.grad) if tensor.grad is not None else np.zeros_like(_numpy(tensor))
    return values, grads


def _numpy(tensor: Any) -> np.ndarray:
    return np.asarray(tensor.detach().to("cpu").double().numpy(), dtype=float)


def _spread(program: TensorProgram, device: str, unit: float) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """How far rounding with unit roundoff ``unit`` moves each value and gradient (see verify.rounding_spread)."""
    torch = import_torch()

    values, grads = torch_values_and_grads(program, device, torch.float64)
    spread_v = {n: np.zeros_like(v) for n, v in values.items()}
    spread_g = {n: np.zeros_like(g) for n, g in grads.items()}
    for run in range(ROUNDING_RUNS):
        v, g = torch_values_and_grads(program, device, torch.float64, noise=unit, seed=run + 1)
        widen(spread_v, v, values)
        widen(spread_g, g, grads)
    return spread_v, spread_g


# -- verification --------------------------------------------------------------------------------
def verify_matrix(derivation: MatrixDerivation, device: str = "auto", dtype: str = "float64",
                  tolerance: float | None = None, finite_differences: bool = True) -> Verification:
    """Check every tensor stage's value and adjoint, and every parameter's gradient, against PyTorch autograd.

    One row per tensor node (its worst entry; a per-sample node's worst sample).
    ``device`` is ``auto``, ``cpu`` or ``cuda``; ``dtype`` ``float64`` or
    ``float32`` (tolerance 1e-10 / 1e-4 on the mixed error, widened where rounding
    in that dtype alone moves a quantity further, as for the scalar view).
    """
    torch = _import_torch()
    if dtype not in TOLERANCES:
        raise ExplainError("--dtype", message("verify_bad_dtype", dtype=dtype, choices=", ".join(TOLERANCES)))
    device = _resolve_device(torch, device)
    tol = TOLERANCES[dtype] if tolerance is None else float(tolerance)
    program = derivation.program
    values, grads = torch_values_and_grads(program, device, getattr(torch, dtype))
    if dtype == "float64":
        spread_v = {n: np.zeros_like(v) for n, v in values.items()}
        spread_g = {n: np.zeros_like(g) for n, g in grads.items()}
    else:
        spread_v, spread_g = _spread(program, device, UNIT_ROUNDOFF[dtype])
    loss = program.loss
    result = Verification("torch", device, dtype, tol, loss, fd_method="float64")
    for step in derivation.forward:
        mine = np.broadcast_to(step.value, values[step.name].shape)
        result.rows.append(_row(step.name, step.name, "value", mine, values[step.name], spread_v[step.name],
                                tol, step.batched))
    for record in (*derivation.adjoints, *derivation.gradients):
        if record.name == loss:
            continue
        theirs = grads[record.name]
        mine = np.broadcast_to(record.value, theirs.shape)
        kind = "gradient" if record.kind == "parameter" else "adjoint"
        result.rows.append(_row(f"d{loss}/d{record.name}", record.name, kind, mine, theirs, spread_g[record.name],
                                tol, record.batched))
    result.parameter_count = sum(int(np.prod(program.leaves[p].shape)) for p in program.parameters)
    if finite_differences:
        result.finite_differences = finite_difference_check(derivation)
    return result


def _row(quantity: str, node: str, kind: str, mine: np.ndarray, theirs: np.ndarray, spread: np.ndarray,
         tol: float, batched: bool) -> Any:
    """One row per tensor node: its worst entry, named as people write it (``dE/dW1[0,1]``), and its sample."""
    row = _compare(quantity, node, kind, mine.ravel(), theirs.ravel(), spread.ravel(), tol)
    if row.sample is None:
        return row
    where = np.unravel_index(row.sample, theirs.shape)
    entry = where[1:]
    name = f"{quantity}[{','.join(map(str, entry))}]" if entry else quantity
    return dataclasses.replace(row, quantity=name, sample=int(where[0]) if batched else None)


def _loss(program: TensorProgram, values: Mapping[str, np.ndarray]) -> float:
    env = dict(values)
    for stage in program.stages:
        env[stage.name] = evaluate(stage.tree, env)
    return float(np.asarray(env[program.loss]).ravel()[0])


def finite_difference_check(derivation: MatrixDerivation) -> list[FiniteDifference]:
    """Entries of each parameter's gradient against central differences of the NumPy forward pass (float64).

    ``h = 1e-6·max(1, |p|)``; the allowed error is the difference between the steps
    ``h`` and ``2h`` (the quotient's truncation and rounding error) plus 1e-7 on the
    mixed scale.  Entries are evenly spaced through each parameter, as many as
    :data:`FD_SECONDS` of forward passes allow.  Where the one-sided differences
    disagree the entry sits at a kink (relu at 0): reported, not judged.
    """
    program = derivation.program
    start = time.perf_counter()
    f0 = _loss(program, program.values)
    once = max(time.perf_counter() - start, 1e-6)
    budget = int(max(FD_MINIMUM, min(FD_MAXIMUM, FD_SECONDS / (4 * once))))
    per_parameter = max(1, budget // max(1, len(program.parameters)))
    out = []
    for name in program.parameters:
        base = program.values[name]
        flat_count = base[0].size
        picks = sorted(set(np.linspace(0, flat_count - 1, min(per_parameter, flat_count)).round().astype(int)))
        grad = derivation.grad(name).reshape(-1) if derivation.grad(name).ndim else derivation.grad(name).reshape(1)
        for k in picks:
            index = np.unravel_index(k, base[0].shape) if base[0].ndim else ()

            def at(delta: float) -> float:
                moved = base.copy()
                moved[(0, *index)] += delta
                return _loss(program, {**program.values, name: moved})

            p = float(base[(0, *index)])
            h = 1e-6 * max(1.0, abs(p))
            fp, fm, fp2, fm2 = at(h), at(-h), at(2 * h), at(-2 * h)
            central = (fp - fm) / (2 * h)
            wide = (fp2 - fm2) / (4 * h)
            left, right = (f0 - fm) / h, (fp - f0) / h
            symbolic = float(grad[k])
            scale = max(1.0, abs(symbolic))
            label = f"{name}[{','.join(map(str, index))}]" if index else name
            error = abs(symbolic - central) / scale
            allowed = 1e-7 + 4 * abs(central - wide) / scale
            if abs(left - right) / scale > 1e-3:
                out.append(FiniteDifference(label, symbolic, central, h, abs(symbolic - central), error, allowed,
                                            "kink", message("fd_kink_tensor"), left=left, right=right))
            else:
                out.append(FiniteDifference(label, symbolic, central, h, abs(symbolic - central), error, allowed))
    return out


# -- training ------------------------------------------------------------------------------------
@dataclass
class TensorTraining:
    """Losses before each step and the final parameters of plain gradient descent on a tensor program."""

    losses: list[float]
    parameters: dict[str, np.ndarray]
    device: str
    seconds: float

    @property
    def seconds_per_step(self) -> float:
        return self.seconds / max(1, len(self.losses))


def train_program(program: TensorProgram, learning_rate: float, steps: int, device: str = "auto",
                  dtype: str = "float64") -> TensorTraining:
    """Plain gradient descent on the compiled tensor program: torch forward, autograd backward, p ← p − η ∂L/∂p.

    For tensors too big to expand into entries (the problem file's ``[train]`` runs
    through the scalar view's compiled program, which gives the same numbers).
    """
    torch = _import_torch()
    device = _resolve_device(torch, device)
    run = TorchProgram(program, device, getattr(torch, dtype))
    params = {name: run.leaves[name].clone().requires_grad_(True) for name in program.parameters}
    losses = []
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        loss = run.forward(params)[program.loss].sum()
        for p in params.values():
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params.values():
                p -= learning_rate * p.grad
        losses.append(loss.detach())
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return TensorTraining([float(v) for v in losses], {n: _numpy(p)[0] for n, p in params.items()}, device,
                          seconds)


__all__ = ["verify_matrix", "train_program", "TorchProgram", "finite_difference_check", "TensorTraining"]
