"""Numbers of the tensor view: a tree evaluated with NumPy, and a backward plan compiled into one function.

Values carry a leading axis for the samples: size n for a node that depends on
``[data]``, size 1 otherwise, so one evaluation covers every sample.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy as sp

from .functions import OPS, numpy_functions
from .tensornodes import TNode

if TYPE_CHECKING:
    from .tensorgraph import BackwardPlan

def _align(value: np.ndarray, node: TNode, ndim: int) -> np.ndarray:
    """A value (samples, *shape) with axes added after the sample axis, for broadcasting to ``ndim`` dimensions."""
    missing = ndim - len(node.shape)
    return value.reshape(value.shape[0], *(1,) * missing, *value.shape[1:]) if missing else value


@cache
def _derivative(name: str, argindex: int) -> Callable[..., Any]:
    op = OPS[name]
    zs = sp.symbols(f"z0:{op.nargs}", real=True)
    rule = op.derivative(*zs)[argindex] if op.derivative else sp.diff(op.sympy(*zs), zs[argindex])
    return sp.lambdify(zs, rule, modules=[numpy_functions(), "numpy"])


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def _onehot(label: np.ndarray, classes: int) -> np.ndarray:
    index = np.rint(label).astype(int)
    out = np.zeros((*index.shape, classes))
    np.put_along_axis(out, index[..., None], 1.0, axis=-1)
    return out


def _per_sample_axes(node: TNode) -> tuple[int, ...]:
    return tuple(range(1, len(node.shape) + 1))


def evaluate(node: TNode, env: Mapping[str, np.ndarray], cache: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """The value of a tree, with the sample axis first; ``env`` holds names' values and adjoints (``δ:name``)."""
    cache = {} if cache is None else cache
    key = id(node)
    if key in cache:
        return cache[key]
    op, args = node.op, node.args
    if op == "name":
        out = env[node.name]
    elif op == "adjoint":
        out = env[f"δ:{node.name}"]
    elif op == "const" and node.label == "1/n" and "#n" in env:
        out = 1.0 / env["#n"]  # the size of the batch being evaluated (a minibatch's mean)
    elif op == "const":
        out = np.array([node.number])
    elif op == "sample_sum" and args[0].op == "outer":
        # Σᵢ δᵢ xᵢᵀ as one product δᵀX: the n outer products are never stored (n×m×k numbers)
        a, b = (evaluate(x, env, cache) for x in args[0].args)
        out = (a.T @ b)[None] if len(a) == len(b) else np.einsum("si,tj->ij", a, b)[None]
    else:
        xs = [evaluate(a, env, cache) for a in args]
        out = _compute(node, xs)
    cache[key] = out
    return out


def _compute(node: TNode, xs: list[np.ndarray]) -> np.ndarray:  # noqa: C901 - one branch per operation
    op, args = node.op, node.args
    nd = len(node.shape)
    if op in ("add", "sub", "mul", "div", "pow", "f", "df"):
        a = [_align(x, arg, nd) for x, arg in zip(xs, args)]
        with np.errstate(all="ignore"):
            if op == "add":
                return a[0] + a[1]
            if op == "sub":
                return a[0] - a[1]
            if op == "mul":
                return a[0] * a[1]
            if op == "div":
                return a[0] / a[1]
            if op == "pow":
                return a[0] ** a[1]
            if op == "f":
                return np.asarray(numpy_functions()[node.name](*a), dtype=float)
            return np.asarray(_derivative(node.name, node.axis or 0)(*a), dtype=float) * np.ones(
                np.broadcast_shapes(*(x.shape for x in a)))
    x = xs[0]
    if op == "neg":
        return -x
    if op == "T":
        return x.swapaxes(1, 2) if len(args[0].shape) == 2 else x
    if op == "matmul":
        a, b = xs
        sa, sb = args[0].shape, args[1].shape
        if len(sa) == 2 and len(sb) == 1 and a.shape[0] == 1:  # W x for every sample: one product X Wᵀ
            return b @ a[0].T
        if len(sa) == 1 and len(sb) == 2 and b.shape[0] == 1:  # xᵀ W for every sample: X W
            return a @ b[0]
        left = a if len(sa) == 2 else a[:, None, :]
        right = b if len(sb) == 2 else b[:, :, None]
        out = left @ right
        if len(sa) == 1:
            out = out[:, 0]
        if len(sb) == 1:
            out = out[..., 0]
        return out
    if op == "outer":  # a bᵀ of two vectors
        return xs[0][:, :, None] * xs[1][:, None, :]
    if op in ("sum", "mean"):
        axes = _per_sample_axes(args[0]) if node.axis is None else (node.axis + 1,)
        out = x.sum(axis=axes)
        return out / math.prod(x.shape[i] for i in axes) if op == "mean" else out
    if op == "spread":  # the cotangent of a sum: the same number in every summed position
        target = (x.shape[0], *node.shape)
        if node.axis is not None:
            x = np.expand_dims(x, node.axis + 1)
        else:  # NumPy's broadcasting: a number, or a smaller shape matched from the right
            x = _align(x, args[0], nd)
        return np.broadcast_to(x, target).copy()
    if op == "unbroadcast":  # sum a cotangent back to the shape of a broadcast operand
        src = args[0].shape
        x = x.sum(axis=tuple(range(1, 1 + len(src) - nd))) if len(src) > nd else x
        axes = tuple(i + 1 for i, (d, s) in enumerate(zip(node.shape, x.shape[1:])) if d == 1 and s != 1)
        return x.sum(axis=axes, keepdims=True) if axes else x
    if op == "sample_sum":
        return x.sum(axis=0, keepdims=True)
    if op == "sample_mean":
        return x.mean(axis=0, keepdims=True)
    if op == "norm2":
        return (x**2).sum(axis=_per_sample_axes(args[0]))
    if op == "mse":
        a, b = _align(xs[0], args[0], nd), xs[1]
        return ((a - b) ** 2).mean(axis=_per_sample_axes(args[0]))
    if op == "bce":
        p, y = xs
        with np.errstate(all="ignore"):
            return (-(y * np.log(p) + (1 - y) * np.log(1 - p))).mean(axis=_per_sample_axes(args[0]))
    if op == "softmax":
        return _softmax(x)
    if op == "log_softmax":
        return _log_softmax(x)
    if op == "logsumexp":
        m = x.max(axis=-1)
        return m + np.log(np.exp(x - m[..., None]).sum(axis=-1))
    if op == "cross_entropy":
        z, label = xs
        logp = _log_softmax(z)
        if args[1].shape == args[0].shape:
            return -(label * logp).sum(axis=-1)
        onehot = _onehot(np.broadcast_to(label, (max(len(label), len(z)),)), args[0].shape[0])
        return -(onehot * logp).sum(axis=-1)
    if op == "onehot":
        return _onehot(x, node.shape[0])
    raise AssertionError(f"no numbers for {op}")


