"""A second implementation of the problem-file semantics, for the differential oracle.

This module imports nothing from ``explain``.  A problem is generated as a small
expression tree (tuples, below), then written twice: as the TOML text that
explain reads (:func:`problem_toml`), and as a PyTorch computation that this
module evaluates itself (:func:`reference`), following the documented semantics
(docs/problem-files.md, SPEC §1): per-sample stages, ``sum``/``mean`` reduction,
``[cost]`` reductions, the ``[network]`` shorthand and one training step of
gd/sgd/minibatch.  Autograd then gives the reference gradients.

Trees are tuples:

``("num", 0.5)``, ``("name", "w")``, ``("const", "pi")``, ``("neg", t)``,
``("bin", op, a, b)`` with op in ``+ - * /``, ``("pow", t, k)`` with a number k,
``("call", f, [args])``, ``("reduce", "mean" | "sum", stage)`` (``[cost]`` only).

Values are kept well conditioned: :class:`Guard` rejects (raises
:class:`Reject`) a problem whose evaluation comes near a kink, a domain edge or
large magnitudes, so that a disagreement beyond 1e-10 means a wrong number, not
rounding.  Ill-conditioned problems are tested elsewhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import torch

DTYPE = torch.float64
BOUND = 1e4          # largest magnitude of any intermediate value
GRAD_BOUND = 1e6     # largest magnitude of a parameter gradient
KINK = 1e-6          # how far relu/abs/max/min arguments stay from their kink
DOMAIN = 1e-3        # how far log/sqrt/negative-power arguments stay from 0
DENOMINATOR = 1e-2   # smallest magnitude of a divisor


class Reject(Exception):
    """The generated problem is outside the well-conditioned range: skip it."""


# -- trees --------------------------------------------------------------------
def number_text(v: float) -> str:
    text = repr(float(v))
    return f"({text})" if v < 0 else text


def text(t: tuple) -> str:
    """The expression as a problem file writes it (fully parenthesised)."""
    kind = t[0]
    if kind == "num":
        return number_text(t[1])
    if kind in ("name", "const"):
        return t[1]
    if kind == "neg":
        return f"-({text(t[1])})"
    if kind == "bin":
        return f"({text(t[2])}) {t[1]} ({text(t[3])})"
    if kind == "pow":
        k = t[2]
        # Whole exponents are written as whole numbers: (-w)**2.0 is a known bug (test_oracle).
        return f"({text(t[1])})**" + (f"({k})" if k < 0 else str(k)) if isinstance(k, int) else f"({text(t[1])})**{number_text(k)}"
    if kind == "call":
        return f"{t[1]}(" + ", ".join(text(a) for a in t[2]) + ")"
    if kind == "reduce":
        return f"{t[1]}({t[2]})"
    raise ValueError(kind)


def names_in(t: tuple) -> set[str]:
    kind = t[0]
    if kind == "name":
        return {t[1]}
    if kind == "reduce":
        return {t[2]}
    if kind in ("num", "const"):
        return set()
    children = t[2] if kind == "call" else [c for c in t[1:] if isinstance(c, tuple)]
    return set().union(*(names_in(c) for c in children))


def sympy_expr(t: tuple) -> Any:
    """The tree as SymPy builds it with its own operators (nothing from explain)."""
    import sympy as sp

    def build(t: tuple) -> Any:
        kind = t[0]
        if kind == "num":
            return sp.Float(t[1])
        if kind in ("name", "reduce"):
            return sp.Symbol(t[1] if kind == "name" else f"{t[1]}_{t[2]}", real=True)
        if kind == "const":
            return sp.pi if t[1] == "pi" else sp.E
        if kind == "neg":
            return -build(t[1])
        if kind == "bin":
            a, b = build(t[2]), build(t[3])
            return {"+": a + b, "-": a - b, "*": a * b}[t[1]] if t[1] != "/" else a / b
        if kind == "pow":
            return build(t[1]) ** (sp.Integer(t[2]) if isinstance(t[2], int) else sp.Float(t[2]))
        functions = {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "abs": sp.Abs, "max": sp.Max, "min": sp.Min,
                     "sin": sp.sin, "cos": sp.cos, "tanh": sp.tanh}
        if t[1] == "sigmoid":   # comparable, as explain's sigmoid is: max(w, sigmoid(0.3)) is fine
            return 1 / (1 + sp.exp(-build(t[2][0])))
        f = functions.get(t[1]) or sp.Function(t[1], real=True)
        return f(*(build(a) for a in t[2]))

    try:
        return build(t)
    except ValueError:      # "not comparable": a tree constant_custom_in_max_min already skips
        return None


def sympy_names(t: tuple) -> set[str]:
    """The names left in the tree after SymPy's automatic simplification.

    ``x - (b + x)`` is ``-b`` as soon as SymPy builds it, so a stage written with
    data may have none left, and explain (which builds its expressions with SymPy)
    does not treat it as per-sample.  The oracle skips such problems: which reading
    is right is a question of the format, not of gradients.  The tree is built
    with SymPy's operators directly (nothing from explain).
    """
    expr = sympy_expr(t)
    return names_in(t) if expr is None else {s.name for s in expr.free_symbols}


def partial_names(t: tuple, s: str) -> set[str] | None:
    """The names that ∂t/∂s depends on, by the textbook rules; None when it is 0.

    Used only to tell which generated data problems hit issue 8 item 1 (a
    data-free local derivative into a per-sample stage), see :func:`hits_item1`.
    """
    kind = t[0]
    if kind in ("num", "const"):
        return None
    if kind == "name":
        return set() if t[1] == s else None
    if kind == "reduce":
        return set() if t[2] == s else None
    if kind == "neg":
        return partial_names(t[1], s)
    if kind == "bin":
        op, a, b = t[1], t[2], t[3]
        da, db = partial_names(a, s), partial_names(b, s)
        if op in "+-":
            parts = [d for d in (da, db) if d is not None]
            return set().union(*parts) if parts else None
        if op == "*":
            parts = [d | names_in(b) for d in (da,) if d is not None] + [d | names_in(a) for d in (db,) if d is not None]
            return set().union(*parts) if parts else None
        parts = [d | names_in(b) for d in (da,) if d is not None] + \
                [d | names_in(a) | names_in(b) for d in (db,) if d is not None]
        return set().union(*parts) if parts else None
    if kind == "pow":
        d = partial_names(t[1], s)
        return None if d is None else d | names_in(t[1])
    if kind == "call":
        parts = [d | names_in(t) for d in (partial_names(a, s) for a in t[2]) if d is not None]
        return set().union(*parts) if parts else None
    raise ValueError(kind)


# -- evaluation with torch ----------------------------------------------------
class Guard:
    """Checks every intermediate value; raises Reject outside the well-conditioned range."""

    def value(self, v: torch.Tensor) -> torch.Tensor:
        d = v.detach()
        if not bool(torch.isfinite(d).all()) or float(d.abs().max()) > BOUND:
            raise Reject("large or non-finite value")
        return v

    def away_from(self, v: torch.Tensor, margin: float, what: str) -> None:
        if float(v.detach().abs().min()) < margin:
            raise Reject(what)

    def positive(self, v: torch.Tensor, margin: float, what: str) -> None:
        if float(v.detach().min()) < margin:
            raise Reject(what)


def _leaky_relu(z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    return torch.where(z > 0, z, a * z)


def _softplus(z: torch.Tensor) -> torch.Tensor:
    # log(1 + e^z) without torch's threshold (F.softplus returns z above 20,
    # which is off by e^-20 in value and derivative).
    return torch.logaddexp(z, torch.zeros_like(z))


def evaluate(t: tuple, env: dict[str, torch.Tensor], guard: Guard) -> torch.Tensor:
    """The tree's value with torch operations (broadcasting over samples)."""
    kind = t[0]
    if kind == "num":
        return torch.tensor(float(t[1]), dtype=DTYPE)
    if kind == "name":
        return env[t[1]]
    if kind == "const":
        return torch.tensor(math.pi if t[1] == "pi" else math.e, dtype=DTYPE)
    if kind == "reduce":
        column = env[t[2]]
        return column.sum() if t[1] == "sum" else column.mean()
    if kind == "neg":
        return -evaluate(t[1], env, guard)
    if kind == "bin":
        a, b = evaluate(t[2], env, guard), evaluate(t[3], env, guard)
        op = t[1]
        if op == "/":
            guard.away_from(b, DENOMINATOR, "division by a small number")
        result = {"+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div}[op](a, b)
        return guard.value(result)
    if kind == "pow":
        base, k = evaluate(t[1], env, guard), t[2]
        if float(k) != int(k):
            guard.positive(base, DOMAIN, "fractional power of a small or negative number")
        elif k < 0:
            guard.away_from(base, DOMAIN * 10, "negative power of a small number")
        return guard.value(base ** k)
    if kind == "call":
        f, args = t[1], [evaluate(a, env, guard) for a in t[2]]
        z = args[0]
        if f in ("relu", "abs", "leaky_relu"):
            guard.away_from(z, KINK, f"{f} near its kink")
        if f in ("max", "min"):
            guard.away_from(args[0] - args[1], KINK, f"{f} near a tie")
        if f in ("log", "sqrt"):
            guard.positive(z, DOMAIN, f"{f} near the edge of its domain")
        if f == "exp" and float(z.detach().max()) > 20:
            raise Reject("exp of a large number")
        table = {
            "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "softplus": _softplus,
            "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "abs": torch.abs,
            "sin": torch.sin, "cos": torch.cos,
        }
        if f in table:
            return guard.value(table[f](z))
        if f == "leaky_relu":
            return guard.value(_leaky_relu(z, args[1]))
        if f == "max":
            return guard.value(torch.maximum(args[0], args[1]))
        if f == "min":
            return guard.value(torch.minimum(args[0], args[1]))
    raise ValueError(t)


# -- problems ------------------------------------------------------------------
@dataclass
class Spec:
    """One generated problem of the [values]/[data]/[parameters]/[forward]/[cost] kind."""

    parameters: dict[str, float]
    forward: list[tuple[str, tuple]]
    values: list[tuple[str, Any]] = field(default_factory=list)   # number or tree of earlier values
    data: list[tuple[str, Any]] = field(default_factory=list)     # list, ("linspace", lo, hi, n) or tree
    cost: list[tuple[str, tuple]] = field(default_factory=list)
    loss: str | None = None          # the `loss` key, when written
    reduction: str | None = None     # the `reduction` key, when written
    train: dict[str, Any] | None = None

    @property
    def is_data(self) -> bool:
        return bool(self.data)

    @property
    def loss_name(self) -> str:
        if self.loss:
            return self.loss
        return (self.cost or self.forward)[-1][0]

    def per_sample(self) -> set[str]:
        """Names with one value per sample: data columns and stages computed from them."""
        result = {name for name, _ in self.data}
        for name, tree in self.forward:
            if names_in(tree) & result:
                result.add(name)
        return result


def _toml_value(v: Any) -> str:
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(repr(float(x)) for x in v) + "]"
    if isinstance(v, tuple) and v[0] == "linspace":
        return json.dumps(f"linspace({v[1]!r}, {v[2]!r}, {v[3]})")
    if isinstance(v, tuple):
        return json.dumps(text(v))
    return json.dumps(v)


def problem_toml(spec: Spec) -> str:
    """The problem file explain reads."""
    lines = ['title = "oracle"']
    if spec.loss:
        lines.append(f"loss = {json.dumps(spec.loss)}")
    if spec.reduction:
        lines.append(f"reduction = {json.dumps(spec.reduction)}")
    for table, items in (("values", spec.values), ("data", spec.data),
                         ("parameters", list(spec.parameters.items()))):
        if items:
            lines.append(f"[{table}]")
            lines += [f"{name} = {_toml_value(v)}" for name, v in items]
    lines.append("[forward]")
    lines += [f"{name} = {json.dumps(text(tree))}" for name, tree in spec.forward]
    if spec.cost:
        lines.append("[cost]")
        lines += [f"{name} = {json.dumps(text(tree))}" for name, tree in spec.cost]
    if spec.train:
        lines.append("[train]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in spec.train.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Reference:
    """The reference numbers of one problem: forward values, the (reduced) loss, gradients."""

    values: dict[str, Any]        # stage name -> float, or a list (one per sample)
    loss: float
    gradients: dict[str, float]


def leaf_numbers(spec: Spec) -> tuple[dict[str, float], dict[str, list[float]]]:
    """The values and data columns, computed here (value expressions included)."""
    guard = Guard()
    env: dict[str, torch.Tensor] = {}
    values = {}
    for name, v in spec.values:
        x = torch.tensor(v, dtype=DTYPE) if isinstance(v, float) else evaluate(v, env, guard)
        env[name] = x
        values[name] = float(x)
    data = {}
    for name, v in spec.data:
        if isinstance(v, list):
            x = torch.tensor(v, dtype=DTYPE)
        elif v[0] == "linspace":
            lo, hi, n = v[1], v[2], v[3]
            x = torch.tensor([lo + (hi - lo) * i / (n - 1) if n > 1 else lo for i in range(n)], dtype=DTYPE)
        else:
            x = evaluate(v, env, guard)
        env[name] = x
        data[name] = x.tolist()
    return values, data


def reference(spec: Spec, parameters: dict[str, float] | None = None, samples: list[int] | None = None) -> Reference:
    """Forward values, reduced loss and gradients, by torch autograd on this module's own evaluation.

    ``samples`` restricts a data problem to a batch (for sgd and minibatch).
    """
    guard = Guard()
    values, data = leaf_numbers(spec)
    env: dict[str, torch.Tensor] = {k: torch.tensor(v, dtype=DTYPE) for k, v in values.items()}
    n = None
    for name, column in data.items():
        chosen = column if samples is None else [column[i] for i in samples]
        env[name] = torch.tensor(chosen, dtype=DTYPE)
        n = len(chosen)
    params = {k: torch.tensor(v, dtype=DTYPE, requires_grad=True)
              for k, v in {**spec.parameters, **(parameters or {})}.items()}
    env.update(params)
    per_sample = spec.per_sample()
    out: dict[str, Any] = {}
    for name, tree in spec.forward:
        v = evaluate(tree, env, guard)
        if name in per_sample:
            v = v.expand(n)   # a per-sample stage has one value per sample, even when constant
        env[name] = v
        out[name] = v.detach().tolist()
    loss_name = spec.loss_name
    if spec.cost:
        for name, tree in spec.cost:
            env[name] = evaluate(tree, env, guard)
            out[name] = float(env[name].detach())
        total = env[loss_name]
    elif spec.is_data and loss_name in per_sample:
        total = env[loss_name].mean() if spec.reduction == "mean" else env[loss_name].sum()
    else:
        total = env[loss_name]
    guard.value(total)
    if total.requires_grad:
        grads = torch.autograd.grad(total, list(params.values()), allow_unused=True)
    else:   # no parameter reaches the loss
        grads = (None,) * len(params)
    gradients = {k: (0.0 if g is None else float(g)) for k, g in zip(params, grads)}
    if any(abs(g) > GRAD_BOUND for g in gradients.values()):
        raise Reject("large gradient")
    return Reference(out, float(total.detach()), gradients)


def first_batch(spec: Spec) -> list[int] | None:
    """The samples of the first update: all (gd), the first (sgd), the first batch (minibatch)."""
    train = spec.train or {}
    optimizer = train.get("optimizer", "gd")
    if optimizer == "gd" or not spec.is_data:
        return None
    size = 1 if optimizer == "sgd" else train["batch_size"]
    n = len(leaf_numbers(spec)[1][spec.data[0][0]])
    return list(range(min(size, n)))


def one_step(spec: Spec) -> dict[str, float]:
    """The parameters after one update, p - lr·∂L_batch/∂p."""
    lr = spec.train.get("learning_rate", 0.01) if spec.train else 0.01
    grads = reference(spec, samples=first_batch(spec)).gradients
    return {k: v - lr * grads[k] for k, v in spec.parameters.items()}


def hits_item1(spec: Spec) -> bool:
    """True when the problem meets issue 8 item 1 on the main of 2026-11-24.

    There, a parameter's gradient lost the sum over samples when a data-free
    node fed a per-sample stage through a term (consumer's adjoint × local
    derivative) that did not depend on the data: ``l = x + w**2``, or
    ``y_pred = w*x + b`` as the loss.  The oracle reports the truth either way;
    this only sorts generated problems between the test that passes today and
    the one marked xfail.  A problem with one sample cannot show the bug.
    """
    if not spec.is_data or spec.cost:
        return False
    n = len(leaf_numbers(spec)[1][spec.data[0][0]])
    if n < 2:
        return False
    per_sample = spec.per_sample()
    stages = dict(spec.forward)
    order = [name for name, _ in spec.forward]
    loss = spec.loss_name
    order = order[: order.index(loss) + 1]
    array = {loss: False}    # is the adjoint of this node one value per sample?
    # Consumers come before their inputs: stages from the last back, then the leaves.
    for node in [*reversed(order[:-1]), *spec.parameters, *(v for v, _ in spec.values)]:
        terms = []
        for consumer in order:
            if consumer not in array or node not in names_in(stages[consumer]):
                continue
            local = partial_names(stages[consumer], node)
            if local is None:
                continue
            term_array = array[consumer] or bool(local & per_sample)
            if consumer in per_sample and node not in per_sample and not term_array:
                return True
            terms.append(term_array)
        if terms:
            array[node] = any(terms)
    return False


# -- the [network] shorthand ----------------------------------------------------
@dataclass
class Layer:
    units: int
    activation: str
    weights: list[list[float]]
    bias: Any = None                 # None, a number, or a list of numbers
    train_bias: bool | None = None   # None: the key is not written
    slope: float | None = None


@dataclass
class Network:
    inputs: list[float]
    targets: list[float]
    layers: list[Layer]
    naming: str | None = None        # None: the key is not written (io)
    loss: str | None = None          # None: the key is not written (half_sse)
    learning_rate: float = 0.1

    def toml(self) -> str:
        lines = ['title = "oracle network"', "[network]",
                 f"inputs = {_toml_value(self.inputs)}", f"targets = {_toml_value(self.targets)}"]
        if self.naming:
            lines.append(f"naming = {json.dumps(self.naming)}")
        if self.loss:
            lines.append(f"loss = {json.dumps(self.loss)}")
        for layer in self.layers:
            lines += ["[[network.layers]]", f"units = {layer.units}", f"activation = {json.dumps(layer.activation)}",
                      "weights = [" + ", ".join(_toml_value(row) for row in layer.weights) + "]"]
            if layer.bias is not None:
                lines.append(f"bias = {_toml_value(layer.bias)}")
            if layer.train_bias is not None:
                lines.append(f"train_bias = {'true' if layer.train_bias else 'false'}")
            if layer.slope is not None:
                lines.append(f"slope = {layer.slope!r}")
        lines += ["[train]", 'optimizer = "gd"', f"learning_rate = {self.learning_rate!r}", "steps = 1"]
        return "\n".join(lines) + "\n"


class NetworkNames:
    """The names docs/problem-files.md gives each quantity, written out again here."""

    def __init__(self, naming: str, n_layers: int) -> None:
        self.naming, self.n_layers, self.count = naming, n_layers, 0

    def letter(self, layer: int) -> str:
        if layer == self.n_layers:
            return "o"
        return "h" if self.n_layers == 2 else f"h{layer}_"

    def input(self, i: int) -> str:
        return f"i{i}" if self.naming == "mazur" else f"x{i}"

    def pre(self, layer: int, j: int) -> str:
        if self.naming == "layered":
            return f"z{layer}_{j}"
        return ("net_" if self.naming == "mazur" else "in_") + f"{self.letter(layer)}{j}"

    def post(self, layer: int, j: int) -> str:
        return f"a{layer}_{j}" if self.naming == "layered" else f"out_{self.letter(layer)}{j}"

    def weight(self, layer: int, j: int, i: int, wide: bool) -> str:
        if self.naming == "layered":
            return f"w{layer}_{j}_{i}" if wide else f"w{layer}_{j}{i}"
        self.count += 1
        return f"w{self.count}"

    def bias(self, layer: int, j: int | None) -> str:
        if self.naming == "layered":
            return f"b{layer}" if j is None else f"b{layer}_{j}"
        return f"b{layer}" if j is None else f"b_{self.letter(layer)}{j}"

    def loss(self) -> str:
        return "L" if self.naming == "layered" else "E"


def network_reference(net: Network) -> tuple[Reference, dict[str, float]]:
    """Forward values, loss and gradients of a [network], and the parameters after one gd step."""
    guard = Guard()
    names = NetworkNames(net.naming or "io", len(net.layers))
    params: dict[str, torch.Tensor] = {}
    out: dict[str, Any] = {}
    a = [torch.tensor(v, dtype=DTYPE) for v in net.inputs]
    for index, layer in enumerate(net.layers, start=1):
        wide = layer.units > 9 or len(a) > 9
        zs = []
        for j in range(layer.units):
            z = torch.tensor(0.0, dtype=DTYPE)
            for i, source in enumerate(a):
                w = params.setdefault(names.weight(index, j + 1, i + 1, wide),
                                      torch.tensor(layer.weights[j][i], dtype=DTYPE, requires_grad=True))
                z = z + w * source
            if layer.bias is not None:
                shared = not isinstance(layer.bias, list)
                value = layer.bias if shared else layer.bias[j]
                b = torch.tensor(float(value), dtype=DTYPE, requires_grad=bool(layer.train_bias))
                if layer.train_bias:
                    b = params.setdefault(names.bias(index, None if shared else j + 1), b)
                z = z + b
            out[names.pre(index, j + 1)] = float(z.detach())
            zs.append(z)
        z = torch.stack(zs)
        if layer.activation in ("relu", "leaky_relu"):
            guard.away_from(z, KINK, "relu near its kink")
        if layer.activation == "softmax":
            post = torch.softmax(z, 0)
        elif layer.activation == "identity":
            post = z
        elif layer.activation == "leaky_relu":
            post = _leaky_relu(z, torch.tensor(0.01 if layer.slope is None else layer.slope, dtype=DTYPE))
        elif layer.activation == "softplus":
            post = _softplus(z)
        else:
            post = getattr(torch, layer.activation)(z)
        guard.value(post)
        a = list(post)
        for j, v in enumerate(a):
            out[names.post(index, j + 1)] = float(v.detach())
    o, y = torch.stack(a), torch.tensor(net.targets, dtype=DTYPE)
    k = len(net.targets)
    kind = net.loss or "half_sse"
    if kind in ("bce", "cross_entropy"):
        guard.positive(o, DOMAIN, "log of a small output")
    if kind == "bce":
        guard.positive(1 - o, DOMAIN, "log of 1 - output near 1")
    loss = {
        "half_sse": lambda: ((o - y) ** 2 / 2).sum(),
        "sse": lambda: ((o - y) ** 2).sum(),
        "mse": lambda: ((o - y) ** 2).sum() / k,
        "bce": lambda: -(y * torch.log(o) + (1 - y) * torch.log(1 - o)).sum() / k,
        "cross_entropy": lambda: -(y * torch.log(o)).sum(),
    }[kind]()
    out[names.loss()] = float(loss.detach())
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
    gradients = {p: float(g) for p, g in grads.items()}
    if any(abs(g) > GRAD_BOUND for g in gradients.values()):
        raise Reject("large gradient")
    after = {p: float(params[p].detach()) - net.learning_rate * gradients[p] for p in params}
    return Reference(out, float(loss.detach()), gradients), after