def _compile(plan: BackwardPlan) -> Callable[[dict[str, np.ndarray]], None]:
    """The plan as one generated Python function: a line per node, NumPy calls with static shapes.

    Walking the trees node by node costs a few microseconds per node and step; a
    training loop on a small network spends more time there than in arithmetic.  The
    generated function does the same operations as :func:`evaluate` (the derivation's
    numbers come from it, and tests hold both equal to torch), with the broadcasting
    reshapes and the matmul case chosen once.  No user text reaches the code: names
    are looked up as string literals made by ``repr``, operations from a fixed table.
    """
    program = plan.program
    lines = ["def _program(env):", "    n = int(env['#n'][0])", "    inv_n = 1.0 / env['#n']"]
    constants: dict[str, Any] = {"np": np, "_compute": _compute, "_onehot": _onehot, "_softmax": _softmax,
                                 "_log_softmax": _log_softmax}
    seen: dict[int, str] = {}

    def keep(value: Any) -> str:
        name = f"c{len(constants)}"
        constants[name] = value
        return name

    def aligned(var: str, node: TNode, ndim: int) -> str:
        missing = ndim - len(node.shape)
        return f"{var}.reshape((-1, {'1, ' * missing}{''.join(f'{d}, ' for d in node.shape)}))" if missing else var

    def emit(node: TNode) -> str:
        if id(node) in seen:
            return seen[id(node)]
        op = node.op
        if op == "name":
            code = f"env[{node.name!r}]"
        elif op == "adjoint":
            code = f"env[{'δ:' + str(node.name)!r}]"
        elif op == "const":
            code = "inv_n" if node.label == "1/n" else keep(np.array([node.number]))
        elif op == "sample_sum" and node.args[0].op == "outer":  # Σᵢ δᵢxᵢᵀ as one product δᵀX
            a, b = (emit(x) for x in node.args[0].args)
            code = f"(({a}.T @ {b}) if len({a}) == len({b}) else np.einsum('si,tj->ij', {a}, {b}))[None]"
        else:
            args = [emit(a) for a in node.args]
            nd = len(node.shape)
            if op in _INFIX:
                a, b = (aligned(v, n, nd) for v, n in zip(args, node.args))
                code = f"{a} {_INFIX[op]} {b}"
            elif op == "neg":
                code = f"-{args[0]}"
            elif op == "f":
                call = keep(numpy_functions()[node.name])
                code = f"{call}({', '.join(aligned(v, n, nd) for v, n in zip(args, node.args))})"
            else:
                code = f"_compute({keep(node)}, [{', '.join(args)}])"
        var = f"t{len(seen)}"
        lines.append(f"    {var} = {code}")
        seen[id(node)] = var
        return var

    for stage in program.stages:
        var = emit(stage.tree)
        shape = keep((*stage.tree.shape,))
        lines.append(f"    env[{stage.name!r}] = np.broadcast_to({var}, ({var}.shape[0], *{shape})).copy()")
    for name in plan.order():
        node = program.node(name)
        shape = keep((*node.shape,))
        if name == program.loss:
            lines.append(f"    env[{'δ:' + name!r}] = np.ones((1, *{shape}))")
            continue
        rows = "n" if node.batched else "1"
        total = [f"np.zeros(({rows}, *{shape}))"]
        for k, (via, formula) in enumerate(plan.rules.get(name, [])):
            var = emit(formula)
            lines.append(f"    env[{f'δ:{via}→{name}#{k}'!r}] = {var}")
            total.append(var)
        lines.append(f"    env[{'δ:' + name!r}] = {' + '.join(total)}")
    namespace = dict(constants)
    exec(compile("\n".join(lines), "<explain tensor program>", "exec"), namespace)  # noqa: S102 - our own code
    return namespace["_program"]  # type: ignore[no-any-return]


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**"}

